//! The fleet file (`fleet.toml`): the servers, their instances and routing settings.
//!
//! Parsing is strict: an unknown key, a missing field or a wrong type is an error naming the
//! file, the line and the key, and the server refuses to start rather than guess.

use crate::access::policy::AccessPolicy;
use crate::gateway::balancer::Strategy;
use app::wire::Tier;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A fleet file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetFileError {
    /// The file could not be read.
    #[error("cannot read the fleet file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Syntax, unknown key, missing field or wrong type.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// MCP servers, each with instances.
    #[serde(default, rename = "server")]
    pub servers: Vec<ServerSpec>,
    /// Assistants declared here (imported into the store at start, keys stored hashed).
    #[serde(default, rename = "assistant")]
    pub assistants: Vec<AssistantSpec>,
    /// Tier patterns and rate limits.
    #[serde(default)]
    pub access: AccessSpec,
}

/// `[access]`: what each tier may call by default, and how often.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSpec {
    /// `[access.tier.<viewer|developer|admin>]`: overrides of a tier's defaults.
    #[serde(default)]
    pub tier: BTreeMap<Tier, TierSpec>,
    /// `[access.tool_rate_per_min]`: `"<server>__<tool>" = n` calls a minute per assistant,
    /// instead of the tier's limit, for that tool.
    #[serde(default)]
    pub tool_rate_per_min: BTreeMap<String, u32>,
}

/// One tier's overrides; what is left out keeps the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// Tool patterns allowed by default (`read_*`, `search__*`, `*`).
    #[serde(default)]
    pub patterns: Option<Vec<String>>,
    /// Calls a minute per assistant.
    #[serde(default)]
    pub rate_per_min: Option<u32>,
}

/// `audit = { record_arguments = true, redact = ["password"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSpec {
    /// Keep the arguments of this server's calls in the audit log (otherwise a digest only).
    pub record_arguments: bool,
    /// Argument keys whose values are replaced by `[redacted]` (any depth, any case).
    pub redact: Vec<String>,
}

impl Default for AuditSpec {
    fn default() -> Self {
        AuditSpec {
            record_arguments: false,
            redact: ["password", "secret", "token", "api_key", "authorization"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// One MCP server (its tools are exposed as `<name>__<tool>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Unique name: lower-case letters, digits, `-` (no `__`).
    pub name: Spanned<String>,
    /// Business domain, for grouping on the dashboard.
    #[serde(default)]
    pub domain: Option<String>,
    /// How calls are spread over instances.
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    /// Per-call timeout in milliseconds (exclusive with `timeout`).
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    /// Adaptive timeout: a multiple of the instance's observed p99, clamped.
    #[serde(default)]
    pub timeout: Option<AdaptiveTimeoutSpec>,
    /// Per-tool timeout overrides in milliseconds, by upstream tool name.
    #[serde(default)]
    pub tool_timeout_ms: BTreeMap<String, u64>,
    /// Concurrent calls per instance; more are refused as "saturated".
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Reuse HTTP connections to the instances (keep-alive). Faster, but only for servers
    /// that send with TCP_NODELAY: otherwise each reused connection stalls ~40 ms on delayed
    /// ACKs, which is why it is off by default (as in rmcp's client).
    #[serde(default)]
    pub keep_alive: bool,
    /// Circuit breaker per instance.
    #[serde(default)]
    pub breaker: BreakerSpec,
    /// Retries on another instance.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Tool-list and result caches.
    #[serde(default)]
    pub cache: CacheSpec,
    /// What the audit log keeps of this server's calls.
    #[serde(default)]
    pub audit: AuditSpec,
    /// Active health probes and the thresholds of health.
    #[serde(default)]
    pub probe: ProbeSpec,
    /// What the prober reads from the instances' `metrics_url`.
    #[serde(default)]
    pub scrape: ScrapeSpec,
    /// How much the gateway accepts from this server's instances.
    #[serde(default)]
    pub limits: UpstreamLimitsSpec,
    /// The instances serving this server's tools.
    #[serde(default, rename = "instance")]
    pub instances: Vec<InstanceSpec>,
}

/// `timeout = { adaptive = 4.0, min_ms = 200, max_ms = 10000 }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveTimeoutSpec {
    /// Multiple of the observed p99.
    pub adaptive: f64,
    /// Lower bound in milliseconds.
    pub min_ms: u64,
    /// Upper bound (and the timeout before any latency is observed), in milliseconds.
    pub max_ms: u64,
}

/// `breaker = { failures = 5, reset_s = 30, half_open_probes = 1 }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSpec {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// Seconds open before probing (half-open).
    pub reset_s: u64,
    /// Probe calls allowed at once while half-open.
    pub half_open_probes: u32,
}

impl Default for BreakerSpec {
    fn default() -> Self {
        BreakerSpec {
            failures: 5,
            reset_s: 30,
            half_open_probes: 1,
        }
    }
}

/// `retry = { attempts = 2, base_ms = 50, max_ms = 1000, budget_ratio = 0.2 }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySpec {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// First backoff in milliseconds (doubles each retry, with full jitter).
    pub base_ms: u64,
    /// Longest backoff in milliseconds.
    pub max_ms: u64,
    /// Retries allowed as a fraction of first attempts (the retry budget).
    pub budget_ratio: f64,
}

impl Default for RetrySpec {
    fn default() -> Self {
        RetrySpec {
            attempts: 2,
            base_ms: 50,
            max_ms: 1000,
            budget_ratio: 0.2,
        }
    }
}

/// `cache = { tools_ttl_s = 300, results_ttl_s = 60, cacheable = ["lookup"], max_entries = 10000 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSpec {
    /// How long a server's tool list is trusted, in seconds.
    pub tools_ttl_s: u64,
    /// How long a cached result is served, in seconds.
    pub results_ttl_s: u64,
    /// Upstream tool names whose results may be cached.
    pub cacheable: Vec<String>,
    /// Most results kept for this server.
    pub max_entries: u64,
    /// Most bytes of results kept for this server (results and their arguments, as JSON).
    pub max_bytes: u64,
}

impl Default for CacheSpec {
    fn default() -> Self {
        CacheSpec {
            tools_ttl_s: 300,
            results_ttl_s: 60,
            cacheable: Vec::new(),
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `limits = { max_tools = 1000, max_catalog_bytes = 8388608, max_tool_bytes = 163840,
/// max_description_bytes = 8192, max_schema_bytes = 65536, max_result_bytes = 16777216 }`:
/// what an instance may send. An instance may be broken or compromised; nothing it sends
/// is kept without a bound. A listing with more tools than `max_tools`, or more bytes than
/// `max_catalog_bytes`, fails (the last good catalog stays, and a fleet event says why); a
/// tool whose name, description, schema or whole JSON is over its cap is left out of the
/// catalog (with an event); a result over `max_result_bytes` fails the call.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamLimitsSpec {
    /// Most tools in one server's catalog (all pages of `tools/list` together).
    pub max_tools: usize,
    /// Most bytes of one server's catalog, as JSON (all its tools together).
    pub max_catalog_bytes: usize,
    /// Most bytes of one tool as JSON (name, description, schemas, annotations, icons,
    /// `_meta`: everything).
    pub max_tool_bytes: usize,
    /// Longest tool description (and title) in bytes.
    pub max_description_bytes: usize,
    /// Largest input or output schema of one tool, as JSON, in bytes.
    pub max_schema_bytes: usize,
    /// Largest tool result (content and structured content) in bytes; at most 16 MiB,
    /// the ceiling of the MCP client underneath.
    pub max_result_bytes: usize,
}

/// The MCP client's own ceiling on one message (rmcp: JSON bodies, SSE events, stdio lines).
pub const MAX_UPSTREAM_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

impl Default for UpstreamLimitsSpec {
    fn default() -> Self {
        UpstreamLimitsSpec {
            max_tools: 1000,
            max_catalog_bytes: 8 * 1024 * 1024,
            max_tool_bytes: 160 * 1024,
            max_description_bytes: 8 * 1024,
            max_schema_bytes: 64 * 1024,
            max_result_bytes: MAX_UPSTREAM_MESSAGE_BYTES,
        }
    }
}

/// `probe = { timeout_ms = 2000, unhealthy_after = 3, healthy_after = 2,
/// degraded_latency_ms = 1000, degraded_error_rate = 0.25 }` (the interval is `serve
/// --probe-interval-s`, one for the whole fleet).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSpec {
    /// How long a probe (MCP ping, metrics scrape) may take, in milliseconds.
    pub timeout_ms: u64,
    /// Consecutive failed probes that make an instance unhealthy (no calls routed to it).
    pub unhealthy_after: u32,
    /// Consecutive answered probes that bring an unhealthy instance back.
    pub healthy_after: u32,
    /// A smoothed probe round trip at or above this (ms) makes an instance degraded.
    pub degraded_latency_ms: u64,
    /// A share of failed probes and calls over the last minute at or above this makes an
    /// instance degraded (0 < rate <= 1).
    pub degraded_error_rate: f64,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            timeout_ms: 2000,
            unhealthy_after: 3,
            healthy_after: 2,
            degraded_latency_ms: 1000,
            degraded_error_rate: 0.25,
        }
    }
}

/// `scrape = { in_flight_metric = "mcp_in_flight", cpu_cores = 2.0, memory_limit_mb = 1024 }`:
/// how to read an instance's Prometheus endpoint. CPU comes from `process_cpu_seconds_total`
/// and memory from `process_resident_memory_bytes`, the client libraries' standard names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeSpec {
    /// A gauge of the calls the instance is serving (from every gateway replica and any other
    /// client); least-load routing uses it when it exceeds this replica's own count.
    pub in_flight_metric: Option<String>,
    /// CPU cores an instance may use: its CPU utilisation is cores used / this (default 1).
    pub cpu_cores: Option<f64>,
    /// Memory an instance may use, in MiB: its memory utilisation is resident / this
    /// (without it, memory is shown but not counted in utilisation).
    pub memory_limit_mb: Option<u64>,
}

/// One instance: a URL (streamable HTTP) or a command (stdio child process).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// Unique id across the fleet.
    pub id: Spanned<String>,
    /// Streamable HTTP endpoint, e.g. `http://127.0.0.1:7001/mcp`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Program and arguments of a stdio server.
    #[serde(default)]
    pub command: Option<Spanned<Vec<String>>>,
    /// Environment of the stdio child.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Optional Prometheus endpoint of the instance.
    #[serde(default)]
    pub metrics_url: Option<String>,
}

/// An assistant declared in the file (for deployments managed as code). Assistants can also
/// be added from the dashboard or the CLI, which generate their keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantSpec {
    /// Name, shown in the audit log.
    pub name: Spanned<String>,
    /// A bearer key it may use (at least 32 characters); stored as a digest at start.
    pub key: Spanned<String>,
    /// Its tier (default `developer`).
    #[serde(default = "default_tier")]
    pub tier: Tier,
}

fn default_tier() -> Tier {
    Tier::Developer
}

fn default_strategy() -> Strategy {
    Strategy::LeastLoad
}

fn default_max_in_flight() -> u32 {
    64
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Shortest key the fleet file may declare: guessable keys are refused.
pub use crate::access::control::MIN_DECLARED_KEY_CHARS;

/// Longest instance id (ids appear in labels, logs and audit rows).
pub const MAX_INSTANCE_ID_BYTES: usize = 64;

/// Whether an instance id is fit for labels, logs and URLs: 1 to 64 bytes, no spaces or
/// control characters.
pub fn valid_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INSTANCE_ID_BYTES
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether a server name can prefix tool names unambiguously.
fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && !name.contains("__")
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl FleetFile {
    /// Reads and validates a fleet file.
    pub fn load(path: &Path) -> Result<FleetFile, FleetFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| FleetFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates fleet-file text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<FleetFile, FleetFileError> {
        let invalid = |offset: usize, message: String| FleetFileError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, offset),
            message,
        };
        let fleet: FleetFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(offset, e.message().trim().to_string())
        })?;

        let mut server_names = HashSet::new();
        let mut instance_ids = HashSet::new();
        for server in &fleet.servers {
            let name = server.name.get_ref();
            let at = server.name.span().start;
            if !valid_server_name(name) {
                return Err(invalid(
                    at,
                    format!(
                        "server name {name:?}: use lower-case letters, digits, - and single _ (it prefixes tool names as {name}__<tool>)"
                    ),
                ));
            }
            if !server_names.insert(name.clone()) {
                return Err(invalid(at, format!("server {name:?} is declared twice")));
            }
            match (&server.timeout_ms, &server.timeout) {
                (Some(fixed), Some(_)) => {
                    return Err(invalid(
                        fixed.span().start,
                        format!("server {name}: give timeout_ms or timeout, not both"),
                    ));
                }
                (Some(fixed), None) if *fixed.get_ref() == 0 => {
                    return Err(invalid(
                        fixed.span().start,
                        format!("server {name}: timeout_ms must be above 0"),
                    ));
                }
                (None, Some(adaptive))
                    if !(adaptive.adaptive > 0.0
                        && adaptive.min_ms > 0
                        && adaptive.min_ms <= adaptive.max_ms) =>
                {
                    return Err(invalid(
                        at,
                        format!(
                            "server {name}: timeout needs adaptive > 0 and 0 < min_ms <= max_ms"
                        ),
                    ));
                }
                _ => {}
            }
            if server.max_in_flight == 0 {
                return Err(invalid(
                    at,
                    format!("server {name}: max_in_flight must be at least 1"),
                ));
            }
            if server.breaker.failures == 0 || server.breaker.half_open_probes == 0 {
                return Err(invalid(
                    at,
                    format!(
                        "server {name}: breaker failures and half_open_probes must be at least 1"
                    ),
                ));
            }
            let probe = server.probe;
            if probe.timeout_ms == 0
                || probe.unhealthy_after == 0
                || probe.healthy_after == 0
                || probe.degraded_latency_ms == 0
                || !(probe.degraded_error_rate > 0.0 && probe.degraded_error_rate <= 1.0)
            {
                return Err(invalid(
                    at,
                    format!(
                        "server {name}: probe needs timeout_ms, unhealthy_after, healthy_after and \
                         degraded_latency_ms of at least 1, and 0 < degraded_error_rate <= 1"
                    ),
                ));
            }
            let scrape = &server.scrape;
            if scrape
                .cpu_cores
                .is_some_and(|c| !(c.is_finite() && c > 0.0))
                || scrape.memory_limit_mb == Some(0)
                || scrape.in_flight_metric.as_deref().is_some_and(|m| {
                    m.is_empty()
                        || !m
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                })
            {
                return Err(invalid(
                    at,
                    format!(
                        "server {name}: scrape needs cpu_cores > 0, memory_limit_mb >= 1 and a \
                         Prometheus metric name for in_flight_metric"
                    ),
                ));
            }
            let limits = server.limits;
            if limits.max_tools == 0
                || limits.max_catalog_bytes == 0
                || limits.max_tool_bytes == 0
                || limits.max_description_bytes == 0
                || limits.max_schema_bytes == 0
                || !(1..=MAX_UPSTREAM_MESSAGE_BYTES).contains(&limits.max_result_bytes)
                || server.cache.max_bytes == 0
            {
                return Err(invalid(
                    at,
                    format!(
                        "server {name}: limits need max_tools, max_catalog_bytes, \
                         max_tool_bytes, max_description_bytes and max_schema_bytes of at \
                         least 1, 1 <= max_result_bytes <= \
                         {MAX_UPSTREAM_MESSAGE_BYTES}, and cache.max_bytes at least 1"
                    ),
                ));
            }
            let retry = server.retry;
            if !(0.0..=1.0).contains(&retry.budget_ratio) || retry.base_ms > retry.max_ms {
                return Err(invalid(
                    at,
                    format!(
                        "server {name}: retry needs 0 <= budget_ratio <= 1 and base_ms <= max_ms"
                    ),
                ));
            }
            if server.instances.is_empty() {
                return Err(invalid(
                    at,
                    format!("server {name}: declare at least one [[server.instance]]"),
                ));
            }
            for instance in &server.instances {
                let id = instance.id.get_ref();
                let at = instance.id.span().start;
                if !valid_instance_id(id) {
                    return Err(invalid(
                        at,
                        format!(
                            "instance id {:?}: use 1 to {MAX_INSTANCE_ID_BYTES} bytes without spaces",
                            crate::sanitize::bounded(id, 80)
                        ),
                    ));
                }
                if !instance_ids.insert(id.clone()) {
                    return Err(invalid(at, format!("instance {id:?} is declared twice")));
                }
                if let Some(metrics) = &instance.metrics_url
                    && !(metrics.starts_with("http://") || metrics.starts_with("https://"))
                {
                    return Err(invalid(
                        at,
                        format!(
                            "instance {id}: metrics_url {metrics:?} must start with http:// or https://"
                        ),
                    ));
                }
                match (&instance.url, &instance.command) {
                    (Some(url), None) => {
                        let text = url.get_ref();
                        if !(text.starts_with("http://") || text.starts_with("https://")) {
                            return Err(invalid(
                                url.span().start,
                                format!(
                                    "instance {id}: url {text:?} must start with http:// or https://"
                                ),
                            ));
                        }
                    }
                    (None, Some(command))
                        if command.get_ref().is_empty() || command.get_ref()[0].is_empty() =>
                    {
                        return Err(invalid(
                            command.span().start,
                            format!("instance {id}: command needs a program"),
                        ));
                    }
                    (None, Some(_)) => {}
                    _ => {
                        return Err(invalid(
                            at,
                            format!("instance {id}: give exactly one of url or command"),
                        ));
                    }
                }
            }
        }
        let mut assistant_names = HashSet::new();
        for assistant in &fleet.assistants {
            let name = assistant.name.get_ref();
            if !assistant_names.insert(name.clone()) {
                return Err(invalid(
                    assistant.name.span().start,
                    format!("assistant {name:?} is declared twice"),
                ));
            }
            let key = assistant.key.get_ref();
            if key.chars().count() < MIN_DECLARED_KEY_CHARS
                || key.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(invalid(
                    assistant.key.span().start,
                    format!(
                        "assistant {name}: key must have at least {MIN_DECLARED_KEY_CHARS} \
                         characters and no spaces (generate one with `openssl rand -hex 32`)"
                    ),
                ));
            }
        }
        if let Err(problem) = fleet.access_policy().validate() {
            let at = text.find("[access").unwrap_or(0);
            return Err(invalid(at, format!("access: {problem}")));
        }
        Ok(fleet)
    }

    /// The access policy: the defaults with this file's overrides.
    pub fn access_policy(&self) -> AccessPolicy {
        let mut policy = AccessPolicy::default();
        for (tier, spec) in &self.access.tier {
            let target = match tier {
                Tier::Viewer => &mut policy.viewer,
                Tier::Developer => &mut policy.developer,
                Tier::Admin => &mut policy.admin,
            };
            if let Some(patterns) = &spec.patterns {
                target.patterns = patterns.clone();
            }
            if let Some(rate) = spec.rate_per_min {
                target.rate_per_min = rate;
            }
        }
        policy.tool_rate_per_min = self.access.tool_rate_per_min.clone();
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FleetFile, String> {
        FleetFile::parse(text, Path::new("fleet.toml")).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[[server]]
name = "search"
domain = "search"
strategy = "consistent-hash"
timeout = { adaptive = 4.0, min_ms = 200, max_ms = 10000 }
tool_timeout_ms = { reindex = 30000 }
breaker = { failures = 3 }
cache = { cacheable = ["lookup"] }

  [[server.instance]]
  id = "search-1"
  url = "http://127.0.0.1:7001/mcp"
  metrics_url = "http://127.0.0.1:7001/metrics"

  [[server.instance]]
  id = "search-2"
  command = ["node", "server.js", "stdio"]
  env = { DEBUG = "1" }

[[assistant]]
name = "claude"
key = "0123456789abcdef0123456789abcdef"
tier = "admin"

[access.tier.viewer]
patterns = ["read_*", "search__lookup"]

[access.tier.developer]
rate_per_min = 200

[access.tool_rate_per_min]
"search__reindex" = 2
"#;

    #[test]
    fn a_complete_file_parses_with_defaults_filled_in() {
        let fleet = parse(GOOD).unwrap();
        let search = &fleet.servers[0];
        assert_eq!(search.name.get_ref(), "search");
        assert_eq!(search.strategy, Strategy::ConsistentHash);
        assert_eq!(search.breaker.failures, 3);
        assert_eq!(
            search.breaker.reset_s, 30,
            "defaults fill what is not given"
        );
        assert_eq!(search.retry.attempts, 2);
        assert_eq!(search.max_in_flight, 64);
        assert_eq!(search.cache.cacheable, ["lookup"]);
        assert_eq!(search.tool_timeout_ms["reindex"], 30_000);
        assert_eq!(search.instances.len(), 2);
        assert_eq!(
            search.instances[1].command.as_ref().unwrap().get_ref()[0],
            "node"
        );
        assert_eq!(fleet.assistants[0].name.get_ref(), "claude");
        assert_eq!(fleet.assistants[0].tier, Tier::Admin);
        let policy = fleet.access_policy();
        assert_eq!(policy.viewer.patterns, ["read_*", "search__lookup"]);
        assert_eq!(policy.viewer.rate_per_min, 50, "rate keeps its default");
        assert_eq!(policy.developer.rate_per_min, 200);
        assert_eq!(policy.admin.patterns, ["*"]);
        assert_eq!(policy.tool_rate_per_min.get("search__reindex"), Some(&2));
        assert!(!fleet.servers[0].audit.record_arguments);
        assert!(
            fleet.servers[0]
                .audit
                .redact
                .iter()
                .any(|k| k == "password")
        );
    }

    #[test]
    fn an_unknown_key_names_the_file_the_line_and_the_key() {
        let text = "[[server]]\nname = \"search\"\nstrategie = \"random\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.starts_with("fleet.toml:3: "), "{err}");
        assert!(err.contains("strategie"), "{err}");
    }

    #[test]
    fn a_wrong_type_and_a_missing_field_are_errors_with_lines() {
        let err = parse("[[server]]\nname = \"s\"\nmax_in_flight = \"many\"\n").unwrap_err();
        assert!(err.starts_with("fleet.toml:3: "), "{err}");
        let err = parse("[[server]]\nname = \"s\"\n[[server.instance]]\nurl = \"http://x/mcp\"\n")
            .unwrap_err();
        assert!(err.contains("missing field `id`"), "{err}");
    }

    #[test]
    fn semantic_mistakes_are_refused_with_their_line() {
        let cases = [
            (
                "[[server]]\nname = \"Bad Name\"\n",
                "fleet.toml:2: server name",
            ),
            ("[[server]]\nname = \"a__b\"\n", "fleet.toml:2: server name"),
            (
                "[[server]]\nname = \"s\"\nstrategy = \"fastest\"\n[[server.instance]]\nid = \"i\"\nurl = \"http://x\"\n",
                "fleet.toml:3: unknown variant `fastest`",
            ),
            ("[[server]]\nname = \"s\"\n", "declare at least one"),
            (
                "[[server]]\nname = \"s\"\n[[server.instance]]\nid = \"i\"\n",
                "fleet.toml:4: instance i: give exactly one of url or command",
            ),
            (
                "[[server]]\nname = \"s\"\n[[server.instance]]\nid = \"i\"\nurl = \"ftp://x\"\n",
                "fleet.toml:5: instance i: url",
            ),
            (
                "[[server]]\nname = \"s\"\n[[server.instance]]\nid = \"i\"\nurl = \"http://x\"\n[[server.instance]]\nid = \"i\"\nurl = \"http://y\"\n",
                "fleet.toml:7: instance \"i\" is declared twice",
            ),
            (
                "[[server]]\nname = \"s\"\ntimeout_ms = 0\n[[server.instance]]\nid = \"i\"\nurl = \"http://x\"\n",
                "fleet.toml:3: server s: timeout_ms must be above 0",
            ),
            (
                "[[server]]\nname = \"s\"\nprobe = { unhealthy_after = 0 }\n[[server.instance]]\nid = \"i\"\nurl = \"http://x\"\n",
                "fleet.toml:2: server s: probe needs",
            ),
            (
                "[[server]]\nname = \"s\"\nprobe = { degraded_error_rate = 1.5 }\n[[server.instance]]\nid = \"i\"\nurl = \"http://x\"\n",
                "server s: probe needs",
            ),
            (
                "[[server]]\nname = \"s\"\nscrape = { in_flight_metric = \"in flight\" }\n[[server.instance]]\nid = \"i\"\nurl = \"http://x\"\n",
                "server s: scrape needs",
            ),
            (
                "[[server]]\nname = \"s\"\n[[server.instance]]\nid = \"i\"\nurl = \"http://x\"\nmetrics_url = \"x:9100\"\n",
                "fleet.toml:4: instance i: metrics_url",
            ),
            (
                "[[assistant]]\nname = \"a\"\nkey = \"short\"\n",
                "fleet.toml:3: assistant a: key must have at least 32",
            ),
            (
                "[[assistant]]\nname = \"a\"\nkey = \"0123456789abcdef\"\ntier = \"root\"\n",
                "fleet.toml:4: unknown variant `root`",
            ),
            (
                "[access.tier.viewer]\nrate_per_min = 0\n",
                "fleet.toml:1: access:",
            ),
            (
                "[access.tool_rate_per_min]\nreindex = 5\n",
                "tool rate \"reindex\": name one tool as <server>__<tool>",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }

    #[test]
    fn an_empty_file_is_an_empty_fleet() {
        let fleet = parse("").unwrap();
        assert!(fleet.servers.is_empty() && fleet.assistants.is_empty());
    }
}
