//! This replica's status, the overview and traces.

use super::{FleetControl, store_failure};
use crate::store::Backend;
use crate::telemetry::overview;
use crate::telemetry::traces;
use app::control::TelemetryPlane;
use app::error::AppError;
use app::wire::{ChangeFeedView, OverviewView, SystemStatus, TraceQuery, TraceSummary, TraceView};

#[async_trait::async_trait]
impl TelemetryPlane for FleetControl {
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
            replica_id: self.store.origin().to_string(),
            change_feed: match self.store.backend() {
                Backend::Sqlite => None,
                Backend::Postgres => {
                    let reading = self.feed.as_ref().map(|f| f.reading()).unwrap_or_default();
                    Some(ChangeFeedView {
                        following: reading.following,
                        applied: reading.applied,
                        resyncs: reading.resyncs,
                        last_applied_ms: reading.last_applied_ms,
                    })
                }
            },
        })
    }

    async fn overview(&self) -> Result<OverviewView, AppError> {
        let started_ms = crate::store::now_ms()
            - i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        overview::overview(&self.registry, &self.store, &self.series, started_ms)
            .await
            .map_err(store_failure)
    }

    async fn traces(&self, query: TraceQuery) -> Result<Vec<TraceSummary>, AppError> {
        traces::query::search(traces::collector(), &self.store, query).await
    }

    async fn trace(&self, trace_id: &str) -> Result<TraceView, AppError> {
        traces::query::view(traces::collector(), &self.store, trace_id).await
    }
}
