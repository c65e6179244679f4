//! Prometheus metrics of the gateway and the fleet, exposed at `/metrics` in the classic
//! text format (version 0.0.4, what `promtool check metrics` and every scraper read).
//!
//! Two kinds of families: those the gateway feeds after every call (`observe`), and those
//! read from the registry when scraped (`render`): instance gauges, breakers, caches.

pub use crate::access::audit_log::AuditReading;
use crate::cluster::{ChangeFeed, ChangeFeedReading};
use crate::gateway::breaker::BreakerState;
use crate::gateway::record::{CallRecord, Outcome};
use crate::registry::instance::Health;
use crate::registry::{AdminState, Registry};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    TextEncoder,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

/// The content type of `render`'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Reads the audit log's queue depth and drops at scrape time (the audit log owns them).
pub type AuditStatus = Arc<dyn Fn() -> AuditReading + Send + Sync>;

/// Call-duration buckets in seconds: cache hits take about a millisecond, slow tools
/// a minute (the longest timeouts fleets configure).
const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The label value of calls of tools in no catalog. Callers choose those names, so they
/// never become labels of their own: made-up tools cannot grow the series. Also the `tool`
/// of a listed tool's calls once [`Metrics::max_tool_series`] tools have their own series.
const OVERFLOW_LABEL: &str = "_other";

/// Tools (server and tool pairs) with call series of their own, by default. Each has a
/// counter per outcome and, once called, a duration histogram (about 25 lines): at the
/// limit `/metrics` holds some 50,000 tool lines, beyond it a fleet of 10,000 tools
/// would make every scrape megabytes long.
pub const DEFAULT_MAX_TOOL_SERIES: usize = 2000;

/// Families fed by `observe`, one update per tool call.
struct CallFamilies {
    tool_calls: IntCounterVec,
    duration: HistogramVec,
    upstream_attempts: IntCounterVec,
    upstream_retries: IntCounterVec,
    rate_limited: IntCounterVec,
    auth_failures: IntCounterVec,
    upstream_refusals: IntCounterVec,
    build_info: IntGaugeVec,
}

/// Why a request to `/mcp` was refused before it reached the gateway, as labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A key that is unknown or revoked.
    Invalid,
    /// Too many failed attempts from the client's address: refused unread (429).
    Throttled,
}

impl AuthFailure {
    fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
            AuthFailure::Throttled => "throttled",
        }
    }
}

/// What an instance sent that the gateway refused for being over a limit, as labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamRefusal {
    /// A tool listing with more tools than the server's `max_tools`.
    CatalogTooLarge,
    /// A tool left out of the catalog: name, description or schema over its cap.
    ToolOverLimit,
    /// A tool result over `max_result_bytes`.
    ResultTooLarge,
    /// A `command` read from the database: only the fleet file starts processes.
    StoredCommand,
}

impl UpstreamRefusal {
    fn as_str(self) -> &'static str {
        match self {
            UpstreamRefusal::CatalogTooLarge => "catalog_too_large",
            UpstreamRefusal::ToolOverLimit => "tool_over_limit",
            UpstreamRefusal::ResultTooLarge => "result_too_large",
            UpstreamRefusal::StoredCommand => "stored_command",
        }
    }
}

/// Families copied from the registry at each scrape.
struct FleetFamilies {
    in_flight: IntGaugeVec,
    health: IntGaugeVec,
    admin_state: IntGaugeVec,
    breaker_state: IntGaugeVec,
    breaker_transitions: IntCounterVec,
    result_cache_hits: IntCounterVec,
    result_cache_misses: IntCounterVec,
    result_cache_evictions: IntCounterVec,
    result_cache_entries: IntGaugeVec,
    tool_list_cache_hits: IntCounterVec,
    tool_list_cache_misses: IntCounterVec,
    audit_queue_depth: IntGauge,
    utilisation: GaugeVec,
    scraped_cpu: GaugeVec,
    scraped_memory: GaugeVec,
    scraped_in_flight: GaugeVec,
    traces_finished: IntCounterVec,
    traces_dropped: IntCounterVec,
}

/// The (server, tool) pairs that have their own series.
#[derive(Default)]
struct KnownTools {
    by_server: HashMap<String, HashSet<String>>,
    len: usize,
}

impl KnownTools {
    fn contains(&self, server: &str, tool: &str) -> bool {
        self.by_server
            .get(server)
            .is_some_and(|tools| tools.contains(tool))
    }

    /// Adds the pair; returns false if it was known.
    fn insert(&mut self, server: &str, tool: &str) -> bool {
        let added = self
            .by_server
            .entry(server.to_owned())
            .or_default()
            .insert(tool.to_owned());
        self.len += usize::from(added);
        added
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_server.iter().flat_map(|(server, tools)| {
            tools
                .iter()
                .map(move |tool| (server.as_str(), tool.as_str()))
        })
    }
}

/// The gateway's Prometheus metrics.
pub struct Metrics {
    calls: CallFamilies,
    // One scrape at a time: each fills the registry-derived families from scratch.
    fleet: Mutex<FleetFamilies>,
    known: RwLock<KnownTools>,
    /// Tools with series of their own at most ([`DEFAULT_MAX_TOOL_SERIES`]).
    max_tool_series: usize,
    /// How this replica follows the others (PostgreSQL only).
    change_feed: Option<Arc<ChangeFeed>>,
}

/// The families of a replica's change feed, as read now.
fn change_feed_families(feed: ChangeFeedReading) -> Vec<MetricFamily> {
    let applied = IntCounter::new(
        "fleetdeck_replica_changes_applied_total",
        "Admin changes made by other replicas (or the CLI) that this replica applied.",
    )
    .expect("a valid counter definition");
    applied.inc_by(feed.applied);
    let resyncs = IntCounter::new(
        "fleetdeck_replica_resyncs_total",
        "Full reloads after this replica's change listener reconnected.",
    )
    .expect("a valid counter definition");
    resyncs.inc_by(feed.resyncs);
    let following = IntGauge::new(
        "fleetdeck_replica_following",
        "1 while this replica applies the changes other replicas announce.",
    )
    .expect("a valid gauge definition");
    following.set(i64::from(feed.following));
    [applied.collect(), resyncs.collect(), following.collect()].concat()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // Names, help and labels are constants (checked by the tests): this cannot fail.
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter definition")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge definition")
}

fn float_gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge definition")
}

/// 1 for `current`, 0 for every other state: the usual shape of an enum in Prometheus,
/// so that `max by (state)` and alerts on `state="open"` need no value mapping.
fn one_hot<S: Copy + PartialEq>(
    family: &IntGaugeVec,
    labels: [&str; 2],
    states: &[S],
    current: S,
    name: impl Fn(S) -> &'static str,
) {
    for &state in states {
        family
            .with_label_values(&[labels[0], labels[1], name(state)])
            .set(i64::from(state == current));
    }
}

impl CallFamilies {
    fn new() -> Self {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "fleetdeck_tool_call_duration_seconds",
                "Time tool calls spent in the gateway, from arrival to answer, retries included.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["server", "tool"],
        )
        .expect("a valid histogram definition");
        let build_info = gauge_vec(
            "fleetdeck_build_info",
            "Always 1; labelled with the running fleetdeck's version.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        CallFamilies {
            tool_calls: counter_vec(
                "fleetdeck_tool_calls_total",
                "Tool calls through the gateway by server, tool and outcome (ok, tool_error, failed, denied, rate_limited, rejected, cancelled).",
                &["server", "tool", "outcome"],
            ),
            duration,
            upstream_attempts: counter_vec(
                "fleetdeck_upstream_attempts_total",
                "Calls sent to instances, retries included.",
                &["server"],
            ),
            upstream_retries: counter_vec(
                "fleetdeck_upstream_retries_total",
                "Upstream attempts after a call's first one.",
                &["server"],
            ),
            rate_limited: counter_vec(
                "fleetdeck_rate_limited_calls_total",
                "Requests (tool calls, listings, pings) refused by the calling assistant's rate limit.",
                &["assistant"],
            ),
            auth_failures: counter_vec(
                "fleetdeck_mcp_auth_failures_total",
                "Requests to /mcp refused before authentication succeeded, by reason (missing, invalid, throttled).",
                &["reason"],
            ),
            upstream_refusals: counter_vec(
                "fleetdeck_upstream_refusals_total",
                "Answers of instances refused for being over a limit, by server and reason.",
                &["server", "reason"],
            ),
            build_info,
        }
    }

    fn collect(&self) -> Vec<MetricFamily> {
        [
            self.tool_calls.collect(),
            self.duration.collect(),
            self.upstream_attempts.collect(),
            self.upstream_retries.collect(),
            self.rate_limited.collect(),
            self.auth_failures.collect(),
            self.upstream_refusals.collect(),
            self.build_info.collect(),
        ]
        .concat()
    }

    /// Creates a tool's call series at zero for every outcome, so that the first failure
    /// shows as an increase rather than as a new series.
    fn start_at_zero(&self, server: &str, tool: &str) {
        for outcome in Outcome::ALL {
            self.tool_calls
                .with_label_values(&[server, tool, outcome.as_str()]);
        }
    }

    /// Removes a tool's call series (it left every catalog).
    fn forget(&self, server: &str, tool: &str) {
        for outcome in Outcome::ALL {
            let _ = self
                .tool_calls
                .remove_label_values(&[server, tool, outcome.as_str()]);
        }
        let _ = self.duration.remove_label_values(&[server, tool]);
    }
}

impl FleetFamilies {
    fn new() -> Self {
        let instance = &["server", "instance"];
        let instance_state = &["server", "instance", "state"];
        let server = &["server"];
        FleetFamilies {
            in_flight: gauge_vec(
                "fleetdeck_instance_in_flight",
                "Calls in flight on the instance.",
                instance,
            ),
            health: gauge_vec(
                "fleetdeck_instance_health",
                "1 for the instance's observed health (state: unknown, healthy, degraded, unhealthy), 0 for the others.",
                instance_state,
            ),
            admin_state: gauge_vec(
                "fleetdeck_instance_admin_state",
                "1 for the instance's admin state (state: active, draining, drained), 0 for the others.",
                instance_state,
            ),
            breaker_state: gauge_vec(
                "fleetdeck_breaker_state",
                "1 for the instance's breaker state (state: closed, open, half_open), 0 for the others.",
                instance_state,
            ),
            breaker_transitions: counter_vec(
                "fleetdeck_breaker_transitions_total",
                "Breaker transitions of the instance by the state entered (to: closed, open, half_open).",
                &["server", "instance", "to"],
            ),
            result_cache_hits: counter_vec(
                "fleetdeck_result_cache_hits_total",
                "Cacheable tool calls answered from the server's result cache.",
                server,
            ),
            result_cache_misses: counter_vec(
                "fleetdeck_result_cache_misses_total",
                "Cacheable tool calls the server's result cache could not answer.",
                server,
            ),
            result_cache_evictions: counter_vec(
                "fleetdeck_result_cache_evictions_total",
                "Results pushed out of the server's result cache by size or age (invalidations excluded).",
                server,
            ),
            result_cache_entries: gauge_vec(
                "fleetdeck_result_cache_entries",
                "Results held in the server's result cache.",
                server,
            ),
            tool_list_cache_hits: counter_vec(
                "fleetdeck_tool_list_cache_hits_total",
                "Tool lookups and listings answered from the server's cached tool list.",
                server,
            ),
            tool_list_cache_misses: counter_vec(
                "fleetdeck_tool_list_cache_misses_total",
                "Tool lists fetched from an instance because the cached one was missing, expired or announced as changed.",
                server,
            ),
            utilisation: float_gauge_vec(
                "fleetdeck_instance_utilisation_ratio",
                "The busiest of the instance's concurrency slots, scraped CPU and scraped memory, against their limits (1 = at the limit).",
                instance,
            ),
            scraped_cpu: float_gauge_vec(
                "fleetdeck_instance_scraped_cpu_cores",
                "CPU cores the instance used between its last two scrapes (from its process_cpu_seconds_total).",
                instance,
            ),
            scraped_memory: float_gauge_vec(
                "fleetdeck_instance_scraped_resident_memory_bytes",
                "The instance's resident memory, as its metrics endpoint reports it.",
                instance,
            ),
            scraped_in_flight: float_gauge_vec(
                "fleetdeck_instance_scraped_in_flight",
                "Calls the instance reports serving (all clients), from its metrics endpoint.",
                instance,
            ),
            traces_finished: counter_vec(
                "fleetdeck_traces_finished_total",
                "Gateway call traces assembled by this process.",
                &[],
            ),
            traces_dropped: counter_vec(
                "fleetdeck_traces_dropped_total",
                "Traces meant for the database (failed, slow or sampled) dropped because its writer's queue was full.",
                &[],
            ),
            audit_queue_depth: IntGauge::new(
                "fleetdeck_audit_queue_depth",
                "Audit rows waiting to be written to the store.",
            )
            .expect("a valid gauge definition"),
        }
    }

    /// Replaces every series with the registry's current values; instances that left the
    /// fleet lose their series.
    fn fill(&self, registry: &Registry, audit_queue_depth: usize, now: Instant) {
        self.reset();
        for server in registry.servers() {
            let name = server.name.as_str();
            for instance in server.instances() {
                let labels = [name, instance.id.as_str()];
                self.in_flight
                    .with_label_values(&labels)
                    .set(i64::from(instance.in_flight()));
                self.utilisation.with_label_values(&labels).set(
                    crate::telemetry::sampler::instance_utilisation(&server, &instance, now),
                );
                // Scraped values exist only for instances that have a metrics endpoint that
                // answers: no series rather than a misleading 0.
                if let Some(signals) = instance.load_signals(now) {
                    for (family, value) in [
                        (&self.scraped_cpu, signals.cpu_cores),
                        (&self.scraped_memory, signals.resident_bytes),
                        (&self.scraped_in_flight, signals.in_flight),
                    ] {
                        if let Some(value) = value {
                            family.with_label_values(&labels).set(value);
                        }
                    }
                }
                one_hot(
                    &self.health,
                    labels,
                    &Health::ALL,
                    instance.health(),
                    Health::as_str,
                );
                one_hot(
                    &self.admin_state,
                    labels,
                    &AdminState::ALL,
                    instance.admin_state(),
                    AdminState::as_str,
                );
                let breaker = instance.breaker_snapshot(now);
                one_hot(
                    &self.breaker_state,
                    labels,
                    &BreakerState::ALL,
                    breaker.state,
                    BreakerState::as_str,
                );
                for state in BreakerState::ALL {
                    self.breaker_transitions
                        .with_label_values(&[labels[0], labels[1], state.as_str()])
                        .inc_by(breaker.transitions_total.entered(state));
                }
            }
            let results = server.results.stats_now();
            self.result_cache_hits
                .with_label_values(&[name])
                .inc_by(results.hits);
            self.result_cache_misses
                .with_label_values(&[name])
                .inc_by(results.misses);
            self.result_cache_evictions
                .with_label_values(&[name])
                .inc_by(results.evictions);
            self.result_cache_entries
                .with_label_values(&[name])
                .set(i64::try_from(results.entries).unwrap_or(i64::MAX));
            let tool_lists = (
                server.tool_list_hits.load(Ordering::Relaxed),
                server.tool_list_misses.load(Ordering::Relaxed),
            );
            self.tool_list_cache_hits
                .with_label_values(&[name])
                .inc_by(tool_lists.0);
            self.tool_list_cache_misses
                .with_label_values(&[name])
                .inc_by(tool_lists.1);
        }
        self.audit_queue_depth
            .set(i64::try_from(audit_queue_depth).unwrap_or(i64::MAX));
        let traces = crate::telemetry::traces::collector();
        self.traces_finished
            .with_label_values::<&str>(&[])
            .inc_by(traces.finished.load(Ordering::Relaxed));
        self.traces_dropped
            .with_label_values::<&str>(&[])
            .inc_by(traces.dropped.load(Ordering::Relaxed));
    }

    fn reset(&self) {
        for family in [
            &self.in_flight,
            &self.health,
            &self.admin_state,
            &self.breaker_state,
            &self.result_cache_entries,
        ] {
            family.reset();
        }
        for family in [
            &self.utilisation,
            &self.scraped_cpu,
            &self.scraped_memory,
            &self.scraped_in_flight,
        ] {
            family.reset();
        }
        // Counters restart from zero here and are set to the registry's totals, which
        // only grow: the exported values are monotonic.
        for family in [
            &self.breaker_transitions,
            &self.result_cache_hits,
            &self.result_cache_misses,
            &self.result_cache_evictions,
            &self.tool_list_cache_hits,
            &self.tool_list_cache_misses,
            &self.traces_finished,
            &self.traces_dropped,
        ] {
            family.reset();
        }
    }

    fn collect(&self) -> Vec<MetricFamily> {
        [
            self.in_flight.collect(),
            self.health.collect(),
            self.admin_state.collect(),
            self.breaker_state.collect(),
            self.breaker_transitions.collect(),
            self.result_cache_hits.collect(),
            self.result_cache_misses.collect(),
            self.result_cache_evictions.collect(),
            self.result_cache_entries.collect(),
            self.tool_list_cache_hits.collect(),
            self.tool_list_cache_misses.collect(),
            self.utilisation.collect(),
            self.scraped_cpu.collect(),
            self.scraped_memory.collect(),
            self.scraped_in_flight.collect(),
            self.traces_finished.collect(),
            self.traces_dropped.collect(),
            self.audit_queue_depth.collect(),
        ]
        .concat()
    }
}

impl Metrics {
    /// Metrics with no call observed yet.
    pub fn new() -> Metrics {
        Metrics {
            calls: CallFamilies::new(),
            fleet: Mutex::new(FleetFamilies::new()),
            known: RwLock::new(KnownTools::default()),
            max_tool_series: DEFAULT_MAX_TOOL_SERIES,
            change_feed: None,
        }
    }

    /// At most `limit` tools get call series of their own; the calls of others are counted
    /// under their server with `tool="_other"`.
    pub fn with_max_tool_series(mut self, limit: usize) -> Metrics {
        self.max_tool_series = limit;
        self
    }

    /// Also exposes how this replica follows the others' changes.
    pub fn with_change_feed(mut self, feed: Arc<ChangeFeed>) -> Metrics {
        self.change_feed = Some(feed);
        self
    }

    /// Counts one finished tool call.
    pub fn observe(&self, record: &CallRecord) {
        let (server, tool) = self.series_names(record);
        self.calls
            .tool_calls
            .with_label_values(&[server, tool, record.outcome.as_str()])
            .inc();
        self.calls
            .duration
            .with_label_values(&[server, tool])
            .observe(record.duration.as_secs_f64());
        if record.attempts > 0 {
            // An attempt means an instance of this server was reached: a real server name.
            let server = [record.server.as_str()];
            self.calls
                .upstream_attempts
                .with_label_values(&server)
                .inc_by(u64::from(record.attempts));
            let retries = u64::from(record.attempts - 1);
            if retries > 0 {
                self.calls
                    .upstream_retries
                    .with_label_values(&server)
                    .inc_by(retries);
            }
        }
        if record.outcome == Outcome::RateLimited {
            // Assistants are authenticated before their limit applies: a bounded set.
            self.calls
                .rate_limited
                .with_label_values(&[record.assistant.as_str()])
                .inc();
        }
    }

    /// Counts a request an assistant's rate limit refused that is not a tool call (those
    /// are counted from their record).
    pub fn rate_limited_request(&self, assistant: &str) {
        self.calls
            .rate_limited
            .with_label_values(&[assistant])
            .inc();
    }

    /// Counts a request to `/mcp` refused before authentication.
    pub fn auth_failure(&self, reason: AuthFailure) {
        self.calls
            .auth_failures
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Counts an instance's answer refused for being over a limit.
    pub fn upstream_refusal(&self, server: &str, reason: UpstreamRefusal) {
        self.calls
            .upstream_refusals
            .with_label_values(&[server, reason.as_str()])
            .inc();
    }

    /// The exposition text: the observed calls plus the fleet's state read from
    /// `registry` now, and the audit log's queue depth and drops.
    pub fn render(&self, registry: &Registry, audit: AuditReading) -> String {
        self.know_catalogs(registry);
        let mut families = self.calls.collect();
        {
            let fleet = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
            fleet.fill(registry, audit.depth, Instant::now());
            families.extend(fleet.collect());
        }
        let dropped = IntCounter::new(
            "fleetdeck_audit_records_dropped_total",
            "Tool-call records the database refused for good, even cut down (logged once each).",
        )
        .expect("a valid counter definition");
        dropped.inc_by(audit.dropped);
        families.extend(dropped.collect());
        if let Some(feed) = &self.change_feed {
            families.extend(change_feed_families(feed.reading()));
        }
        encode(families)
    }

    /// The labels a call is counted under: its own names if its tool is in a catalog and
    /// has (or may still get) series of its own, its server and the overflow label if the
    /// series limit is reached, else the overflow label twice.
    fn series_names<'a>(&self, record: &'a CallRecord) -> (&'a str, &'a str) {
        if !record.known_tool {
            return (OVERFLOW_LABEL, OVERFLOW_LABEL);
        }
        let (server, tool) = (record.server.as_str(), record.tool.as_str());
        let read = self.known.read().unwrap_or_else(PoisonError::into_inner);
        if read.contains(server, tool) {
            return (server, tool);
        }
        drop(read);
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if known.contains(server, tool) {
            return (server, tool);
        }
        if known.len >= self.max_tool_series {
            return (server, OVERFLOW_LABEL);
        }
        known.insert(server, tool);
        self.calls.start_at_zero(server, tool);
        (server, tool)
    }

    /// Gives every server its upstream counters and, while the fleet's catalogs fit the
    /// series limit, every listed tool its call series (at zero), so that dashboards see
    /// them before the first call; beyond the limit, tools get series as they are first
    /// called, while slots last. Tools no longer in any catalog lose their series: an
    /// upstream renaming its tools at every listing cannot grow `/metrics`.
    fn know_catalogs(&self, registry: &Registry) {
        let mut listed = KnownTools::default();
        for server in registry.servers() {
            let name = server.name.as_str();
            self.calls.upstream_attempts.with_label_values(&[name]);
            self.calls.upstream_retries.with_label_values(&[name]);
            for tool in server.catalog().tools.iter() {
                listed.insert(name, &tool.name);
            }
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        let mut kept = KnownTools::default();
        for (server, tool) in known.iter() {
            if listed.contains(server, tool) {
                kept.insert(server, tool);
            } else {
                self.calls.forget(server, tool);
            }
        }
        if listed.len <= self.max_tool_series {
            for (server, tool) in listed.iter() {
                if kept.insert(server, tool) {
                    self.calls.start_at_zero(server, tool);
                }
            }
        }
        *known = kept;
    }
}

/// Families in name order, series in label order (stable output for diffs and tests),
/// without the families that have no series yet (the encoder refuses those).
fn encode(mut families: Vec<MetricFamily>) -> String {
    families.retain(|family| !family.get_metric().is_empty());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    for family in &mut families {
        // The label values once per series, not once per comparison (thousands of series
        // at fleet scale).
        family.mut_metric().sort_by_cached_key(|m| {
            m.get_label()
                .iter()
                .map(|l| l.value().to_owned())
                .collect::<Vec<_>>()
        });
    }
    let mut out = String::new();
    let encoder = TextEncoder::new();
    for family in &families {
        // Only an empty or nameless family fails, and neither reaches here; should one
        // anyway, the others are still worth serving.
        if let Err(error) = encoder.encode_utf8(std::slice::from_ref(family), &mut out) {
            tracing::warn!(family = family.name(), %error, "cannot encode a metric family");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fleet::FleetFile;
    use crate::registry::CallOutcome;
    use rmcp::model::{CallToolResult, ContentBlock, Tool};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn record(server: &str, tool: &str, outcome: Outcome, attempts: u32, ms: u64) -> CallRecord {
        CallRecord {
            at_ms: 0,
            assistant: "claude".into(),
            server: server.into(),
            tool: tool.into(),
            instance: None,
            outcome,
            cache_hit: false,
            cacheable: false,
            duration: Duration::from_millis(ms),
            attempts,
            trace_id: None,
            args_digest: String::new(),
            arguments: None,
            error: None,
            known_tool: true,
        }
    }

    fn depth(depth: usize) -> AuditReading {
        AuditReading { depth, dropped: 0 }
    }

    fn registry() -> Arc<Registry> {
        let fleet = FleetFile::parse(
            "[[server]]\nname = \"search\"\nbreaker = { failures = 1, reset_s = 30, half_open_probes = 1 }\n\
             cache = { cacheable = [\"lookup\"] }\n\
             [[server.instance]]\nid = \"search-1\"\nurl = \"http://127.0.0.1:9/mcp\"\n\
             [[server.instance]]\nid = \"search-2\"\nurl = \"http://127.0.0.1:9/mcp\"\n",
            std::path::Path::new("fleet.toml"),
        )
        .unwrap();
        Registry::from_fleet(&fleet)
    }

    /// The registry with `search`'s tools `query` and `lookup` listed.
    fn listed(registry: Arc<Registry>) -> Arc<Registry> {
        let tool = |name: &str| Tool::new(name.to_string(), "t", Arc::new(serde_json::Map::new()));
        registry
            .server("search")
            .unwrap()
            .set_catalog(vec![tool("query"), tool("lookup")], Instant::now());
        registry
    }

    /// One sample of the exposition text: its name, labels and value.
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    /// Parses sample lines (label values in these tests hold no commas or quotes).
    fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                Sample {
                    name: name.to_owned(),
                    labels,
                    value: value.parse().unwrap(),
                }
            })
            .collect()
    }

    /// The value of the series `name{labels}`, if exported.
    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        samples(text)
            .into_iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    #[test]
    fn calls_are_counted_by_server_tool_and_outcome() {
        let metrics = Metrics::new();
        let registry = listed(registry());
        metrics.observe(&record("search", "query", Outcome::Ok, 1, 3));
        metrics.observe(&record("search", "query", Outcome::Ok, 1, 3));
        metrics.observe(&record("search", "query", Outcome::Failed, 3, 3));
        metrics.observe(&record("search", "lookup", Outcome::ToolError, 1, 3));
        let text = metrics.render(&registry, depth(0));
        let calls = |tool, outcome| {
            value(
                &text,
                "fleetdeck_tool_calls_total",
                &[("server", "search"), ("tool", tool), ("outcome", outcome)],
            )
        };
        assert_eq!(calls("query", "ok"), Some(2.0));
        assert_eq!(calls("query", "failed"), Some(1.0));
        assert_eq!(calls("lookup", "tool_error"), Some(1.0));
        // Every outcome of a called tool is exported, at zero until it happens.
        assert_eq!(calls("query", "cancelled"), Some(0.0));
        assert_eq!(calls("lookup", "ok"), Some(0.0));
    }

    #[test]
    fn durations_fall_into_second_buckets() {
        let metrics = Metrics::new();
        metrics.observe(&record("search", "query", Outcome::Ok, 1, 3));
        metrics.observe(&record("search", "query", Outcome::Ok, 1, 2000));
        let text = metrics.render(&listed(registry()), depth(0));
        let bucket = |le| {
            value(
                &text,
                "fleetdeck_tool_call_duration_seconds_bucket",
                &[("server", "search"), ("tool", "query"), ("le", le)],
            )
        };
        assert_eq!(bucket("0.0025"), Some(0.0));
        assert_eq!(bucket("0.005"), Some(1.0));
        assert_eq!(bucket("1"), Some(1.0));
        assert_eq!(bucket("2.5"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(2.0));
        let labels = [("server", "search"), ("tool", "query")];
        assert_eq!(
            value(&text, "fleetdeck_tool_call_duration_seconds_count", &labels),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "fleetdeck_tool_call_duration_seconds_sum", &labels),
            Some(2.003)
        );
    }

    #[test]
    fn attempts_and_retries_are_counted_by_server() {
        let metrics = Metrics::new();
        metrics.observe(&record("search", "query", Outcome::Ok, 1, 3));
        metrics.observe(&record("search", "query", Outcome::Failed, 3, 3));
        // Refused before any attempt: no upstream work.
        metrics.observe(&record("search", "query", Outcome::Denied, 0, 3));
        let text = metrics.render(&registry(), depth(0));
        let server = [("server", "search")];
        assert_eq!(
            value(&text, "fleetdeck_upstream_attempts_total", &server),
            Some(4.0)
        );
        assert_eq!(
            value(&text, "fleetdeck_upstream_retries_total", &server),
            Some(2.0)
        );
    }

    #[test]
    fn rate_limited_calls_are_counted_by_assistant() {
        let metrics = Metrics::new();
        metrics.observe(&record("search", "query", Outcome::RateLimited, 0, 0));
        metrics.observe(&record("search", "lookup", Outcome::RateLimited, 0, 0));
        metrics.observe(&record("search", "query", Outcome::Ok, 1, 3));
        let text = metrics.render(&registry(), depth(0));
        assert_eq!(
            value(
                &text,
                "fleetdeck_rate_limited_calls_total",
                &[("assistant", "claude")]
            ),
            Some(2.0)
        );
    }

    #[tokio::test]
    async fn the_fleet_state_is_read_at_each_scrape() {
        let metrics = Metrics::new();
        let registry = registry();
        let (server, first) = registry.instance("search-1").unwrap();
        let (_, second) = registry.instance("search-2").unwrap();
        let now = Instant::now();
        let _in_flight = first.try_admit(now).unwrap();
        first.record_probe(Instant::now(), Ok(std::time::Duration::from_millis(1)));
        // One failure opens search-2's breaker (failures = 1); then an operator drains it.
        second
            .try_admit(now)
            .unwrap()
            .finish(CallOutcome::Failed("refused"));
        second.drain();
        let ok = CallToolResult::success(vec![ContentBlock::text("doc")]);
        server.results.put("lookup", None, &ok).await;
        server.results.get("lookup", None).await;
        server.results.get("query", None).await;
        server.results.get("query", None).await;
        server.tool_list_hits.fetch_add(5, Ordering::Relaxed);
        server.tool_list_misses.fetch_add(2, Ordering::Relaxed);
        // As `/metrics` does: moka counts entries once its pending maintenance ran.
        server.results.stats().await;

        let text = metrics.render(&registry, depth(42));
        let instance =
            |name, instance| value(&text, name, &[("server", "search"), ("instance", instance)]);
        let state = |name, instance, state| {
            value(
                &text,
                name,
                &[
                    ("server", "search"),
                    ("instance", instance),
                    ("state", state),
                ],
            )
        };
        let transitions = |instance, to| {
            value(
                &text,
                "fleetdeck_breaker_transitions_total",
                &[("server", "search"), ("instance", instance), ("to", to)],
            )
        };
        let health = "fleetdeck_instance_health";
        let admin = "fleetdeck_instance_admin_state";
        let breaker = "fleetdeck_breaker_state";
        assert_eq!(
            instance("fleetdeck_instance_in_flight", "search-1"),
            Some(1.0)
        );
        assert_eq!(state(health, "search-1", "healthy"), Some(1.0));
        assert_eq!(state(health, "search-1", "unknown"), Some(0.0));
        assert_eq!(state(health, "search-2", "unknown"), Some(1.0));
        assert_eq!(state(admin, "search-2", "drained"), Some(1.0));
        assert_eq!(state(admin, "search-1", "active"), Some(1.0));
        assert_eq!(state(breaker, "search-2", "open"), Some(1.0));
        assert_eq!(state(breaker, "search-2", "closed"), Some(0.0));
        assert_eq!(state(breaker, "search-1", "closed"), Some(1.0));
        assert_eq!(transitions("search-2", "open"), Some(1.0));
        assert_eq!(transitions("search-2", "closed"), Some(0.0));
        let server_value = |name| value(&text, name, &[("server", "search")]);
        assert_eq!(server_value("fleetdeck_result_cache_hits_total"), Some(1.0));
        assert_eq!(
            server_value("fleetdeck_result_cache_misses_total"),
            Some(2.0)
        );
        assert_eq!(
            server_value("fleetdeck_result_cache_evictions_total"),
            Some(0.0)
        );
        assert_eq!(server_value("fleetdeck_result_cache_entries"), Some(1.0));
        assert_eq!(
            server_value("fleetdeck_tool_list_cache_hits_total"),
            Some(5.0)
        );
        assert_eq!(
            server_value("fleetdeck_tool_list_cache_misses_total"),
            Some(2.0)
        );
        assert_eq!(value(&text, "fleetdeck_audit_queue_depth", &[]), Some(42.0));
        assert_eq!(
            value(
                &text,
                "fleetdeck_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            Some(1.0)
        );

        // The next scrape sees the new state, and the instance that left has no series.
        assert!(registry.remove_instance("search-2").is_some());
        let text = metrics.render(&registry, depth(0));
        assert!(!text.contains("search-2"), "{text}");
        assert_eq!(value(&text, "fleetdeck_audit_queue_depth", &[]), Some(0.0));
    }

    #[test]
    fn listed_tools_and_servers_are_exported_before_any_call() {
        let metrics = Metrics::new();
        let registry = registry();
        let tool = Tool::new("query", "Search", Arc::new(serde_json::Map::new()));
        registry
            .server("search")
            .unwrap()
            .set_catalog(vec![tool], Instant::now());
        let text = metrics.render(&registry, depth(0));
        for outcome in Outcome::ALL {
            assert_eq!(
                value(
                    &text,
                    "fleetdeck_tool_calls_total",
                    &[
                        ("server", "search"),
                        ("tool", "query"),
                        ("outcome", outcome.as_str())
                    ]
                ),
                Some(0.0),
                "{outcome:?}"
            );
        }
        assert_eq!(
            value(
                &text,
                "fleetdeck_upstream_attempts_total",
                &[("server", "search")]
            ),
            Some(0.0)
        );
    }

    #[test]
    fn tools_that_leave_the_catalog_lose_their_series() {
        let metrics = Metrics::new();
        let registry = registry();
        let server = registry.server("search").unwrap();
        let named =
            |n: usize| Tool::new(format!("t{n}"), "churn", Arc::new(serde_json::Map::new()));
        for round in 0..20 {
            let tools = (round * 50..round * 50 + 50).map(named).collect();
            server.set_catalog(tools, Instant::now());
            metrics.observe(&record(
                "search",
                &format!("t{}", round * 50),
                Outcome::Ok,
                1,
                1,
            ));
            metrics.render(&registry, depth(0));
        }
        let text = metrics.render(&registry, depth(0));
        let tools: HashSet<String> = samples(&text)
            .into_iter()
            .filter(|s| s.name == "fleetdeck_tool_calls_total")
            .map(|s| s.labels["tool"].clone())
            .collect();
        assert_eq!(tools.len(), 50, "only the current catalog's tools");
        assert!(tools.contains("t950") && !tools.contains("t0"));
    }

    #[test]
    fn beyond_the_series_limit_tools_are_counted_as_their_servers_other() {
        let metrics = Metrics::new().with_max_tool_series(3);
        let registry = registry();
        let tools = (0..5)
            .map(|n| Tool::new(format!("t{n}"), "Tool", Arc::new(serde_json::Map::new())))
            .collect();
        registry
            .server("search")
            .unwrap()
            .set_catalog(tools, Instant::now());
        let tool_series = |text: &str| -> HashSet<String> {
            samples(text)
                .into_iter()
                .filter(|s| s.name == "fleetdeck_tool_calls_total")
                .map(|s| s.labels["tool"].clone())
                .collect()
        };
        // Five listed tools do not fit three series: none is started at zero.
        assert!(tool_series(&metrics.render(&registry, depth(0))).is_empty());
        for tool in ["t4", "t0", "t2", "t1", "t3", "t4"] {
            metrics.observe(&record("search", tool, Outcome::Ok, 1, 1));
        }
        let text = metrics.render(&registry, depth(0));
        let expected: HashSet<String> = ["t4", "t0", "t2", OVERFLOW_LABEL]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            tool_series(&text),
            expected,
            "the first three called, then _other"
        );
        let ok = |tool: &str| {
            value(
                &text,
                "fleetdeck_tool_calls_total",
                &[("server", "search"), ("tool", tool), ("outcome", "ok")],
            )
        };
        assert_eq!(ok("t4"), Some(2.0));
        assert_eq!(ok(OVERFLOW_LABEL), Some(2.0), "t1 and t3");
        // A tool that leaves the catalog frees its slot for the next one called.
        let kept = ["t0", "t1", "t2", "t3"]
            .into_iter()
            .map(|n| Tool::new(n, "Tool", Arc::new(serde_json::Map::new())))
            .collect();
        registry
            .server("search")
            .unwrap()
            .set_catalog(kept, Instant::now());
        metrics.render(&registry, depth(0));
        metrics.observe(&record("search", "t3", Outcome::Ok, 1, 1));
        assert!(tool_series(&metrics.render(&registry, depth(0))).contains("t3"));
    }

    #[test]
    fn tools_in_no_catalog_share_one_series() {
        let metrics = Metrics::new();
        let registry = registry();
        for n in 0..50 {
            let mut made_up = record(&format!("nope{n}"), "x", Outcome::Rejected, 0, 1);
            made_up.known_tool = false;
            metrics.observe(&made_up);
        }
        // A listed tool gets its own series once a scrape has seen the catalog.
        let tool = Tool::new("query", "Search", Arc::new(serde_json::Map::new()));
        registry
            .server("search")
            .unwrap()
            .set_catalog(vec![tool], Instant::now());
        metrics.render(&registry, depth(0));
        metrics.observe(&record("search", "query", Outcome::Ok, 1, 1));
        let text = metrics.render(&registry, depth(0));
        let servers: HashSet<String> = samples(&text)
            .into_iter()
            .filter(|s| s.name == "fleetdeck_tool_calls_total")
            .map(|s| s.labels["server"].clone())
            .collect();
        assert_eq!(
            servers,
            HashSet::from([OVERFLOW_LABEL.to_string(), "search".to_string()])
        );
        let rejected = [
            ("server", OVERFLOW_LABEL),
            ("tool", OVERFLOW_LABEL),
            ("outcome", "rejected"),
        ];
        assert_eq!(
            value(&text, "fleetdeck_tool_calls_total", &rejected),
            Some(50.0)
        );
        assert_eq!(
            value(
                &text,
                "fleetdeck_tool_calls_total",
                &[("server", "search"), ("tool", "query"), ("outcome", "ok")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let metrics = Metrics::new();
        let registry = listed(registry());
        metrics.observe(&record("search", "query", Outcome::RateLimited, 0, 1));
        metrics.observe(&record("search", "query", Outcome::Ok, 2, 1));
        let text = metrics.render(&registry, depth(1));
        let mut types = HashMap::new();
        let mut helps = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helps.insert(rest.split(' ').next().unwrap().to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            }
        }
        // 22: the scraped-load families appear only for instances whose metrics_url
        // answered, the refusal counters once something was refused.
        assert_eq!(types.len(), 22, "{types:?}");
        for (name, kind) in &types {
            assert!(name.starts_with("fleetdeck_"), "{name}");
            assert!(helps.contains(name), "{name} has no HELP");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name}: {kind}"
            );
        }
        for sample in samples(&text) {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    let base = sample.name.strip_suffix(suffix)?;
                    (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
                })
                .unwrap_or(&sample.name);
            assert!(types.contains_key(family), "{} has no TYPE", sample.name);
        }
    }
}
