//! The audit log of tool calls: the gateway queues one record per call and a writer task
//! stores them in batches, off the hot path.
//!
//! Nothing acknowledged is lost: a call is answered only once its record is queued, a full
//! queue makes callers wait instead of dropping records, a failing database is retried
//! with backoff, and [`AuditWriter::flush_and_stop`] writes everything still queued.
//!
//! The writer never stops draining its queue for one bad row: an error that retrying cannot
//! fix (the database refusing the data itself: PostgreSQL SQLSTATE classes 22, 23 and 54,
//! SQLite's TOOBIG, CONSTRAINT, MISMATCH and RANGE) is not retried. The batch is written
//! row by row; a refused row is written once more with every text cut to a hard bound and
//! its arguments left out, and only if that is refused too is it dropped, counted
//! (`fleetdeck_audit_records_dropped_total`) and logged once.

use crate::gateway::cache::canonical_json;
use crate::gateway::record::CallRecord;
use crate::store::{Backend, Store, StoreError};
use crate::telemetry::logging::LogLimiter;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// How the audit writer batches and retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// Records the queue holds before `enqueue` waits.
    pub capacity: usize,
    /// Most records written in one transaction.
    pub batch_max: usize,
    /// Longest a record waits for its batch to fill before the batch is written anyway.
    pub flush_every: Duration,
    /// First wait after a failed write; doubled per failure up to `retry_max`.
    pub retry_base: Duration,
    /// Longest wait between retries of a failed write.
    pub retry_max: Duration,
    /// How long a stopping writer keeps retrying a failing database before it gives up and
    /// logs the unwritten records in full (so that shutdown cannot hang forever).
    pub shutdown_grace: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            capacity: 65_536,
            batch_max: 512,
            flush_every: Duration::from_millis(200),
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The gateway's handle on the audit log: cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    sender: mpsc::Sender<CallRecord>,
    depth: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

/// The audit log's state for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditReading {
    /// Records waiting to be written.
    pub depth: usize,
    /// Records the database refused for good, even cut down, since start.
    pub dropped: u64,
}

/// Owns the writer task; stop it with [`AuditWriter::flush_and_stop`].
#[derive(Debug)]
pub struct AuditWriter {
    stop: CancellationToken,
    task: JoinHandle<u64>,
    depth: Arc<AtomicUsize>,
}

impl AuditLog {
    /// Starts the writer task over `store`.
    pub fn start(store: Store, settings: AuditSettings) -> (AuditLog, AuditWriter) {
        let (sender, receiver) = mpsc::channel(settings.capacity.max(1));
        let depth = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let writer = Writer {
            store,
            receiver,
            depth: depth.clone(),
            dropped: dropped.clone(),
            refusals_logged: LogLimiter::every(Duration::from_secs(60)),
            stop: stop.clone(),
            written: 0,
            failing_since_stop: None,
            settings: AuditSettings {
                batch_max: settings.batch_max.max(1),
                ..settings
            },
        };
        let task = tokio::spawn(writer.run());
        (
            AuditLog {
                sender,
                depth: depth.clone(),
                dropped,
            },
            AuditWriter { stop, task, depth },
        )
    }

    /// Queues one record. Waits when the queue is full (back-pressure, never drops): a call
    /// is acknowledged only once its record is queued.
    pub async fn enqueue(&self, record: CallRecord) {
        // Counted before sending, so the writer never subtracts a record not yet counted.
        self.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(record)) = self.sender.send(record).await {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            // Only after shutdown: the record goes to the log rather than nowhere.
            tracing::error!(record = %record.summary(), "audit log already stopped: tool call not recorded");
        }
    }

    /// Records waiting to be written (for the audit-queue-depth metric).
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// The queue depth and the records dropped so far.
    pub fn reading(&self) -> AuditReading {
        AuditReading {
            depth: self.depth(),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

impl AuditWriter {
    /// After the HTTP server stopped: writes everything still queued, then ends. Returns how
    /// many records the writer stored over its whole life.
    pub async fn flush_and_stop(self) -> u64 {
        self.stop.cancel();
        match self.task.await {
            Ok(written) => written,
            Err(error) => {
                tracing::error!(
                    %error,
                    unwritten = self.depth.load(Ordering::Relaxed),
                    "audit writer failed: queued tool calls were not recorded"
                );
                0
            }
        }
    }
}

/// The writer task's state.
struct Writer {
    store: Store,
    receiver: mpsc::Receiver<CallRecord>,
    depth: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    /// Refused records are logged at most once a minute (a flood of bad rows must not
    /// become a flood of log lines).
    refusals_logged: LogLimiter,
    stop: CancellationToken,
    written: u64,
    /// When a write first failed after the stop: the grace period runs once for the whole
    /// drain, not once per batch.
    failing_since_stop: Option<Instant>,
    settings: AuditSettings,
}

impl Writer {
    /// Writes batches until told to stop (or every handle is gone), then drains the queue.
    async fn run(mut self) -> u64 {
        let batch_max = self.settings.batch_max;
        let mut batch = Vec::with_capacity(batch_max);
        loop {
            let received = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                n = self.receiver.recv_many(&mut batch, batch_max) => n,
            };
            if received == 0 {
                break; // Every AuditLog is gone and the queue is empty.
            }
            // Let the batch fill for a moment: fewer, larger transactions under load.
            let deadline = Instant::now() + self.settings.flush_every;
            while batch.len() < batch_max {
                let room = batch_max - batch.len();
                tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => break,
                    _ = tokio::time::sleep_until(deadline) => break,
                    n = self.receiver.recv_many(&mut batch, room) => if n == 0 { break },
                }
            }
            self.write(&mut batch).await;
        }
        // Stopping: refuse new records, then write every record already queued.
        self.receiver.close();
        while self.receiver.recv_many(&mut batch, batch_max).await > 0 {
            self.write(&mut batch).await;
        }
        self.written
    }

    /// Writes the batch, retrying with backoff until it is stored; empties it.
    async fn write(&mut self, batch: &mut Vec<CallRecord>) {
        let mut wait = self.settings.retry_base;
        while !batch.is_empty() {
            let error = match self.store.insert_tool_calls(batch).await {
                Ok(()) => {
                    self.done(batch.len(), true);
                    batch.clear();
                    return;
                }
                Err(error) if is_permanent(&error) => {
                    // One row the database can never take must not hold back the rest.
                    match self.write_one_by_one(batch).await {
                        Ok(()) => return,
                        Err(error) => error,
                    }
                }
                Err(error) => error,
            };
            if self.stop.is_cancelled() {
                let since = *self.failing_since_stop.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.settings.shutdown_grace {
                    for record in batch.iter() {
                        tracing::error!(record = %record.summary(), "audit log stopping: tool call not recorded");
                    }
                    tracing::error!(%error, lost = batch.len(), "audit log gave up writing at shutdown");
                    self.done(batch.len(), false);
                    batch.clear();
                    return;
                }
            }
            tracing::warn!(
                %error,
                records = batch.len(),
                retry_in_ms = wait.as_millis() as u64,
                "audit log write failed; retrying (records are kept)"
            );
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.settings.retry_max);
        }
    }

    /// After a permanent error: writes the records one at a time. A record the database
    /// refuses for good is written once more cut down ([`CallRecord::cut_down`]); refused
    /// again, it is dropped, counted and logged. Written and dropped records leave the
    /// batch; a transient error stops the pass and is returned.
    async fn write_one_by_one(&mut self, batch: &mut Vec<CallRecord>) -> Result<(), StoreError> {
        while let Some(record) = batch.first() {
            match self.insert_one(record).await {
                Ok(()) => self.done(1, true),
                Err(error) if is_permanent(&error) => {
                    let cut = record.cut_down();
                    match self.insert_one(&cut).await {
                        Ok(()) => {
                            self.refusals_logged.note(|| {
                                tracing::warn!(%error, record = %record.summary(), "audit log: the database refused a tool call record; it was stored cut down, without arguments");
                            });
                            self.done(1, true);
                        }
                        Err(again) if is_permanent(&again) => {
                            self.refusals_logged.note(|| {
                                tracing::error!(error = %again, record = %record.summary(), "audit log: the database refused a tool call record even cut down; it is not recorded");
                            });
                            self.dropped.fetch_add(1, Ordering::Relaxed);
                            self.done(1, false);
                        }
                        Err(again) => return Err(again),
                    }
                }
                Err(error) => return Err(error),
            }
            batch.remove(0);
        }
        Ok(())
    }

    async fn insert_one(&self, record: &CallRecord) -> Result<(), StoreError> {
        self.store
            .insert_tool_calls(std::slice::from_ref(record))
            .await
    }

    /// Accounts for `n` records that left the queue (written, or given up on).
    fn done(&mut self, n: usize, written: bool) {
        self.depth.fetch_sub(n, Ordering::Relaxed);
        if written {
            self.written += n as u64;
        }
    }
}

/// Whether retrying cannot help: the database refused the data itself.
fn is_permanent(error: &StoreError) -> bool {
    match error {
        StoreError::Query(sqlx::Error::Database(db)) => {
            let backend = if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                Backend::Sqlite
            } else {
                Backend::Postgres
            };
            !matches!(db.kind(), sqlx::error::ErrorKind::Other)
                || db
                    .code()
                    .is_some_and(|code| refuses_the_data(backend, &code))
        }
        // A value the driver cannot encode: it will never encode.
        StoreError::Query(sqlx::Error::Encode(_)) => true,
        _ => false,
    }
}

/// Whether a database error code says the data itself is refused: PostgreSQL SQLSTATE
/// classes 22 (data exception: a NUL byte, an invalid encoding, a value too long), 23
/// (integrity constraint) and 54 (program limit exceeded: e.g. an index row too large);
/// SQLite's primary result codes TOOBIG (18), CONSTRAINT (19), MISMATCH (20), RANGE (25).
fn refuses_the_data(backend: Backend, code: &str) -> bool {
    match backend {
        // SQLite reports extended codes; the primary one is the low byte.
        Backend::Sqlite => code
            .parse::<i64>()
            .is_ok_and(|extended| matches!(extended & 0xff, 18 | 19 | 20 | 25)),
        Backend::Postgres => ["22", "23", "54"]
            .iter()
            .any(|class| code.starts_with(class)),
    }
}

/// Lower-case hex SHA-256 of the canonical JSON of the arguments (object keys sorted at
/// every depth, so the same arguments always give the same digest regardless of key
/// order; no arguments = digest of `{}`).
pub fn args_digest(arguments: Option<&Map<String, Value>>) -> String {
    let mut hasher = Sha256::new();
    match arguments {
        Some(arguments) => hash_canonical_object(arguments, &mut hasher),
        None => hasher.update(b"{}"),
    }
    // One allocation for the 64 hex digits (this runs once per call).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digest = String::with_capacity(64);
    for byte in hasher.finalize() {
        digest.push(char::from(HEX[usize::from(byte >> 4)]));
        digest.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    digest
}

/// Feeds the canonical JSON of an object to the hasher without building the text (this
/// runs on the hot path, once per call). Same bytes as [`canonical_json`].
fn hash_canonical_object(map: &Map<String, Value>, hasher: &mut Sha256) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    hasher.update(b"{");
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        hash_json_string(key, hasher);
        hasher.update(b":");
        hash_canonical(value, hasher);
    }
    hasher.update(b"}");
}

fn hash_canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => hash_canonical_object(map, hasher),
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hash_canonical(item, hasher);
            }
            hasher.update(b"]");
        }
        Value::String(text) => hash_json_string(text, hasher),
        // Null, booleans and numbers print the same wherever they are.
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

/// Feeds a string as JSON (quoted and escaped, as serde_json writes it).
fn hash_json_string(text: &str, hasher: &mut Sha256) {
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut *hasher, text);
}

/// Longest arguments text an audit row keeps (a caller may send megabytes).
pub const MAX_RECORDED_ARGUMENTS_BYTES: usize = 16 * 1024;

/// The arguments as JSON with the value of every key named in `redact` (case-insensitive,
/// at any depth, inside arrays too) replaced by `"[redacted]"`; keys sorted as in
/// [`args_digest`]. No arguments = `{}`. Longer than [`MAX_RECORDED_ARGUMENTS_BYTES`], it
/// becomes `{"truncated_from_bytes": N, "start": "<the first bytes of that JSON>"}` (still
/// JSON; the digest covers the whole).
pub fn redacted_arguments(arguments: Option<&Map<String, Value>>, redact: &[String]) -> String {
    let Some(arguments) = arguments else {
        return "{}".to_string();
    };
    let mut value = Value::Object(arguments.clone());
    if !redact.is_empty() {
        redact_in(&mut value, redact);
    }
    let text = canonical_json(&value);
    if text.len() <= MAX_RECORDED_ARGUMENTS_BYTES {
        return text;
    }
    // Room for the wrapper and the escaping of the start.
    let start = crate::sanitize::bounded(&text, MAX_RECORDED_ARGUMENTS_BYTES / 2);
    serde_json::json!({ "truncated_from_bytes": text.len(), "start": start }).to_string()
}

fn redact_in(value: &mut Value, redact: &[String]) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if redact.iter().any(|name| same_key(key, name)) {
                    *inner = Value::String(REDACTED.to_string());
                } else {
                    redact_in(inner, redact);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_in(item, redact)),
        _ => {}
    }
}

/// Case-insensitive comparison of key names, without allocating.
fn same_key(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::record::Outcome;
    use crate::store::test_support::each_backend;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    fn record(n: usize) -> CallRecord {
        CallRecord {
            at_ms: n as i64,
            assistant: format!("assistant-{}", n % 3),
            server: "search".into(),
            tool: "query".into(),
            instance: Some("search-1".into()),
            outcome: Outcome::Ok,
            cache_hit: false,
            cacheable: false,
            duration: Duration::from_millis(3),
            attempts: 1,
            trace_id: None,
            args_digest: args_digest(None),
            arguments: None,
            error: None,
            known_tool: true,
        }
    }

    /// Settings that make tests quick: a short fill window and fast retries.
    fn quick(capacity: usize, batch_max: usize) -> AuditSettings {
        AuditSettings {
            capacity,
            batch_max,
            flush_every: Duration::from_millis(20),
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_digest_ignores_key_order_and_tells_values_apart() {
        let a = object(json!({"b": 1, "a": {"y": [1, {"q": "x", "p": 2}], "x": null}}));
        let b = object(json!({"a": {"x": null, "y": [1, {"p": 2, "q": "x"}]}, "b": 1}));
        assert_eq!(args_digest(Some(&a)), args_digest(Some(&b)));
        let changed = object(json!({"a": {"x": null, "y": [1, {"p": 2, "q": "y"}]}, "b": 1}));
        assert_ne!(args_digest(Some(&a)), args_digest(Some(&changed)));
        assert_ne!(
            args_digest(Some(&object(json!({"a": 1})))),
            args_digest(Some(&object(json!({"a": "1"}))))
        );
    }

    #[test]
    fn the_digest_is_sha256_of_the_canonical_json() {
        // Known answer: SHA-256 of the two bytes `{}`.
        let empty = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert_eq!(args_digest(None), empty);
        assert_eq!(args_digest(Some(&Map::new())), empty);
        let args = object(json!({"z": "quote \" and \u{e9}\n", "a": [1.5, -2, true, null]}));
        let text = canonical_json(&Value::Object(args.clone()));
        let expected: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(args_digest(Some(&args)), expected);
        assert_eq!(expected.len(), 64);
    }

    #[test]
    fn redaction_reaches_every_depth_and_array_and_ignores_case() {
        let args = object(json!({
            "query": "weather",
            "Password": "hunter2",
            "auth": {"API_KEY": "k-123", "user": "ann"},
            "items": [{"token": "t-1", "n": 1}, [{"Token": {"nested": "t-2"}}]]
        }));
        let redact = vec!["password".to_string(), "api_key".into(), "TOKEN".into()];
        let text = redacted_arguments(Some(&args), &redact);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({
                "query": "weather",
                "Password": REDACTED,
                "auth": {"API_KEY": REDACTED, "user": "ann"},
                "items": [{"token": REDACTED, "n": 1}, [{"Token": REDACTED}]]
            })
        );
        for secret in ["hunter2", "k-123", "t-1", "t-2"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        // Same canonical order as the digest.
        assert!(
            text.starts_with(r#"{"Password":"[redacted]","auth":"#),
            "{text}"
        );
    }

    #[test]
    fn huge_arguments_are_kept_as_their_start_in_valid_json() {
        let args = object(json!({"blob": "x".repeat(3 * MAX_RECORDED_ARGUMENTS_BYTES)}));
        let text = redacted_arguments(Some(&args), &[]);
        assert!(text.len() <= MAX_RECORDED_ARGUMENTS_BYTES, "{}", text.len());
        let value: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            value["truncated_from_bytes"],
            json!(3 * MAX_RECORDED_ARGUMENTS_BYTES + r#"{"blob":""}"#.len())
        );
        assert!(
            value["start"]
                .as_str()
                .unwrap()
                .starts_with(r#"{"blob":"xxx"#)
        );
    }

    #[test]
    fn without_keys_to_redact_the_arguments_are_kept_whole() {
        let args = object(json!({"b": {"password": "x"}, "a": 1}));
        assert_eq!(
            redacted_arguments(Some(&args), &[]),
            r#"{"a":1,"b":{"password":"x"}}"#
        );
        assert_eq!(redacted_arguments(None, &["password".into()]), "{}");
    }

    each_backend! {
        async fn records_from_concurrent_callers_are_all_written(store) {
            let (log, writer) = AuditLog::start(store.clone(), quick(256, 64));
            let tasks: Vec<_> = (0..8)
                .map(|task| {
                    let log = log.clone();
                    tokio::spawn(async move {
                        for i in 0..125 {
                            log.enqueue(record(task * 125 + i)).await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(writer.flush_and_stop().await, 1000);
            assert_eq!(store.tool_call_count_for_test().await, 1000);
            assert_eq!(log.depth(), 0);
        }
    }

    each_backend! {
        async fn records_queued_just_before_stopping_are_written(store) {
            // A fill window far longer than the test: only the stop can make the writer write.
            let settings = AuditSettings {
                flush_every: Duration::from_secs(3600),
                ..quick(1024, 512)
            };
            let (log, writer) = AuditLog::start(store.clone(), settings);
            for i in 0..37 {
                log.enqueue(record(i)).await;
            }
            assert_eq!(log.depth(), 37);
            assert_eq!(writer.flush_and_stop().await, 37);
            assert_eq!(store.tool_call_count_for_test().await, 37);
            assert_eq!(log.depth(), 0);
            // After the stop nothing is queued any more (and nothing hangs).
            log.enqueue(record(99)).await;
            assert_eq!(log.depth(), 0);
            assert_eq!(store.tool_call_count_for_test().await, 37);
        }
    }

    each_backend! {
        async fn a_full_queue_makes_callers_wait_instead_of_dropping(store) {
            let (log, writer) = AuditLog::start(store.clone(), quick(4, 2));
            let tasks: Vec<_> = (0..4)
                .map(|task| {
                    let log = log.clone();
                    tokio::spawn(async move {
                        for i in 0..50 {
                            log.enqueue(record(task * 50 + i)).await;
                            assert!(log.depth() <= 4 + 2 + 4, "bounded queue");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(writer.flush_and_stop().await, 200);
            assert_eq!(store.tool_call_count_for_test().await, 200);
        }
    }

    each_backend! {
        async fn a_failing_database_is_retried_until_the_records_land(store) {
            // Writes fail while the table is away ("no such table": worth retrying).
            store
                .execute_sql_for_test("ALTER TABLE tool_calls RENAME TO tool_calls_away")
                .await
                .unwrap();
            let (log, writer) = AuditLog::start(store.clone(), quick(64, 16));
            for i in 0..10 {
                log.enqueue(record(i)).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert_eq!(log.depth(), 10, "kept while failing");
            store
                .execute_sql_for_test("ALTER TABLE tool_calls_away RENAME TO tool_calls")
                .await
                .unwrap();
            assert_eq!(writer.flush_and_stop().await, 10);
            assert_eq!(store.tool_call_count_for_test().await, 10);
            assert_eq!(log.depth(), 0);
        }
    }

    each_backend! {
        async fn a_record_the_database_refuses_for_good_does_not_hold_back_the_rest(store) {
            // A NOT NULL violation raised for one assistant stands in for a record that can
            // never be stored.
            let trigger = match store.backend() {
                crate::store::Backend::Sqlite => {
                    "CREATE TABLE poison_sink (v TEXT NOT NULL); \
                     CREATE TRIGGER poison BEFORE INSERT ON tool_calls WHEN NEW.assistant = 'poison' \
                     BEGIN INSERT INTO poison_sink (v) VALUES (NULL); END;"
                }
                crate::store::Backend::Postgres => {
                    "CREATE TABLE poison_sink (v TEXT NOT NULL); \
                     CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                     IF NEW.assistant = 'poison' THEN INSERT INTO poison_sink (v) VALUES (NULL); \
                     END IF; RETURN NEW; END $$; \
                     CREATE TRIGGER poison BEFORE INSERT ON tool_calls \
                     FOR EACH ROW EXECUTE FUNCTION poison();"
                }
            };
            store.execute_sql_for_test(trigger).await.unwrap();
            let (log, writer) = AuditLog::start(store.clone(), quick(64, 16));
            for i in 0..5 {
                let mut r = record(i);
                if i == 2 {
                    r.assistant = "poison".into();
                }
                log.enqueue(r).await;
            }
            assert_eq!(writer.flush_and_stop().await, 4);
            assert_eq!(store.tool_call_count_for_test().await, 4);
            // Refused whole and cut down: dropped, and counted.
            assert_eq!(log.reading(), AuditReading { depth: 0, dropped: 1 });
        }
    }

    each_backend! {
        async fn a_nul_or_an_oversized_name_does_not_stop_the_writer(store) {
            // What a hostile caller could get into a record before names were checked at
            // the edge: PostgreSQL refuses NUL in text (22021) and index rows over ~2.7 KB
            // (54000); SQLite takes both. Either way every record is written, and the
            // queue keeps draining.
            let (log, writer) = AuditLog::start(store.clone(), quick(64, 16));
            let mut nul = record(0);
            nul.tool = "que\0ry".into();
            nul.error = Some("bad\0 error".into());
            log.enqueue(nul).await;
            let mut huge = record(1);
            huge.tool = "t".repeat(3000);
            log.enqueue(huge).await;
            for i in 2..1002 {
                log.enqueue(record(i)).await;
            }
            assert_eq!(writer.flush_and_stop().await, 1002);
            assert_eq!(store.tool_call_count_for_test().await, 1002);
            assert_eq!(log.reading(), AuditReading { depth: 0, dropped: 0 });
        }
    }

    #[test]
    fn the_database_refusing_the_data_is_told_from_a_passing_failure() {
        use crate::store::Backend::{Postgres, Sqlite};
        for code in ["22021", "22001", "22P05", "23502", "54000"] {
            assert!(refuses_the_data(Postgres, code), "{code}");
        }
        for code in ["40001", "57P01", "08006", "53300", "55P03"] {
            assert!(!refuses_the_data(Postgres, code), "{code}");
        }
        for code in ["18", "19", "275", "2067", "20", "25"] {
            assert!(refuses_the_data(Sqlite, code), "{code}");
        }
        for code in ["5", "517", "10", "14", "6"] {
            assert!(!refuses_the_data(Sqlite, code), "{code}");
        }
    }

    #[test]
    fn a_cut_down_record_is_bounded_and_keeps_what_counts() {
        let mut r = record(5);
        r.tool = format!("x\0{}", "y".repeat(5000));
        r.arguments = Some("{\"secret\":1}".into());
        r.error = Some("e".repeat(5000));
        let cut = r.cut_down();
        assert!(
            cut.tool.len() <= 64 && !cut.tool.contains('\0'),
            "{}",
            cut.tool
        );
        assert_eq!(cut.arguments, None);
        assert!(cut.error.as_ref().unwrap().len() < 400);
        assert_eq!(
            (cut.at_ms, cut.outcome, cut.attempts),
            (r.at_ms, r.outcome, r.attempts)
        );
        assert_eq!(cut.args_digest, r.args_digest);
    }

    each_backend! {
        async fn a_stopping_writer_gives_up_after_one_grace_period(store) {
            store
                .execute_sql_for_test("DROP TABLE tool_calls")
                .await
                .unwrap();
            let grace = Duration::from_millis(500);
            let settings = AuditSettings {
                shutdown_grace: grace,
                ..quick(64, 2)
            };
            let (log, writer) = AuditLog::start(store, settings);
            for i in 0..10 {
                log.enqueue(record(i)).await;
            }
            let started = Instant::now();
            let stopped = tokio::time::timeout(Duration::from_secs(10), writer.flush_and_stop()).await;
            assert_eq!(stopped.expect("shutdown does not hang"), 0);
            assert_eq!(log.depth(), 0);
            // Five batches share one grace period (one each would take 2.5 s).
            let took = started.elapsed();
            assert!(took >= grace && took < grace * 5, "{took:?}");
        }
    }
}
