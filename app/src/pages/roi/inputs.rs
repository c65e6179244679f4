//! A server's ROI inputs: the admins' form (validated on the server, refusals shown in
//! place) and the read-only summary everyone else sees.

use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::wire::{RoiInputs, RoiInputsForm, ToolRoi, format_grouped};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// The currency a server without inputs starts with.
const DEFAULT_CURRENCY: &str = "EUR";

/// The evaluation period a server without inputs starts with, in months.
const DEFAULT_MONTHS: u32 = 12;

/// Replaces a server's ROI inputs (admins only; validated and audited on the server).
#[server(prefix = "/api", endpoint = "roi/set_inputs", input = Json)]
pub async fn save_roi_inputs(server: String, form: RoiInputsForm) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.set_roi_inputs(&actor, &server, form).await
    })
    .await
}

/// A stored number as the form shows it: as typed, without trailing zeros or an exponent
/// (Rust's `Display` for `f64` writes neither).
pub fn number_text(value: f64) -> String {
    value.to_string()
}

/// The form's starting values: the stored inputs, or blanks with sensible defaults.
pub fn initial_form(inputs: Option<&RoiInputs>, tools: &[ToolRoi]) -> RoiInputsForm {
    let own = |tool: &str| {
        inputs
            .and_then(|i| i.tool_minutes.iter().find(|t| t.tool == tool))
            .map(|t| number_text(t.minutes_saved))
            .unwrap_or_default()
    };
    RoiInputsForm {
        development_hours: inputs
            .map(|i| number_text(i.development_hours))
            .unwrap_or_default(),
        hourly_rate: inputs
            .map(|i| number_text(i.hourly_rate))
            .unwrap_or_default(),
        currency: inputs.map_or_else(|| DEFAULT_CURRENCY.to_string(), |i| i.currency.clone()),
        default_minutes_saved: inputs
            .map(|i| number_text(i.default_minutes_saved))
            .unwrap_or_default(),
        months: inputs.map_or(DEFAULT_MONTHS, |i| i.months).to_string(),
        tool_minutes: tools
            .iter()
            .map(|t| (t.tool.clone(), own(&t.tool)))
            .collect(),
    }
}

/// The admins' form for one server. A refusal is shown inside the form; a save bumps
/// `saved` (the report is computed again) and names the server in `last_saved`.
#[component]
pub fn InputsForm(
    server: String,
    tools: Vec<ToolRoi>,
    inputs: Option<RoiInputs>,
    saved: RwSignal<u32>,
    last_saved: RwSignal<Option<String>>,
) -> impl IntoView {
    let save = ServerAction::<SaveRoiInputs>::new();
    let initial = initial_form(inputs.as_ref(), &tools);
    let development_hours = RwSignal::new(initial.development_hours);
    let hourly_rate = RwSignal::new(initial.hourly_rate);
    let currency = RwSignal::new(initial.currency);
    let default_minutes_saved = RwSignal::new(initial.default_minutes_saved);
    let months = RwSignal::new(initial.months);
    let tool_minutes: Vec<(String, RwSignal<String>)> = initial
        .tool_minutes
        .into_iter()
        .map(|(tool, minutes)| (tool, RwSignal::new(minutes)))
        .collect();
    let tool_signals = tool_minutes.clone();
    let target = server.clone();
    Effect::new(move |_| {
        if let Some(Ok(())) = save.value().get() {
            last_saved.set(Some(target.clone()));
            saved.update(|n| *n += 1);
        }
    });
    let submit_server = server.clone();
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        save.dispatch(SaveRoiInputs {
            server: submit_server.clone(),
            form: RoiInputsForm {
                development_hours: development_hours.get_untracked(),
                hourly_rate: hourly_rate.get_untracked(),
                currency: currency.get_untracked(),
                default_minutes_saved: default_minutes_saved.get_untracked(),
                months: months.get_untracked(),
                tool_minutes: tool_signals
                    .iter()
                    .map(|(tool, minutes)| (tool.clone(), minutes.get_untracked()))
                    .collect(),
            },
        });
    };
    let field =
        |label: &'static str, name: &'static str, value: RwSignal<String>, hint: &'static str| {
            view! {
                <label>
                    {label}
                    <input
                        name=name
                        inputmode="decimal"
                        autocomplete="off"
                        placeholder=hint
                        data-testid=format!("input-{name}")
                        value=value.get_untracked()
                        on:input=move |event| value.set(event_target_value(&event))
                    />
                </label>
            }
        };
    let tool_fields = (!tool_minutes.is_empty()).then(|| {
        view! {
            <fieldset class="roi-tool-minutes">
                <legend>"Minutes saved per use, per tool (empty: the default)"</legend>
                {tool_minutes
                    .into_iter()
                    .map(|(tool, value)| {
                        view! {
                            <label>
                                <code>{tool.clone()}</code>
                                <input
                                    name=format!("minutes-{tool}")
                                    inputmode="decimal"
                                    autocomplete="off"
                                    placeholder="default"
                                    data-testid=format!("input-minutes-{tool}")
                                    value=value.get_untracked()
                                    on:input=move |event| value.set(event_target_value(&event))
                                />
                            </label>
                        }
                    })
                    .collect_view()}
            </fieldset>
        }
    });
    view! {
        <form class="roi-inputs no-print" data-testid="roi-inputs" on:submit=on_submit>
            <h3>"Inputs"</h3>
            <div class="filters">
                {field("Development hours", "development_hours", development_hours, "e.g. 40")}
                {field("Hourly rate", "hourly_rate", hourly_rate, "e.g. 85")}
                <label>
                    "Currency"
                    <input
                        name="currency"
                        maxlength="3"
                        size="4"
                        autocomplete="off"
                        data-testid="input-currency"
                        value=currency.get_untracked()
                        on:input=move |event| currency.set(event_target_value(&event))
                    />
                </label>
                {field("Minutes saved per use (default)", "default_minutes_saved", default_minutes_saved, "e.g. 5")}
                {field("Months to evaluate", "months", months, "1 to 120")}
            </div>
            {tool_fields}
            <button type="submit" data-testid="save-inputs" disabled=move || save.pending().get()>
                "Save inputs"
            </button>
            {move || {
                save.value()
                    .get()
                    .and_then(Result::err)
                    .map(|error| view! { <div data-testid="inputs-error"><ErrorNotice error /></div> })
            }}
        </form>
    }
}

/// The inputs as text, for those who may not edit them.
#[component]
pub fn InputsSummary(inputs: RoiInputs) -> impl IntoView {
    let tools = if inputs.tool_minutes.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = inputs
            .tool_minutes
            .iter()
            .map(|t| format!("{} {} min", t.tool, format_grouped(t.minutes_saved, 2)))
            .collect();
        format!("; per tool: {}", list.join(", "))
    };
    view! {
        <p class="muted small" data-testid="inputs-summary">
            {format!(
                "Inputs: {} development hours at {} {}/h; {} minutes saved per use{tools}; evaluated over {} months.",
                format_grouped(inputs.development_hours, 2),
                format_grouped(inputs.hourly_rate, 2),
                inputs.currency,
                format_grouped(inputs.default_minutes_saved, 2),
                inputs.months,
            )}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ToolMinutes;

    fn tool(name: &str) -> ToolRoi {
        ToolRoi {
            tool: name.into(),
            uses: 0,
            uses_per_month: 0.0,
            minutes_saved: 0.0,
            minutes_is_default: true,
            hours_saved_per_month: 0.0,
        }
    }

    #[test]
    fn a_server_without_inputs_starts_blank_with_defaults() {
        let form = initial_form(None, &[tool("echo")]);
        assert_eq!(form.development_hours, "");
        assert_eq!(form.currency, "EUR");
        assert_eq!(form.months, "12");
        assert_eq!(form.tool_minutes, vec![("echo".to_string(), String::new())]);
    }

    #[test]
    fn stored_inputs_fill_the_form_as_typed() {
        let inputs = RoiInputs {
            development_hours: 40.0,
            hourly_rate: 85.5,
            currency: "USD".into(),
            default_minutes_saved: 0.25,
            months: 24,
            tool_minutes: vec![ToolMinutes {
                tool: "echo".into(),
                minutes_saved: 3.0,
            }],
        };
        let form = initial_form(Some(&inputs), &[tool("echo"), tool("add")]);
        assert_eq!(
            (form.development_hours.as_str(), form.hourly_rate.as_str()),
            ("40", "85.5")
        );
        assert_eq!(form.default_minutes_saved, "0.25");
        assert_eq!(form.months, "24");
        assert_eq!(
            form.tool_minutes,
            vec![
                ("echo".to_string(), "3".to_string()),
                ("add".to_string(), String::new())
            ]
        );
        assert_eq!(number_text(1e-7), "0.0000001");
    }
}
