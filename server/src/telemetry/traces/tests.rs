//! The layer against a real `tracing` registry.

use super::*;
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt;

/// Runs `body` under a subscriber whose trace layer feeds a fresh collector.
fn traced(body: impl FnOnce()) -> Vec<Arc<Trace>> {
    let collector = Arc::new(Collector::new(10));
    let subscriber = tracing_subscriber::registry().with(layer_for(collector.clone()));
    tracing::subscriber::with_default(subscriber, body);
    collector.recent(100, |_| true)
}

#[test]
fn a_root_and_its_children_make_one_trace() {
    let mut seen_trace_id = None;
    let traces = traced(|| {
        let root = tracing::debug_span!(
            "tools/call",
            traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            tracestate = "congo=t61rcWkgMzE",
            assistant = "claude",
            tool = "search__query",
            outcome = Empty,
            error = Empty
        );
        let _root = root.enter();
        seen_trace_id = current_trace_id();
        for (n, error) in [(1, Some("connection refused")), (2, None)] {
            let attempt = tracing::debug_span!("attempt", n, instance = "search-a", error = Empty);
            let _a = attempt.enter();
            let call = tracing::debug_span!("upstream_call");
            let (traceparent, tracestate) = propagation_of(&call).expect("captured");
            assert_eq!(tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
            assert!(traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
            drop(call);
            if let Some(error) = error {
                attempt.record("error", error);
                tracing::debug!(backoff_ms = 50, "retrying after 50 ms: {error}");
            }
        }
        root.record("outcome", "ok");
    });
    assert_eq!(traces.len(), 1);
    let trace = &traces[0];
    assert_eq!(trace.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(seen_trace_id.as_deref(), Some(trace.trace_id.as_str()));
    assert_eq!(trace.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    let root = trace.root().unwrap();
    assert_eq!(root.parent_id.as_deref(), Some("b7ad6b7169203331"));
    assert_eq!(root.attribute("outcome"), Some("ok"));
    assert_eq!(root.attribute("tool"), Some("search__query"));
    assert_eq!(trace.spans.len(), 5);
    assert_eq!(trace.retries(), 1);
    let attempts: Vec<_> = trace.spans.iter().filter(|s| s.name == "attempt").collect();
    assert_eq!(attempts[0].attribute("error"), Some("connection refused"));
    assert_eq!(
        attempts[0].parent_id.as_deref(),
        Some(root.span_id.as_str())
    );
    assert_eq!(attempts[0].events.len(), 1);
    assert_eq!(attempts[0].events[0].level, "DEBUG");
    assert_eq!(
        attempts[0].events[0].message,
        "retrying after 50 ms: connection refused backoff_ms=50"
    );
    assert!(!attempts[1].failed());
    let calls: Vec<_> = trace
        .spans
        .iter()
        .filter(|s| s.name == "upstream_call")
        .collect();
    assert_eq!(
        calls[1].parent_id.as_deref(),
        Some(attempts[1].span_id.as_str())
    );
    assert!(!trace.is_error());
}

#[test]
fn spans_outside_a_root_are_ignored_and_bad_traceparents_start_new_traces() {
    let traces = traced(|| {
        let other = tracing::debug_span!("housekeeping");
        let _o = other.enter();
        assert_eq!(current_trace_id(), None);
        drop(tracing::debug_span!("attempt"));
        // A root inside an uncaptured span still starts a trace.
        for bad in [
            "00-zz",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        ] {
            let root = tracing::debug_span!("tools/call", traceparent = bad, outcome = "failed");
            let _r = root.enter();
        }
    });
    assert_eq!(traces.len(), 2);
    for trace in &traces {
        assert_eq!(trace.spans.len(), 1);
        assert_eq!(trace.root().unwrap().parent_id, None);
        assert_ne!(trace.trace_id, "0".repeat(32));
        assert!(trace.is_error());
    }
    assert_ne!(traces[0].trace_id, traces[1].trace_id);
}

#[test]
fn the_ring_keeps_the_newest_and_the_policy_picks_what_to_persist() {
    let collector = Collector::new(2);
    let (sender, mut receiver) = mpsc::channel(1);
    collector.persist_to(Some(sender));
    collector.set_policy(PersistPolicy {
        slow: Duration::from_millis(500),
        sample: 0.0,
    });
    let mut trace = model::tests::retried_trace(&format!("{:032x}", 1), 0, "ok");
    collector.finish(trace.clone());
    assert!(receiver.try_recv().is_err(), "fast and fine: not persisted");
    trace.trace_id = format!("{:032x}", 2);
    trace.spans.last_mut().unwrap().attributes[2].1 = "failed".into();
    collector.finish(trace.clone());
    assert_eq!(receiver.try_recv().unwrap().trace_id, trace.trace_id);
    // Slow (and failed) twice with a queue of one: the second is dropped and counted.
    trace.spans.last_mut().unwrap().duration_us = 600_000;
    collector.finish(trace.clone());
    collector.finish(trace.clone());
    assert_eq!(collector.dropped.load(Ordering::Relaxed), 1);
    let recent = collector.recent(10, |_| true);
    assert_eq!(recent.len(), 2, "the ring holds two");
    assert_eq!(collector.finished.load(Ordering::Relaxed), 4);

    let policy = PersistPolicy::default();
    let fast = model::tests::retried_trace("a", 0, "ok");
    assert!(!policy.keeps(&fast, 0.5));
    assert!(policy.keeps(&fast, 0.001), "sampled");
}
