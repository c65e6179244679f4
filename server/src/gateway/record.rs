//! What the gateway remembers of one tool call: the record the audit log stores and
//! telemetry counts. Built on the hot path, consumed off it.

use crate::access::audit_log::AuditLog;
use crate::sanitize::bounded;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::series::SeriesBook;
use std::sync::Arc;
use std::time::Duration;

/// How a tool call ended, as the audit log and the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The tool answered with a result.
    Ok,
    /// The tool answered with `isError: true`.
    ToolError,
    /// The gateway could not get an answer (no instance, upstream failures, timeouts).
    Failed,
    /// A permission refused the call.
    Denied,
    /// The assistant's rate limit refused the call.
    RateLimited,
    /// The request was malformed: unknown tool, arguments not fitting the schema.
    Rejected,
    /// The caller cancelled it.
    Cancelled,
}

impl Outcome {
    /// Every outcome, for metrics that start at zero.
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::ToolError,
        Outcome::Failed,
        Outcome::Denied,
        Outcome::RateLimited,
        Outcome::Rejected,
        Outcome::Cancelled,
    ];

    /// The outcome's name as stored and labelled.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
            Outcome::RateLimited => "rate_limited",
            Outcome::Rejected => "rejected",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One tool call as it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRecord {
    /// When the call arrived (Unix ms).
    pub at_ms: i64,
    /// The calling assistant.
    pub assistant: String,
    /// The server part of `<server>__<tool>` (as asked, even if unknown).
    pub server: String,
    /// The tool part.
    pub tool: String,
    /// The instance that handled the last attempt, if any was reached.
    pub instance: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether the result cache answered.
    pub cache_hit: bool,
    /// Whether the tool is cacheable (its calls count in the hit rate).
    pub cacheable: bool,
    /// Time spent in the gateway.
    pub duration: Duration,
    /// Upstream attempts (0 when refused before any).
    pub attempts: u32,
    /// W3C trace id of the call's trace.
    pub trace_id: Option<String>,
    /// SHA-256 (hex) of the canonical JSON of the arguments.
    pub args_digest: String,
    /// The arguments as JSON with configured keys redacted, only where the server records them.
    pub arguments: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// Whether the tool was found in its server's catalog (only those get their own
    /// metric labels: callers choose the names of the others).
    pub known_tool: bool,
}

/// Hard bounds of a record cut down after the database refused it.
const CUT_NAME_BYTES: usize = 64;

impl CallRecord {
    /// A one-line description for logs: when, who, which tool, how it ended; every part
    /// bounded (never the arguments).
    pub fn summary(&self) -> String {
        format!(
            "at_ms={} assistant={} tool={}__{} outcome={}",
            self.at_ms,
            bounded(&self.assistant, CUT_NAME_BYTES),
            bounded(&self.server, CUT_NAME_BYTES),
            bounded(&self.tool, CUT_NAME_BYTES),
            self.outcome.as_str()
        )
    }

    /// This record with every text stripped of control characters and cut to a small hard
    /// bound, and without its arguments: what is written when the database refused it as
    /// it was (the call still counts in the log).
    pub fn cut_down(&self) -> CallRecord {
        let cut = |text: &str| bounded(text, CUT_NAME_BYTES).into_owned();
        let digest_ok =
            self.args_digest.len() == 64 && self.args_digest.bytes().all(|b| b.is_ascii_hexdigit());
        CallRecord {
            assistant: cut(&self.assistant),
            server: cut(&self.server),
            tool: cut(&self.tool),
            instance: self.instance.as_deref().map(cut),
            trace_id: self.trace_id.as_deref().map(cut),
            args_digest: if digest_ok {
                self.args_digest.clone()
            } else {
                cut(&self.args_digest)
            },
            arguments: None,
            error: Some(match &self.error {
                Some(error) => format!(
                    "{} (record cut down: the database refused it whole)",
                    bounded(error, 256)
                ),
                None => "record cut down: the database refused it whole".to_string(),
            }),
            ..self.clone()
        }
    }
}

/// Where call records go: the metrics and the per-minute series (counted at once) and the
/// audit log (batched to the store). Cheap to clone.
#[derive(Clone)]
pub struct CallRecorder {
    audit: AuditLog,
    metrics: Arc<Metrics>,
    series: Arc<SeriesBook>,
}

impl CallRecorder {
    /// A recorder counting in `metrics` and `series` and writing to `audit`.
    pub fn new(audit: AuditLog, metrics: Arc<Metrics>, series: Arc<SeriesBook>) -> Self {
        CallRecorder {
            audit,
            metrics,
            series,
        }
    }

    /// The metrics calls are counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Records one call; returns once the audit log holds it (queued, never dropped).
    pub async fn record(&self, record: CallRecord) {
        self.metrics.observe(&record);
        self.series.observe(&record);
        self.audit.enqueue(record).await;
    }
}
