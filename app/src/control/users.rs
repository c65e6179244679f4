//! Dashboard logins: sign-in, the session's user, and user administration.

use crate::error::AppError;
use crate::wire::{IssuedPassword, Role, SessionUser, UserSummary};
use std::net::IpAddr;

/// What a session carries to show whose it is: the user, and the user's session epoch at
/// login. The session is valid while the user exists, is enabled and still has that epoch;
/// a password reset, a role change, disabling and "log out everywhere" advance the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionStamp {
    /// The user's id in the store.
    pub user_id: i64,
    /// The user's session epoch when the session was stamped.
    pub epoch: i64,
}

/// Dashboard logins: sign-in, the session's user, and user administration.
///
/// Changes that end a user's sessions return the user's new [`SessionStamp`], so that a
/// caller changing their own account can re-stamp the session it acts from and end only
/// the others.
#[async_trait::async_trait]
pub trait UsersPlane: Send + Sync {
    /// Checks a login (failures throttled per user name and address, and per address);
    /// the stamp goes into the new session.
    async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<SessionStamp, AppError>;

    /// The user behind a session, as the store has it now: `None` when the user was
    /// deleted or disabled, or the session's epoch is no longer the user's.
    async fn session_user(&self, stamp: SessionStamp) -> Result<Option<SessionUser>, AppError>;

    /// Every dashboard login.
    async fn users(&self) -> Result<Vec<UserSummary>, AppError>;

    /// Creates a login with a generated password, returned once.
    async fn add_user(
        &self,
        actor: &SessionUser,
        username: &str,
        role: Role,
    ) -> Result<IssuedPassword, AppError>;

    /// Changes a login's role (the last enabled admin cannot be demoted); a change of role
    /// ends the user's sessions.
    async fn set_role(
        &self,
        actor: &SessionUser,
        username: &str,
        role: Role,
    ) -> Result<SessionStamp, AppError>;

    /// Replaces a login's password with a generated one, returned once; ends the user's
    /// sessions.
    async fn reset_password(
        &self,
        actor: &SessionUser,
        username: &str,
    ) -> Result<(IssuedPassword, SessionStamp), AppError>;

    /// Disables a login (it cannot log in, its sessions end) or enables it again. The last
    /// enabled admin cannot be disabled, nor can an actor disable themselves.
    async fn set_disabled(
        &self,
        actor: &SessionUser,
        username: &str,
        disabled: bool,
    ) -> Result<(), AppError>;

    /// Deletes a login (the last enabled admin and the actor themselves are refused).
    async fn delete_user(&self, actor: &SessionUser, username: &str) -> Result<(), AppError>;

    /// Ends every session of `username`.
    async fn logout_everywhere(
        &self,
        actor: &SessionUser,
        username: &str,
    ) -> Result<SessionStamp, AppError>;

    /// Changes the actor's own password, given the current one (the password policy
    /// applies; wrong current passwords are throttled like failed logins); ends the actor's
    /// sessions.
    async fn change_own_password(
        &self,
        actor: &SessionUser,
        current_password: &str,
        new_password: &str,
    ) -> Result<SessionStamp, AppError>;
}
