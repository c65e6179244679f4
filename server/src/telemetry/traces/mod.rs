//! Traces of gateway calls, built on `tracing` spans (see README.md in this folder for the
//! instrumentation contract). The [`layer::TraceLayer`] assembles finished traces and hands
//! them to the [`Collector`]: recent ones stay in a bounded ring in memory; errors, slow
//! and sampled ones are queued for the store (written in batches off the hot path, see
//! [`persist`]) and, when configured, for OTLP export.

pub mod context;
pub mod layer;
pub mod model;
pub mod otlp;
pub mod persist;
pub mod query;

use model::Trace;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{Metadata, Span};
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

/// How many finished traces the in-memory ring keeps by default.
pub const DEFAULT_RING_CAPACITY: usize = 2000;

/// Which finished traces are persisted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PersistPolicy {
    /// Traces at least this long are kept.
    pub slow: Duration,
    /// The share of the other (fast, successful) traces kept, 0..=1.
    pub sample: f64,
}

impl Default for PersistPolicy {
    fn default() -> Self {
        PersistPolicy {
            slow: Duration::from_millis(500),
            sample: 0.01,
        }
    }
}

impl PersistPolicy {
    /// Whether to persist `trace`; `draw` is uniform in 0..1 (the sampling dice).
    pub fn keeps(&self, trace: &Trace, draw: f64) -> bool {
        trace.is_error()
            || trace.duration_ms() >= self.slow.as_secs_f64() * 1000.0
            || draw < self.sample
    }
}

/// Where finished traces go: the ring, and the queues of the store writer and the exporter.
pub struct Collector {
    ring: Mutex<VecDeque<Arc<Trace>>>,
    capacity: usize,
    policy: RwLock<PersistPolicy>,
    persist: RwLock<Option<mpsc::Sender<Arc<Trace>>>>,
    export: RwLock<Option<mpsc::Sender<Arc<Trace>>>>,
    /// Traces finished since start.
    pub finished: AtomicU64,
    /// Traces to persist dropped because the writer's queue was full.
    pub dropped: AtomicU64,
}

impl Collector {
    /// A collector keeping the last `capacity` traces in memory, persisting none yet.
    pub fn new(capacity: usize) -> Self {
        Collector {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity: capacity.max(1),
            policy: RwLock::new(PersistPolicy::default()),
            persist: RwLock::new(None),
            export: RwLock::new(None),
            finished: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Sets which traces are persisted.
    pub fn set_policy(&self, policy: PersistPolicy) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = policy;
    }

    /// Sends traces to persist to `queue` from now on (`None`: stop).
    pub fn persist_to(&self, queue: Option<mpsc::Sender<Arc<Trace>>>) {
        *self.persist.write().unwrap_or_else(PoisonError::into_inner) = queue;
    }

    /// Sends every finished trace to `queue` (the OTLP exporter) from now on.
    pub fn export_to(&self, queue: Option<mpsc::Sender<Arc<Trace>>>) {
        *self.export.write().unwrap_or_else(PoisonError::into_inner) = queue;
    }

    /// Takes a finished trace: into the ring, and (never waiting) into the queues.
    pub fn finish(&self, trace: Trace) {
        let trace = Arc::new(trace);
        self.finished.fetch_add(1, Ordering::Relaxed);
        {
            let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
            if ring.len() >= self.capacity {
                ring.pop_front();
            }
            ring.push_back(trace.clone());
        }
        let policy = *self.policy.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = self
            .persist
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && policy.keeps(&trace, fastrand::f64())
            && queue.try_send(trace.clone()).is_err()
        {
            // Traces are telemetry, not the audit log: a full queue drops, and counts.
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(queue) = self
            .export
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = queue.try_send(trace);
        }
    }

    /// Recent traces passing `keep`, newest first, at most `limit`.
    pub fn recent(&self, limit: usize, keep: impl Fn(&Trace) -> bool) -> Vec<Arc<Trace>> {
        // Copy the handles out first: finishing calls wait on this lock, searches must not
        // hold it while they filter.
        let ring: Vec<Arc<Trace>> = self
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        ring.into_iter()
            .rev()
            .filter(|t| keep(t))
            .take(limit)
            .collect()
    }

    /// Every fragment of `trace_id` still in the ring.
    pub fn fragments(&self, trace_id: &str) -> Vec<Trace> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter()
            .filter(|t| t.trace_id == trace_id)
            .map(|t| t.as_ref().clone())
            .collect()
    }
}

/// The process's collector (the one the global subscriber's layer feeds).
pub fn collector() -> &'static Arc<Collector> {
    static COLLECTOR: LazyLock<Arc<Collector>> =
        LazyLock::new(|| Arc::new(Collector::new(DEFAULT_RING_CAPACITY)));
    &COLLECTOR
}

/// What the trace layer sees: Fleetdeck's spans, and its events at DEBUG and above (other
/// crates' spans and events never reach it).
pub fn wanted(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("fleetdeck")
        && (metadata.is_span() || *metadata.level() <= tracing::Level::DEBUG)
}

/// The trace layer over the process's collector, with its filter.
pub fn layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    layer_for(collector().clone())
}

/// The trace layer feeding `collector`, with its filter.
pub fn layer_for<S>(collector: Arc<Collector>) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    layer::TraceLayer::new(collector).with_filter(
        tracing_subscriber::filter::filter_fn(wanted)
            .with_max_level_hint(tracing::level_filters::LevelFilter::DEBUG),
    )
}

/// The trace id and span id of `span`, if it is captured.
pub fn span_ids(span: &Span) -> Option<(u128, u64)> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        let extensions = data.extensions();
        let state = extensions.get::<layer::SpanState>()?;
        Some((state.trace.trace_id, state.span_id))
    })
    .flatten()
}

/// The trace id (32 hex digits) of the current span, if it is captured.
pub fn current_trace_id() -> Option<String> {
    span_ids(&Span::current()).map(|(trace, _)| context::trace_id_hex(trace))
}

/// What a request made inside `span` carries: its `traceparent` and the caller's
/// `tracestate` (passed on unchanged), if `span` is captured.
pub fn propagation_of(span: &Span) -> Option<(String, Option<String>)> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        let extensions = data.extensions();
        let state = extensions.get::<layer::SpanState>()?;
        Some((
            context::format_traceparent(state.trace.trace_id, state.span_id),
            state.trace.tracestate.clone(),
        ))
    })
    .flatten()
}

#[cfg(test)]
mod tests;
