//! The fleet: instances, drains, breakers, caches and the tool catalog.

use super::{FleetControl, store_failure};
use crate::gateway::breaker::Transition;
use crate::registry::{AdminState, FleetEvent, Instance, ServerEntry};
use crate::store::{AdminAction, FleetInstanceRecord, StoreChange, StoreError};
use crate::telemetry::{overview, sampler};
use crate::upstream::Endpoint;
use app::control::FleetPlane;
use app::error::AppError;
use app::wire::{
    BreakerTransitionView, BreakerTransitionsView, CacheView, FleetView, InstanceView,
    PagePosition, ScrapedLoad, ServerView, SessionUser, TOOL_INSTANCES_SHOWN, TOOLS_PAGE_SIZE,
    ToolPageView, ToolQuery, ToolView, contains_folded,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl FleetControl {
    /// The instance of this id with its server, or `NotFound`.
    fn find_instance(&self, id: &str) -> Result<(Arc<ServerEntry>, Arc<Instance>), AppError> {
        self.registry
            .instance(id)
            .ok_or_else(|| AppError::NotFound(format!("instance {id}")))
    }

    /// After an operator changed an instance: the audit row (with the admin state to persist,
    /// in one transaction, when `persist` says so), the event and the log line. An admin
    /// state that cannot be stored is undone: the other replicas would never see it, and this
    /// one would lose it at its next reload. A breaker reset cannot be undone; the operator
    /// is told it was applied but not recorded.
    async fn changed(
        &self,
        actor: &SessionUser,
        action: &str,
        instance: &Instance,
        (before, after): (&str, &str),
        persist: Persist,
    ) -> Result<(), AppError> {
        let row = AdminAction::new(&actor.username, action, &instance.id)
            .before(before)
            .after(after);
        let recorded = match persist {
            Persist::AdminState { .. } => {
                self.store.set_admin_state(&instance.id, after, &row).await
            }
            Persist::AuditOnly => self.store.record_admin_action(&row).await,
        };
        self.registry.publish(FleetEvent::Instance {
            server: instance.server.clone(),
            instance: instance.id.clone(),
        });
        match (recorded, persist) {
            (Ok(()), _) => {
                tracing::info!(
                    actor = %actor.username,
                    action,
                    instance = %instance.id,
                    server = %instance.server,
                    before,
                    after,
                    "operator action"
                );
                Ok(())
            }
            (Err(error), Persist::AdminState { undo }) => {
                instance.restore_admin_state(undo);
                tracing::error!(%error, actor = %actor.username, action, instance = %instance.id, "operator action not applied: its admin state could not be stored");
                Err(AppError::Internal(format!(
                    "{action} of {} was not applied: the database did not store it; see the server log",
                    instance.id
                )))
            }
            (Err(error), Persist::AuditOnly) => {
                tracing::error!(%error, actor = %actor.username, action, instance = %instance.id, before, after, "operator action applied but not recorded (audit row)");
                Err(AppError::Internal(format!(
                    "{action} of {} was applied, but could not be recorded in the audit log; see the server log",
                    instance.id
                )))
            }
        }
    }
}

/// What an operator action writes besides its audit row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persist {
    /// The instance's new admin state, so that it survives a restart and reaches the other
    /// replicas; `undo` is the state to go back to if it cannot be stored.
    AdminState { undo: AdminState },
    /// Nothing: the change lives in this replica's memory (e.g. a breaker).
    AuditOnly,
}

/// An instance as the dashboard shows it, as of `now`.
fn instance_view(server: &ServerEntry, instance: &Instance, now: Instant) -> InstanceView {
    let breaker = instance.breaker_snapshot(now);
    let last_error = instance.last_error();
    let (_, health_reason, probe_ms, error_rate) = instance.health_detail(now);
    InstanceView {
        id: instance.id.clone(),
        server: instance.server.clone(),
        endpoint: describe_endpoint(instance.upstream.endpoint()),
        admin: instance.admin_state().as_str().to_string(),
        health: instance.health().as_str().to_string(),
        breaker: breaker.state.as_str().to_string(),
        consecutive_failures: breaker.consecutive_failures,
        half_open_in_ms: breaker.half_open_in.map(duration_ms),
        in_flight: instance.in_flight(),
        max_in_flight: instance.max_in_flight,
        calls: instance.counters.calls.load(Ordering::Relaxed),
        failures: instance.counters.failures.load(Ordering::Relaxed),
        p50_ms: instance
            .latency_percentile(0.5)
            .map(|d| d.as_secs_f64() * 1000.0),
        p99_ms: instance
            .latency_percentile(0.99)
            .map(|d| d.as_secs_f64() * 1000.0),
        last_error_age_s: last_error
            .as_ref()
            .map(|(at, _)| now.saturating_duration_since(*at).as_secs()),
        last_error: last_error.map(|(_, cause)| cause),
        runtime: instance.runtime,
        calls_per_s: instance.counters.rate.per_second(now),
        health_reason,
        probe_ms,
        error_rate,
        utilisation: sampler::instance_utilisation(server, instance, now),
        scraped: instance.load_signals(now).map(|s| ScrapedLoad {
            cpu_cores: s.cpu_cores,
            resident_bytes: s.resident_bytes,
            in_flight: s.in_flight,
            age_s: now.saturating_duration_since(s.at).as_secs(),
        }),
        scrape_error: instance.scrape_error(),
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The endpoint for every dashboard user to read: a URL without credentials or query
/// (either may hold a secret), or the stdio command.
fn describe_endpoint(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Http { url } => crate::sanitize::redact_url(url),
        other => other.describe(),
    }
}

/// Checks the URL of an instance an admin adds: an http(s) URL with a host, at most 2048
/// bytes, and (unless the deployment allows it) not at a link-local or cloud-metadata
/// address, as written or as its name resolves now. The connection checks again (names
/// can change what they resolve to).
async fn check_instance_url(url: &str, allow_link_local: bool) -> Result<(), AppError> {
    let shown = crate::sanitize::redact_url(url);
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|_| url.len() <= 2048)
        .ok_or_else(|| {
            AppError::Invalid(format!(
                "url {shown:?}: an http:// or https:// URL with a host, at most 2048 bytes"
            ))
        })?;
    if allow_link_local {
        return Ok(());
    }
    let policy = crate::upstream::AddressPolicy::NoLinkLocal;
    if let Some(why) = crate::upstream::refused_address(url, policy) {
        return Err(AppError::Invalid(format!("url: {why}")));
    }
    if let Some(url::Host::Domain(name)) = parsed.host() {
        let port = parsed.port_or_known_default().unwrap_or(80);
        let lookup = tokio::net::lookup_host((name, port));
        // A name that does not resolve now may later: the connection checks again.
        if let Ok(Ok(addresses)) = tokio::time::timeout(Duration::from_secs(2), lookup).await {
            let addresses: Vec<_> = addresses.collect();
            if addresses
                .iter()
                .any(|a| crate::upstream::is_link_local(a.ip()))
            {
                return Err(AppError::Invalid(format!(
                    "url: {shown} resolves to a link-local address (cloud metadata lives there; allow with --allow-link-local-instances)"
                )));
            }
        }
    }
    Ok(())
}

/// A breaker transition with its monotonic time turned into wall-clock ms.
fn transition_view(
    instance: &Instance,
    transition: Transition,
    now: Instant,
    now_ms: i64,
) -> BreakerTransitionView {
    let ago =
        i64::try_from(now.saturating_duration_since(transition.at).as_millis()).unwrap_or(i64::MAX);
    BreakerTransitionView {
        instance: instance.id.clone(),
        server: instance.server.clone(),
        at_ms: now_ms.saturating_sub(ago),
        from: transition.from.as_str().to_string(),
        to: transition.to.as_str().to_string(),
        cause: transition.cause,
    }
}

#[async_trait::async_trait]
impl FleetPlane for FleetControl {
    async fn fleet(&self) -> Result<FleetView, AppError> {
        let now = Instant::now();
        let servers = self
            .registry
            .servers()
            .into_iter()
            .map(|server| ServerView {
                name: server.name.clone(),
                domain: server.domain.clone(),
                strategy: server.balancer.strategy().as_str().to_string(),
                instances: server
                    .instances()
                    .iter()
                    .map(|instance| instance_view(&server, instance, now))
                    .collect(),
            })
            .collect();
        let advice = self
            .store
            .fleet_events(true, 8)
            .await
            .map_err(store_failure)?;
        Ok(FleetView {
            servers,
            now_ms: crate::store::now_ms(),
            advice: advice.into_iter().map(overview::event_view).collect(),
        })
    }

    async fn breaker_transitions(&self, limit: usize) -> Result<BreakerTransitionsView, AppError> {
        let (now, now_ms) = (Instant::now(), crate::store::now_ms());
        let mut transitions: Vec<(Instant, BreakerTransitionView)> = self
            .registry
            .servers()
            .iter()
            .flat_map(|server| server.instances())
            .flat_map(|instance| {
                instance
                    .breaker_snapshot(now)
                    .transitions
                    .into_iter()
                    .map(|t| (t.at, transition_view(&instance, t, now, now_ms)))
                    .collect::<Vec<_>>()
            })
            .collect();
        // Newest first, by the monotonic clock (ms rounding must not reorder them).
        transitions.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let total = transitions.len();
        Ok(BreakerTransitionsView {
            transitions: transitions
                .into_iter()
                .take(limit)
                .map(|(_, view)| view)
                .collect(),
            total,
        })
    }

    async fn drain_instance(
        &self,
        actor: &SessionUser,
        id: &str,
    ) -> Result<InstanceView, AppError> {
        let (server, instance) = self.find_instance(id)?;
        // Stored and applied as one turn: another replica's change is applied before or after.
        let _turn = self.registry.fleet_change_turn().await;
        let (before, after) = instance.drain();
        if before != after {
            self.changed(
                actor,
                "instance.drain",
                &instance,
                (before.as_str(), after.as_str()),
                Persist::AdminState { undo: before },
            )
            .await?;
        } else {
            tracing::debug!(actor = %actor.username, instance = id, state = before.as_str(), "drain: nothing to do");
        }
        Ok(instance_view(&server, &instance, Instant::now()))
    }

    async fn undrain_instance(
        &self,
        actor: &SessionUser,
        id: &str,
    ) -> Result<InstanceView, AppError> {
        let (server, instance) = self.find_instance(id)?;
        // Stored and applied as one turn: another replica's change is applied before or after.
        let _turn = self.registry.fleet_change_turn().await;
        let (before, after) = instance.undrain();
        if before != after {
            self.changed(
                actor,
                "instance.undrain",
                &instance,
                (before.as_str(), after.as_str()),
                Persist::AdminState { undo: before },
            )
            .await?;
        } else {
            tracing::debug!(actor = %actor.username, instance = id, state = before.as_str(), "undrain: nothing to do");
        }
        Ok(instance_view(&server, &instance, Instant::now()))
    }

    async fn reset_breaker(&self, actor: &SessionUser, id: &str) -> Result<InstanceView, AppError> {
        let (server, instance) = self.find_instance(id)?;
        let now = Instant::now();
        let failures = instance.breaker_snapshot(now).consecutive_failures;
        let before = instance.reset_breaker(now, &actor.username);
        let after = instance.breaker_snapshot(now).state;
        // Resetting also clears the failure count, so it is recorded even when it was closed.
        let before = format!("{} ({failures} consecutive failures)", before.as_str());
        self.changed(
            actor,
            "breaker.reset",
            &instance,
            (&before, after.as_str()),
            Persist::AuditOnly,
        )
        .await?;
        Ok(instance_view(&server, &instance, Instant::now()))
    }

    async fn add_instance(
        &self,
        actor: &SessionUser,
        server: &str,
        id: &str,
        url: &str,
    ) -> Result<InstanceView, AppError> {
        let (id, url) = (id.trim(), url.trim());
        if !crate::config::fleet::valid_instance_id(id) {
            return Err(AppError::Invalid(
                "instance id: 1 to 64 bytes, no spaces".into(),
            ));
        }
        check_instance_url(url, self.registry.allows_link_local()).await?;
        if self.registry.server(server).is_none() {
            return Err(AppError::NotFound(format!("server {server}")));
        }
        if self.registry.instance(id).is_some() {
            return Err(AppError::Conflict(format!("instance {id} already exists")));
        }
        // Stored first: an instance the store refused must not be routed to.
        let _turn = self.registry.fleet_change_turn().await;
        let record = FleetInstanceRecord {
            id: id.to_string(),
            server: server.to_string(),
            url: Some(url.to_string()),
            command: None,
            env: Default::default(),
        };
        self.store
            .add_fleet_instance(&record, &actor.username)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(why) => AppError::Conflict(why),
                other => store_failure(other),
            })?;
        let instance = self
            .registry
            .add_instance(
                server,
                id,
                Endpoint::Http {
                    url: url.to_string(),
                },
            )
            .map_err(AppError::Conflict)?;
        tracing::info!(actor = %actor.username, server, instance = id, url = %crate::sanitize::redact_url(url), "instance added");
        let (entry, _) = self.find_instance(id)?;
        Ok(instance_view(&entry, &instance, Instant::now()))
    }

    async fn remove_instance(&self, actor: &SessionUser, id: &str) -> Result<(), AppError> {
        let (_, instance) = self.find_instance(id)?;
        if !instance.runtime {
            return Err(AppError::Conflict(format!(
                "{id} is declared in the fleet file: remove it there (or drain it)"
            )));
        }
        let _turn = self.registry.fleet_change_turn().await;
        self.store
            .remove_fleet_instance(id, &actor.username)
            .await
            .map_err(store_failure)?;
        if let Some(removed) = self.registry.remove_instance(id) {
            // Calls under way keep their own handle; the session closes with the last one.
            removed.upstream.reset().await;
        }
        tracing::info!(actor = %actor.username, instance = id, "instance removed");
        Ok(())
    }

    async fn caches(&self) -> Result<Vec<CacheView>, AppError> {
        let mut views = Vec::new();
        for server in self.registry.servers() {
            let catalog = server.catalog();
            views.push(CacheView {
                server: server.name.clone(),
                kind: "tools".into(),
                entries: catalog.tools.len() as u64,
                hits: server.tool_list_hits.load(Ordering::Relaxed),
                misses: server.tool_list_misses.load(Ordering::Relaxed),
                evictions: 0,
                ttl_s: server.settings.tools_ttl.as_secs(),
                cacheable: Vec::new(),
            });
            let stats = server.results.stats().await;
            let mut cacheable: Vec<String> = server.settings.cacheable.iter().cloned().collect();
            cacheable.sort();
            views.push(CacheView {
                server: server.name.clone(),
                kind: "results".into(),
                entries: stats.entries,
                hits: stats.hits,
                misses: stats.misses,
                evictions: stats.evictions,
                ttl_s: server.settings.results_ttl.as_secs(),
                cacheable,
            });
        }
        Ok(views)
    }

    async fn invalidate_cache(
        &self,
        actor: &SessionUser,
        server: Option<String>,
        tool: Option<String>,
    ) -> Result<String, AppError> {
        let server = server.filter(|s| !s.trim().is_empty());
        let tool = tool.filter(|t| !t.trim().is_empty());
        if tool.is_some() && server.is_none() {
            return Err(AppError::Invalid(
                "name the server of the tool to invalidate".into(),
            ));
        }
        let target = match (&server, &tool) {
            (Some(server), Some(tool)) => format!("{server}__{tool}"),
            (Some(server), None) => server.clone(),
            _ => "all caches".to_string(),
        };
        let before: u64 = {
            let mut entries = 0;
            for entry in self.registry.servers() {
                if server.as_deref().is_none_or(|s| s == entry.name) {
                    entries += entry.results.stats().await.entries;
                }
            }
            entries
        };
        self.registry
            .invalidate_results(server.as_deref(), tool.as_deref())
            .await
            .map_err(AppError::NotFound)?;
        let action = AdminAction::new(&actor.username, "cache.invalidate", &target)
            .before(format!("{before} entries"))
            .after("invalidated");
        // The other replicas empty theirs when this commits.
        let change = StoreChange::CacheInvalidated { server, tool };
        self.store
            .record_admin_action_announcing(&action, &change)
            .await
            .map_err(store_failure)?;
        tracing::info!(actor = %actor.username, %target, "cache invalidated");
        Ok(format!("invalidated {target}"))
    }

    async fn tools_page(&self, query: ToolQuery) -> Result<ToolPageView, AppError> {
        let query = query.checked().map_err(AppError::Invalid)?;
        let search = query.search_folded();
        let servers = self.registry.servers();
        // Matched on the catalogs as they are; views are built for this page's tools only.
        let matching: Vec<(&Arc<ServerEntry>, Arc<rmcp::model::Tool>)> = servers
            .iter()
            .filter(|server| {
                query
                    .server
                    .as_ref()
                    .is_none_or(|name| *name == server.name)
            })
            .flat_map(|server| {
                let catalog = server.catalog();
                catalog
                    .tools
                    .iter()
                    .filter(|tool| {
                        search
                            .as_deref()
                            .is_none_or(|text| tool_matches(server, tool, text))
                    })
                    .map(|tool| (server, tool.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let position = PagePosition::new(matching.len(), query.page, TOOLS_PAGE_SIZE);
        let tools = position
            .cut(matching)
            .into_iter()
            .map(|(server, tool)| tool_view(server, &tool))
            .collect();
        Ok(ToolPageView {
            tools,
            position,
            total: servers.iter().map(|s| s.catalog().tools.len()).sum(),
            servers: servers.iter().map(|s| s.name.clone()).collect(),
        })
    }
}

/// Whether `tool` of `server` matches a search text (lower-case): its exposed name, title
/// or description.
fn tool_matches(server: &ServerEntry, tool: &rmcp::model::Tool, text: &str) -> bool {
    let folded = |value: &str| contains_folded(value, text);
    folded(&format!("{}__{}", server.name, tool.name))
        || tool.title.as_deref().is_some_and(folded)
        || tool.description.as_deref().is_some_and(folded)
}

/// A tool as the Tools page shows it.
fn tool_view(server: &ServerEntry, tool: &rmcp::model::Tool) -> ToolView {
    let mut annotations = Vec::new();
    if let Some(a) = &tool.annotations {
        for (name, value) in [
            ("read_only", a.read_only_hint),
            ("destructive", a.destructive_hint),
            ("idempotent", a.idempotent_hint),
            ("open_world", a.open_world_hint),
        ] {
            if let Some(value) = value {
                annotations.push((name.to_string(), value.to_string()));
            }
        }
    }
    let instances = server.instances();
    ToolView {
        server: server.name.clone(),
        name: format!("{}__{}", server.name, tool.name),
        title: tool
            .title
            .clone()
            .or_else(|| tool.annotations.as_ref().and_then(|a| a.title.clone())),
        description: tool.description.as_ref().map(|d| d.to_string()),
        input_schema: serde_json::to_string_pretty(tool.input_schema.as_ref()).unwrap_or_default(),
        annotations,
        instances: instances
            .iter()
            .take(TOOL_INSTANCES_SHOWN)
            .map(|i| i.id.clone())
            .collect(),
        instance_count: u32::try_from(instances.len()).unwrap_or(u32::MAX),
        cacheable: server.settings.cacheable.contains(tool.name.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::LoginThrottle;
    use crate::access::control::AccessControl;
    use crate::access::login_throttle::ThrottleLimits;
    use crate::config::fleet::FleetFile;
    use crate::registry::CallOutcome;
    use crate::registry::Registry;
    use crate::store::test_support::temp_store;
    use app::control::AuditPlane;
    use app::wire::Role;
    use std::path::Path;

    const FLEET: &str = r#"
[[server]]
name = "search"
domain = "search"
strategy = "round-robin"
breaker = { failures = 2 }

  [[server.instance]]
  id = "search-1"
  url = "http://user:secret@127.0.0.1:9/mcp?token=abc"

  [[server.instance]]
  id = "search-2"
  command = ["node", "server.js", "stdio"]
"#;

    async fn control() -> (FleetControl, Arc<Registry>, tempfile::TempDir) {
        let (store, dir) = temp_store().await;
        let fleet = FleetFile::parse(FLEET, Path::new("fleet.toml")).unwrap();
        let registry = Registry::from_fleet(&fleet);
        let throttle = Arc::new(LoginThrottle::new(ThrottleLimits::default()));
        (
            FleetControl::new(
                store.clone(),
                throttle,
                registry.clone(),
                AccessControl::load(store, crate::access::policy::AccessPolicy::default())
                    .await
                    .unwrap(),
            ),
            registry,
            dir,
        )
    }

    fn olga() -> SessionUser {
        SessionUser {
            id: 7,
            username: "olga".into(),
            role: Role::Operator,
        }
    }

    #[tokio::test]
    async fn the_fleet_view_shows_every_instance_without_secrets() {
        let (control, _, _dir) = control().await;
        let fleet = control.fleet().await.unwrap();
        assert_eq!(fleet.servers.len(), 1);
        let search = &fleet.servers[0];
        assert_eq!(
            (
                search.name.as_str(),
                search.domain.as_deref(),
                search.strategy.as_str()
            ),
            ("search", Some("search"), "round-robin")
        );
        let ids: Vec<_> = search.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["search-1", "search-2"]);
        let first = &search.instances[0];
        assert_eq!(
            (
                first.admin.as_str(),
                first.health.as_str(),
                first.breaker.as_str()
            ),
            ("active", "unknown", "closed")
        );
        assert_eq!(
            (first.in_flight, first.max_in_flight, first.calls),
            (0, 64, 0)
        );
        assert_eq!((first.p50_ms, first.last_error.as_deref()), (None, None));
        assert_eq!(first.endpoint, "http://…@127.0.0.1:9/mcp?…");
        assert_eq!(search.instances[1].endpoint, "stdio: node server.js stdio");
    }

    #[tokio::test]
    async fn drain_and_undrain_are_applied_audited_and_announced() {
        let (control, registry, _dir) = control().await;
        let mut events = registry.subscribe();

        let drained = control.drain_instance(&olga(), "search-1").await.unwrap();
        assert_eq!(drained.admin, "drained", "nothing was in flight");
        assert_eq!(
            control.store.admin_states().await.unwrap(),
            [("search-1".to_string(), "drained".to_string())],
            "the admin state survives a restart"
        );
        assert_eq!(
            events.try_recv().unwrap(),
            FleetEvent::Instance {
                server: "search".into(),
                instance: "search-1".into()
            }
        );
        // Draining again changes nothing and records nothing.
        let again = control.drain_instance(&olga(), "search-1").await.unwrap();
        assert_eq!(again.admin, "drained");
        assert!(events.try_recv().is_err());

        let active = control.undrain_instance(&olga(), "search-1").await.unwrap();
        assert_eq!(active.admin, "active");
        assert_eq!(
            control.store.admin_states().await.unwrap(),
            [("search-1".to_string(), "active".to_string())]
        );

        let audit = control.recent_admin_actions(10).await.unwrap();
        let rows: Vec<_> = audit
            .iter()
            .map(|a| {
                (
                    a.actor.as_str(),
                    a.action.as_str(),
                    a.target.as_str(),
                    a.before.as_deref(),
                    a.after.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "olga",
                    "instance.undrain",
                    "search-1",
                    Some("drained"),
                    Some("active")
                ),
                (
                    "olga",
                    "instance.drain",
                    "search-1",
                    Some("active"),
                    Some("drained")
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_drain_the_database_does_not_store_is_undone_and_refused() {
        let (control, registry, _dir) = control().await;
        control
            .store
            .execute_sql_for_test("DROP TABLE instance_admin_state")
            .await
            .unwrap();
        let err = control
            .drain_instance(&olga(), "search-1")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("was not applied"), "{err}");
        let (_, instance) = registry.instance("search-1").unwrap();
        assert_eq!(
            instance.admin_state(),
            AdminState::Active,
            "still routed to"
        );
    }

    #[tokio::test]
    async fn a_drain_with_calls_in_flight_is_draining_until_they_end() {
        let (control, registry, _dir) = control().await;
        let (_, instance) = registry.instance("search-1").unwrap();
        let call = instance.try_admit(Instant::now()).unwrap();
        let view = control.drain_instance(&olga(), "search-1").await.unwrap();
        assert_eq!((view.admin.as_str(), view.in_flight), ("draining", 1));
        assert!(call.finish(CallOutcome::Answered));
        let fleet = control.fleet().await.unwrap();
        let after = &fleet.servers[0].instances[0];
        assert_eq!(
            (after.admin.as_str(), after.in_flight, after.calls),
            ("drained", 0, 1)
        );
        assert!(after.p50_ms.is_some());
    }

    #[tokio::test]
    async fn breaker_transitions_are_listed_newest_first_and_a_reset_is_audited() {
        let (control, registry, _dir) = control().await;
        let (_, instance) = registry.instance("search-2").unwrap();
        for _ in 0..2 {
            instance
                .try_admit(Instant::now())
                .unwrap()
                .finish(CallOutcome::Failed("connection refused"));
        }
        let fleet = control.fleet().await.unwrap();
        let open = &fleet.servers[0].instances[1];
        assert_eq!(
            (open.breaker.as_str(), open.consecutive_failures),
            ("open", 2)
        );
        assert!(open.half_open_in_ms.is_some_and(|ms| ms > 25_000));
        assert_eq!(open.last_error.as_deref(), Some("connection refused"));
        assert_eq!((open.calls, open.failures), (2, 2));

        let closed = control.reset_breaker(&olga(), "search-2").await.unwrap();
        assert_eq!(
            (closed.breaker.as_str(), closed.consecutive_failures),
            ("closed", 0)
        );

        let listed = control.breaker_transitions(100).await.unwrap();
        assert_eq!(listed.total, 2);
        assert_eq!(
            control
                .breaker_transitions(1)
                .await
                .unwrap()
                .transitions
                .len(),
            1
        );
        let transitions = listed.transitions;
        let steps: Vec<_> = transitions
            .iter()
            .map(|t| {
                (
                    t.instance.as_str(),
                    t.from.as_str(),
                    t.to.as_str(),
                    t.cause.as_str(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                ("search-2", "open", "closed", "reset by olga"),
                (
                    "search-2",
                    "closed",
                    "open",
                    "2 consecutive failures: connection refused"
                ),
            ]
        );
        let now_ms = crate::store::now_ms();
        assert!(
            transitions
                .iter()
                .all(|t| (now_ms - 5_000..=now_ms).contains(&t.at_ms))
        );

        let audit = control.recent_admin_actions(1).await.unwrap();
        assert_eq!(audit[0].action, "breaker.reset");
        assert_eq!(
            audit[0].before.as_deref(),
            Some("open (2 consecutive failures)")
        );
        assert_eq!(audit[0].after.as_deref(), Some("closed"));
    }

    #[tokio::test]
    async fn an_unknown_instance_is_not_found() {
        let (control, _, _dir) = control().await;
        for result in [
            control.drain_instance(&olga(), "nope").await,
            control.undrain_instance(&olga(), "nope").await,
            control.reset_breaker(&olga(), "nope").await,
        ] {
            assert_eq!(
                result.unwrap_err(),
                AppError::NotFound("instance nope".into())
            );
        }
        assert!(control.recent_admin_actions(10).await.unwrap().is_empty());
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        assert_eq!(
            crate::sanitize::redact_url("http://127.0.0.1:7001/mcp"),
            "http://127.0.0.1:7001/mcp"
        );
        assert_eq!(
            crate::sanitize::redact_url("https://u:p@host/mcp"),
            "https://…@host/mcp"
        );
        assert_eq!(
            crate::sanitize::redact_url("http://host/mcp?key=1#x"),
            "http://host/mcp?…"
        );
        assert_eq!(
            crate::sanitize::redact_url("http://host?key=1"),
            "http://host?…"
        );
    }
}
