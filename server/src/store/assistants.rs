//! Assistants, their API keys and their explicit tool permissions.
//!
//! Every change runs in one transaction that also bumps `access_revision` (so that other
//! processes on the same database notice it), announces it to the other replicas and writes
//! its admin-audit row. The bump is the transaction's first statement: it takes SQLite's
//! write lock (PostgreSQL's row lock) before anything is read, so concurrent changes run one
//! after the other and a read-then-write transaction never fails to upgrade its lock.

use super::admin_audit::{AdminAction, InsertAudit};
use super::changes::Announce;
use super::{SnapshotReads, Store, StoreChange, StoreError, impl_for_connections, now_ms, on_pool};
use app::wire::{Decision, Tier};

/// The actor of changes made by importing the fleet file.
pub const FLEET_FILE_ACTOR: &str = "fleet-file";

/// An API key as stored: its digest, never the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Row id.
    pub id: i64,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    /// Lower-case hex SHA-256 of the key.
    pub digest: String,
    /// When it was issued (Unix ms).
    pub created_at_ms: i64,
    /// Who issued it (a user name, `cli` or `fleet-file`).
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
    /// When it last authenticated a call, as last flushed.
    pub last_used_at_ms: Option<i64>,
}

/// An assistant as stored, with its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssistantRecord {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Tier.
    pub tier: Tier,
    /// When it was added (Unix ms).
    pub created_at_ms: i64,
    /// Who added it.
    pub created_by: String,
    /// Its keys, newest first, revoked ones included.
    pub keys: Vec<ApiKeyRecord>,
}

/// One explicit permission entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionRecord {
    /// The assistant's name.
    pub assistant: String,
    /// The server.
    pub server: String,
    /// The tool, or `*` for every tool of the server.
    pub tool: String,
    /// Allow or deny.
    pub decision: Decision,
    /// When it was set (Unix ms).
    pub updated_at_ms: i64,
    /// Who set it.
    pub updated_by: String,
}

/// Everything access control needs, read consistently at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRecords {
    /// The `access_revision` these records belong to.
    pub revision: i64,
    /// Every assistant, by name.
    pub assistants: Vec<AssistantRecord>,
    /// Every explicit entry, by assistant, server and tool.
    pub permissions: Vec<PermissionRecord>,
}

/// What a permission change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermissionChange {
    /// The entry before (`None`: there was none).
    pub before: Option<Decision>,
    /// The entry after (`None`: removed).
    pub after: Option<Decision>,
    /// Per-tool entries of the server removed by a server-wide decision.
    pub replaced_tool_entries: u64,
}

/// An assistant as the fleet file declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeclaredAssistant<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its tier.
    pub tier: Tier,
    /// Its key's prefix.
    pub key_prefix: &'a str,
    /// Its key's digest.
    pub key_digest: &'a str,
}

/// What importing one declared assistant changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeclaredImport {
    /// The assistant did not exist and was created.
    pub created: bool,
    /// Its tier differed and was changed from this one.
    pub tier_before: Option<Tier>,
    /// Its key was not known and was registered.
    pub key_registered: bool,
    /// Its key is known but was revoked (it stays revoked: revocation is deliberate).
    pub key_revoked: bool,
}

impl DeclaredImport {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        self.created || self.tier_before.is_some() || self.key_registered
    }
}

#[derive(sqlx::FromRow)]
struct AssistantRow {
    id: i64,
    name: String,
    tier: String,
    created_at_ms: i64,
    created_by: String,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: i64,
    assistant_id: i64,
    prefix: String,
    digest: String,
    created_at_ms: i64,
    created_by: String,
    revoked_at_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct PermissionRow {
    assistant: String,
    server: String,
    tool: String,
    decision: String,
    updated_at_ms: i64,
    updated_by: String,
}

fn parse_tier(name: &str, tier: &str) -> Result<Tier, StoreError> {
    tier.parse()
        .map_err(|e| StoreError::Conflict(format!("assistant {name}: {e}")))
}

fn parse_decision(decision: &str) -> Result<Decision, StoreError> {
    match decision {
        "allow" => Ok(Decision::Allow),
        "deny" => Ok(Decision::Deny),
        other => Err(StoreError::Conflict(format!(
            "unknown permission decision {other:?}"
        ))),
    }
}

/// How an entry reads in the audit log.
fn describe_entry(decision: Option<Decision>) -> &'static str {
    decision.map_or("tier default", Decision::as_str)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Statements the access changes share, run inside their transaction.
trait AccessStatements {
    /// Bumps `access_revision` and announces the change (both commit with it).
    async fn bump_revision(&mut self, store: &Store) -> Result<(), StoreError>;
    /// The id and tier of the assistant with this name.
    async fn find_assistant(&mut self, name: &str) -> Result<Option<(i64, Tier)>, StoreError>;
    /// Inserts a key row; a digest already stored is a conflict.
    async fn insert_key(
        &mut self,
        assistant_id: i64,
        prefix: &str,
        digest: &str,
        actor: &str,
        at_ms: i64,
    ) -> Result<i64, StoreError>;
    /// Inserts an assistant row; a taken name is a conflict.
    async fn insert_assistant_row(
        &mut self,
        name: &str,
        tier: Tier,
        actor: &str,
        at_ms: i64,
    ) -> Result<i64, StoreError>;
}

impl_for_connections!(AccessStatements {
    async fn bump_revision(&mut self, store: &Store) -> Result<(), StoreError> {
        sqlx::query("UPDATE access_revision SET revision = revision + 1 WHERE id = 1")
            .execute(&mut *self)
            .await?;
        self.announce(store, &StoreChange::Access).await?;
        Ok(())
    }

    async fn find_assistant(&mut self, name: &str) -> Result<Option<(i64, Tier)>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, tier FROM assistants WHERE name = $1")
                .bind(name)
                .fetch_optional(self)
                .await?;
        row.map(|(id, tier)| Ok((id, parse_tier(name, &tier)?)))
            .transpose()
    }

    async fn insert_key(
        &mut self,
        assistant_id: i64,
        prefix: &str,
        digest: &str,
        actor: &str,
        at_ms: i64,
    ) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_keys (assistant_id, prefix, digest, created_at_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(assistant_id)
        .bind(prefix)
        .bind(digest)
        .bind(at_ms)
        .bind(actor)
        .fetch_one(self)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("this key is already registered: use another key".into())
            } else {
                StoreError::Query(e)
            }
        })?;
        Ok(id)
    }

    async fn insert_assistant_row(
        &mut self,
        name: &str,
        tier: Tier,
        actor: &str,
        at_ms: i64,
    ) -> Result<i64, StoreError> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO assistants (name, tier, created_at_ms, created_by) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(tier.as_str())
        .bind(at_ms)
        .bind(actor)
        .fetch_one(self)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("assistant {name} already exists"))
            } else {
                StoreError::Query(e)
            }
        })?;
        Ok(id)
    }
});

impl Store {
    /// The current `access_revision`: it moves with every change to access.
    pub async fn access_revision(&self) -> Result<i64, StoreError> {
        let (revision,): (i64,) = on_pool!(self, |pool| sqlx::query_as(
            "SELECT revision FROM access_revision WHERE id = 1"
        )
        .fetch_one(pool)
        .await)?;
        Ok(revision)
    }

    /// Assistants, keys and permissions, read in one transaction so they match the revision.
    pub async fn load_access(&self) -> Result<AccessRecords, StoreError> {
        let (revision, assistant_rows, key_rows, permission_rows) = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.snapshot_reads().await?;
            let (revision,): (i64,) =
                sqlx::query_as("SELECT revision FROM access_revision WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            let assistants: Vec<AssistantRow> = sqlx::query_as(
                "SELECT id, name, tier, created_at_ms, created_by FROM assistants ORDER BY name",
            )
            .fetch_all(&mut *tx)
            .await?;
            let keys: Vec<KeyRow> = sqlx::query_as(
                "SELECT id, assistant_id, prefix, digest, created_at_ms, created_by, \
                 revoked_at_ms, last_used_at_ms FROM api_keys \
                 ORDER BY created_at_ms DESC, id DESC",
            )
            .fetch_all(&mut *tx)
            .await?;
            let permissions: Vec<PermissionRow> = sqlx::query_as(
                "SELECT a.name AS assistant, p.server, p.tool, p.decision, p.updated_at_ms, \
                 p.updated_by FROM permissions p JOIN assistants a ON a.id = p.assistant_id \
                 ORDER BY a.name, p.server, p.tool",
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>((revision, assistants, keys, permissions))
        })?;

        let mut assistants = assistant_rows
            .into_iter()
            .map(|row| {
                Ok(AssistantRecord {
                    tier: parse_tier(&row.name, &row.tier)?,
                    id: row.id,
                    name: row.name,
                    created_at_ms: row.created_at_ms,
                    created_by: row.created_by,
                    keys: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for key in key_rows {
            // Keys arrive newest first, so each assistant's list stays in that order.
            if let Some(owner) = assistants.iter_mut().find(|a| a.id == key.assistant_id) {
                owner.keys.push(ApiKeyRecord {
                    id: key.id,
                    prefix: key.prefix,
                    digest: key.digest,
                    created_at_ms: key.created_at_ms,
                    created_by: key.created_by,
                    revoked_at_ms: key.revoked_at_ms,
                    last_used_at_ms: key.last_used_at_ms,
                });
            }
        }
        let permissions = permission_rows
            .into_iter()
            .map(|row| {
                Ok(PermissionRecord {
                    decision: parse_decision(&row.decision)?,
                    assistant: row.assistant,
                    server: row.server,
                    tool: row.tool,
                    updated_at_ms: row.updated_at_ms,
                    updated_by: row.updated_by,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AccessRecords {
            revision,
            assistants,
            permissions,
        })
    }

    /// Creates an assistant with its first key; a taken name is a conflict. Returns the
    /// key's id.
    pub async fn insert_assistant(
        &self,
        name: &str,
        tier: Tier,
        key_prefix: &str,
        key_digest: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.bump_revision(self).await?;
            let id = tx.insert_assistant_row(name, tier, actor, now).await?;
            let key_id = tx
                .insert_key(id, key_prefix, key_digest, actor, now)
                .await?;
            let action = AdminAction::new(actor, "assistant.add", name)
                .after(format!("{tier}, key {key_id} {key_prefix}"));
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(key_id)
        })
    }

    /// Changes an assistant's tier; returns the tier before.
    pub async fn update_assistant_tier(
        &self,
        name: &str,
        tier: Tier,
        actor: &str,
    ) -> Result<Tier, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.bump_revision(self).await?;
            let (id, before) = tx
                .find_assistant(name)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("assistant {name}")))?;
            sqlx::query("UPDATE assistants SET tier = $1 WHERE id = $2")
                .bind(tier.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let action = AdminAction::new(actor, "assistant.set_tier", name)
                .before(before.as_str())
                .after(tier.as_str());
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(before)
        })
    }

    /// Adds a key to an assistant; returns its id.
    pub async fn insert_api_key(
        &self,
        assistant: &str,
        key_prefix: &str,
        key_digest: &str,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.bump_revision(self).await?;
            let (id, _) = tx
                .find_assistant(assistant)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("assistant {assistant}")))?;
            let key_id = tx
                .insert_key(id, key_prefix, key_digest, actor, now)
                .await?;
            let action = AdminAction::new(actor, "key.issue", assistant)
                .after(format!("key {key_id} {key_prefix}"));
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(key_id)
        })
    }

    /// Revokes one of an assistant's keys. A key of another assistant is not found; a key
    /// already revoked is a conflict.
    pub async fn revoke_api_key(
        &self,
        assistant: &str,
        key_id: i64,
        actor: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.bump_revision(self).await?;
            let key: Option<(String, Option<i64>)> = sqlx::query_as(
                "SELECT k.prefix, k.revoked_at_ms FROM api_keys k \
                 JOIN assistants a ON a.id = k.assistant_id WHERE a.name = $1 AND k.id = $2",
            )
            .bind(assistant)
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (prefix, revoked_at_ms) = key.ok_or_else(|| {
                StoreError::NotFound(format!("key {key_id} of assistant {assistant}"))
            })?;
            if revoked_at_ms.is_some() {
                return Err(StoreError::Conflict(format!(
                    "key {key_id} ({prefix}) of {assistant} is already revoked"
                )));
            }
            sqlx::query("UPDATE api_keys SET revoked_at_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(key_id)
                .execute(&mut *tx)
                .await?;
            let action = AdminAction::new(actor, "key.revoke", assistant)
                .before(format!("key {key_id} {prefix} active"))
                .after(format!("key {key_id} {prefix} revoked"));
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Sets (`Some`) or removes (`None`) an assistant's explicit entry for a server's tool,
    /// or for every tool with `tool = "*"`. A server-wide decision also removes that
    /// server's per-tool entries of the assistant, so that a bulk grant or revoke is uniform.
    pub async fn set_permission(
        &self,
        assistant: &str,
        server: &str,
        tool: &str,
        decision: Option<Decision>,
        actor: &str,
    ) -> Result<PermissionChange, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.bump_revision(self).await?;
            let (id, _) = tx
                .find_assistant(assistant)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("assistant {assistant}")))?;
            let before: Option<(String,)> = sqlx::query_as(
                "SELECT decision FROM permissions \
                 WHERE assistant_id = $1 AND server = $2 AND tool = $3",
            )
            .bind(id)
            .bind(server)
            .bind(tool)
            .fetch_optional(&mut *tx)
            .await?;
            let before = before.map(|(d,)| parse_decision(&d)).transpose()?;
            let mut replaced_tool_entries = 0;
            match decision {
                Some(decision) => {
                    sqlx::query(
                        "INSERT INTO permissions \
                         (assistant_id, server, tool, decision, updated_at_ms, updated_by) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (assistant_id, server, tool) DO UPDATE SET \
                         decision = excluded.decision, updated_at_ms = excluded.updated_at_ms, \
                         updated_by = excluded.updated_by",
                    )
                    .bind(id)
                    .bind(server)
                    .bind(tool)
                    .bind(decision.as_str())
                    .bind(now)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
                    if tool == "*" {
                        replaced_tool_entries = sqlx::query(
                            "DELETE FROM permissions \
                             WHERE assistant_id = $1 AND server = $2 AND tool <> '*'",
                        )
                        .bind(id)
                        .bind(server)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                }
                None => {
                    sqlx::query(
                        "DELETE FROM permissions \
                         WHERE assistant_id = $1 AND server = $2 AND tool = $3",
                    )
                    .bind(id)
                    .bind(server)
                    .bind(tool)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let mut after = describe_entry(decision).to_string();
            if replaced_tool_entries > 0 {
                after.push_str(&format!(
                    " (replacing {replaced_tool_entries} per-tool entries)"
                ));
            }
            let action = AdminAction::new(
                actor,
                "permission.set",
                &format!("{assistant}: {server}__{tool}"),
            )
            .before(describe_entry(before))
            .after(after);
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(PermissionChange {
                before,
                after: decision,
                replaced_tool_entries,
            })
        })
    }

    /// Brings one assistant of the fleet file into the store: creates it if missing, sets
    /// its tier if it differs, registers its key if unknown. A key registered to another
    /// assistant is a conflict. Writes nothing (not even a revision bump) when all is in
    /// place, so restarts are idempotent.
    pub async fn import_declared_assistant(
        &self,
        declared: &DeclaredAssistant<'_>,
    ) -> Result<DeclaredImport, StoreError> {
        let now = now_ms();
        let DeclaredAssistant {
            name,
            tier,
            key_prefix,
            key_digest,
        } = *declared;
        let actor = FLEET_FILE_ACTOR;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Taken first for the write lock; rolled back with the rest if nothing changes.
            tx.bump_revision(self).await?;
            let owner: Option<(String, Option<i64>)> = sqlx::query_as(
                "SELECT a.name, k.revoked_at_ms FROM api_keys k \
                 JOIN assistants a ON a.id = k.assistant_id WHERE k.digest = $1",
            )
            .bind(key_digest)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((owner, _)) = &owner
                && owner != name
            {
                return Err(StoreError::Conflict(format!(
                    "the fleet file's key for assistant {name} is already the key of \
                     assistant {owner}: give {name} a key of its own"
                )));
            }
            let mut import = DeclaredImport {
                key_revoked: owner.as_ref().is_some_and(|(_, revoked)| revoked.is_some()),
                ..DeclaredImport::default()
            };
            let id = match tx.find_assistant(name).await? {
                None => {
                    let id = tx.insert_assistant_row(name, tier, actor, now).await?;
                    let action =
                        AdminAction::new(actor, "assistant.add", name).after(tier.as_str());
                    tx.insert_audit(&action, now).await?;
                    import.created = true;
                    id
                }
                Some((id, stored)) => {
                    if stored != tier {
                        sqlx::query("UPDATE assistants SET tier = $1 WHERE id = $2")
                            .bind(tier.as_str())
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        let action = AdminAction::new(actor, "assistant.set_tier", name)
                            .before(stored.as_str())
                            .after(tier.as_str());
                        tx.insert_audit(&action, now).await?;
                        import.tier_before = Some(stored);
                    }
                    id
                }
            };
            if owner.is_none() {
                let key_id = tx
                    .insert_key(id, key_prefix, key_digest, actor, now)
                    .await?;
                let action = AdminAction::new(actor, "key.issue", name)
                    .after(format!("key {key_id} {key_prefix}"));
                tx.insert_audit(&action, now).await?;
                import.key_registered = true;
            }
            if import.changed() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(import)
        })
    }

    /// Records when keys last authenticated, as `(key id, Unix ms)`; a stored time that is
    /// already later is kept (another replica may have flushed a newer one).
    pub async fn record_key_use(&self, uses: &[(i64, i64)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // In key order: replicas updating the same keys lock their rows in the same order,
        // so they wait for each other instead of deadlocking.
        let mut uses = uses.to_vec();
        uses.sort_unstable();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (key_id, at_ms) in &uses {
                sqlx::query(
                    "UPDATE api_keys SET last_used_at_ms = $1 WHERE id = $2 \
                     AND (last_used_at_ms IS NULL OR last_used_at_ms < $1)",
                )
                .bind(at_ms)
                .bind(key_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;

    async fn audit_actions(store: &Store) -> Vec<(String, String, Option<String>)> {
        let mut rows = store.recent_admin_audit(100).await.unwrap();
        rows.reverse();
        rows.into_iter()
            .map(|a| (a.action, a.target, a.after))
            .collect()
    }

    each_backend! {
        async fn assistants_and_keys_round_trip_newest_key_first(store) {
            assert_eq!(store.access_revision().await.unwrap(), 0);
            let first = store
                .insert_assistant("claude", Tier::Developer, "fdk_aaaaaa", "d1", "olga")
                .await
                .unwrap();
            store
                .insert_assistant("batch", Tier::Viewer, "fdk_bbbbbb", "d2", "cli")
                .await
                .unwrap();
            let second = store
                .insert_api_key("claude", "fdk_cccccc", "d3", "olga")
                .await
                .unwrap();
            let records = store.load_access().await.unwrap();
            assert_eq!(records.revision, 3);
            assert_eq!(store.access_revision().await.unwrap(), 3);
            let names: Vec<_> = records.assistants.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(names, ["batch", "claude"]);
            let claude = &records.assistants[1];
            assert_eq!(claude.tier, Tier::Developer);
            assert_eq!(claude.created_by, "olga");
            let keys: Vec<_> = claude
                .keys
                .iter()
                .map(|k| (k.id, k.digest.as_str()))
                .collect();
            assert_eq!(keys, [(second, "d3"), (first, "d1")]);
            assert!(claude.keys.iter().all(|k| k.revoked_at_ms.is_none()));
        }
    }

    each_backend! {
        async fn duplicates_are_conflicts_that_change_nothing(store) {
            store
                .insert_assistant("claude", Tier::Admin, "p", "d1", "olga")
                .await
                .unwrap();
            let err = store
                .insert_assistant("claude", Tier::Viewer, "p", "d2", "olga")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("already exists"), "{err}");
            let err = store
                .insert_api_key("claude", "p", "d1", "olga")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
            let err = store
                .insert_api_key("nobody", "p", "d9", "olga")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err}");
            // Failed transactions bumped nothing and audited nothing.
            assert_eq!(store.access_revision().await.unwrap(), 1);
            assert_eq!(audit_actions(&store).await.len(), 1);
            let records = store.load_access().await.unwrap();
            assert_eq!(records.assistants[0].keys.len(), 1);
        }
    }

    each_backend! {
        async fn keys_are_revoked_once_and_only_by_their_assistant(store) {
            let key = store
                .insert_assistant("claude", Tier::Admin, "fdk_aaaaaa", "d1", "olga")
                .await
                .unwrap();
            store
                .insert_assistant("batch", Tier::Viewer, "fdk_bbbbbb", "d2", "olga")
                .await
                .unwrap();
            let err = store
                .revoke_api_key("batch", key, "olga")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err}");
            store.revoke_api_key("claude", key, "olga").await.unwrap();
            let err = store
                .revoke_api_key("claude", key, "olga")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("already revoked"), "{err}");
            let records = store.load_access().await.unwrap();
            let claude = records
                .assistants
                .iter()
                .find(|a| a.name == "claude")
                .unwrap();
            assert!(claude.keys[0].revoked_at_ms.is_some());
            assert_eq!(
                audit_actions(&store).await.last().unwrap(),
                &(
                    "key.revoke".to_string(),
                    "claude".to_string(),
                    Some(format!("key {key} fdk_aaaaaa revoked"))
                )
            );
        }
    }

    each_backend! {
        async fn a_server_wide_decision_replaces_per_tool_entries(store) {
            store
                .insert_assistant("claude", Tier::Viewer, "p", "d", "olga")
                .await
                .unwrap();
            let set = |server: &'static str, tool: &'static str, decision| {
                let store = store.clone();
                async move {
                    store
                        .set_permission("claude", server, tool, decision, "olga")
                        .await
                        .unwrap()
                }
            };
            set("files", "read", Some(Decision::Allow)).await;
            set("files", "write", Some(Decision::Allow)).await;
            set("search", "lookup", Some(Decision::Deny)).await;
            let change = set("files", "write", Some(Decision::Deny)).await;
            assert_eq!(
                change,
                PermissionChange {
                    before: Some(Decision::Allow),
                    after: Some(Decision::Deny),
                    replaced_tool_entries: 0
                }
            );
            let change = set("files", "*", Some(Decision::Deny)).await;
            assert_eq!(change.replaced_tool_entries, 2);
            let entries = |records: AccessRecords| -> Vec<(String, String, Decision)> {
                records
                    .permissions
                    .into_iter()
                    .map(|p| (p.server, p.tool, p.decision))
                    .collect()
            };
            assert_eq!(
                entries(store.load_access().await.unwrap()),
                [
                    ("files".into(), "*".into(), Decision::Deny),
                    ("search".into(), "lookup".into(), Decision::Deny),
                ]
            );
            let change = set("search", "lookup", None).await;
            assert_eq!(change.before, Some(Decision::Deny));
            assert_eq!(change.after, None);
            assert_eq!(
                entries(store.load_access().await.unwrap()),
                [("files".into(), "*".into(), Decision::Deny)]
            );
            let audit = audit_actions(&store).await;
            assert_eq!(
                audit[5],
                (
                    "permission.set".into(),
                    "claude: files__*".into(),
                    Some("deny (replacing 2 per-tool entries)".into())
                )
            );
            assert_eq!(audit[6].2.as_deref(), Some("tier default"));
            let err = store
                .set_permission("nobody", "files", "*", None, "olga")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        }
    }

    each_backend! {
        async fn importing_a_declared_assistant_is_idempotent(store) {
            let declared = DeclaredAssistant {
                name: "bench",
                tier: Tier::Developer,
                key_prefix: "fdk_dddddd",
                key_digest: "digest-bench",
            };
            let first = store.import_declared_assistant(&declared).await.unwrap();
            assert_eq!(
                first,
                DeclaredImport {
                    created: true,
                    tier_before: None,
                    key_registered: true,
                    key_revoked: false
                }
            );
            let revision = store.access_revision().await.unwrap();
            let again = store.import_declared_assistant(&declared).await.unwrap();
            assert!(!again.changed(), "{again:?}");
            assert_eq!(store.access_revision().await.unwrap(), revision);

            let promoted = DeclaredAssistant {
                tier: Tier::Admin,
                ..declared
            };
            let changed = store.import_declared_assistant(&promoted).await.unwrap();
            assert_eq!(changed.tier_before, Some(Tier::Developer));
            assert!(!changed.key_registered && !changed.created);

            let thief = DeclaredAssistant {
                name: "thief",
                ..declared
            };
            let err = store.import_declared_assistant(&thief).await.unwrap_err();
            assert!(err.to_string().contains("assistant bench"), "{err}");
            let names: Vec<_> = store
                .load_access()
                .await
                .unwrap()
                .assistants
                .into_iter()
                .map(|a| a.name)
                .collect();
            assert_eq!(names, ["bench"], "the conflict created nothing");
            let audit = audit_actions(&store).await;
            let actions: Vec<_> = audit.iter().map(|a| a.0.as_str()).collect();
            assert_eq!(
                actions,
                ["assistant.add", "key.issue", "assistant.set_tier"]
            );
        }
    }

    each_backend! {
        async fn key_use_keeps_the_latest_time(store) {
            let key = store
                .insert_assistant("claude", Tier::Admin, "p", "d", "olga")
                .await
                .unwrap();
            let revision = store.access_revision().await.unwrap();
            let last_used = |store: Store| async move {
                store.load_access().await.unwrap().assistants[0].keys[0].last_used_at_ms
            };
            store.record_key_use(&[(key, 2_000)]).await.unwrap();
            assert_eq!(last_used(store.clone()).await, Some(2_000));
            store.record_key_use(&[(key, 1_000)]).await.unwrap();
            assert_eq!(last_used(store.clone()).await, Some(2_000));
            store
                .record_key_use(&[(key, 3_000), (999, 1)])
                .await
                .unwrap();
            assert_eq!(last_used(store.clone()).await, Some(3_000));
            // Use is not an access change: nobody needs to reload for it.
            assert_eq!(store.access_revision().await.unwrap(), revision);
        }
    }
}
