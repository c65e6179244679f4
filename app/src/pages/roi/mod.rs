//! ROI: return on investment per server from measured usage, the fleet's totals, a ranking,
//! charts of cumulative value against cost, and the planning mode for a proposed server.
//! Everyone logged in reads it; admins edit each server's inputs in place. The window
//! lives in the URL (`?window=30`), and the CSV export takes the same window.

pub mod inputs;
pub mod plan;

use self::inputs::{InputsForm, InputsSummary};
use self::plan::PlanSection;
use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::pages::fleet::{current_user_resource, may};
use crate::wire::{
    BreakEven, DEFAULT_ROI_WINDOW, FleetRoi, MeasuredUsage, ROI_WINDOWS, RoiFigures, RoiReport,
    Role, ServerRoi, format_grouped, format_money, format_timestamp_utc,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The CSV export (served by the server, outside the app's routes).
const CSV_PATH: &str = "/api/roi.csv";

/// The ROI report over the last `window_days` days.
#[server(prefix = "/api", endpoint = "roi/report")]
pub async fn get_roi_report(window_days: u32) -> Result<RoiReport, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.roi(window_days).await
    })
    .await
}

/// The window asked for in the URL (`window`), or the default when absent or not a number
/// (an out-of-range number is passed on, and refused by the server with a message).
pub fn window_from_param(value: Option<String>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_ROI_WINDOW)
}

/// The window switch, the fleet's totals, the ranking, each server, and the planning mode.
#[component]
pub fn RoiPage() -> impl IntoView {
    let params = use_query_map();
    let window = Memo::new(move |_| window_from_param(params.with(|p| p.get("window"))));
    // Bumped when an admin saved inputs: the report is computed again.
    let saved = RwSignal::new(0u32);
    let last_saved = RwSignal::new(None::<String>);
    let report = Resource::new(
        move || (window.get(), saved.get()),
        |(window, _)| get_roi_report(window),
    );
    let me = current_user_resource();
    let admin = Resource::new(|| (), move |_| may(me, Role::Admin));

    view! {
        <Title text="ROI" />
        <div class="page-head">
            <h1>"ROI"</h1>
            <div class="roi-actions no-print">
                <a
                    class="button-link"
                    data-testid="roi-csv"
                    href=move || format!("{CSV_PATH}?window={}", window.get())
                    download="fleetdeck-roi.csv"
                >
                    "Download CSV"
                </a>
                <button
                    type="button"
                    class="secondary"
                    data-testid="roi-print"
                    on:click=move |_| {
                        let _ = window_print();
                    }
                >
                    "Print"
                </button>
            </div>
        </div>
        <p class="muted">
            "Return on investment per server: development cost = development hours × hourly rate; monthly value = hours saved per use × uses per month × hourly rate; ROI = (monthly value × months − development cost) / development cost. "
            "Uses are measured from the audit log: successful calls (outcome ok, cache hits included); errors, failures, refusals and cancelled calls do not count. They are projected to a month of 30.44 days."
        </p>
        <WindowSwitch window />
        {move || {
            last_saved
                .get()
                .map(|server| {
                    view! {
                        <p class="notice" role="status" data-testid="roi-saved">
                            {format!("Inputs of {server} saved; the figures below use them.")}
                        </p>
                    }
                })
        }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let admin = admin.await;
                match report.await {
                    Ok(report) => view! { <Report report admin saved last_saved /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
        <PlanSection />
    }
}

/// Opens the browser's print dialog (the print stylesheet hides the controls).
fn window_print() -> Result<(), String> {
    window().print().map_err(|e| format!("{e:?}"))
}

/// Links to the windows the page offers.
#[component]
fn WindowSwitch(window: Memo<u32>) -> impl IntoView {
    view! {
        <nav class="tabs no-print" aria-label="Measurement window">
            {ROI_WINDOWS
                .into_iter()
                .map(|days| {
                    let current = move || window.get() == days;
                    view! {
                        <a
                            href=format!("/roi?window={days}")
                            class="tab"
                            class:active=current
                            aria-current=move || current().then_some("page")
                            data-testid=format!("window-{days}")
                        >
                            {format!("Last {days} days")}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// The fleet's totals, the ranking, and each server's card.
#[component]
fn Report(
    report: RoiReport,
    admin: bool,
    saved: RwSignal<u32>,
    last_saved: RwSignal<Option<String>>,
) -> impl IntoView {
    let generated = format_timestamp_utc(report.generated_at_ms);
    let configured = report
        .servers
        .iter()
        .filter(|s| s.figures.is_some())
        .count();
    let total = report.servers.len();
    let fleet = if report.fleet.is_empty() {
        view! {
            <p class="notice" data-testid="roi-no-inputs">
                "No server has ROI inputs yet"
                {if admin {
                    ": set development hours, hourly rate and minutes saved per use in a server's card below."
                } else {
                    ": an admin sets them on this page."
                }}
            </p>
        }
        .into_any()
    } else {
        report
            .fleet
            .into_iter()
            .map(|fleet| view! { <FleetCard fleet /> })
            .collect_view()
            .into_any()
    };
    let servers = report.servers.clone();
    view! {
        <p class="muted small">
            {format!(
                "Measured over the last {} days, computed {generated} UTC. {configured} of {total} servers have inputs.",
                report.window_days,
            )}
        </p>
        {fleet}
        <Ranking servers=report.servers />
        {servers
            .into_iter()
            .map(|server| view! { <ServerCard server admin saved last_saved /> })
            .collect_view()}
    }
}

/// A figure with a label, as a stat card.
#[component]
fn Stat(
    label: &'static str,
    value: String,
    test_id: &'static str,
    /// A line under the figure (none when empty).
    #[prop(optional, into)]
    note: String,
) -> impl IntoView {
    view! {
        <div class="card stat">
            <h2>{label}</h2>
            <p class="value compact" data-testid=test_id>{value}</p>
            {(!note.is_empty()).then(|| view! { <p class="muted">{note}</p> })}
        </div>
    }
}

/// The figures every report shows, as stat cards.
#[component]
fn FigureCards(
    figures: RoiFigures,
    uses_per_month: f64,
    /// How the uses were measured (none when empty).
    #[prop(optional, into)]
    uses_note: String,
) -> impl IntoView {
    let currency = figures.currency.clone();
    let beyond = match figures.break_even {
        BreakEven::AfterMonths(m) if m > f64::from(figures.months) => {
            Some(format!("beyond the {} months evaluated", figures.months))
        }
        _ => None,
    };
    view! {
        <div class="cards roi-figures">
            <Stat label="ROI" value=figures.roi.text() test_id="roi-percent" note=format!("over {} months", figures.months) />
            <Stat label="Break-even" value=figures.break_even.text() test_id="break-even" note=beyond.unwrap_or_default() />
            <Stat
                label="Total value"
                value=format_money(figures.total_value, &currency)
                test_id="total-value"
                note=format!("net {}", format_money(figures.net_value, &currency))
            />
            <Stat label="Monthly value" value=format_money(figures.monthly_value, &currency) test_id="monthly-value" note=format!("{} hours saved a month", format_grouped(figures.hours_saved_per_month, 2)) />
            <Stat label="Development cost" value=format_money(figures.development_cost, &currency) test_id="development-cost" />
            <Stat label="Uses per month" value=format_grouped(uses_per_month, 1) test_id="uses-per-month" note=uses_note />
        </div>
    }
}

/// The SVG chart drawn on the server (fixed labels, escaped by plotters).
#[component]
fn Chart(svg: Option<String>, label: String) -> impl IntoView {
    svg.map(|svg| {
        view! { <figure class="roi-chart" role="img" aria-label=label inner_html=svg></figure> }
    })
}

/// The fleet's totals in one currency.
#[component]
fn FleetCard(fleet: FleetRoi) -> impl IntoView {
    let currency = fleet.figures.currency.clone();
    view! {
        <section class="card roi-fleet" data-testid=format!("fleet-{currency}")>
            <h2>{format!("Fleet ({currency}, {} servers with inputs)", fleet.servers)}</h2>
            <FigureCards figures=fleet.figures uses_per_month=fleet.uses_per_month />
            <Chart svg=fleet.chart_svg label=format!("Fleet cumulative value against development cost, {currency}") />
        </section>
    }
}

/// Servers by ROI, best first; those without inputs last.
#[component]
fn Ranking(servers: Vec<ServerRoi>) -> impl IntoView {
    view! {
        <section class="card">
            <h2>"Ranking by ROI"</h2>
            <div class="table-scroll">
                <table class="data roi-ranking" data-testid="roi-ranking">
                    <thead>
                        <tr>
                            <th class="num">"#"</th>
                            <th>"Server"</th>
                            <th class="num">"Uses / month"</th>
                            <th class="num">"Hours saved / month"</th>
                            <th class="num">"Monthly value"</th>
                            <th class="num">"Development cost"</th>
                            <th class="num">"Total value"</th>
                            <th class="num">"ROI"</th>
                            <th>"Break-even"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {servers.into_iter().map(|server| view! { <RankingRow server /> }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// One server's line of the ranking.
#[component]
fn RankingRow(server: ServerRoi) -> impl IntoView {
    let name = server.server.clone();
    let rank = server
        .rank
        .map(|r| r.to_string())
        .unwrap_or_else(|| "—".into());
    let uses = format_grouped(server.usage.uses_per_month, 1);
    let cells = match &server.figures {
        Some(f) => view! {
            <td class="num">{format_grouped(f.hours_saved_per_month, 2)}</td>
            <td class="num">{format_money(f.monthly_value, &f.currency)}</td>
            <td class="num">{format_money(f.development_cost, &f.currency)}</td>
            <td class="num">{format_money(f.total_value, &f.currency)}</td>
            <td class="num" data-testid=format!("rank-roi-{name}")>{f.roi.text()}</td>
            <td class="nowrap">{f.break_even.text()}</td>
        }
        .into_any(),
        None => view! { <td colspan="6" class="muted">"no inputs yet"</td> }.into_any(),
    };
    view! {
        <tr data-testid=format!("rank-{name}") data-server=name.clone()>
            <td class="num">{rank}</td>
            <td>
                <a href=format!("#roi-{name}")>{name.clone()}</a>
                {(!server.in_fleet).then(|| view! { <span class="pill muted small">"not in the fleet"</span> })}
            </td>
            <td class="num">{uses}</td>
            {cells}
        </tr>
    }
}

/// How a usage figure was measured, e.g. `12 successful calls, last 30 days`.
fn usage_note(usage: &MeasuredUsage) -> String {
    format!(
        "{} successful calls, {}",
        format_grouped(usage.uses as f64, 0),
        usage.span_text()
    )
}

/// One server: its figures and chart, its tools, and its inputs (editable by admins).
#[component]
fn ServerCard(
    server: ServerRoi,
    admin: bool,
    saved: RwSignal<u32>,
    last_saved: RwSignal<Option<String>>,
) -> impl IntoView {
    let name = server.server.clone();
    let note = usage_note(&server.usage);
    let figures = match server.figures.clone() {
        Some(figures) => {
            let label = format!("{name}: cumulative value against development cost, {}", figures.currency);
            view! {
                <FigureCards figures uses_per_month=server.usage.uses_per_month uses_note=note.clone() />
                <Chart svg=server.chart_svg.clone() label />
            }
            .into_any()
        }
        None => view! {
            <p class="muted" data-testid="uses-measured">
                {format!("{} uses a month ({note}). ", format_grouped(server.usage.uses_per_month, 1))}
                "No ROI inputs yet."
            </p>
        }
        .into_any(),
    };
    let updated = server.updated.clone().map(|(by, at)| {
        view! { <p class="muted small">{format!("Inputs last changed by {by} at {} UTC.", format_timestamp_utc(at))}</p> }
    });
    let editor = (admin && server.in_fleet).then(|| {
        view! {
            <InputsForm
                server=name.clone()
                tools=server.tools.clone()
                inputs=server.inputs.clone()
                saved
                last_saved
            />
        }
    });
    let read_only = (!admin).then(|| {
        server
            .inputs
            .clone()
            .map(|inputs| view! { <InputsSummary inputs /> })
    });
    view! {
        <section class="card roi-server" id=format!("roi-{name}") data-testid=format!("server-{name}")>
            <div class="server-head">
                <h2 class="server-name">{name.clone()}</h2>
                {server.rank.map(|rank| view! { <span class="pill">{format!("rank {rank}")}</span> })}
            </div>
            {figures}
            <ToolsTable server=server.clone() />
            {updated}
            {read_only}
            {editor}
        </section>
    }
}

/// A server's tools: measured uses and minutes saved per use.
#[component]
fn ToolsTable(server: ServerRoi) -> impl IntoView {
    if server.tools.is_empty() {
        return view! { <p class="muted">"No tools listed and no calls recorded."</p> }.into_any();
    }
    let configured = server.inputs.is_some();
    view! {
        <div class="table-scroll">
            <table class="data roi-tools">
                <thead>
                    <tr>
                        <th>"Tool"</th>
                        <th class="num">"Successful calls"</th>
                        <th class="num">"Uses / month"</th>
                        <th class="num">"Minutes saved / use"</th>
                        <th class="num">"Hours saved / month"</th>
                    </tr>
                </thead>
                <tbody>
                    {server
                        .tools
                        .into_iter()
                        .map(|tool| {
                            let minutes = if !configured {
                                "—".to_string()
                            } else if tool.minutes_is_default {
                                format!("{} (default)", format_grouped(tool.minutes_saved, 2))
                            } else {
                                format_grouped(tool.minutes_saved, 2)
                            };
                            view! {
                                <tr data-testid=format!("tool-{}", tool.tool)>
                                    <td><code>{tool.tool.clone()}</code></td>
                                    <td class="num" data-testid="tool-uses">{tool.uses}</td>
                                    <td class="num">{format_grouped(tool.uses_per_month, 1)}</td>
                                    <td class="num">{minutes}</td>
                                    <td class="num">
                                        {if configured { format_grouped(tool.hours_saved_per_month, 2) } else { "—".into() }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_comes_from_the_url_or_defaults() {
        assert_eq!(window_from_param(None), 30);
        assert_eq!(window_from_param(Some("7".into())), 7);
        assert_eq!(window_from_param(Some("soon".into())), 30);
        // Out of range is passed on: the server says what is allowed.
        assert_eq!(window_from_param(Some("400".into())), 400);
    }
}
