//! Wire types: what the server and the browser exchange. Plain serde data, no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

mod cache_listing;
mod fleet_listing;
mod paging;
mod permission_listing;
mod roi;
mod tool_listing;
pub use cache_listing::*;
pub use fleet_listing::*;
pub use paging::*;
pub use permission_listing::*;
pub use roi::*;
pub use tool_listing::*;

/// A dashboard login's role. Ordered: each role may do everything the ones below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches the fleet, reads reports.
    Viewer,
    /// On-call: drains instances, resets breakers, invalidates caches.
    Operator,
    /// Manages permissions, assistants and users.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether a user with this role may do what `required` is needed for.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of viewer, operator, admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected viewer, operator or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

/// The logged-in user of a dashboard session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    /// The user's id in the store.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Current role (read from the store on every request, so a change applies at once).
    pub role: Role,
}

/// One dashboard login as the Users page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    /// The user's id in the store.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// When the user was created (Unix ms).
    pub created_at_ms: i64,
    /// When the user's role or password last changed (Unix ms).
    pub updated_at_ms: i64,
    /// Whether an admin disabled the login (it cannot log in).
    pub disabled: bool,
}

/// A password the server generated, shown once to the admin who asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedPassword {
    /// Whose password it is.
    pub username: String,
    /// The password in clear; it is stored only as an argon2id hash.
    pub password: String,
}

/// The control plane's own state, for the Overview page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// Fleetdeck's version.
    pub version: String,
    /// Which store backs this replica ("sqlite" or "postgres").
    pub database: String,
    /// Whether the database answered just now.
    pub database_ok: bool,
    /// Seconds since this replica started.
    pub uptime_s: u64,
    /// Dashboard logins, by role.
    pub users_by_role: Vec<(Role, u64)>,
    /// Server time of this reading (Unix ms).
    pub now_ms: i64,
    /// This replica's id (its process id and a random part), as in its logs.
    pub replica_id: String,
    /// How this replica follows the others' changes; `None` on SQLite (one replica).
    pub change_feed: Option<ChangeFeedView>,
}

/// How a replica follows the admin changes of the others (PostgreSQL LISTEN/NOTIFY).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFeedView {
    /// Following now.
    pub following: bool,
    /// Changes made by other replicas (or the CLI) applied here.
    pub applied: u64,
    /// Full reloads after the listener reconnected.
    pub resyncs: u64,
    /// When the last of those changes was applied (Unix ms).
    pub last_applied_ms: Option<i64>,
}

/// One recorded admin action: who changed what, from what to what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminActionEntry {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who acted (a user name, or `cli`).
    pub actor: String,
    /// What they did, e.g. `user.set_role`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The state before, if recorded.
    pub before: Option<String>,
    /// The state after, if recorded.
    pub after: Option<String>,
}

/// The fleet as the Fleet page shows it: every server and its instances, at one moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetView {
    /// The servers, by name.
    pub servers: Vec<ServerView>,
    /// Server time of this reading (Unix ms).
    pub now_ms: i64,
    /// Recent capacity advice, newest first.
    pub advice: Vec<FleetEventView>,
}

/// One MCP server of the fleet with its routing strategy and instances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerView {
    /// Unique name; its tools are exposed as `<name>__<tool>`.
    pub name: String,
    /// Business domain, if the fleet file gives one.
    pub domain: Option<String>,
    /// Balancer strategy, e.g. `least-load`.
    pub strategy: String,
    /// The instances, in fleet-file order.
    pub instances: Vec<InstanceView>,
}

/// One instance's state: admin state, health, breaker, load, counters and latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    /// Unique instance id.
    pub id: String,
    /// The server it belongs to.
    pub server: String,
    /// Where it is reached: its URL, or `stdio: <command>`.
    pub endpoint: String,
    /// Admin state: `active`, `draining` or `drained`.
    pub admin: String,
    /// Observed health: `unknown`, `healthy`, `degraded` or `unhealthy`.
    pub health: String,
    /// Breaker state: `closed`, `open` or `half_open`.
    pub breaker: String,
    /// Consecutive failures the breaker counted.
    pub consecutive_failures: u32,
    /// Time until an open breaker lets probes through (ms); `None` unless open.
    pub half_open_in_ms: Option<u64>,
    /// Calls in flight now.
    pub in_flight: u32,
    /// Concurrency limit.
    pub max_in_flight: u32,
    /// Calls that reached the instance since this replica started.
    pub calls: u64,
    /// Of those, calls that failed at the instance.
    pub failures: u64,
    /// Median latency over recent calls (ms), if any.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency over recent calls (ms), if any.
    pub p99_ms: Option<f64>,
    /// The last failure's cause, if any.
    pub last_error: Option<String>,
    /// Seconds since the last failure, if any.
    pub last_error_age_s: Option<u64>,
    /// Added while running (removable from the dashboard), not declared in the fleet file.
    pub runtime: bool,
    /// Calls per second over the last seconds.
    pub calls_per_s: f64,
    /// Why it has its health, e.g. "3 probes failed in a row: connection refused".
    pub health_reason: String,
    /// Smoothed round trip of the active probes (ms), once probed.
    pub probe_ms: Option<f64>,
    /// Share of failed probes and calls over the last minute, once there are enough.
    pub error_rate: Option<f64>,
    /// Utilisation now: the busiest of slots, scraped CPU and memory (1.0 = at the limit).
    pub utilisation: f64,
    /// Scraped load signals, if the instance has a `metrics_url` that answers.
    pub scraped: Option<ScrapedLoad>,
    /// Why the last scrape failed, if it did.
    pub scrape_error: Option<String>,
}

/// What the prober read from an instance's own Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrapedLoad {
    /// CPU cores busy.
    pub cpu_cores: Option<f64>,
    /// Resident memory in bytes.
    pub resident_bytes: Option<f64>,
    /// Calls the instance reports serving (all clients).
    pub in_flight: Option<f64>,
    /// Seconds since the scrape.
    pub age_s: u64,
}

/// Something that happened to the fleet: a health change or capacity advice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetEventView {
    /// Row id.
    pub id: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// `health`, `scale_up` or `scale_down`.
    pub kind: String,
    /// The server.
    pub server: String,
    /// The instance, for health changes.
    pub instance: Option<String>,
    /// What happened.
    pub message: String,
    /// The evidence, as indented JSON.
    pub evidence: String,
}

/// One server at a glance, over the Overview's window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerGlance {
    /// The server.
    pub name: String,
    /// Instances in the fleet.
    pub instances: u32,
    /// Of those, taking calls (active and not unhealthy).
    pub taking_calls: u32,
    /// Of those, degraded.
    pub degraded: u32,
    /// Open breakers.
    pub open_breakers: u32,
    /// Calls over the window.
    pub calls: u64,
    /// Errors per call over the window.
    pub error_rate: Option<f64>,
    /// The highest per-minute p99 over the window (ms).
    pub p99_ms: Option<f64>,
    /// Cache hits per cacheable call over the window.
    pub hit_rate: Option<f64>,
    /// Mean utilisation of the instances taking calls, now.
    pub utilisation: Option<f64>,
}

/// The Overview: the fleet at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewView {
    /// Minutes the rates cover.
    pub window_minutes: u32,
    /// Instances by observed health, e.g. `("healthy", 7)`, every health listed.
    pub by_health: Vec<(String, u32)>,
    /// Instances by admin state, every state listed.
    pub by_admin: Vec<(String, u32)>,
    /// Open breakers in the fleet.
    pub open_breakers: u32,
    /// Half-open breakers in the fleet.
    pub half_open_breakers: u32,
    /// Calls per second over the window.
    pub calls_per_s: f64,
    /// Errors per call over the window.
    pub error_rate: Option<f64>,
    /// The highest per-minute p99 over the window (ms).
    pub p99_ms: Option<f64>,
    /// Cache hits per cacheable call over the window.
    pub hit_rate: Option<f64>,
    /// Every server.
    pub servers: Vec<ServerGlance>,
    /// Recent capacity advice, newest first.
    pub advice: Vec<FleetEventView>,
    /// Recent health changes and advice, newest first.
    pub events: Vec<FleetEventView>,
}

/// One recorded breaker state change of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerTransitionView {
    /// The instance whose breaker changed.
    pub instance: String,
    /// The instance's server.
    pub server: String,
    /// When it changed (Unix ms, derived from this replica's monotonic clock).
    pub at_ms: i64,
    /// State before: `closed`, `open` or `half_open`.
    pub from: String,
    /// State after: `closed`, `open` or `half_open`.
    pub to: String,
    /// Why, in words for an operator.
    pub cause: String,
}

/// The newest breaker transitions of the fleet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerTransitionsView {
    /// The newest first, as many as asked for.
    pub transitions: Vec<BreakerTransitionView>,
    /// How many this replica keeps in all (each breaker its newest 20).
    pub total: usize,
}

/// One cache of one server, for the Caches page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheView {
    /// The server.
    pub server: String,
    /// `tools` (the tool list) or `results` (cacheable tools' results).
    pub kind: String,
    /// Entries now.
    pub entries: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to an instance.
    pub misses: u64,
    /// Entries pushed out by size or age.
    pub evictions: u64,
    /// How long an entry is served, in seconds.
    pub ttl_s: u64,
    /// The tools whose results are cached (results caches only).
    pub cacheable: Vec<String>,
}

impl CacheView {
    /// Hits over lookups, in percent (`None` before any lookup).
    pub fn hit_rate_percent(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 * 100.0 / lookups as f64)
    }
}

/// One tool of the fleet, for the Tools page.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolView {
    /// The server.
    pub server: String,
    /// The name assistants call: `<server>__<tool>`.
    pub name: String,
    /// Human title, if any.
    pub title: Option<String>,
    /// Description from the upstream server.
    pub description: Option<String>,
    /// The input schema, pretty-printed JSON.
    pub input_schema: String,
    /// Annotation hints that are set, e.g. `("read_only", "true")`.
    pub annotations: Vec<(String, String)>,
    /// Instances that serve it: the first [`TOOL_INSTANCES_SHOWN`].
    pub instances: Vec<String>,
    /// Instances that serve it, in all.
    pub instance_count: u32,
    /// Whether results are cached.
    pub cacheable: bool,
}

/// An assistant's tier: its default permissions and rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Read-only tools (`read_*` by default); 50 calls a minute.
    Viewer,
    /// An explicit list of everyday tools; 100 calls a minute.
    Developer,
    /// Every tool (`*`); 1000 calls a minute.
    Admin,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 3] = [Tier::Viewer, Tier::Developer, Tier::Admin];

    /// The tier's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Viewer => "viewer",
            Tier::Developer => "developer",
            Tier::Admin => "admin",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier name that is none of viewer, developer, admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?}: expected viewer, developer or admin")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Tier::Viewer),
            "developer" => Ok(Tier::Developer),
            "admin" => Ok(Tier::Admin),
            other => Err(UnknownTier(other.to_string())),
        }
    }
}

/// One API key of an assistant, as the Assistants page lists it (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    /// The key's id in the store.
    pub id: i64,
    /// The key's first characters, to tell keys apart (not secret).
    pub prefix: String,
    /// When it was issued (Unix ms).
    pub created_at_ms: i64,
    /// Who issued it (a user name, `cli` or `fleet-file`).
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// When it last authenticated a call.
    pub last_used_at_ms: Option<i64>,
}

/// An assistant (an MCP client of the gateway) with its keys and recent activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssistantView {
    /// Unique name, shown in the audit log.
    pub name: String,
    /// Tier: default permissions and rate limit.
    pub tier: Tier,
    /// When it was added (Unix ms).
    pub created_at_ms: i64,
    /// Its keys, newest first, revoked ones included.
    pub keys: Vec<ApiKeyView>,
    /// When any of its keys last authenticated a call.
    pub last_used_at_ms: Option<i64>,
    /// Tool calls in the last 24 hours (audit log).
    pub calls_24h: u64,
    /// Of those, refused by a permission.
    pub denials_24h: u64,
    /// Of those, refused by the rate limit.
    pub rate_limited_24h: u64,
    /// Its rate limit in calls per minute (from its tier).
    pub rate_per_min: u32,
}

/// A freshly issued API key, shown once to whoever asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedKey {
    /// Whose key it is.
    pub assistant: String,
    /// The key's id in the store.
    pub key_id: i64,
    /// The key in clear; the store keeps only its SHA-256 digest.
    pub key: String,
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The assistant may call the tool.
    Allow,
    /// It may not.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Why a permission decision is what it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecisionSource {
    /// An explicit entry for this very tool.
    Explicit,
    /// An explicit entry for every tool of the server (a bulk grant or revoke).
    ServerWide,
    /// The first of the tier's patterns that matches, e.g. `read_*`.
    TierPattern(String),
    /// Nothing matched: denied.
    Unmatched,
}

impl fmt::Display for DecisionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecisionSource::Explicit => f.write_str("explicit"),
            DecisionSource::ServerWide => f.write_str("explicit for the server"),
            DecisionSource::TierPattern(pattern) => write!(f, "tier pattern {pattern}"),
            DecisionSource::Unmatched => f.write_str("no rule matched"),
        }
    }
}

/// The effective decision for one assistant and one tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionCell {
    /// Allow or deny.
    pub decision: Decision,
    /// Which rule decided.
    pub source: DecisionSource,
}

/// One tool's row of the matrix: a cell per assistant, in the matrix's assistant order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolPermissions {
    /// The upstream tool name (exposed as `<server>__<tool>`).
    pub tool: String,
    /// One cell per assistant.
    pub cells: Vec<PermissionCell>,
}

/// One server's block of the matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPermissions {
    /// The server.
    pub server: String,
    /// Its tools, by name.
    pub tools: Vec<ToolPermissions>,
}

/// Which audit trail to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditKind {
    /// Tool calls through the gateway.
    #[default]
    Calls,
    /// Admin actions in the dashboard and the CLI.
    Admin,
}

/// Filters and page of an audit query (every field optional; the page's URL holds them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Which trail.
    pub kind: AuditKind,
    /// Admin actions: the acting user (exact).
    pub who: Option<String>,
    /// Calls: the assistant (exact).
    pub assistant: Option<String>,
    /// Calls: `<server>__<tool>`, or a server name alone for all its tools.
    pub tool: Option<String>,
    /// Calls: the outcome (`ok`, `tool_error`, `failed`, `denied`, `rate_limited`,
    /// `rejected`, `cancelled`).
    pub outcome: Option<String>,
    /// From this time on (Unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// Before this time (Unix ms, exclusive).
    pub to_ms: Option<i64>,
    /// 1-based page number.
    pub page: u32,
    /// Rows per page (1..=500).
    pub page_size: u32,
}

/// One tool call of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCallEntry {
    /// Row id.
    pub id: i64,
    /// When the call arrived (Unix ms).
    pub at_ms: i64,
    /// The calling assistant.
    pub assistant: String,
    /// The server.
    pub server: String,
    /// The upstream tool name.
    pub tool: String,
    /// The instance that answered last, if any was reached.
    pub instance: Option<String>,
    /// `ok`, `tool_error`, `failed`, `denied`, `rate_limited`, `rejected` or `cancelled`.
    pub outcome: String,
    /// Whether the answer came from the result cache.
    pub cache_hit: bool,
    /// Wall time in the gateway, in milliseconds.
    pub duration_ms: f64,
    /// Upstream attempts (0 when refused before any).
    pub attempts: u32,
    /// The W3C trace id, if traced.
    pub trace_id: Option<String>,
    /// SHA-256 of the canonical JSON arguments.
    pub args_digest: String,
    /// The arguments (only for servers configured to record them; secrets redacted).
    pub arguments: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// The lowest role that may read recorded tool arguments (viewers see the digest only).
pub const READS_RECORDED_ARGUMENTS: Role = Role::Operator;

impl ToolCallEntry {
    /// The entry as `reader` may see it: recorded arguments removed below
    /// [`READS_RECORDED_ARGUMENTS`] (the digest stays, so equal arguments still show).
    pub fn for_reader(mut self, reader: Role) -> Self {
        if !reader.allows(READS_RECORDED_ARGUMENTS) {
            self.arguments = None;
        }
        self
    }
}

/// One page of an audit query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Tool calls (when the query's kind is `calls`), newest first.
    pub calls: Vec<ToolCallEntry>,
    /// Admin actions (when the kind is `admin`), newest first.
    pub admin: Vec<AdminActionEntry>,
    /// Rows matching the filters, over all pages.
    pub total: u64,
    /// This page (1-based).
    pub page: u32,
    /// Rows per page.
    pub page_size: u32,
}

/// Filters of the Traces page (every field optional; the page's URL holds them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceQuery {
    /// `<server>__<tool>` (exact), or a server name alone.
    pub tool: Option<String>,
    /// The calling assistant (exact).
    pub assistant: Option<String>,
    /// `ok` or `error`.
    pub status: Option<String>,
    /// Only traces at least this long, in milliseconds.
    pub min_duration_ms: Option<f64>,
    /// Started at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Started before (Unix ms).
    pub to_ms: Option<i64>,
    /// At most this many, newest first (1..=500).
    pub limit: u32,
}

/// One trace in the Traces list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// W3C trace id (32 hex digits).
    pub trace_id: String,
    /// When the root span started (Unix ms).
    pub started_at_ms: i64,
    /// The root span's duration in milliseconds.
    pub duration_ms: f64,
    /// The root span's name, e.g. `tools/call`.
    pub root: String,
    /// The tool called, as `<server>__<tool>`, if any.
    pub tool: Option<String>,
    /// The calling assistant, if known.
    pub assistant: Option<String>,
    /// `ok` or `error`.
    pub status: String,
    /// Number of spans.
    pub spans: u32,
    /// Upstream attempts beyond the first.
    pub retries: u32,
}

/// A log line inside a span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanEventView {
    /// Milliseconds after the trace started.
    pub offset_ms: f64,
    /// The message, with its fields.
    pub message: String,
}

/// One span of a trace, for the waterfall.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanView {
    /// Span id (16 hex digits).
    pub span_id: String,
    /// The parent span's id (`None` for the root).
    pub parent_id: Option<String>,
    /// Nesting depth (0 for the root).
    pub depth: u32,
    /// What the span covers, e.g. `attempt`.
    pub name: String,
    /// Milliseconds after the trace started.
    pub start_offset_ms: f64,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// `ok` or `error`.
    pub status: String,
    /// Tags, e.g. `("instance", "search-1")`, `("breaker", "closed")`.
    pub attributes: Vec<(String, String)>,
    /// Log lines recorded inside it.
    pub events: Vec<SpanEventView>,
}

/// A whole trace: its summary and its spans in depth-first order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceView {
    /// The list entry.
    pub summary: TraceSummary,
    /// Spans, parents before children, siblings by start time.
    pub spans: Vec<SpanView>,
}

/// Formats a duration in seconds as `3d 4h`, `2h 05m`, `4m 09s` or `7s`.
pub fn format_duration_s(total: u64) -> String {
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Formats Unix ms as `YYYY-MM-DD HH:MM:SS` in UTC (identical on server and browser, so
/// hydration matches).
pub fn format_timestamp_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_allow_what_is_below_them() {
        assert!(Role::Admin.allows(Role::Admin));
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Admin.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(Role::Operator.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
        assert!(Role::Viewer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Admin));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "unknown role \"root\": expected viewer, operator or admin"
        );
        assert!(
            "Admin".parse::<Role>().is_err(),
            "role names are case-sensitive"
        );
    }

    #[test]
    fn recorded_arguments_reach_operators_and_admins_only() {
        let call = ToolCallEntry {
            id: 1,
            at_ms: 0,
            assistant: "bot".into(),
            server: "db".into(),
            tool: "sql_select".into(),
            instance: None,
            outcome: "ok".into(),
            cache_hit: false,
            duration_ms: 1.0,
            attempts: 1,
            trace_id: None,
            args_digest: "abc123".into(),
            arguments: Some(r#"{"sql":"select 1"}"#.into()),
            error: None,
        };
        let viewed = call.clone().for_reader(Role::Viewer);
        assert_eq!(viewed.arguments, None);
        assert_eq!(viewed.args_digest, "abc123");
        for reader in [Role::Operator, Role::Admin] {
            assert_eq!(call.clone().for_reader(reader), call);
        }
    }

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(format_timestamp_utc(0), "1970-01-01 00:00:00");
        assert_eq!(
            format_timestamp_utc(1_795_352_645_678),
            "2026-11-22 13:04:05"
        );
        assert_eq!(format_timestamp_utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_timestamp_utc(-1000), "1969-12-31 23:59:59");
    }

    #[test]
    fn hit_rates_need_lookups() {
        let mut cache = CacheView {
            server: "s".into(),
            kind: "results".into(),
            entries: 0,
            hits: 0,
            misses: 0,
            evictions: 0,
            ttl_s: 60,
            cacheable: vec![],
        };
        assert_eq!(cache.hit_rate_percent(), None);
        cache.hits = 3;
        cache.misses = 1;
        assert_eq!(cache.hit_rate_percent(), Some(75.0));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration_s(7), "7s");
        assert_eq!(format_duration_s(249), "4m 09s");
        assert_eq!(format_duration_s(7500), "2h 05m");
        assert_eq!(format_duration_s(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
