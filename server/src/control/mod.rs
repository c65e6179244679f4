//! The dashboard's control plane, implemented over the store, the access module and the
//! registry (the fleet in memory): one file per area, as `app::control` declares them.

mod access;
mod audit;
mod fleet;
mod roi;
mod telemetry;
mod users;

use crate::access::control::AccessControl;
use crate::access::{LoginThrottle, UserDirectory};
use crate::cluster::ChangeFeed;
use crate::registry::Registry;
use crate::store::Store;
use crate::telemetry::series::SeriesBook;
use app::error::AppError;
use std::sync::Arc;
use std::time::Instant;

/// The control plane of one Fleetdeck replica.
pub struct FleetControl {
    store: Store,
    /// The fleet the dashboard watches and steers.
    registry: Arc<Registry>,
    users: UserDirectory,
    throttle: Arc<LoginThrottle>,
    /// Assistants, keys, permissions (shared with the gateway).
    access: Arc<AccessControl>,
    /// The per-minute series still in memory (the store has the rest).
    series: Arc<SeriesBook>,
    /// How this replica follows the others (PostgreSQL).
    feed: Option<Arc<ChangeFeed>>,
    started: Instant,
}

impl FleetControl {
    /// A control plane over `store` and the fleet, throttling logins with `throttle`.
    pub fn new(
        store: Store,
        throttle: Arc<LoginThrottle>,
        registry: Arc<Registry>,
        access: Arc<AccessControl>,
    ) -> Self {
        FleetControl {
            users: UserDirectory::new(store.clone()),
            store,
            registry,
            throttle,
            access,
            series: Arc::new(SeriesBook::new()),
            feed: None,
            started: Instant::now(),
        }
    }

    /// Reports how this replica follows the others' changes.
    pub fn with_change_feed(mut self, feed: Arc<ChangeFeed>) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Reads the gateway's per-minute series (without it, only stored minutes are seen).
    pub fn with_series(mut self, series: Arc<SeriesBook>) -> Self {
        self.series = series;
        self
    }
}

pub(crate) fn store_failure(error: impl std::fmt::Display) -> AppError {
    tracing::error!(%error, "control plane operation failed");
    AppError::Internal("the operation failed on the server; see its log".into())
}
