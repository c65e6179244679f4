//! What the replica observes: its status, the overview, traces.

use crate::error::AppError;
use crate::wire::{OverviewView, SystemStatus, TraceQuery, TraceSummary, TraceView};

/// What the replica observes: its status, the overview, traces.
#[async_trait::async_trait]
pub trait TelemetryPlane: Send + Sync {
    /// This replica's own state.
    async fn system_status(&self) -> Result<SystemStatus, AppError>;

    /// The fleet at a glance: health, breakers, rates over the last minutes, advice.
    async fn overview(&self) -> Result<OverviewView, AppError>;

    /// Recent traces matching the filters, newest first.
    async fn traces(&self, query: TraceQuery) -> Result<Vec<TraceSummary>, AppError>;

    /// One trace with all its spans. Unknown or expired id: `NotFound`.
    async fn trace(&self, trace_id: &str) -> Result<TraceView, AppError>;
}
