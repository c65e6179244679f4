//! The seeds' ROI formula, as pure functions:
//!
//! - development cost = development hours × hourly rate
//! - monthly value = hours saved per use × uses per month × hourly rate
//! - ROI % = (monthly value × months − development cost) / development cost × 100
//! - break-even months = development cost / monthly value
//!
//! Inputs are validated before they get here (finite, not negative, bounded), so every
//! result is finite; the two divisions by zero are variants, never NaN or infinity.

use app::wire::{BreakEven, RoiFigures, RoiPercent};
use std::cmp::Ordering;

/// What the formula needs for one server (or one plan).
#[derive(Clone, Debug, PartialEq)]
pub struct Economics<'a> {
    /// Hours to build the server.
    pub development_hours: f64,
    /// Cost of one hour, in `currency`.
    pub hourly_rate: f64,
    /// ISO 4217 code.
    pub currency: &'a str,
    /// Hours saved per month by all uses (Σ uses per month × hours saved per use).
    pub hours_saved_per_month: f64,
    /// Months to evaluate.
    pub months: u32,
}

/// Development hours × hourly rate.
pub fn development_cost(development_hours: f64, hourly_rate: f64) -> f64 {
    development_hours * hourly_rate
}

/// Hours saved per use × uses per month × hourly rate.
pub fn monthly_value(hours_saved_per_use: f64, uses_per_month: f64, hourly_rate: f64) -> f64 {
    hours_saved_per_use * uses_per_month * hourly_rate
}

/// (Total value − development cost) / development cost × 100, where the total value is
/// monthly value × months; no percentage when nothing was spent.
pub fn roi_percent(total_value: f64, development_cost: f64) -> RoiPercent {
    if development_cost > 0.0 {
        RoiPercent::Percent((total_value - development_cost) / development_cost * 100.0)
    } else {
        RoiPercent::NoDevelopmentCost
    }
}

/// Development cost / monthly value; immediately when nothing was spent, never when
/// nothing is saved.
pub fn break_even(development_cost: f64, monthly_value: f64) -> BreakEven {
    if development_cost <= 0.0 {
        BreakEven::Immediately
    } else if monthly_value > 0.0 {
        BreakEven::AfterMonths(development_cost / monthly_value)
    } else {
        BreakEven::Never
    }
}

/// Every figure of one server or plan.
pub fn evaluate(economics: &Economics<'_>) -> RoiFigures {
    let cost = development_cost(economics.development_hours, economics.hourly_rate);
    // Hours saved per month already sums hours per use × uses over the tools.
    let monthly = monthly_value(1.0, economics.hours_saved_per_month, economics.hourly_rate);
    let total = monthly * f64::from(economics.months);
    RoiFigures {
        currency: economics.currency.to_string(),
        months: economics.months,
        development_cost: cost,
        hours_saved_per_month: economics.hours_saved_per_month,
        monthly_value: monthly,
        total_value: total,
        net_value: total - cost,
        roi: roi_percent(total, cost),
        break_even: break_even(cost, monthly),
    }
}

/// The sums of several servers' figures in one currency: costs, hours and values add up
/// (each server's total over its own months); ROI and break-even follow from the sums.
/// `None` for no figures.
pub fn fleet_totals<'a>(figures: impl IntoIterator<Item = &'a RoiFigures>) -> Option<RoiFigures> {
    let mut figures = figures.into_iter().peekable();
    let currency = figures.peek()?.currency.clone();
    let mut sum = RoiFigures {
        currency,
        months: 0,
        development_cost: 0.0,
        hours_saved_per_month: 0.0,
        monthly_value: 0.0,
        total_value: 0.0,
        net_value: 0.0,
        roi: RoiPercent::NoDevelopmentCost,
        break_even: BreakEven::Immediately,
    };
    for f in figures {
        sum.months = sum.months.max(f.months);
        sum.development_cost += f.development_cost;
        sum.hours_saved_per_month += f.hours_saved_per_month;
        sum.monthly_value += f.monthly_value;
        sum.total_value += f.total_value;
    }
    sum.net_value = sum.total_value - sum.development_cost;
    sum.roi = roi_percent(sum.total_value, sum.development_cost);
    sum.break_even = break_even(sum.development_cost, sum.monthly_value);
    Some(sum)
}

/// Cumulative value at the end of each month `0..=months`, for `monthly_value` earned
/// during the first `earning_months` of them.
pub fn cumulative_value(monthly_value: f64, earning_months: u32, months: u32) -> Vec<f64> {
    (0..=months)
        .map(|m| monthly_value * f64::from(m.min(earning_months)))
        .collect()
}

/// Best ROI first: no development cost beats any percentage, higher percentages beat
/// lower ones.
pub fn better_roi(a: &RoiPercent, b: &RoiPercent) -> Ordering {
    match (a, b) {
        (RoiPercent::NoDevelopmentCost, RoiPercent::NoDevelopmentCost) => Ordering::Equal,
        (RoiPercent::NoDevelopmentCost, _) => Ordering::Less,
        (_, RoiPercent::NoDevelopmentCost) => Ordering::Greater,
        (RoiPercent::Percent(a), RoiPercent::Percent(b)) => b.total_cmp(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn economics(hours: f64, rate: f64, saved_per_month: f64, months: u32) -> Economics<'static> {
        Economics {
            development_hours: hours,
            hourly_rate: rate,
            currency: "EUR",
            hours_saved_per_month: saved_per_month,
            months,
        }
    }

    fn percent(figures: &RoiFigures) -> f64 {
        figures.roi.percent().expect("a percentage")
    }

    #[test]
    fn a_hand_worked_case() {
        // 40 h × 50 EUR = 2000 EUR to build. 200 uses a month saving 6 minutes each =
        // 20 h a month = 1000 EUR a month. Over 12 months: 12000 EUR; ROI = 10000 / 2000
        // = 500 %; break-even after 2000 / 1000 = 2 months.
        let hours_per_use = 6.0 / 60.0;
        assert_eq!(development_cost(40.0, 50.0), 2000.0);
        assert!((monthly_value(hours_per_use, 200.0, 50.0) - 1000.0).abs() < 1e-9);
        let f = evaluate(&economics(40.0, 50.0, 200.0 * hours_per_use, 12));
        assert_eq!(f.development_cost, 2000.0);
        assert!((f.monthly_value - 1000.0).abs() < 1e-9);
        assert!((f.total_value - 12000.0).abs() < 1e-9);
        assert!((f.net_value - 10000.0).abs() < 1e-9);
        assert!((percent(&f) - 500.0).abs() < 1e-9);
        assert!(matches!(f.break_even, BreakEven::AfterMonths(m) if (m - 2.0).abs() < 1e-12));
        assert_eq!((f.currency.as_str(), f.months), ("EUR", 12));
    }

    #[test]
    fn a_loss_is_a_negative_roi_and_a_late_break_even() {
        // 100 h × 80 = 8000; 10 h saved a month × 80 = 800 a month; 6 months: 4800.
        // ROI = (4800 − 8000) / 8000 = −40 %; break-even after 10 months (beyond the 6).
        let f = evaluate(&economics(100.0, 80.0, 10.0, 6));
        assert!((percent(&f) + 40.0).abs() < 1e-9);
        assert!((f.net_value + 3200.0).abs() < 1e-9);
        assert_eq!(f.break_even, BreakEven::AfterMonths(10.0));
    }

    #[test]
    fn zero_usage_never_breaks_even_and_loses_everything() {
        let f = evaluate(&economics(10.0, 100.0, 0.0, 12));
        assert_eq!(f.break_even, BreakEven::Never);
        assert_eq!(f.roi, RoiPercent::Percent(-100.0));
        assert_eq!((f.monthly_value, f.total_value), (0.0, 0.0));
        assert_eq!(break_even(1000.0, 0.0), BreakEven::Never);
    }

    #[test]
    fn zero_development_cost_has_no_percentage_and_breaks_even_at_once() {
        for (hours, rate) in [(0.0, 100.0), (10.0, 0.0)] {
            let f = evaluate(&economics(hours, rate, 5.0, 12));
            assert_eq!(f.roi, RoiPercent::NoDevelopmentCost);
            assert_eq!(f.break_even, BreakEven::Immediately);
        }
        // Nothing spent and nothing saved: still no NaN anywhere.
        let f = evaluate(&economics(0.0, 0.0, 0.0, 1));
        assert_eq!(f.roi, RoiPercent::NoDevelopmentCost);
        assert_eq!(f.break_even, BreakEven::Immediately);
        assert!(f.total_value.is_finite() && f.net_value.is_finite());
    }

    #[test]
    fn results_stay_finite_at_the_largest_valid_inputs() {
        // 100000 h × 100000/h, a week saved per use at a billion uses: large but finite.
        let f = evaluate(&economics(100_000.0, 100_000.0, 1e9 * 168.0, 120));
        assert!(f.development_cost.is_finite() && f.total_value.is_finite());
        assert!(percent(&f).is_finite());
    }

    #[test]
    fn fleet_totals_add_costs_and_values_and_recompute_the_ratios() {
        // A: cost 2000, 1000/month × 12 = 12000. B: cost 8000, 800/month × 6 = 4800.
        let a = evaluate(&economics(40.0, 50.0, 20.0, 12));
        let b = evaluate(&economics(100.0, 80.0, 10.0, 6));
        let sum = fleet_totals([&a, &b]).unwrap();
        assert!((sum.development_cost - 10_000.0).abs() < 1e-9);
        assert!((sum.monthly_value - 1800.0).abs() < 1e-9);
        assert!((sum.total_value - 16_800.0).abs() < 1e-9);
        assert!((sum.net_value - 6_800.0).abs() < 1e-9);
        assert!((percent(&sum) - 68.0).abs() < 1e-9);
        assert!(
            matches!(sum.break_even, BreakEven::AfterMonths(m) if (m - 10_000.0 / 1800.0).abs() < 1e-12)
        );
        assert_eq!(sum.months, 12);
        assert_eq!(fleet_totals([]), None);
    }

    #[test]
    fn cumulative_value_stops_growing_after_the_earning_months() {
        assert_eq!(cumulative_value(10.0, 3, 3), vec![0.0, 10.0, 20.0, 30.0]);
        assert_eq!(
            cumulative_value(10.0, 2, 4),
            vec![0.0, 10.0, 20.0, 20.0, 20.0]
        );
        assert_eq!(cumulative_value(0.0, 2, 2), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn ranking_puts_free_servers_first_then_higher_percentages() {
        let mut rois = vec![
            RoiPercent::Percent(-10.0),
            RoiPercent::NoDevelopmentCost,
            RoiPercent::Percent(250.0),
            RoiPercent::Percent(3.5),
        ];
        rois.sort_by(better_roi);
        assert_eq!(
            rois,
            vec![
                RoiPercent::NoDevelopmentCost,
                RoiPercent::Percent(250.0),
                RoiPercent::Percent(3.5),
                RoiPercent::Percent(-10.0),
            ]
        );
    }
}
