//! Traces: recent gateway calls as traces (searchable; the filters live in the URL) and one
//! trace's span waterfall, in which attempts, retries and breaker decisions are visible.

pub mod filters;
pub mod waterfall;

use self::filters::{STATUSES, format_ms, query_from_params, query_pairs};
use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::pages::audit::datetime::{format_datetime_local, parse_datetime_local};
use crate::pages::audit::filters::query_string;
use crate::wire::{TraceQuery, TraceSummary, TraceView, format_timestamp_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

/// The list's own path.
const TRACES_PATH: &str = "/traces";

/// Traces matching the filters, newest first.
#[server(prefix = "/api", endpoint = "traces/list")]
pub async fn list_traces(query: TraceQuery) -> Result<Vec<TraceSummary>, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.traces(query).await
    })
    .await
}

/// One trace with its spans.
#[server(prefix = "/api", endpoint = "traces/get")]
pub async fn get_trace(trace_id: String) -> Result<TraceView, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.trace(&trace_id).await
    })
    .await
}

/// The list's URL for a query.
fn traces_href(query: &TraceQuery) -> String {
    format!("{TRACES_PATH}{}", query_string(&query_pairs(query)))
}

/// A duration in ms as the tables show it.
pub fn format_duration_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The filter form and the list, read from the URL.
#[component]
pub fn TracesPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|params| query_from_params(|key| params.get(key))));
    let (reloads, set_reloads) = signal(0u32);
    let rows = Resource::new(
        move || (query.get(), reloads.get()),
        |(query, _)| async move { list_traces(query).await },
    );
    view! {
        <Title text="Traces" />
        <h1>"Traces"</h1>
        <p class="muted">
            "Gateway calls as traces, newest first: recent ones from memory, failed, slow and sampled ones from the database. Times are UTC."
        </p>
        {move || view! { <TraceFilters initial=query.get() reload=set_reloads /> }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match rows.await {
                    Ok(traces) => view! { <TraceTable traces /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The filters; applying navigates to the new URL (a plain GET form before hydration).
#[component]
fn TraceFilters(initial: TraceQuery, reload: WriteSignal<u32>) -> impl IntoView {
    let navigate = use_navigate();
    let text = |value: &Option<String>| RwSignal::new(value.clone().unwrap_or_default());
    let time = |ms: Option<i64>| RwSignal::new(ms.map(format_datetime_local).unwrap_or_default());
    let (tool, assistant, status) = (
        text(&initial.tool),
        text(&initial.assistant),
        text(&initial.status),
    );
    let min_ms = RwSignal::new(initial.min_duration_ms.map(format_ms).unwrap_or_default());
    let (from, to) = (time(initial.from_ms), time(initial.to_ms));
    let limit = initial.limit;
    let error = RwSignal::new(None::<String>);
    let optional = |value: String| {
        let value = value.trim().to_string();
        (!value.is_empty()).then_some(value)
    };
    let read_time = move |label: &str, value: String| -> Result<Option<i64>, String> {
        match optional(value) {
            None => Ok(None),
            Some(value) => parse_datetime_local(&value)
                .map(Some)
                .map_err(|e| format!("{label}: {e}")),
        }
    };
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let checked = (|| {
            let min = match optional(min_ms.get_untracked()) {
                None => None,
                Some(text) => match text.parse::<f64>() {
                    Ok(ms) if ms.is_finite() && ms >= 0.0 => Some(ms),
                    _ => {
                        return Err(format!(
                            "minimum duration: {text:?} is not a number of milliseconds"
                        ));
                    }
                },
            };
            let from_ms = read_time("from", from.get_untracked())?;
            let to_ms = read_time("to", to.get_untracked())?;
            if let (Some(f), Some(t)) = (from_ms, to_ms)
                && f >= t
            {
                return Err("the range is empty: \"from\" must be before \"to\"".to_string());
            }
            Ok((min, from_ms, to_ms))
        })();
        let (min_duration_ms, from_ms, to_ms) = match checked {
            Ok(values) => values,
            Err(why) => {
                error.set(Some(why));
                return;
            }
        };
        error.set(None);
        let query = TraceQuery {
            tool: optional(tool.get_untracked()),
            assistant: optional(assistant.get_untracked()),
            status: optional(status.get_untracked()),
            min_duration_ms,
            from_ms,
            to_ms,
            limit,
        };
        reload.update(|n| *n += 1);
        navigate(&traces_href(&query), NavigateOptions::default());
    };
    let field =
        |label: &'static str, name: &'static str, value: RwSignal<String>, hint: &'static str| {
            view! {
                <label>
                    {label}
                    <input
                        name=name
                        value=value.get_untracked()
                        placeholder=hint
                        autocomplete="off"
                        data-testid=format!("filter-{name}")
                        on:input=move |event| value.set(event_target_value(&event))
                    />
                </label>
            }
        };
    let time_field = |label: &'static str, name: &'static str, value: RwSignal<String>| {
        view! {
            <label>
                {label}
                <input
                    type="datetime-local"
                    name=name
                    value=value.get_untracked()
                    on:input=move |event| value.set(event_target_value(&event))
                />
            </label>
        }
    };
    view! {
        <form
            class="card filters"
            method="get"
            action=TRACES_PATH
            data-testid="trace-filters"
            on:submit=on_submit
        >
            {field("Tool", "tool", tool, "server__tool or server")}
            {field("Assistant", "assistant", assistant, "name")}
            <label>
                "Status"
                <select
                    name="status"
                    data-testid="filter-status"
                    on:change=move |event| status.set(event_target_value(&event))
                >
                    <option value="" selected=initial.status.is_none()>"any"</option>
                    {STATUSES
                        .into_iter()
                        .map(|name| {
                            view! {
                                <option value=name selected=initial.status.as_deref() == Some(name)>
                                    {name}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            {field("Min duration (ms)", "min_ms", min_ms, "e.g. 500")}
            {time_field("From (UTC)", "from", from)}
            {time_field("To (UTC)", "to", to)}
            <button type="submit">"Apply"</button>
            <a href=TRACES_PATH class="clear" data-testid="clear-filters">"Clear"</a>
        </form>
        {move || error.get().map(|why| view! { <p class="notice notice-error" role="alert">{why}</p> })}
    }
}

/// The list of traces.
#[component]
fn TraceTable(traces: Vec<TraceSummary>) -> impl IntoView {
    if traces.is_empty() {
        return view! {
            <p class="notice muted" data-testid="traces-empty">"No trace matches these filters."</p>
        }
        .into_any();
    }
    let count = traces.len();
    view! {
        <p class="muted" data-testid="traces-count">
            {format!("{count} trace{}", if count == 1 { "" } else { "s" })}
        </p>
        <div class="table-scroll">
            <table class="data traces" data-testid="traces">
                <thead>
                    <tr>
                        <th>"Time (UTC)"</th>
                        <th>"Tool"</th>
                        <th>"Assistant"</th>
                        <th>"Status"</th>
                        <th class="num">"Duration"</th>
                        <th class="num">"Spans"</th>
                        <th class="num">"Retries"</th>
                        <th>"Trace"</th>
                    </tr>
                </thead>
                <tbody>
                    {traces
                        .into_iter()
                        .map(|trace| view! { <TraceRow trace /> })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// One trace in the list.
#[component]
fn TraceRow(trace: TraceSummary) -> impl IntoView {
    let href = format!("{TRACES_PATH}/{}", trace.trace_id);
    let short: String = trace.trace_id.chars().take(12).collect();
    view! {
        <tr data-testid="trace-row" data-trace-id=trace.trace_id.clone() data-status=trace.status.clone()>
            <td class="nowrap">{format_timestamp_utc(trace.started_at_ms)}</td>
            <td><code>{trace.tool.unwrap_or_else(|| trace.root.clone())}</code></td>
            <td>{trace.assistant.unwrap_or_else(|| "—".to_string())}</td>
            <td><span class=format!("pill status-{}", trace.status)>{trace.status.clone()}</span></td>
            <td class="num">{format_duration_ms(trace.duration_ms)}</td>
            <td class="num">{trace.spans}</td>
            <td class="num" data-testid="trace-retries">{trace.retries}</td>
            <td>
                <a href=href title=trace.trace_id.clone() data-testid="trace-link">
                    <code>{format!("{short}…")}</code>
                </a>
            </td>
        </tr>
    }
}

/// `/traces/:trace_id`: one trace's summary and waterfall.
#[component]
pub fn TracePage() -> impl IntoView {
    let params = use_params_map();
    let trace_id = Memo::new(move |_| params.with(|p| p.get("trace_id").unwrap_or_default()));
    let trace = Resource::new(move || trace_id.get(), get_trace);
    view! {
        <Title text="Trace" />
        <p><a href=TRACES_PATH data-testid="back-to-traces">"← Traces"</a></p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match trace.await {
                    Ok(trace) => view! { <TraceDetail trace /> }.into_any(),
                    Err(error) => view! {
                        <h1>"Trace"</h1>
                        <ErrorNotice error />
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

/// A trace's header facts and its waterfall.
#[component]
fn TraceDetail(trace: TraceView) -> impl IntoView {
    let summary = trace.summary.clone();
    let title = summary.tool.clone().unwrap_or_else(|| summary.root.clone());
    view! {
        <h1>"Trace " <code>{title}</code></h1>
        <dl class="facts" data-testid="trace-summary">
            <dt>"Trace id"</dt>
            <dd><code data-testid="trace-id">{summary.trace_id.clone()}</code></dd>
            <dt>"Started (UTC)"</dt>
            <dd>{format_timestamp_utc(summary.started_at_ms)}</dd>
            <dt>"Duration"</dt>
            <dd>{format_duration_ms(summary.duration_ms)}</dd>
            <dt>"Assistant"</dt>
            <dd>{summary.assistant.clone().unwrap_or_else(|| "—".to_string())}</dd>
            <dt>"Status"</dt>
            <dd>
                <span class=format!("pill status-{}", summary.status) data-testid="trace-status">
                    {summary.status.clone()}
                </span>
            </dd>
            <dt>"Retries"</dt>
            <dd>{summary.retries}</dd>
        </dl>
        <waterfall::Waterfall trace />
    }
}
