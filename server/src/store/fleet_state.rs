//! The fleet's persisted state: admin states chosen by operators, and instances added while
//! running. Each change writes its audit row and announces itself to the other replicas in
//! the same transaction.

use super::admin_audit::{AdminAction, InsertAudit};
use super::changes::Announce;
use super::{Store, StoreChange, StoreError, now_ms, on_pool};
use std::collections::BTreeMap;

/// An instance added at runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetInstanceRecord {
    /// Unique id.
    pub id: String,
    /// Its server.
    pub server: String,
    /// Streamable HTTP URL, or…
    pub url: Option<String>,
    /// …program and arguments of a stdio server.
    pub command: Option<Vec<String>>,
    /// Environment of the stdio child.
    pub env: BTreeMap<String, String>,
}

#[derive(sqlx::FromRow)]
struct InstanceRow {
    id: String,
    server: String,
    url: Option<String>,
    command: Option<String>,
    env: String,
}

impl Store {
    /// Every persisted admin state, by instance id.
    pub async fn admin_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT instance_id, state FROM instance_admin_state"
        )
        .fetch_all(pool)
        .await)?)
    }

    /// Persists an instance's admin state with its audit row.
    pub async fn set_admin_state(
        &self,
        instance: &str,
        state: &str,
        action: &AdminAction,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO instance_admin_state (instance_id, state, updated_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(instance)
            .bind(state)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.insert_audit(action, now).await?;
            tx.announce(self, &StoreChange::Fleet).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Instances added at runtime.
    pub async fn fleet_instances(&self) -> Result<Vec<FleetInstanceRecord>, StoreError> {
        let rows: Vec<InstanceRow> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, server, url, command, env FROM fleet_instances ORDER BY added_at_ms, id"
        )
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|row| {
                let corrupt = |e: serde_json::Error| {
                    StoreError::Conflict(format!("instance {}: {e}", row.id))
                };
                Ok(FleetInstanceRecord {
                    command: row
                        .command
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(corrupt)?,
                    env: serde_json::from_str(&row.env).map_err(corrupt)?,
                    id: row.id,
                    server: row.server,
                    url: row.url,
                })
            })
            .collect()
    }

    /// Persists a runtime instance; a taken id is a conflict.
    pub async fn add_fleet_instance(
        &self,
        record: &FleetInstanceRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let command = record
            .command
            .as_ref()
            .map(|c| serde_json::to_string(c).unwrap_or_default());
        let env = serde_json::to_string(&record.env).unwrap_or_else(|_| "{}".into());
        // The audit row shows the URL redacted: it may carry credentials.
        let action = AdminAction::new(actor, "instance.add", &record.id).after(format!(
            "{} at {}",
            record.server,
            record
                .url
                .as_deref()
                .map(crate::sanitize::redact_url)
                .or(command.clone())
                .unwrap_or_default()
        ));
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO fleet_instances (id, server, url, command, env, added_at_ms, added_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&record.id)
            .bind(&record.server)
            .bind(&record.url)
            .bind(&command)
            .bind(&env)
            .bind(now)
            .bind(actor)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    StoreError::Conflict(format!("instance {} already exists", record.id))
                }
                _ => StoreError::Query(e),
            })?;
            tx.insert_audit(&action, now).await?;
            tx.announce(self, &StoreChange::Fleet).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a runtime instance (and its admin state).
    pub async fn remove_fleet_instance(&self, id: &str, actor: &str) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query("DELETE FROM fleet_instances WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if removed.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("runtime instance {id}")));
            }
            sqlx::query("DELETE FROM instance_admin_state WHERE instance_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.insert_audit(&AdminAction::new(actor, "instance.remove", id), now)
                .await?;
            tx.announce(self, &StoreChange::Fleet).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;

    each_backend! {
        async fn admin_states_are_upserted_and_audited(store) {
            store
                .set_admin_state(
                    "s-1",
                    "draining",
                    &AdminAction::new("olga", "instance.drain", "s-1"),
                )
                .await
                .unwrap();
            store
                .set_admin_state(
                    "s-1",
                    "active",
                    &AdminAction::new("olga", "instance.undrain", "s-1"),
                )
                .await
                .unwrap();
            store
                .set_admin_state(
                    "s-2",
                    "drained",
                    &AdminAction::new("olga", "instance.drain", "s-2"),
                )
                .await
                .unwrap();
            let mut states = store.admin_states().await.unwrap();
            states.sort();
            assert_eq!(
                states,
                [
                    ("s-1".to_string(), "active".to_string()),
                    ("s-2".to_string(), "drained".to_string())
                ]
            );
            assert_eq!(store.recent_admin_audit(10).await.unwrap().len(), 3);
        }
    }

    each_backend! {
        async fn runtime_instances_round_trip_and_ids_are_unique(store) {
            let http = FleetInstanceRecord {
                id: "search-9".into(),
                server: "search".into(),
                url: Some("http://127.0.0.1:7009/mcp".into()),
                command: None,
                env: BTreeMap::new(),
            };
            let stdio = FleetInstanceRecord {
                id: "files-9".into(),
                server: "files".into(),
                url: None,
                command: Some(vec!["node".into(), "server.js".into()]),
                env: BTreeMap::from([("DEBUG".to_string(), "1".to_string())]),
            };
            store.add_fleet_instance(&http, "olga").await.unwrap();
            store.add_fleet_instance(&stdio, "olga").await.unwrap();
            let mut listed = store.fleet_instances().await.unwrap();
            listed.sort_by(|a, b| b.id.cmp(&a.id));
            assert_eq!(listed, [http.clone(), stdio.clone()]);
            let err = store.add_fleet_instance(&http, "olga").await.unwrap_err();
            assert!(err.to_string().contains("already exists"), "{err}");
            store
                .remove_fleet_instance("search-9", "olga")
                .await
                .unwrap();
            assert_eq!(store.fleet_instances().await.unwrap(), [stdio]);
            assert!(matches!(
                store.remove_fleet_instance("search-9", "olga").await,
                Err(StoreError::NotFound(_))
            ));
        }
    }
}
