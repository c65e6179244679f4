//! Capacity: how busy an instance is, and advice to scale a server up or down when its
//! utilisation stays high or low (the seeds' server manager). Plain logic over per-minute
//! values; the sampler feeds it and records the advice as events.

use std::collections::{HashMap, VecDeque};

/// What an instance's utilisation is made of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadInputs {
    /// Calls in flight (this replica's count, or the instance's own report if higher).
    pub in_flight: f64,
    /// The instance's concurrency limit.
    pub max_in_flight: u32,
    /// Scraped CPU cores busy, if scraped.
    pub cpu_cores: Option<f64>,
    /// Cores the instance may use.
    pub cpu_limit: f64,
    /// Scraped resident memory in bytes, if scraped.
    pub resident_bytes: Option<f64>,
    /// Memory the instance may use, in bytes, if declared.
    pub memory_limit_bytes: Option<f64>,
}

/// Utilisation 0..: the busiest of concurrency slots, CPU and memory (1.0 = at the limit).
pub fn utilisation(inputs: &LoadInputs) -> f64 {
    let slots = inputs.in_flight / f64::from(inputs.max_in_flight.max(1));
    let cpu = inputs
        .cpu_cores
        .filter(|_| inputs.cpu_limit > 0.0)
        .map_or(0.0, |cores| cores / inputs.cpu_limit);
    let memory = match (inputs.resident_bytes, inputs.memory_limit_bytes) {
        (Some(used), Some(limit)) if limit > 0.0 => used / limit,
        _ => 0.0,
    };
    let busiest = slots.max(cpu).max(memory);
    if busiest.is_finite() {
        busiest.max(0.0)
    } else {
        0.0
    }
}

/// Which way to scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Add instances: utilisation stayed high.
    Up,
    /// Remove instances: utilisation stayed low.
    Down,
}

impl Direction {
    /// `scale_up` or `scale_down`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "scale_up",
            Direction::Down => "scale_down",
        }
    }
}

/// When to advise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CapacityPolicy {
    /// Above this utilisation for `minutes` minutes: scale up.
    pub high: f64,
    /// Below this utilisation for `minutes` minutes: scale down.
    pub low: f64,
    /// Consecutive minutes the condition must hold.
    pub minutes: usize,
}

impl Default for CapacityPolicy {
    fn default() -> Self {
        CapacityPolicy {
            high: 0.8,
            low: 0.2,
            minutes: 5,
        }
    }
}

/// Advice with the minutes that justify it.
#[derive(Clone, Debug, PartialEq)]
pub struct Advice {
    /// The server.
    pub server: String,
    /// Which way.
    pub direction: Direction,
    /// The server's utilisation per minute (Unix ms of the minute, 0..) that led to it.
    pub evidence: Vec<(i64, f64)>,
    /// Instances taking calls when advised.
    pub instances: usize,
    /// One sentence for the dashboard.
    pub message: String,
}

#[derive(Debug, Default)]
struct ServerHistory {
    minutes: VecDeque<(i64, f64)>,
    advised: Option<Direction>,
}

/// Remembers each server's recent minutes and advises once per episode: advice is given
/// again only after the condition stopped holding.
#[derive(Debug, Default)]
pub struct CapacityAdvisor {
    policy: CapacityPolicy,
    servers: HashMap<String, ServerHistory>,
}

impl CapacityAdvisor {
    /// An advisor with `policy`.
    pub fn new(policy: CapacityPolicy) -> Self {
        CapacityAdvisor {
            policy,
            servers: HashMap::new(),
        }
    }

    /// A server's utilisation over one complete minute, with the instances taking calls.
    pub fn observe(
        &mut self,
        server: &str,
        minute_ms: i64,
        utilisation: f64,
        instances: usize,
    ) -> Option<Advice> {
        let policy = self.policy;
        let history = self.servers.entry(server.to_string()).or_default();
        // A gap (no sample for a minute: restart, no instances) starts the count again.
        if history
            .minutes
            .back()
            .is_some_and(|(last, _)| minute_ms != last + 60_000)
        {
            history.minutes.clear();
        }
        history.minutes.push_back((minute_ms, utilisation));
        while history.minutes.len() > policy.minutes {
            history.minutes.pop_front();
        }
        let full = history.minutes.len() == policy.minutes;
        let holds = |d: Direction| {
            full && history.minutes.iter().all(|(_, u)| match d {
                Direction::Up => *u > policy.high,
                Direction::Down => *u < policy.low,
            })
        };
        // One instance cannot be scaled down (that would be none): no advice for it.
        let now = [Direction::Up, Direction::Down]
            .into_iter()
            .filter(|d| *d == Direction::Up || instances > 1)
            .find(|d| holds(*d));
        let Some(direction) = now else {
            history.advised = None;
            return None;
        };
        if history.advised == Some(direction) {
            return None;
        }
        history.advised = Some(direction);
        let evidence: Vec<(i64, f64)> = history.minutes.iter().copied().collect();
        let mean = evidence.iter().map(|(_, u)| u).sum::<f64>() / evidence.len() as f64;
        let message = match direction {
            Direction::Up => format!(
                "scale {server} up: utilisation above {:.0}% for {} minutes (mean {:.0}%, {instances} instances taking calls)",
                policy.high * 100.0,
                policy.minutes,
                mean * 100.0
            ),
            Direction::Down => format!(
                "scale {server} down: utilisation below {:.0}% for {} minutes (mean {:.0}%, {instances} instances taking calls)",
                policy.low * 100.0,
                policy.minutes,
                mean * 100.0
            ),
        };
        Some(Advice {
            server: server.to_string(),
            direction,
            evidence,
            instances,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000;

    #[test]
    fn utilisation_is_the_busiest_resource() {
        let mut inputs = LoadInputs {
            in_flight: 8.0,
            max_in_flight: 32,
            cpu_cores: None,
            cpu_limit: 1.0,
            resident_bytes: Some(900.0),
            memory_limit_bytes: None,
        };
        assert_eq!(
            utilisation(&inputs),
            0.25,
            "slots only: memory has no limit"
        );
        inputs.cpu_cores = Some(0.5);
        assert_eq!(utilisation(&inputs), 0.5);
        inputs.memory_limit_bytes = Some(1000.0);
        assert_eq!(utilisation(&inputs), 0.9);
        inputs.max_in_flight = 0;
        assert_eq!(utilisation(&inputs), 8.0, "a zero limit counts as one slot");
    }

    #[test]
    fn five_high_minutes_advise_scaling_up_once_with_the_evidence() {
        let mut advisor = CapacityAdvisor::new(CapacityPolicy::default());
        for m in 0..4 {
            assert_eq!(advisor.observe("search", m * M, 0.9, 3), None, "minute {m}");
        }
        let advice = advisor.observe("search", 4 * M, 0.85, 3).expect("advice");
        assert_eq!(advice.direction, Direction::Up);
        assert_eq!(advice.evidence.len(), 5);
        assert_eq!(advice.evidence[4], (4 * M, 0.85));
        assert_eq!(
            advice.message,
            "scale search up: utilisation above 80% for 5 minutes (mean 89%, 3 instances taking calls)"
        );
        assert_eq!(
            advisor.observe("search", 5 * M, 0.95, 3),
            None,
            "once per episode"
        );
        assert_eq!(
            advisor.observe("search", 6 * M, 0.5, 3),
            None,
            "episode over"
        );
        for m in 7..11 {
            assert_eq!(advisor.observe("search", m * M, 0.9, 3), None);
        }
        assert!(
            advisor.observe("search", 11 * M, 0.9, 3).is_some(),
            "a new episode"
        );
    }

    #[test]
    fn one_ordinary_minute_or_a_gap_restarts_the_count() {
        let mut advisor = CapacityAdvisor::new(CapacityPolicy::default());
        for m in [0, 1, 2, 3] {
            advisor.observe("db", m * M, 0.05, 2);
        }
        assert_eq!(
            advisor.observe("db", 4 * M, 0.2, 2),
            None,
            "0.2 is not below 0.2"
        );
        for m in [5, 6, 7, 8] {
            assert_eq!(advisor.observe("db", m * M, 0.05, 2), None);
        }
        // Minute 10 follows a gap: 8 and 10 are not consecutive.
        assert_eq!(advisor.observe("db", 10 * M, 0.05, 2), None);
        for m in [11, 12, 13] {
            assert_eq!(advisor.observe("db", m * M, 0.05, 2), None);
        }
        let advice = advisor
            .observe("db", 14 * M, 0.05, 2)
            .expect("five after the gap");
        assert_eq!(advice.direction, Direction::Down);
        assert_eq!(advice.evidence.first().map(|e| e.0), Some(10 * M));
        let mut single = CapacityAdvisor::new(CapacityPolicy::default());
        for m in 0..10 {
            assert_eq!(
                single.observe("solo", m * M, 0.01, 1),
                None,
                "one instance stays"
            );
        }
    }
}
