//! Retries: which failures may be retried, how long to wait (exponential backoff with full
//! jitter), and a retry budget so that retries cannot multiply the load of an outage.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A server's retry settings (the fleet file's `retry`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Extra attempts after the first.
    pub attempts: u32,
    /// The backoff ceiling before the first retry; it doubles with each retry.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub max: Duration,
    /// Retries allowed per first attempt, on average (the budget's deposit).
    pub budget_ratio: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 2,
            base: Duration::from_millis(50),
            max: Duration::from_secs(1),
            budget_ratio: 0.2,
        }
    }
}

/// The wait before retry number `retry` (0 = first retry): "full jitter", a uniform draw
/// below `min(max, base * 2^retry)`, which spreads synchronised clients best.
///
/// `unit_random` is a draw from [0, 1) (e.g. `fastrand::f64()`), passed in for tests; values
/// outside are clamped.
pub fn backoff(policy: &RetryPolicy, retry: u32, unit_random: f64) -> Duration {
    let ceiling = 1u32
        .checked_shl(retry)
        .and_then(|factor| policy.base.checked_mul(factor))
        .map_or(policy.max, |grown| grown.min(policy.max));
    // `clamp` keeps NaN, so test it first.
    let fraction = if unit_random.is_nan() {
        0.0
    } else {
        unit_random.clamp(0.0, 1.0)
    };
    Duration::try_from_secs_f64(ceiling.as_secs_f64() * fraction)
        .map_or(ceiling, |wait| wait.min(ceiling))
}

/// Why an attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The instance could not be reached (refused, reset before sending, DNS, TLS).
    Connect,
    /// No answer in time, or the connection broke mid-call: the tool may have run.
    Timeout,
    /// The instance answered with something that is not valid MCP.
    Protocol,
}

/// Whether a failed attempt may be retried on another instance.
///
/// (Saturated instances and open breakers never get the call: the dispatcher picks another
/// instance before sending. Tool errors, `isError` results, are answers, not failures.)
///
/// Only when the tool cannot have run (or running it twice is harmless): a retried timeout of
/// a non-idempotent tool could, say, send an email twice. Tool and protocol errors are answers,
/// and a retry would most likely get the same one.
pub fn is_retryable(failure: FailureKind, idempotent: bool) -> bool {
    match failure {
        FailureKind::Connect => true,
        FailureKind::Timeout => idempotent,
        FailureKind::Protocol => false,
    }
}

/// The budget's window is kept as this many slices, which expire one at a time.
const SLICES: u32 = 10;
/// Token amounts are kept in thousandths, so fractional deposits add up exactly.
const MILLI: f64 = 1000.0;
/// One retry's cost in thousandths of a token.
const RETRY_COST: i64 = 1000;

/// A retry budget, as in Finagle and gRPC: retries stay a fraction of the traffic.
///
/// Each first attempt deposits `ratio` tokens and each retry withdraws one; a reserve of
/// `min_per_sec * window` tokens lets quiet services retry too. Deposits and withdrawals
/// expire after the window (a tenth of it at a time), so only recent traffic counts and,
/// over a window, retries ≤ ratio × requests + min_per_sec × window seconds.
#[derive(Debug)]
pub struct RetryBudget {
    deposit: i64,
    reserve: i64,
    slice: Duration,
    window: Mutex<Window>,
}

/// Net token movements per slice of the window, in thousandths.
#[derive(Debug)]
struct Window {
    /// When slice 0 started: the first call's `now`, so that times the caller passes are
    /// never before it (a deposit booked into a slice that began after it would outlive
    /// the window).
    epoch: Option<Instant>,
    /// The absolute number of the newest slice.
    newest: u64,
    /// Per-slice sums, indexed by absolute slice number modulo `SLICES`.
    sums: [i64; SLICES as usize],
}

impl Default for RetryBudget {
    /// 20% of requests, at least 10 retries a second, over 10 seconds.
    fn default() -> Self {
        RetryBudget::new(0.2, 10, Duration::from_secs(10))
    }
}

impl RetryBudget {
    /// A budget of `ratio` retries per request plus `min_per_sec` retries a second, counting
    /// the last `window` of traffic.
    pub fn new(ratio: f64, min_per_sec: u32, window: Duration) -> Self {
        // Float-to-int `as` saturates and maps NaN to 0; negative ratios mean no retries.
        let deposit = (ratio.max(0.0) * MILLI).round() as i64;
        let reserve = (f64::from(min_per_sec) * window.as_secs_f64() * MILLI).round() as i64;
        RetryBudget {
            deposit,
            reserve,
            slice: (window / SLICES).max(Duration::from_nanos(1)),
            window: Mutex::new(Window {
                epoch: None,
                newest: 0,
                sums: [0; SLICES as usize],
            }),
        }
    }

    /// Counts a first attempt, adding `ratio` tokens.
    pub fn record_request(&self, now: Instant) {
        self.with_window(now, |window, slot| {
            window.sums[slot] = window.sums[slot].saturating_add(self.deposit);
        });
    }

    /// Takes one token for a retry; `false` means the budget is spent and the call should
    /// fail now rather than retry.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        self.with_window(now, |window, slot| {
            let balance = window
                .sums
                .iter()
                .fold(self.reserve, |sum, slice| sum.saturating_add(*slice));
            if balance < RETRY_COST {
                return false;
            }
            window.sums[slot] = window.sums[slot].saturating_sub(RETRY_COST);
            true
        })
    }

    /// Runs `change` on the window after expiring slices older than it, with the slot of `now`.
    fn with_window<T>(&self, now: Instant, change: impl FnOnce(&mut Window, usize) -> T) -> T {
        // The window holds plain sums, which stay consistent even if a holder panicked.
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let epoch = *window.epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch).as_nanos();
        let current = u64::try_from(elapsed / self.slice.as_nanos()).unwrap_or(u64::MAX);
        if current > window.newest {
            // Clear the slices that are new since the last call (all of them after a long gap).
            let stale = (current - window.newest).min(u64::from(SLICES));
            for number in current - stale + 1..=current {
                window.sums[slot_of(number)] = 0;
            }
            window.newest = current;
        }
        // A `now` older than the newest slice (callers racing for the lock) books into the
        // newest slice: at most one slice late, never into an expired one.
        let slot = slot_of(window.newest);
        change(&mut window, slot)
    }
}

fn slot_of(slice_number: u64) -> usize {
    // The remainder is below SLICES, so it fits any usize.
    (slice_number % u64::from(SLICES)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn default_policy_matches_the_fleet_file_defaults() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts, 2);
        assert_eq!((policy.base, policy.max), (ms(50), ms(1000)));
        assert_eq!(policy.budget_ratio, 0.2);
    }

    #[test]
    fn backoff_ceiling_doubles_up_to_the_max() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<_> = (0..7).map(|retry| backoff(&policy, retry, 1.0)).collect();
        assert_eq!(
            ceilings,
            [
                ms(50),
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1000),
                ms(1000)
            ]
        );
    }

    #[test]
    fn backoff_is_a_jittered_fraction_of_the_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(backoff(&policy, 0, 0.0), Duration::ZERO);
        assert_eq!(backoff(&policy, 0, 0.5), ms(25));
        assert_eq!(backoff(&policy, 2, 0.25), ms(50));
        for _ in 0..1000 {
            let wait = backoff(&policy, 3, fastrand::f64());
            assert!(wait < ms(400), "{wait:?}");
        }
    }

    #[test]
    fn backoff_never_overflows() {
        let policy = RetryPolicy::default();
        for retry in [31, 32, 33, 64, 1000, u32::MAX] {
            assert_eq!(backoff(&policy, retry, 1.0), ms(1000), "retry {retry}");
        }
        let unbounded = RetryPolicy {
            base: Duration::MAX,
            max: Duration::MAX,
            ..policy
        };
        assert_eq!(backoff(&unbounded, 40, 1.0), Duration::MAX);
        assert!(backoff(&unbounded, 40, 0.5) <= Duration::MAX);
    }

    #[test]
    fn backoff_clamps_odd_random_values() {
        let policy = RetryPolicy::default();
        assert_eq!(backoff(&policy, 0, -1.0), Duration::ZERO);
        assert_eq!(backoff(&policy, 0, f64::NAN), Duration::ZERO);
        assert_eq!(backoff(&policy, 0, 7.0), ms(50));
        assert_eq!(backoff(&policy, 0, f64::INFINITY), ms(50));
    }

    #[test]
    fn only_failures_that_cannot_have_run_the_tool_are_always_retryable() {
        use FailureKind::*;
        for idempotent in [false, true] {
            assert!(is_retryable(Connect, idempotent));
            assert!(!is_retryable(Protocol, idempotent));
        }
        assert!(is_retryable(Timeout, true));
        assert!(!is_retryable(Timeout, false));
    }

    #[test]
    fn the_budget_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RetryBudget>();
    }

    #[test]
    fn an_outage_gets_at_most_the_ratio_plus_the_floor() {
        let budget = RetryBudget::new(0.2, 10, WINDOW);
        let t0 = Instant::now();
        let mut granted = 0;
        // 1000 requests over one second, every one failing and wanting 2 retries.
        for n in 0..1000 {
            let now = t0 + ms(n);
            budget.record_request(now);
            for _ in 0..2 {
                if budget.try_withdraw(now) {
                    granted += 1;
                }
            }
        }
        // 0.2 * 1000 deposited + 10/s * 10 s reserve.
        assert!(granted <= 300, "{granted}");
        // All of it is usable: the budget limits retries, it does not forbid them.
        assert!(granted >= 299, "{granted}");
    }

    #[test]
    fn a_quiet_service_can_still_retry_up_to_the_floor() {
        let budget = RetryBudget::new(0.2, 10, WINDOW);
        let t0 = Instant::now();
        let granted = (0..500).filter(|_| budget.try_withdraw(t0)).count();
        assert_eq!(granted, 100);
        // Withdrawals expire too, so the floor comes back a window later.
        assert!(!budget.try_withdraw(t0 + ms(5000)));
        assert!(budget.try_withdraw(t0 + WINDOW));
    }

    #[test]
    fn deposits_older_than_the_window_no_longer_count() {
        let budget = RetryBudget::new(0.2, 0, WINDOW);
        let t0 = Instant::now();
        for _ in 0..100 {
            budget.record_request(t0);
        }
        // 20 tokens while the deposits are fresh.
        let t1 = t0 + ms(9000);
        assert_eq!((0..50).filter(|_| budget.try_withdraw(t1)).count(), 20);

        let budget = RetryBudget::new(0.2, 0, WINDOW);
        for _ in 0..100 {
            budget.record_request(t0);
        }
        assert!(budget.try_withdraw(t0 + ms(9999)));
        assert!(!budget.try_withdraw(t0 + WINDOW));
        // New traffic refills it, net of the retry at 9.999 s, which still counts.
        for _ in 0..10 {
            budget.record_request(t0 + WINDOW);
        }
        assert!(budget.try_withdraw(t0 + WINDOW));
        assert!(!budget.try_withdraw(t0 + WINDOW));
    }

    #[test]
    fn a_long_idle_gap_clears_everything() {
        let budget = RetryBudget::new(1.0, 0, WINDOW);
        let t0 = Instant::now();
        budget.record_request(t0);
        assert!(!budget.try_withdraw(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn fractional_deposits_add_up_exactly() {
        let budget = RetryBudget::new(0.1, 0, WINDOW);
        let t0 = Instant::now();
        for _ in 0..9 {
            budget.record_request(t0);
        }
        assert!(!budget.try_withdraw(t0));
        budget.record_request(t0);
        assert!(budget.try_withdraw(t0));
        assert!(!budget.try_withdraw(t0));
    }

    #[test]
    fn odd_ratios_mean_no_deposits() {
        for ratio in [-1.0, f64::NAN, 0.0] {
            let budget = RetryBudget::new(ratio, 0, WINDOW);
            let t0 = Instant::now();
            (0..100).for_each(|_| budget.record_request(t0));
            assert!(!budget.try_withdraw(t0), "ratio {ratio}");
        }
    }

    #[test]
    fn a_zero_window_grants_nothing_without_panicking() {
        let budget = RetryBudget::new(0.2, 10, Duration::ZERO);
        let t0 = Instant::now();
        (0..100).for_each(|_| budget.record_request(t0));
        assert!(!budget.try_withdraw(t0 + ms(1)));
    }

    #[test]
    fn a_time_before_the_newest_slice_is_booked_into_it() {
        let budget = RetryBudget::new(1.0, 0, WINDOW);
        let t0 = Instant::now();
        budget.record_request(t0);
        budget.record_request(t0 + ms(5000));
        // An earlier `now` (a caller that lost the race for the lock) sees both deposits and
        // does not clear or skip any slice.
        assert!(budget.try_withdraw(t0 + ms(4000)));
        assert!(budget.try_withdraw(t0 + ms(4000)));
        assert!(!budget.try_withdraw(t0 + ms(4000)));
    }
}
