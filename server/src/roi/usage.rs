//! Measured uses projected to a month.
//!
//! A *use* is a call that reached the tool and got its answer: outcome `ok`, cache hits
//! included (a cached answer saves the caller as much time). Tool errors, failures,
//! refusals (denied, rate-limited, rejected) and cancelled calls saved nobody any time and
//! do not count.
//!
//! Uses are counted over the chosen window, or since the server's first recorded call when
//! that is later (a server added last week is not diluted over 90 days); under a day of
//! history counts as one day. The count is then scaled to an average month of 30.44 days.

use app::wire::{CoveredSpan, DAYS_PER_MONTH, MeasuredUsage};

/// The outcome that counts as a use.
pub const USE_OUTCOME: &str = "ok";

/// The shortest span uses are projected from.
pub const MIN_COVERED_MS: i64 = DAY_MS;

/// The longest window accepted, in days.
pub const MAX_WINDOW_DAYS: u32 = 365;

const DAY_MS: i64 = 86_400_000;

/// The start (inclusive, Unix ms) of a window of `window_days` ending at `now_ms`.
pub fn window_start_ms(window_days: u32, now_ms: i64) -> i64 {
    now_ms - i64::from(window_days) * DAY_MS
}

/// The span counted over, in days, and why: the window, or since the first call.
pub fn covered_span(
    window_days: u32,
    first_call_at_ms: Option<i64>,
    now_ms: i64,
) -> (f64, CoveredSpan) {
    let window_ms = i64::from(window_days) * DAY_MS;
    let days = |ms: i64| ms as f64 / DAY_MS as f64;
    match first_call_at_ms {
        None => (f64::from(window_days), CoveredSpan::NoCalls),
        Some(first) if first <= now_ms - window_ms => (f64::from(window_days), CoveredSpan::Window),
        Some(first) if now_ms - first < MIN_COVERED_MS => (
            days(MIN_COVERED_MS.min(window_ms)),
            CoveredSpan::MinimumDay {
                first_call_at_ms: first,
            },
        ),
        Some(first) => (
            days(now_ms - first),
            CoveredSpan::SinceFirstCall {
                first_call_at_ms: first,
            },
        ),
    }
}

/// Uses over `covered_days` scaled to a month of 30.44 days.
pub fn per_month(uses: u64, covered_days: f64) -> f64 {
    if covered_days > 0.0 {
        uses as f64 * DAYS_PER_MONTH / covered_days
    } else {
        0.0
    }
}

/// A server's measured usage.
pub fn measure(
    uses: u64,
    window_days: u32,
    first_call_at_ms: Option<i64>,
    now_ms: i64,
) -> MeasuredUsage {
    let (covered_days, span) = covered_span(window_days, first_call_at_ms, now_ms);
    MeasuredUsage {
        window_days,
        covered_days,
        span,
        uses,
        uses_per_month: per_month(uses, covered_days),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_full_window_projects_by_the_window() {
        // 300 uses in 30 days: 300 × 30.44 / 30 = 304.4 a month.
        let usage = measure(300, 30, Some(NOW - 45 * DAY_MS), NOW);
        assert_eq!(usage.span, CoveredSpan::Window);
        assert_eq!(usage.covered_days, 30.0);
        assert!((usage.uses_per_month - 304.4).abs() < 1e-9);
        // A first call exactly at the window's start still covers the whole window.
        assert_eq!(
            covered_span(7, Some(window_start_ms(7, NOW)), NOW),
            (7.0, CoveredSpan::Window)
        );
    }

    #[test]
    fn a_later_first_call_projects_by_the_days_since() {
        // 50 uses since a first call 10 days ago in a 90-day window: 50 × 30.44 / 10.
        let first = NOW - 10 * DAY_MS;
        let usage = measure(50, 90, Some(first), NOW);
        assert_eq!(
            usage.span,
            CoveredSpan::SinceFirstCall {
                first_call_at_ms: first
            }
        );
        assert_eq!(usage.covered_days, 10.0);
        assert!((usage.uses_per_month - 152.2).abs() < 1e-9);
        // Half days count.
        let (days, _) = covered_span(30, Some(NOW - 3 * DAY_MS / 2), NOW);
        assert_eq!(days, 1.5);
    }

    #[test]
    fn under_a_day_of_calls_counts_as_one_day() {
        let first = NOW - 60_000;
        let usage = measure(5, 30, Some(first), NOW);
        assert_eq!(
            usage.span,
            CoveredSpan::MinimumDay {
                first_call_at_ms: first
            }
        );
        assert_eq!(usage.covered_days, 1.0);
        assert!((usage.uses_per_month - 152.2).abs() < 1e-9);
    }

    #[test]
    fn no_calls_is_zero_uses_a_month() {
        let usage = measure(0, 30, None, NOW);
        assert_eq!(
            (usage.span, usage.uses_per_month),
            (CoveredSpan::NoCalls, 0.0)
        );
        assert_eq!(per_month(10, 0.0), 0.0);
    }
}
