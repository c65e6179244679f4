//! The audit trail of admin actions: who did what to which target, before and after.

use super::changes::Announce;
use super::{Store, StoreChange, StoreError, impl_for_connections, on_pool};

/// One admin action about to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminAction {
    /// Who acted (a user name, or `cli`).
    pub actor: String,
    /// What they did, e.g. `user.set_role`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The state before, if any.
    pub before: Option<String>,
    /// The state after, if any.
    pub after: Option<String>,
}

impl AdminAction {
    /// An action with no recorded state.
    pub fn new(actor: &str, action: &str, target: &str) -> Self {
        AdminAction {
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            before: None,
            after: None,
        }
    }

    /// With the state before.
    pub fn before(mut self, before: impl Into<String>) -> Self {
        self.before = Some(before.into());
        self
    }

    /// With the state after.
    pub fn after(mut self, after: impl Into<String>) -> Self {
        self.after = Some(after.into());
        self
    }
}

/// A recorded admin action.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminAuditRecord {
    /// Row id.
    pub id: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub target: String,
    /// State before.
    pub before: Option<String>,
    /// State after.
    pub after: Option<String>,
}

/// Writing an audit row inside the caller's transaction, so it commits with the change.
pub(super) trait InsertAudit {
    /// Inserts the row of `action` at `at_ms`.
    async fn insert_audit(&mut self, action: &AdminAction, at_ms: i64) -> Result<(), StoreError>;
}

impl_for_connections!(InsertAudit {
    async fn insert_audit(&mut self, action: &AdminAction, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_audit (at_ms, actor, action, target, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(at_ms)
        .bind(&action.actor)
        .bind(&action.action)
        .bind(&action.target)
        .bind(&action.before)
        .bind(&action.after)
        .execute(self)
        .await?;
        Ok(())
    }
});

impl Store {
    /// Records an admin action that changes no stored row (e.g. draining an instance).
    pub async fn record_admin_action(&self, action: &AdminAction) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            conn.insert_audit(action, super::now_ms()).await
        })
    }

    /// Records an admin action and announces its change to the other replicas, together.
    pub async fn record_admin_action_announcing(
        &self,
        action: &AdminAction,
        change: &StoreChange,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.insert_audit(action, super::now_ms()).await?;
            tx.announce(self, change).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Redacts the URLs of `instance.add` rows written before the audit row showed them
    /// redacted (they could hold credentials or a token). Idempotent: a redacted row is left
    /// as it is. Returns how many rows it rewrote.
    pub async fn redact_audited_instance_urls(&self) -> Result<u64, StoreError> {
        let rows: Vec<(i64, String)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, after FROM admin_audit WHERE action = 'instance.add' \
             AND after IS NOT NULL AND after LIKE '%://%'"
        )
        .fetch_all(pool)
        .await)?;
        let mut rewritten = 0;
        for (id, after) in rows {
            let redacted = crate::sanitize::redact_urls_in(&after);
            if redacted == after {
                continue;
            }
            on_pool!(self, |pool| sqlx::query(
                "UPDATE admin_audit SET after = $1 WHERE id = $2"
            )
            .bind(&redacted)
            .bind(id)
            .execute(pool)
            .await
            .map(drop))?;
            rewritten += 1;
        }
        Ok(rewritten)
    }

    /// The newest admin actions, newest first.
    pub async fn recent_admin_audit(
        &self,
        limit: u32,
    ) -> Result<Vec<AdminAuditRecord>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, at_ms, actor, action, target, before, after FROM admin_audit \
             ORDER BY id DESC LIMIT $1"
        )
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;

    each_backend! {
        async fn old_instance_urls_in_audit_rows_are_redacted_once(store) {
            let old = AdminAction::new("olga", "instance.add", "search-9")
                .after("search at http://svc:hunter2@10.0.0.9:7001/mcp?token=abc");
            store.record_admin_action(&old).await.unwrap();
            let clean = AdminAction::new("olga", "instance.add", "search-8")
                .after("search at http://10.0.0.8:7001/mcp");
            store.record_admin_action(&clean).await.unwrap();
            assert_eq!(store.redact_audited_instance_urls().await.unwrap(), 1);
            assert_eq!(store.redact_audited_instance_urls().await.unwrap(), 0, "idempotent");
            let rows = store.recent_admin_audit(10).await.unwrap();
            let afters: Vec<&str> = rows.iter().filter_map(|r| r.after.as_deref()).collect();
            assert!(afters.contains(&"search at http://…@10.0.0.9:7001/mcp?…"), "{afters:?}");
            assert!(afters.contains(&"search at http://10.0.0.8:7001/mcp"), "{afters:?}");
        }
    }
}
