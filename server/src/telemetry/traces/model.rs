//! A finished trace as the collector keeps it (in memory and as JSON in the store), and its
//! views for the dashboard.

use app::wire::{SpanEventView, SpanView, TraceQuery, TraceSummary, TraceView};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// One finished span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinishedSpan {
    /// Span id (16 hex digits).
    pub span_id: String,
    /// Parent span id; for the root, the caller's span (if it sent a `traceparent`).
    pub parent_id: Option<String>,
    /// The span's name, e.g. `attempt` (borrowed from the code while in memory).
    pub name: Cow<'static, str>,
    /// Microseconds after the root started.
    pub start_us: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Fields recorded on the span, in declaration order (names borrowed from the code).
    pub attributes: Vec<(Cow<'static, str>, String)>,
    /// Log events recorded inside it.
    pub events: Vec<SpanEvent>,
}

/// A log event inside a span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// Microseconds after the root started.
    pub at_us: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The message followed by its other fields (`key=value`).
    pub message: String,
}

/// One finished trace fragment: a root span of ours and everything under it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Trace id (32 hex digits): the caller's, or a new one.
    pub trace_id: String,
    /// The root span's id.
    pub root_span_id: String,
    /// When the root started (Unix microseconds).
    pub started_at_us: i64,
    /// The caller's `tracestate`, if any.
    pub tracestate: Option<String>,
    /// Spans in the order they finished (the root last).
    pub spans: Vec<FinishedSpan>,
}

impl FinishedSpan {
    /// The value of a recorded field.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the span failed: it recorded a non-empty `error`, or (the root) an outcome
    /// other than `ok`.
    pub fn failed(&self) -> bool {
        self.attribute("error").is_some_and(|e| !e.is_empty())
            || self.attribute("outcome").is_some_and(|o| o != "ok")
    }
}

impl Trace {
    /// The root span (the one whose parent is not in the trace).
    pub fn root(&self) -> Option<&FinishedSpan> {
        self.spans.iter().find(|s| s.span_id == self.root_span_id)
    }

    /// The assistant whose call this fragment traces (the root's `assistant` field).
    pub fn assistant(&self) -> Option<&str> {
        self.root()
            .and_then(|r| r.attribute("assistant"))
            .filter(|a| !a.is_empty())
    }

    /// The root's duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.root().map_or(0.0, |r| r.duration_us as f64 / 1000.0)
    }

    /// When the root started (Unix ms).
    pub fn started_at_ms(&self) -> i64 {
        self.started_at_us.div_euclid(1000)
    }

    /// Whether the trace ended badly (its root failed).
    pub fn is_error(&self) -> bool {
        self.root().is_some_and(FinishedSpan::failed)
    }

    /// Upstream attempts beyond the first.
    pub fn retries(&self) -> u32 {
        let attempts = self.spans.iter().filter(|s| s.name == "attempt").count();
        u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// The list entry.
    pub fn summary(&self) -> TraceSummary {
        let root = self.root();
        let attr = |key: &str| {
            root.and_then(|r| r.attribute(key))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        TraceSummary {
            trace_id: self.trace_id.clone(),
            started_at_ms: self.started_at_ms(),
            duration_ms: self.duration_ms(),
            root: root.map_or_else(String::new, |r| r.name.to_string()),
            tool: attr("tool"),
            assistant: attr("assistant"),
            status: if self.is_error() { "error" } else { "ok" }.to_string(),
            spans: u32::try_from(self.spans.len()).unwrap_or(u32::MAX),
            retries: self.retries(),
        }
    }

    /// Whether the trace passes the query's filters (the limit aside).
    pub fn matches(&self, query: &TraceQuery) -> bool {
        let summary = self.summary();
        matches_summary(&summary, query)
    }
}

/// Whether a list entry passes the query's filters: tool exact (or its server part alone),
/// assistant exact, status, minimum duration, `from_ms <= start < to_ms`.
pub fn matches_summary(summary: &TraceSummary, query: &TraceQuery) -> bool {
    let tool_ok = query.tool.as_deref().is_none_or(|wanted| {
        summary.tool.as_deref().is_some_and(|tool| {
            tool == wanted
                || (!wanted.contains("__")
                    && tool
                        .split_once("__")
                        .is_some_and(|(server, _)| server == wanted))
        })
    });
    tool_ok
        && query
            .assistant
            .as_deref()
            .is_none_or(|a| summary.assistant.as_deref() == Some(a))
        && query.status.as_deref().is_none_or(|s| summary.status == s)
        && query
            .min_duration_ms
            .is_none_or(|min| summary.duration_ms >= min)
        && query
            .from_ms
            .is_none_or(|from| summary.started_at_ms >= from)
        && query.to_ms.is_none_or(|to| summary.started_at_ms < to)
}

/// The fragments of one trace id that belong together: the first assistant's (the one
/// that started the trace), at most `MAX_FRAGMENTS_PER_TRACE` of them, oldest first. A
/// fragment another assistant added under the same id (another replica let it through, or
/// it was stored before ownership was checked) is left out.
pub fn owned_fragments(mut fragments: Vec<Trace>) -> Vec<Trace> {
    fragments.sort_by_key(|t| t.started_at_us);
    let owner = fragments
        .first()
        .and_then(|t| t.assistant().map(str::to_string));
    fragments.retain(|t| t.assistant().map(str::to_string) == owner);
    fragments.truncate(super::MAX_FRAGMENTS_PER_TRACE as usize);
    fragments
}

/// The whole view of the fragments of one trace id (usually one; a client that reuses its
/// trace id for several calls gets all of them in one waterfall). `None` if there are none.
pub fn trace_view(fragments: &[Trace]) -> Option<TraceView> {
    let newest = fragments.iter().max_by_key(|t| t.started_at_us)?;
    let earliest_us = fragments.iter().map(|t| t.started_at_us).min()?;
    let mut summary = newest.summary();
    // Spans positioned on one time axis: each fragment shifted by its own start.
    let mut spans: Vec<(FinishedSpan, bool)> = Vec::new();
    for fragment in fragments {
        let shift = u64::try_from(fragment.started_at_us - earliest_us).unwrap_or(0);
        for span in &fragment.spans {
            let mut span = span.clone();
            span.start_us += shift;
            for event in &mut span.events {
                event.at_us += shift;
            }
            let is_root = span.span_id == fragment.root_span_id;
            spans.push((span, is_root));
        }
    }
    if fragments.len() > 1 {
        let end_us = spans
            .iter()
            .map(|(s, _)| s.start_us + s.duration_us)
            .max()
            .unwrap_or(0);
        summary.started_at_ms = earliest_us.div_euclid(1000);
        summary.duration_ms = end_us as f64 / 1000.0;
        summary.spans = u32::try_from(spans.len()).unwrap_or(u32::MAX);
        summary.retries = fragments.iter().map(Trace::retries).sum();
        if fragments.iter().any(Trace::is_error) {
            summary.status = "error".into();
        }
    }
    // Depth-first: parents before children, siblings by start time.
    let index: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.span_id.as_str(), i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, (span, is_root)) in spans.iter().enumerate() {
        let parent = if *is_root {
            None
        } else {
            span.parent_id
                .as_deref()
                .and_then(|p| index.get(p).copied())
        };
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| (spans[i].0.start_us, i));
    }
    let mut ordered = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, u32)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|&i| (i, 0)).collect())
        .unwrap_or_default();
    while let Some((i, depth)) = stack.pop() {
        let (span, is_root) = &spans[i];
        ordered.push(span_view(span, *is_root, depth));
        if let Some(kids) = children.get(&Some(i)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    Some(TraceView {
        summary,
        spans: ordered,
    })
}

fn span_view(span: &FinishedSpan, is_root: bool, depth: u32) -> SpanView {
    SpanView {
        span_id: span.span_id.clone(),
        parent_id: if is_root {
            None
        } else {
            span.parent_id.clone()
        },
        depth,
        name: span.name.to_string(),
        start_offset_ms: span.start_us as f64 / 1000.0,
        duration_ms: span.duration_us as f64 / 1000.0,
        status: if span.failed() { "error" } else { "ok" }.to_string(),
        attributes: span
            .attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        events: span
            .events
            .iter()
            .map(|e| SpanEventView {
                offset_ms: e.at_us as f64 / 1000.0,
                message: format!("{} {}", e.level, e.message),
            })
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span for tests.
    pub(crate) fn span(
        id: &str,
        parent: Option<&str>,
        name: &str,
        start_us: u64,
        duration_us: u64,
        attributes: &[(&str, &str)],
    ) -> FinishedSpan {
        FinishedSpan {
            span_id: id.into(),
            parent_id: parent.map(str::to_string),
            name: name.to_string().into(),
            start_us,
            duration_us,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string().into(), v.to_string()))
                .collect(),
            events: Vec::new(),
        }
    }

    /// A trace of a call with one failed attempt and one good one.
    pub(crate) fn retried_trace(trace_id: &str, started_at_us: i64, outcome: &str) -> Trace {
        Trace {
            trace_id: trace_id.into(),
            root_span_id: "r".into(),
            started_at_us,
            tracestate: None,
            spans: vec![
                span("a1", Some("r"), "attempt", 100, 50, &[("error", "refused")]),
                span("a2", Some("r"), "attempt", 300, 500, &[("error", "")]),
                span("u2", Some("a2"), "upstream_call", 310, 480, &[]),
                span("au", Some("r"), "authenticate", 0, 10, &[]),
                span(
                    "r",
                    Some("caller"),
                    "tools/call",
                    0,
                    1_000,
                    &[
                        ("tool", "search__query"),
                        ("assistant", "claude"),
                        ("outcome", outcome),
                    ],
                ),
            ],
        }
    }

    #[test]
    fn the_summary_reads_the_root() {
        let trace = retried_trace("t1", 5_000_000, "ok");
        let summary = trace.summary();
        assert_eq!(summary.tool.as_deref(), Some("search__query"));
        assert_eq!(summary.assistant.as_deref(), Some("claude"));
        assert_eq!((summary.status.as_str(), summary.retries), ("ok", 1));
        assert_eq!((summary.spans, summary.started_at_ms), (5, 5_000));
        assert_eq!(summary.duration_ms, 1.0);
        assert_eq!(retried_trace("t1", 0, "failed").summary().status, "error");
    }

    #[test]
    fn filters_combine() {
        let trace = retried_trace("t1", 5_000_000, "ok");
        let q = |f: &dyn Fn(&mut TraceQuery)| {
            let mut query = TraceQuery::default();
            f(&mut query);
            trace.matches(&query)
        };
        assert!(q(&|_| {}));
        assert!(q(&|q| q.tool = Some("search__query".into())));
        assert!(q(&|q| q.tool = Some("search".into())));
        assert!(!q(&|q| q.tool = Some("search__lookup".into())));
        assert!(!q(&|q| q.tool = Some("sea".into())));
        assert!(!q(&|q| q.assistant = Some("other".into())));
        assert!(!q(&|q| q.status = Some("error".into())));
        assert!(q(&|q| q.min_duration_ms = Some(1.0)));
        assert!(!q(&|q| q.min_duration_ms = Some(1.5)));
        assert!(q(&|q| q.from_ms = Some(5_000)));
        assert!(!q(&|q| q.to_ms = Some(5_000)));
    }

    #[test]
    fn the_view_orders_depth_first_with_depths() {
        let view = trace_view(&[retried_trace("t1", 0, "ok")]).unwrap();
        let names: Vec<(&str, u32, &str)> = view
            .spans
            .iter()
            .map(|s| (s.name.as_str(), s.depth, s.status.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("tools/call", 0, "ok"),
                ("authenticate", 1, "ok"),
                ("attempt", 1, "error"),
                ("attempt", 1, "ok"),
                ("upstream_call", 2, "ok"),
            ]
        );
        assert_eq!(
            view.spans[0].parent_id, None,
            "the caller's span is not ours"
        );
        assert_eq!(view.spans[2].start_offset_ms, 0.1);
    }

    #[test]
    fn fragments_of_one_trace_id_share_one_time_axis() {
        let view = trace_view(&[
            retried_trace("t1", 0, "ok"),
            retried_trace("t1", 2_000, "failed"),
        ])
        .unwrap();
        assert_eq!(view.spans.len(), 10);
        assert_eq!(view.summary.status, "error");
        assert_eq!(view.summary.duration_ms, 3.0);
        assert_eq!(view.summary.retries, 2);
        assert!(trace_view(&[]).is_none());
    }
}
