//! One instance of a server: its session, admin state, health, breaker, load and latency.

use crate::gateway::breaker::{Admission, Breaker, BreakerConfig, BreakerSnapshot, BreakerState};
use crate::gateway::latency::LatencyWindow;
pub use crate::telemetry::health::Health;
use crate::telemetry::health::{HealthPolicy, HealthTracker};
use crate::telemetry::scrape::{self, LoadSignals, Reading};
use crate::upstream::{Endpoint, UpstreamSession};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What operators decided (persisted by the store with the dashboard's actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminState {
    /// Takes new calls.
    Active,
    /// Takes no new calls; in-flight calls finish.
    Draining,
    /// Drained: no calls in flight, none routed.
    Drained,
}

impl AdminState {
    /// Every state, for metrics that show each one.
    pub const ALL: [AdminState; 3] = [
        AdminState::Active,
        AdminState::Draining,
        AdminState::Drained,
    ];

    /// The state of a stored name.
    pub fn parse(name: &str) -> Option<AdminState> {
        match name {
            "active" => Some(AdminState::Active),
            "draining" => Some(AdminState::Draining),
            "drained" => Some(AdminState::Drained),
            _ => None,
        }
    }

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Active => "active",
            AdminState::Draining => "draining",
            AdminState::Drained => "drained",
        }
    }
}

/// Why an instance cannot take a call now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Draining or drained.
    NotActive(AdminState),
    /// Probes say it is down.
    Unhealthy,
    /// Its breaker is open (or its half-open probes are taken).
    BreakerOpen(Duration),
    /// All its concurrency slots are taken.
    Saturated(u32),
}

/// Calls per second over the last few seconds: one bucket per second, each stamped with
/// the second it counts, so that stale buckets are ignored without a sweeper.
#[derive(Debug)]
pub struct CallRate {
    started: Instant,
    buckets: [(AtomicU64, AtomicU64); RATE_WINDOW_S as usize],
}

/// Seconds the call rate is averaged over.
const RATE_WINDOW_S: u64 = 10;

impl CallRate {
    fn new() -> Self {
        CallRate {
            started: Instant::now(),
            buckets: std::array::from_fn(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(0))),
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs()
    }

    /// Counts one call at `now`.
    pub fn record(&self, now: Instant) {
        let second = self.second(now);
        let (stamp, count) = &self.buckets[(second % RATE_WINDOW_S) as usize];
        if stamp.swap(second, Ordering::AcqRel) != second {
            // A new second in this bucket: forget what it counted before.
            count.store(0, Ordering::Release);
        }
        count.fetch_add(1, Ordering::AcqRel);
    }

    /// Calls per second over the last complete seconds of the window.
    pub fn per_second(&self, now: Instant) -> f64 {
        let current = self.second(now);
        let window = RATE_WINDOW_S.min(current).max(1);
        let total: u64 = self
            .buckets
            .iter()
            .filter(|(stamp, _)| {
                let stamp = stamp.load(Ordering::Acquire);
                stamp != u64::MAX && stamp < current && current - stamp <= window
            })
            .map(|(_, count)| count.load(Ordering::Acquire))
            .sum();
        total as f64 / window as f64
    }
}

/// Counters of one instance.
#[derive(Debug, Default)]
pub struct InstanceCounters {
    /// Calls that reached the instance.
    pub calls: AtomicU64,
    /// Calls that failed at the instance (transport, timeout, protocol error).
    pub failures: AtomicU64,
    /// Recent calls per second.
    pub rate: CallRate,
}

impl Default for CallRate {
    fn default() -> Self {
        CallRate::new()
    }
}

/// One instance.
pub struct Instance {
    /// Unique id.
    pub id: String,
    /// The server it belongs to.
    pub server: String,
    /// Its pooled MCP session.
    pub upstream: UpstreamSession,
    /// Concurrency limit.
    pub max_in_flight: u32,
    /// Added while running (persisted in the store) rather than declared in the fleet file.
    pub runtime: bool,
    admin: Mutex<AdminState>,
    health: Mutex<HealthTracker>,
    breaker: Mutex<Breaker>,
    latency: Mutex<LatencyWindow>,
    in_flight: AtomicU32,
    /// Call counters.
    pub counters: InstanceCounters,
    last_error: Mutex<Option<(Instant, String)>>,
    /// The instance's Prometheus endpoint, scraped by the prober.
    pub metrics_url: Option<String>,
    load: Mutex<LoadState>,
    health_changes: Mutex<Vec<HealthChange>>,
}

/// What the scrapes of `metrics_url` found.
#[derive(Debug)]
struct LoadState {
    last: Option<Reading>,
    signals: Option<LoadSignals>,
    error: Option<String>,
    /// Signals older than this are ignored (the instance stopped answering scrapes); the
    /// prober sets it from its interval.
    stale_after: Duration,
}

impl Default for LoadState {
    fn default() -> Self {
        LoadState {
            last: None,
            signals: None,
            error: None,
            stale_after: Duration::from_secs(30),
        }
    }
}

/// A health change that real calls caused, waiting for the prober to report it.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthChange {
    /// Health before.
    pub before: Health,
    /// Health after.
    pub after: Health,
    /// Why, in the tracker's words.
    pub reason: String,
}

/// Unreported changes kept per instance (older ones are dropped: the latest matter).
const HEALTH_CHANGES_KEPT: usize = 16;

/// A call admitted to an instance; dropping it frees its slot.
pub struct CallPermit {
    instance: Arc<Instance>,
    admission: Option<Admission>,
    started: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge routing: the data is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Instance {
    /// A new, active instance of `server` at `endpoint`.
    pub fn new(
        id: String,
        server: String,
        endpoint: Endpoint,
        max_in_flight: u32,
        breaker: BreakerConfig,
    ) -> Self {
        Instance {
            upstream: UpstreamSession::new(endpoint, max_in_flight as usize, &id),
            id,
            server,
            max_in_flight,
            runtime: false,
            admin: Mutex::new(AdminState::Active),
            health: Mutex::new(HealthTracker::new(HealthPolicy::default(), Instant::now())),
            breaker: Mutex::new(Breaker::new(breaker)),
            latency: Mutex::new(LatencyWindow::new(512)),
            in_flight: AtomicU32::new(0),
            counters: InstanceCounters::default(),
            last_error: Mutex::new(None),
            metrics_url: None,
            load: Mutex::new(LoadState::default()),
            health_changes: Mutex::new(Vec::new()),
        }
    }

    /// The health changes real calls caused since the last time this was asked.
    pub fn take_health_changes(&self) -> Vec<HealthChange> {
        std::mem::take(&mut *lock(&self.health_changes))
    }

    /// A real call's verdict into health; a change is kept for the prober to report.
    fn record_call_health(&self, now: Instant, ok: bool) {
        let mut tracker = lock(&self.health);
        let before = tracker.health();
        if let Some(after) = tracker.record_call(now, ok) {
            let change = HealthChange {
                before,
                after,
                reason: tracker.reason().to_string(),
            };
            drop(tracker);
            let mut changes = lock(&self.health_changes);
            if changes.len() == HEALTH_CHANGES_KEPT {
                changes.remove(0);
            }
            changes.push(change);
        }
    }

    /// Scrapes `url` for load signals.
    pub fn with_metrics_url(mut self, url: Option<String>) -> Self {
        self.metrics_url = url;
        self
    }

    /// Keeps a scrape's result: a reading updates the signals, a failure is remembered
    /// (and the signals age out after `stale_after`).
    pub fn record_scrape(&self, result: Result<Reading, String>, stale_after: Duration) {
        let mut load = lock(&self.load);
        load.stale_after = stale_after;
        match result {
            Ok(reading) => {
                load.signals = Some(scrape::signals(load.last.as_ref(), &reading));
                load.last = Some(reading);
                load.error = None;
            }
            Err(why) => load.error = Some(crate::sanitize::error_text(&why)),
        }
    }

    /// The latest scraped signals, unless stale.
    pub fn load_signals(&self, now: Instant) -> Option<LoadSignals> {
        let load = lock(&self.load);
        load.signals
            .filter(|s| now.saturating_duration_since(s.at) < load.stale_after)
    }

    /// Why the last scrape failed, if it did.
    pub fn scrape_error(&self) -> Option<String> {
        lock(&self.load).error.clone()
    }

    /// Calls in flight as the balancer should see them: this replica's own count, or the
    /// instance's scraped count when higher (it includes other replicas' and clients' calls).
    pub fn routing_in_flight(&self, now: Instant) -> u32 {
        let own = self.in_flight();
        let reported = self
            .load_signals(now)
            .and_then(|s| s.in_flight)
            .map_or(0, |n| n.clamp(0.0, f64::from(u32::MAX)) as u32);
        own.max(reported)
    }

    /// Uses `policy` for health decisions (the server's `probe` settings).
    pub fn with_health_policy(self, policy: HealthPolicy) -> Self {
        *lock(&self.health) = HealthTracker::new(policy, Instant::now());
        self
    }

    /// The breaker's settings.
    pub fn breaker_config(&self) -> BreakerConfig {
        *lock(&self.breaker).config()
    }

    /// Restores a persisted admin state at start (nothing is in flight yet, so draining is
    /// drained).
    pub fn restore_admin_state(&self, state: AdminState) {
        *lock(&self.admin) = match state {
            AdminState::Draining => AdminState::Drained,
            other => other,
        };
    }

    /// Admin state.
    pub fn admin_state(&self) -> AdminState {
        *lock(&self.admin)
    }

    /// Observed health.
    pub fn health(&self) -> Health {
        lock(&self.health).health()
    }

    /// Observed health with its reason, smoothed probe round trip (ms) and recent error rate.
    pub fn health_detail(&self, now: Instant) -> (Health, String, Option<f64>, Option<f64>) {
        let tracker = lock(&self.health);
        (
            tracker.health(),
            tracker.reason().to_string(),
            tracker.probe_latency_ms(),
            tracker.error_rate(now),
        )
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Latency EWMA in ms (0 before any call).
    pub fn latency_ewma_ms(&self) -> f64 {
        lock(&self.latency).ewma_ms()
    }

    /// A latency percentile over recent calls.
    pub fn latency_percentile(&self, q: f64) -> Option<Duration> {
        lock(&self.latency).percentile(q)
    }

    /// The breaker as it stands.
    pub fn breaker_snapshot(&self, now: Instant) -> BreakerSnapshot {
        lock(&self.breaker).snapshot(now)
    }

    /// The breaker's state alone (no copy of its transitions: cheap on the hot path).
    pub fn breaker_state(&self, now: Instant) -> BreakerState {
        lock(&self.breaker).state(now)
    }

    /// The last failure and when it happened.
    pub fn last_error(&self) -> Option<(Instant, String)> {
        lock(&self.last_error).clone()
    }

    /// Whether the balancer may consider it (the permit re-checks under its locks).
    pub fn looks_eligible(&self, now: Instant) -> bool {
        self.refusal(now).is_none()
    }

    /// Why it would refuse a call now, without taking anything (`None`: it would take it).
    pub fn refusal(&self, now: Instant) -> Option<Refusal> {
        let admin = self.admin_state();
        if admin != AdminState::Active {
            return Some(Refusal::NotActive(admin));
        }
        if self.health() == Health::Unhealthy {
            return Some(Refusal::Unhealthy);
        }
        let breaker = lock(&self.breaker).snapshot(now);
        if breaker.state == BreakerState::Open {
            return Some(Refusal::BreakerOpen(
                breaker.half_open_in.unwrap_or_default(),
            ));
        }
        (self.in_flight() >= self.max_in_flight).then_some(Refusal::Saturated(self.max_in_flight))
    }

    /// Admits one call, or says why not.
    pub fn try_admit(self: &Arc<Self>, now: Instant) -> Result<CallPermit, Refusal> {
        let admin = self.admin_state();
        if admin != AdminState::Active {
            return Err(Refusal::NotActive(admin));
        }
        if self.health() == Health::Unhealthy {
            return Err(Refusal::Unhealthy);
        }
        // Take a slot first: it is cheap to give back.
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_in_flight).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(Refusal::Saturated(self.max_in_flight));
        }
        let mut permit = CallPermit {
            instance: self.clone(),
            admission: None,
            started: now,
        };
        match lock(&self.breaker).try_acquire(now) {
            Ok(admission) => {
                permit.admission = Some(admission);
                Ok(permit)
            }
            // Dropping the permit frees the slot.
            Err(rejection) => Err(Refusal::BreakerOpen(rejection.retry_in)),
        }
    }

    /// Starts draining: no new calls; drained once none are in flight.
    pub fn drain(&self) -> (AdminState, AdminState) {
        let mut admin = lock(&self.admin);
        let before = *admin;
        if before == AdminState::Active {
            *admin = if self.in_flight() == 0 {
                AdminState::Drained
            } else {
                AdminState::Draining
            };
        }
        (before, *admin)
    }

    /// Returns a draining or drained instance to service.
    pub fn undrain(&self) -> (AdminState, AdminState) {
        let mut admin = lock(&self.admin);
        let before = *admin;
        *admin = AdminState::Active;
        (before, *admin)
    }

    /// Resets the breaker to closed (an operator's decision).
    pub fn reset_breaker(&self, now: Instant, actor: &str) -> BreakerState {
        let mut breaker = lock(&self.breaker);
        let before = breaker.state(now);
        breaker.reset(now, actor);
        before
    }

    /// Feeds an active probe's outcome (round trip or why it failed) into health, with
    /// hysteresis. Returns the health if it changed.
    pub fn record_probe(&self, now: Instant, outcome: Result<Duration, String>) -> Option<Health> {
        lock(&self.health).record_probe(now, outcome)
    }

    /// If draining with nothing in flight, becomes drained. Returns true when it changed.
    fn settle_drain(&self) -> bool {
        let mut admin = lock(&self.admin);
        if *admin == AdminState::Draining && self.in_flight() == 0 {
            *admin = AdminState::Drained;
            true
        } else {
            false
        }
    }
}

/// How an admitted call ended, for the breaker and the statistics.
#[derive(Debug)]
pub enum CallOutcome<'a> {
    /// The instance answered (a tool's isError result counts: the instance works).
    Answered,
    /// The instance failed (transport, timeout, protocol): counts against its breaker.
    Failed(&'a str),
    /// The caller went away: no verdict on the instance.
    Abandoned,
}

impl CallPermit {
    /// The instance this permit is for.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Records the outcome and frees the slot. Returns true if the instance became drained.
    pub fn finish(mut self, outcome: CallOutcome<'_>) -> bool {
        let now = Instant::now();
        let instance = self.instance.clone();
        if let Some(admission) = self.admission.take() {
            let mut breaker = lock(&instance.breaker);
            match outcome {
                CallOutcome::Answered => breaker.on_success(now, admission),
                CallOutcome::Failed(cause) => breaker.on_failure(now, admission, cause),
                CallOutcome::Abandoned => breaker.release_probe(admission),
            }
        }
        match outcome {
            CallOutcome::Answered => {
                instance.counters.calls.fetch_add(1, Ordering::Relaxed);
                instance.counters.rate.record(now);
                lock(&instance.latency).record(now.saturating_duration_since(self.started));
                instance.record_call_health(now, true);
            }
            CallOutcome::Failed(cause) => {
                instance.counters.calls.fetch_add(1, Ordering::Relaxed);
                instance.counters.rate.record(now);
                instance.counters.failures.fetch_add(1, Ordering::Relaxed);
                *lock(&instance.last_error) = Some((now, crate::sanitize::error_text(cause)));
                instance.record_call_health(now, false);
            }
            CallOutcome::Abandoned => {}
        }
        drop(self);
        instance.settle_drain()
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if let Some(admission) = self.admission.take() {
            lock(&self.instance.breaker).release_probe(admission);
        }
        self.instance.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(max_in_flight: u32) -> Arc<Instance> {
        Arc::new(Instance::new(
            "i-1".into(),
            "s".into(),
            Endpoint::Http {
                url: "http://127.0.0.1:9/mcp".into(),
            },
            max_in_flight,
            BreakerConfig {
                failures: 2,
                reset: Duration::from_secs(30),
                half_open_probes: 1,
            },
        ))
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let i = instance(2);
        let now = Instant::now();
        let a = i.try_admit(now).unwrap();
        let _b = i.try_admit(now).unwrap();
        assert_eq!(i.try_admit(now).err(), Some(Refusal::Saturated(2)));
        drop(a);
        assert_eq!(i.in_flight(), 1);
        assert!(i.try_admit(now).is_ok());
    }

    #[test]
    fn a_drain_waits_for_in_flight_calls_and_routes_nothing_new() {
        let i = instance(4);
        let now = Instant::now();
        let first = i.try_admit(now).unwrap();
        let second = i.try_admit(now).unwrap();
        assert_eq!(i.drain(), (AdminState::Active, AdminState::Draining));
        assert_eq!(
            i.refusal(now),
            Some(Refusal::NotActive(AdminState::Draining)),
            "the peek agrees with admission"
        );
        assert_eq!(
            i.try_admit(now).err(),
            Some(Refusal::NotActive(AdminState::Draining))
        );
        assert!(!first.finish(CallOutcome::Answered));
        assert_eq!(i.admin_state(), AdminState::Draining);
        assert!(
            second.finish(CallOutcome::Answered),
            "the last call out drains it"
        );
        assert_eq!(i.admin_state(), AdminState::Drained);
        assert_eq!(i.undrain(), (AdminState::Drained, AdminState::Active));
        assert!(i.try_admit(now).is_ok());
    }

    #[test]
    fn an_idle_instance_drains_at_once() {
        let i = instance(4);
        assert_eq!(i.drain(), (AdminState::Active, AdminState::Drained));
    }

    #[test]
    fn failures_open_the_breaker_and_answers_count_as_success() {
        let i = instance(4);
        let now = Instant::now();
        i.try_admit(now)
            .unwrap()
            .finish(CallOutcome::Failed("connection refused"));
        i.try_admit(now).unwrap().finish(CallOutcome::Answered);
        i.try_admit(now)
            .unwrap()
            .finish(CallOutcome::Failed("connection refused"));
        // Two failures, but not consecutive: still closed; a success resets the count.
        i.try_admit(now)
            .expect("a success in between resets the count")
            .finish(CallOutcome::Answered);
        let now = Instant::now();
        i.try_admit(now)
            .unwrap()
            .finish(CallOutcome::Failed("timeout"));
        i.try_admit(now)
            .unwrap()
            .finish(CallOutcome::Failed("timeout"));
        assert!(matches!(i.try_admit(now), Err(Refusal::BreakerOpen(_))));
        assert_eq!(i.in_flight(), 0, "a refused admission keeps no slot");
        assert_eq!(i.last_error().unwrap().1, "timeout");
        i.reset_breaker(now, "olga");
        assert!(i.try_admit(now).is_ok());
    }

    #[test]
    fn the_call_rate_averages_complete_seconds_of_the_window() {
        let rate = CallRate::new();
        let t0 = rate.started;
        assert_eq!(rate.per_second(t0), 0.0);
        for s in 0..4 {
            for _ in 0..(10 * (s + 1)) {
                rate.record(t0 + Duration::from_millis(s * 1000 + 500));
            }
        }
        // At 4.5 s: seconds 0..=3 are complete (10+20+30+40 calls over 4 s).
        assert_eq!(rate.per_second(t0 + Duration::from_millis(4500)), 25.0);
        // Much later, all buckets are stale.
        assert_eq!(rate.per_second(t0 + Duration::from_secs(60)), 0.0);
        // Second 10 reuses second 0's bucket, which starts again from zero.
        rate.record(t0 + Duration::from_millis(10_500));
        // At 11.5 s the window is seconds 1..=10: 20 + 30 + 40 + 1 calls.
        assert_eq!(rate.per_second(t0 + Duration::from_millis(11_500)), 9.1);
        // At 13.5 s, seconds 3..=12: 40 + 1.
        assert_eq!(rate.per_second(t0 + Duration::from_millis(13_500)), 4.1);
    }

    #[test]
    fn scraped_in_flight_counts_for_routing_until_it_goes_stale() {
        let i = instance(8);
        let now = Instant::now();
        let _permit = i.try_admit(now).unwrap();
        assert_eq!(i.routing_in_flight(now), 1);
        let stale_after = Duration::from_secs(30);
        i.record_scrape(
            Ok(Reading {
                at: now,
                cpu_seconds: Some(1.0),
                resident_bytes: Some(5e6),
                in_flight: Some(6.0),
            }),
            stale_after,
        );
        assert_eq!(
            i.routing_in_flight(now),
            6,
            "other clients' calls count too"
        );
        assert_eq!(i.load_signals(now).unwrap().resident_bytes, Some(5e6));
        i.record_scrape(Err("HTTP 503".into()), stale_after);
        assert_eq!(i.scrape_error().as_deref(), Some("HTTP 503"));
        let later = now + stale_after;
        assert_eq!(i.load_signals(later), None);
        assert_eq!(i.routing_in_flight(later), 1, "stale signals are ignored");
    }

    #[test]
    fn failing_calls_degrade_an_instance_and_the_change_waits_for_the_prober() {
        let i = instance(64);
        let now = Instant::now();
        i.record_probe(now, Ok(Duration::from_millis(2)));
        for _ in 0..6 {
            i.try_admit(now).unwrap().finish(CallOutcome::Answered);
        }
        // Failures between answers (two in a row would open this breaker): 3 of 12 = 25%.
        for ok in [false, true, false, true, false] {
            let permit = i.try_admit(now).unwrap();
            permit.finish(if ok {
                CallOutcome::Answered
            } else {
                CallOutcome::Failed("HTTP 500")
            });
        }
        assert_eq!(i.health(), Health::Degraded);
        let changes = i.take_health_changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].before, changes[0].after),
            (Health::Healthy, Health::Degraded)
        );
        assert!(
            changes[0].reason.contains("failed in the last minute"),
            "{}",
            changes[0].reason
        );
        assert!(i.take_health_changes().is_empty(), "reported once");
    }

    #[test]
    fn an_unhealthy_instance_takes_no_calls_until_probes_bring_it_back() {
        let i = instance(1);
        let now = Instant::now();
        let ok = || Ok(Duration::from_millis(2));
        let refused = || Err("connection refused".to_string());
        assert_eq!(i.record_probe(now, ok()), Some(Health::Healthy));
        assert_eq!(i.record_probe(now, refused()), None);
        assert_eq!(i.record_probe(now, refused()), None);
        assert_eq!(i.record_probe(now, refused()), Some(Health::Unhealthy));
        assert_eq!(i.try_admit(now).err(), Some(Refusal::Unhealthy));
        assert_eq!(i.record_probe(now, ok()), None);
        assert_eq!(i.record_probe(now, ok()), Some(Health::Healthy));
        assert!(i.try_admit(now).is_ok());
    }
}
