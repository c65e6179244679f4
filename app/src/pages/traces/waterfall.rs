//! The span waterfall: one row per span, indented by depth, its bar placed by start offset
//! and sized by duration as shares of the whole trace. A row opens (`<details>`, no script
//! needed) to show the span's attributes and log events.

use super::format_duration_ms;
use crate::wire::{SpanView, TraceView};
use leptos::prelude::*;

/// A bar's position and width in percent of the trace, at least a sliver wide so that
/// instant spans stay visible.
pub fn bar_geometry(start_ms: f64, duration_ms: f64, total_ms: f64) -> (f64, f64) {
    if total_ms.is_nan() || total_ms <= 0.0 {
        return (0.0, 100.0);
    }
    let left = match start_ms / total_ms * 100.0 {
        share if share.is_nan() => 0.0,
        share => share.clamp(0.0, 99.7),
    };
    // min/max, not clamp: with rounding, `100 - left` can fall just below the minimum, and
    // clamp panics on crossed bounds.
    let width = (duration_ms / total_ms * 100.0).min(100.0 - left).max(0.3);
    (left, width)
}

/// The value of a span's attribute.
fn attribute<'a>(span: &'a SpanView, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The short facts shown beside a span's name: the instance, breaker state and backoff of
/// an attempt, the choice of an instance selection, a cache lookup's result.
pub fn span_label(span: &SpanView) -> String {
    let mut parts: Vec<String> = Vec::new();
    match span.name.as_str() {
        "attempt" => {
            if let Some(instance) = attribute(span, "instance") {
                parts.push(instance.to_string());
            }
            if let Some(breaker) = attribute(span, "breaker") {
                parts.push(format!("breaker {breaker}"));
            }
            if let Some(backoff) = attribute(span, "backoff_ms").filter(|b| *b != "0") {
                parts.push(format!("after {backoff} ms backoff"));
            }
        }
        "select_instance" => {
            if let Some(strategy) = attribute(span, "strategy") {
                parts.push(strategy.to_string());
            }
            if let Some(instance) = attribute(span, "instance") {
                parts.push(format!("→ {instance}"));
            }
        }
        "cache_lookup" => parts.extend(attribute(span, "result").map(str::to_string)),
        "permission" => parts.extend(attribute(span, "decision").map(str::to_string)),
        "tools/call" => parts.extend(attribute(span, "outcome").map(str::to_string)),
        _ => {}
    }
    parts.join(" · ")
}

/// The waterfall of a trace.
#[component]
pub fn Waterfall(trace: TraceView) -> impl IntoView {
    let total = trace
        .spans
        .iter()
        .map(|s| s.start_offset_ms + s.duration_ms)
        .fold(trace.summary.duration_ms, f64::max);
    view! {
        <section class="card">
            <h2>"Spans"</h2>
            <div class="waterfall-scale muted small">
                <span>"0 ms"</span>
                <span>{format_duration_ms(total)}</span>
            </div>
            <ol class="waterfall" data-testid="waterfall">
                {trace
                    .spans
                    .into_iter()
                    .map(|span| view! { <SpanRow span total /> })
                    .collect_view()}
            </ol>
        </section>
    }
}

/// One span: the summary row (name, facts, bar) and, opened, its attributes and events.
#[component]
fn SpanRow(span: SpanView, total: f64) -> impl IntoView {
    let (left, width) = bar_geometry(span.start_offset_ms, span.duration_ms, total);
    let failed = span.status == "error";
    let label = span_label(&span);
    // Indent and bar without inline styles (the Content-Security-Policy allows none): one
    // spacer per level, and the bar as SVG geometry.
    let indent = (0..span.depth)
        .map(|_| view! { <span class="span-indent" aria-hidden="true"></span> })
        .collect_view();
    let (bar_x, bar_width) = (format!("{left:.3}%"), format!("{width:.3}%"));
    let bar_title = format!(
        "{} at +{}",
        format_duration_ms(span.duration_ms),
        format_duration_ms(span.start_offset_ms)
    );
    let attributes = span.attributes.clone();
    let events = span.events.clone();
    view! {
        <li
            class="span-row"
            class:span-error=failed
            data-testid="span-row"
            data-name=span.name.clone()
            data-status=span.status.clone()
            data-depth=span.depth
        >
            <details>
                <summary>
                    <span class="span-name">
                        {indent}
                        <code>{span.name.clone()}</code>
                        " "
                        <span class="span-label muted" data-testid="span-label">{label}</span>
                    </span>
                    <span class="span-track" title=bar_title>
                        <svg aria-hidden="true">
                            <rect class="span-bar" x=bar_x y="0" width=bar_width height="100%" rx="3"></rect>
                        </svg>
                    </span>
                    <span class="span-duration num">{format_duration_ms(span.duration_ms)}</span>
                </summary>
                <div class="span-details" data-testid="span-details">
                    <dl class="span-attributes">
                        <dt>"span id"</dt>
                        <dd><code>{span.span_id.clone()}</code></dd>
                        <dt>"start"</dt>
                        <dd>{format!("+{}", format_duration_ms(span.start_offset_ms))}</dd>
                        {attributes
                            .into_iter()
                            .filter(|(_, v)| !v.is_empty())
                            .map(|(k, v)| view! { <dt>{k}</dt><dd><code>{v}</code></dd> })
                            .collect_view()}
                    </dl>
                    {(!events.is_empty()).then(|| view! {
                        <ul class="span-events" data-testid="span-events">
                            {events
                                .into_iter()
                                .map(|e| view! {
                                    <li>
                                        <span class="muted">{format!("+{} ", format_duration_ms(e.offset_ms))}</span>
                                        {e.message}
                                    </li>
                                })
                                .collect_view()}
                        </ul>
                    })}
                </div>
            </details>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, attributes: &[(&str, &str)]) -> SpanView {
        SpanView {
            span_id: "s".into(),
            parent_id: None,
            depth: 1,
            name: name.into(),
            start_offset_ms: 0.0,
            duration_ms: 1.0,
            status: "ok".into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            events: Vec::new(),
        }
    }

    #[test]
    fn bars_are_shares_of_the_trace() {
        assert_eq!(bar_geometry(25.0, 50.0, 100.0), (25.0, 50.0));
        assert_eq!(
            bar_geometry(0.0, 0.0, 100.0),
            (0.0, 0.3),
            "instant spans stay visible"
        );
        assert_eq!(bar_geometry(100.0, 10.0, 100.0), (99.7, 0.3));
        // Rounding near the end must not panic (clamp would: its bounds cross).
        let (left, width) = bar_geometry(99.70000000000001, 1.0, 100.0);
        assert!(left <= 99.7 && width >= 0.3);
        let (left, width) = bar_geometry(f64::NAN, f64::NAN, 100.0);
        assert!(left == 0.0 && (0.3..=100.0).contains(&width));
        assert_eq!(bar_geometry(0.0, 5.0, 0.0), (0.0, 100.0));
    }

    #[test]
    fn attempts_show_instance_breaker_and_backoff() {
        let first = span(
            "attempt",
            &[
                ("instance", "search-a"),
                ("breaker", "closed"),
                ("backoff_ms", "0"),
            ],
        );
        assert_eq!(span_label(&first), "search-a · breaker closed");
        let second = span(
            "attempt",
            &[
                ("instance", "search-b"),
                ("breaker", "half_open"),
                ("backoff_ms", "12"),
            ],
        );
        assert_eq!(
            span_label(&second),
            "search-b · breaker half_open · after 12 ms backoff"
        );
        let select = span(
            "select_instance",
            &[("strategy", "round-robin"), ("instance", "search-a")],
        );
        assert_eq!(span_label(&select), "round-robin · → search-a");
        assert_eq!(span_label(&span("authenticate", &[])), "");
    }
}
