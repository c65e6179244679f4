//! The `tracing` layer that assembles traces: spans under a root span of ours (see
//! [`ROOT_SPANS`]) are timed, their fields and events kept, and each finished root hands
//! its whole trace to the [`Collector`]. Every other span is ignored after one extension
//! lookup of its parent.

use super::Collector;
use super::context::{self, TraceContext};
use super::model::{FinishedSpan, SpanEvent, Trace};
use crate::sanitize::{MAX_ATTRIBUTE_BYTES, bounded, bounded_owned};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Names of the spans that start a trace (when no captured span encloses them).
pub const ROOT_SPANS: &[&str] = &["tools/call"];

/// Most events kept per span (a chatty span keeps its first ones).
const MAX_EVENTS_PER_SPAN: usize = 64;
/// Most spans kept per trace (a runaway loop cannot exhaust memory).
const MAX_SPANS_PER_TRACE: usize = 512;

/// The layer; install it with a filter such as [`super::span_filter`].
pub struct TraceLayer {
    collector: Arc<Collector>,
}

impl TraceLayer {
    /// A layer handing finished traces to `collector`.
    pub fn new(collector: Arc<Collector>) -> Self {
        TraceLayer { collector }
    }
}

/// What every span of a trace shares while the trace is open.
#[derive(Debug)]
pub(crate) struct OpenTrace {
    pub(crate) trace_id: u128,
    root_span_id: u64,
    started: Instant,
    started_at: SystemTime,
    pub(crate) tracestate: Option<String>,
    finished: Mutex<Vec<FinishedSpan>>,
}

/// The layer's data on one captured span (in the registry's span extensions).
#[derive(Debug)]
pub(crate) struct SpanState {
    pub(crate) trace: Arc<OpenTrace>,
    pub(crate) span_id: u64,
    parent_id: Option<u64>,
    name: &'static str,
    started: Instant,
    attributes: Vec<(Cow<'static, str>, String)>,
    events: Vec<SpanEvent>,
}

impl OpenTrace {
    fn offset_us(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_micros()).unwrap_or(u64::MAX)
    }
}

/// Collects a span's or event's fields as text.
struct Fields<'a> {
    attributes: &'a mut Vec<(Cow<'static, str>, String)>,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        set(
            self.attributes,
            field.name(),
            bounded_owned(value, MAX_ATTRIBUTE_BYTES),
        );
    }
    // Numbers and flags are short: written straight, without the bounded `Debug` path.
    fn record_u64(&mut self, field: &Field, value: u64) {
        set(self.attributes, field.name(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        set(self.attributes, field.name(), value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        set(self.attributes, field.name(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // Formatted into a bounded buffer: a huge value is never rendered whole.
        let mut text = BoundedWriter::default();
        let _ = write!(text, "{value:?}");
        let cut = match bounded(&text.0, MAX_ATTRIBUTE_BYTES) {
            Cow::Borrowed(_) => None,
            Cow::Owned(cut) => Some(cut),
        };
        // Within the bound: the buffer itself, not a copy of it.
        set(self.attributes, field.name(), cut.unwrap_or(text.0));
    }
}

/// A `fmt::Write` that keeps the first bytes written and drops the rest.
#[derive(Default)]
struct BoundedWriter(String);

impl std::fmt::Write for BoundedWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        // A little over the bound, so that `bounded` sees the text was longer and marks it.
        let room = (MAX_ATTRIBUTE_BYTES + 8).saturating_sub(self.0.len());
        if room == 0 {
            return Ok(());
        }
        let mut end = room.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&s[..end]);
        Ok(())
    }
}

fn set(attributes: &mut Vec<(Cow<'static, str>, String)>, key: &'static str, value: String) {
    match attributes.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => attributes.push((Cow::Borrowed(key), value)),
    }
}

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|parent| {
            parent
                .extensions()
                .get::<SpanState>()
                .map(|p| (p.trace.clone(), p.span_id))
        });
        let name = attrs.metadata().name();
        let mut attributes = Vec::new();
        attrs.record(&mut Fields {
            attributes: &mut attributes,
        });
        let now = Instant::now();
        let span_id = context::new_span_id();
        let (trace, parent_id) = match parent {
            Some((trace, parent_id)) => {
                if trace
                    .finished
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
                    >= MAX_SPANS_PER_TRACE
                {
                    return;
                }
                (trace, Some(parent_id))
            }
            None if ROOT_SPANS.contains(&name) => {
                // The caller's context, validated by whoever created the root.
                let caller: Option<TraceContext> = attributes
                    .iter()
                    .find(|(k, _)| *k == "traceparent")
                    .and_then(|(_, v)| context::parse_traceparent(v));
                let tracestate = attributes
                    .iter()
                    .find(|(k, _)| *k == "tracestate")
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty() && caller.is_some());
                let trace = Arc::new(OpenTrace {
                    trace_id: caller
                        .as_ref()
                        .map_or_else(context::new_trace_id, |c| c.trace_id),
                    root_span_id: span_id,
                    started: now,
                    started_at: SystemTime::now(),
                    tracestate,
                    finished: Mutex::new(Vec::new()),
                });
                (trace, caller.map(|c| c.parent_span_id))
            }
            None => return,
        };
        span.extensions_mut().insert(SpanState {
            trace,
            span_id,
            parent_id,
            name,
            started: now,
            attributes,
            events: Vec::new(),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<SpanState>() {
            values.record(&mut Fields {
                attributes: &mut state.attributes,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(state) = extensions.get_mut::<SpanState>() else {
            return;
        };
        if state.events.len() >= MAX_EVENTS_PER_SPAN {
            return;
        }
        let mut fields = Vec::new();
        event.record(&mut Fields {
            attributes: &mut fields,
        });
        let mut message = fields
            .iter()
            .find(|(k, _)| *k == "message")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for (key, value) in fields.iter().filter(|(k, _)| *k != "message") {
            let _ = write!(message, " {key}={value}");
        }
        state.events.push(SpanEvent {
            at_us: state.trace.offset_us(Instant::now()),
            level: event.metadata().level().to_string(),
            message: bounded_owned(message.trim_start(), MAX_ATTRIBUTE_BYTES),
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        let ended = Instant::now();
        let trace = state.trace;
        let finished = FinishedSpan {
            span_id: context::span_id_hex(state.span_id),
            parent_id: state.parent_id.map(context::span_id_hex),
            name: state.name.into(),
            start_us: trace.offset_us(state.started),
            duration_us: u64::try_from(ended.saturating_duration_since(state.started).as_micros())
                .unwrap_or(u64::MAX),
            attributes: state.attributes,
            events: state.events,
        };
        let is_root = state.span_id == trace.root_span_id;
        let spans = {
            let mut spans = trace
                .finished
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            spans.push(finished);
            if !is_root {
                return;
            }
            std::mem::take(&mut *spans)
        };
        let started_at_us = trace
            .started_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        self.collector.finish(Trace {
            trace_id: context::trace_id_hex(trace.trace_id),
            root_span_id: context::span_id_hex(trace.root_span_id),
            started_at_us,
            tracestate: trace.tracestate.clone(),
            spans,
        });
    }
}
