//! The audit log of tool calls and admin actions.

use super::{FleetControl, store_failure};
use crate::store::StoreError;
use app::control::AuditPlane;
use app::error::AppError;
use app::wire::{AdminActionEntry, AuditKind, AuditPage, AuditQuery, SessionUser};

/// An audit query the store refused: bad filters are the user's to fix.
fn audit_query_failure(error: StoreError) -> AppError {
    match error {
        StoreError::Conflict(why) => AppError::Invalid(why),
        other => store_failure(other),
    }
}

#[async_trait::async_trait]
impl AuditPlane for FleetControl {
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

    async fn audit(&self, reader: &SessionUser, query: AuditQuery) -> Result<AuditPage, AppError> {
        let (calls, admin, total) = match query.kind {
            AuditKind::Calls => {
                let (rows, total) = self
                    .store
                    .tool_calls_page(&query)
                    .await
                    .map_err(audit_query_failure)?;
                let rows = rows
                    .into_iter()
                    .map(|row| row.for_reader(reader.role))
                    .collect();
                (rows, Vec::new(), total)
            }
            AuditKind::Admin => {
                let (rows, total) = self
                    .store
                    .admin_audit_page(&query)
                    .await
                    .map_err(audit_query_failure)?;
                (Vec::new(), rows, total)
            }
        };
        Ok(AuditPage {
            calls,
            admin,
            total,
            page: query.page,
            page_size: query.page_size,
        })
    }
}
