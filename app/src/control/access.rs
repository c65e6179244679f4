//! Assistants (API keys, tiers) and their per-tool permissions.

use crate::error::AppError;
use crate::wire::{
    AssistantView, Decision, IssuedKey, PermissionPageView, PermissionQuery, SessionUser, Tier,
};

/// Assistants (API keys, tiers) and their per-tool permissions.
#[async_trait::async_trait]
pub trait AccessPlane: Send + Sync {
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

    /// The part of the assistants × tools matrix `query` asks for: a page of tools for a
    /// page of assistants, each cell's decision and its source. A query out of bounds:
    /// `Invalid`.
    async fn permission_page(&self, query: PermissionQuery)
    -> Result<PermissionPageView, AppError>;

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
}
