//! The planning mode: the ROI of a server not yet in the fleet, from uses per person per
//! month × team size, with the build / buy / adapt decision matrix as guidance next to it.
//! Nothing is stored: anyone logged in may try figures.

use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::wire::{BreakEven, RoiPlan, RoiPlanForm, format_grouped, format_money};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// The figures of a proposed server.
#[server(prefix = "/api", endpoint = "roi/plan", input = Json)]
pub async fn plan_roi(form: RoiPlanForm) -> Result<RoiPlan, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.plan_roi(form).await
    })
    .await
}

/// The decision matrix: when to build a server, buy one, or adapt an existing one.
pub const DECISION_MATRIX: [(&str, &str); 3] = [
    (
        "Build",
        "the tools reach your own systems or data, no product or open server covers them, the team can maintain the server, and break-even comes well inside the months evaluated.",
    ),
    (
        "Buy",
        "the need is generic (search, tickets, documents), a maintained product or hosted server covers it, or development cost is high against the monthly value (late or no break-even).",
    ),
    (
        "Adapt",
        "an open-source or vendor server covers most of it and you need your own auth, data or a few tools on top: a wrapper or fork costs a fraction of a build.",
    ),
];

/// Which row of the matrix the figures point to first: build when the cost is recovered
/// within half the months evaluated, adapt when within them, buy otherwise.
pub fn suggestion(break_even: BreakEven, months: u32) -> &'static str {
    match break_even {
        BreakEven::Immediately => "Build",
        BreakEven::AfterMonths(m) if m <= f64::from(months) / 2.0 => "Build",
        BreakEven::AfterMonths(m) if m <= f64::from(months) => "Adapt",
        _ => "Buy",
    }
}

/// The planning form, its result, and the decision matrix.
#[component]
pub fn PlanSection() -> impl IntoView {
    let plan = ServerAction::<PlanRoi>::new();
    let text = |value: &str| RwSignal::new(value.to_string());
    let name = text("");
    let development_hours = text("");
    let hourly_rate = text("");
    let currency = text("EUR");
    let minutes_saved = text("");
    let uses_per_person = text("");
    let team_size = text("");
    let months = text("12");
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        plan.dispatch(PlanRoi {
            form: RoiPlanForm {
                name: name.get_untracked(),
                development_hours: development_hours.get_untracked(),
                hourly_rate: hourly_rate.get_untracked(),
                currency: currency.get_untracked(),
                minutes_saved: minutes_saved.get_untracked(),
                uses_per_person: uses_per_person.get_untracked(),
                team_size: team_size.get_untracked(),
                months: months.get_untracked(),
            },
        });
    };
    let field = |label: &'static str, key: &'static str, value: RwSignal<String>| {
        view! {
            <label>
                {label}
                <input
                    name=key
                    autocomplete="off"
                    data-testid=format!("plan-{key}")
                    value=value.get_untracked()
                    on:input=move |event| value.set(event_target_value(&event))
                />
            </label>
        }
    };
    view! {
        <section class="card roi-plan" data-testid="roi-plan">
            <h2>"Planning: a server not yet in the fleet"</h2>
            <p class="muted small">
                "Uses per month = uses per person per month × team size; the rest is the same formula. Nothing is stored."
            </p>
            <div class="roi-plan-grid">
                <div>
                    <form class="no-print" on:submit=on_submit>
                        <div class="filters">
                            {field("Proposed server", "name", name)}
                            {field("Development hours", "development_hours", development_hours)}
                            {field("Hourly rate", "hourly_rate", hourly_rate)}
                            {field("Currency", "currency", currency)}
                            {field("Minutes saved per use", "minutes_saved", minutes_saved)}
                            {field("Uses per person per month", "uses_per_person", uses_per_person)}
                            {field("Team size", "team_size", team_size)}
                            {field("Months to evaluate", "months", months)}
                        </div>
                        <button type="submit" data-testid="plan-submit" disabled=move || plan.pending().get()>
                            "Compute"
                        </button>
                    </form>
                    {move || {
                        plan.value()
                            .get()
                            .map(|result| match result {
                                Ok(result) => view! { <PlanResult result /> }.into_any(),
                                Err(error) => {
                                    view! { <div data-testid="plan-error"><ErrorNotice error /></div> }
                                        .into_any()
                                }
                            })
                    }}
                </div>
                <DecisionMatrix suggested=Signal::derive(move || {
                    plan.value()
                        .get()
                        .and_then(Result::ok)
                        .map(|r| suggestion(r.figures.break_even, r.figures.months))
                }) />
            </div>
        </section>
    }
}

/// A plan's figures and chart.
#[component]
fn PlanResult(result: RoiPlan) -> impl IntoView {
    let f = result.figures;
    let currency = f.currency.clone();
    view! {
        <div class="roi-plan-result" data-testid="plan-result">
            <h3>{result.name.clone()}</h3>
            <table class="data">
                <tbody>
                    <tr><th>"Uses per month"</th><td class="num" data-testid="plan-uses">{format_grouped(result.uses_per_month, 1)}</td></tr>
                    <tr><th>"Development cost"</th><td class="num">{format_money(f.development_cost, &currency)}</td></tr>
                    <tr><th>"Monthly value"</th><td class="num">{format_money(f.monthly_value, &currency)}</td></tr>
                    <tr>
                        <th>{format!("Total value over {} months", f.months)}</th>
                        <td class="num">{format_money(f.total_value, &currency)}</td>
                    </tr>
                    <tr><th>"ROI"</th><td class="num" data-testid="plan-roi">{f.roi.text()}</td></tr>
                    <tr><th>"Break-even"</th><td class="num" data-testid="plan-break-even">{f.break_even.text()}</td></tr>
                </tbody>
            </table>
            {result.chart_svg.map(|svg| view! {
                <figure class="roi-chart" role="img" aria-label="Planned cumulative value against development cost" inner_html=svg></figure>
            })}
        </div>
    }
}

/// The build / buy / adapt matrix, with the row the last plan points to marked.
#[component]
fn DecisionMatrix(suggested: Signal<Option<&'static str>>) -> impl IntoView {
    view! {
        <table class="data roi-matrix" data-testid="decision-matrix">
            <thead>
                <tr><th>"Decision"</th><th>"When"</th></tr>
            </thead>
            <tbody>
                {DECISION_MATRIX
                    .into_iter()
                    .map(|(decision, when)| {
                        let marked = move || suggested.get() == Some(decision);
                        view! {
                            <tr class:suggested=marked data-decision=decision>
                                <th>
                                    {decision}
                                    {move || marked().then(|| view! { <span class="pill small">"suggested by the figures"</span> })}
                                </th>
                                <td>{when}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_point_to_a_row_of_the_matrix() {
        assert_eq!(suggestion(BreakEven::Immediately, 12), "Build");
        assert_eq!(suggestion(BreakEven::AfterMonths(6.0), 12), "Build");
        assert_eq!(suggestion(BreakEven::AfterMonths(6.1), 12), "Adapt");
        assert_eq!(suggestion(BreakEven::AfterMonths(12.0), 12), "Adapt");
        assert_eq!(suggestion(BreakEven::AfterMonths(12.5), 12), "Buy");
        assert_eq!(suggestion(BreakEven::Never, 12), "Buy");
        let rows: Vec<_> = DECISION_MATRIX.iter().map(|(d, _)| *d).collect();
        assert_eq!(rows, ["Build", "Buy", "Adapt"]);
    }
}
