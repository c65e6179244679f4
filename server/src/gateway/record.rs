//! What the gateway remembers of one tool call: the record the audit log stores and
//! telemetry counts. Built on the hot path, consumed off it.

use crate::access::audit_log::AuditLog;
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

    /// Records one call; returns once the audit log holds it (queued, never dropped).
    pub async fn record(&self, record: CallRecord) {
        self.metrics.observe(&record);
        self.series.observe(&record);
        self.audit.enqueue(record).await;
    }
}
