//! Persistence: one `Store` API over sqlx, whatever the backend.
//!
//! Callers see only `Store` and its record types. Each operation is written once and run on
//! the backend's pool through [`on_pool!`]; SQL here sticks to what SQLite and PostgreSQL
//! share (`$n` placeholders, integer milliseconds for time, byte-wise text order), and each
//! backend has its own migrations (`migrations/sqlite`, `migrations/postgres`).
//!
//! Changes other replicas must apply (admin states, runtime instances, access, cache
//! invalidations) are announced with [`StoreChange`] inside the transaction that makes them:
//! on PostgreSQL a `NOTIFY` delivered at commit, on SQLite (one process) nothing.

mod admin_audit;
pub(crate) mod assistants;
mod changes;
mod fleet_state;
mod roi;
mod series;

pub use assistants::{AccessRecords, AssistantRecord, DeclaredAssistant};

pub use admin_audit::AdminAction;
pub use fleet_state::FleetInstanceRecord;
pub use roi::StoredRoiInputs;
pub use series::FleetEventRecord;
mod sessions;
mod tool_calls;
mod traces;
mod users;

pub use changes::{ChangeListener, ListenEvent, StoreChange};
pub use sessions::SessionBackend;
pub use tool_calls::{AuditCursor, AuditQueryError, MAX_CHUNK};
pub use users::{RoleChange, UserRecord};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no backend Fleetdeck has.
    #[error(
        "unsupported DATABASE_URL {0:?}: expected sqlite://PATH or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
    /// The data directory cannot hold the database.
    #[error("data dir {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A PostgreSQL URL whose `search_path` names no existing schema.
    #[error("{0}: the search_path names no existing schema (create it first)")]
    NoSchema(String),
    /// The session table cannot live under this schema name.
    #[error("sessions: {0}")]
    Sessions(String),
    /// The database file exists but is not a database of this backend.
    #[error("{0} is not a SQLite database (refusing to touch it)")]
    NotADatabase(PathBuf),
    /// The database could not be opened.
    #[error("cannot open {url}: {source}")]
    Open {
        /// The URL, without credentials.
        url: String,
        /// The driver's reason.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change would break an invariant (a duplicate name, the last admin).
    #[error("{0}")]
    Conflict(String),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// An audit query's filters or page are invalid (the caller's mistake, not the store's).
    #[error("{0}")]
    InvalidQuery(#[from] AuditQueryError),
}

/// Which database backs the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (the default; one replica).
    Sqlite,
    /// A PostgreSQL database (shared by any number of replicas).
    Postgres,
}

impl Backend {
    /// The backend's name as shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool of one backend.
#[derive(Clone, Debug)]
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs the same sqlx expression on whichever pool backs the store.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Implements a trait for both backends' connection types from one body: statements shared
/// by several operations are written once and type-checked against each driver.
macro_rules! impl_for_connections {
    ($trait:path { $($body:tt)* }) => {
        impl $trait for sqlx::SqliteConnection { $($body)* }
        impl $trait for sqlx::PgConnection { $($body)* }
    };
}
pub(crate) use impl_for_connections;

/// Makes an open transaction's reads one consistent snapshot: SQLite's read transactions
/// already are; PostgreSQL's default (READ COMMITTED) gives each statement its own.
pub(crate) trait SnapshotReads {
    /// Must be the transaction's first statement.
    async fn snapshot_reads(&mut self) -> Result<(), sqlx::Error>;
}

impl SnapshotReads for sqlx::SqliteConnection {
    async fn snapshot_reads(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl SnapshotReads for sqlx::PgConnection {
    async fn snapshot_reads(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(self)
            .await?;
        Ok(())
    }
}

/// The store: users, sessions, access, the audit logs, the fleet's persisted state,
/// telemetry.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// The PostgreSQL schema the tables live in (empty on SQLite); it names the channel of
    /// change notifications, so that stores in other schemas do not hear them.
    schema: Arc<str>,
    /// This process's id in the change notifications it sends.
    origin: Arc<str>,
}

/// PostgreSQL connections a store keeps at most, unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The file name of the SQLite database inside the data dir.
pub const SQLITE_FILE: &str = "fleetdeck.db";

/// The default `DATABASE_URL`: a SQLite file in the data dir.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join(SQLITE_FILE).display())
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`: `sqlite://PATH` or
    /// `postgres://…` (`postgresql://…`).
    ///
    /// A SQLite file that is not a database, or a data dir that cannot be used, is refused
    /// before anything is written.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// [`Store::open`], with at most `max_connections` PostgreSQL connections in the pool
    /// (SQLite keeps its own small pool: it has one writer anyway).
    pub async fn open_with(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Store::open_postgres(url, max_connections).await;
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        let path = PathBuf::from(path.split('?').next().unwrap_or(path));
        prepare_sqlite_file(&path)?;

        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Open {
                url: url.to_string(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: url.to_string(),
                source,
            })?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        let store = Store {
            db: Db::Sqlite(pool),
            schema: Arc::from(""),
            origin: changes::new_origin(),
        };
        store.session_backend().migrate().await?;
        Ok(store)
    }

    /// Opens a PostgreSQL database. Its tables (the sessions' too) go in the connection's
    /// current schema: `public`, or the first of a `search_path` given in the URL's libpq
    /// `options` (`?options=-c%20search_path%3Dfleetdeck`). Replicas starting together
    /// migrate one at a time (sqlx holds an advisory lock while it migrates).
    async fn open_postgres(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            url: redact_url(url),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(open_error)?;
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
            .map_err(open_error)?;
        let Some(schema) = schema else {
            return Err(StoreError::NoSchema(redact_url(url)));
        };
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let store = Store {
            db: Db::Postgres(pool.clone()),
            schema: Arc::from(schema.as_str()),
            origin: changes::new_origin(),
        };
        // The session table comes with the migrations (0007); this checks the schema's name.
        SessionBackend::postgres(pool, &schema)?;
        Ok(store)
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// This process's id in change notifications (tells replicas apart in logs).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// The session store sharing this database, for tower-sessions.
    pub fn session_backend(&self) -> SessionBackend {
        match &self.db {
            Db::Sqlite(pool) => SessionBackend::sqlite(pool.clone()),
            Db::Postgres(pool) => SessionBackend::postgres(pool.clone(), &self.schema)
                .expect("the schema name was accepted at open"),
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await);
    }
}

/// Makes sure a SQLite file can be created or opened at `path` without damaging anything:
/// the parent directory exists (created if missing) and an existing file is a SQLite file.
fn prepare_sqlite_file(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir_error = |reason: String| StoreError::DataDir {
        path: dir.to_path_buf(),
        reason,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(dir_error("exists but is not a directory".into()));
        }
        Ok(meta) if meta.permissions().readonly() => return Err(dir_error("is read-only".into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| dir_error(format!("cannot create it: {e}")))?
        }
        Err(e) => return Err(dir_error(e.to_string())),
    }
    match std::fs::File::open(path) {
        Ok(mut file) => {
            use std::io::Read;
            let mut header = [0u8; 16];
            let read = file
                .read(&mut header)
                .map_err(|e| dir_error(format!("cannot read {}: {e}", path.display())))?;
            // An empty file is what SQLite itself creates; anything else must carry the magic.
            if read > 0 && (read < header.len() || &header != b"SQLite format 3\0") {
                return Err(StoreError::NotADatabase(path.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(dir_error(format!("cannot open {}: {e}", path.display()))),
    }
}

/// A database URL fit for messages and logs: a password, in the user part or as the
/// `password` query parameter, replaced by `…`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let hidden = if userinfo.contains(':') { ":…" } else { "" };
            format!("{user}{hidden}@{host}")
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=…"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Now, in Unix milliseconds: the store's one representation of time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A fresh SQLite store in a temporary directory (kept alive by the returned guard).
    pub async fn temp_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&default_database_url(dir.path()))
            .await
            .expect("open store");
        (store, dir)
    }

    /// The PostgreSQL the tests use: `FLEETDECK_TEST_POSTGRES_URL`, else the local one.
    pub fn postgres_base_url() -> String {
        std::env::var("FLEETDECK_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
    }

    /// A schema of its own for one test, dropped (with everything in it) when this is.
    pub struct PgSchema {
        base: String,
        /// The schema's name.
        pub name: String,
    }

    impl PgSchema {
        /// Creates a uniquely named schema; fails the test if PostgreSQL is unreachable.
        pub async fn create() -> PgSchema {
            use sqlx::Connection;
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let base = postgres_base_url();
            let name = format!(
                "fdtest_{}_{}_{:08x}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                fastrand::u32(..)
            );
            let mut conn = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
                panic!("PostgreSQL at {base} is needed by the store tests (set FLEETDECK_TEST_POSTGRES_URL): {e}")
            });
            sqlx::query(&format!("CREATE SCHEMA \"{name}\""))
                .execute(&mut conn)
                .await
                .expect("create test schema");
            let _ = conn.close().await;
            PgSchema { base, name }
        }

        /// The database URL of a store living in this schema (its sessions are named after
        /// the schema, so that clean-up finds them).
        pub fn url(&self) -> String {
            let separator = if self.base.contains('?') { '&' } else { '?' };
            format!(
                "{}{separator}options=-c%20search_path%3D{name}&application_name={name}",
                self.base,
                name = self.name
            )
        }
    }

    impl Drop for PgSchema {
        fn drop(&mut self) {
            let (base, name) = (self.base.clone(), self.name.clone());
            // Drop may run inside a runtime: do the blocking clean-up on a thread of its own.
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&base).await?;
                    // The test's own sessions may still hold locks (a transaction a failed
                    // assertion dropped is rolled back only when its runtime runs again).
                    sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1",
                    )
                    .bind(&name)
                    .execute(&mut conn)
                    .await?;
                    sqlx::query("SET lock_timeout = '10s'")
                        .execute(&mut conn)
                        .await?;
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .execute(&mut conn)
                        .await?;
                    conn.close().await
                })
            });
            if let Ok(Err(error)) = cleanup.join() {
                eprintln!("could not drop test schema {}: {error}", self.name);
            }
        }
    }

    /// A fresh PostgreSQL store in a schema of its own (dropped with the returned guard).
    pub async fn postgres_store() -> (Store, PgSchema) {
        let schema = PgSchema::create().await;
        let store = Store::open(&schema.url()).await.expect("open store");
        (store, schema)
    }

    /// Defines a store test once and runs it on each backend, as `<name>::sqlite` and
    /// `<name>::postgres`, each on a fresh, empty store bound to `$store`.
    macro_rules! each_backend {
        ($(async fn $name:ident($store:ident) $body:block)*) => {$(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    let (store, _guard) = $crate::store::test_support::temp_store().await;
                    let $store = store;
                    $body
                }

                #[tokio::test]
                async fn postgres() {
                    let (store, _guard) = $crate::store::test_support::postgres_store().await;
                    let $store = store;
                    $body
                }
            }
        )*};
    }
    pub(crate) use each_backend;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opening_creates_and_migrates_a_fresh_database() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let store = Store::open(&default_database_url(&data)).await.unwrap();
        store.ping().await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        assert!(data.join(SQLITE_FILE).is_file());
        store.close().await;
        // Opening again finds the schema in place.
        Store::open(&default_database_url(&data))
            .await
            .unwrap()
            .ping()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_file_that_is_not_sqlite_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(SQLITE_FILE);
        std::fs::write(&file, b"these are not the bytes of a database").unwrap();
        let err = Store::open(&default_database_url(dir.path()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotADatabase(_)), "{err}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            b"these are not the bytes of a database"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "nothing else was created: {names:?}");
    }

    #[tokio::test]
    async fn a_data_dir_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("data");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let err = Store::open(&default_database_url(&not_a_dir))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("exists but is not a directory"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn postgres_is_opened_migrated_and_reopened_in_its_schema() {
        let schema = test_support::PgSchema::create().await;
        let store = Store::open(&schema.url()).await.unwrap();
        store.ping().await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        assert_eq!(&*store.schema, schema.name);
        let Db::Postgres(pool) = &store.db else {
            unreachable!()
        };
        // Tables and sessions live in the test's schema, nowhere else.
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 \
             ORDER BY 1",
        )
        .bind(&schema.name)
        .fetch_all(pool)
        .await
        .unwrap();
        for table in ["_sqlx_migrations", "session", "tool_calls", "users"] {
            assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
        }
        store.close().await;
        Store::open(&schema.url())
            .await
            .unwrap()
            .ping()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn replicas_starting_together_share_one_schema_and_its_sessions() {
        use tower_sessions::session::{Id, Record};
        use tower_sessions::session_store::SessionStore;
        let schema = test_support::PgSchema::create().await;
        let url = schema.url();
        let (a, b) = tokio::join!(Store::open(&url), Store::open(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut record = Record {
            id: Id::default(),
            data: [("user".to_string(), serde_json::json!(7))].into(),
            expiry_date: tower_sessions::cookie::time::OffsetDateTime::now_utc()
                + tower_sessions::cookie::time::Duration::hours(1),
        };
        a.session_backend().create(&mut record).await.unwrap();
        let seen = b.session_backend().load(&record.id).await.unwrap();
        assert_eq!(seen.map(|r| r.data), Some(record.data.clone()));
        b.session_backend().delete(&record.id).await.unwrap();
        assert_eq!(a.session_backend().load(&record.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_search_path_without_an_existing_schema_is_refused() {
        let url = format!(
            "{}?options=-c%20search_path%3Dfleetdeck_no_such_schema",
            test_support::postgres_base_url()
        );
        let err = Store::open(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::NoSchema(_)), "{err}");
        assert!(err.to_string().contains("create it first"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_postgres_names_the_url_without_its_password() {
        let err = Store::open("postgres://fleet:s3cret@127.0.0.1:1/fleet")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("postgres://fleet:…@127.0.0.1:1/fleet"),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn urls_are_redacted_for_messages() {
        assert_eq!(
            redact_url("postgres://u:p@h:5432/d?x=1"),
            "postgres://u:…@h:5432/d?x=1"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            redact_url("postgres://u@h/d?password=p&sslmode=require"),
            "postgres://u@h/d?password=…&sslmode=require"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/x.db"),
            "sqlite:///var/lib/x.db"
        );
    }

    #[tokio::test]
    async fn other_urls_are_refused_with_the_expected_form() {
        let err = Store::open("mysql://localhost/x").await.unwrap_err();
        assert!(err.to_string().contains("expected sqlite://PATH"), "{err}");
    }
}
