//! ROI reports: measured usage turned into return on investment, and how their figures read.
//!
//! The server computes every figure (unrounded); the page and the CSV export format them
//! with the functions here, so that both show the same digits.

use serde::{Deserialize, Serialize};

/// The measurement windows the ROI page offers, in days.
pub const ROI_WINDOWS: [u32; 3] = [7, 30, 90];

/// The window shown when none is asked for.
pub const DEFAULT_ROI_WINDOW: u32 = 30;

/// Days in an average month (365.25 / 12 ≈ 30.44): measured uses are projected to this.
pub const DAYS_PER_MONTH: f64 = 30.44;

/// A server's ROI inputs as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoiInputs {
    /// Hours it took (or takes) to build and maintain the server.
    pub development_hours: f64,
    /// Cost of one hour of work, in `currency`.
    pub hourly_rate: f64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// Minutes one use saves, for tools without their own figure.
    pub default_minutes_saved: f64,
    /// How many months the report evaluates (1..=120).
    pub months: u32,
    /// Tools whose minutes saved per use differ from the default, by tool name.
    pub tool_minutes: Vec<ToolMinutes>,
}

/// Minutes saved per use of one tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolMinutes {
    /// The tool's upstream name (without the `<server>__` prefix).
    pub tool: String,
    /// Minutes one use saves.
    pub minutes_saved: f64,
}

/// A server's ROI inputs as typed on the page; the server parses and validates them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoiInputsForm {
    /// Development hours.
    pub development_hours: String,
    /// Hourly rate.
    pub hourly_rate: String,
    /// Currency code.
    pub currency: String,
    /// Default minutes saved per use.
    pub default_minutes_saved: String,
    /// Months to evaluate.
    pub months: String,
    /// Per tool: minutes saved per use (empty: the server's default).
    pub tool_minutes: Vec<(String, String)>,
}

/// Inputs for a server not yet in the fleet (the planning mode), as typed on the page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoiPlanForm {
    /// What the proposed server would be called.
    pub name: String,
    /// Development hours.
    pub development_hours: String,
    /// Hourly rate.
    pub hourly_rate: String,
    /// Currency code.
    pub currency: String,
    /// Minutes saved per use.
    pub minutes_saved: String,
    /// Uses per person per month.
    pub uses_per_person: String,
    /// People who would use it.
    pub team_size: String,
    /// Months to evaluate.
    pub months: String,
}

/// ROI %, or why there is none.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum RoiPercent {
    /// (value over the months − development cost) / development cost × 100.
    Percent(f64),
    /// Development cost is zero: any value is an infinite return, so no percentage.
    NoDevelopmentCost,
}

/// When the value saved has paid for the development cost.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum BreakEven {
    /// After this many months (development cost / monthly value).
    AfterMonths(f64),
    /// There is no cost to recover.
    Immediately,
    /// Nothing is saved per month, so the cost is never recovered.
    Never,
}

/// The formula's results for one server (or the fleet, or a plan), unrounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoiFigures {
    /// ISO 4217 code of every amount here.
    pub currency: String,
    /// Months evaluated.
    pub months: u32,
    /// Development hours × hourly rate.
    pub development_cost: f64,
    /// Hours saved per month by all uses.
    pub hours_saved_per_month: f64,
    /// Hours saved per month × hourly rate.
    pub monthly_value: f64,
    /// Value over the months evaluated.
    pub total_value: f64,
    /// Total value − development cost.
    pub net_value: f64,
    /// ROI %.
    pub roi: RoiPercent,
    /// Break-even.
    pub break_even: BreakEven,
}

/// What span of time measured uses were counted over.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum CoveredSpan {
    /// The whole window.
    Window,
    /// Since the server's first recorded call, which is inside the window.
    SinceFirstCall {
        /// When that call arrived (Unix ms).
        first_call_at_ms: i64,
    },
    /// Calls began less than a day ago; one day is assumed, so that a few minutes of
    /// traffic do not project to thousands of uses a month.
    MinimumDay {
        /// When the first call arrived (Unix ms).
        first_call_at_ms: i64,
    },
    /// The server has no recorded calls.
    NoCalls,
}

/// Measured uses of a server or a tool, projected to a month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredUsage {
    /// The window asked for, in days.
    pub window_days: u32,
    /// The days actually counted over (see `span`).
    pub covered_days: f64,
    /// Why `covered_days` is what it is.
    pub span: CoveredSpan,
    /// Successful calls in the covered span.
    pub uses: u64,
    /// `uses` × 30.44 / `covered_days`.
    pub uses_per_month: f64,
}

impl MeasuredUsage {
    /// How the span reads next to the figure, e.g. `last 30 days`.
    pub fn span_text(&self) -> String {
        match self.span {
            CoveredSpan::Window | CoveredSpan::NoCalls => {
                format!("last {} days", self.window_days)
            }
            CoveredSpan::SinceFirstCall { first_call_at_ms } => format!(
                "{} days since the first call ({} UTC), projected",
                format_fixed(self.covered_days, 1),
                crate::wire::format_timestamp_utc(first_call_at_ms)
            ),
            CoveredSpan::MinimumDay { .. } => {
                "under a day of calls, counted as 1 day, projected".to_string()
            }
        }
    }
}

/// One tool's measured uses and what they save.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolRoi {
    /// The tool's upstream name.
    pub tool: String,
    /// Successful calls in the server's covered span.
    pub uses: u64,
    /// Projected uses per month.
    pub uses_per_month: f64,
    /// Minutes one use saves (the tool's own figure, or the server's default).
    pub minutes_saved: f64,
    /// Whether `minutes_saved` is the server's default.
    pub minutes_is_default: bool,
    /// Uses per month × minutes saved / 60.
    pub hours_saved_per_month: f64,
}

/// One server's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerRoi {
    /// The server.
    pub server: String,
    /// Whether the fleet has it now (a removed server can still have calls in the window).
    pub in_fleet: bool,
    /// Its measured uses.
    pub usage: MeasuredUsage,
    /// Per tool: the catalog's tools and any other tool with calls, by name.
    pub tools: Vec<ToolRoi>,
    /// Its inputs, if an admin has set them.
    pub inputs: Option<RoiInputs>,
    /// Who last changed the inputs, and when (Unix ms).
    pub updated: Option<(String, i64)>,
    /// The formula's results (needs inputs).
    pub figures: Option<RoiFigures>,
    /// 1 for the best ROI; `None` without inputs.
    pub rank: Option<u32>,
    /// Cumulative value against cost over the months, as SVG markup drawn on the server.
    pub chart_svg: Option<String>,
}

/// The fleet's totals in one currency (servers with inputs in that currency).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetRoi {
    /// How many servers these totals cover.
    pub servers: u32,
    /// Their projected uses per month.
    pub uses_per_month: f64,
    /// The sums. `months` is the longest of theirs; each server's value counts over its
    /// own months.
    pub figures: RoiFigures,
    /// Cumulative value against cost, as SVG markup.
    pub chart_svg: Option<String>,
}

/// The ROI report: every server, ranked, and the fleet's totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoiReport {
    /// The window asked for, in days.
    pub window_days: u32,
    /// When it was computed (Unix ms).
    pub generated_at_ms: i64,
    /// Servers with inputs by rank, then those without by name.
    pub servers: Vec<ServerRoi>,
    /// Totals, one per currency in use.
    pub fleet: Vec<FleetRoi>,
}

/// The planning mode's result for a proposed server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoiPlan {
    /// The proposed server's name.
    pub name: String,
    /// Uses per person per month × team size.
    pub uses_per_month: f64,
    /// The formula's results.
    pub figures: RoiFigures,
    /// Cumulative value against cost, as SVG markup.
    pub chart_svg: Option<String>,
}

/// Rounds half away from zero to `decimals` places (what the page and the CSV show).
pub fn round_to(value: f64, decimals: u32) -> f64 {
    let scale = 10f64.powi(decimals as i32);
    (value * scale).round() / scale
}

/// A number rounded to `decimals` places without grouping, e.g. `1234.50` (CSV cells).
pub fn format_fixed(value: f64, decimals: u32) -> String {
    let rounded = round_to(value, decimals);
    // Avoid "-0.00" for tiny negatives that round to zero.
    let rounded = if rounded == 0.0 { 0.0 } else { rounded };
    format!("{rounded:.prec$}", prec = decimals as usize)
}

/// A number rounded to `decimals` places with thousands separated by commas, e.g.
/// `12,345.60`.
pub fn format_grouped(value: f64, decimals: u32) -> String {
    let fixed = format_fixed(value, decimals);
    let (sign, unsigned) = match fixed.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", fixed.as_str()),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

/// An amount with its currency, e.g. `12,345.60 EUR`.
pub fn format_money(value: f64, currency: &str) -> String {
    format!("{} {currency}", format_grouped(value, 2))
}

impl RoiPercent {
    /// How it reads: `813.2 %`, or `no development cost`.
    pub fn text(&self) -> String {
        match self {
            RoiPercent::Percent(percent) => format!("{} %", format_grouped(*percent, 1)),
            RoiPercent::NoDevelopmentCost => "no development cost".to_string(),
        }
    }

    /// The number for sorting and CSV cells (`None` when there is no percentage).
    pub fn percent(&self) -> Option<f64> {
        match self {
            RoiPercent::Percent(percent) => Some(*percent),
            RoiPercent::NoDevelopmentCost => None,
        }
    }
}

impl BreakEven {
    /// How it reads: `1.3 months`, `immediately`, or `no break-even`.
    pub fn text(&self) -> String {
        match self {
            BreakEven::AfterMonths(months) => format!("{} months", format_grouped(*months, 1)),
            BreakEven::Immediately => "immediately".to_string(),
            BreakEven::Never => "no break-even".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_half_away_from_zero() {
        assert_eq!(format_fixed(1.25, 1), "1.3");
        assert_eq!(format_fixed(-1.25, 1), "-1.3");
        assert_eq!(format_fixed(2.0 / 3.0, 2), "0.67");
        assert_eq!(format_fixed(-0.001, 2), "0.00");
        assert_eq!(format_fixed(152.2, 1), "152.2");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(format_grouped(0.0, 2), "0.00");
        assert_eq!(format_grouped(999.999, 2), "1,000.00");
        assert_eq!(format_grouped(1234567.891, 2), "1,234,567.89");
        assert_eq!(format_grouped(-12345.0, 1), "-12,345.0");
        assert_eq!(format_grouped(123456.0, 0), "123,456");
        assert_eq!(format_money(7305.6, "EUR"), "7,305.60 EUR");
    }

    #[test]
    fn figures_without_a_number_say_why() {
        assert_eq!(RoiPercent::Percent(813.2).text(), "813.2 %");
        assert_eq!(RoiPercent::Percent(-100.0).text(), "-100.0 %");
        assert_eq!(RoiPercent::NoDevelopmentCost.text(), "no development cost");
        assert_eq!(RoiPercent::NoDevelopmentCost.percent(), None);
        assert_eq!(BreakEven::AfterMonths(1.314).text(), "1.3 months");
        assert_eq!(BreakEven::Never.text(), "no break-even");
        assert_eq!(BreakEven::Immediately.text(), "immediately");
    }

    #[test]
    fn spans_say_how_uses_were_projected() {
        let usage = |span, covered_days| MeasuredUsage {
            window_days: 30,
            covered_days,
            span,
            uses: 3,
            uses_per_month: 1.0,
        };
        assert_eq!(usage(CoveredSpan::Window, 30.0).span_text(), "last 30 days");
        assert_eq!(
            usage(
                CoveredSpan::SinceFirstCall {
                    first_call_at_ms: 0
                },
                2.5
            )
            .span_text(),
            "2.5 days since the first call (1970-01-01 00:00:00 UTC), projected"
        );
        assert!(
            usage(
                CoveredSpan::MinimumDay {
                    first_call_at_ms: 0
                },
                1.0
            )
            .span_text()
            .contains("counted as 1 day")
        );
    }
}
