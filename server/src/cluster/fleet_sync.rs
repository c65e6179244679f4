//! Bringing the fleet in memory to the fleet state stored by operators: the instances they
//! added, removed, drained or undrained, on any replica.

use crate::registry::{AdminState, FleetEvent, Registry};
use crate::store::{Store, StoreError};
use crate::upstream::Endpoint;
use std::collections::HashMap;

/// What one pass changed in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetSyncReport {
    /// Runtime instances added (or re-added with a new endpoint).
    pub added: Vec<String>,
    /// Runtime instances no longer stored, removed.
    pub removed: Vec<String>,
    /// Instances whose admin state changed.
    pub admin_changed: Vec<String>,
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
    let stored = store.fleet_instances().await?;
    let admin_states: HashMap<String, String> = store.admin_states().await?.into_iter().collect();
    let mut report = FleetSyncReport::default();

    let mut stored_ids = Vec::with_capacity(stored.len());
    for record in stored {
        stored_ids.push(record.id.clone());
        let Some(endpoint) = Endpoint::from_parts(record.url, record.command, record.env) else {
            tracing::warn!(instance = %record.id, "a stored runtime instance has no endpoint; skipped");
            continue;
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
