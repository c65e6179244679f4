//! Change notifications between processes sharing a PostgreSQL database (replicas, the CLI).
//!
//! A store operation that changes what replicas hold in memory announces a [`StoreChange`]
//! in its own transaction: PostgreSQL delivers the `NOTIFY` when (and only if) it commits,
//! so a listener never hears of a change it cannot read yet, and no committed change goes
//! unannounced. A listener that loses its connection misses what was sent meanwhile: it
//! reports [`ListenEvent::Reconnected`] and its owner reloads everything.
//!
//! On SQLite there is one process (the CLI's changes to access are found by the access
//! watcher's revision poll), so announcing does nothing and there is nothing to listen to.

use super::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;

/// A change other processes must apply to what they keep in memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum StoreChange {
    /// Assistants, keys or permissions changed (`access_revision` moved).
    Access,
    /// An instance's admin state changed, or a runtime instance was added or removed.
    Fleet,
    /// Cached results were invalidated: one tool's, one server's, or all (`None`).
    CacheInvalidated {
        /// The server, or every server.
        server: Option<String>,
        /// The tool of that server, or every tool.
        tool: Option<String>,
    },
}

/// A notification as sent: the change and who made it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    origin: String,
    #[serde(flatten)]
    change: StoreChange,
}

/// What a [`ChangeListener`] heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenEvent {
    /// A committed change, and whether this process made it.
    Change {
        /// The change.
        change: StoreChange,
        /// Made by this process (it applied it already).
        own: bool,
    },
    /// The connection was lost (or stopped answering); reconnecting follows.
    Lost,
    /// The connection was lost and is listening again: changes may have been missed, so
    /// everything must be reloaded.
    Reconnected,
}

/// How long a listener may hear nothing before it checks that its connection still
/// answers: a half-open TCP connection (a failover, a NAT timeout) never reports an error.
const QUIET_CHECK_AFTER: Duration = Duration::from_secs(30);
/// How long that check may take before the connection is given up.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A process id for notifications: tells a replica its own changes from others'.
pub(super) fn new_origin() -> Arc<str> {
    Arc::from(format!("{}-{:016x}", std::process::id(), fastrand::u64(..)))
}

/// The notification channel of a schema (at most 63 bytes: PostgreSQL's identifier limit).
fn channel_for(schema: &str) -> String {
    let channel = format!("fleetdeck.{schema}");
    if channel.len() <= 63 {
        return channel;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(schema.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("fleetdeck.{hex}")
}

/// Announcing a change from inside a transaction, on either backend's connection.
pub(super) trait Announce {
    /// Announces `change` to the other processes when the transaction commits.
    async fn announce(&mut self, store: &Store, change: &StoreChange) -> Result<(), sqlx::Error>;
}

impl Announce for sqlx::SqliteConnection {
    async fn announce(&mut self, _: &Store, _: &StoreChange) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl Announce for sqlx::PgConnection {
    async fn announce(&mut self, store: &Store, change: &StoreChange) -> Result<(), sqlx::Error> {
        let payload = serde_json::to_string(&Envelope {
            origin: store.origin.to_string(),
            change: change.clone(),
        })
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel_for(&store.schema))
            .bind(payload)
            .execute(self)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Announces a change on its own (outside any other write).
    pub async fn announce(&self, change: &StoreChange) -> Result<(), StoreError> {
        super::on_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            conn.announce(self, change).await?;
            Ok(())
        })
    }

    /// Listens to the changes announced by every process on this database, this one
    /// included; `None` on SQLite, where there are no other processes to hear.
    pub async fn listen(&self) -> Result<Option<ChangeListener>, StoreError> {
        let super::Db::Postgres(pool) = &self.db else {
            return Ok(None);
        };
        let channel = channel_for(&self.schema);
        let listener = connect_listener(pool, &channel).await?;
        Ok(Some(ChangeListener {
            pool: pool.clone(),
            channel,
            origin: self.origin.clone(),
            listener: Some(listener),
        }))
    }
}

async fn connect_listener(pool: &sqlx::PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// The changes announced on one database, as they commit.
pub struct ChangeListener {
    pool: sqlx::PgPool,
    channel: String,
    origin: Arc<str>,
    /// `None` while reconnecting.
    listener: Option<PgListener>,
}

impl ChangeListener {
    /// The next change; [`ListenEvent::Lost`] when the connection drops or stops answering,
    /// and [`ListenEvent::Reconnected`] once it listens again. Reconnects forever (backing
    /// off to 5 s), logging each failure.
    pub async fn next(&mut self) -> ListenEvent {
        let mut backoff = Duration::from_millis(100);
        loop {
            let Some(listener) = self.listener.as_mut() else {
                match connect_listener(&self.pool, &self.channel).await {
                    Ok(listener) => {
                        tracing::info!(channel = %self.channel, "listening to changes again");
                        self.listener = Some(listener);
                        return ListenEvent::Reconnected;
                    }
                    Err(error) => {
                        tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "cannot listen to changes");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            };
            let received = match tokio::time::timeout(QUIET_CHECK_AFTER, listener.try_recv()).await
            {
                Ok(received) => received,
                Err(_quiet) => {
                    let check = sqlx::query("SELECT 1").execute(&mut *listener);
                    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                        Ok(Ok(_)) => continue,
                        Ok(Err(error)) => {
                            tracing::warn!(%error, "change listener's connection failed its check")
                        }
                        Err(_) => tracing::warn!(
                            "change listener's connection did not answer its check in {CHECK_TIMEOUT:?}"
                        ),
                    }
                    self.listener = None;
                    return ListenEvent::Lost;
                }
            };
            match received {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Envelope>(notification.payload()) {
                        Ok(envelope) => {
                            return ListenEvent::Change {
                                own: *envelope.origin == *self.origin,
                                change: envelope.change,
                            };
                        }
                        // A newer replica's change this one does not know: reload all.
                        Err(error) => {
                            tracing::warn!(%error, payload = notification.payload(), "unknown change notification; reloading everything");
                            return ListenEvent::Reconnected;
                        }
                    }
                }
                // The connection dropped and sqlx re-established it before returning.
                Ok(None) => {
                    tracing::warn!(channel = %self.channel, "change listener reconnected");
                    return ListenEvent::Reconnected;
                }
                Err(error) => {
                    tracing::warn!(%error, "change listener lost its connection");
                    self.listener = None;
                    return ListenEvent::Lost;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AdminAction;
    use crate::store::test_support::PgSchema;

    /// The next event within `within`, or `None`.
    async fn heard(listener: &mut ChangeListener, within: Duration) -> Option<ListenEvent> {
        tokio::time::timeout(within, listener.next()).await.ok()
    }

    #[tokio::test]
    async fn a_committed_change_is_heard_by_every_store_with_its_origin() {
        let schema = PgSchema::create().await;
        let (a, b) = (
            Store::open(&schema.url()).await.unwrap(),
            Store::open(&schema.url()).await.unwrap(),
        );
        let mut listener = a.listen().await.unwrap().expect("postgres listens");
        b.set_admin_state(
            "search-1",
            "draining",
            &AdminAction::new("bob", "instance.drain", "search-1"),
        )
        .await
        .unwrap();
        assert_eq!(
            heard(&mut listener, Duration::from_secs(5)).await,
            Some(ListenEvent::Change {
                change: StoreChange::Fleet,
                own: false
            })
        );
        let invalidated = StoreChange::CacheInvalidated {
            server: Some("search".into()),
            tool: Some("query".into()),
        };
        a.record_admin_action_announcing(
            &AdminAction::new("alice", "cache.invalidate", "search__query"),
            &invalidated,
        )
        .await
        .unwrap();
        assert_eq!(
            heard(&mut listener, Duration::from_secs(5)).await,
            Some(ListenEvent::Change {
                change: invalidated,
                own: true
            })
        );
    }

    #[tokio::test]
    async fn a_change_rolled_back_is_never_heard() {
        let schema = PgSchema::create().await;
        let store = Store::open(&schema.url()).await.unwrap();
        let mut listener = store.listen().await.unwrap().unwrap();
        let super::super::Db::Postgres(pool) = &store.db else {
            unreachable!()
        };
        let mut tx = pool.begin().await.unwrap();
        tx.announce(&store, &StoreChange::Fleet).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(heard(&mut listener, Duration::from_millis(300)).await, None);
        store.announce(&StoreChange::Access).await.unwrap();
        assert_eq!(
            heard(&mut listener, Duration::from_secs(5)).await,
            Some(ListenEvent::Change {
                change: StoreChange::Access,
                own: true
            })
        );
    }

    #[tokio::test]
    async fn a_lost_connection_is_reported_and_listening_resumes() {
        let schema = PgSchema::create().await;
        let store = Store::open(&schema.url()).await.unwrap();
        let mut listener = store.listen().await.unwrap().unwrap();
        // The administrator (or a failover) kills the listening session.
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
        )
        .bind(format!("LISTEN \"{}\"", channel_for(&schema.name)))
        .fetch_all(match &store.db {
            super::super::Db::Postgres(pool) => pool,
            _ => unreachable!(),
        })
        .await
        .unwrap();
        assert_eq!(killed, vec![true], "one listening session");
        assert_eq!(
            heard(&mut listener, Duration::from_secs(10)).await,
            Some(ListenEvent::Reconnected)
        );
        store.announce(&StoreChange::Fleet).await.unwrap();
        assert_eq!(
            heard(&mut listener, Duration::from_secs(5)).await,
            Some(ListenEvent::Change {
                change: StoreChange::Fleet,
                own: true
            })
        );
    }

    #[tokio::test]
    async fn sqlite_has_nothing_to_listen_to_and_announcing_is_harmless() {
        let (store, _dir) = crate::store::test_support::temp_store().await;
        assert!(store.listen().await.unwrap().is_none());
        store.announce(&StoreChange::Fleet).await.unwrap();
    }

    #[test]
    fn a_change_round_trips_through_its_payload() {
        for change in [
            StoreChange::Access,
            StoreChange::Fleet,
            StoreChange::CacheInvalidated {
                server: Some("search".into()),
                tool: None,
            },
        ] {
            let text = serde_json::to_string(&Envelope {
                origin: "1-ab".into(),
                change: change.clone(),
            })
            .unwrap();
            let back: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!(back.change, change, "{text}");
            assert_eq!(back.origin, "1-ab");
        }
    }

    #[test]
    fn channels_fit_postgres_identifiers() {
        assert_eq!(channel_for("public"), "fleetdeck.public");
        let long = "s".repeat(63);
        let channel = channel_for(&long);
        assert!(channel.len() <= 63, "{channel}");
        assert_ne!(channel, channel_for(&"t".repeat(63)));
    }
}
