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
/// Most fragments (calls) one trace id may gather: a caller reusing its trace id for ever
/// gets a new trace for each call beyond this.
pub const MAX_FRAGMENTS_PER_TRACE: u32 = 32;
/// Trace ids remembered with the assistant that owns them, per replica.
const MAX_OWNED_TRACES: u64 = 200_000;
/// How long a trace id stays owned after its last fragment.
const OWNERSHIP_TTL: Duration = Duration::from_secs(3600);

/// Whether a caller may continue the trace its `traceparent` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A new trace id, or one this assistant already owns with room for another fragment.
    Granted,
    /// Another assistant's trace: the caller gets a trace of its own.
    OwnedByAnother,
    /// This assistant's trace, but it has [`MAX_FRAGMENTS_PER_TRACE`] fragments already.
    Full,
}

impl Claim {
    /// Why the caller's context was not continued, for the root span.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Claim::Granted => None,
            Claim::OwnedByAnother => Some("the trace id belongs to another assistant"),
            Claim::Full => Some("the trace id has its maximum number of fragments"),
        }
    }
}

/// Who owns a trace id, and how many fragments it has.
#[derive(Debug)]
struct TraceOwner {
    assistant: Arc<str>,
    fragments: std::sync::atomic::AtomicU32,
}

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
    /// Trace id → its owner, for callers that send a `traceparent`.
    owners: moka::sync::Cache<u128, Arc<TraceOwner>>,
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
            owners: moka::sync::Cache::builder()
                .max_capacity(MAX_OWNED_TRACES)
                .time_to_idle(OWNERSHIP_TTL)
                .build(),
        }
    }

    /// Whether `assistant` may add a fragment to trace `trace_id` (a caller-chosen id): the
    /// first assistant to use an id owns it, and an id holds at most
    /// [`MAX_FRAGMENTS_PER_TRACE`] fragments. A granted claim counts the fragment.
    pub fn claim(&self, trace_id: u128, assistant: &Arc<str>) -> Claim {
        let owner = self.owners.get_with(trace_id, || {
            Arc::new(TraceOwner {
                assistant: assistant.clone(),
                fragments: std::sync::atomic::AtomicU32::new(0),
            })
        });
        if *owner.assistant != **assistant {
            return Claim::OwnedByAnother;
        }
        let before = owner.fragments.fetch_add(1, Ordering::Relaxed);
        if before >= MAX_FRAGMENTS_PER_TRACE {
            owner.fragments.fetch_sub(1, Ordering::Relaxed);
            return Claim::Full;
        }
        Claim::Granted
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

    /// Every fragment of `trace_id` still in the ring (a new trace of ours becomes owned by
    /// its assistant once its first fragment finishes: see [`Collector::finish`]).
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

#[cfg(test)]
mod ownership_tests {
    use super::*;

    #[test]
    fn the_first_assistant_owns_a_trace_id_and_fragments_are_capped() {
        let collector = Collector::new(16);
        let (alice, bob): (Arc<str>, Arc<str>) = ("alice".into(), "bob".into());
        assert_eq!(collector.claim(7, &alice), Claim::Granted);
        assert_eq!(collector.claim(7, &bob), Claim::OwnedByAnother);
        for _ in 1..MAX_FRAGMENTS_PER_TRACE {
            assert_eq!(collector.claim(7, &alice), Claim::Granted);
        }
        assert_eq!(collector.claim(7, &alice), Claim::Full);
        assert_eq!(
            collector.claim(8, &bob),
            Claim::Granted,
            "another id is free"
        );
        assert!(Claim::OwnedByAnother.refusal().is_some());
    }

    #[test]
    fn a_view_keeps_the_owners_fragments_only() {
        use model::tests::retried_trace;
        let mut mine = retried_trace("t", 0, "ok");
        let mut theirs = retried_trace("t", 1_000, "failed");
        for span in &mut theirs.spans {
            for attribute in &mut span.attributes {
                if attribute.0 == "assistant" {
                    attribute.1 = "mallory".into();
                }
            }
        }
        mine.root_span_id = "r".into();
        let kept = model::owned_fragments(vec![theirs, mine]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].assistant(), Some("claude"));
        let many: Vec<Trace> = (0..40).map(|n| retried_trace("t", n, "ok")).collect();
        assert_eq!(
            model::owned_fragments(many).len(),
            MAX_FRAGMENTS_PER_TRACE as usize
        );
    }
}
