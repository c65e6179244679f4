//! Dashboard sessions in the store's own database, so they survive restarts and are shared
//! by replicas.

use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// The tower-sessions store of the backend in use.
#[derive(Clone, Debug)]
pub enum SessionBackend {
    /// Sessions in the SQLite database.
    Sqlite(SqliteStore),
    /// Sessions in the PostgreSQL schema of the store (shared by every replica).
    Postgres(PostgresStore),
}

impl SessionBackend {
    pub(super) fn sqlite(pool: sqlx::SqlitePool) -> Self {
        SessionBackend::Sqlite(SqliteStore::new(pool))
    }

    /// Sessions in table `session` of `schema`, beside the store's own tables.
    pub(super) fn postgres(pool: sqlx::PgPool, schema: &str) -> Result<Self, super::StoreError> {
        PostgresStore::new(pool)
            .with_schema_name(schema)
            .map(SessionBackend::Postgres)
            .map_err(super::StoreError::Sessions)
    }

    /// Creates the session table if missing.
    pub(super) async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            SessionBackend::Sqlite(store) => store.migrate().await,
            SessionBackend::Postgres(store) => store.migrate().await,
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(store) => store.create(record).await,
            SessionBackend::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(store) => store.save(record).await,
            SessionBackend::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionBackend::Sqlite(store) => store.load(id).await,
            SessionBackend::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(store) => store.delete(id).await,
            SessionBackend::Postgres(store) => store.delete(id).await,
        }
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(store) => store.delete_expired().await,
            SessionBackend::Postgres(store) => store.delete_expired().await,
        }
    }
}
