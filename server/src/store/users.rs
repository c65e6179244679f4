//! Dashboard logins. Every change writes its admin-audit row in the same transaction.
//!
//! Changes that must end a user's sessions (password, role, disabling, "log out
//! everywhere") add one to the user's `session_epoch` in the same statement; sessions
//! stamped with an older epoch are refused from then on, on every replica.
//!
//! The last enabled admin is protected: demoting, disabling or deleting them is refused.
//! Each such change first locks every admin row (PostgreSQL; on SQLite the transaction's
//! write lock does the same), so that two replicas changing two different admins at once
//! run one after the other and the second one counts what the first one left.

use super::admin_audit::{AdminAction, InsertAudit};
use super::{Store, StoreError, impl_for_connections, now_ms, on_pool};
use app::control::SessionStamp;
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
    /// Last change of role, password or state (Unix ms).
    pub updated_at_ms: i64,
    /// Sessions stamped with another epoch are no longer valid.
    pub session_epoch: i64,
    /// When an admin disabled the login (`None`: enabled).
    pub disabled_at_ms: Option<i64>,
}

impl UserRecord {
    /// Whether the login may be used (not disabled).
    pub fn is_enabled(&self) -> bool {
        self.disabled_at_ms.is_none()
    }

    /// The stamp a session of this user must carry now.
    pub fn session_stamp(&self) -> SessionStamp {
        SessionStamp {
            user_id: self.id,
            epoch: self.session_epoch,
        }
    }
}

/// A role change as it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// The role before.
    pub before: Role,
    /// The role after.
    pub after: Role,
    /// The user's session stamp after the change (a new epoch when the role changed).
    pub stamp: SessionStamp,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    password_hash: String,
    role: String,
    created_at_ms: i64,
    updated_at_ms: i64,
    session_epoch: i64,
    disabled_at_ms: Option<i64>,
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
            session_epoch: row.session_epoch,
            disabled_at_ms: row.disabled_at_ms,
        })
    }
}

const COLUMNS: &str = "id, username, password_hash, role, created_at_ms, updated_at_ms, \
                       session_epoch, disabled_at_ms";

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// The refusal that protects the last enabled admin.
fn last_admin(username: &str, doing: &str) -> StoreError {
    StoreError::Conflict(format!(
        "{username} is the last admin and cannot be {doing}: make another user admin first \
         (disabled admins do not count)"
    ))
}

/// Reads and locks inside a user change's transaction.
trait UserRows {
    /// Locks every admin row until the transaction ends (see the module doc).
    async fn lock_admins(&mut self) -> Result<(), StoreError>;
    /// The user named `username`, read after [`UserRows::lock_admins`].
    async fn user_named(&mut self, username: &str) -> Result<UserRecord, StoreError>;
    /// How many admins are enabled.
    async fn enabled_admins(&mut self) -> Result<i64, StoreError>;
}

impl_for_connections!(UserRows {
    async fn lock_admins(&mut self) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET updated_at_ms = updated_at_ms WHERE role = 'admin'")
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn user_named(&mut self, username: &str) -> Result<UserRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(username)
            .fetch_optional(&mut *self)
            .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("user {username}")))?
            .try_into()
    }

    async fn enabled_admins(&mut self) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at_ms IS NULL",
        )
        .fetch_one(&mut *self)
        .await?;
        Ok(count)
    }
});

/// Whether removing `user` from the enabled admins would leave none.
async fn is_last_enabled_admin(
    conn: &mut impl UserRows,
    user: &UserRecord,
) -> Result<bool, StoreError> {
    Ok(user.role == Role::Admin && user.is_enabled() && conn.enabled_admins().await? <= 1)
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

    /// Changes a login's role; a new role ends the user's sessions. Demoting the last
    /// enabled admin is refused, atomically.
    pub async fn update_role(
        &self,
        username: &str,
        role: Role,
        actor: &str,
    ) -> Result<RoleChange, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.lock_admins().await?;
            let before = tx.user_named(username).await?;
            if role != Role::Admin && is_last_enabled_admin(&mut *tx, &before).await? {
                // Roll back now: a transaction merely dropped is rolled back later, when its
                // connection is next used, and meanwhile holds the write lock that makes the
                // next writer fail with "database is locked".
                tx.rollback().await?;
                return Err(last_admin(username, "demoted"));
            }
            // Relative to the row as it is when updated: a concurrent change of the same
            // user adds its own step rather than being overwritten.
            let (epoch,): (i64,) = sqlx::query_as(
                "UPDATE users SET role = $1, updated_at_ms = $2, \
                 session_epoch = session_epoch + CASE WHEN role = $1 THEN 0 ELSE 1 END \
                 WHERE id = $3 RETURNING session_epoch",
            )
            .bind(role.as_str())
            .bind(now)
            .bind(before.id)
            .fetch_one(&mut *tx)
            .await?;
            let action = AdminAction::new(actor, "user.set_role", username)
                .before(before.role.as_str())
                .after(role.as_str());
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(RoleChange {
                before: before.role,
                after: role,
                stamp: SessionStamp {
                    user_id: before.id,
                    epoch,
                },
            })
        })
    }

    /// Replaces a login's password hash (an admin's reset); ends the user's sessions.
    pub async fn update_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<SessionStamp, StoreError> {
        // The hash itself never reaches the audit log.
        let action = AdminAction::new(actor, "user.reset_password", username);
        self.replace_password(username, None, password_hash, &action)
            .await
    }

    /// Replaces the user's own password, provided the stored hash is still `verified_hash`
    /// (the one the current password was checked against; a concurrent change is a
    /// conflict); ends the user's sessions.
    pub async fn change_own_password(
        &self,
        username: &str,
        verified_hash: &str,
        password_hash: &str,
    ) -> Result<SessionStamp, StoreError> {
        let action = AdminAction::new(username, "user.change_password", username);
        self.replace_password(username, Some(verified_hash), password_hash, &action)
            .await
    }

    async fn replace_password(
        &self,
        username: &str,
        expected_hash: Option<&str>,
        password_hash: &str,
        action: &AdminAction,
    ) -> Result<SessionStamp, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let stamp: Option<(i64, i64)> = sqlx::query_as(
                "UPDATE users SET password_hash = $1, session_epoch = session_epoch + 1, \
                 updated_at_ms = $2 WHERE username = $3 AND ($4 IS NULL OR password_hash = $4) \
                 RETURNING id, session_epoch",
            )
            .bind(password_hash)
            .bind(now)
            .bind(username)
            .bind(expected_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user_id, epoch)) = stamp else {
                tx.rollback().await?;
                return Err(match expected_hash {
                    Some(_) => StoreError::Conflict(format!(
                        "the password of {username} changed meanwhile: try again"
                    )),
                    None => StoreError::NotFound(format!("user {username}")),
                });
            };
            tx.insert_audit(action, now).await?;
            tx.commit().await?;
            Ok(SessionStamp { user_id, epoch })
        })
    }

    /// Disables a login (its sessions end, it cannot log in) or enables it again; `false`
    /// when it already was so (nothing changes, nothing is audited). Disabling the last
    /// enabled admin is refused, atomically.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.lock_admins().await?;
            let user = tx.user_named(username).await?;
            if user.is_enabled() != disabled {
                tx.rollback().await?;
                return Ok(false);
            }
            if disabled && is_last_enabled_admin(&mut *tx, &user).await? {
                tx.rollback().await?;
                return Err(last_admin(username, "disabled"));
            }
            let (disabled_at, epoch_step, verb) = if disabled {
                (Some(now), 1_i64, "user.disable")
            } else {
                (None, 0, "user.enable")
            };
            sqlx::query(
                "UPDATE users SET disabled_at_ms = $1, session_epoch = session_epoch + $2, \
                 updated_at_ms = $3 WHERE id = $4",
            )
            .bind(disabled_at)
            .bind(epoch_step)
            .bind(now)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
            let state = |off: bool| if off { "disabled" } else { "enabled" };
            let action = AdminAction::new(actor, verb, username)
                .before(state(!disabled))
                .after(state(disabled));
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Deletes a login (its sessions end with it). Deleting the last enabled admin is
    /// refused, atomically.
    pub async fn delete_user(&self, username: &str, actor: &str) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.lock_admins().await?;
            let user = tx.user_named(username).await?;
            if is_last_enabled_admin(&mut *tx, &user).await? {
                tx.rollback().await?;
                return Err(last_admin(username, "deleted"));
            }
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
            let action =
                AdminAction::new(actor, "user.delete", username).before(user.role.as_str());
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Ends every session of a login ("log out everywhere").
    pub async fn end_user_sessions(
        &self,
        username: &str,
        actor: &str,
    ) -> Result<SessionStamp, StoreError> {
        let now = now_ms();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let stamp: Option<(i64, i64)> = sqlx::query_as(
                "UPDATE users SET session_epoch = session_epoch + 1 WHERE username = $1 \
                 RETURNING id, session_epoch",
            )
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user_id, epoch)) = stamp else {
                tx.rollback().await?;
                return Err(StoreError::NotFound(format!("user {username}")));
            };
            let action = AdminAction::new(actor, "user.logout_everywhere", username);
            tx.insert_audit(&action, now).await?;
            tx.commit().await?;
            Ok(SessionStamp { user_id, epoch })
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
            assert_eq!((change.before, change.after), (Role::Admin, Role::Operator));
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

    each_backend! {
        async fn changes_that_end_sessions_advance_the_epoch_and_others_do_not(store) {
            let alice = store
                .insert_user("alice", "h", Role::Viewer, "test")
                .await
                .unwrap();
            assert_eq!(alice.session_stamp(), SessionStamp { user_id: alice.id, epoch: 0 });
            let epoch = |store: Store| async move {
                store.user_by_name("alice").await.unwrap().unwrap().session_epoch
            };

            let reset = store.update_password("alice", "h2", "admin").await.unwrap();
            assert_eq!(reset, SessionStamp { user_id: alice.id, epoch: 1 });
            let promoted = store.update_role("alice", Role::Operator, "admin").await.unwrap();
            assert_eq!(promoted.stamp.epoch, 2);
            // The same role again is no change: the sessions live on.
            let same = store.update_role("alice", Role::Operator, "admin").await.unwrap();
            assert_eq!(same.stamp.epoch, 2);
            let everywhere = store.end_user_sessions("alice", "admin").await.unwrap();
            assert_eq!(everywhere.epoch, 3);
            assert!(store.set_user_disabled("alice", true, "admin").await.unwrap());
            assert_eq!(epoch(store.clone()).await, 4);
            // Enabling ends nothing (there is nothing left to end).
            assert!(store.set_user_disabled("alice", false, "admin").await.unwrap());
            assert_eq!(epoch(store.clone()).await, 4);
            let own = store.change_own_password("alice", "h2", "h3").await.unwrap();
            assert_eq!(own.epoch, 5);
            assert_eq!(store.user_by_name("alice").await.unwrap().unwrap().password_hash, "h3");
        }
    }

    each_backend! {
        async fn an_own_password_change_needs_the_hash_that_was_verified(store) {
            store.insert_user("alice", "h1", Role::Viewer, "test").await.unwrap();
            // Another change came between verifying the current password and writing.
            store.update_password("alice", "h2", "admin").await.unwrap();
            let err = store.change_own_password("alice", "h1", "h3").await.unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
            let alice = store.user_by_name("alice").await.unwrap().unwrap();
            assert_eq!((alice.password_hash.as_str(), alice.session_epoch), ("h2", 1));
            let err = store.change_own_password("nobody", "h", "h").await.unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        }
    }

    each_backend! {
        async fn disabling_and_enabling_are_audited_once_and_idempotent(store) {
            store.insert_user("root", "h", Role::Admin, "test").await.unwrap();
            store.insert_user("bob", "h", Role::Viewer, "test").await.unwrap();
            assert!(store.set_user_disabled("bob", true, "root").await.unwrap());
            let bob = store.user_by_name("bob").await.unwrap().unwrap();
            assert!(!bob.is_enabled());
            assert!(!store.set_user_disabled("bob", true, "root").await.unwrap());
            assert!(store.set_user_disabled("bob", false, "root").await.unwrap());
            assert!(!store.set_user_disabled("bob", false, "root").await.unwrap());
            assert!(store.user_by_name("bob").await.unwrap().unwrap().is_enabled());
            let err = store.set_user_disabled("nobody", true, "root").await.unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err}");
            let audit: Vec<_> = store
                .recent_admin_audit(10)
                .await
                .unwrap()
                .into_iter()
                .map(|a| (a.action, a.before, a.after))
                .collect();
            assert_eq!(
                &audit[..2],
                [
                    ("user.enable".to_string(), Some("disabled".to_string()), Some("enabled".to_string())),
                    ("user.disable".to_string(), Some("enabled".to_string()), Some("disabled".to_string())),
                ]
            );
        }
    }

    each_backend! {
        async fn the_last_enabled_admin_cannot_be_disabled_deleted_or_demoted(store) {
            store.insert_user("alice", "h", Role::Admin, "test").await.unwrap();
            store.insert_user("bob", "h", Role::Admin, "test").await.unwrap();
            store.insert_user("vera", "h", Role::Viewer, "test").await.unwrap();
            assert!(store.set_user_disabled("bob", true, "alice").await.unwrap());
            // Bob is disabled: alice is the last admin who can log in.
            for err in [
                store.set_user_disabled("alice", true, "alice").await.unwrap_err(),
                store.delete_user("alice", "alice").await.unwrap_err(),
                store.update_role("alice", Role::Viewer, "alice").await.unwrap_err(),
            ] {
                assert!(matches!(err, StoreError::Conflict(_)), "{err}");
                assert!(err.to_string().contains("alice is the last admin"), "{err}");
            }
            let alice = store.user_by_name("alice").await.unwrap().unwrap();
            assert!(alice.is_enabled() && alice.role == Role::Admin);
            // A disabled admin and a viewer can go.
            store.delete_user("bob", "alice").await.unwrap();
            store.delete_user("vera", "alice").await.unwrap();
            assert_eq!(store.user_by_name("vera").await.unwrap(), None);
            let err = store.delete_user("vera", "alice").await.unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err}");
            let names: Vec<_> = store.list_users().await.unwrap().into_iter().map(|u| u.username).collect();
            assert_eq!(names, ["alice"]);
            let last = store.recent_admin_audit(1).await.unwrap().remove(0);
            assert_eq!((last.action.as_str(), last.target.as_str(), last.before.as_deref()), ("user.delete", "vera", Some("viewer")));
        }
    }

    each_backend! {
        async fn two_admins_disabling_each_other_at_once_leave_one_enabled(store) {
            store.insert_user("alice", "h", Role::Admin, "test").await.unwrap();
            store.insert_user("bob", "h", Role::Admin, "test").await.unwrap();
            // Two replicas act at the same moment, each on the other admin; the row locks
            // make one wait for the other, which then sees the last admin.
            for _ in 0..5 {
                let (a, b) = tokio::join!(
                    store.set_user_disabled("alice", true, "bob"),
                    store.delete_user("bob", "alice"),
                );
                let enabled_admins = store
                    .list_users()
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|u| u.role == Role::Admin && u.is_enabled())
                    .count();
                assert_eq!(enabled_admins, 1, "{a:?} {b:?}");
                assert!(a.is_err() != b.is_err(), "exactly one refused: {a:?} {b:?}");
                // Put both back for the next round.
                let _ = store.set_user_disabled("alice", false, "test").await;
                if store.user_by_name("bob").await.unwrap().is_none() {
                    store.insert_user("bob", "h", Role::Admin, "test").await.unwrap();
                }
            }
        }
    }
}
