//! The seam between the dashboard and the server: the questions and commands the pages need.
//!
//! `app` declares it; the `fleetdeck` server implements it over its registry and store and
//! provides it as Leptos context. Server functions authorise the session's user first,
//! then call it, passing the acting user so that every change can be audited.

use crate::error::AppError;
use crate::wire::{
    AdminActionEntry, AssistantView, AuditPage, AuditQuery, BreakerTransitionView, CacheView,
    Decision, FleetView, InstanceView, IssuedKey, IssuedPassword, OverviewView, PermissionMatrix,
    Role, SessionUser, SystemStatus, Tier, ToolView, TraceQuery, TraceSummary, TraceView,
    UserSummary,
};
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

    /// Every server and its instances as they stand now.
    async fn fleet(&self) -> Result<FleetView, AppError>;

    /// The fleet at a glance: health, breakers, rates over the last minutes, advice.
    async fn overview(&self) -> Result<OverviewView, AppError>;

    /// Recent breaker transitions of every instance, newest first.
    async fn breaker_transitions(&self) -> Result<Vec<BreakerTransitionView>, AppError>;

    /// Stops routing new calls to an instance; it is drained once its in-flight calls end.
    /// Unknown instance: `NotFound`.
    async fn drain_instance(
        &self,
        actor: &SessionUser,
        instance: &str,
    ) -> Result<InstanceView, AppError>;

    /// Returns a draining or drained instance to service. Unknown instance: `NotFound`.
    async fn undrain_instance(
        &self,
        actor: &SessionUser,
        instance: &str,
    ) -> Result<InstanceView, AppError>;

    /// Closes an instance's breaker and clears its failure count. Unknown instance: `NotFound`.
    async fn reset_breaker(
        &self,
        actor: &SessionUser,
        instance: &str,
    ) -> Result<InstanceView, AppError>;

    /// Adds a streamable-HTTP instance to a server, persisted in the store.
    async fn add_instance(
        &self,
        actor: &SessionUser,
        server: &str,
        id: &str,
        url: &str,
    ) -> Result<InstanceView, AppError>;

    /// Removes an instance added while running (fleet-file instances: `Conflict`).
    async fn remove_instance(&self, actor: &SessionUser, id: &str) -> Result<(), AppError>;

    /// Every server's tool-list and result caches.
    async fn caches(&self) -> Result<Vec<CacheView>, AppError>;

    /// Empties result caches: one tool's (`server` and `tool`), one server's (`server`), or
    /// all (neither). Returns what was emptied, for the page to say.
    async fn invalidate_cache(
        &self,
        actor: &SessionUser,
        server: Option<String>,
        tool: Option<String>,
    ) -> Result<String, AppError>;

    /// Every tool of the fleet, with the instances that serve it.
    async fn tools(&self) -> Result<Vec<ToolView>, AppError>;

    /// Every assistant with its keys and the last 24 hours' calls and refusals.
    async fn assistants(&self) -> Result<Vec<AssistantView>, AppError>;

    /// Adds an assistant and issues its first key, returned once. Duplicate name: `Conflict`.
    async fn add_assistant(
        &self,
        actor: &SessionUser,
        name: &str,
        tier: Tier,
    ) -> Result<IssuedKey, AppError>;

    /// Changes an assistant's tier (its default permissions and rate limit).
    async fn set_assistant_tier(
        &self,
        actor: &SessionUser,
        name: &str,
        tier: Tier,
    ) -> Result<(), AppError>;

    /// Issues another key for an assistant, returned once.
    async fn issue_key(&self, actor: &SessionUser, assistant: &str) -> Result<IssuedKey, AppError>;

    /// Revokes one key; the gateway refuses it from the next call on.
    async fn revoke_key(
        &self,
        actor: &SessionUser,
        assistant: &str,
        key_id: i64,
    ) -> Result<(), AppError>;

    /// The effective decision of every assistant for every tool of the fleet.
    async fn permission_matrix(&self) -> Result<PermissionMatrix, AppError>;

    /// Sets an explicit decision (`Some`) or removes it (`None`: back to the tier's
    /// patterns) for one tool, or with `tool = "*"` for every tool of the server (which also
    /// clears that server's per-tool entries of the assistant). Takes effect on the next call.
    async fn set_permission(
        &self,
        actor: &SessionUser,
        assistant: &str,
        server: &str,
        tool: &str,
        decision: Option<Decision>,
    ) -> Result<(), AppError>;

    /// One page of the audit log (tool calls or admin actions), newest first.
    async fn audit(&self, query: AuditQuery) -> Result<AuditPage, AppError>;

    /// Recent traces matching the filters, newest first.
    async fn traces(&self, query: TraceQuery) -> Result<Vec<TraceSummary>, AppError>;

    /// One trace with all its spans. Unknown or expired id: `NotFound`.
    async fn trace(&self, trace_id: &str) -> Result<TraceView, AppError>;

    /// The ROI report over the last `window_days` days (1..=365) of measured calls.
    async fn roi(&self, window_days: u32) -> Result<crate::wire::RoiReport, AppError>;

    /// Replaces a fleet server's ROI inputs (validated, audited). Unknown server: `NotFound`;
    /// a bad value: `Invalid`, naming the field.
    async fn set_roi_inputs(
        &self,
        actor: &SessionUser,
        server: &str,
        form: crate::wire::RoiInputsForm,
    ) -> Result<(), AppError>;

    /// The planning mode: the ROI of a proposed server from uses per person and team size.
    async fn plan_roi(
        &self,
        form: crate::wire::RoiPlanForm,
    ) -> Result<crate::wire::RoiPlan, AppError>;
}

/// The shared handle server functions find in their context.
pub type SharedControlPlane = Arc<dyn ControlPlane>;
