//! The in-memory source of truth: servers, their instances and tools, and the events that
//! tell the dashboard what changed.

pub mod instance;

pub use instance::{AdminState, CallOutcome, CallPermit, Health, Instance, Refusal};

use crate::config::fleet::{AuditSpec, FleetFile, ScrapeSpec, ServerSpec, UpstreamLimitsSpec};
use crate::gateway::balancer::Balancer;
use crate::gateway::breaker::BreakerConfig;
use crate::gateway::cache::ResultCache;
use crate::gateway::retry::{RetryBudget, RetryPolicy};
use crate::telemetry::health::HealthPolicy;
use crate::upstream::Endpoint;
use rmcp::model::Tool;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How a server's calls are timed out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeoutPolicy {
    /// The same timeout for every call.
    Fixed(Duration),
    /// A multiple of the instance's observed p99, clamped.
    Adaptive {
        /// Multiple of p99.
        multiplier: f64,
        /// Lower bound.
        min: Duration,
        /// Upper bound (also the timeout before any latency is known).
        max: Duration,
    },
}

/// A server's routing settings, from the fleet file.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Per-call timeout.
    pub timeout: TimeoutPolicy,
    /// Per-tool fixed timeouts that override `timeout`.
    pub tool_timeouts: BTreeMap<String, Duration>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// How long a tool list is trusted.
    pub tools_ttl: Duration,
    /// How long a cached result is served.
    pub results_ttl: Duration,
    /// Tools whose results may be cached.
    pub cacheable: HashSet<String>,
    /// Most cached results for this server.
    pub max_cached_results: u64,
    /// Reuse HTTP connections to instances.
    pub keep_alive: bool,
    /// What the audit log keeps of this server's calls' arguments.
    pub audit: AuditSpec,
    /// How long a probe (ping or scrape) may take.
    pub probe_timeout: Duration,
    /// When its instances count as degraded or unhealthy.
    pub health: HealthPolicy,
    /// How its instances' metrics are read.
    pub scrape: ScrapeSpec,
    /// What its instances may send.
    pub limits: UpstreamLimitsSpec,
}

/// The tools a server offers, as last listed. Cheap to clone: shared, never copied per
/// request.
#[derive(Clone, Debug, Default)]
pub struct ToolCatalog {
    /// The tools with their upstream names, in listing order.
    pub tools: Arc<[Arc<Tool>]>,
    /// The same tools by name.
    by_name: Arc<std::collections::HashMap<String, Arc<Tool>>>,
    /// When they were listed (`None`: never).
    pub listed_at: Option<Instant>,
}

impl ToolCatalog {
    /// The tool of this (upstream) name.
    pub fn get(&self, name: &str) -> Option<&Arc<Tool>> {
        self.by_name.get(name)
    }
}

/// One MCP server and its instances.
pub struct ServerEntry {
    /// Unique name; tools are exposed as `<name>__<tool>`.
    pub name: String,
    /// Business domain.
    pub domain: Option<String>,
    /// Routing settings.
    pub settings: ServerSettings,
    /// Instance choice.
    pub balancer: Balancer,
    /// Retry budget shared by the server's calls.
    pub retry_budget: RetryBudget,
    /// Results of cacheable tools.
    pub results: ResultCache,
    /// Tool listings answered from the catalog (hits) or from an instance (misses).
    pub tool_list_hits: AtomicU64,
    /// See `tool_list_hits`.
    pub tool_list_misses: AtomicU64,
    instances: RwLock<Vec<Arc<Instance>>>,
    catalog: RwLock<ToolCatalog>,
    /// Held while the tools are listed: one listing at a time.
    listing: tokio::sync::Mutex<()>,
    /// When the last background listing was started.
    relisted_at: std::sync::Mutex<Option<Instant>>,
    /// When the last listing ended, well or not.
    listing_ended: std::sync::Mutex<Option<Instant>>,
    /// The last report of a refused listing or of tools left out of the catalog (recorded
    /// again only when it changes).
    catalog_report: std::sync::Mutex<String>,
}

impl ServerEntry {
    /// The instances, in declaration order.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the tools were ever listed.
    pub fn has_catalog(&self) -> bool {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .listed_at
            .is_some()
    }

    /// Whether a listing ended, well or not, at or after `at`.
    pub fn listing_ended_since(&self, at: Instant) -> bool {
        self.listing_ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|ended| ended >= at)
    }

    /// Whether a listing ended, well or not, within `window` before `now`.
    pub fn listing_ended_within(&self, now: Instant, window: Duration) -> bool {
        self.listing_ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|ended| now.saturating_duration_since(ended) < window)
    }

    /// Notes that a listing ended.
    pub fn note_listing_ended(&self, at: Instant) {
        *self
            .listing_ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
    }

    /// The lock one listing holds.
    pub fn listing(&self) -> &tokio::sync::Mutex<()> {
        &self.listing
    }

    /// Whether a background listing may start now (none started within `every`); if so, it
    /// counts as started.
    pub fn relist_due(&self, now: Instant, every: Duration) -> bool {
        let mut last = self
            .relisted_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| now.saturating_duration_since(at) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Remembers a report about the catalog; returns whether it differs from the last one.
    pub fn note_catalog_report(&self, report: &str) -> bool {
        let mut last = self
            .catalog_report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last == report {
            return false;
        }
        *last = report.to_string();
        true
    }

    /// The tool catalog.
    pub fn catalog(&self) -> ToolCatalog {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the tool catalog.
    pub fn set_catalog(&self, tools: Vec<Tool>, now: Instant) {
        let tools: Vec<Arc<Tool>> = tools.into_iter().map(Arc::new).collect();
        let by_name = tools
            .iter()
            .map(|t| (t.name.to_string(), t.clone()))
            .collect();
        // Any change an instance announced is now reflected.
        for instance in self
            .instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            instance
                .upstream
                .tools_changed
                .store(false, std::sync::atomic::Ordering::Release);
        }
        *self
            .catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ToolCatalog {
            tools: tools.into(),
            by_name: Arc::new(by_name),
            listed_at: Some(now),
        };
    }

    /// Whether the catalog must be listed again: never listed, older than its TTL, or an
    /// instance announced a change.
    pub fn catalog_stale(&self, now: Instant) -> bool {
        // Read under the locks: this runs on every call, nothing is cloned for it.
        let listed_at = self
            .catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .listed_at;
        let changed = self
            .instances
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|i| {
                i.upstream
                    .tools_changed
                    .load(std::sync::atomic::Ordering::Acquire)
            });
        match listed_at {
            _ if changed => true,
            Some(at) => now.saturating_duration_since(at) >= self.settings.tools_ttl,
            None => true,
        }
    }

    /// The upstream tool of this name, if listed (shared, not copied).
    pub fn tool(&self, name: &str) -> Option<Arc<Tool>> {
        let catalog = self
            .catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        catalog.get(name).cloned()
    }

    /// The timeout for a call of `tool` on `instance`.
    pub fn timeout_for(&self, tool: &str, instance: &Instance) -> Duration {
        if let Some(fixed) = self.settings.tool_timeouts.get(tool) {
            return *fixed;
        }
        match self.settings.timeout {
            TimeoutPolicy::Fixed(timeout) => timeout,
            TimeoutPolicy::Adaptive {
                multiplier,
                min,
                max,
            } => crate::gateway::latency::adaptive_timeout(
                instance.latency_percentile(0.99),
                multiplier,
                min,
                max,
            ),
        }
    }
}

/// Something the dashboard should redraw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetEvent {
    /// An instance's admin state, health or breaker changed.
    Instance {
        /// The server.
        server: String,
        /// The instance.
        instance: String,
    },
    /// A server's tool list changed.
    Tools {
        /// The server.
        server: String,
    },
    /// A cache was invalidated.
    Cache,
    /// Capacity advice was given for a server.
    Advice {
        /// The server.
        server: String,
    },
}

/// The fleet.
pub struct Registry {
    servers: RwLock<BTreeMap<String, Arc<ServerEntry>>>,
    events: broadcast::Sender<FleetEvent>,
    /// Held across "store the fleet change + apply it in memory" (an operator here) and
    /// "read the stored fleet + apply it" (another replica's change), so neither undoes
    /// the other half-way.
    fleet_changes: tokio::sync::Mutex<()>,
    /// Whether instances added while running may be at link-local addresses.
    allow_link_local: std::sync::atomic::AtomicBool,
    /// Stored instances already refused (reported once).
    refused: std::sync::Mutex<HashSet<String>>,
}

/// Split `<server>__<tool>` into its parts.
pub fn split_tool_name(name: &str) -> Option<(&str, &str)> {
    let (server, tool) = name.split_once("__")?;
    (!server.is_empty() && !tool.is_empty()).then_some((server, tool))
}

impl Registry {
    /// A registry holding the fleet file's servers.
    pub fn from_fleet(fleet: &FleetFile) -> Arc<Registry> {
        let (events, _) = broadcast::channel(1024);
        let servers = fleet
            .servers
            .iter()
            .map(|spec| (spec.name.get_ref().clone(), Arc::new(server_entry(spec))))
            .collect();
        Arc::new(Registry {
            servers: RwLock::new(servers),
            events,
            fleet_changes: tokio::sync::Mutex::new(()),
            allow_link_local: std::sync::atomic::AtomicBool::new(false),
            refused: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// Takes the turn to change the fleet's admin states or runtime instances (see
    /// `fleet_changes`); the change is made while the guard lives.
    pub async fn fleet_change_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.fleet_changes.lock().await
    }

    /// Every server, by name.
    pub fn servers(&self) -> Vec<Arc<ServerEntry>> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The server of this name.
    pub fn server(&self, name: &str) -> Option<Arc<ServerEntry>> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The instance of this id, with its server.
    pub fn instance(&self, id: &str) -> Option<(Arc<ServerEntry>, Arc<Instance>)> {
        self.servers().into_iter().find_map(|server| {
            let instance = server.instances().into_iter().find(|i| i.id == id)?;
            Some((server, instance))
        })
    }

    /// Tells subscribers something changed (none listening is fine).
    pub fn publish(&self, event: FleetEvent) {
        let _ = self.events.send(event);
    }

    /// Empties result caches: one tool's, one server's, or (both `None`) the whole fleet's.
    /// Returns how many servers were touched; an unknown server is an error naming it.
    pub async fn invalidate_results(
        &self,
        server: Option<&str>,
        tool: Option<&str>,
    ) -> Result<usize, String> {
        let targets = match server {
            Some(name) => vec![self.server(name).ok_or_else(|| format!("server {name}"))?],
            None => self.servers(),
        };
        for entry in &targets {
            match tool {
                Some(tool) => entry.results.invalidate_tool(tool).await,
                None => entry.results.invalidate_all().await,
            }
        }
        self.publish(FleetEvent::Cache);
        Ok(targets.len())
    }

    /// Adds an instance to a server (with the server's limits and breaker settings).
    pub fn add_instance(
        &self,
        server: &str,
        id: &str,
        endpoint: Endpoint,
    ) -> Result<Arc<Instance>, String> {
        if self.instance(id).is_some() {
            return Err(format!("instance {id} already exists"));
        }
        let entry = self
            .server(server)
            .ok_or_else(|| format!("server {server}"))?;
        let template = entry
            .instances()
            .first()
            .map(|i| (i.max_in_flight, i.breaker_config()));
        let (max_in_flight, breaker) = template.unwrap_or((64, BreakerConfig::default()));
        let mut instance = Instance::new(
            id.to_string(),
            server.to_string(),
            endpoint,
            max_in_flight,
            breaker,
        )
        .with_health_policy(entry.settings.health);
        instance.runtime = true;
        instance.upstream.set_keep_alive(entry.settings.keep_alive);
        // Added on the dashboard (or read back from the store): kept away from metadata
        // services unless the deployment allows it.
        if !self
            .allow_link_local
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            instance
                .upstream
                .set_address_policy(crate::upstream::AddressPolicy::NoLinkLocal);
        }
        let instance = Arc::new(instance);
        entry
            .instances
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(instance.clone());
        self.publish(FleetEvent::Instance {
            server: server.to_string(),
            instance: id.to_string(),
        });
        Ok(instance)
    }

    /// Lets instances added from now on reach link-local addresses
    /// (`--allow-link-local-instances`).
    pub fn set_allow_link_local(&self, allow: bool) {
        self.allow_link_local
            .store(allow, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether instances added while running may be at link-local addresses.
    pub fn allows_link_local(&self) -> bool {
        self.allow_link_local
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Notes a stored instance refused; true the first time for this id.
    pub fn first_refusal(&self, id: &str) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_string())
    }

    /// Removes an instance; calls already under way on it finish.
    pub fn remove_instance(&self, id: &str) -> Option<Arc<Instance>> {
        let (server, instance) = self.instance(id)?;
        server
            .instances
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|i| i.id != id);
        self.publish(FleetEvent::Instance {
            server: server.name.clone(),
            instance: id.to_string(),
        });
        Some(instance)
    }

    /// Subscribes to changes.
    pub fn subscribe(&self) -> broadcast::Receiver<FleetEvent> {
        self.events.subscribe()
    }
}

fn server_entry(spec: &ServerSpec) -> ServerEntry {
    let breaker = BreakerConfig {
        failures: spec.breaker.failures,
        reset: Duration::from_secs(spec.breaker.reset_s),
        half_open_probes: spec.breaker.half_open_probes,
    };
    let name = spec.name.get_ref().clone();
    let health = HealthPolicy {
        unhealthy_after: spec.probe.unhealthy_after,
        healthy_after: spec.probe.healthy_after,
        degraded_latency: Duration::from_millis(spec.probe.degraded_latency_ms),
        degraded_error_rate: spec.probe.degraded_error_rate,
    };
    let instances = spec
        .instances
        .iter()
        // The fleet file's validation guarantees each instance a URL or a command.
        .filter_map(|i| {
            let endpoint = Endpoint::from_parts(
                i.url.as_ref().map(|u| u.get_ref().clone()),
                i.command.as_ref().map(|c| c.get_ref().clone()),
                i.env.clone(),
            )?;
            let instance = Instance::new(
                i.id.get_ref().clone(),
                name.clone(),
                endpoint,
                spec.max_in_flight,
                breaker,
            )
            .with_health_policy(health)
            .with_metrics_url(i.metrics_url.clone());
            instance.upstream.set_keep_alive(spec.keep_alive);
            Some(Arc::new(instance))
        })
        .collect();
    let timeout = match (&spec.timeout_ms, &spec.timeout) {
        (_, Some(adaptive)) => TimeoutPolicy::Adaptive {
            multiplier: adaptive.adaptive,
            min: Duration::from_millis(adaptive.min_ms),
            max: Duration::from_millis(adaptive.max_ms),
        },
        (Some(ms), None) => TimeoutPolicy::Fixed(Duration::from_millis(*ms.get_ref())),
        (None, None) => TimeoutPolicy::Fixed(Duration::from_secs(30)),
    };
    let retry = RetryPolicy {
        attempts: spec.retry.attempts,
        base: Duration::from_millis(spec.retry.base_ms),
        max: Duration::from_millis(spec.retry.max_ms),
        budget_ratio: spec.retry.budget_ratio,
    };
    ServerEntry {
        name,
        domain: spec.domain.clone(),
        balancer: Balancer::new(spec.strategy),
        retry_budget: RetryBudget::new(retry.budget_ratio, 10, Duration::from_secs(10)),
        results: ResultCache::new(
            spec.cache.max_entries,
            spec.cache.max_bytes,
            Duration::from_secs(spec.cache.results_ttl_s),
        ),
        tool_list_hits: AtomicU64::new(0),
        tool_list_misses: AtomicU64::new(0),
        settings: ServerSettings {
            timeout,
            tool_timeouts: spec
                .tool_timeout_ms
                .iter()
                .map(|(k, v)| (k.clone(), Duration::from_millis(*v)))
                .collect(),
            retry,
            tools_ttl: Duration::from_secs(spec.cache.tools_ttl_s),
            results_ttl: Duration::from_secs(spec.cache.results_ttl_s),
            cacheable: spec.cache.cacheable.iter().cloned().collect(),
            max_cached_results: spec.cache.max_entries,
            keep_alive: spec.keep_alive,
            audit: spec.audit.clone(),
            probe_timeout: Duration::from_millis(spec.probe.timeout_ms),
            health,
            scrape: spec.scrape.clone(),
            limits: spec.limits,
        },
        instances: RwLock::new(instances),
        catalog: RwLock::new(ToolCatalog::default()),
        listing: tokio::sync::Mutex::new(()),
        relisted_at: std::sync::Mutex::new(None),
        listing_ended: std::sync::Mutex::new(None),
        catalog_report: std::sync::Mutex::new(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announced_tool_list_change_makes_the_catalog_stale_until_listed_again() {
        let fleet = crate::config::fleet::FleetFile::parse(
            "[[server]]\nname = \"s\"\n[[server.instance]]\nid = \"s-1\"\nurl = \"http://127.0.0.1:9/mcp\"\n",
            std::path::Path::new("fleet.toml"),
        )
        .unwrap();
        let registry = Registry::from_fleet(&fleet);
        let server = registry.server("s").unwrap();
        let now = Instant::now();
        assert!(server.catalog_stale(now), "never listed");
        server.set_catalog(Vec::new(), now);
        assert!(!server.catalog_stale(now));
        let (_, instance) = registry.instance("s-1").unwrap();
        instance
            .upstream
            .tools_changed
            .store(true, std::sync::atomic::Ordering::Release);
        assert!(
            server.catalog_stale(now),
            "notifications/tools/list_changed"
        );
        server.set_catalog(Vec::new(), now);
        assert!(!server.catalog_stale(now));
        assert!(
            server.catalog_stale(now + server.settings.tools_ttl),
            "and by TTL"
        );
    }

    #[test]
    fn tool_names_split_at_the_first_double_underscore() {
        assert_eq!(split_tool_name("search__query"), Some(("search", "query")));
        assert_eq!(
            split_tool_name("files__read__all"),
            Some(("files", "read__all"))
        );
        assert_eq!(split_tool_name("query"), None);
        assert_eq!(split_tool_name("__query"), None);
        assert_eq!(split_tool_name("search__"), None);
    }
}
