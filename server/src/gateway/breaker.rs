//! A per-instance circuit breaker, like Envoy's outlier detection: after N consecutive
//! failures the instance gets no calls for a reset timeout, then a few probe calls decide
//! whether it closes again or stays open.
//!
//! Not thread-safe by itself (callers wrap it in a `Mutex`), and time is passed in as an
//! `Instant`, so the logic is deterministic and tests need no sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many transitions a breaker remembers for the dashboard.
const TRANSITIONS_KEPT: usize = 20;

/// When a breaker opens and how it recovers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (0 is treated as 1).
    pub failures: u32,
    /// How long an open breaker rejects calls before it lets probes through.
    pub reset: Duration,
    /// Probe calls allowed in flight at once while half-open (0 is treated as 1).
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            reset: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

/// The breaker's state, as shown on the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls are rejected until the reset timeout elapses.
    Open,
    /// A limited number of probe calls decide between closed and open.
    HalfOpen,
}

impl BreakerState {
    /// Every state, for metrics that show each one.
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];

    /// The wire and display name: "closed", "open" or "half_open".
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// One state change, kept so operators can see why an instance was cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When the change happened (for the lazy open → half-open change: when the timeout elapsed).
    pub at: Instant,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// Why, in words for an operator.
    pub cause: String,
}

/// How a call was let through; the caller hands it back with the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// An ordinary call through a closed breaker.
    Normal,
    /// A half-open probe: its outcome closes or re-opens the breaker.
    Probe,
}

/// A call the breaker turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Time until the breaker may admit again; zero while half-open with all probe slots
    /// taken, because the slot frees as soon as a probe completes, which cannot be predicted.
    pub retry_in: Duration,
}

/// How many times a breaker entered each state since it was made: only ever grows, so
/// metrics can export it as counters (the transition list is trimmed, this is not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransitionCounts {
    /// Transitions into `closed` (probe successes and operator resets).
    pub closed: u64,
    /// Transitions into `open` (trips and failed probes).
    pub open: u64,
    /// Transitions into `half_open` (reset timeouts elapsed).
    pub half_open: u64,
}

impl TransitionCounts {
    /// Transitions into `state` so far.
    pub fn entered(&self, state: BreakerState) -> u64 {
        match state {
            BreakerState::Closed => self.closed,
            BreakerState::Open => self.open,
            BreakerState::HalfOpen => self.half_open,
        }
    }

    fn count(&mut self, state: BreakerState) {
        let counter = match state {
            BreakerState::Closed => &mut self.closed,
            BreakerState::Open => &mut self.open,
            BreakerState::HalfOpen => &mut self.half_open,
        };
        *counter = counter.saturating_add(1);
    }
}

/// A read-only view of a breaker for the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerSnapshot {
    /// The state as of the snapshot's time (half-open once the reset timeout elapsed).
    pub state: BreakerState,
    /// Consecutive failures counted (kept while open, so the dashboard shows what opened it).
    pub consecutive_failures: u32,
    /// Time until an open breaker lets probes through; `None` unless open.
    pub half_open_in: Option<Duration>,
    /// Recent transitions, newest last, at most 20.
    pub transitions: Vec<Transition>,
    /// Every transition since start by the state entered, including a pending lazy one.
    pub transitions_total: TransitionCounts,
}

/// The breaker's state with the data that only exists in that state.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Closed,
    Open { opened_at: Instant },
    HalfOpen { probes_in_flight: u32 },
}

impl Phase {
    fn state(self) -> BreakerState {
        match self {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// A circuit breaker for one instance.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    phase: Phase,
    consecutive_failures: u32,
    transitions: VecDeque<Transition>,
    transitions_total: TransitionCounts,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            phase: Phase::Closed,
            consecutive_failures: 0,
            transitions: VecDeque::with_capacity(TRANSITIONS_KEPT),
            transitions_total: TransitionCounts::default(),
        }
    }

    /// The configuration this breaker runs with.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Asks to send one call at `now`; the `Admission` must be handed back through
    /// `on_success`, `on_failure` or `release_probe`.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Admission, Rejection> {
        self.half_open_if_due(now);
        match self.phase {
            Phase::Closed => Ok(Admission::Normal),
            Phase::Open { opened_at } => Err(Rejection {
                retry_in: self
                    .half_open_at(opened_at)
                    .map_or(self.config.reset, |at| at.saturating_duration_since(now)),
            }),
            Phase::HalfOpen { probes_in_flight } => {
                if probes_in_flight < self.config.half_open_probes.max(1) {
                    self.phase = Phase::HalfOpen {
                        probes_in_flight: probes_in_flight + 1,
                    };
                    Ok(Admission::Probe)
                } else {
                    Err(Rejection {
                        retry_in: Duration::ZERO,
                    })
                }
            }
        }
    }

    /// Records a call that succeeded.
    pub fn on_success(&mut self, now: Instant, admission: Admission) {
        self.half_open_if_due(now);
        match (self.phase, admission) {
            (Phase::HalfOpen { .. }, Admission::Probe) => {
                self.consecutive_failures = 0;
                self.move_to(Phase::Closed, now, "half-open probe succeeded".to_owned());
            }
            (Phase::Closed, _) => self.consecutive_failures = 0,
            // A call admitted before the breaker opened says nothing about the instance
            // now, and a probe answering after another probe decided is stale too.
            (Phase::Open { .. } | Phase::HalfOpen { .. }, _) => {}
        }
    }

    /// Records a call that failed; `cause` is a short reason shown to operators.
    pub fn on_failure(&mut self, now: Instant, admission: Admission, cause: &str) {
        self.half_open_if_due(now);
        match (self.phase, admission) {
            (Phase::HalfOpen { .. }, Admission::Probe) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.move_to(
                    Phase::Open { opened_at: now },
                    now,
                    format!("half-open probe failed: {cause}"),
                );
            }
            (Phase::Closed, _) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= self.config.failures.max(1) {
                    let reason = format!(
                        "{} consecutive failures: {cause}",
                        self.consecutive_failures
                    );
                    self.move_to(Phase::Open { opened_at: now }, now, reason);
                }
            }
            // Already cut off: a late failure must not restart the reset window, and only
            // probes decide a half-open breaker.
            (Phase::Open { .. } | Phase::HalfOpen { .. }, _) => {}
        }
    }

    /// Frees the probe slot of a call that was admitted but ended without an outcome
    /// (cancelled by the assistant, or never sent).
    pub fn release_probe(&mut self, admission: Admission) {
        if let (Phase::HalfOpen { probes_in_flight }, Admission::Probe) = (self.phase, admission) {
            self.phase = Phase::HalfOpen {
                probes_in_flight: probes_in_flight.saturating_sub(1),
            };
        }
    }

    /// An operator's reset: closed, failure count zero, whatever the state was.
    pub fn reset(&mut self, now: Instant, actor: &str) {
        self.half_open_if_due(now);
        self.consecutive_failures = 0;
        if !matches!(self.phase, Phase::Closed) {
            self.move_to(Phase::Closed, now, format!("reset by {actor}"));
        }
    }

    /// The state at `now`: half-open as soon as the reset timeout elapsed, even before the
    /// next `try_acquire` records the change.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { opened_at } => match self.half_open_at(opened_at) {
                Some(at) if now >= at => BreakerState::HalfOpen,
                _ => BreakerState::Open,
            },
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// A view for the dashboard as of `now`, including a pending open → half-open change.
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let mut transitions: Vec<Transition> = self.transitions.iter().cloned().collect();
        let mut transitions_total = self.transitions_total;
        let mut half_open_in = None;
        if let Phase::Open { opened_at } = self.phase {
            match self.half_open_at(opened_at) {
                Some(at) if now >= at => {
                    // Counted as if applied: the count stays the same when it really is.
                    transitions_total.count(BreakerState::HalfOpen);
                    transitions.push(Self::half_open_transition(at));
                    if transitions.len() > TRANSITIONS_KEPT {
                        transitions.remove(0);
                    }
                }
                Some(at) => half_open_in = Some(at.saturating_duration_since(now)),
                None => half_open_in = Some(self.config.reset),
            }
        }
        BreakerSnapshot {
            state: self.state(now),
            consecutive_failures: self.consecutive_failures,
            half_open_in,
            transitions,
            transitions_total,
        }
    }

    /// When a breaker opened at `opened_at` lets probes through; `None` if that instant is
    /// not representable (an absurd reset timeout), meaning "not in this process's lifetime".
    fn half_open_at(&self, opened_at: Instant) -> Option<Instant> {
        opened_at.checked_add(self.config.reset)
    }

    /// Applies the lazy open → half-open change, timestamped when the timeout elapsed.
    ///
    /// It depends only on the stored opening time, so every caller that passes a `now` at
    /// or after that moment sees the same state as `state(now)`.
    fn half_open_if_due(&mut self, now: Instant) {
        if let Phase::Open { opened_at } = self.phase
            && let Some(at) = self.half_open_at(opened_at)
            && now >= at
        {
            self.phase = Phase::HalfOpen {
                probes_in_flight: 0,
            };
            self.record(Self::half_open_transition(at));
        }
    }

    fn half_open_transition(at: Instant) -> Transition {
        Transition {
            at,
            from: BreakerState::Open,
            to: BreakerState::HalfOpen,
            cause: "reset timeout elapsed".to_owned(),
        }
    }

    fn move_to(&mut self, to: Phase, now: Instant, cause: String) {
        let from = self.phase.state();
        self.phase = to;
        self.record(Transition {
            at: now,
            from,
            to: to.state(),
            cause,
        });
    }

    fn record(&mut self, transition: Transition) {
        self.transitions_total.count(transition.to);
        if self.transitions.len() == TRANSITIONS_KEPT {
            self.transitions.pop_front();
        }
        self.transitions.push_back(transition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESET: Duration = Duration::from_secs(30);

    fn config(failures: u32, probes: u32) -> BreakerConfig {
        BreakerConfig {
            failures,
            reset: RESET,
            half_open_probes: probes,
        }
    }

    /// Fails `n` normal calls at `now`.
    fn fail(breaker: &mut Breaker, now: Instant, n: u32) {
        for _ in 0..n {
            let admission = breaker.try_acquire(now).unwrap();
            breaker.on_failure(now, admission, "connection refused");
        }
    }

    /// A breaker opened at `t0` by three failures.
    fn opened(probes: u32) -> (Breaker, Instant) {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(3, probes));
        fail(&mut breaker, t0, 3);
        assert_eq!(breaker.state(t0), BreakerState::Open);
        (breaker, t0)
    }

    #[test]
    fn default_config_matches_the_fleet_file_defaults() {
        let config = BreakerConfig::default();
        assert_eq!(config.failures, 5);
        assert_eq!(config.reset, Duration::from_secs(30));
        assert_eq!(config.half_open_probes, 1);
    }

    #[test]
    fn state_names_are_the_wire_names() {
        assert_eq!(BreakerState::Closed.as_str(), "closed");
        assert_eq!(BreakerState::Open.as_str(), "open");
        assert_eq!(BreakerState::HalfOpen.as_str(), "half_open");
    }

    #[test]
    fn opens_after_consecutive_failures_with_the_last_cause() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(BreakerConfig::default());
        fail(&mut breaker, t0, 4);
        assert_eq!(breaker.state(t0), BreakerState::Closed);
        assert_eq!(breaker.snapshot(t0).consecutive_failures, 4);
        let admission = breaker.try_acquire(t0).unwrap();
        assert_eq!(admission, Admission::Normal);
        breaker.on_failure(t0, admission, "timed out after 5s");

        let snapshot = breaker.snapshot(t0);
        assert_eq!(snapshot.state, BreakerState::Open);
        assert_eq!(snapshot.consecutive_failures, 5);
        assert_eq!(snapshot.half_open_in, Some(Duration::from_secs(30)));
        assert_eq!(
            snapshot.transitions,
            vec![Transition {
                at: t0,
                from: BreakerState::Closed,
                to: BreakerState::Open,
                cause: "5 consecutive failures: timed out after 5s".to_owned(),
            }]
        );
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(3, 1));
        fail(&mut breaker, t0, 2);
        let admission = breaker.try_acquire(t0).unwrap();
        breaker.on_success(t0, admission);
        assert_eq!(breaker.snapshot(t0).consecutive_failures, 0);
        fail(&mut breaker, t0, 2);
        assert_eq!(breaker.state(t0), BreakerState::Closed);
        fail(&mut breaker, t0, 1);
        assert_eq!(breaker.state(t0), BreakerState::Open);
    }

    #[test]
    fn open_rejects_with_the_time_until_half_open() {
        let (mut breaker, t0) = opened(1);
        let rejection = breaker
            .try_acquire(t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(rejection.retry_in, Duration::from_secs(20));
        let snapshot = breaker.snapshot(t0 + Duration::from_secs(10));
        assert_eq!(snapshot.half_open_in, Some(Duration::from_secs(20)));
    }

    #[test]
    fn state_is_half_open_once_the_timeout_elapsed_even_before_an_acquire() {
        let (breaker, t0) = opened(1);
        let just_before = t0 + RESET - Duration::from_millis(1);
        assert_eq!(breaker.state(just_before), BreakerState::Open);
        let later = t0 + RESET + Duration::from_secs(5);
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);

        let snapshot = breaker.snapshot(later);
        assert_eq!(snapshot.state, BreakerState::HalfOpen);
        assert_eq!(snapshot.half_open_in, None);
        let last = snapshot.transitions.last().unwrap();
        assert_eq!(
            (last.from, last.to, last.at),
            (BreakerState::Open, BreakerState::HalfOpen, t0 + RESET)
        );
        assert_eq!(last.cause, "reset timeout elapsed");
    }

    #[test]
    fn half_open_admits_only_the_configured_number_of_probes() {
        let (mut breaker, t0) = opened(2);
        let later = t0 + RESET;
        assert_eq!(breaker.try_acquire(later), Ok(Admission::Probe));
        assert_eq!(breaker.try_acquire(later), Ok(Admission::Probe));
        assert_eq!(
            breaker.try_acquire(later),
            Err(Rejection {
                retry_in: Duration::ZERO
            })
        );
        // The lazy change is recorded once, at the moment the timeout elapsed.
        let half_opens = breaker
            .snapshot(later)
            .transitions
            .iter()
            .filter(|t| t.to == BreakerState::HalfOpen)
            .count();
        assert_eq!(half_opens, 1);
    }

    #[test]
    fn a_probe_success_closes_the_breaker() {
        let (mut breaker, t0) = opened(1);
        let later = t0 + RESET + Duration::from_secs(1);
        let probe = breaker.try_acquire(later).unwrap();
        assert_eq!(probe, Admission::Probe);
        breaker.on_success(later, probe);

        let snapshot = breaker.snapshot(later);
        assert_eq!(snapshot.state, BreakerState::Closed);
        assert_eq!(snapshot.consecutive_failures, 0);
        let states: Vec<_> = snapshot
            .transitions
            .iter()
            .map(|t| (t.from.as_str(), t.to.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("closed", "open"),
                ("open", "half_open"),
                ("half_open", "closed")
            ]
        );
        assert_eq!(breaker.try_acquire(later), Ok(Admission::Normal));
    }

    #[test]
    fn a_probe_failure_reopens_with_a_new_reset_window() {
        let (mut breaker, t0) = opened(1);
        let probe_time = t0 + RESET + Duration::from_secs(3);
        let probe = breaker.try_acquire(probe_time).unwrap();
        breaker.on_failure(probe_time, probe, "HTTP 503");

        let snapshot = breaker.snapshot(probe_time);
        assert_eq!(snapshot.state, BreakerState::Open);
        assert_eq!(snapshot.half_open_in, Some(RESET));
        let last = snapshot.transitions.last().unwrap();
        assert_eq!(
            (last.from, last.to),
            (BreakerState::HalfOpen, BreakerState::Open)
        );
        assert_eq!(last.cause, "half-open probe failed: HTTP 503");

        // The new window counts from the probe's failure, not from the first opening.
        assert!(breaker.try_acquire(t0 + RESET * 2).is_err());
        assert_eq!(
            breaker.try_acquire(probe_time + RESET),
            Ok(Admission::Probe)
        );
    }

    #[test]
    fn a_released_probe_frees_its_slot() {
        let (mut breaker, t0) = opened(1);
        let later = t0 + RESET;
        let probe = breaker.try_acquire(later).unwrap();
        assert!(breaker.try_acquire(later).is_err());
        breaker.release_probe(probe);
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        assert_eq!(breaker.try_acquire(later), Ok(Admission::Probe));
        // Releasing a normal admission changes nothing.
        breaker.release_probe(Admission::Normal);
        assert!(breaker.try_acquire(later).is_err());
    }

    #[test]
    fn late_normal_outcomes_do_not_change_an_open_or_half_open_breaker() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(3, 1));
        // Admitted while closed, answered after the breaker opened.
        let in_flight: Vec<_> = (0..3).map(|_| breaker.try_acquire(t0).unwrap()).collect();
        fail(&mut breaker, t0, 3);
        let transitions = breaker.snapshot(t0).transitions.len();

        let t1 = t0 + Duration::from_secs(10);
        breaker.on_success(t1, in_flight[0]);
        assert_eq!(breaker.state(t1), BreakerState::Open);
        breaker.on_failure(t1, in_flight[1], "late");
        // The late failure did not restart the reset window.
        assert_eq!(
            breaker.snapshot(t1).half_open_in,
            Some(Duration::from_secs(20))
        );
        assert_eq!(breaker.snapshot(t1).transitions.len(), transitions);

        // Half-open: only the probe decides.
        let t2 = t0 + RESET;
        let probe = breaker.try_acquire(t2).unwrap();
        breaker.on_success(t2, in_flight[2]);
        assert_eq!(breaker.state(t2), BreakerState::HalfOpen);
        breaker.on_failure(t2, Admission::Normal, "late");
        assert_eq!(breaker.state(t2), BreakerState::HalfOpen);
        assert!(
            breaker.try_acquire(t2).is_err(),
            "the probe slot is still taken"
        );
        breaker.on_success(t2, probe);
        assert_eq!(breaker.state(t2), BreakerState::Closed);
    }

    #[test]
    fn a_stale_probe_outcome_after_the_decision_is_ignored() {
        let (mut breaker, t0) = opened(2);
        let later = t0 + RESET;
        let first = breaker.try_acquire(later).unwrap();
        let second = breaker.try_acquire(later).unwrap();
        breaker.on_failure(later, first, "HTTP 500");
        assert_eq!(breaker.state(later), BreakerState::Open);
        breaker.on_success(later, second);
        assert_eq!(breaker.state(later), BreakerState::Open);
        breaker.release_probe(second);
        assert_eq!(breaker.state(later), BreakerState::Open);
    }

    #[test]
    fn an_operator_reset_closes_and_is_recorded() {
        let (mut breaker, t0) = opened(1);
        let t1 = t0 + Duration::from_secs(5);
        breaker.reset(t1, "alice");
        let snapshot = breaker.snapshot(t1);
        assert_eq!(snapshot.state, BreakerState::Closed);
        assert_eq!(snapshot.consecutive_failures, 0);
        assert_eq!(snapshot.half_open_in, None);
        let last = snapshot.transitions.last().unwrap();
        assert_eq!(
            (last.at, last.from, last.to, last.cause.as_str()),
            (
                t1,
                BreakerState::Open,
                BreakerState::Closed,
                "reset by alice"
            )
        );
        assert_eq!(breaker.try_acquire(t1), Ok(Admission::Normal));
    }

    #[test]
    fn resetting_a_closed_breaker_clears_the_count_without_a_transition() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(3, 1));
        fail(&mut breaker, t0, 2);
        breaker.reset(t0, "alice");
        let snapshot = breaker.snapshot(t0);
        assert_eq!(snapshot.consecutive_failures, 0);
        assert!(snapshot.transitions.is_empty());
        fail(&mut breaker, t0, 2);
        assert_eq!(breaker.state(t0), BreakerState::Closed);
    }

    #[test]
    fn only_the_newest_transitions_are_kept() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(1, 1));
        for round in 0..15u32 {
            let now = t0 + RESET * round;
            fail(&mut breaker, now, 1);
            breaker.reset(now, &format!("op{round}"));
        }
        let transitions = breaker.snapshot(t0).transitions;
        assert_eq!(transitions.len(), TRANSITIONS_KEPT);
        assert_eq!(transitions.last().unwrap().cause, "reset by op14");
        // 30 were recorded; the first 10 (rounds 0..5) were dropped.
        assert_eq!(transitions.first().unwrap().at, t0 + RESET * 5);
        assert!(transitions.windows(2).all(|pair| pair[0].at <= pair[1].at));
    }

    #[test]
    fn the_pending_half_open_change_does_not_exceed_the_kept_transitions() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(1, 1));
        for round in 0..10u32 {
            let now = t0 + RESET * round;
            fail(&mut breaker, now, 1);
            breaker.reset(now, "op");
        }
        fail(&mut breaker, t0 + RESET * 10, 1);
        let later = t0 + RESET * 12;
        let transitions = breaker.snapshot(later).transitions;
        assert_eq!(transitions.len(), TRANSITIONS_KEPT);
        assert_eq!(transitions.last().unwrap().to, BreakerState::HalfOpen);
    }

    #[test]
    fn transitions_are_counted_by_the_state_entered_beyond_the_kept_list() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(1, 1));
        for round in 0..15u32 {
            let now = t0 + RESET * round;
            fail(&mut breaker, now, 1);
            breaker.reset(now, "op");
        }
        let counts = breaker.snapshot(t0).transitions_total;
        assert_eq!((counts.open, counts.closed, counts.half_open), (15, 15, 0));

        // Open, then the timeout elapses: the pending change counts before it is applied,
        // and applying it does not count it twice.
        let opened_at = t0 + RESET * 20;
        fail(&mut breaker, opened_at, 1);
        let later = opened_at + RESET;
        let pending = breaker.snapshot(later).transitions_total;
        assert_eq!(pending.entered(BreakerState::Open), 16);
        assert_eq!(pending.entered(BreakerState::HalfOpen), 1);
        let probe = breaker.try_acquire(later).unwrap();
        assert_eq!(breaker.snapshot(later).transitions_total, pending);
        breaker.on_success(later, probe);
        assert_eq!(
            breaker
                .snapshot(later)
                .transitions_total
                .entered(BreakerState::Closed),
            16
        );
    }

    #[test]
    fn zero_limits_are_treated_as_one() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config(0, 0));
        fail(&mut breaker, t0, 1);
        assert_eq!(breaker.state(t0), BreakerState::Open);
        assert_eq!(breaker.try_acquire(t0 + RESET), Ok(Admission::Probe));
    }
}
