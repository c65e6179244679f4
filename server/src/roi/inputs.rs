//! Parsing and validating ROI inputs as typed on the page. Every refusal names the field
//! and says what is expected, so that the page can show it next to the form.

use app::wire::{RoiInputs, RoiInputsForm, RoiPlanForm, ToolMinutes};
use std::collections::BTreeSet;

/// The most development hours accepted (about 50 person-years).
pub const MAX_DEVELOPMENT_HOURS: f64 = 100_000.0;
/// The highest hourly rate accepted.
pub const MAX_HOURLY_RATE: f64 = 100_000.0;
/// The most minutes one use may save: a week.
pub const MAX_MINUTES_SAVED: f64 = 10_080.0;
/// The longest evaluation, in months (ten years).
pub const MAX_MONTHS: u32 = 120;
/// The most uses per person per month accepted in the planning mode.
pub const MAX_USES_PER_PERSON: f64 = 100_000.0;
/// The largest team accepted in the planning mode.
pub const MAX_TEAM_SIZE: u32 = 1_000_000;
/// The longest tool or plan name accepted.
const MAX_NAME_CHARS: usize = 128;

/// A refused input: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InputError {
    /// The field as the page labels it.
    pub field: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

fn refuse(field: &str, problem: String) -> InputError {
    InputError {
        field: field.to_string(),
        problem,
    }
}

/// A finite number from 0 to `max`.
fn amount(field: &str, text: &str, max: f64) -> Result<f64, InputError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(refuse(field, "required: enter a number".into()));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| refuse(field, format!("must be a number, got {text:?}")))?;
    if !value.is_finite() {
        return Err(refuse(
            field,
            format!("must be a finite number, got {text:?}"),
        ));
    }
    if value < 0.0 {
        return Err(refuse(field, format!("must not be negative (got {text})")));
    }
    if value > max {
        return Err(refuse(field, format!("must be at most {max} (got {text})")));
    }
    Ok(value)
}

/// A whole number from `min` to `max`.
fn whole(field: &str, text: &str, min: u32, max: u32) -> Result<u32, InputError> {
    let text = text.trim();
    let expected = || format!("must be a whole number from {min} to {max}, got {text:?}");
    let value: i64 = text.parse().map_err(|_| refuse(field, expected()))?;
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| refuse(field, expected()))
}

/// An ISO 4217 style code: three letters, upper-cased.
fn currency(text: &str) -> Result<String, InputError> {
    let code = text.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(refuse(
            "currency",
            format!(
                "must be a three-letter code such as EUR or USD, got {:?}",
                text.trim()
            ),
        ))
    }
}

/// A name: not empty, not too long, no control characters.
fn name(field: &str, text: &str) -> Result<String, InputError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(refuse(field, "required".into()));
    }
    if text.chars().count() > MAX_NAME_CHARS || text.chars().any(char::is_control) {
        return Err(refuse(
            field,
            format!("must be at most {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(text.to_string())
}

/// A server's inputs from the page's form. A tool's empty minutes mean "the default".
pub fn parse_inputs(form: &RoiInputsForm) -> Result<RoiInputs, InputError> {
    let development_hours = amount(
        "development hours",
        &form.development_hours,
        MAX_DEVELOPMENT_HOURS,
    )?;
    let hourly_rate = amount("hourly rate", &form.hourly_rate, MAX_HOURLY_RATE)?;
    let currency = currency(&form.currency)?;
    let default_minutes_saved = amount(
        "minutes saved per use (default)",
        &form.default_minutes_saved,
        MAX_MINUTES_SAVED,
    )?;
    let months = whole("months to evaluate", &form.months, 1, MAX_MONTHS)?;
    let mut seen = BTreeSet::new();
    let mut tool_minutes = Vec::new();
    for (tool, minutes) in &form.tool_minutes {
        let tool = name("tool", tool)?;
        if !seen.insert(tool.clone()) {
            return Err(refuse("tool", format!("{tool} is listed twice")));
        }
        if minutes.trim().is_empty() {
            continue;
        }
        let field = format!("minutes saved per use of {tool}");
        tool_minutes.push(ToolMinutes {
            minutes_saved: amount(&field, minutes, MAX_MINUTES_SAVED)?,
            tool,
        });
    }
    Ok(RoiInputs {
        development_hours,
        hourly_rate,
        currency,
        default_minutes_saved,
        months,
        tool_minutes,
    })
}

/// A proposed server's inputs (the planning mode), validated.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanInputs {
    /// The proposed server's name.
    pub name: String,
    /// Development hours.
    pub development_hours: f64,
    /// Hourly rate.
    pub hourly_rate: f64,
    /// Currency code.
    pub currency: String,
    /// Minutes saved per use.
    pub minutes_saved: f64,
    /// Uses per person per month.
    pub uses_per_person: f64,
    /// People using it.
    pub team_size: u32,
    /// Months to evaluate.
    pub months: u32,
}

impl PlanInputs {
    /// Uses per person per month × team size.
    pub fn uses_per_month(&self) -> f64 {
        self.uses_per_person * f64::from(self.team_size)
    }
}

/// The planning mode's inputs from the page's form.
pub fn parse_plan(form: &RoiPlanForm) -> Result<PlanInputs, InputError> {
    Ok(PlanInputs {
        name: name("proposed server", &form.name)?,
        development_hours: amount(
            "development hours",
            &form.development_hours,
            MAX_DEVELOPMENT_HOURS,
        )?,
        hourly_rate: amount("hourly rate", &form.hourly_rate, MAX_HOURLY_RATE)?,
        currency: currency(&form.currency)?,
        minutes_saved: amount(
            "minutes saved per use",
            &form.minutes_saved,
            MAX_MINUTES_SAVED,
        )?,
        uses_per_person: amount(
            "uses per person per month",
            &form.uses_per_person,
            MAX_USES_PER_PERSON,
        )?,
        team_size: whole("team size", &form.team_size, 0, MAX_TEAM_SIZE)?,
        months: whole("months to evaluate", &form.months, 1, MAX_MONTHS)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> RoiInputsForm {
        RoiInputsForm {
            development_hours: "40".into(),
            hourly_rate: " 85.5 ".into(),
            currency: "eur".into(),
            default_minutes_saved: "5".into(),
            months: "12".into(),
            tool_minutes: vec![("query".into(), "2.5".into()), ("lookup".into(), "".into())],
        }
    }

    /// One edit of the form.
    type Change = Box<dyn FnOnce(&mut RoiInputsForm)>;

    fn refused(change: impl FnOnce(&mut RoiInputsForm)) -> String {
        let mut form = form();
        change(&mut form);
        parse_inputs(&form).unwrap_err().to_string()
    }

    #[test]
    fn valid_inputs_are_parsed_with_empty_tool_minutes_meaning_the_default() {
        let inputs = parse_inputs(&form()).unwrap();
        assert_eq!(inputs.development_hours, 40.0);
        assert_eq!(inputs.hourly_rate, 85.5);
        assert_eq!(inputs.currency, "EUR");
        assert_eq!(inputs.default_minutes_saved, 5.0);
        assert_eq!(inputs.months, 12);
        assert_eq!(
            inputs.tool_minutes,
            vec![ToolMinutes {
                tool: "query".into(),
                minutes_saved: 2.5
            }]
        );
    }

    #[test]
    fn zero_is_a_valid_amount_and_the_limits_are_inclusive() {
        let inputs = parse_inputs(&RoiInputsForm {
            development_hours: "0".into(),
            hourly_rate: "100000".into(),
            default_minutes_saved: "10080".into(),
            months: "120".into(),
            ..form()
        })
        .unwrap();
        assert_eq!(
            (inputs.development_hours, inputs.hourly_rate, inputs.months),
            (0.0, 100_000.0, 120)
        );
    }

    #[test]
    fn each_bad_value_is_refused_naming_its_field() {
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|f| f.development_hours = "-5".into()),
                "development hours: must not be negative (got -5)",
            ),
            (
                Box::new(|f| f.development_hours = "100001".into()),
                "development hours: must be at most 100000 (got 100001)",
            ),
            (
                Box::new(|f| f.development_hours = "ten".into()),
                "development hours: must be a number, got \"ten\"",
            ),
            (
                Box::new(|f| f.development_hours = " ".into()),
                "development hours: required: enter a number",
            ),
            (
                Box::new(|f| f.hourly_rate = "NaN".into()),
                "hourly rate: must be a finite number, got \"NaN\"",
            ),
            (
                Box::new(|f| f.hourly_rate = "inf".into()),
                "hourly rate: must be a finite number, got \"inf\"",
            ),
            (
                Box::new(|f| f.hourly_rate = "250000".into()),
                "hourly rate: must be at most 100000 (got 250000)",
            ),
            (
                Box::new(|f| f.currency = "euro".into()),
                "currency: must be a three-letter code such as EUR or USD, got \"euro\"",
            ),
            (
                Box::new(|f| f.currency = "<s>".into()),
                "currency: must be a three-letter code such as EUR or USD, got \"<s>\"",
            ),
            (
                Box::new(|f| f.default_minutes_saved = "10081".into()),
                "minutes saved per use (default): must be at most 10080 (got 10081)",
            ),
            (
                Box::new(|f| f.months = "0".into()),
                "months to evaluate: must be a whole number from 1 to 120, got \"0\"",
            ),
            (
                Box::new(|f| f.months = "121".into()),
                "months to evaluate: must be a whole number from 1 to 120, got \"121\"",
            ),
            (
                Box::new(|f| f.months = "1.5".into()),
                "months to evaluate: must be a whole number from 1 to 120, got \"1.5\"",
            ),
            (
                Box::new(|f| f.months = "-3".into()),
                "months to evaluate: must be a whole number from 1 to 120, got \"-3\"",
            ),
            (
                Box::new(|f| f.tool_minutes[0].1 = "-1".into()),
                "minutes saved per use of query: must not be negative (got -1)",
            ),
            (
                Box::new(|f| f.tool_minutes.push(("query".into(), "1".into()))),
                "tool: query is listed twice",
            ),
            (
                Box::new(|f| f.tool_minutes.push(("".into(), "1".into()))),
                "tool: required",
            ),
        ];
        for (change, expected) in cases {
            assert_eq!(refused(change), expected);
        }
    }

    #[test]
    fn plans_multiply_uses_per_person_by_the_team() {
        let form = RoiPlanForm {
            name: " new search ".into(),
            development_hours: "80".into(),
            hourly_rate: "100".into(),
            currency: "usd".into(),
            minutes_saved: "3".into(),
            uses_per_person: "12.5".into(),
            team_size: "8".into(),
            months: "24".into(),
        };
        let plan = parse_plan(&form).unwrap();
        assert_eq!(plan.name, "new search");
        assert_eq!(plan.currency, "USD");
        assert_eq!(plan.uses_per_month(), 100.0);
        let bad = RoiPlanForm {
            team_size: "-2".into(),
            ..form.clone()
        };
        assert_eq!(
            parse_plan(&bad).unwrap_err().to_string(),
            "team size: must be a whole number from 0 to 1000000, got \"-2\""
        );
        let unnamed = RoiPlanForm {
            name: "".into(),
            ..form
        };
        assert_eq!(
            parse_plan(&unnamed).unwrap_err().to_string(),
            "proposed server: required"
        );
    }
}
