//! Dashboard logins and user administration.

use super::{FleetControl, store_failure};
use crate::access::{UserError, password};
use crate::store::{StoreError, UserRecord};
use app::control::{SessionStamp, UsersPlane};
use app::error::AppError;
use app::wire::{IssuedPassword, Role, SessionUser, UserSummary};
use std::net::IpAddr;

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
        UserError::InvalidName(_) | UserError::Password(_) | UserError::WrongPassword => {
            AppError::Invalid(error.to_string())
        }
        UserError::Store(StoreError::NotFound(what)) => AppError::NotFound(what),
        UserError::Store(StoreError::Conflict(why)) => AppError::Conflict(why),
        other => store_failure(other),
    }
}

/// Refuses an admin's attempt to `doing` their own login (they would lock themselves out
/// of the session they act from; another admin can do it).
fn not_oneself(actor: &SessionUser, username: &str, doing: &str) -> Result<(), AppError> {
    if actor.username == username {
        return Err(AppError::Conflict(format!(
            "you cannot {doing} your own login: ask another admin"
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl UsersPlane for FleetControl {
    async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<SessionStamp, AppError> {
        // The name is the caller's to choose: logged and used as a throttle key bounded.
        let shown = crate::sanitize::bounded(username, 64);
        let attempt = match self.throttle.admit(&shown, client) {
            Ok(attempt) => attempt,
            Err(wait) => {
                tracing::warn!(username = %shown, ?client, "login throttled");
                return Err(AppError::Throttled {
                    retry_after_s: wait.as_secs().max(1),
                });
            }
        };
        let user = match self.users.authenticate(username, password).await {
            Ok(user) => user,
            Err(error) => {
                // The server failed, not the caller: no failure to count.
                self.throttle.succeeded(attempt);
                return Err(app_error(error));
            }
        };
        match user {
            Some(user) => {
                self.throttle.succeeded(attempt);
                tracing::info!(username = %shown, role = %user.role, ?client, "login");
                Ok(user.session_stamp())
            }
            None => {
                // Unknown, wrong password or disabled: one answer for all three.
                tracing::warn!(
                    username = %shown,
                    ?client,
                    "login refused: unknown user, wrong password or disabled"
                );
                Err(AppError::BadCredentials)
            }
        }
    }

    async fn session_user(&self, stamp: SessionStamp) -> Result<Option<SessionUser>, AppError> {
        let user = self
            .store
            .user_by_id(stamp.user_id)
            .await
            .map_err(store_failure)?;
        Ok(user
            .filter(|user| user.is_enabled() && user.session_epoch == stamp.epoch)
            .map(session_user))
    }

    async fn users(&self) -> Result<Vec<UserSummary>, AppError> {
        let users = self.store.list_users().await.map_err(store_failure)?;
        Ok(users
            .into_iter()
            .map(|u| UserSummary {
                id: u.id,
                disabled: !u.is_enabled(),
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
    ) -> Result<SessionStamp, AppError> {
        let change = self
            .users
            .set_role(&actor.username, username, role)
            .await
            .map_err(app_error)?;
        tracing::info!(actor = %actor.username, username, before = %change.before, after = %change.after, "role changed");
        Ok(change.stamp)
    }

    async fn reset_password(
        &self,
        actor: &SessionUser,
        username: &str,
    ) -> Result<(IssuedPassword, SessionStamp), AppError> {
        let password = password::generate_password();
        let stamp = self
            .users
            .reset_password(&actor.username, username, &password)
            .await
            .map_err(app_error)?;
        tracing::info!(actor = %actor.username, username, "password reset; sessions ended");
        let issued = IssuedPassword {
            username: username.to_string(),
            password,
        };
        Ok((issued, stamp))
    }

    async fn set_disabled(
        &self,
        actor: &SessionUser,
        username: &str,
        disabled: bool,
    ) -> Result<(), AppError> {
        not_oneself(actor, username, if disabled { "disable" } else { "enable" })?;
        let changed = self
            .users
            .set_disabled(&actor.username, username, disabled)
            .await
            .map_err(app_error)?;
        if changed {
            tracing::info!(actor = %actor.username, username, disabled, "user state changed");
        }
        Ok(())
    }

    async fn delete_user(&self, actor: &SessionUser, username: &str) -> Result<(), AppError> {
        not_oneself(actor, username, "delete")?;
        self.users
            .delete(&actor.username, username)
            .await
            .map_err(app_error)?;
        tracing::info!(actor = %actor.username, username, "user deleted");
        Ok(())
    }

    async fn logout_everywhere(
        &self,
        actor: &SessionUser,
        username: &str,
    ) -> Result<SessionStamp, AppError> {
        let stamp = self
            .users
            .logout_everywhere(&actor.username, username)
            .await
            .map_err(app_error)?;
        tracing::info!(actor = %actor.username, username, "sessions ended everywhere");
        Ok(stamp)
    }

    async fn change_own_password(
        &self,
        actor: &SessionUser,
        current_password: &str,
        new_password: &str,
    ) -> Result<SessionStamp, AppError> {
        // Wrong current passwords are throttled like failed logins: a stolen session must
        // not become a way to guess the password behind it (keyed by the user alone, so it
        // never blocks the user's logins).
        let attempt = self.throttle.admit(&actor.username, None).map_err(|wait| {
            tracing::warn!(username = %actor.username, "password change throttled");
            AppError::Throttled {
                retry_after_s: wait.as_secs().max(1),
            }
        })?;
        let changed = self
            .users
            .change_own_password(&actor.username, current_password, new_password)
            .await;
        match changed {
            Err(UserError::WrongPassword) => {
                tracing::warn!(username = %actor.username, "password change refused: wrong current password");
                Err(app_error(UserError::WrongPassword))
            }
            other => {
                self.throttle.succeeded(attempt);
                let stamp = other.map_err(app_error)?;
                tracing::info!(username = %actor.username, "own password changed; other sessions ended");
                Ok(stamp)
            }
        }
    }
}
