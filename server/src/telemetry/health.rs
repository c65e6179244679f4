//! An instance's observed health: active probes and the outcomes of real calls, turned into
//! `healthy`, `degraded` or `unhealthy` with hysteresis so that one lost ping or one slow
//! call does not flap the fleet. Plain logic: the caller passes the time.

use std::time::{Duration, Instant};

/// What probes and real calls observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    /// Answering.
    Healthy,
    /// Answering, but slowly or with errors: still routed to.
    Degraded,
    /// Not answering: not routed to.
    Unhealthy,
}

impl Health {
    /// Every health, for metrics that show each one.
    pub const ALL: [Health; 4] = [
        Health::Unknown,
        Health::Healthy,
        Health::Degraded,
        Health::Unhealthy,
    ];

    /// The health's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// The thresholds of one server's instances (the fleet file's `probe = { … }`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthPolicy {
    /// Consecutive failed probes that make an instance unhealthy.
    pub unhealthy_after: u32,
    /// Consecutive successful probes that bring an unhealthy instance back.
    pub healthy_after: u32,
    /// Probe round trips (smoothed) at or above this make an instance degraded.
    pub degraded_latency: Duration,
    /// A share of failed probes and calls over the last minute at or above this makes an
    /// instance degraded.
    pub degraded_error_rate: f64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            unhealthy_after: 3,
            healthy_after: 2,
            degraded_latency: Duration::from_millis(1000),
            degraded_error_rate: 0.25,
        }
    }
}

/// Fewest observations in the error window before its rate can degrade an instance.
const MIN_RATE_SAMPLES: u64 = 10;
/// The error window: six buckets of ten seconds.
const BUCKET: Duration = Duration::from_secs(10);
const BUCKETS: usize = 6;
/// Weight of the newest probe round trip in the smoothed latency.
const LATENCY_ALPHA: f64 = 0.3;
/// Leaving `degraded` needs the signals clearly below the thresholds (hysteresis).
const RECOVER_LATENCY_FACTOR: f64 = 0.8;
const RECOVER_RATE_FACTOR: f64 = 0.5;

/// Outcomes over the last minute in ten-second buckets, each stamped with its bucket number
/// so that stale ones are skipped without a sweeper.
#[derive(Debug, Clone)]
struct ErrorWindow {
    origin: Instant,
    buckets: [(u64, u64, u64); BUCKETS],
}

impl ErrorWindow {
    fn new(origin: Instant) -> Self {
        ErrorWindow {
            origin,
            buckets: [(u64::MAX, 0, 0); BUCKETS],
        }
    }

    fn bucket_of(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / BUCKET.as_secs()
    }

    fn record(&mut self, now: Instant, ok: bool) {
        let number = self.bucket_of(now);
        let slot = &mut self.buckets[(number % BUCKETS as u64) as usize];
        if slot.0 != number {
            *slot = (number, 0, 0);
        }
        slot.1 += 1;
        if !ok {
            slot.2 += 1;
        }
    }

    /// (observations, failures) over the window.
    fn totals(&self, now: Instant) -> (u64, u64) {
        let current = self.bucket_of(now);
        self.buckets
            .iter()
            .filter(|(number, _, _)| {
                *number != u64::MAX && current.saturating_sub(*number) < BUCKETS as u64
            })
            .fold((0, 0), |(n, f), (_, count, failed)| (n + count, f + failed))
    }

    fn clear(&mut self) {
        self.buckets = [(u64::MAX, 0, 0); BUCKETS];
    }
}

/// Turns observations into a health, with the reason for it.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    policy: HealthPolicy,
    health: Health,
    reason: String,
    probe_failures: u32,
    probe_successes: u32,
    probe_latency_ms: Option<f64>,
    errors: ErrorWindow,
    last_probe_error: Option<String>,
}

impl HealthTracker {
    /// A tracker that has seen nothing yet.
    pub fn new(policy: HealthPolicy, now: Instant) -> Self {
        HealthTracker {
            policy,
            health: Health::Unknown,
            reason: "not probed yet".into(),
            probe_failures: 0,
            probe_successes: 0,
            probe_latency_ms: None,
            errors: ErrorWindow::new(now),
            last_probe_error: None,
        }
    }

    /// The health now.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Why it has that health, e.g. "3 probes failed in a row: connection refused".
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Smoothed probe round trip in ms, once probed.
    pub fn probe_latency_ms(&self) -> Option<f64> {
        self.probe_latency_ms
    }

    /// Share of failed probes and calls over the last minute, once there are enough.
    pub fn error_rate(&self, now: Instant) -> Option<f64> {
        let (n, failed) = self.errors.totals(now);
        (n >= MIN_RATE_SAMPLES).then(|| failed as f64 / n as f64)
    }

    /// An active probe's outcome: `Ok(round trip)` or `Err(why)`. Returns the new health
    /// if it changed.
    pub fn record_probe(
        &mut self,
        now: Instant,
        outcome: Result<Duration, String>,
    ) -> Option<Health> {
        let before = self.health;
        match outcome {
            Ok(round_trip) => {
                let ms = round_trip.as_secs_f64() * 1000.0;
                self.probe_latency_ms = Some(match self.probe_latency_ms {
                    Some(ewma) => ewma + LATENCY_ALPHA * (ms - ewma),
                    None => ms,
                });
                self.probe_failures = 0;
                self.probe_successes += 1;
                if self.health == Health::Unhealthy {
                    if self.probe_successes >= self.policy.healthy_after {
                        self.health = Health::Healthy;
                    } else {
                        return None;
                    }
                }
                self.errors.record(now, true);
                self.grade(now);
            }
            Err(why) => {
                self.probe_successes = 0;
                self.probe_failures += 1;
                self.last_probe_error = Some(why.clone());
                if self.health == Health::Unhealthy {
                    self.reason = format!("{} probes failed in a row: {why}", self.probe_failures);
                    return None;
                }
                if self.probe_failures >= self.policy.unhealthy_after {
                    self.health = Health::Unhealthy;
                    self.reason = format!("{} probes failed in a row: {why}", self.probe_failures);
                    // Recovery starts from a clean slate: old failures must not keep a
                    // restarted instance degraded for a minute.
                    self.errors.clear();
                    self.probe_latency_ms = None;
                } else {
                    self.errors.record(now, false);
                    if self.health != Health::Unknown {
                        self.grade(now);
                    }
                }
            }
        }
        (self.health != before).then_some(self.health)
    }

    /// A real call's verdict on the instance (`ok`: it answered). Feeds the error rate only:
    /// consecutive call failures are the breaker's business, and a slow tool is not a slow
    /// instance. Returns the new health if it changed.
    pub fn record_call(&mut self, now: Instant, ok: bool) -> Option<Health> {
        if matches!(self.health, Health::Unhealthy | Health::Unknown) {
            // Nothing is routed to an unhealthy instance; the probes decide.
            self.errors.record(now, ok);
            return None;
        }
        let before = self.health;
        self.errors.record(now, ok);
        self.grade(now);
        (self.health != before).then_some(self.health)
    }

    /// Healthy or degraded, from the smoothed probe latency and the error rate.
    fn grade(&mut self, now: Instant) {
        let threshold_ms = self.policy.degraded_latency.as_secs_f64() * 1000.0;
        let rate_threshold = self.policy.degraded_error_rate;
        let latency = self.probe_latency_ms;
        let rate = self.error_rate(now);
        let degraded_now = self.health == Health::Degraded;
        let (latency_limit, rate_limit) = if degraded_now {
            (
                threshold_ms * RECOVER_LATENCY_FACTOR,
                rate_threshold * RECOVER_RATE_FACTOR,
            )
        } else {
            (threshold_ms, rate_threshold)
        };
        let slow = latency.filter(|ms| *ms >= latency_limit);
        let failing = rate.filter(|r| *r >= rate_limit);
        if let Some(ms) = slow {
            self.health = Health::Degraded;
            self.reason = format!("probe round trip {ms:.0} ms (degraded at {threshold_ms:.0} ms)");
        } else if let Some(rate) = failing {
            self.health = Health::Degraded;
            self.reason = format!(
                "{:.0}% of probes and calls failed in the last minute (degraded at {:.0}%)",
                rate * 100.0,
                rate_threshold * 100.0
            );
        } else {
            self.health = Health::Healthy;
            self.reason = match latency {
                Some(ms) => format!("answering; probe round trip {ms:.0} ms"),
                None => "answering".into(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> (HealthTracker, Instant) {
        let now = Instant::now();
        (HealthTracker::new(HealthPolicy::default(), now), now)
    }

    const FAST: Duration = Duration::from_millis(5);

    #[test]
    fn n_failures_make_it_unhealthy_and_m_successes_bring_it_back() {
        let (mut t, now) = tracker();
        assert_eq!(t.health(), Health::Unknown);
        assert_eq!(t.record_probe(now, Ok(FAST)), Some(Health::Healthy));
        assert_eq!(t.record_probe(now, Err("refused".into())), None);
        assert_eq!(t.record_probe(now, Err("refused".into())), None);
        assert_eq!(
            t.record_probe(now, Err("connection refused".into())),
            Some(Health::Unhealthy)
        );
        assert_eq!(t.reason(), "3 probes failed in a row: connection refused");
        assert_eq!(
            t.record_probe(now, Ok(FAST)),
            None,
            "one success is not enough"
        );
        assert_eq!(t.record_probe(now, Err("refused".into())), None);
        assert_eq!(t.record_probe(now, Ok(FAST)), None);
        assert_eq!(t.record_probe(now, Ok(FAST)), Some(Health::Healthy));
        assert_eq!(
            t.health(),
            Health::Healthy,
            "old failures do not degrade it"
        );
    }

    #[test]
    fn an_unknown_instance_that_never_answers_becomes_unhealthy() {
        let (mut t, now) = tracker();
        assert_eq!(t.record_probe(now, Err("refused".into())), None);
        assert_eq!(t.health(), Health::Unknown);
        assert_eq!(t.record_probe(now, Err("refused".into())), None);
        assert_eq!(
            t.record_probe(now, Err("refused".into())),
            Some(Health::Unhealthy)
        );
    }

    #[test]
    fn slow_probes_degrade_and_recovery_needs_clearly_faster_ones() {
        let (mut t, now) = tracker();
        t.record_probe(now, Ok(Duration::from_millis(100)));
        assert_eq!(
            t.record_probe(now, Ok(Duration::from_millis(5000))),
            Some(Health::Degraded),
            "100 + 0.3 × 4900 = 1570 ms"
        );
        assert!(
            t.reason().starts_with("probe round trip 1570 ms"),
            "{}",
            t.reason()
        );
        // 1570 → 1129 → 820 (still ≥ 800: degraded, though under the 1000 ms threshold).
        assert_eq!(t.record_probe(now, Ok(Duration::from_millis(100))), None);
        assert_eq!(t.record_probe(now, Ok(Duration::from_millis(100))), None);
        assert_eq!(t.health(), Health::Degraded);
        assert_eq!(
            t.record_probe(now, Ok(Duration::from_millis(100))),
            Some(Health::Healthy),
            "604 ms"
        );
    }

    #[test]
    fn failing_calls_degrade_a_probed_instance_but_do_not_take_it_out() {
        let (mut t, now) = tracker();
        t.record_probe(now, Ok(FAST));
        for _ in 0..6 {
            assert_eq!(t.record_call(now, true), None);
        }
        // 6 ok + 1 probe ok; 3 failures → 3 / 10 = 30% ≥ 25%.
        assert_eq!(t.record_call(now, false), None, "too few samples yet");
        assert_eq!(t.record_call(now, false), None);
        assert_eq!(t.record_call(now, false), Some(Health::Degraded));
        assert_eq!(t.error_rate(now), Some(0.3));
        // Recovery needs the rate under half the threshold (12.5%).
        for _ in 0..14 {
            t.record_call(now, true);
        }
        assert_eq!(t.health(), Health::Degraded, "3 / 24 = 12.5%: not under");
        assert_eq!(t.record_call(now, true), Some(Health::Healthy), "3 / 25");
    }

    #[test]
    fn the_error_window_forgets_after_a_minute() {
        let (mut t, now) = tracker();
        t.record_probe(now, Ok(FAST));
        for _ in 0..9 {
            t.record_call(now, false);
        }
        assert_eq!(t.health(), Health::Degraded);
        let later = now + Duration::from_secs(61);
        assert_eq!(t.error_rate(later), None, "the old bucket aged out");
        assert_eq!(t.record_probe(later, Ok(FAST)), Some(Health::Healthy));
    }
}
