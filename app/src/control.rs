//! The seam between the dashboard and the server: the questions and commands the pages need.
//!
//! `app` declares it; the `fleetdeck` server implements it over its registry and store and
//! provides it as Leptos context. Server functions authorise the session's user first,
//! then call it, passing the acting user so that every change can be audited.

use crate::error::AppError;
use crate::wire::{AdminActionEntry, IssuedPassword, Role, SessionUser, SystemStatus, UserSummary};
use std::net::IpAddr;
use std::sync::Arc;

/// The control plane as the dashboard sees it.
#[async_trait::async_trait]
pub trait ControlPlane: Send + Sync + 'static {
    /// Checks a login (throttled per user name and per client address).
    async fn login(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<SessionUser, AppError>;

    /// The user behind a session, as the store has it now (`None` if deleted).
    async fn session_user(&self, user_id: i64) -> Result<Option<SessionUser>, AppError>;

    /// This replica's own state.
    async fn system_status(&self) -> Result<SystemStatus, AppError>;

    /// The newest admin actions, newest first.
    async fn recent_admin_actions(&self, limit: u32) -> Result<Vec<AdminActionEntry>, AppError>;

    /// Every dashboard login.
    async fn users(&self) -> Result<Vec<UserSummary>, AppError>;

    /// Creates a login with a generated password, returned once.
    async fn add_user(
        &self,
        actor: &SessionUser,
        username: &str,
        role: Role,
    ) -> Result<IssuedPassword, AppError>;

    /// Changes a login's role (the last admin cannot be demoted).
    async fn set_role(
        &self,
        actor: &SessionUser,
        username: &str,
        role: Role,
    ) -> Result<(), AppError>;

    /// Replaces a login's password with a generated one, returned once.
    async fn reset_password(
        &self,
        actor: &SessionUser,
        username: &str,
    ) -> Result<IssuedPassword, AppError>;
}

/// The shared handle server functions find in their context.
pub type SharedControlPlane = Arc<dyn ControlPlane>;
