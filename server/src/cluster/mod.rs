//! Several replicas on one PostgreSQL database: how the admin changes one replica makes reach
//! the others (README.md here says what is shared and what stays per replica).
//!
//! Every change is stored first and announced in the same transaction
//! ([`crate::store::StoreChange`]); [`follow_changes`] applies what others announced. After
//! the listener reconnects it reloads everything, since changes may have been missed.

mod fleet_sync;

pub use fleet_sync::apply_stored_fleet;

use crate::access::control::AccessControl;
use crate::registry::Registry;
use crate::store::{ChangeListener, ListenEvent, Store, StoreChange, now_ms};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a failed reload waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How this replica follows the others, for the dashboard and `/metrics`.
#[derive(Debug, Default)]
pub struct ChangeFeed {
    /// Following the database's changes (never on SQLite: there is no other process).
    following: AtomicBool,
    /// Changes from other processes applied.
    applied: AtomicU64,
    /// Full reloads after a reconnect.
    resyncs: AtomicU64,
    /// When the last change from another process was applied (Unix ms, 0: never).
    last_applied_ms: AtomicI64,
}

/// A reading of [`ChangeFeed`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeFeedReading {
    /// Following the database's changes.
    pub following: bool,
    /// Changes from other processes applied.
    pub applied: u64,
    /// Full reloads after a reconnect.
    pub resyncs: u64,
    /// When the last change from another process was applied (Unix ms), if ever.
    pub last_applied_ms: Option<i64>,
}

impl ChangeFeed {
    /// The current reading.
    pub fn reading(&self) -> ChangeFeedReading {
        let last = self.last_applied_ms.load(Ordering::Relaxed);
        ChangeFeedReading {
            following: self.following.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            last_applied_ms: (last > 0).then_some(last),
        }
    }
}

/// What a replica holds in memory that other replicas' changes touch.
#[derive(Clone)]
pub struct Replica {
    /// The shared database.
    pub store: Store,
    /// The fleet: instances, admin states, result caches.
    pub registry: Arc<Registry>,
    /// Assistants, keys, permissions.
    pub access: Arc<AccessControl>,
    /// This replica's view of the feed.
    pub feed: Arc<ChangeFeed>,
}

/// Reloads still owed because the last try failed.
#[derive(Default)]
struct Owed {
    access: bool,
    fleet: bool,
}

impl Owed {
    fn any(&self) -> bool {
        self.access || self.fleet
    }
}

/// Until `shutdown`: applies every change announced on the database as it commits, and
/// reloads everything after the listener reconnects. Failed reloads are retried every
/// second until they succeed.
pub async fn follow_changes(
    mut listener: ChangeListener,
    replica: Replica,
    shutdown: CancellationToken,
) {
    let feed = replica.feed.clone();
    feed.following.store(true, Ordering::Relaxed);
    let mut owed = Owed::default();
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(RETRY_AFTER), if owed.any() => None,
            event = listener.next() => Some(event),
        };
        match event {
            None => {}
            Some(ListenEvent::Change { change, own }) => {
                match change {
                    StoreChange::Access => owed.access = true,
                    StoreChange::Fleet => owed.fleet = true,
                    StoreChange::CacheInvalidated { server, tool } => {
                        // This replica emptied its own caches before it announced it.
                        if !own {
                            invalidate(&replica.registry, server.as_deref(), tool.as_deref()).await;
                        }
                    }
                }
                if !own {
                    feed.applied.fetch_add(1, Ordering::Relaxed);
                    feed.last_applied_ms.store(now_ms(), Ordering::Relaxed);
                }
            }
            Some(ListenEvent::Reconnected) => {
                feed.resyncs.fetch_add(1, Ordering::Relaxed);
                // Invalidations may have been missed: cached results may be stale.
                invalidate(&replica.registry, None, None).await;
                owed = Owed {
                    access: true,
                    fleet: true,
                };
            }
        }
        owed = catch_up(&replica, owed).await;
    }
    feed.following.store(false, Ordering::Relaxed);
}

/// Runs the reloads owed; returns those that failed.
async fn catch_up(replica: &Replica, owed: Owed) -> Owed {
    let mut still = Owed::default();
    if owed.access
        && let Err(error) = replica.access.reload_if_changed().await
    {
        tracing::warn!(%error, "cannot reload access changed by another replica; retrying");
        still.access = true;
    }
    if owed.fleet {
        match apply_stored_fleet(&replica.registry, &replica.store).await {
            Ok(report) if !report.is_empty() => {
                tracing::info!(?report, "applied fleet changes of another replica")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot reload the fleet state changed by another replica; retrying");
                still.fleet = true;
            }
        }
    }
    still
}

async fn invalidate(registry: &Registry, server: Option<&str>, tool: Option<&str>) {
    if let Err(unknown) = registry.invalidate_results(server, tool).await {
        tracing::debug!(%unknown, "invalidation for a server this replica does not have");
    }
}
