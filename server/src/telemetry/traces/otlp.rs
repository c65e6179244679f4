//! OTLP export (HTTP + protobuf) of finished traces, when `--otlp-endpoint` is set: the
//! collector queues every finished trace (bounded, never waiting), and a task converts the
//! captured spans to OpenTelemetry span data and exports them in batches.

use super::Collector;
use super::model::{FinishedSpan, Trace};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Traces waiting for export before new ones are dropped.
const QUEUE: usize = 2048;
/// Most spans in one export request.
const BATCH_SPANS: usize = 1024;
/// Longest a span waits for its batch to fill.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The OTLP/HTTP traces URL for `endpoint`: a collector's base URL gets `/v1/traces`; a URL
/// already ending in it is kept.
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// The export task; stop it with [`OtlpExport::flush_and_stop`].
pub struct OtlpExport {
    collector: Arc<Collector>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Starts exporting every trace `collector` finishes to `endpoint`.
pub fn start(endpoint: &str, collector: Arc<Collector>) -> Result<OtlpExport, String> {
    let url = traces_url(endpoint);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "--otlp-endpoint {endpoint:?}: expected an http:// or https:// URL"
        ));
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("--otlp-endpoint {endpoint:?}: {e}"))?;
    exporter.set_resource(
        &Resource::builder()
            .with_service_name("fleetdeck")
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let (sender, receiver) = mpsc::channel(QUEUE);
    collector.export_to(Some(sender));
    let stop = CancellationToken::new();
    let task = tokio::spawn(export_batches(exporter, receiver, stop.clone()));
    tracing::info!(%url, "exporting traces over OTLP");
    Ok(OtlpExport {
        collector,
        stop,
        task,
    })
}

impl OtlpExport {
    /// Exports what is queued, then stops.
    pub async fn flush_and_stop(self) {
        self.collector.export_to(None);
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }
}

async fn export_batches(
    exporter: opentelemetry_otlp::SpanExporter,
    mut receiver: mpsc::Receiver<Arc<Trace>>,
    stop: CancellationToken,
) {
    let mut batch: Vec<SpanData> = Vec::new();
    let mut failures: u64 = 0;
    loop {
        let stopping = tokio::select! {
            received = receiver.recv() => match received {
                Some(trace) => { batch.extend(span_data(&trace)); false }
                None => true,
            },
            () = stop.cancelled() => true,
        };
        if !stopping {
            let deadline = tokio::time::sleep(FLUSH_EVERY);
            tokio::pin!(deadline);
            while batch.len() < BATCH_SPANS {
                tokio::select! {
                    received = receiver.recv() => match received {
                        Some(trace) => batch.extend(span_data(&trace)),
                        None => break,
                    },
                    () = &mut deadline => break,
                    () = stop.cancelled() => break,
                }
            }
        } else {
            receiver.close();
            while let Ok(trace) = receiver.try_recv() {
                batch.extend(span_data(&trace));
            }
        }
        if !batch.is_empty() {
            let spans = batch.len();
            if let Err(error) = exporter.export(std::mem::take(&mut batch)).await {
                failures += 1;
                // Once, then every hundredth failure: a collector that is down is not news.
                if failures == 1 || failures.is_multiple_of(100) {
                    tracing::warn!(%error, spans, failures, "cannot export traces over OTLP; dropped");
                }
            }
        }
        if stopping {
            let _ = exporter.shutdown();
            return;
        }
    }
}

/// A trace's spans as OpenTelemetry span data.
pub fn span_data(trace: &Trace) -> Vec<SpanData> {
    let Ok(trace_id) = TraceId::from_hex(&trace.trace_id) else {
        return Vec::new();
    };
    let state = trace
        .tracestate
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let scope = InstrumentationScope::builder("fleetdeck")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let at = |offset_us: u64| {
        UNIX_EPOCH
            + Duration::from_micros(u64::try_from(trace.started_at_us).unwrap_or(0))
            + Duration::from_micros(offset_us)
    };
    trace
        .spans
        .iter()
        .filter_map(|span| {
            let span_id = SpanId::from_hex(&span.span_id).ok()?;
            let is_root = span.span_id == trace.root_span_id;
            let parent = span
                .parent_id
                .as_deref()
                .and_then(|p| SpanId::from_hex(p).ok())
                .unwrap_or(SpanId::INVALID);
            Some(SpanData {
                span_context: SpanContext::new(
                    trace_id,
                    span_id,
                    TraceFlags::SAMPLED,
                    false,
                    state.clone(),
                ),
                parent_span_id: parent,
                parent_span_is_remote: is_root && parent != SpanId::INVALID,
                span_kind: kind(span, is_root),
                name: span.name.clone(),
                start_time: at(span.start_us),
                end_time: at(span.start_us + span.duration_us),
                attributes: span
                    .attributes
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                    .collect(),
                dropped_attributes_count: 0,
                events: events(span, &at),
                links: SpanLinks::default(),
                status: status(span),
                instrumentation_scope: scope.clone(),
            })
        })
        .collect()
}

fn kind(span: &FinishedSpan, is_root: bool) -> SpanKind {
    match span.name.as_ref() {
        _ if is_root => SpanKind::Server,
        "upstream_call" => SpanKind::Client,
        _ => SpanKind::Internal,
    }
}

fn status(span: &FinishedSpan) -> Status {
    if !span.failed() {
        return Status::Unset;
    }
    let why = span
        .attribute("error")
        .filter(|e| !e.is_empty())
        .or_else(|| span.attribute("outcome"))
        .unwrap_or("failed");
    Status::error(why.to_string())
}

fn events(span: &FinishedSpan, at: &impl Fn(u64) -> SystemTime) -> SpanEvents {
    let mut events = SpanEvents::default();
    events.events = span
        .events
        .iter()
        .map(|e| {
            opentelemetry::trace::Event::new(
                e.message.clone(),
                at(e.at_us),
                vec![KeyValue::new("level", e.level.clone())],
                0,
            )
        })
        .collect();
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::traces::model::tests::retried_trace;

    fn trace() -> Trace {
        let mut trace = retried_trace(
            "0af7651916cd43dd8448eb211c80319c",
            1_700_000_000_000_000,
            "ok",
        );
        let ids = [
            "00000000000000a1",
            "00000000000000a2",
            "00000000000000b2",
            "00000000000000c1",
            "0000000000000001",
        ];
        for (span, id) in trace.spans.iter_mut().zip(ids) {
            span.span_id = id.to_string();
        }
        trace.root_span_id = "0000000000000001".into();
        for span in &mut trace.spans {
            span.parent_id = match span.name.as_ref() {
                "tools/call" => Some("b7ad6b7169203331".into()),
                "upstream_call" => Some("00000000000000a2".into()),
                _ => Some("0000000000000001".into()),
            };
        }
        trace.spans[0].events.push(super::super::model::SpanEvent {
            at_us: 140,
            level: "DEBUG".into(),
            message: "retrying after 20 ms: cannot connect".into(),
        });
        trace
    }

    #[test]
    fn endpoints_get_the_traces_path_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn spans_convert_with_ids_parents_times_and_status() {
        let data = span_data(&trace());
        assert_eq!(data.len(), 5);
        let by_name = |name: &str| data.iter().find(|s| s.name == name).unwrap();
        let root = by_name("tools/call");
        assert_eq!(
            root.span_context.trace_id(),
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap()
        );
        assert_eq!(
            root.parent_span_id,
            SpanId::from_hex("b7ad6b7169203331").unwrap()
        );
        assert!(root.parent_span_is_remote);
        assert_eq!(root.span_kind, SpanKind::Server);
        assert_eq!(root.status, Status::Unset);
        assert_eq!(
            root.start_time,
            UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000)
        );
        assert_eq!(
            root.end_time.duration_since(root.start_time).unwrap(),
            Duration::from_millis(1)
        );
        let failed = by_name("attempt");
        assert_eq!(failed.status, Status::error("refused"));
        assert_eq!(failed.events.len(), 1);
        assert_eq!(
            failed.events[0].name,
            "retrying after 20 ms: cannot connect"
        );
        assert!(!failed.parent_span_is_remote);
        let call = by_name("upstream_call");
        assert_eq!(call.span_kind, SpanKind::Client);
        assert_eq!(
            call.parent_span_id,
            SpanId::from_hex("00000000000000a2").unwrap()
        );
    }

    #[tokio::test]
    async fn traces_reach_a_collector_over_http() {
        use axum::body::Bytes;
        use axum::http::HeaderMap;
        // As main does: reqwest is built without a default TLS provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tx, mut rx) = mpsc::channel::<(HeaderMap, Bytes)>(8);
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, body)).await;
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let collector = Arc::new(Collector::new(10));
        let export = start(&format!("http://{addr}"), collector.clone()).unwrap();
        collector.finish(trace());
        let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an export within 10 s")
            .unwrap();
        assert_eq!(headers["content-type"], "application/x-protobuf");
        let trace_id = u128::from_str_radix("0af7651916cd43dd8448eb211c80319c", 16).unwrap();
        let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(
            contains(&trace_id.to_be_bytes()),
            "the trace id is in the request"
        );
        for name in [
            "tools/call",
            "upstream_call",
            "retrying after 20 ms: cannot connect",
            "fleetdeck",
        ] {
            assert!(contains(name.as_bytes()), "{name} is in the request");
        }
        export.flush_and_stop().await;
        server.abort();
        assert!(start("collector:4318", Arc::new(Collector::new(1))).is_err());
    }
}
