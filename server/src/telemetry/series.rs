//! Per-minute series of the fleet, per server, per instance and per tool: calls, errors,
//! latency percentiles, cache hits, and (per instance) utilisation. The current minutes are
//! kept in memory and handed to the store once complete; charts read both.
//!
//! A series is named by its `SeriesKey`; an empty part means "all": `("", "", "")` is the
//! fleet, `("search", "", "")` the search server, `("search", "search-1", "")` one of its
//! instances and `("search", "", "query")` one of its tools.

use crate::gateway::record::{CallRecord, Outcome};
use std::collections::HashMap;
use std::sync::Mutex;

/// Which series a point belongs to ("" = all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Server name, or "" for the fleet.
    pub server: String,
    /// Instance id, or "".
    pub instance: String,
    /// Upstream tool name, or "".
    pub tool: String,
}

impl SeriesKey {
    /// The whole fleet.
    pub fn fleet() -> Self {
        SeriesKey::default()
    }

    /// One server.
    pub fn server(server: &str) -> Self {
        SeriesKey {
            server: server.into(),
            ..SeriesKey::default()
        }
    }

    /// One instance of a server.
    pub fn instance(server: &str, instance: &str) -> Self {
        SeriesKey {
            server: server.into(),
            instance: instance.into(),
            tool: String::new(),
        }
    }

    /// One tool of a server.
    pub fn tool(server: &str, tool: &str) -> Self {
        SeriesKey {
            server: server.into(),
            instance: String::new(),
            tool: tool.into(),
        }
    }
}

/// One minute of one series, as stored and charted.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoint {
    /// The minute (Unix ms of its start).
    pub minute_ms: i64,
    /// Calls that reached routing (refusals by permission, rate limit or validation are
    /// counted by the audit log and the metrics, not here).
    pub calls: u64,
    /// Calls that failed or whose tool answered with an error.
    pub errors: u64,
    /// Calls of cacheable tools.
    pub cache_lookups: u64,
    /// Of those, answered from the cache.
    pub cache_hits: u64,
    /// Latency percentiles in ms (None without calls).
    pub p50_ms: Option<f64>,
    /// See `p50_ms`.
    pub p95_ms: Option<f64>,
    /// See `p50_ms`.
    pub p99_ms: Option<f64>,
    /// Mean utilisation over the minute, 0..=1 (instances and servers only).
    pub utilisation: Option<f64>,
}

impl SeriesPoint {
    /// Errors per call (None without calls).
    pub fn error_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.errors as f64 / self.calls as f64)
    }

    /// Cache hits per cacheable call (None without any).
    pub fn hit_rate(&self) -> Option<f64> {
        (self.cache_lookups > 0).then(|| self.cache_hits as f64 / self.cache_lookups as f64)
    }
}

/// Latency histogram with logarithmic buckets: bucket `i` holds durations up to
/// `FIRST_BOUND_MS × GROWTH^i`, so a percentile is exact to within one bucket (±12%).
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    counts: [u32; BUCKETS],
    total: u64,
}

const BUCKETS: usize = 96;
const FIRST_BOUND_MS: f64 = 0.05;
const GROWTH: f64 = 1.25;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: [0; BUCKETS],
            total: 0,
        }
    }
}

impl LatencyHistogram {
    fn bound(index: usize) -> f64 {
        FIRST_BOUND_MS * GROWTH.powi(index as i32)
    }

    /// Counts one duration in ms.
    pub fn record(&mut self, ms: f64) {
        let index = if ms <= FIRST_BOUND_MS {
            0
        } else {
            ((ms / FIRST_BOUND_MS).ln() / GROWTH.ln()).ceil() as usize
        };
        self.counts[index.min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// The `q` quantile (0..=1) in ms: the upper bound of the bucket holding it.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (index, count) in self.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                return Some(Self::bound(index));
            }
        }
        Some(Self::bound(BUCKETS - 1))
    }
}

/// What one series accumulates during a minute.
#[derive(Clone, Debug, Default)]
struct Cell {
    calls: u64,
    errors: u64,
    cache_lookups: u64,
    cache_hits: u64,
    latency: LatencyHistogram,
    utilisation_sum: f64,
    utilisation_samples: u32,
}

impl Cell {
    fn point(&self, minute_ms: i64) -> SeriesPoint {
        SeriesPoint {
            minute_ms,
            calls: self.calls,
            errors: self.errors,
            cache_lookups: self.cache_lookups,
            cache_hits: self.cache_hits,
            p50_ms: self.latency.quantile(0.50),
            p95_ms: self.latency.quantile(0.95),
            p99_ms: self.latency.quantile(0.99),
            utilisation: (self.utilisation_samples > 0)
                .then(|| self.utilisation_sum / f64::from(self.utilisation_samples)),
        }
    }
}

/// The start (Unix ms) of the minute holding `at_ms`.
pub fn minute_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(60_000) * 60_000
}

/// The minutes being filled; thread-safe, shared by the gateway and the sampler.
#[derive(Debug, Default)]
pub struct SeriesBook {
    cells: Mutex<HashMap<(i64, SeriesKey), Cell>>,
}

impl SeriesBook {
    /// An empty book.
    pub fn new() -> Self {
        SeriesBook::default()
    }

    fn cells(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, SeriesKey), Cell>> {
        self.cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a finished call in the fleet's, its server's, its instance's and its tool's
    /// series of the minute it ended in.
    pub fn observe(&self, record: &CallRecord) {
        if matches!(
            record.outcome,
            Outcome::Denied | Outcome::RateLimited | Outcome::Rejected
        ) {
            return;
        }
        // Filed by when it ended: a minute is stored about a second after it ends, and a
        // call that started in it but ends later would otherwise come too late for it.
        let ended_ms = record.at_ms + i64::try_from(record.duration.as_millis()).unwrap_or(0);
        let minute = minute_of(ended_ms);
        let error = matches!(record.outcome, Outcome::Failed | Outcome::ToolError);
        let ms = record.duration.as_secs_f64() * 1000.0;
        let mut keys = vec![
            SeriesKey::fleet(),
            SeriesKey::server(&record.server),
            SeriesKey::tool(&record.server, &record.tool),
        ];
        if let Some(instance) = &record.instance {
            keys.push(SeriesKey::instance(&record.server, instance));
        }
        let mut cells = self.cells();
        for key in keys {
            let cell = cells.entry((minute, key)).or_default();
            cell.calls += 1;
            cell.errors += u64::from(error);
            cell.cache_lookups += u64::from(record.cacheable);
            cell.cache_hits += u64::from(record.cache_hit);
            cell.latency.record(ms);
        }
    }

    /// Adds a utilisation sample (0..=1) to a series' current minute.
    pub fn sample_utilisation(&self, at_ms: i64, key: SeriesKey, utilisation: f64) {
        let mut cells = self.cells();
        let cell = cells.entry((minute_of(at_ms), key)).or_default();
        cell.utilisation_sum += utilisation;
        cell.utilisation_samples += 1;
    }

    /// Removes and returns every minute that ended before `now_ms`, sorted by minute.
    pub fn take_complete(&self, now_ms: i64) -> Vec<(SeriesKey, SeriesPoint)> {
        let current = minute_of(now_ms);
        let mut cells = self.cells();
        let done: Vec<(i64, SeriesKey)> = cells
            .keys()
            .filter(|(minute, _)| *minute < current)
            .cloned()
            .collect();
        let mut points: Vec<(SeriesKey, SeriesPoint)> = done
            .into_iter()
            .filter_map(|key| {
                let cell = cells.remove(&key)?;
                Some((key.1, cell.point(key.0)))
            })
            .collect();
        points.sort_by(|a, b| (a.1.minute_ms, &a.0).cmp(&(b.1.minute_ms, &b.0)));
        points
    }

    /// The minutes of `key` not yet handed to the store (the current one, mostly).
    pub fn pending(&self, key: &SeriesKey) -> Vec<SeriesPoint> {
        let cells = self.cells();
        let mut points: Vec<SeriesPoint> = cells
            .iter()
            .filter(|((_, k), _)| k == key)
            .map(|((minute, _), cell)| cell.point(*minute))
            .collect();
        points.sort_by_key(|p| p.minute_ms);
        points
    }

    /// Every series with a pending minute (for listings).
    pub fn pending_keys(&self) -> Vec<SeriesKey> {
        let mut keys: Vec<SeriesKey> = self.cells().keys().map(|(_, k)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

impl SeriesPoint {
    /// Adds `other` (the same minute, counted elsewhere: a late part, another replica) to
    /// this point. Counts add up; a percentile is the higher of the two (an upper bound),
    /// utilisation the newer one if it has any.
    pub fn absorb(&mut self, other: &SeriesPoint) {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.calls += other.calls;
        self.errors += other.errors;
        self.cache_lookups += other.cache_lookups;
        self.cache_hits += other.cache_hits;
        self.p50_ms = max(self.p50_ms, other.p50_ms);
        self.p95_ms = max(self.p95_ms, other.p95_ms);
        self.p99_ms = max(self.p99_ms, other.p99_ms);
        self.utilisation = other.utilisation.or(self.utilisation);
    }
}

/// Merges stored points and pending ones: a minute in both (a part of it already stored)
/// is the sum of the two.
pub fn merge(mut stored: Vec<SeriesPoint>, pending: Vec<SeriesPoint>) -> Vec<SeriesPoint> {
    for point in pending {
        match stored.iter_mut().find(|s| s.minute_ms == point.minute_ms) {
            Some(same) => same.absorb(&point),
            None => stored.push(point),
        }
    }
    stored.sort_by_key(|p| p.minute_ms);
    stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(
        at_ms: i64,
        instance: Option<&str>,
        outcome: Outcome,
        ms: u64,
        hit: bool,
        cacheable: bool,
    ) -> CallRecord {
        CallRecord {
            at_ms,
            assistant: "a".into(),
            server: "search".into(),
            tool: "query".into(),
            instance: instance.map(String::from),
            outcome,
            cache_hit: hit,
            cacheable,
            duration: Duration::from_millis(ms),
            attempts: 1,
            trace_id: None,
            args_digest: String::new(),
            arguments: None,
            error: None,
            known_tool: true,
        }
    }

    #[test]
    fn percentiles_are_within_one_bucket_of_the_truth() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 1..=1000 {
            h.record(f64::from(ms));
        }
        for (q, truth) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile(q).unwrap();
            assert!(
                got >= truth && got <= truth * GROWTH,
                "q{q}: {got} vs {truth}"
            );
        }
        let mut tiny = LatencyHistogram::default();
        tiny.record(0.0);
        assert_eq!(tiny.quantile(0.99), Some(FIRST_BOUND_MS));
        let mut huge = LatencyHistogram::default();
        huge.record(1e12);
        assert_eq!(
            huge.quantile(0.5),
            Some(LatencyHistogram::bound(BUCKETS - 1))
        );
    }

    #[test]
    fn a_call_counts_in_the_fleet_server_tool_and_instance_series_of_its_minute() {
        let book = SeriesBook::new();
        let t = 1_700_000_070_000; // 30 s into a minute
        book.observe(&record(t, Some("search-1"), Outcome::Ok, 10, false, true));
        book.observe(&record(t + 1000, None, Outcome::Ok, 1, true, true));
        book.observe(&record(
            t + 2000,
            Some("search-2"),
            Outcome::Failed,
            30,
            false,
            false,
        ));
        book.observe(&record(t + 3000, None, Outcome::Denied, 0, false, false));
        book.observe(&record(
            t + 30_000,
            Some("search-1"),
            Outcome::Ok,
            10,
            false,
            false,
        ));
        let server = book.pending(&SeriesKey::server("search"));
        assert_eq!(server.len(), 2, "two minutes");
        let first = &server[0];
        assert_eq!(first.minute_ms, minute_of(t));
        assert_eq!(
            (first.calls, first.errors),
            (3, 1),
            "the denial is not a call here"
        );
        assert_eq!((first.cache_lookups, first.cache_hits), (2, 1));
        assert_eq!(first.hit_rate(), Some(0.5));
        assert_eq!(
            book.pending(&SeriesKey::instance("search", "search-1"))[0].calls,
            1
        );
        assert_eq!(
            book.pending(&SeriesKey::tool("search", "query"))[0].calls,
            3
        );
        assert_eq!(book.pending(&SeriesKey::fleet())[1].calls, 1);
    }

    #[test]
    fn complete_minutes_are_taken_once_and_the_current_one_stays() {
        let book = SeriesBook::new();
        let t = 1_700_000_070_000;
        book.observe(&record(t, Some("search-1"), Outcome::Ok, 10, false, false));
        book.sample_utilisation(t, SeriesKey::instance("search", "search-1"), 0.5);
        book.sample_utilisation(t + 1000, SeriesKey::instance("search", "search-1"), 1.0);
        book.observe(&record(
            t + 30_000,
            Some("search-1"),
            Outcome::Ok,
            10,
            false,
            false,
        ));
        let taken = book.take_complete(t + 30_000);
        assert_eq!(
            taken.len(),
            4,
            "fleet, server, tool, instance of the first minute"
        );
        let instance = taken
            .iter()
            .find(|(k, _)| k.instance == "search-1")
            .unwrap();
        assert_eq!(instance.1.utilisation, Some(0.75));
        assert!(book.take_complete(t + 30_000).is_empty(), "taken once");
        assert_eq!(
            book.pending(&SeriesKey::fleet()).len(),
            1,
            "the current minute stays"
        );
    }

    #[test]
    fn a_call_is_filed_in_the_minute_it_ended() {
        let book = SeriesBook::new();
        let start = 1_700_000_099_600; // 0.4 s before a minute ends
        book.observe(&record(
            start,
            Some("search-1"),
            Outcome::Ok,
            800,
            false,
            false,
        ));
        let points = book.pending(&SeriesKey::fleet());
        assert_eq!(points[0].minute_ms, minute_of(start) + 60_000);
    }

    #[test]
    fn merging_adds_up_a_minute_stored_in_parts_and_sorts() {
        let point = |minute_ms, calls| SeriesPoint {
            minute_ms,
            calls,
            errors: 0,
            cache_lookups: 0,
            cache_hits: 0,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            utilisation: None,
        };
        let merged = merge(
            vec![point(0, 1), point(60_000, 2)],
            vec![point(60_000, 5), point(120_000, 3)],
        );
        let calls: Vec<u64> = merged.iter().map(|p| p.calls).collect();
        assert_eq!(calls, vec![1, 7, 3]);
    }
}
