//! Persistence: one `Store` API over sqlx, whatever the backend.
//!
//! Callers see only `Store` and its record types. Each operation is written once and run on
//! the backend's pool through [`on_pool!`]; SQL here sticks to what SQLite and PostgreSQL
//! share (`$n` placeholders, integer milliseconds for time), so that a PostgreSQL backend
//! is one more `Db` variant with its own migrations, not a change to any caller.

mod admin_audit;
pub(crate) mod assistants;
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

pub use sessions::SessionBackend;
pub use tool_calls::{AuditCursor, AuditQueryError, MAX_CHUNK};
pub use users::{RoleChange, UserRecord};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no backend Fleetdeck has.
    #[error("unsupported DATABASE_URL {0:?}: expected sqlite://PATH")]
    UnsupportedUrl(String),
    /// The data directory cannot hold the database.
    #[error("data dir {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
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
    /// An embedded SQLite file (the default).
    Sqlite,
}

impl Backend {
    /// The backend's name as shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A connection pool of one backend.
#[derive(Clone, Debug)]
enum Db {
    Sqlite(sqlx::SqlitePool),
}

/// Runs the same sqlx expression on whichever pool backs the store.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The store: users, sessions, the audit log, and (later) the fleet's persisted state.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

/// The file name of the SQLite database inside the data dir.
pub const SQLITE_FILE: &str = "fleetdeck.db";

/// The default `DATABASE_URL`: a SQLite file in the data dir.
pub fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join(SQLITE_FILE).display())
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`.
    ///
    /// A file that is not a database, or a data dir that cannot be used, is refused before
    /// anything is written.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.to_string()))?;
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
        };
        store.session_backend().migrate().await?;
        Ok(store)
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await)?;
        Ok(())
    }

    /// The session store sharing this database, for tower-sessions.
    pub fn session_backend(&self) -> SessionBackend {
        match &self.db {
            Db::Sqlite(pool) => SessionBackend::sqlite(pool.clone()),
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
    async fn other_urls_are_refused_with_the_expected_form() {
        let err = Store::open("mysql://localhost/x").await.unwrap_err();
        assert!(err.to_string().contains("expected sqlite://PATH"), "{err}");
    }
}
