//! Choosing an instance for one call among the eligible ones (not drained, not unhealthy,
//! breaker admits: the caller decides eligibility and passes only those).

use serde::Deserialize;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a server's calls are spread over its instances (the fleet file's `strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Fewest calls in flight, weighted by recent latency.
    LeastLoad,
    /// Each instance in turn.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The same assistant sticks to the same instance (warm caches, session affinity).
    ConsistentHash,
}

impl Strategy {
    /// Every strategy, in the order they are documented.
    pub const ALL: [Strategy; 4] = [
        Strategy::LeastLoad,
        Strategy::RoundRobin,
        Strategy::Random,
        Strategy::ConsistentHash,
    ];

    /// The fleet-file name, e.g. "least-load".
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LeastLoad => "least-load",
            Strategy::RoundRobin => "round-robin",
            Strategy::Random => "random",
            Strategy::ConsistentHash => "consistent-hash",
        }
    }
}

/// A strategy name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {0:?}: expected one of least-load, round-robin, random, consistent-hash")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == name)
            .ok_or_else(|| UnknownStrategy(name.to_owned()))
    }
}

/// One eligible instance, as the balancer sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate<'a> {
    /// The instance id from the fleet file (the consistent-hash key).
    pub id: &'a str,
    /// Calls currently in flight to it.
    pub in_flight: u32,
    /// Recent latency in milliseconds. Pass a stand-in (the gateway uses the fastest known
    /// instance's) for an instance without samples: 0 would make least-load send it nearly
    /// everything.
    pub latency_ewma_ms: f64,
}

/// Below this, latencies count as equal, so a fast idle instance does not look infinitely
/// better than the others (and 0 from an empty window does not zero the cost).
const LATENCY_FLOOR_MS: f64 = 0.1;

/// Picks instances with one strategy; shared across tasks (`&self`, lock-free).
#[derive(Debug)]
pub struct Balancer {
    strategy: Strategy,
    next: AtomicUsize,
}

impl Balancer {
    /// A balancer using `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Balancer {
            strategy,
            next: AtomicUsize::new(0),
        }
    }

    /// The strategy it uses.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The index into `candidates` of the instance for this call of `assistant`;
    /// `None` when there are no candidates.
    pub fn pick(&self, candidates: &[Candidate<'_>], assistant: &str) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let index = match self.strategy {
            Strategy::RoundRobin => self.turn() % candidates.len(),
            Strategy::Random => fastrand::usize(..candidates.len()),
            Strategy::LeastLoad => self.least_load(candidates),
            Strategy::ConsistentHash => rendezvous(candidates, assistant),
        };
        Some(index)
    }

    /// The next value of the rotation counter (wrapping, so it never panics).
    fn turn(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The cheapest candidate; ties rotate so an idle, uniform fleet is spread evenly
    /// instead of piling onto the first instance.
    fn least_load(&self, candidates: &[Candidate<'_>]) -> usize {
        let costs = || candidates.iter().map(load_cost);
        // Exact float equality on purpose: costs tie only when the inputs are identical.
        let cheapest = costs().fold(f64::INFINITY, f64::min);
        let tied = costs().filter(|cost| *cost == cheapest).count();
        // No tie means one winner, or only infinite costs (absurd latencies): take the first.
        let nth_tied = if tied > 1 { self.turn() % tied } else { 0 };
        costs()
            .enumerate()
            .filter(|(_, cost)| *cost == cheapest)
            .nth(nth_tied)
            .map_or(0, |(index, _)| index)
    }
}

/// Expected wait if one more call joins: the queue it joins times how long each takes.
fn load_cost(candidate: &Candidate<'_>) -> f64 {
    (f64::from(candidate.in_flight) + 1.0) * candidate.latency_ewma_ms.max(LATENCY_FLOOR_MS)
}

/// Highest-random-weight hashing: each (assistant, instance) pair gets a fixed score and the
/// highest wins, so removing an instance moves only the assistants that were on it.
fn rendezvous(candidates: &[Candidate<'_>], assistant: &str) -> usize {
    candidates
        .iter()
        .enumerate()
        // Ties (a 2^-64 chance) go to the smaller id, so the choice never depends on order.
        .max_by(|(_, a), (_, b)| {
            pair_hash(assistant, a.id)
                .cmp(&pair_hash(assistant, b.id))
                .then_with(|| b.id.cmp(a.id))
        })
        .map_or(0, |(index, _)| index)
}

/// A 64-bit hash of (assistant, instance) that is the same in every process and replica,
/// unlike `DefaultHasher`, which is randomly seeded: FNV-1a, then a finaliser.
fn pair_hash(assistant: &str, instance: &str) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    // 0xff never occurs in UTF-8, so ("ab", "c") and ("a", "bc") hash differently.
    let bytes = assistant
        .bytes()
        .chain(std::iter::once(0xff))
        .chain(instance.bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    mix64(hash)
}

/// SplitMix64's finaliser: FNV-1a's last bytes barely reach the high bits, and rendezvous
/// compares whole scores, so without mixing similar ids would skew the shares.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn idle(id: &str) -> Candidate<'_> {
        Candidate {
            id,
            in_flight: 0,
            latency_ewma_ms: 20.0,
        }
    }

    /// How often each index is picked in `rounds` calls.
    fn tally(balancer: &Balancer, candidates: &[Candidate<'_>], rounds: usize) -> Vec<usize> {
        let mut counts = vec![0; candidates.len()];
        for round in 0..rounds {
            let index = balancer
                .pick(candidates, &format!("assistant-{round}"))
                .unwrap();
            counts[index] += 1;
        }
        counts
    }

    #[test]
    fn strategy_names_round_trip() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
            let json = format!("\"{}\"", strategy.as_str());
            assert_eq!(serde_json::from_str::<Strategy>(&json).unwrap(), strategy);
        }
    }

    #[test]
    fn an_unknown_strategy_names_the_valid_ones() {
        let error = "least_load".parse::<Strategy>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown strategy \"least_load\": expected one of least-load, round-robin, \
             random, consistent-hash"
        );
        assert!(serde_json::from_str::<Strategy>("\"LeastLoad\"").is_err());
    }

    #[test]
    fn no_candidates_means_no_pick() {
        for strategy in Strategy::ALL {
            assert_eq!(Balancer::new(strategy).pick(&[], "a"), None);
        }
    }

    #[test]
    fn a_single_candidate_is_always_picked() {
        let only = [idle("only")];
        for strategy in Strategy::ALL {
            let balancer = Balancer::new(strategy);
            assert!((0..10).all(|_| balancer.pick(&only, "a") == Some(0)));
        }
    }

    #[test]
    fn the_balancer_is_shareable_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Balancer>();
    }

    #[test]
    fn round_robin_rotates_exactly() {
        let candidates = [idle("a"), idle("b"), idle("c")];
        let balancer = Balancer::new(Strategy::RoundRobin);
        let picks: Vec<_> = (0..6)
            .map(|_| balancer.pick(&candidates, "x").unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_eq!(tally(&balancer, &candidates, 3000), [1000, 1000, 1000]);
    }

    #[test]
    fn random_spreads_roughly_uniformly() {
        fastrand::seed(7);
        let candidates = [idle("a"), idle("b"), idle("c"), idle("d")];
        let counts = tally(&Balancer::new(Strategy::Random), &candidates, 8000);
        // Expected 2000 each; the standard deviation is about 39, so this is > 7 sigma.
        for count in counts {
            assert!((1700..=2300).contains(&count), "{count}");
        }
    }

    #[test]
    fn least_load_spreads_an_idle_uniform_fleet_evenly() {
        let candidates = [idle("a"), idle("b"), idle("c"), idle("d")];
        let counts = tally(&Balancer::new(Strategy::LeastLoad), &candidates, 400);
        assert_eq!(counts, [100, 100, 100, 100]);
    }

    #[test]
    fn least_load_prefers_the_idle_instance() {
        let candidates = [
            Candidate {
                in_flight: 3,
                ..idle("busy")
            },
            idle("idle"),
            Candidate {
                in_flight: 1,
                ..idle("some")
            },
        ];
        let balancer = Balancer::new(Strategy::LeastLoad);
        assert!((0..10).all(|_| balancer.pick(&candidates, "x") == Some(1)));
    }

    #[test]
    fn least_load_prefers_the_faster_instance() {
        let candidates = [
            Candidate {
                latency_ewma_ms: 200.0,
                ..idle("slow")
            },
            Candidate {
                latency_ewma_ms: 20.0,
                ..idle("fast")
            },
        ];
        let balancer = Balancer::new(Strategy::LeastLoad);
        assert_eq!(balancer.pick(&candidates, "x"), Some(1));
        // With a queue of 10, the fast one (11 * 20 = 220) costs more than the idle slow one.
        let queued = [
            candidates[0],
            Candidate {
                in_flight: 10,
                ..candidates[1]
            },
        ];
        assert_eq!(balancer.pick(&queued, "x"), Some(0));
    }

    #[test]
    fn least_load_tracks_load_as_calls_accumulate() {
        // Simulate calls that never finish: each pick adds one in flight, so a 2x faster
        // instance should end up with about twice the calls.
        let mut candidates = [
            Candidate {
                latency_ewma_ms: 10.0,
                ..idle("fast")
            },
            Candidate {
                latency_ewma_ms: 20.0,
                ..idle("slow")
            },
        ];
        let balancer = Balancer::new(Strategy::LeastLoad);
        for _ in 0..300 {
            let index = balancer.pick(&candidates, "x").unwrap();
            candidates[index].in_flight += 1;
        }
        let (fast, slow) = (candidates[0].in_flight, candidates[1].in_flight);
        assert!((199..=201).contains(&fast), "fast {fast}, slow {slow}");
        assert_eq!(fast + slow, 300);
    }

    #[test]
    fn least_load_floors_zero_and_nan_latency() {
        let candidates = [
            Candidate {
                in_flight: 2,
                latency_ewma_ms: 0.0,
                ..idle("new")
            },
            Candidate {
                in_flight: 0,
                latency_ewma_ms: f64::NAN,
                ..idle("odd")
            },
        ];
        // Costs: 3 * 0.1 and 1 * 0.1.
        assert_eq!(
            Balancer::new(Strategy::LeastLoad).pick(&candidates, "x"),
            Some(1)
        );
    }

    #[test]
    fn consistent_hash_is_stable_and_independent_of_candidate_order() {
        let ids = ["search-1", "search-2", "search-3"];
        let forward: Vec<_> = ids.iter().map(|id| idle(id)).collect();
        let backward: Vec<_> = ids.iter().rev().map(|id| idle(id)).collect();
        let balancer = Balancer::new(Strategy::ConsistentHash);
        for n in 0..100 {
            let assistant = format!("assistant-{n}");
            let first = forward[balancer.pick(&forward, &assistant).unwrap()].id;
            for _ in 0..3 {
                assert_eq!(
                    forward[balancer.pick(&forward, &assistant).unwrap()].id,
                    first
                );
            }
            assert_eq!(
                backward[balancer.pick(&backward, &assistant).unwrap()].id,
                first
            );
        }
    }

    #[test]
    fn consistent_hash_is_fixed_across_processes() {
        // Pinned values (computed independently): a change here means every replica and
        // every restart would reshuffle assistants.
        assert_eq!(pair_hash("", ""), 0x4f2d_b50f_1240_40cd);
        assert_ne!(pair_hash("ab", "c"), pair_hash("a", "bc"));
        let candidates = [idle("search-1"), idle("search-2"), idle("search-3")];
        let balancer = Balancer::new(Strategy::ConsistentHash);
        let picks: Vec<_> = (0..8)
            .map(|n| {
                balancer
                    .pick(&candidates, &format!("assistant-{n}"))
                    .unwrap()
            })
            .collect();
        assert_eq!(picks, [2, 1, 1, 0, 1, 0, 2, 1]);
    }

    #[test]
    fn consistent_hash_shares_are_balanced_and_removal_moves_only_the_removed_ones() {
        let ids = ["mcp-a", "mcp-b", "mcp-c", "mcp-d"];
        let all: Vec<_> = ids.iter().map(|id| idle(id)).collect();
        let balancer = Balancer::new(Strategy::ConsistentHash);
        let assistants: Vec<String> = (0..1000).map(|n| format!("assistant-{n}")).collect();
        let before: HashMap<&str, &str> = assistants
            .iter()
            .map(|a| (a.as_str(), all[balancer.pick(&all, a).unwrap()].id))
            .collect();

        for id in ids {
            let share = before.values().filter(|&&on| on == id).count();
            assert!((150..=350).contains(&share), "{id} got {share} of 1000");
        }

        let without_c: Vec<_> = all.iter().copied().filter(|c| c.id != "mcp-c").collect();
        let mut moved = 0;
        for assistant in &assistants {
            let now = without_c[balancer.pick(&without_c, assistant).unwrap()].id;
            let was = before[assistant.as_str()];
            if was == "mcp-c" {
                moved += 1;
            } else {
                assert_eq!(now, was, "{assistant} moved off {was}");
            }
        }
        assert_eq!(moved, before.values().filter(|&&on| on == "mcp-c").count());

        // When it comes back, exactly the same assistants return to it.
        for assistant in &assistants {
            let back = all[balancer.pick(&all, assistant).unwrap()].id;
            assert_eq!(back, before[assistant.as_str()]);
        }
    }
}
