//! The fleet: servers and instances, drains, breakers, caches and the tool catalog.

use crate::error::AppError;
use crate::wire::{
    BreakerTransitionsView, CachePageView, CacheQuery, CacheView, FleetPageView, FleetQuery,
    FleetView, InstanceView, SessionUser, ToolPageView, ToolQuery,
};

/// The fleet: servers and instances, drains, breakers, caches and the tool catalog.
#[async_trait::async_trait]
pub trait FleetPlane: Send + Sync {
    /// Every server and its instances as they stand now.
    async fn fleet(&self) -> Result<FleetView, AppError>;

    /// The servers as summary rows and the instances `query` lists, a page at a time.
    /// A query out of bounds: `Invalid`.
    async fn fleet_page(&self, query: FleetQuery) -> Result<FleetPageView, AppError> {
        let query = query.checked().map_err(AppError::Invalid)?;
        Ok(FleetPageView::of(self.fleet().await?, &query))
    }

    /// The newest `limit` breaker transitions of the fleet, newest first, and how many
    /// there are.
    async fn breaker_transitions(&self, limit: usize) -> Result<BreakerTransitionsView, AppError>;

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

    /// The caches of the servers `query` asks for, a page of servers at a time. A query
    /// out of bounds: `Invalid`.
    async fn caches_page(&self, query: CacheQuery) -> Result<CachePageView, AppError> {
        let query = query.checked().map_err(AppError::Invalid)?;
        Ok(CachePageView::of(self.caches().await?, &query))
    }

    /// Empties result caches: one tool's (`server` and `tool`), one server's (`server`), or
    /// all (neither). Returns what was emptied, for the page to say.
    async fn invalidate_cache(
        &self,
        actor: &SessionUser,
        server: Option<String>,
        tool: Option<String>,
    ) -> Result<String, AppError>;

    /// The tools `query` asks for, a page at a time, with the instances that serve them.
    /// A query out of bounds: `Invalid`.
    async fn tools_page(&self, query: ToolQuery) -> Result<ToolPageView, AppError>;
}
