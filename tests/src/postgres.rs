//! A fresh PostgreSQL schema per test, so that tests sharing one database do not see each
//! other's rows, dropped again when the test ends.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The database the tests use unless `FLEETDECK_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long connecting (and dropping a schema) may take before the test fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The test database: `$FLEETDECK_TEST_POSTGRES_URL`, else [`DEFAULT_POSTGRES_URL`].
pub fn postgres_url() -> String {
    std::env::var("FLEETDECK_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string())
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `url` with the libpq `options` parameter that makes `schema` the search path (the
/// schema where Fleetdeck creates its tables).
pub fn url_with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Connects to `url`, failing the test with a clear message when PostgreSQL is not there.
async fn connect(url: &str) -> PgConnection {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => panic!(
            "PostgreSQL at {} is unreachable ({error}); these tests need it (trust auth, \
             database `test`; set FLEETDECK_TEST_POSTGRES_URL to use another one)",
            redacted(url)
        ),
        Err(_) => panic!(
            "PostgreSQL at {} did not answer within {CONNECT_TIMEOUT:?}; these tests need it \
             (set FLEETDECK_TEST_POSTGRES_URL to use another one)",
            redacted(url)
        ),
    }
}

/// A uniquely named, empty schema in the test database, dropped (with everything in it)
/// when this value is dropped.
pub struct PgSchema {
    base_url: String,
    name: String,
}

impl PgSchema {
    /// Creates a fresh schema; panics (fails the test) when PostgreSQL is unreachable.
    pub async fn create() -> PgSchema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base_url = postgres_url();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        // Lower-case letters, digits and `_`: a plain identifier, no quoting needed in URLs.
        let name = format!(
            "fleetdeck_test_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = connect(&base_url).await;
        sqlx::query(&format!("CREATE SCHEMA \"{name}\""))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("CREATE SCHEMA {name}: {e}"));
        let _ = connection.close().await;
        PgSchema { base_url, name }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database URL for `fleetdeck --database-url`: the test database with this schema
    /// as the search path.
    pub fn url(&self) -> String {
        url_with_search_path(&self.base_url, &self.name)
    }

    /// Whether a table of this name exists in the schema.
    pub async fn has_table(&self, table: &str) -> bool {
        let mut connection = connect(&self.base_url).await;
        let found: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
        )
        .bind(&self.name)
        .bind(table)
        .fetch_optional(&mut connection)
        .await
        .expect("query information_schema");
        let _ = connection.close().await;
        found.is_some()
    }
}

impl Drop for PgSchema {
    /// Drops the schema, blocking: on a thread of its own with its own runtime, since the
    /// test's runtime may be a current-thread one that this very thread is driving.
    fn drop(&mut self) {
        let (url, name) = (self.base_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut connection =
                    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&url))
                        .await
                        .map_err(|_| "connect timed out".to_string())?
                        .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .execute(&mut connection)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = connection.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            // Not a panic: a drop may run while the test is already failing.
            Ok(Err(error)) => eprintln!("could not drop schema {}: {error}", self.name),
            Err(_) => eprintln!("dropping schema {} panicked", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_path_goes_into_the_options_parameter() {
        assert_eq!(
            url_with_search_path("postgres://postgres@127.0.0.1:5432/test", "s1"),
            "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Ds1"
        );
        assert_eq!(
            url_with_search_path("postgres://u@h/db?sslmode=disable", "s2"),
            "postgres://u@h/db?sslmode=disable&options=-c%20search_path%3Ds2"
        );
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redacted("postgres://user:secret@host/db"),
            "postgres://user:***@host/db"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
    }
}
