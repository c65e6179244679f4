//! The audit log of tool calls and the queries over both audit trails: batched inserts from
//! the audit writer, filtered pages for the Audit page, keyset chunks for its CSV export, and
//! call counts for the Assistants page.
//!
//! Filters become fixed SQL fragments with numbered placeholders; user text is only ever a
//! bound parameter.

use super::{SnapshotReads, Store, StoreError, on_pool};
use crate::gateway::record::{CallRecord, Outcome};
use app::wire::{AdminActionEntry, AuditKind, AuditQuery, ToolCallEntry};

/// The largest page the Audit page may ask for.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The largest chunk an export may read at once.
pub const MAX_CHUNK: u32 = 1000;

/// Columns bound per inserted row.
const INSERT_COLUMNS: usize = 13;

/// Rows per multi-row INSERT statement (13 parameters each). Small on purpose: sqlx binds
/// each `$n` by asking SQLite for its name, which walks the statement's parameter list, so
/// binding costs grow with the square of the parameters (at 500 rows it took 12% of the
/// gateway's CPU under load). Batches take several statements in one transaction.
const ROWS_PER_INSERT: usize = 16;

/// Why an audit query was refused (the dashboard answers these with a 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditQueryError {
    /// Pages count from 1.
    #[error("page must be 1 or more (got {0})")]
    Page(u32),
    /// The page size is out of range.
    #[error("page_size must be between 1 and {MAX_PAGE_SIZE} (got {0})")]
    PageSize(u32),
    /// The outcome filter names no outcome.
    #[error("unknown outcome {0:?}: expected one of {names}", names = outcome_names())]
    Outcome(String),
    /// The tool filter is neither `<server>__<tool>` nor a server name.
    #[error("tool filter {0:?}: expected <server>__<tool> or a server name")]
    Tool(String),
    /// The time range ends before it starts.
    #[error("from_ms ({from}) must not be after to_ms ({to})")]
    TimeRange {
        /// Start (inclusive).
        from: i64,
        /// End (exclusive).
        to: i64,
    },
}

/// The outcome names, comma separated, for messages.
fn outcome_names() -> String {
    Outcome::ALL.map(Outcome::as_str).join(", ")
}

/// A position in newest-first order: the next chunk starts after this row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditCursor {
    /// The row's time (Unix ms).
    pub at_ms: i64,
    /// The row's id (breaks ties between rows of the same millisecond).
    pub id: i64,
}

/// One chunk of an export, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditChunk<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Where the next chunk starts; `None` when this chunk ended the trail.
    pub next: Option<AuditCursor>,
}

/// A bound parameter of a filtered query.
#[derive(Clone, Debug, PartialEq)]
enum Param {
    Text(String),
    Int(i64),
}

/// A WHERE clause under construction: fixed fragments and their numbered parameters.
#[derive(Debug, Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Filter {
    /// Adds a parameter and returns its placeholder (`$n`).
    fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// Adds a condition (a fixed fragment holding placeholders from [`Filter::param`]).
    fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `column = $n` for a text value.
    fn equals(&mut self, column: &'static str, value: &str) {
        let p = self.param(Param::Text(value.to_string()));
        self.and(format!("{column} = {p}"));
    }

    /// The time range on `at_ms`: from inclusive, to exclusive.
    fn time_range(&mut self, query: &AuditQuery) -> Result<(), AuditQueryError> {
        if let (Some(from), Some(to)) = (query.from_ms, query.to_ms)
            && from > to
        {
            return Err(AuditQueryError::TimeRange { from, to });
        }
        if let Some(from) = query.from_ms {
            let p = self.param(Param::Int(from));
            self.and(format!("at_ms >= {p}"));
        }
        if let Some(to) = query.to_ms {
            let p = self.param(Param::Int(to));
            self.and(format!("at_ms < {p}"));
        }
        Ok(())
    }

    /// Rows strictly after `cursor` in newest-first order.
    fn after(&mut self, cursor: Option<AuditCursor>) {
        if let Some(cursor) = cursor {
            let at = self.param(Param::Int(cursor.at_ms));
            let at_again = self.param(Param::Int(cursor.at_ms));
            let id = self.param(Param::Int(cursor.id));
            // The first term lets the time index bound the scan.
            self.and(format!(
                "at_ms <= {at} AND (at_ms < {at_again} OR id < {id})"
            ));
        }
    }

    /// ` WHERE …`, or nothing when unfiltered.
    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// A filter value, with an empty text meaning "no filter" (an empty box on the page).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The WHERE clause of a tool-call query (`who` does not apply to calls).
fn call_filter(query: &AuditQuery) -> Result<Filter, AuditQueryError> {
    let mut filter = Filter::default();
    if let Some(assistant) = given(&query.assistant) {
        filter.equals("assistant", assistant);
    }
    if let Some(tool) = given(&query.tool) {
        match tool.split_once("__") {
            Some((server, tool_name)) if !server.is_empty() && !tool_name.is_empty() => {
                filter.equals("server", server);
                filter.equals("tool", tool_name);
            }
            Some(_) => return Err(AuditQueryError::Tool(tool.to_string())),
            None => filter.equals("server", tool),
        }
    }
    if let Some(outcome) = given(&query.outcome) {
        let known = Outcome::ALL.iter().any(|o| o.as_str() == outcome);
        if !known {
            return Err(AuditQueryError::Outcome(outcome.to_string()));
        }
        filter.equals("outcome", outcome);
    }
    filter.time_range(query)?;
    Ok(filter)
}

/// The WHERE clause of an admin-action query (only `who` and the time range apply).
fn admin_filter(query: &AuditQuery) -> Result<Filter, AuditQueryError> {
    let mut filter = Filter::default();
    if let Some(who) = given(&query.who) {
        filter.equals("actor", who);
    }
    filter.time_range(query)?;
    Ok(filter)
}

/// LIMIT and OFFSET of a valid page.
fn page_bounds(query: &AuditQuery) -> Result<(i64, i64), AuditQueryError> {
    if query.page < 1 {
        return Err(AuditQueryError::Page(query.page));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&query.page_size) {
        return Err(AuditQueryError::PageSize(query.page_size));
    }
    let limit = i64::from(query.page_size);
    Ok((limit, (i64::from(query.page) - 1) * limit))
}

const CALL_COLUMNS: &str = "id, at_ms, assistant, server, tool, instance, outcome, cache_hit, \
     duration_ms, attempts, trace_id, args_digest, arguments, error";

const ADMIN_COLUMNS: &str = "id, at_ms, actor, action, target, before, after";

/// Newest first; the id orders rows of the same millisecond.
const NEWEST_FIRST: &str = " ORDER BY at_ms DESC, id DESC";

#[derive(sqlx::FromRow)]
struct CallRow {
    id: i64,
    at_ms: i64,
    assistant: String,
    server: String,
    tool: String,
    instance: Option<String>,
    outcome: String,
    cache_hit: bool,
    duration_ms: f64,
    attempts: i64,
    trace_id: Option<String>,
    args_digest: String,
    arguments: Option<String>,
    error: Option<String>,
}

impl From<CallRow> for ToolCallEntry {
    fn from(row: CallRow) -> Self {
        ToolCallEntry {
            id: row.id,
            at_ms: row.at_ms,
            assistant: row.assistant,
            server: row.server,
            tool: row.tool,
            instance: row.instance,
            outcome: row.outcome,
            cache_hit: row.cache_hit,
            duration_ms: row.duration_ms,
            attempts: u32::try_from(row.attempts.max(0)).unwrap_or(u32::MAX),
            trace_id: row.trace_id,
            args_digest: row.args_digest,
            arguments: row.arguments,
            error: row.error,
        }
    }
}

#[derive(sqlx::FromRow)]
struct AdminRow {
    id: i64,
    at_ms: i64,
    actor: String,
    action: String,
    target: String,
    before: Option<String>,
    after: Option<String>,
}

impl AdminRow {
    fn cursor(&self) -> AuditCursor {
        AuditCursor {
            at_ms: self.at_ms,
            id: self.id,
        }
    }
}

impl From<AdminRow> for AdminActionEntry {
    fn from(row: AdminRow) -> Self {
        AdminActionEntry {
            at_ms: row.at_ms,
            actor: row.actor,
            action: row.action,
            target: row.target,
            before: row.before,
            after: row.after,
        }
    }
}

/// `INSERT INTO tool_calls (…) VALUES ($1, …), (…)` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO tool_calls (at_ms, assistant, server, tool, instance, outcome, cache_hit, \
         duration_ms, attempts, trace_id, args_digest, arguments, error) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..INSERT_COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * INSERT_COLUMNS + column + 1));
        }
        sql.push(')');
    }
    sql
}

/// Milliseconds of a duration, as the REAL column holds them.
fn duration_ms(record: &CallRecord) -> f64 {
    record.duration.as_secs_f64() * 1000.0
}

/// Binds every parameter of a filter, in order, to a query built from its SQL.
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Text(text) => query.bind(text.as_str()),
                Param::Int(int) => query.bind(*int),
            };
        }
        query
    }};
}

impl Store {
    /// Writes a batch of tool calls in one transaction: all of them or none.
    pub async fn insert_tool_calls(&self, batch: &[CallRecord]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in batch.chunks(ROWS_PER_INSERT) {
                let sql = insert_sql(chunk.len());
                let mut query = sqlx::query(&sql);
                for record in chunk {
                    query = query
                        .bind(record.at_ms)
                        .bind(record.assistant.as_str())
                        .bind(record.server.as_str())
                        .bind(record.tool.as_str())
                        .bind(record.instance.as_deref())
                        .bind(record.outcome.as_str())
                        .bind(record.cache_hit)
                        .bind(duration_ms(record))
                        .bind(i64::from(record.attempts))
                        .bind(record.trace_id.as_deref())
                        .bind(record.args_digest.as_str())
                        .bind(record.arguments.as_deref())
                        .bind(record.error.as_deref());
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// One page of calls matching the query's filters (assistant exact; tool
    /// `<server>__<tool>` → server and tool, otherwise the server; outcome exact; from/to on
    /// the call's time), newest first, and the total count.
    pub async fn tool_calls_page(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<ToolCallEntry>, u64), StoreError> {
        let (rows, total) = self
            .page::<CallRow>("tool_calls", CALL_COLUMNS, call_filter(query)?, query)
            .await?;
        Ok((rows.into_iter().map(ToolCallEntry::from).collect(), total))
    }

    /// Admin actions matching who (the actor, exact) and the time range, newest first, with
    /// the total count.
    pub async fn admin_audit_page(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<AdminActionEntry>, u64), StoreError> {
        let (rows, total) = self
            .page::<AdminRow>("admin_audit", ADMIN_COLUMNS, admin_filter(query)?, query)
            .await?;
        Ok((
            rows.into_iter().map(AdminActionEntry::from).collect(),
            total,
        ))
    }

    /// One page of `table`'s rows matching `filter`, newest first, with the total count.
    async fn page<R>(
        &self,
        table: &str,
        columns: &str,
        mut filter: Filter,
        query: &AuditQuery,
    ) -> Result<(Vec<R>, u64), StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let (limit, offset) = page_bounds(query)?;
        let count_sql = format!("SELECT COUNT(*) FROM {table}{}", filter.where_sql());
        let counted = filter.params.len();
        let limit_p = filter.param(Param::Int(limit));
        let offset_p = filter.param(Param::Int(offset));
        let page_sql = format!(
            "SELECT {columns} FROM {table}{}{NEWEST_FIRST} LIMIT {limit_p} OFFSET {offset_p}",
            filter.where_sql()
        );
        let (rows, total): (Vec<R>, i64) = on_pool!(self, |pool| {
            // One read snapshot: the total and the page see the same rows.
            let mut tx = pool.begin().await?;
            tx.snapshot_reads().await?;
            let total: i64 =
                bind_params!(sqlx::query_scalar(&count_sql), &filter.params[..counted])
                    .fetch_one(&mut *tx)
                    .await?;
            let rows = bind_params!(sqlx::query_as(&page_sql), &filter.params)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>((rows, total))
        })?;
        Ok((rows, u64::try_from(total).unwrap_or_default()))
    }

    /// How many rows of the query's trail (its `kind`) match its filters; the page fields
    /// are not looked at.
    pub async fn audit_total(&self, query: &AuditQuery) -> Result<u64, StoreError> {
        let (filter, table) = match query.kind {
            AuditKind::Calls => (call_filter(query)?, "tool_calls"),
            AuditKind::Admin => (admin_filter(query)?, "admin_audit"),
        };
        let sql = format!("SELECT COUNT(*) FROM {table}{}", filter.where_sql());
        let total: i64 = on_pool!(self, |pool| bind_params!(
            sqlx::query_scalar(&sql),
            &filter.params
        )
        .fetch_one(pool)
        .await)?;
        Ok(u64::try_from(total).unwrap_or_default())
    }

    /// Up to `limit` (1..=[`MAX_CHUNK`]) calls matching the query's filters after `after`,
    /// newest first. Unlike pages, chunks stay exact while new calls arrive (for exports).
    pub async fn tool_calls_chunk(
        &self,
        query: &AuditQuery,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<AuditChunk<ToolCallEntry>, StoreError> {
        let limit = limit.clamp(1, MAX_CHUNK);
        let mut filter = call_filter(query)?;
        filter.after(after);
        let limit_p = filter.param(Param::Int(i64::from(limit)));
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM tool_calls{}{NEWEST_FIRST} LIMIT {limit_p}",
            filter.where_sql()
        );
        let rows: Vec<CallRow> = on_pool!(self, |pool| bind_params!(
            sqlx::query_as(&sql),
            &filter.params
        )
        .fetch_all(pool)
        .await)?;
        let rows: Vec<ToolCallEntry> = rows.into_iter().map(ToolCallEntry::from).collect();
        let next = match rows.last() {
            Some(last) if rows.len() == limit as usize => Some(AuditCursor {
                at_ms: last.at_ms,
                id: last.id,
            }),
            _ => None,
        };
        Ok(AuditChunk { rows, next })
    }

    /// Up to `limit` (1..=[`MAX_CHUNK`]) admin actions matching the query's filters after
    /// `after`, newest first.
    pub async fn admin_audit_chunk(
        &self,
        query: &AuditQuery,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<AuditChunk<AdminActionEntry>, StoreError> {
        let limit = limit.clamp(1, MAX_CHUNK);
        let mut filter = admin_filter(query)?;
        filter.after(after);
        let limit_p = filter.param(Param::Int(i64::from(limit)));
        let sql = format!(
            "SELECT {ADMIN_COLUMNS} FROM admin_audit{}{NEWEST_FIRST} LIMIT {limit_p}",
            filter.where_sql()
        );
        let rows: Vec<AdminRow> = on_pool!(self, |pool| bind_params!(
            sqlx::query_as(&sql),
            &filter.params
        )
        .fetch_all(pool)
        .await)?;
        let next = match rows.last() {
            Some(last) if rows.len() == limit as usize => Some(last.cursor()),
            _ => None,
        };
        Ok(AuditChunk {
            rows: rows.into_iter().map(AdminActionEntry::from).collect(),
            next,
        })
    }

    /// Calls per (assistant, outcome) since `since_ms`, for the Assistants page, ordered by
    /// assistant then outcome.
    pub async fn call_counts_by_assistant(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT assistant, outcome, COUNT(*) FROM tool_calls WHERE at_ms >= $1 \
             GROUP BY assistant, outcome ORDER BY assistant, outcome"
        )
        .bind(since_ms)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(assistant, outcome, n)| (assistant, outcome, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}

#[cfg(test)]
impl Store {
    /// Runs raw SQL, for tests that need to break or inspect the schema.
    pub(crate) async fn execute_sql_for_test(&self, sql: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// How many tool calls are stored.
    pub(crate) async fn tool_call_count_for_test(&self) -> u64 {
        let n: i64 = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM tool_calls"
        )
        .fetch_one(pool)
        .await)
        .expect("count tool calls");
        u64::try_from(n).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;
    use crate::store::{AdminAction, Backend};
    use std::time::Duration;

    /// A call at `at_ms` with the rest derived from the arguments.
    fn call(at_ms: i64, assistant: &str, server: &str, tool: &str, outcome: Outcome) -> CallRecord {
        CallRecord {
            at_ms,
            assistant: assistant.into(),
            server: server.into(),
            tool: tool.into(),
            instance: Some(format!("{server}-1")),
            outcome,
            cache_hit: at_ms % 2 == 0,
            cacheable: false,
            duration: Duration::from_micros(12_500),
            attempts: 1,
            trace_id: Some(format!("trace-{at_ms}")),
            args_digest: format!("digest-{at_ms}"),
            arguments: Some(r#"{"q":"x"}"#.into()),
            error: (outcome != Outcome::Ok).then(|| "went wrong".to_string()),
            known_tool: true,
        }
    }

    fn calls_query() -> AuditQuery {
        AuditQuery {
            kind: AuditKind::Calls,
            page: 1,
            page_size: 100,
            ..AuditQuery::default()
        }
    }

    /// Times of a page's rows.
    fn times(rows: &[ToolCallEntry]) -> Vec<i64> {
        rows.iter().map(|r| r.at_ms).collect()
    }

    /// Ten calls at t = 1000..=1009 across assistants, tools and outcomes.
    async fn seed(store: &Store) {
        let batch = vec![
            call(1000, "alpha", "search", "query", Outcome::Ok),
            call(1001, "alpha", "search", "lookup", Outcome::Ok),
            call(1002, "beta", "search", "query", Outcome::Failed),
            call(1003, "beta", "files", "read", Outcome::Ok),
            call(1004, "alpha", "files", "write", Outcome::Denied),
            call(1005, "gamma", "files", "read", Outcome::ToolError),
            call(1006, "alpha", "search", "query", Outcome::RateLimited),
            call(1007, "beta", "search", "query", Outcome::Ok),
            call(1008, "gamma", "db", "select", Outcome::Cancelled),
            call(1009, "alpha", "db", "select", Outcome::Rejected),
        ];
        store.insert_tool_calls(&batch).await.unwrap();
    }

    each_backend! {
        async fn a_batch_is_stored_field_for_field(store) {
            let mut record = call(1234, "alpha", "search", "query", Outcome::ToolError);
            record.attempts = 3;
            record.instance = None;
            record.trace_id = None;
            record.arguments = None;
            store
                .insert_tool_calls(std::slice::from_ref(&record))
                .await
                .unwrap();
            let (rows, total) = store.tool_calls_page(&calls_query()).await.unwrap();
            assert_eq!(total, 1);
            let row = &rows[0];
            assert_eq!(
                (
                    row.at_ms,
                    row.assistant.as_str(),
                    row.server.as_str(),
                    row.tool.as_str()
                ),
                (1234, "alpha", "search", "query")
            );
            assert_eq!(row.instance, None);
            assert_eq!(row.outcome, "tool_error");
            assert!(row.cache_hit);
            assert_eq!(row.duration_ms, 12.5);
            assert_eq!(row.attempts, 3);
            assert_eq!(row.trace_id, None);
            assert_eq!(row.args_digest, "digest-1234");
            assert_eq!(row.arguments, None);
            assert_eq!(row.error.as_deref(), Some("went wrong"));
        }
    }

    each_backend! {
        async fn batches_larger_than_one_statement_are_written_whole(store) {
            let batch: Vec<_> = (0..(ROWS_PER_INSERT as i64 * 2 + 7))
                .map(|t| call(t, "alpha", "search", "query", Outcome::Ok))
                .collect();
            store.insert_tool_calls(&batch).await.unwrap();
            assert_eq!(store.tool_call_count_for_test().await, batch.len() as u64);
            store.insert_tool_calls(&[]).await.unwrap();
            assert_eq!(store.tool_call_count_for_test().await, batch.len() as u64);
        }
    }

    each_backend! {
        async fn a_failing_batch_writes_nothing(store) {
            // A trigger refusing one row stands in for any failure mid-batch.
            let trigger = match store.backend() {
                Backend::Sqlite => {
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON tool_calls \
                     WHEN NEW.assistant = 'poison' BEGIN SELECT RAISE(ABORT, 'poison'); END;"
                }
                Backend::Postgres => {
                    "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN IF NEW.assistant = 'poison' THEN RAISE EXCEPTION 'poison'; END IF; \
                     RETURN NEW; END $$; \
                     CREATE TRIGGER refuse_poison BEFORE INSERT ON tool_calls \
                     FOR EACH ROW EXECUTE FUNCTION refuse_poison();"
                }
            };
            store.execute_sql_for_test(trigger).await.unwrap();
            let batch = vec![
                call(1, "alpha", "search", "query", Outcome::Ok),
                call(2, "poison", "search", "query", Outcome::Ok),
            ];
            assert!(store.insert_tool_calls(&batch).await.is_err());
            assert_eq!(store.tool_call_count_for_test().await, 0);
        }
    }

    each_backend! {
        async fn calls_come_newest_first_and_filter_by_each_field(store) {
            seed(&store).await;
            let all = store.tool_calls_page(&calls_query()).await.unwrap();
            assert_eq!(all.1, 10);
            assert_eq!(times(&all.0), (1000..=1009).rev().collect::<Vec<_>>());

            let by = |f: &dyn Fn(&mut AuditQuery)| {
                let mut q = calls_query();
                f(&mut q);
                q
            };
            let cases: Vec<(AuditQuery, Vec<i64>)> = vec![
                (
                    by(&|q| q.assistant = Some("alpha".into())),
                    vec![1009, 1006, 1004, 1001, 1000],
                ),
                (
                    by(&|q| q.tool = Some("search__query".into())),
                    vec![1007, 1006, 1002, 1000],
                ),
                (
                    by(&|q| q.tool = Some("files".into())),
                    vec![1005, 1004, 1003],
                ),
                (
                    by(&|q| q.outcome = Some("ok".into())),
                    vec![1007, 1003, 1001, 1000],
                ),
                (
                    by(&|q| {
                        q.from_ms = Some(1003);
                        q.to_ms = Some(1006);
                    }),
                    vec![1005, 1004, 1003],
                ),
                (
                    by(&|q| {
                        q.assistant = Some("beta".into());
                        q.tool = Some("search".into());
                        q.outcome = Some("ok".into());
                    }),
                    vec![1007],
                ),
                // An empty box filters nothing; `who` does not apply to calls.
                (
                    by(&|q| {
                        q.assistant = Some(String::new());
                        q.who = Some("alice".into());
                    }),
                    (1000..=1009).rev().collect(),
                ),
                // A server's name is not a tool of another server.
                (by(&|q| q.tool = Some("search__read".into())), vec![]),
            ];
            for (query, expected) in cases {
                let (rows, total) = store.tool_calls_page(&query).await.unwrap();
                assert_eq!(times(&rows), expected, "{query:?}");
                assert_eq!(total, expected.len() as u64, "{query:?}");
            }
        }
    }

    each_backend! {
        async fn pages_split_the_matches_and_keep_the_total(store) {
            seed(&store).await;
            let page = |n: u32| AuditQuery {
                page: n,
                page_size: 4,
                ..calls_query()
            };
            let (first, total) = store.tool_calls_page(&page(1)).await.unwrap();
            assert_eq!((times(&first), total), (vec![1009, 1008, 1007, 1006], 10));
            let (second, total) = store.tool_calls_page(&page(2)).await.unwrap();
            assert_eq!((times(&second), total), (vec![1005, 1004, 1003, 1002], 10));
            let (third, total) = store.tool_calls_page(&page(3)).await.unwrap();
            assert_eq!((times(&third), total), (vec![1001, 1000], 10));
            let (beyond, total) = store.tool_calls_page(&page(4)).await.unwrap();
            assert_eq!((beyond.len(), total), (0, 10));
        }
    }

    each_backend! {
        async fn calls_of_the_same_millisecond_keep_their_insertion_order_reversed(store) {
            let batch: Vec<_> = ["a", "b", "c"]
                .into_iter()
                .map(|name| call(5, name, "search", "query", Outcome::Ok))
                .collect();
            store.insert_tool_calls(&batch).await.unwrap();
            let (rows, _) = store.tool_calls_page(&calls_query()).await.unwrap();
            let names: Vec<_> = rows.iter().map(|r| r.assistant.as_str()).collect();
            assert_eq!(names, ["c", "b", "a"]);
        }
    }

    each_backend! {
        async fn bad_queries_are_refused_with_what_is_expected(store) {
            seed(&store).await;
            let refused = |q: AuditQuery| {
                let store = store.clone();
                async move {
                    match store.tool_calls_page(&q).await {
                        Err(StoreError::InvalidQuery(e)) => e,
                        other => panic!("expected a refusal, got {other:?}"),
                    }
                }
            };
            let e = refused(AuditQuery {
                outcome: Some("exploded".into()),
                ..calls_query()
            })
            .await;
            assert_eq!(e, AuditQueryError::Outcome("exploded".into()));
            assert_eq!(
                e.to_string(),
                "unknown outcome \"exploded\": expected one of ok, tool_error, failed, denied, \
                 rate_limited, rejected, cancelled"
            );
            for size in [0, MAX_PAGE_SIZE + 1] {
                let e = refused(AuditQuery {
                    page_size: size,
                    ..calls_query()
                })
                .await;
                assert_eq!(e, AuditQueryError::PageSize(size));
                assert!(e.to_string().contains("between 1 and 500"), "{e}");
            }
            let e = refused(AuditQuery {
                page: 0,
                ..calls_query()
            })
            .await;
            assert_eq!(e, AuditQueryError::Page(0));
            for tool in ["search__", "__query"] {
                let e = refused(AuditQuery {
                    tool: Some(tool.into()),
                    ..calls_query()
                })
                .await;
                assert_eq!(e, AuditQueryError::Tool(tool.into()));
            }
            let e = refused(AuditQuery {
                from_ms: Some(10),
                to_ms: Some(5),
                ..calls_query()
            })
            .await;
            assert_eq!(e, AuditQueryError::TimeRange { from: 10, to: 5 });
            // The largest page is fine.
            let max = AuditQuery {
                page_size: MAX_PAGE_SIZE,
                ..calls_query()
            };
            assert_eq!(store.tool_calls_page(&max).await.unwrap().1, 10);
        }
    }

    each_backend! {
        async fn chunks_walk_every_match_once_even_while_calls_arrive(store) {
            seed(&store).await;
            let query = AuditQuery {
                assistant: Some("alpha".into()),
                ..calls_query()
            };
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let chunk = store.tool_calls_chunk(&query, after, 2).await.unwrap();
                seen.extend(times(&chunk.rows));
                // A newer call arriving mid-export shifts no later chunk.
                store
                    .insert_tool_calls(&[call(
                        2000 + seen.len() as i64,
                        "alpha",
                        "db",
                        "x",
                        Outcome::Ok,
                    )])
                    .await
                    .unwrap();
                match chunk.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, vec![1009, 1006, 1004, 1001, 1000]);
            // Five matched at the start; one newer call arrived per chunk (three chunks).
            assert_eq!(store.audit_total(&query).await.unwrap(), 5 + 3);
        }
    }

    each_backend! {
        async fn admin_actions_filter_by_actor_and_time_newest_first(store) {
            for (actor, action) in [
                ("alice", "instance.drain"),
                ("bob", "breaker.reset"),
                ("alice", "instance.undrain"),
            ] {
                store
                    .record_admin_action(&AdminAction::new(actor, action, "search-1").after("x"))
                    .await
                    .unwrap();
            }
            let query = AuditQuery {
                kind: AuditKind::Admin,
                page: 1,
                page_size: 10,
                ..AuditQuery::default()
            };
            let (all, total) = store.admin_audit_page(&query).await.unwrap();
            assert_eq!(total, 3);
            let actions: Vec<_> = all.iter().map(|a| a.action.as_str()).collect();
            assert_eq!(
                actions,
                ["instance.undrain", "breaker.reset", "instance.drain"]
            );
            assert_eq!(all[0].after.as_deref(), Some("x"));

            let alice = AuditQuery {
                who: Some("alice".into()),
                // Call filters do not apply to admin actions.
                outcome: Some("ok".into()),
                ..query.clone()
            };
            let (rows, total) = store.admin_audit_page(&alice).await.unwrap();
            assert_eq!(total, 2);
            assert!(rows.iter().all(|r| r.actor == "alice"));
            assert_eq!(store.audit_total(&alice).await.unwrap(), 2);

            let future = AuditQuery {
                from_ms: Some(all[0].at_ms + 1),
                ..query.clone()
            };
            assert_eq!(store.admin_audit_page(&future).await.unwrap().1, 0);

            let first = store.admin_audit_chunk(&query, None, 2).await.unwrap();
            assert_eq!(first.rows, all[..2]);
            let rest = store
                .admin_audit_chunk(&query, first.next, 2)
                .await
                .unwrap();
            assert_eq!((rest.rows.as_slice(), rest.next), (&all[2..], None));

            let bad = AuditQuery {
                page_size: 0,
                ..query
            };
            assert!(matches!(
                store.admin_audit_page(&bad).await,
                Err(StoreError::InvalidQuery(AuditQueryError::PageSize(0)))
            ));
        }
    }

    each_backend! {
        async fn calls_are_counted_per_assistant_and_outcome_since_a_time(store) {
            seed(&store).await;
            let counts = store.call_counts_by_assistant(1004).await.unwrap();
            let expected = [
                ("alpha", "denied", 1),
                ("alpha", "rate_limited", 1),
                ("alpha", "rejected", 1),
                ("beta", "ok", 1),
                ("gamma", "cancelled", 1),
                ("gamma", "tool_error", 1),
            ];
            let counts: Vec<_> = counts
                .iter()
                .map(|(a, o, n)| (a.as_str(), o.as_str(), *n))
                .collect();
            assert_eq!(counts, expected);
            let all = store.call_counts_by_assistant(0).await.unwrap();
            assert_eq!(all.iter().map(|c| c.2).sum::<u64>(), 10);
            assert!(all.contains(&("alpha".into(), "ok".into(), 2)));
        }
    }
}
