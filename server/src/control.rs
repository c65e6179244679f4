//! The dashboard's `ControlPlane`, implemented over the store and the access module.

use crate::access::{LoginThrottle, UserDirectory, UserError, password};
use crate::store::{Store, StoreError, UserRecord};
use app::control::ControlPlane;
use app::error::AppError;
use app::wire::{AdminActionEntry, IssuedPassword, Role, SessionUser, SystemStatus, UserSummary};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// The control plane of one Fleetdeck replica.
pub struct FleetControl {
    store: Store,
    users: UserDirectory,
    throttle: Arc<LoginThrottle>,
    started: Instant,
}

impl FleetControl {
    /// A control plane over `store`, throttling logins with `throttle`.
    pub fn new(store: Store, throttle: Arc<LoginThrottle>) -> Self {
        FleetControl {
            users: UserDirectory::new(store.clone()),
            store,
            throttle,
            started: Instant::now(),
        }
    }
}

fn session_user(user: UserRecord) -> SessionUser {
    SessionUser {
        id: user.id,
        username: user.username,
        role: user.role,
    }
}

/// Maps a failure to what the browser may see; unexpected ones are logged with detail.
fn app_error(error: UserError) -> AppError {
    match error {
        UserError::InvalidName(_) | UserError::Password(_) => AppError::Invalid(error.to_string()),
        UserError::Store(StoreError::NotFound(what)) => AppError::NotFound(what),
        UserError::Store(StoreError::Conflict(why)) => AppError::Conflict(why),
        other => store_failure(other),
    }
}

fn store_failure(error: impl std::fmt::Display) -> AppError {
    tracing::error!(%error, "control plane operation failed");
    AppError::Internal("the operation failed on the server; see its log".into())
}

#[async_trait::async_trait]
impl ControlPlane for FleetControl {
    async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<SessionUser, AppError> {
        if let Err(wait) = self.throttle.check(username, client) {
            tracing::warn!(username, ?client, "login throttled");
            return Err(AppError::Throttled {
                retry_after_s: wait.as_secs().max(1),
            });
        }
        match self
            .users
            .authenticate(username, password)
            .await
            .map_err(app_error)?
        {
            Some(user) => {
                tracing::info!(username, role = %user.role, ?client, "login");
                Ok(session_user(user))
            }
            None => {
                tracing::warn!(
                    username,
                    ?client,
                    "login refused: unknown user or wrong password"
                );
                Err(AppError::BadCredentials)
            }
        }
    }

    async fn session_user(&self, user_id: i64) -> Result<Option<SessionUser>, AppError> {
        Ok(self
            .store
            .user_by_id(user_id)
            .await
            .map_err(store_failure)?
            .map(session_user))
    }

    async fn system_status(&self) -> Result<SystemStatus, AppError> {
        let database_ok = self.store.ping().await.is_ok();
        let users_by_role = if database_ok {
            self.store
                .count_users_by_role()
                .await
                .map_err(store_failure)?
        } else {
            Vec::new()
        };
        Ok(SystemStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            database: self.store.backend().as_str().to_string(),
            database_ok,
            uptime_s: self.started.elapsed().as_secs(),
            users_by_role,
            now_ms: crate::store::now_ms(),
        })
    }

    async fn recent_admin_actions(&self, limit: u32) -> Result<Vec<AdminActionEntry>, AppError> {
        let rows = self
            .store
            .recent_admin_audit(limit)
            .await
            .map_err(store_failure)?;
        Ok(rows
            .into_iter()
            .map(|r| AdminActionEntry {
                at_ms: r.at_ms,
                actor: r.actor,
                action: r.action,
                target: r.target,
                before: r.before,
                after: r.after,
            })
            .collect())
    }

    async fn users(&self) -> Result<Vec<UserSummary>, AppError> {
        let users = self.store.list_users().await.map_err(store_failure)?;
        Ok(users
            .into_iter()
            .map(|u| UserSummary {
                id: u.id,
                username: u.username,
                role: u.role,
                created_at_ms: u.created_at_ms,
                updated_at_ms: u.updated_at_ms,
            })
            .collect())
    }

    async fn add_user(
        &self,
        actor: &SessionUser,
        username: &str,
        role: Role,
    ) -> Result<IssuedPassword, AppError> {
        let password = password::generate_password();
        self.users
            .add(&actor.username, username, role, &password)
            .await
            .map_err(app_error)?;
        tracing::info!(actor = %actor.username, username, %role, "user added");
        Ok(IssuedPassword {
            username: username.to_string(),
            password,
        })
    }

    async fn set_role(
        &self,
        actor: &SessionUser,
        username: &str,
        role: Role,
    ) -> Result<(), AppError> {
        let change = self
            .users
            .set_role(&actor.username, username, role)
            .await
            .map_err(app_error)?;
        tracing::info!(actor = %actor.username, username, before = %change.before, after = %change.after, "role changed");
        Ok(())
    }

    async fn reset_password(
        &self,
        actor: &SessionUser,
        username: &str,
    ) -> Result<IssuedPassword, AppError> {
        let password = password::generate_password();
        self.users
            .reset_password(&actor.username, username, &password)
            .await
            .map_err(app_error)?;
        tracing::info!(actor = %actor.username, username, "password reset");
        Ok(IssuedPassword {
            username: username.to_string(),
            password,
        })
    }
}
