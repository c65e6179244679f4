//! Bringing the fleet in memory to the fleet state stored by operators: the instances they
//! added, removed, drained or undrained, on any replica.

use crate::registry::{AdminState, FleetEvent, Registry};
use crate::store::{FleetInstanceRecord, Store, StoreError};
use crate::upstream::Endpoint;
use std::collections::HashMap;

/// The endpoint of an instance read from the store, if it may be used. Only the fleet
/// file starts processes: a stored `command` is refused (a row anyone with database access
/// could have written must not become a program the gateway runs), as is anything but an
/// http(s) URL.
fn stored_endpoint(record: &FleetInstanceRecord) -> Result<Endpoint, String> {
    if !crate::config::fleet::valid_instance_id(&record.id) {
        return Err("its id is not 1 to 64 bytes without spaces".into());
    }
    if record.command.is_some() {
        return Err("it names a command: only the fleet file may start a process".into());
    }
    match &record.url {
        Some(url)
            if (url.starts_with("http://") || url.starts_with("https://")) && url.len() <= 2048 =>
        {
            Ok(Endpoint::Http { url: url.clone() })
        }
        Some(_) => Err("its URL is not an http(s) URL of at most 2048 bytes".into()),
        None => Err("it has no endpoint".into()),
    }
}

/// Logs and records (once per process) a stored instance that is refused.
async fn refuse_stored(
    registry: &Registry,
    store: &Store,
    record: &FleetInstanceRecord,
    why: &str,
    report: &mut FleetSyncReport,
) {
    let id = crate::sanitize::bounded(&record.id, 64).into_owned();
    report.refused.push(id.clone());
    if !registry.first_refusal(&id) {
        return;
    }
    tracing::error!(instance = %id, server = %crate::sanitize::bounded(&record.server, 64), "a stored runtime instance is refused: {why}");
    let message = format!("{id}: stored instance refused: {why}");
    let evidence = serde_json::json!({ "reason": why });
    if let Err(error) = store
        .insert_fleet_event(
            crate::store::now_ms(),
            "refused",
            &crate::sanitize::bounded(&record.server, 64),
            Some(&id),
            &message,
            &evidence,
        )
        .await
    {
        tracing::warn!(%error, "cannot record a refused instance");
    }
}

/// What one pass changed in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetSyncReport {
    /// Runtime instances added (or re-added with a new endpoint).
    pub added: Vec<String>,
    /// Runtime instances no longer stored, removed.
    pub removed: Vec<String>,
    /// Instances whose admin state changed.
    pub admin_changed: Vec<String>,
    /// Stored instances refused (a command, a bad URL).
    pub refused: Vec<String>,
}

impl FleetSyncReport {
    /// Whether the pass changed nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.admin_changed.is_empty()
    }
}

/// Applies the stored fleet state to `registry`: runtime instances as stored (added,
/// replaced when their endpoint changed, removed when gone) and every instance's stored
/// admin state (`active` when none is stored). Idempotent: running it twice changes nothing
/// the second time, so a replica may run it for its own changes too.
pub async fn apply_stored_fleet(
    registry: &Registry,
    store: &Store,
) -> Result<FleetSyncReport, StoreError> {
    let _turn = registry.fleet_change_turn().await;
    let stored = store.fleet_instances().await?;
    let admin_states: HashMap<String, String> = store.admin_states().await?.into_iter().collect();
    let mut report = FleetSyncReport::default();

    let mut stored_ids = Vec::with_capacity(stored.len());
    for record in stored {
        stored_ids.push(record.id.clone());
        let endpoint = match stored_endpoint(&record) {
            Ok(endpoint) => endpoint,
            Err(why) => {
                refuse_stored(registry, store, &record, &why, &mut report).await;
                continue;
            }
        };
        if let Some((_, existing)) = registry.instance(&record.id) {
            if existing.runtime && existing.upstream.endpoint() != &endpoint {
                // Removed and added again elsewhere while this replica was not listening.
                if let Some(old) = registry.remove_instance(&record.id) {
                    old.upstream.reset().await;
                }
            } else {
                continue;
            }
        }
        match registry.add_instance(&record.server, &record.id, endpoint) {
            Ok(_) => report.added.push(record.id),
            Err(why) => {
                tracing::warn!(instance = %record.id, %why, "a stored runtime instance does not fit this replica's fleet; skipped")
            }
        }
    }
    let gone: Vec<String> = registry
        .servers()
        .iter()
        .flat_map(|server| server.instances())
        .filter(|instance| instance.runtime && !stored_ids.contains(&instance.id))
        .map(|instance| instance.id.clone())
        .collect();
    for id in gone {
        if let Some(removed) = registry.remove_instance(&id) {
            // Calls under way keep their own handle; the session closes with the last one.
            removed.upstream.reset().await;
            report.removed.push(id);
        }
    }

    for server in registry.servers() {
        for instance in server.instances() {
            let wanted = match admin_states.get(&instance.id) {
                Some(state) => match AdminState::parse(state) {
                    Some(state) => state,
                    None => {
                        tracing::warn!(instance = %instance.id, state, "unknown stored admin state; ignored");
                        continue;
                    }
                },
                None => AdminState::Active,
            };
            let (before, after) = match (wanted, instance.admin_state()) {
                (AdminState::Active, AdminState::Active) => continue,
                (AdminState::Active, _) => instance.undrain(),
                // Draining here becomes drained once this replica's own calls end.
                (_, AdminState::Active) => instance.drain(),
                _ => continue,
            };
            tracing::info!(instance = %instance.id, before = before.as_str(), after = after.as_str(), "admin state applied from the store");
            registry.publish(FleetEvent::Instance {
                server: instance.server.clone(),
                instance: instance.id.clone(),
            });
            report.admin_changed.push(instance.id.clone());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_command_or_a_stray_url_is_refused() {
        let record = |url: Option<&str>, command: Option<Vec<&str>>| FleetInstanceRecord {
            id: "i".into(),
            server: "s".into(),
            url: url.map(str::to_string),
            command: command.map(|c| c.into_iter().map(str::to_string).collect()),
            env: Default::default(),
        };
        let http = stored_endpoint(&record(Some("http://127.0.0.1:9/mcp"), None));
        assert_eq!(
            http,
            Ok(Endpoint::Http {
                url: "http://127.0.0.1:9/mcp".into()
            })
        );
        let planted = stored_endpoint(&record(None, Some(vec!["sh", "-c", "id"])));
        assert!(planted.unwrap_err().contains("only the fleet file"));
        assert!(stored_endpoint(&record(Some("file:///etc/passwd"), None)).is_err());
        assert!(stored_endpoint(&record(None, None)).is_err());
        let mut long_id = record(Some("http://127.0.0.1:9/mcp"), None);
        long_id.id = "i".repeat(65);
        assert!(stored_endpoint(&long_id).is_err());
    }
    use crate::config::fleet::FleetFile;
    use crate::store::test_support::each_backend;
    use crate::store::{AdminAction, FleetInstanceRecord};
    use std::path::Path;
    use std::sync::Arc;

    const FLEET: &str = r#"
[[server]]
name = "search"

  [[server.instance]]
  id = "search-1"
  url = "http://127.0.0.1:9/mcp"

  [[server.instance]]
  id = "search-2"
  url = "http://127.0.0.1:10/mcp"
"#;

    fn registry() -> Arc<Registry> {
        Registry::from_fleet(&FleetFile::parse(FLEET, Path::new("fleet.toml")).unwrap())
    }

    fn runtime(id: &str, url: &str) -> FleetInstanceRecord {
        FleetInstanceRecord {
            id: id.into(),
            server: "search".into(),
            url: Some(url.into()),
            command: None,
            env: Default::default(),
        }
    }

    fn admin(registry: &Registry, id: &str) -> AdminState {
        registry.instance(id).unwrap().1.admin_state()
    }

    each_backend! {
        async fn the_registry_converges_to_the_stored_fleet_and_stays_there(store) {
            let registry = registry();
            store.add_fleet_instance(&runtime("search-3", "http://127.0.0.1:11/mcp"), "olga").await.unwrap();
            store
                .set_admin_state("search-1", "draining", &AdminAction::new("olga", "instance.drain", "search-1"))
                .await
                .unwrap();
            // Another replica's runtime instance this one still has, though it is gone.
            registry.add_instance("search", "search-9", Endpoint::Http { url: "http://127.0.0.1:12/mcp".into() }).unwrap();

            let report = apply_stored_fleet(&registry, &store).await.unwrap();
            assert_eq!(report.added, vec!["search-3".to_string()]);
            assert_eq!(report.removed, vec!["search-9".to_string()]);
            assert_eq!(report.admin_changed, vec!["search-1".to_string()]);
            // Nothing in flight here: draining elsewhere is drained here.
            assert_eq!(admin(&registry, "search-1"), AdminState::Drained);
            assert_eq!(admin(&registry, "search-2"), AdminState::Active);
            assert!(registry.instance("search-3").unwrap().1.runtime);
            assert!(registry.instance("search-9").is_none());

            assert!(apply_stored_fleet(&registry, &store).await.unwrap().is_empty(), "idempotent");

            // Undrained and re-added elsewhere under the same id with a new URL.
            store
                .set_admin_state("search-1", "active", &AdminAction::new("olga", "instance.undrain", "search-1"))
                .await
                .unwrap();
            store.remove_fleet_instance("search-3", "olga").await.unwrap();
            store.add_fleet_instance(&runtime("search-3", "http://127.0.0.1:13/mcp"), "olga").await.unwrap();
            let report = apply_stored_fleet(&registry, &store).await.unwrap();
            assert_eq!(report.added, vec!["search-3".to_string()]);
            assert_eq!(report.admin_changed, vec!["search-1".to_string()]);
            assert_eq!(admin(&registry, "search-1"), AdminState::Active);
            assert_eq!(
                registry.instance("search-3").unwrap().1.upstream.endpoint(),
                &Endpoint::Http { url: "http://127.0.0.1:13/mcp".into() }
            );
            // Declared instances are never removed, whatever the store holds.
            assert_eq!(registry.servers()[0].instances().len(), 3);
        }
    }
}
