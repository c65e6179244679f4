//! The audit log: tool calls and admin actions.

use crate::error::AppError;
use crate::wire::{AdminActionEntry, AuditPage, AuditQuery, SessionUser};

/// The audit log: tool calls and admin actions.
#[async_trait::async_trait]
pub trait AuditPlane: Send + Sync {
    /// The newest admin actions, newest first.
    async fn recent_admin_actions(&self, limit: u32) -> Result<Vec<AdminActionEntry>, AppError>;

    /// One page of the audit log (tool calls or admin actions), newest first, as `reader`
    /// may see it: recorded tool arguments only for operators and admins (viewers get the
    /// digest alone).
    async fn audit(&self, reader: &SessionUser, query: AuditQuery) -> Result<AuditPage, AppError>;
}
