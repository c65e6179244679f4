//! Searching traces for the dashboard: the in-memory ring and the store together, one
//! entry per trace fragment (deduplicated by trace id and root span).

use super::Collector;
use super::model::{self, Trace};
use crate::store::Store;
use app::error::AppError;
use app::wire::{TraceQuery, TraceSummary, TraceView};
use std::collections::HashSet;

/// Most traces one search returns.
pub const MAX_LIMIT: u32 = 500;
/// Entries returned when the query names no limit.
pub const DEFAULT_LIMIT: u32 = 100;

/// Checks and normalises a query: limit 0 means the default; the rest must make sense.
pub fn validate(mut query: TraceQuery) -> Result<TraceQuery, AppError> {
    if query.limit == 0 {
        query.limit = DEFAULT_LIMIT;
    }
    if query.limit > MAX_LIMIT {
        return Err(AppError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Some(min) = query.min_duration_ms
        && !(min.is_finite() && min >= 0.0)
    {
        return Err(AppError::Invalid(
            "minimum duration must be a non-negative number of milliseconds".into(),
        ));
    }
    if let (Some(from), Some(to)) = (query.from_ms, query.to_ms)
        && from >= to
    {
        return Err(AppError::Invalid(
            "the time range is empty: 'from' must be before 'to'".into(),
        ));
    }
    if let Some(status) = &query.status
        && status != "ok"
        && status != "error"
    {
        return Err(AppError::Invalid(format!(
            "unknown status {status:?}: expected ok or error"
        )));
    }
    let blank = |v: &mut Option<String>| {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *v = None;
        }
    };
    blank(&mut query.tool);
    blank(&mut query.assistant);
    Ok(query)
}

/// Traces matching the query, newest first: recent ones from memory and persisted ones.
pub async fn search(
    collector: &Collector,
    store: &Store,
    query: TraceQuery,
) -> Result<Vec<TraceSummary>, AppError> {
    let query = validate(query)?;
    let recent = collector.recent(query.limit as usize, |t| t.matches(&query));
    let stored = store
        .trace_summaries(&query)
        .await
        .map_err(|e| AppError::Internal(format!("cannot read stored traces: {e}")))?;
    Ok(merge(
        recent.iter().map(|t| t.summary()),
        stored,
        query.limit as usize,
    ))
}

/// Both lists as one, newest first, without repeating a trace, at most `limit`.
fn merge(
    recent: impl Iterator<Item = TraceSummary>,
    stored: Vec<TraceSummary>,
    limit: usize,
) -> Vec<TraceSummary> {
    let mut all: Vec<TraceSummary> = recent.chain(stored).collect();
    // Stable: a trace in both keeps its in-memory entry (listed first).
    all.sort_by_key(|s| std::cmp::Reverse(s.started_at_ms));
    let mut seen = HashSet::new();
    all.retain(|s| seen.insert((s.trace_id.clone(), s.started_at_ms, s.root.clone())));
    all.truncate(limit);
    all
}

/// One trace with its spans (all fragments of the id, from memory and the store).
pub async fn view(
    collector: &Collector,
    store: &Store,
    trace_id: &str,
) -> Result<TraceView, AppError> {
    let trace_id = trace_id.trim().to_ascii_lowercase();
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::Invalid(format!(
            "{:?} is not a trace id (32 hex digits)",
            crate::sanitize::bounded(&trace_id, 40)
        )));
    }
    let mut fragments: Vec<Trace> = collector.fragments(&trace_id);
    let stored = store
        .trace_fragments(&trace_id)
        .await
        .map_err(|e| AppError::Internal(format!("cannot read stored traces: {e}")))?;
    for fragment in stored {
        if !fragments
            .iter()
            .any(|f| f.root_span_id == fragment.root_span_id)
        {
            fragments.push(fragment);
        }
    }
    model::trace_view(&model::owned_fragments(fragments))
        .ok_or_else(|| AppError::NotFound(format!("trace {trace_id} (unknown or expired)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;
    use crate::telemetry::traces::model::tests::retried_trace;
    use std::sync::Arc;

    #[test]
    fn queries_are_validated() {
        let ok = validate(TraceQuery::default()).unwrap();
        assert_eq!(ok.limit, DEFAULT_LIMIT);
        for bad in [
            TraceQuery {
                limit: 501,
                ..TraceQuery::default()
            },
            TraceQuery {
                min_duration_ms: Some(-1.0),
                ..TraceQuery::default()
            },
            TraceQuery {
                from_ms: Some(5),
                to_ms: Some(5),
                ..TraceQuery::default()
            },
            TraceQuery {
                status: Some("weird".into()),
                ..TraceQuery::default()
            },
        ] {
            assert!(matches!(validate(bad), Err(AppError::Invalid(_))));
        }
        let blank = validate(TraceQuery {
            tool: Some(" ".into()),
            ..TraceQuery::default()
        });
        assert_eq!(blank.unwrap().tool, None);
    }

    each_backend! {
        async fn search_merges_memory_and_store_without_repeats(store) {
            let collector = Collector::new(3);
            let traces: Vec<Trace> = (0..5)
                .map(|i| retried_trace(&format!("{i:032x}"), i * 1_000_000, "ok"))
                .collect();
            // 0..=2 persisted; 2..=4 in memory (the ring holds 3): trace 2 is in both.
            store
                .insert_traces(
                    &traces[..3]
                        .iter()
                        .cloned()
                        .map(Arc::new)
                        .collect::<Vec<_>>(),
                )
                .await
                .unwrap();
            for trace in &traces {
                collector.finish(trace.clone());
            }
            let found = search(&collector, &store, TraceQuery::default())
                .await
                .unwrap();
            let ids: Vec<i64> = found.iter().map(|s| s.started_at_ms).collect();
            assert_eq!(ids, [4_000, 3_000, 2_000, 1_000, 0]);
            let two = search(
                &collector,
                &store,
                TraceQuery {
                    limit: 2,
                    ..TraceQuery::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(two.len(), 2);

            // Trace 0 left the ring but is stored; trace 4 is only in memory.
            let old = view(&collector, &store, &traces[0].trace_id).await.unwrap();
            assert_eq!(old.summary.trace_id, traces[0].trace_id);
            assert_eq!(old.spans.len(), 5);
            assert!(view(&collector, &store, &traces[4].trace_id).await.is_ok());
            let unknown = view(&collector, &store, &format!("{:032x}", 99)).await;
            assert!(matches!(unknown, Err(AppError::NotFound(_))));
            assert!(matches!(
                view(&collector, &store, "xyz").await,
                Err(AppError::Invalid(_))
            ));
        }
    }
}
