//! What every demo server kind shares: the `Backend` trait, the generic [`DemoServer`], and
//! its call path (natural latency, the knobs' faults, metrics).
//!
//! One generic [`DemoServer`] carries what every kind shares; a `Backend` per kind owns the
//! data and the tools (declared with rmcp's `#[tool_router]` / `#[tool]` macros). Every tool
//! call goes through [`InstanceCore::call_tool`]: natural latency, then the knobs' fault, then
//! the tool itself, then the metrics.

use super::kind::DemoKind;
use super::knobs::{Fault, Knobs, KnobsHandle};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    tool_handler,
};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------

/// Spread of the log-normal latency: with a 3 ms median, p90 ≈ 8 ms and p99 ≈ 19 ms.
const LATENCY_SIGMA: f64 = 0.8;
/// The natural latency's ceiling: the long tail ends here, slowness beyond is the knobs' job.
const LATENCY_CAP_MS: f64 = 40.0;

/// An instance's natural latency: log-normal around a per-instance median.
#[derive(Debug, Clone, Copy)]
pub(super) struct LatencyModel {
    pub(super) median_ms: f64,
}

impl LatencyModel {
    /// Instances of one kind differ a little, as real replicas on different hosts do.
    fn for_instance(rng: &mut fastrand::Rng) -> Self {
        Self {
            median_ms: 2.0 + rng.f64() * 2.5,
        }
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        let ms =
            (self.median_ms * (LATENCY_SIGMA * standard_normal(rng)).exp()).min(LATENCY_CAP_MS);
        Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }
}

/// A standard normal draw (Box–Muller), since fastrand has only uniform draws.
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    // `1 - f64()` is in (0, 1], which keeps `ln` finite.
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// FNV-1a: a hash that is stable across builds, unlike `DefaultHasher`, so an instance id
/// always seeds the same latency profile.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------

/// Upper bounds of the call-duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The label under which calls to tools this server does not have are counted, so a
/// caller cannot grow the metrics with arbitrary names.
const UNKNOWN_TOOL: &str = "unknown";

/// How a tool call ended, as the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    ToolError,
    ProtocolError,
    Cancelled,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::ToolError,
        Outcome::ProtocolError,
        Outcome::Cancelled,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::ProtocolError => "protocol_error",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn of(result: &Result<CallToolResponse, McpError>) -> Self {
        match result {
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
                Outcome::ToolError
            }
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::ProtocolError,
        }
    }
}

/// Counters of one tool.
#[derive(Debug)]
struct ToolStats {
    name: String,
    outcomes: [AtomicU64; Outcome::ALL.len()],
    /// Non-cumulative: calls whose duration fell in each bucket (the overflow is implied).
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl ToolStats {
    fn new(name: String) -> Self {
        Self {
            name,
            outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn record(&self, outcome: Outcome, elapsed: Duration) {
        // `Outcome` is declared in the order of `Outcome::ALL`, so its discriminant indexes.
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = DURATION_BUCKETS.iter().position(|le| seconds <= *le) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// An instance's counters: written with atomics on the call path, rendered by hand.
#[derive(Debug)]
struct Metrics {
    /// One entry per tool, sorted by name.
    tools: Vec<ToolStats>,
    /// Calls naming a tool this server does not have.
    unknown: ToolStats,
    in_flight: AtomicU64,
}

/// Counts one call in flight for as long as it lives (also when its future is dropped).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn new(mut tool_names: Vec<String>) -> Self {
        tool_names.sort();
        Self {
            tools: tool_names.into_iter().map(ToolStats::new).collect(),
            unknown: ToolStats::new(UNKNOWN_TOOL.to_owned()),
            in_flight: AtomicU64::new(0),
        }
    }

    fn stats_for(&self, tool: &str) -> &ToolStats {
        self.tools
            .iter()
            .find(|stats| stats.name == tool)
            .unwrap_or(&self.unknown)
    }

    fn all(&self) -> impl Iterator<Item = &ToolStats> {
        self.tools.iter().chain(std::iter::once(&self.unknown))
    }

    fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// The Prometheus text exposition (format 0.0.4).
    fn render(&self, kind: DemoKind, instance_id: &str, knobs: &Knobs) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a `String` cannot fail, so the `fmt::Result`s below are ignored.
        let _ = writeln!(
            out,
            "# HELP demo_instance_info Identity of this demo MCP server instance.\n\
             # TYPE demo_instance_info gauge\n\
             demo_instance_info{{kind=\"{kind}\",instance_id=\"{}\"}} 1",
            escape_label(instance_id)
        );
        let _ = writeln!(
            out,
            "# HELP demo_tool_calls_total Tool calls answered, by tool and outcome.\n\
             # TYPE demo_tool_calls_total counter"
        );
        for stats in self.all() {
            for (outcome, counter) in Outcome::ALL.iter().zip(&stats.outcomes) {
                let _ = writeln!(
                    out,
                    "demo_tool_calls_total{{tool=\"{}\",outcome=\"{}\"}} {}",
                    escape_label(&stats.name),
                    outcome.label(),
                    counter.load(Ordering::Relaxed)
                );
            }
        }
        // The standard process metrics, so that the gateway's scraper sees CPU and memory as
        // it would from any Prometheus client library (the whole process: in `fleetdeck demo`
        // every instance shares one).
        if let Some((cpu_seconds, resident_bytes)) = process_usage() {
            let _ = writeln!(
                out,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                 # TYPE process_cpu_seconds_total counter\n\
                 process_cpu_seconds_total {cpu_seconds}\n\
                 # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                 # TYPE process_resident_memory_bytes gauge\n\
                 process_resident_memory_bytes {resident_bytes}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP demo_in_flight Tool calls being handled right now.\n\
             # TYPE demo_in_flight gauge\n\
             demo_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP demo_tool_call_duration_seconds Time from receiving a tool call to answering it.\n\
             # TYPE demo_tool_call_duration_seconds histogram"
        );
        for stats in self.all() {
            let tool = escape_label(&stats.name);
            let mut cumulative = 0;
            for (le, bucket) in DURATION_BUCKETS.iter().zip(&stats.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "demo_tool_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let count = stats.count.load(Ordering::Relaxed);
            let sum = stats.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "demo_tool_call_duration_seconds_bucket{{tool=\"{tool}\",le=\"+Inf\"}} {count}\n\
                 demo_tool_call_duration_seconds_sum{{tool=\"{tool}\"}} {sum}\n\
                 demo_tool_call_duration_seconds_count{{tool=\"{tool}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP demo_knob Current fault-injection knobs of this instance.\n\
             # TYPE demo_knob gauge"
        );
        for (knob, value) in [
            ("error_rate", knobs.error_rate),
            ("fail_rate", knobs.fail_rate),
            ("hang_rate", knobs.hang_rate),
            ("extra_latency_ms", knobs.extra_latency_ms as f64),
            ("latency_scale", knobs.latency_scale),
        ] {
            let _ = writeln!(out, "demo_knob{{knob=\"{knob}\"}} {value}");
        }
        out
    }
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

// ---------------------------------------------------------------------------------------
// The shared call path
// ---------------------------------------------------------------------------------------

/// What every session of one instance shares: identity, knobs, latency, counters.
#[derive(Debug)]
pub(super) struct InstanceCore {
    pub(super) kind: DemoKind,
    pub(super) instance_id: String,
    pub(super) knobs: KnobsHandle,
    pub(super) latency: LatencyModel,
    /// Latency and fault draws; seeded from the instance id, locked only to draw.
    rng: Mutex<fastrand::Rng>,
    metrics: Metrics,
    info: ServerConfig,
    /// Cancelled when the instance stops, so hanging calls end with it.
    pub(super) shutdown: CancellationToken,
}

impl InstanceCore {
    fn new(
        kind: DemoKind,
        instance_id: &str,
        knobs: KnobsHandle,
        tool_names: Vec<String>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut rng = fastrand::Rng::with_seed(stable_hash(instance_id));
        let latency = LatencyModel::for_instance(&mut rng);
        let info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                kind.server_name(),
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(format!(
                "Fleetdeck demo {kind} server, instance {instance_id}. {}",
                kind_instructions(kind)
            ));
        Self {
            kind,
            instance_id: instance_id.to_owned(),
            knobs,
            latency,
            rng: Mutex::new(rng),
            metrics: Metrics::new(tool_names),
            info,
            shutdown,
        }
    }

    /// Runs one tool call the way a real, imperfect server would, and counts it.
    async fn call_tool<B: Backend>(
        &self,
        server: &DemoServer<B>,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let stats = self.metrics.stats_for(&request.name);
        let _in_flight = self.metrics.enter();
        let started = Instant::now();
        let ct = context.ct.clone();
        // The caller's W3C trace context, reported back in the result's `_meta` (so a
        // caller can see that the gateway propagated its trace).
        let traceparent = context
            .meta
            .get_traceparent()
            .or_else(|| request.meta.as_ref().and_then(|m| m.get_traceparent()))
            .map(str::to_string);
        let mut result = self.misbehave_then_call(server, request, context).await;
        if let (Some(traceparent), Ok(CallToolResponse::Complete(answer))) =
            (traceparent, result.as_mut())
        {
            answer
                .meta
                .get_or_insert_with(Default::default)
                .set_traceparent(traceparent);
        }
        let outcome = if ct.is_cancelled() || self.shutdown.is_cancelled() {
            Outcome::Cancelled
        } else {
            Outcome::of(&result)
        };
        stats.record(outcome, started.elapsed());
        result
    }

    async fn misbehave_then_call<B: Backend>(
        &self,
        server: &DemoServer<B>,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let knobs = self.knobs.get();
        let (delay, fault) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            let natural = self.latency.sample(&mut rng);
            (knobs.delay(natural), knobs.draw_fault(&mut rng))
        };
        let ct = context.ct.clone();
        // No delay means none at all: tokio's timer rounds every sleep, even a zero one, up
        // to its next millisecond tick, which would add ~1 ms to each call of a quiet
        // instance (`latency_scale = 0`, as in `fleetdeck bench`).
        if !delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = interrupted(&ct, &self.shutdown) => return Err(cancelled_error()),
            }
        }
        match fault {
            Some(Fault::Hang) => {
                interrupted(&ct, &self.shutdown).await;
                Err(cancelled_error())
            }
            Some(Fault::Fail) => Err(McpError::internal_error("injected failure", None)),
            Some(Fault::Error) => {
                Ok(CallToolResult::error(vec![ContentBlock::text("injected failure")]).into())
            }
            None => {
                server
                    .router
                    .call(ToolCallContext::new(server, request, context))
                    .await
            }
        }
    }

    pub(super) fn render_metrics(&self) -> String {
        self.metrics
            .render(self.kind, &self.instance_id, &self.knobs.get())
    }
}

/// CPU seconds and resident bytes of this process, from /proc (Linux).
fn process_usage() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    Some(((utime + stime) / ticks as f64, resident_pages * page as f64))
}

/// Resolves when the caller cancels the call or the instance stops.
async fn interrupted(call: &CancellationToken, shutdown: &CancellationToken) {
    tokio::select! {
        () = call.cancelled() => {}
        () = shutdown.cancelled() => {}
    }
}

/// The answer to a call that was cancelled; nobody reads it, but the handler must return.
fn cancelled_error() -> McpError {
    McpError::internal_error("request cancelled", None)
}

fn kind_instructions(kind: DemoKind) -> &'static str {
    match kind {
        DemoKind::Search => {
            "Use `query` to find documents, `lookup` to read one by id, and `reindex` \
             (long-running, reports progress) to rebuild the index."
        }
        DemoKind::Database => {
            "Use `list_tables` to see the schema, `sql_select` for \
             `SELECT cols FROM table [WHERE col = value] [LIMIT n]`, and `insert_row` to add rows."
        }
        DemoKind::Files => {
            "Use `list_dir` and `read_file` to browse the tree and `write_file` to create or \
             replace a file."
        }
        DemoKind::Notifications => {
            "Use `send` to deliver a notification (email, slack, sms or pager) and `list_sent` \
             to read the outbox, newest first."
        }
    }
}

/// One kind's data and tools.
pub(super) trait Backend: Send + Sync + Sized + 'static {
    /// The kind this backend implements.
    const KIND: DemoKind;
    /// Builds the kind's data from its seed.
    fn generate(rng: &mut fastrand::Rng) -> Self;
    /// The kind's tools, as built by `#[tool_router]`.
    fn tools() -> ToolRouter<DemoServer<Self>>;
}

/// An MCP server handler of one kind; cloned for every session (or stateless request).
pub(super) struct DemoServer<B: Backend> {
    pub(super) core: Arc<InstanceCore>,
    pub(super) backend: Arc<B>,
    router: Arc<ToolRouter<DemoServer<B>>>,
}

impl<B: Backend> Clone for DemoServer<B> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            backend: self.backend.clone(),
            router: self.router.clone(),
        }
    }
}

impl<B: Backend> DemoServer<B> {
    pub(super) fn new(instance_id: &str, knobs: KnobsHandle, shutdown: CancellationToken) -> Self {
        let router = B::tools();
        let tool_names = router
            .list_all()
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect();
        let core = InstanceCore::new(B::KIND, instance_id, knobs, tool_names, shutdown);
        let mut data_rng = fastrand::Rng::with_seed(B::KIND.data_seed());
        Self {
            core: Arc::new(core),
            backend: Arc::new(B::generate(&mut data_rng)),
            router: Arc::new(router),
        }
    }
}

// `list_tools` and `get_tool` come from the macro; `call_tool` is ours so that every call
// passes through the instance's latency, faults and metrics.
#[tool_handler(router = self.router)]
impl<B: Backend> ServerHandler for DemoServer<B> {
    fn get_info(&self) -> ServerConfig {
        self.core.info.clone()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.core.call_tool(self, request, context).await
    }
}

// ---------------------------------------------------------------------------------------
// Shared data
// ---------------------------------------------------------------------------------------

/// Team names, used by the generated data of several kinds.
pub(super) const TEAMS: [&str; 5] = ["payments", "search", "platform", "growth", "support"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::serving::test_support::{
        bounded, call, call_params, connect, http, metrics_text, put_knobs, sample, start, text_of,
    };
    use rmcp::{ServiceError, model::Tool};
    use serde_json::{Value, json};

    fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
        tools
            .iter()
            .find(|tool| tool.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    }

    #[test]
    fn natural_latency_is_skewed_and_capped() {
        let mut rng = fastrand::Rng::with_seed(42);
        let model = LatencyModel { median_ms: 3.0 };
        let mut samples: Vec<f64> = (0..20_000)
            .map(|_| model.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        assert!((2.5..3.5).contains(&median), "median {median} ms");
        assert!(p99 > 4.0 * median, "a long tail: p99 {p99} ms");
        assert!(samples.iter().all(|ms| *ms <= LATENCY_CAP_MS + 1e-9));
    }

    /// A tool's name and its read-only, idempotent and destructive hints.
    type ExpectedTool = (&'static str, bool, bool, bool);

    #[tokio::test]
    async fn every_kind_lists_its_tools_with_honest_annotations() {
        bounded(async {
            let expected: [(DemoKind, &[ExpectedTool]); 4] = [
                (
                    DemoKind::Search,
                    &[
                        ("lookup", true, true, false),
                        ("query", true, true, false),
                        ("reindex", false, true, false),
                    ],
                ),
                (
                    DemoKind::Database,
                    &[
                        ("insert_row", false, false, false),
                        ("list_tables", true, true, false),
                        ("sql_select", true, true, false),
                    ],
                ),
                (
                    DemoKind::Files,
                    &[
                        ("list_dir", true, true, false),
                        ("read_file", true, true, false),
                        ("write_file", false, true, true),
                    ],
                ),
                (
                    DemoKind::Notifications,
                    &[
                        ("list_sent", true, true, false),
                        ("send", false, false, false),
                    ],
                ),
            ];
            for (kind, tools) in expected {
                let instance = start(kind).await;
                let client = connect(&instance, ()).await;
                let info = client.peer_info().expect("the server introduced itself");
                let server_info = info.server_info.clone().expect("server info");
                assert_eq!(server_info.name, kind.server_name());
                assert!(
                    info.instructions
                        .as_deref()
                        .is_some_and(|text| text.contains(&instance.instance_id)),
                    "the instructions name the instance"
                );
                assert!(info.capabilities.tools.is_some());

                let listed = client.list_all_tools().await.expect("tools/list");
                let mut names: Vec<&str> = listed.iter().map(|tool| tool.name.as_ref()).collect();
                names.sort_unstable();
                let expected_names: Vec<&str> = tools.iter().map(|(name, ..)| *name).collect();
                assert_eq!(names, expected_names, "{kind}");
                for (name, read_only, idempotent, destructive) in tools {
                    let tool = tool(&listed, name);
                    let annotations = tool.annotations.as_ref().expect("annotations");
                    assert_eq!(annotations.read_only_hint, Some(*read_only), "{name}");
                    assert_eq!(annotations.idempotent_hint, Some(*idempotent), "{name}");
                    if !read_only {
                        assert_eq!(annotations.destructive_hint, Some(*destructive), "{name}");
                    }
                    assert!(tool.description.is_some(), "{name} is described");
                    assert!(tool.output_schema.is_some(), "{name} declares its output");
                }
                let _ = client.cancel().await;
                instance.shutdown().await;
            }
        })
        .await;
    }

    #[tokio::test]
    async fn error_rate_knob_turns_calls_into_tool_errors() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let client = connect(&instance, ()).await;
            let (status, body) =
                put_knobs(&instance, r#"{"error_rate": 1.0, "latency_scale": 0}"#).await;
            assert_eq!(status, reqwest::StatusCode::OK);
            assert_eq!(body["error_rate"], json!(1.0));
            assert_eq!(instance.knobs.get().error_rate, 1.0);
            let current: Value = http()
                .get(format!("{}/knobs", instance.base_url()))
                .send()
                .await
                .expect("GET /knobs")
                .json()
                .await
                .expect("JSON knobs");
            assert_eq!(current["error_rate"], json!(1.0));

            let result = call(&client, "query", json!({ "q": "cache" })).await;
            assert_eq!(result.is_error, Some(true));
            assert_eq!(text_of(&result), "injected failure");

            let (status, _) = put_knobs(&instance, r#"{"latency_scale": 0}"#).await;
            assert_eq!(status, reqwest::StatusCode::OK);
            let result = call(&client, "query", json!({ "q": "cache" })).await;
            assert_ne!(result.is_error, Some(true));
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn fail_rate_knob_returns_protocol_errors() {
        bounded(async {
            let instance = start(DemoKind::Files).await;
            let client = connect(&instance, ()).await;
            instance
                .knobs
                .update(|knobs| knobs.fail_rate = 1.0)
                .expect("valid knobs");
            let error = client
                .call_tool(call_params("read_file", json!({ "path": "/README.md" })))
                .await
                .expect_err("a protocol error");
            let ServiceError::McpError(error) = error else {
                panic!("expected an MCP error, got {error}");
            };
            assert_eq!(error.message, "injected failure");
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn metrics_count_calls_by_tool_and_outcome() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let client = connect(&instance, ()).await;
            call(&client, "query", json!({ "q": "cache" })).await;
            call(&client, "query", json!({ "q": "retry" })).await;
            call(&client, "lookup", json!({ "id": "doc-999" })).await;
            let unknown = client
                .call_tool(call_params("no_such_tool", json!({})))
                .await;
            assert!(unknown.is_err(), "an unknown tool is a protocol error");

            let metrics = metrics_text(&instance).await;
            let count = |series: &str| sample(&metrics, series);
            assert_eq!(
                count("demo_tool_calls_total{tool=\"query\",outcome=\"ok\"}"),
                Some(2.0)
            );
            assert_eq!(
                count("demo_tool_calls_total{tool=\"lookup\",outcome=\"tool_error\"}"),
                Some(1.0)
            );
            assert_eq!(
                count("demo_tool_calls_total{tool=\"unknown\",outcome=\"protocol_error\"}"),
                Some(1.0)
            );
            assert_eq!(
                count("demo_tool_calls_total{tool=\"reindex\",outcome=\"ok\"}"),
                Some(0.0)
            );
            assert_eq!(count("demo_in_flight"), Some(0.0));
            assert_eq!(
                count("demo_tool_call_duration_seconds_count{tool=\"query\"}"),
                Some(2.0)
            );
            assert_eq!(
                count("demo_tool_call_duration_seconds_bucket{tool=\"query\",le=\"+Inf\"}"),
                Some(2.0)
            );
            assert_eq!(count("demo_knob{knob=\"latency_scale\"}"), Some(0.0));
            assert!(
                metrics
                    .contains("demo_instance_info{kind=\"search\",instance_id=\"search-test\"} 1")
            );
            assert!(metrics.contains("# TYPE demo_tool_calls_total counter"));
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }
}
