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
    /// Listening to the database's changes now (never on SQLite: there is no other process;
    /// not while the listener reconnects).
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
            Some(ListenEvent::Lost) => feed.following.store(false, Ordering::Relaxed),
            Some(ListenEvent::Reconnected) => {
                feed.following.store(true, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::policy::AccessPolicy;
    use crate::config::fleet::FleetFile;
    use crate::registry::AdminState;
    use crate::store::AdminAction;
    use crate::store::test_support::PgSchema;
    use std::path::Path;
    use std::time::Instant;

    const FLEET: &str = r#"
[[server]]
name = "search"

  [[server.instance]]
  id = "search-1"
  url = "http://127.0.0.1:9/mcp"
"#;

    /// A replica on `url` following the others until the returned token is cancelled.
    async fn follower(url: &str) -> (Replica, CancellationToken) {
        let store = Store::open(url).await.unwrap();
        let registry = Registry::from_fleet(&FleetFile::parse(FLEET, Path::new("f.toml")).unwrap());
        let access = AccessControl::load(store.clone(), AccessPolicy::default())
            .await
            .unwrap();
        let replica = Replica {
            store: store.clone(),
            registry,
            access,
            feed: Arc::new(ChangeFeed::default()),
        };
        let shutdown = CancellationToken::new();
        let listener = store.listen().await.unwrap().expect("postgres");
        tokio::spawn(follow_changes(listener, replica.clone(), shutdown.clone()));
        (replica, shutdown)
    }

    /// Waits (at most 5 s) until `done` holds; returns how long it took.
    async fn until(mut done: impl AsyncFnMut() -> bool) -> Duration {
        let start = Instant::now();
        while !done().await {
            assert!(start.elapsed() < Duration::from_secs(5), "not within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        start.elapsed()
    }

    #[tokio::test]
    async fn another_replicas_changes_are_applied_as_they_commit() {
        let schema = PgSchema::create().await;
        let other = Store::open(&schema.url()).await.unwrap();
        let (replica, shutdown) = follower(&schema.url()).await;
        let (_, instance) = replica.registry.instance("search-1").unwrap();

        other
            .set_admin_state(
                "search-1",
                "drained",
                &AdminAction::new("olga", "instance.drain", "search-1"),
            )
            .await
            .unwrap();
        let took = until(async || instance.admin_state() == AdminState::Drained).await;
        assert!(
            took < Duration::from_secs(1),
            "drain applied after {took:?}"
        );

        // A permission change: the access snapshot moves to the stored revision.
        other
            .insert_assistant("bot", app::wire::Tier::Viewer, "kp", "digest-bot", "olga")
            .await
            .unwrap();
        let revision = other.access_revision().await.unwrap();
        until(async || replica.access.revision() == revision).await;

        // A cache invalidation: this replica's cached result is dropped.
        let server = replica.registry.server("search").unwrap();
        let answer = rmcp::model::CallToolResult::success(vec![]);
        server.results.put("query", None, &answer).await;
        assert_eq!(server.results.stats().await.entries, 1);
        other
            .record_admin_action_announcing(
                &AdminAction::new("olga", "cache.invalidate", "search"),
                &StoreChange::CacheInvalidated {
                    server: Some("search".into()),
                    tool: None,
                },
            )
            .await
            .unwrap();
        until(async || server.results.stats().await.entries == 0).await;

        let reading = replica.feed.reading();
        assert!(reading.following);
        assert_eq!(reading.applied, 3);
        assert!(reading.last_applied_ms.is_some());
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_replica_that_missed_notifications_converges_after_reconnecting() {
        let schema = PgSchema::create().await;
        let other = Store::open(&schema.url()).await.unwrap();
        let (replica, shutdown) = follower(&schema.url()).await;
        let (_, instance) = replica.registry.instance("search-1").unwrap();

        // A change no notification tells of (as if sent while the listener was away).
        other
            .execute_sql_for_test(
                "INSERT INTO instance_admin_state (instance_id, state, updated_at_ms) \
                 VALUES ('search-1', 'drained', 0)",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            instance.admin_state(),
            AdminState::Active,
            "nothing announced yet"
        );

        other
            .execute_sql_for_test(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE query LIKE 'LISTEN %{}%'",
                schema.name
            ))
            .await
            .unwrap();
        until(async || instance.admin_state() == AdminState::Drained).await;
        assert_eq!(replica.feed.reading().resyncs, 1);
        shutdown.cancel();
    }
}
