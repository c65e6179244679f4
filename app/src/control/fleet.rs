//! The fleet: servers and instances, drains, breakers, caches and the tool catalog.

use crate::error::AppError;
use crate::wire::{
    BreakerTransitionView, CacheView, FleetView, InstanceView, SessionUser, ToolView,
};

/// The fleet: servers and instances, drains, breakers, caches and the tool catalog.
#[async_trait::async_trait]
pub trait FleetPlane: Send + Sync {
    /// Every server and its instances as they stand now.
    async fn fleet(&self) -> Result<FleetView, AppError>;

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
}
