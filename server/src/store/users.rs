//! Dashboard logins. Every change writes its admin-audit row in the same transaction.

use super::admin_audit::{AdminAction, InsertAudit};
use super::{Store, StoreError, now_ms, on_pool};
use app::wire::Role;

/// A login as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Row id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last role or password change (Unix ms).
    pub updated_at_ms: i64,
}

/// A role change as it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// The role before.
    pub before: Role,
    /// The role after.
    pub after: Role,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    password_hash: String,
    role: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let role = row
            .role
            .parse()
            .map_err(|e| StoreError::Conflict(format!("user {}: {e}", row.username)))?;
        Ok(UserRecord {
            id: row.id,
            username: row.username,
            password_hash: row.password_hash,
            role,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        })
    }
}

const COLUMNS: &str = "id, username, password_hash, role, created_at_ms, updated_at_ms";

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

impl Store {
    /// Every login, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> = on_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter().map(UserRecord::try_from).collect()
    }

    /// The login with this name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(username)
            .fetch_optional(pool)
            .await)?;
        row.map(UserRecord::try_from).transpose()
    }

    /// The login with this id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = on_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(UserRecord::try_from).transpose()
    }

    /// How many logins each role has (every role listed, zeros included).
    pub async fn count_users_by_role(&self) -> Result<Vec<(Role, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT role, COUNT(*) FROM users GROUP BY role"
        )
        .fetch_all(pool)
        .await)?;
        Ok(Role::ALL
            .into_iter()
            .map(|role| {
                let count = rows
                    .iter()
                    .find(|(name, _)| name == role.as_str())
                    .map_or(0, |r| r.1);
                (role, count.max(0) as u64)
            })
            .collect())
    }

    /// Creates a login; a taken name is a conflict.
    pub async fn insert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        actor: &str,
    ) -> Result<UserRecord, StoreError> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO users (username, password_hash, role, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $4) RETURNING {COLUMNS}"
        );
        let row: UserRow = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query_as(&sql)
                .bind(username)
                .bind(password_hash)
                .bind(role.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("user {username} already exists"))
                    } else {
                        StoreError::Query(e)
                    }
                })?;
            let action = AdminAction::new(actor, "user.add", username).after(role.as_str());
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(row)
        })?;
        row.try_into()
    }

    /// Changes a login's role. Demoting the last admin is refused, atomically.
    pub async fn update_role(
        &self,
        username: &str,
        role: Role,
        actor: &str,
    ) -> Result<RoleChange, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Lock the admins first (SQLite: its write lock; PostgreSQL: their rows), so that
            // two replicas demoting two different admins run one after the other and the
            // second one's count sees the first: the last admin can never be demoted.
            sqlx::query("UPDATE users SET updated_at_ms = updated_at_ms WHERE role = 'admin'")
                .execute(&mut *tx)
                .await?;
            let before: Option<(String,)> =
                sqlx::query_as("SELECT role FROM users WHERE username = $1")
                    .bind(username)
                    .fetch_optional(&mut *tx)
                    .await?;
            let before: Role = before
                .ok_or_else(|| StoreError::NotFound(format!("user {username}")))?
                .0
                .parse()
                .map_err(|e| StoreError::Conflict(format!("user {username}: {e}")))?;
            let updated = sqlx::query(
                "UPDATE users SET role = $1, updated_at_ms = $2 WHERE username = $3 \
                 AND NOT (role = 'admin' AND $1 <> 'admin' \
                          AND (SELECT COUNT(*) FROM users WHERE role = 'admin') <= 1)",
            )
            .bind(role.as_str())
            .bind(now)
            .bind(username)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                // Roll back now: a transaction merely dropped is rolled back later, when its
                // connection is next used, and meanwhile holds the write lock that makes the
                // next writer fail with "database is locked".
                tx.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "{username} is the last admin: make another user admin first"
                )));
            }
            let action = AdminAction::new(actor, "user.set_role", username)
                .before(before.as_str())
                .after(role.as_str());
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(RoleChange {
                before,
                after: role,
            })
        })
    }

    /// Replaces a login's password hash.
    pub async fn update_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE users SET password_hash = $1, updated_at_ms = $2 WHERE username = $3",
            )
            .bind(password_hash)
            .bind(now)
            .bind(username)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("user {username}")));
            }
            // The hash itself never reaches the audit log.
            let action = AdminAction::new(actor, "user.reset_password", username);
            tx.insert_audit(&action, now).await?;
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
        async fn users_are_created_found_and_listed(store) {
            let alice = store
                .insert_user("alice", "hash-a", Role::Admin, "test")
                .await
                .unwrap();
            store
                .insert_user("bob", "hash-b", Role::Viewer, "test")
                .await
                .unwrap();
            assert_eq!(
                store.user_by_name("alice").await.unwrap(),
                Some(alice.clone())
            );
            assert_eq!(store.user_by_id(alice.id).await.unwrap(), Some(alice));
            assert_eq!(store.user_by_name("carol").await.unwrap(), None);
            let names: Vec<_> = store
                .list_users()
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.username)
                .collect();
            assert_eq!(names, ["alice", "bob"]);
            assert_eq!(
                store.count_users_by_role().await.unwrap(),
                [(Role::Viewer, 1), (Role::Operator, 0), (Role::Admin, 1)]
            );
        }
    }

    each_backend! {
        async fn a_taken_name_is_a_conflict_and_changes_nothing(store) {
            store
                .insert_user("alice", "h1", Role::Admin, "test")
                .await
                .unwrap();
            let err = store
                .insert_user("alice", "h2", Role::Viewer, "test")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
            assert_eq!(
                store
                    .user_by_name("alice")
                    .await
                    .unwrap()
                    .unwrap()
                    .password_hash,
                "h1"
            );
            assert_eq!(store.recent_admin_audit(10).await.unwrap().len(), 1);
        }
    }

    each_backend! {
        async fn the_last_admin_cannot_be_demoted(store) {
            store
                .insert_user("alice", "h", Role::Admin, "test")
                .await
                .unwrap();
            let err = store
                .update_role("alice", Role::Operator, "alice")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("last admin"), "{err}");
            store
                .insert_user("bob", "h", Role::Admin, "test")
                .await
                .unwrap();
            let change = store
                .update_role("alice", Role::Operator, "bob")
                .await
                .unwrap();
            assert_eq!(
                change,
                RoleChange {
                    before: Role::Admin,
                    after: Role::Operator
                }
            );
            let err = store
                .update_role("bob", Role::Viewer, "bob")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("last admin"), "{err}");
            // Re-affirming the last admin's role is not a demotion.
            store.update_role("bob", Role::Admin, "bob").await.unwrap();
        }
    }

    each_backend! {
        async fn changes_are_audited_with_before_and_after(store) {
            store
                .insert_user("alice", "h", Role::Admin, "cli")
                .await
                .unwrap();
            store
                .insert_user("bob", "h", Role::Viewer, "alice")
                .await
                .unwrap();
            store
                .update_role("bob", Role::Operator, "alice")
                .await
                .unwrap();
            store.update_password("bob", "h2", "alice").await.unwrap();
            let err = store
                .update_password("nobody", "h", "alice")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)));

            let audit = store.recent_admin_audit(10).await.unwrap();
            let summary: Vec<_> = audit
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
                summary,
                [
                    ("alice", "user.reset_password", "bob", None, None),
                    (
                        "alice",
                        "user.set_role",
                        "bob",
                        Some("viewer"),
                        Some("operator")
                    ),
                    ("alice", "user.add", "bob", None, Some("viewer")),
                    ("cli", "user.add", "alice", None, Some("admin")),
                ]
            );
        }
    }
}
