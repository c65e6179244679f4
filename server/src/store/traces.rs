//! Persisted traces: written in batches by the trace collector's writer, searched by the
//! Traces page together with the in-memory ring, pruned by age and count.

use super::{Store, StoreError, on_pool};
use crate::telemetry::traces::model::Trace;
use app::wire::{TraceQuery, TraceSummary};

/// Columns of a list entry.
const SUMMARY_COLUMNS: &str =
    "trace_id, started_at_ms, duration_ms, root, tool, assistant, status, span_count, retries";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    trace_id: String,
    started_at_ms: i64,
    duration_ms: f64,
    root: String,
    tool: Option<String>,
    assistant: Option<String>,
    status: String,
    span_count: i64,
    retries: i64,
}

impl From<SummaryRow> for TraceSummary {
    fn from(row: SummaryRow) -> Self {
        TraceSummary {
            trace_id: row.trace_id,
            started_at_ms: row.started_at_ms,
            duration_ms: row.duration_ms,
            root: row.root,
            tool: row.tool,
            assistant: row.assistant,
            status: row.status,
            spans: u32::try_from(row.span_count.max(0)).unwrap_or(u32::MAX),
            retries: u32::try_from(row.retries.max(0)).unwrap_or(u32::MAX),
        }
    }
}

/// A filter value to bind.
enum Param {
    Text(String),
    Int(i64),
    Real(f64),
}

/// `WHERE …` for the query's filters (as [`crate::telemetry::traces::model::matches_summary`]
/// applies them in memory) and the values to bind, numbered from `$1`.
fn where_clause(query: &TraceQuery) -> (String, Vec<Param>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut params = Vec::new();
    let next = |param: Param, params: &mut Vec<Param>| {
        params.push(param);
        format!("${}", params.len())
    };
    if let Some(tool) = &query.tool {
        if tool.contains("__") {
            let p = next(Param::Text(tool.clone()), &mut params);
            conditions.push(format!("tool = {p}"));
        } else {
            // A server name alone: every tool of that server (no LIKE: names hold `_`).
            let prefix = format!("{tool}__");
            let len = next(Param::Int(prefix.chars().count() as i64), &mut params);
            let p = next(Param::Text(prefix), &mut params);
            // The length as INTEGER: PostgreSQL has no substr(text, int, bigint).
            conditions.push(format!("substr(tool, 1, CAST({len} AS INTEGER)) = {p}"));
        }
    }
    if let Some(assistant) = &query.assistant {
        let p = next(Param::Text(assistant.clone()), &mut params);
        conditions.push(format!("assistant = {p}"));
    }
    if let Some(status) = &query.status {
        let p = next(Param::Text(status.clone()), &mut params);
        conditions.push(format!("status = {p}"));
    }
    if let Some(min) = query.min_duration_ms {
        let p = next(Param::Real(min), &mut params);
        conditions.push(format!("duration_ms >= {p}"));
    }
    if let Some(from) = query.from_ms {
        let p = next(Param::Int(from), &mut params);
        conditions.push(format!("started_at_ms >= {p}"));
    }
    if let Some(to) = query.to_ms {
        let p = next(Param::Int(to), &mut params);
        conditions.push(format!("started_at_ms < {p}"));
    }
    let sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (sql, params)
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Text(text) => query.bind(text.as_str()),
                Param::Int(int) => query.bind(*int),
                Param::Real(real) => query.bind(*real),
            };
        }
        query
    }};
}

impl Store {
    /// Writes a batch of traces in one transaction; a fragment already stored is kept.
    pub async fn insert_traces(&self, batch: &[std::sync::Arc<Trace>]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for trace in batch {
                let summary = trace.summary();
                let body = serde_json::to_string(trace.as_ref())
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                sqlx::query(
                    "INSERT INTO traces (trace_id, root_span_id, started_at_ms, duration_ms, root, \
                     tool, assistant, status, span_count, retries, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (trace_id, root_span_id) DO NOTHING",
                )
                .bind(&trace.trace_id)
                .bind(&trace.root_span_id)
                .bind(summary.started_at_ms)
                .bind(summary.duration_ms)
                .bind(&summary.root)
                .bind(summary.tool.as_deref())
                .bind(summary.assistant.as_deref())
                .bind(&summary.status)
                .bind(i64::from(summary.spans))
                .bind(i64::from(summary.retries))
                .bind(body)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stored traces matching the query's filters, newest first, at most `query.limit`.
    pub async fn trace_summaries(
        &self,
        query: &TraceQuery,
    ) -> Result<Vec<TraceSummary>, StoreError> {
        let (filter, params) = where_clause(query);
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces{filter} ORDER BY started_at_ms DESC LIMIT {}",
            query.limit
        );
        let rows: Vec<SummaryRow> = on_pool!(self, |pool| {
            bind_all!(sqlx::query_as::<_, SummaryRow>(&sql), &params)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(TraceSummary::from).collect())
    }

    /// Every stored fragment of a trace id (none if it is unknown or pruned).
    pub async fn trace_fragments(&self, trace_id: &str) -> Result<Vec<Trace>, StoreError> {
        let bodies: Vec<String> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT body FROM traces WHERE trace_id = $1")
                .bind(trace_id)
                .fetch_all(pool)
                .await
        })?;
        let mut fragments = Vec::with_capacity(bodies.len());
        for body in bodies {
            match serde_json::from_str::<Trace>(&body) {
                Ok(trace) => fragments.push(trace),
                Err(error) => {
                    tracing::warn!(trace_id, %error, "a stored trace cannot be read; skipped");
                }
            }
        }
        Ok(fragments)
    }

    /// Deletes traces that started before `older_than_ms`, then all but the newest
    /// `keep_max`; returns how many rows went.
    pub async fn prune_traces(&self, older_than_ms: i64, keep_max: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep_max).unwrap_or(i64::MAX);
        on_pool!(self, |pool| {
            let aged = sqlx::query("DELETE FROM traces WHERE started_at_ms < $1")
                .bind(older_than_ms)
                .execute(pool)
                .await?
                .rows_affected();
            // The cut-off is the start of the keep_max-th newest trace (ties are kept).
            let cutoff: Option<i64> = sqlx::query_scalar(
                "SELECT started_at_ms FROM traces ORDER BY started_at_ms DESC LIMIT 1 OFFSET $1",
            )
            .bind(keep.saturating_sub(1).max(0))
            .fetch_optional(pool)
            .await?;
            let excess = match cutoff {
                Some(cutoff) if keep > 0 => {
                    sqlx::query("DELETE FROM traces WHERE started_at_ms < $1")
                        .bind(cutoff)
                        .execute(pool)
                        .await?
                        .rows_affected()
                }
                _ if keep == 0 => sqlx::query("DELETE FROM traces")
                    .execute(pool)
                    .await?
                    .rows_affected(),
                _ => 0,
            };
            Ok(aged + excess)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;
    use crate::telemetry::traces::model::tests::retried_trace;
    use std::sync::Arc;

    fn query(limit: u32) -> TraceQuery {
        TraceQuery {
            limit,
            ..TraceQuery::default()
        }
    }

    each_backend! {
        async fn traces_round_trip_and_filter_like_the_ring(store) {
            let traces: Vec<Arc<Trace>> = (0..6)
                .map(|i| {
                    let outcome = if i % 3 == 0 { "failed" } else { "ok" };
                    Arc::new(retried_trace(&format!("{i:032x}"), i * 1_000_000, outcome))
                })
                .collect();
            store.insert_traces(&traces).await.unwrap();
            // A second write of the same fragment changes nothing.
            store.insert_traces(&traces[..1]).await.unwrap();

            let all = store.trace_summaries(&query(100)).await.unwrap();
            assert_eq!(all.len(), 6);
            assert_eq!(all[0].started_at_ms, 5_000, "newest first");
            assert_eq!(all[0], traces[5].summary());

            let filters: Vec<TraceQuery> = vec![
                TraceQuery {
                    status: Some("error".into()),
                    ..query(100)
                },
                TraceQuery {
                    tool: Some("search".into()),
                    ..query(100)
                },
                TraceQuery {
                    tool: Some("searc".into()),
                    ..query(100)
                },
                TraceQuery {
                    tool: Some("search__query".into()),
                    assistant: Some("claude".into()),
                    ..query(100)
                },
                TraceQuery {
                    from_ms: Some(2_000),
                    to_ms: Some(4_000),
                    ..query(100)
                },
                TraceQuery {
                    min_duration_ms: Some(2.0),
                    ..query(100)
                },
                query(2),
            ];
            for filter in filters {
                let stored: Vec<String> = store
                    .trace_summaries(&filter)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|s| s.trace_id)
                    .collect();
                let mut expected: Vec<&Arc<Trace>> =
                    traces.iter().filter(|t| t.matches(&filter)).collect();
                expected.reverse();
                expected.truncate(filter.limit as usize);
                let expected: Vec<String> = expected.iter().map(|t| t.trace_id.clone()).collect();
                assert_eq!(stored, expected, "{filter:?}");
            }

            let fragments = store.trace_fragments(&traces[3].trace_id).await.unwrap();
            assert_eq!(fragments, vec![traces[3].as_ref().clone()]);
            assert!(store.trace_fragments("nope").await.unwrap().is_empty());
        }
    }

    each_backend! {
        async fn retention_prunes_by_age_then_by_count(store) {
            let traces: Vec<Arc<Trace>> = (0..10)
                .map(|i| Arc::new(retried_trace(&format!("{i:032x}"), i * 1_000_000, "ok")))
                .collect();
            store.insert_traces(&traces).await.unwrap();
            // Older than 3 s: traces 0, 1, 2 go.
            assert_eq!(store.prune_traces(3_000, 100).await.unwrap(), 3);
            // Keep the 4 newest: 3, 4, 5 go.
            assert_eq!(store.prune_traces(3_000, 4).await.unwrap(), 3);
            let left: Vec<i64> = store
                .trace_summaries(&query(100))
                .await
                .unwrap()
                .iter()
                .map(|s| s.started_at_ms)
                .collect();
            assert_eq!(left, [9_000, 8_000, 7_000, 6_000]);
            assert_eq!(store.prune_traces(0, 0).await.unwrap(), 4);
            assert_eq!(store.prune_traces(0, 0).await.unwrap(), 0);
        }
    }
}
