//! The four demo MCP servers, their shared call path (latency, faults, metrics) and serving
//! them over streamable HTTP or stdio.
//!
//! One generic [`DemoServer`] carries what every kind shares; a `Backend` per kind owns the
//! data and the tools (declared with rmcp's `#[tool_router]` / `#[tool]` macros). Every tool
//! call goes through [`InstanceCore::call_tool`]: natural latency, then the knobs' fault, then
//! the tool itself, then the metrics.

use super::knobs::{Fault, Knobs, KnobsHandle};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::{
    ErrorData as McpError, Json, RoleServer, ServerHandler, ServiceExt,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ProgressNotificationParam, ServerCapabilities, ServerConfig,
    },
    schemars::JsonSchema,
    service::RequestContext,
    tool, tool_handler, tool_router,
    transport::{
        IntoTransport,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        },
    },
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How often an idle SSE response gets a keep-alive: the write is also how the server
/// notices a caller that went away, so this bounds how long an abandoned hang lingers.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// How long [`DemoInstance::shutdown`] waits for open connections before aborting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------

/// Which demo MCP server an instance runs.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DemoKind {
    /// Full-text search over a generated document corpus.
    Search,
    /// A tiny in-memory SQL database.
    Database,
    /// An in-memory file tree.
    Files,
    /// An outbox of sent notifications.
    Notifications,
}

/// A name that is not a [`DemoKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown demo server kind '{0}' (expected search, database, files or notifications)")]
pub struct UnknownDemoKind(pub String);

impl DemoKind {
    /// Every kind, in the order the demo fleet lists them.
    pub const ALL: [DemoKind; 4] = [
        DemoKind::Search,
        DemoKind::Database,
        DemoKind::Files,
        DemoKind::Notifications,
    ];

    /// The kind's name: "search", "database", "files" or "notifications".
    pub fn as_str(self) -> &'static str {
        match self {
            DemoKind::Search => "search",
            DemoKind::Database => "database",
            DemoKind::Files => "files",
            DemoKind::Notifications => "notifications",
        }
    }

    /// The MCP server name announced in `initialize`, e.g. "fleetdeck-demo-search".
    pub fn server_name(self) -> String {
        format!("fleetdeck-demo-{}", self.as_str())
    }

    /// The seed of the kind's data: one per kind, not per instance, so replicas agree.
    fn data_seed(self) -> u64 {
        match self {
            DemoKind::Search => 0x5EA2_C400_0001,
            DemoKind::Database => 0xDA7A_BA5E_0002,
            DemoKind::Files => 0xF11E_5000_0003,
            DemoKind::Notifications => 0x0071_F1ED_0004,
        }
    }
}

impl std::fmt::Display for DemoKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DemoKind {
    type Err = UnknownDemoKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DemoKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownDemoKind(name.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------

/// Spread of the log-normal latency: with a 3 ms median, p90 ≈ 8 ms and p99 ≈ 19 ms.
const LATENCY_SIGMA: f64 = 0.8;
/// The natural latency's ceiling: the long tail ends here, slowness beyond is the knobs' job.
const LATENCY_CAP_MS: f64 = 40.0;

/// An instance's natural latency: log-normal around a per-instance median.
#[derive(Debug, Clone, Copy)]
struct LatencyModel {
    median_ms: f64,
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
struct InstanceCore {
    kind: DemoKind,
    instance_id: String,
    knobs: KnobsHandle,
    latency: LatencyModel,
    /// Latency and fault draws; seeded from the instance id, locked only to draw.
    rng: Mutex<fastrand::Rng>,
    metrics: Metrics,
    info: ServerConfig,
    /// Cancelled when the instance stops, so hanging calls end with it.
    shutdown: CancellationToken,
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
        let result = self.misbehave_then_call(server, request, context).await;
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

    fn render_metrics(&self) -> String {
        self.metrics
            .render(self.kind, &self.instance_id, &self.knobs.get())
    }
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
trait Backend: Send + Sync + Sized + 'static {
    /// The kind this backend implements.
    const KIND: DemoKind;
    /// Builds the kind's data from its seed.
    fn generate(rng: &mut fastrand::Rng) -> Self;
    /// The kind's tools, as built by `#[tool_router]`.
    fn tools() -> ToolRouter<DemoServer<Self>>;
}

/// An MCP server handler of one kind; cloned for every session (or stateless request).
struct DemoServer<B: Backend> {
    core: Arc<InstanceCore>,
    backend: Arc<B>,
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
    fn new(instance_id: &str, knobs: KnobsHandle, shutdown: CancellationToken) -> Self {
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
// search
// ---------------------------------------------------------------------------------------

const SEARCH_DOCUMENTS: usize = 200;
const SEARCH_TOPICS: [&str; 16] = [
    "gateway",
    "breaker",
    "cache",
    "retry",
    "latency",
    "quota",
    "audit",
    "token",
    "session",
    "replica",
    "index",
    "probe",
    "dashboard",
    "tenant",
    "webhook",
    "migration",
];
const SEARCH_ASPECTS: [&str; 10] = [
    "configuration",
    "troubleshooting",
    "limits",
    "metrics",
    "rollout",
    "security",
    "backups",
    "alerts",
    "capacity",
    "upgrades",
];
const TEAMS: [&str; 5] = ["payments", "search", "platform", "growth", "support"];
/// Words too common to rank by.
const STOP_WORDS: [&str; 12] = [
    "the", "of", "and", "for", "in", "to", "a", "an", "how", "with", "on", "is",
];

/// A document of the search corpus.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Document {
    /// The document's id, e.g. "doc-042".
    id: String,
    /// Its title.
    title: String,
    /// Its text.
    body: String,
}

/// One posting: a document and the weight of a term in it (title words count twice).
#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: usize,
    weight: f64,
}

/// An inverted index over the corpus.
#[derive(Debug)]
struct SearchIndex {
    generation: u64,
    postings: HashMap<String, Vec<Posting>>,
}

impl SearchIndex {
    fn add(&mut self, doc: usize, document: &Document) {
        let mut weights: HashMap<String, f64> = HashMap::new();
        for term in terms(&document.title) {
            *weights.entry(term).or_default() += 2.0;
        }
        for term in terms(&document.body) {
            *weights.entry(term).or_default() += 1.0;
        }
        for (term, weight) in weights {
            self.postings
                .entry(term)
                .or_default()
                .push(Posting { doc, weight });
        }
    }

    fn build(documents: &[Document], generation: u64) -> Self {
        let mut index = SearchIndex {
            generation,
            postings: HashMap::new(),
        };
        for (doc, document) in documents.iter().enumerate() {
            index.add(doc, document);
        }
        index
    }
}

/// Lower-cased words of `text`, without stop words.
fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 1)
        .map(str::to_lowercase)
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
}

struct SearchBackend {
    documents: Vec<Document>,
    /// Swapped whole by `reindex`, so queries never see a half-built index.
    index: RwLock<Arc<SearchIndex>>,
    /// The newest generation handed out to a rebuild.
    last_generation: AtomicU64,
}

impl SearchBackend {
    fn index(&self) -> Arc<SearchIndex> {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Ranks documents by TF-IDF over the query's terms; ties go to the lower id.
    fn search(&self, query: &str, limit: usize) -> Vec<SearchHit> {
        let index = self.index();
        let total = self.documents.len() as f64;
        let mut scores: HashMap<usize, f64> = HashMap::new();
        for term in terms(query) {
            let Some(postings) = index.postings.get(&term) else {
                continue;
            };
            let idf = (1.0 + total / postings.len() as f64).ln();
            for posting in postings {
                *scores.entry(posting.doc).or_default() += posting.weight * idf;
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .take(limit)
            .map(|(doc, score)| SearchHit {
                id: self.documents[doc].id.clone(),
                title: self.documents[doc].title.clone(),
                // Three decimals keep the output stable and readable.
                score: (score * 1000.0).round() / 1000.0,
            })
            .collect()
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Backend for SearchBackend {
    const KIND: DemoKind = DemoKind::Search;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        let documents: Vec<Document> = (1..=SEARCH_DOCUMENTS)
            .map(|n| {
                let topic = SEARCH_TOPICS[rng.usize(..SEARCH_TOPICS.len())];
                let other = SEARCH_TOPICS[rng.usize(..SEARCH_TOPICS.len())];
                let aspect = SEARCH_ASPECTS[rng.usize(..SEARCH_ASPECTS.len())];
                let second_aspect = SEARCH_ASPECTS[rng.usize(..SEARCH_ASPECTS.len())];
                let team = TEAMS[rng.usize(..TEAMS.len())];
                let title = match rng.u8(..5) {
                    0 => format!("{} of the {topic}", capitalise(aspect)),
                    1 => format!("{} {aspect} checklist", capitalise(topic)),
                    2 => format!("Debugging {topic} {aspect}"),
                    3 => format!("How the {topic} handles {aspect}"),
                    _ => format!("{} and {other}: {aspect} notes", capitalise(topic)),
                };
                let body = format!(
                    "{} {aspect} guide for the {team} team. Covers how the {topic} interacts \
                     with the {other}, {second_aspect}, and the pitfalls seen in production. \
                     Last reviewed in 202{}-Q{}.",
                    capitalise(topic),
                    rng.u8(3..6),
                    rng.u8(1..5),
                );
                Document {
                    id: format!("doc-{n:03}"),
                    title,
                    body,
                }
            })
            .collect();
        let index = SearchIndex::build(&documents, 1);
        Self {
            documents,
            index: RwLock::new(Arc::new(index)),
            last_generation: AtomicU64::new(1),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct QueryArgs {
    /// The search terms.
    q: String,
    /// How many hits to return (1 to 50, default 10).
    #[schemars(range(min = 1, max = 50))]
    limit: Option<u32>,
}

/// One ranked hit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SearchHit {
    /// The document's id, for `lookup`.
    id: String,
    /// The document's title.
    title: String,
    /// Relevance (TF-IDF); higher is better.
    score: f64,
}

/// The result of `query`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct QueryOutput {
    /// Hits, best first.
    hits: Vec<SearchHit>,
}

/// Arguments of `lookup`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct LookupArgs {
    /// The document's id, e.g. "doc-042".
    id: String,
}

/// Arguments of `reindex`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ReindexArgs {
    /// How long the rebuild takes in milliseconds (0 to 60000, default 2000).
    #[schemars(range(min = 0, max = 60000))]
    duration_ms: Option<u64>,
    /// In how many shards the corpus is rebuilt, one progress notification each
    /// (1 to 100, default 10).
    #[schemars(range(min = 1, max = 100))]
    shards: Option<u32>,
}

/// The result of `reindex`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ReindexOutput {
    /// The new index's generation (the index built at start is 1).
    generation: u64,
    /// Documents indexed.
    documents: usize,
    /// Distinct terms in the new index.
    terms: usize,
    /// Shards rebuilt.
    shards: u32,
    /// How long the rebuild took.
    elapsed_ms: u64,
}

#[tool_router]
impl DemoServer<SearchBackend> {
    #[tool(
        description = "Full-text search over the document corpus; returns ranked hits.",
        annotations(
            title = "Search documents",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn query(
        &self,
        Parameters(args): Parameters<QueryArgs>,
    ) -> Result<Json<QueryOutput>, String> {
        let limit = args.limit.unwrap_or(10);
        if !(1..=50).contains(&limit) {
            return Err(format!("limit must be between 1 and 50, got {limit}"));
        }
        if terms(&args.q).next().is_none() {
            return Err("q must contain at least one search term".to_owned());
        }
        let hits = self.backend.search(&args.q, limit as usize);
        Ok(Json(QueryOutput { hits }))
    }

    #[tool(
        description = "Reads one document by id.",
        annotations(
            title = "Read a document",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn lookup(
        &self,
        Parameters(args): Parameters<LookupArgs>,
    ) -> Result<Json<Document>, String> {
        self.backend
            .documents
            .iter()
            .find(|document| document.id == args.id)
            .map(|document| Json(document.clone()))
            .ok_or_else(|| format!("no document {}", args.id))
    }

    #[tool(
        description = "Rebuilds the search index shard by shard (long-running: reports \
                       progress when the request carries a progress token, and stops early \
                       when cancelled, keeping the previous index).",
        annotations(
            title = "Rebuild the search index",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn reindex(
        &self,
        Parameters(args): Parameters<ReindexArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<ReindexOutput>, String> {
        let duration_ms = args.duration_ms.unwrap_or(2_000);
        let shards = args.shards.unwrap_or(10);
        if duration_ms > 60_000 {
            return Err(format!(
                "duration_ms must be at most 60000, got {duration_ms}"
            ));
        }
        if !(1..=100).contains(&shards) {
            return Err(format!("shards must be between 1 and 100, got {shards}"));
        }
        let started = Instant::now();
        let progress_token = context.meta.get_progress_token();
        let step = Duration::from_millis(duration_ms) / shards;
        let documents = &self.backend.documents;
        let per_shard = documents.len().div_ceil(shards as usize).max(1);
        // Taken up front so that concurrent rebuilds get distinct generations.
        let generation = self.backend.last_generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut next = SearchIndex {
            generation,
            postings: HashMap::new(),
        };
        for shard in 0..shards {
            tokio::select! {
                () = tokio::time::sleep(step) => {}
                () = context.ct.cancelled() => {
                    return Err(format!(
                        "reindex cancelled after {shard} of {shards} shards; \
                         the previous index stays in use"
                    ));
                }
            }
            let first = (shard as usize * per_shard).min(documents.len());
            let last = (first + per_shard).min(documents.len());
            for (doc, document) in documents.iter().enumerate().take(last).skip(first) {
                next.add(doc, document);
            }
            if let Some(token) = &progress_token {
                let mut progress =
                    ProgressNotificationParam::new(token.clone(), f64::from(shard + 1));
                progress.total = Some(f64::from(shards));
                progress.message = Some(format!(
                    "indexed shard {} of {shards} ({last} documents)",
                    shard + 1
                ));
                // A caller that went away cannot be told; the rebuild itself goes on until
                // the cancellation token says otherwise.
                if let Err(error) = context.peer.notify_progress(progress).await {
                    tracing::debug!(%error, "could not send a reindex progress notification");
                }
            }
        }
        let terms = next.postings.len();
        {
            let mut index = self
                .backend
                .index
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // A slower rebuild that started earlier must not replace a newer index.
            if index.generation < generation {
                *index = Arc::new(next);
            }
        }
        Ok(Json(ReindexOutput {
            generation,
            documents: documents.len(),
            terms,
            shards,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }))
    }
}

// ---------------------------------------------------------------------------------------
// database
// ---------------------------------------------------------------------------------------

/// The most rows one `sql_select` returns, whatever its LIMIT.
const MAX_SELECT_ROWS: usize = 1_000;
/// Rows per table beyond which `insert_row` refuses, to bound memory under load.
const MAX_TABLE_ROWS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Integer,
    Text,
    Boolean,
}

impl ColumnType {
    fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Text => "text",
            ColumnType::Boolean => "boolean",
        }
    }

    fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            ColumnType::Integer => value.as_i64().is_some(),
            ColumnType::Text => value.is_string(),
            ColumnType::Boolean => value.is_boolean(),
        }
    }

    fn hint(self) -> &'static str {
        match self {
            ColumnType::Integer => "a whole number",
            ColumnType::Text => "a 'quoted string'",
            ColumnType::Boolean => "true or false",
        }
    }
}

#[derive(Debug, Clone)]
struct Table {
    /// The first column is always the integer primary key `id`.
    columns: Vec<(&'static str, ColumnType)>,
    rows: Vec<Vec<serde_json::Value>>,
}

impl Table {
    fn column(&self, table: &str, name: &str) -> Result<(usize, ColumnType), String> {
        self.columns
            .iter()
            .position(|(column, _)| *column == name)
            .map(|index| (index, self.columns[index].1))
            .ok_or_else(|| {
                let known: Vec<&str> = self.columns.iter().map(|(column, _)| *column).collect();
                format!(
                    "unknown column '{name}' in table {table} (columns: {})",
                    known.join(", ")
                )
            })
    }
}

struct DatabaseBackend {
    tables: Mutex<BTreeMap<&'static str, Table>>,
}

/// A token of the supported SQL subset.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Int(i64),
    Str(String),
    Comma,
    Star,
    Eq,
    /// `<`, `>`, `<=`, `>=`, `<>` or `!=`: lexed only to refuse them clearly.
    Comparison(String),
    Semicolon,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(word) => write!(f, "'{word}'"),
            Token::Int(number) => write!(f, "{number}"),
            Token::Str(text) => write!(f, "string '{text}'"),
            Token::Comma => f.write_str("','"),
            Token::Star => f.write_str("'*'"),
            Token::Eq => f.write_str("'='"),
            Token::Comparison(operator) => write!(f, "'{operator}'"),
            Token::Semicolon => f.write_str("';'"),
        }
    }
}

const SQL_SHAPE: &str = "SELECT cols FROM table [WHERE col = value] [LIMIT n]";
const SQL_KEYWORDS: [&str; 5] = ["select", "from", "where", "limit", "null"];

fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some(&(position, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ',' | '*' | '=' | ';' => {
                chars.next();
                tokens.push(match c {
                    ',' => Token::Comma,
                    '*' => Token::Star,
                    '=' => Token::Eq,
                    _ => Token::Semicolon,
                });
            }
            '<' | '>' | '!' => {
                chars.next();
                let mut operator = c.to_string();
                if let Some(&(_, next)) = chars.peek()
                    && (next == '=' || (c == '<' && next == '>'))
                {
                    operator.push(next);
                    chars.next();
                }
                tokens.push(Token::Comparison(operator));
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        // SQL escapes a quote inside a string by doubling it.
                        Some((_, '\'')) if chars.peek().is_some_and(|(_, next)| *next == '\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, other)) => text.push(other),
                        None => {
                            return Err(format!(
                                "unterminated string starting at position {position}"
                            ));
                        }
                    }
                }
                tokens.push(Token::Str(text));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut literal = String::new();
                while let Some(&(_, next)) = chars.peek() {
                    if next.is_ascii_digit() || (next == '-' && literal.is_empty()) {
                        literal.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let number = literal.parse::<i64>().map_err(|_| {
                    format!("'{literal}' at position {position} is not a whole number")
                })?;
                tokens.push(Token::Int(number));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, next)) = chars.peek() {
                    if next.is_alphanumeric() || next == '_' {
                        word.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => {
                return Err(format!(
                    "unexpected character '{other}' at position {position}; only {SQL_SHAPE} \
                     is supported"
                ));
            }
        }
    }
    Ok(tokens)
}

/// A parsed `SELECT` of the supported subset.
#[derive(Debug, Clone, PartialEq)]
struct Select {
    /// `None` for `*`.
    columns: Option<Vec<String>>,
    table: String,
    filter: Option<(String, serde_json::Value)>,
    limit: Option<usize>,
}

struct SqlParser {
    tokens: Vec<Token>,
    position: usize,
}

impl SqlParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let matched =
            matches!(self.peek(), Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword));
        if matched {
            self.position += 1;
        }
        matched
    }

    fn expect_keyword(&mut self, keyword: &str, after: &str) -> Result<(), String> {
        if self.keyword(keyword) {
            return Ok(());
        }
        Err(match self.peek() {
            Some(token) => format!("expected {keyword} after {after}, found {token}"),
            None => format!("expected {keyword} after {after}, found the end of the statement"),
        })
    }

    fn identifier(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(word))
                if !SQL_KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) =>
            {
                // SQL identifiers are case-insensitive; ours are all lower case.
                Ok(word.to_ascii_lowercase())
            }
            Some(token) => Err(format!("expected {what}, found {token}")),
            None => Err(format!("expected {what}, found the end of the statement")),
        }
    }

    fn literal(&mut self) -> Result<serde_json::Value, String> {
        match self.next() {
            Some(Token::Int(number)) => Ok(number.into()),
            Some(Token::Str(text)) => Ok(text.into()),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("true") => Ok(true.into()),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("false") => Ok(false.into()),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("null") => {
                Err("NULL is not supported: no column is nullable".to_owned())
            }
            Some(token) => Err(format!(
                "expected a value (number, 'string', true or false), found {token}"
            )),
            None => Err("expected a value after '=', found the end of the statement".to_owned()),
        }
    }

    fn parse(sql: &str) -> Result<Select, String> {
        let mut parser = SqlParser {
            tokens: tokenize(sql)?,
            position: 0,
        };
        if !parser.keyword("select") {
            return Err(match parser.peek() {
                Some(Token::Word(word)) => format!(
                    "only SELECT statements are supported, not {}; use insert_row to add rows",
                    word.to_ascii_uppercase()
                ),
                Some(token) => format!("expected SELECT, found {token}"),
                None => "the statement is empty".to_owned(),
            });
        }
        let columns = if parser.peek() == Some(&Token::Star) {
            parser.position += 1;
            None
        } else {
            let mut columns = vec![parser.identifier("a column name or *")?];
            while parser.peek() == Some(&Token::Comma) {
                parser.position += 1;
                columns.push(parser.identifier("a column name")?);
            }
            Some(columns)
        };
        parser.expect_keyword("FROM", "the column list")?;
        let table = parser.identifier("a table name")?;
        let filter = if parser.keyword("where") {
            let column = parser.identifier("a column name")?;
            match parser.next() {
                Some(Token::Eq) => {}
                Some(token) => {
                    return Err(format!(
                        "expected '=' after {column}, found {token}; only equality is supported"
                    ));
                }
                None => return Err(format!("expected '=' after {column}")),
            }
            Some((column, parser.literal()?))
        } else {
            None
        };
        let limit = if parser.keyword("limit") {
            match parser.next() {
                Some(Token::Int(number)) if number >= 0 => {
                    Some(usize::try_from(number).unwrap_or(usize::MAX))
                }
                Some(token) => {
                    return Err(format!(
                        "LIMIT needs a non-negative whole number, found {token}"
                    ));
                }
                None => return Err("LIMIT needs a number".to_owned()),
            }
        } else {
            None
        };
        if parser.peek() == Some(&Token::Semicolon) {
            parser.position += 1;
        }
        if let Some(token) = parser.peek() {
            return Err(format!("unexpected {token}; only {SQL_SHAPE} is supported"));
        }
        Ok(Select {
            columns,
            table,
            filter,
            limit,
        })
    }
}

impl DatabaseBackend {
    fn tables(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Table>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn table_names(tables: &BTreeMap<&'static str, Table>) -> String {
        tables.keys().copied().collect::<Vec<_>>().join(", ")
    }

    fn select(&self, sql: &str) -> Result<SelectOutput, String> {
        let select = SqlParser::parse(sql)?;
        let tables = self.tables();
        let table = tables.get(select.table.as_str()).ok_or_else(|| {
            format!(
                "unknown table '{}' (tables: {})",
                select.table,
                Self::table_names(&tables)
            )
        })?;
        let projection: Vec<usize> = match &select.columns {
            None => (0..table.columns.len()).collect(),
            Some(columns) => columns
                .iter()
                .map(|column| table.column(&select.table, column).map(|(index, _)| index))
                .collect::<Result<_, _>>()?,
        };
        let filter = match &select.filter {
            None => None,
            Some((column, value)) => {
                let (index, column_type) = table.column(&select.table, column)?;
                if !column_type.accepts(value) {
                    return Err(format!(
                        "column {}.{column} is {}; compare it with {}",
                        select.table,
                        column_type.name(),
                        column_type.hint()
                    ));
                }
                Some((index, value))
            }
        };
        let limit = select.limit.unwrap_or(MAX_SELECT_ROWS).min(MAX_SELECT_ROWS);
        let rows: Vec<Vec<serde_json::Value>> = table
            .rows
            .iter()
            .filter(|row| filter.is_none_or(|(index, value)| row[index] == *value))
            .take(limit)
            .map(|row| projection.iter().map(|index| row[*index].clone()).collect())
            .collect();
        Ok(SelectOutput {
            columns: projection
                .iter()
                .map(|index| table.columns[*index].0.to_owned())
                .collect(),
            row_count: rows.len(),
            rows,
        })
    }

    fn list_tables(&self) -> TablesOutput {
        let tables = self.tables();
        TablesOutput {
            tables: tables
                .iter()
                .map(|(name, table)| TableInfo {
                    name: (*name).to_owned(),
                    columns: table
                        .columns
                        .iter()
                        .map(|(column, column_type)| ColumnInfo {
                            name: (*column).to_owned(),
                            r#type: column_type.name().to_owned(),
                        })
                        .collect(),
                    rows: table.rows.len(),
                })
                .collect(),
        }
    }

    fn insert(
        &self,
        table_name: &str,
        mut values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<InsertOutput, String> {
        let mut tables = self.tables();
        let known = Self::table_names(&tables);
        let table = tables
            .get_mut(table_name.to_ascii_lowercase().as_str())
            .ok_or_else(|| format!("unknown table '{table_name}' (tables: {known})"))?;
        if table.rows.len() >= MAX_TABLE_ROWS {
            return Err(format!(
                "table {table_name} is full ({MAX_TABLE_ROWS} rows); this is a demo database"
            ));
        }
        if let Some(unknown) = values
            .keys()
            .find(|key| !table.columns.iter().any(|(column, _)| column == key))
        {
            return Err(format!(
                "unknown column '{unknown}' in table {table_name} (columns: {})",
                table
                    .columns
                    .iter()
                    .map(|(column, _)| *column)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let next_id = table
            .rows
            .iter()
            .filter_map(|row| row.first().and_then(serde_json::Value::as_i64))
            .max()
            .unwrap_or(0)
            + 1;
        let id = match values.remove("id") {
            None => next_id,
            Some(value) => {
                let id = value
                    .as_i64()
                    .ok_or_else(|| format!("id must be a whole number, got {value}"))?;
                if table
                    .rows
                    .iter()
                    .any(|row| row.first().and_then(serde_json::Value::as_i64) == Some(id))
                {
                    return Err(format!("a row with id {id} already exists in {table_name}"));
                }
                id
            }
        };
        let mut row = vec![serde_json::Value::from(id)];
        let mut missing = Vec::new();
        for (column, column_type) in table.columns.iter().skip(1) {
            match values.remove(*column) {
                Some(value) if column_type.accepts(&value) => row.push(value),
                Some(value) => {
                    return Err(format!(
                        "column {table_name}.{column} is {}, got {value}",
                        column_type.name()
                    ));
                }
                None => missing.push(*column),
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "missing values for {} in table {table_name}",
                missing.join(", ")
            ));
        }
        let inserted: serde_json::Map<String, serde_json::Value> = table
            .columns
            .iter()
            .map(|(column, _)| (*column).to_owned())
            .zip(row.iter().cloned())
            .collect();
        table.rows.push(row);
        Ok(InsertOutput {
            table: table_name.to_ascii_lowercase(),
            id,
            row: inserted,
        })
    }
}

const FIRST_NAMES: [&str; 12] = [
    "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Dennis", "Frances", "Ken", "Radia",
    "Edsger", "Hedy",
];
const LAST_NAMES: [&str; 10] = [
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Ritchie", "Allen",
    "Thompson", "Perlman",
];
const PRODUCTS: [&str; 12] = [
    "Keyboard",
    "Monitor",
    "Dock",
    "Headset",
    "Webcam",
    "Mouse",
    "Laptop stand",
    "Cable kit",
    "Microphone",
    "Desk lamp",
    "Chair",
    "Notebook",
];
const ORDER_STATUSES: [&str; 4] = ["pending", "paid", "shipped", "refunded"];

impl Backend for DatabaseBackend {
    const KIND: DemoKind = DemoKind::Database;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        use ColumnType::{Boolean, Integer, Text};
        let users = Table {
            columns: vec![
                ("id", Integer),
                ("name", Text),
                ("email", Text),
                ("team", Text),
                ("active", Boolean),
            ],
            rows: (1..=24_i64)
                .map(|id| {
                    let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
                    let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
                    vec![
                        id.into(),
                        format!("{first} {last}").into(),
                        format!(
                            "{}.{}{id}@example.com",
                            first.to_lowercase(),
                            last.to_lowercase()
                        )
                        .into(),
                        TEAMS[rng.usize(..TEAMS.len())].into(),
                        (rng.u8(..10) < 8).into(),
                    ]
                })
                .collect(),
        };
        let products = Table {
            columns: vec![
                ("id", Integer),
                ("sku", Text),
                ("name", Text),
                ("price_cents", Integer),
                ("stock", Integer),
            ],
            rows: PRODUCTS
                .iter()
                .zip(1_i64..)
                .map(|(name, id)| {
                    vec![
                        id.into(),
                        format!("SKU-{:04}", 1000 + id * 7).into(),
                        (*name).into(),
                        (rng.i64(5..300) * 100 - 1).into(),
                        rng.i64(0..250).into(),
                    ]
                })
                .collect(),
        };
        let orders = Table {
            columns: vec![
                ("id", Integer),
                ("user_id", Integer),
                ("product_id", Integer),
                ("quantity", Integer),
                ("status", Text),
            ],
            rows: (1..=60_i64)
                .map(|id| {
                    vec![
                        id.into(),
                        rng.i64(1..=24).into(),
                        rng.i64(1..=PRODUCTS.len() as i64).into(),
                        rng.i64(1..=5).into(),
                        ORDER_STATUSES[rng.usize(..ORDER_STATUSES.len())].into(),
                    ]
                })
                .collect(),
        };
        Self {
            tables: Mutex::new(BTreeMap::from([
                ("orders", orders),
                ("products", products),
                ("users", users),
            ])),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `sql_select`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SqlSelectArgs {
    /// `SELECT cols FROM table [WHERE col = value] [LIMIT n]`; nothing else is accepted.
    sql: String,
}

/// The result of `sql_select`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SelectOutput {
    /// The selected columns, in order.
    columns: Vec<String>,
    /// The rows, each with one value per column.
    rows: Vec<Vec<serde_json::Value>>,
    /// How many rows were returned.
    row_count: usize,
}

/// The result of `list_tables`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct TablesOutput {
    /// Every table, by name.
    tables: Vec<TableInfo>,
}

/// One table's schema and size.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct TableInfo {
    /// The table's name.
    name: String,
    /// Its columns, in order; the first is the primary key `id`.
    columns: Vec<ColumnInfo>,
    /// How many rows it holds.
    rows: usize,
}

/// One column.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ColumnInfo {
    /// The column's name.
    name: String,
    /// "integer", "text" or "boolean".
    r#type: String,
}

/// Arguments of `insert_row`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct InsertRowArgs {
    /// The table to insert into.
    table: String,
    /// A value for every column but `id` (which is assigned when omitted).
    values: serde_json::Map<String, serde_json::Value>,
}

/// The result of `insert_row`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct InsertOutput {
    /// The table the row went into.
    table: String,
    /// The new row's id.
    id: i64,
    /// The row as stored.
    row: serde_json::Map<String, serde_json::Value>,
}

#[tool_router]
impl DemoServer<DatabaseBackend> {
    #[tool(
        description = "Runs a read-only query: SELECT cols FROM table [WHERE col = value] \
                       [LIMIT n]. Anything else is refused.",
        annotations(
            title = "Query the database",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn sql_select(
        &self,
        Parameters(args): Parameters<SqlSelectArgs>,
    ) -> Result<Json<SelectOutput>, String> {
        self.backend.select(&args.sql).map(Json)
    }

    #[tool(
        description = "Lists the tables with their columns and row counts.",
        annotations(
            title = "List tables",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_tables(&self) -> Json<TablesOutput> {
        Json(self.backend.list_tables())
    }

    #[tool(
        description = "Inserts one row; every call adds a new row with a new id.",
        annotations(
            title = "Insert a row",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn insert_row(
        &self,
        Parameters(args): Parameters<InsertRowArgs>,
    ) -> Result<Json<InsertOutput>, String> {
        self.backend.insert(&args.table, args.values).map(Json)
    }
}

// ---------------------------------------------------------------------------------------
// files
// ---------------------------------------------------------------------------------------

/// The largest file `write_file` accepts.
const MAX_FILE_BYTES: usize = 64 * 1024;
/// The most files the tree holds, to bound memory under synthetic traffic.
const MAX_FILES: usize = 1_000;
/// The longest path accepted.
const MAX_PATH_BYTES: usize = 256;

struct FilesBackend {
    /// Absolute file path → content; directories are implied by the paths.
    files: RwLock<BTreeMap<String, String>>,
}

/// Normalises an absolute path: `/a//b/./c` → `/a/b/c`; `..` is refused.
fn normalise_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "path must be absolute (start with /), got '{path}'"
        ));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("path is longer than {MAX_PATH_BYTES} bytes"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("'..' is not allowed in paths, got '{path}'")),
            part => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `path` with a trailing slash, the prefix of everything inside it.
fn dir_prefix(path: &str) -> String {
    if path == "/" {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

impl FilesBackend {
    fn files(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, String>> {
        self.files.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_dir(files: &BTreeMap<String, String>, path: &str) -> bool {
        let prefix = dir_prefix(path);
        path == "/"
            || files
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(key, _)| key.starts_with(&prefix))
    }

    fn read(&self, path: &str) -> Result<FileOutput, String> {
        let path = normalise_path(path)?;
        let files = self.files();
        match files.get(&path) {
            Some(content) => Ok(FileOutput {
                bytes: content.len(),
                content: content.clone(),
                path,
            }),
            None if Self::is_dir(&files, &path) => {
                Err(format!("{path} is a directory; use list_dir"))
            }
            None => Err(format!("no such file {path}")),
        }
    }

    fn list(&self, path: &str) -> Result<DirOutput, String> {
        let path = normalise_path(path)?;
        let files = self.files();
        if files.contains_key(&path) {
            return Err(format!("{path} is a file; use read_file"));
        }
        let prefix = dir_prefix(&path);
        let mut entries: BTreeMap<String, DirEntry> = BTreeMap::new();
        for (key, content) in files.range(prefix.clone()..) {
            let Some(rest) = key.strip_prefix(&prefix) else {
                break;
            };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    entries.entry(dir.to_owned()).or_insert_with(|| DirEntry {
                        name: dir.to_owned(),
                        kind: "dir".to_owned(),
                        bytes: None,
                    });
                }
                None => {
                    entries.insert(
                        rest.to_owned(),
                        DirEntry {
                            name: rest.to_owned(),
                            kind: "file".to_owned(),
                            bytes: Some(content.len()),
                        },
                    );
                }
            }
        }
        if entries.is_empty() && path != "/" {
            return Err(format!("no such directory {path}"));
        }
        Ok(DirOutput {
            path,
            entries: entries.into_values().collect(),
        })
    }

    fn write(&self, path: &str, content: String) -> Result<WriteOutput, String> {
        let path = normalise_path(path)?;
        if path == "/" {
            return Err("cannot write to / (it is a directory)".to_owned());
        }
        if content.len() > MAX_FILE_BYTES {
            return Err(format!(
                "content is {} bytes; files are limited to {MAX_FILE_BYTES}",
                content.len()
            ));
        }
        let mut files = self.files.write().unwrap_or_else(PoisonError::into_inner);
        if Self::is_dir(&files, &path) {
            return Err(format!("{path} is a directory"));
        }
        // Every ancestor must be a directory (or not exist yet), never a file.
        let mut ancestor = path.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if parent.is_empty() {
                break;
            }
            if files.contains_key(parent) {
                return Err(format!("{parent} is a file, so {path} cannot be created"));
            }
            ancestor = parent;
        }
        let created = !files.contains_key(&path);
        if created && files.len() >= MAX_FILES {
            return Err(format!(
                "the tree is full ({MAX_FILES} files); overwrite an existing file instead"
            ));
        }
        let bytes = content.len();
        files.insert(path.clone(), content);
        Ok(WriteOutput {
            path,
            bytes,
            created,
        })
    }
}

impl Backend for FilesBackend {
    const KIND: DemoKind = DemoKind::Files;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        let mut files = BTreeMap::new();
        let mut add = |path: &str, content: String| {
            files.insert(path.to_owned(), content);
        };
        add(
            "/README.md",
            "# Acme services\n\nRunbooks, configuration and recent logs of the Acme API.\n\
             See docs/ for runbooks and config/ for the live settings.\n"
                .to_owned(),
        );
        add(
            "/docs/runbook.md",
            "# Runbook\n\n1. Check the gateway dashboard for open breakers.\n\
             2. Drain the unhealthy instance.\n3. Page the owning team if errors persist.\n"
                .to_owned(),
        );
        add(
            "/docs/architecture.md",
            "# Architecture\n\nClients call the gateway, which routes each tool call to a \
             healthy instance and records a trace.\n"
                .to_owned(),
        );
        add(
            "/docs/oncall.md",
            format!(
                "# On-call\n\nPrimary: {} team. Secondary: {} team.\nEscalate after 15 minutes.\n",
                TEAMS[rng.usize(..TEAMS.len())],
                TEAMS[rng.usize(..TEAMS.len())]
            ),
        );
        add(
            "/config/gateway.toml",
            format!(
                "[gateway]\nlisten = \"0.0.0.0:8080\"\ntimeout_ms = {}\nmax_in_flight = {}\n",
                rng.u32(2..10) * 500,
                rng.u32(4..16) * 8
            ),
        );
        add(
            "/config/limits.json",
            format!(
                "{{\n  \"free\": {{ \"per_minute\": {} }},\n  \"pro\": {{ \"per_minute\": {} }}\n}}\n",
                rng.u32(1..6) * 10,
                rng.u32(3..12) * 100
            ),
        );
        add(
            "/src/main.rs",
            "fn main() {\n    acme::serve();\n}\n".to_owned(),
        );
        add(
            "/src/handlers/orders.rs",
            "pub fn list_orders() -> Vec<Order> {\n    Vec::new()\n}\n".to_owned(),
        );
        add(
            "/src/handlers/users.rs",
            "pub fn find_user(id: u64) -> Option<User> {\n    None\n}\n".to_owned(),
        );
        const LEVELS: [&str; 4] = ["INFO", "INFO", "WARN", "ERROR"];
        const EVENTS: [&str; 4] = [
            "request served",
            "cache miss",
            "upstream slow",
            "retrying call",
        ];
        for day in 1..=7 {
            let mut log = String::new();
            for line in 0..25 {
                let _ = writeln!(
                    log,
                    "2025-01-0{day}T{:02}:{:02}:{:02}Z {:5} {} latency_ms={}",
                    line % 24,
                    rng.u8(..60),
                    rng.u8(..60),
                    LEVELS[rng.usize(..LEVELS.len())],
                    EVENTS[rng.usize(..EVENTS.len())],
                    rng.u32(1..400)
                );
            }
            add(&format!("/logs/app-2025-01-0{day}.log"), log);
        }
        Self {
            files: RwLock::new(files),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `read_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ReadFileArgs {
    /// Absolute path, e.g. "/docs/runbook.md".
    path: String,
}

/// The result of `read_file`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct FileOutput {
    /// The normalised path.
    path: String,
    /// Size in bytes.
    bytes: usize,
    /// The file's text.
    content: String,
}

/// Arguments of `list_dir`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ListDirArgs {
    /// Absolute directory path (default "/").
    path: Option<String>,
}

/// The result of `list_dir`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct DirOutput {
    /// The normalised directory path.
    path: String,
    /// Its entries, by name.
    entries: Vec<DirEntry>,
}

/// One directory entry.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct DirEntry {
    /// The entry's name (no slashes).
    name: String,
    /// "file" or "dir".
    kind: String,
    /// A file's size in bytes (absent for directories).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
}

/// Arguments of `write_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct WriteFileArgs {
    /// Absolute path; missing directories are created.
    path: String,
    /// The new content (at most 64 KiB), replacing any previous content.
    content: String,
}

/// The result of `write_file`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct WriteOutput {
    /// The normalised path.
    path: String,
    /// Bytes written.
    bytes: usize,
    /// Whether the file is new (false: it was replaced).
    created: bool,
}

#[tool_router]
impl DemoServer<FilesBackend> {
    #[tool(
        description = "Reads a text file.",
        annotations(
            title = "Read a file",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn read_file(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<Json<FileOutput>, String> {
        self.backend.read(&args.path).map(Json)
    }

    #[tool(
        description = "Lists a directory's files and subdirectories.",
        annotations(
            title = "List a directory",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_dir(
        &self,
        Parameters(args): Parameters<ListDirArgs>,
    ) -> Result<Json<DirOutput>, String> {
        self.backend
            .list(args.path.as_deref().unwrap_or("/"))
            .map(Json)
    }

    #[tool(
        description = "Creates or replaces a text file (writing the same content twice \
                       leaves the same tree).",
        annotations(
            title = "Write a file",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn write_file(
        &self,
        Parameters(args): Parameters<WriteFileArgs>,
    ) -> Result<Json<WriteOutput>, String> {
        self.backend.write(&args.path, args.content).map(Json)
    }
}

// ---------------------------------------------------------------------------------------
// notifications
// ---------------------------------------------------------------------------------------

/// Notifications kept in the outbox; the oldest are dropped beyond, to bound memory.
const OUTBOX_CAPACITY: usize = 10_000;
/// The longest message accepted.
const MAX_MESSAGE_CHARS: usize = 2_000;

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
enum Channel {
    /// An email.
    Email,
    /// A Slack message.
    Slack,
    /// A text message.
    Sms,
    /// A page to the on-call engineer.
    Pager,
}

/// A notification in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SentNotification {
    /// Its id, e.g. "ntf-000042".
    id: String,
    /// The channel it went out on.
    channel: Channel,
    /// Who it went to.
    recipient: String,
    /// What it said.
    message: String,
    /// When it was sent, in milliseconds since the Unix epoch.
    sent_at_ms: u64,
}

struct Outbox {
    next_id: u64,
    sent: VecDeque<SentNotification>,
}

struct NotificationsBackend {
    outbox: Mutex<Outbox>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl NotificationsBackend {
    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(
        &self,
        channel: Channel,
        recipient: String,
        message: String,
    ) -> Result<SentNotification, String> {
        let recipient = recipient.trim().to_owned();
        if recipient.is_empty() {
            return Err("recipient must not be empty".to_owned());
        }
        if message.trim().is_empty() {
            return Err("message must not be empty".to_owned());
        }
        let chars = message.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(format!(
                "message is {chars} characters; the limit is {MAX_MESSAGE_CHARS}"
            ));
        }
        let mut outbox = self.outbox();
        let notification = SentNotification {
            id: format!("ntf-{:06}", outbox.next_id),
            channel,
            recipient,
            message,
            sent_at_ms: now_ms(),
        };
        outbox.next_id += 1;
        if outbox.sent.len() >= OUTBOX_CAPACITY {
            outbox.sent.pop_front();
        }
        outbox.sent.push_back(notification.clone());
        Ok(notification)
    }

    fn list(&self, limit: usize, channel: Option<Channel>) -> Vec<SentNotification> {
        self.outbox()
            .sent
            .iter()
            .rev()
            .filter(|notification| channel.is_none_or(|channel| notification.channel == channel))
            .take(limit)
            .cloned()
            .collect()
    }
}

impl Backend for NotificationsBackend {
    const KIND: DemoKind = DemoKind::Notifications;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        const SEEDED: [(Channel, &str, &str); 5] = [
            (
                Channel::Email,
                "oncall@example.com",
                "Weekly availability report is ready.",
            ),
            (
                Channel::Slack,
                "#payments-alerts",
                "Breaker opened on payments-2.",
            ),
            (
                Channel::Pager,
                "search-primary",
                "search p99 latency above 800 ms.",
            ),
            (
                Channel::Sms,
                "+15550100",
                "Your deploy of files-1 finished.",
            ),
            (Channel::Slack, "#platform", "Breaker closed on payments-2."),
        ];
        // The seeded history ends a few minutes before start, so it reads as recent.
        let start = now_ms();
        let mut at = start.saturating_sub(3_600_000);
        let sent = SEEDED
            .iter()
            .zip(1_u64..)
            .map(|((channel, recipient, message), id)| {
                at += rng.u64(60_000..600_000);
                SentNotification {
                    id: format!("ntf-{id:06}"),
                    channel: *channel,
                    recipient: (*recipient).to_owned(),
                    message: (*message).to_owned(),
                    sent_at_ms: at.min(start),
                }
            })
            .collect::<VecDeque<_>>();
        Self {
            outbox: Mutex::new(Outbox {
                next_id: sent.len() as u64 + 1,
                sent,
            }),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `send`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SendArgs {
    /// The channel: email, slack, sms or pager.
    channel: Channel,
    /// An address, a Slack channel, a phone number or an on-call rotation.
    recipient: String,
    /// The text (at most 2000 characters).
    message: String,
}

/// Arguments of `list_sent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ListSentArgs {
    /// How many to return, newest first (1 to 100, default 20).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// Only this channel's notifications.
    channel: Option<Channel>,
}

/// The result of `list_sent`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SentOutput {
    /// Notifications, newest first.
    notifications: Vec<SentNotification>,
}

#[tool_router]
impl DemoServer<NotificationsBackend> {
    #[tool(
        description = "Sends a notification and records it in the outbox; every call sends \
                       another one.",
        annotations(
            title = "Send a notification",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn send(
        &self,
        Parameters(args): Parameters<SendArgs>,
    ) -> Result<Json<SentNotification>, String> {
        self.backend
            .send(args.channel, args.recipient, args.message)
            .map(Json)
    }

    #[tool(
        description = "Lists sent notifications, newest first.",
        annotations(
            title = "List sent notifications",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_sent(
        &self,
        Parameters(args): Parameters<ListSentArgs>,
    ) -> Result<Json<SentOutput>, String> {
        let limit = args.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(format!("limit must be between 1 and 100, got {limit}"));
        }
        Ok(Json(SentOutput {
            notifications: self.backend.list(limit as usize, args.channel),
        }))
    }
}

// ---------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------

/// A running demo instance serving MCP over streamable HTTP; stops on [`Self::shutdown`]
/// or when dropped.
#[derive(Debug)]
pub struct DemoInstance {
    /// The server kind.
    pub kind: DemoKind,
    /// The instance id given at start.
    pub instance_id: String,
    /// The address actually bound (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The instance's knobs; changes apply to the next calls.
    #[allow(dead_code)] // For the dashboard's knob controls (next change); tests use it now.
    pub knobs: KnobsHandle,
    shutdown: CancellationToken,
    /// Stops the server if the instance is dropped without [`Self::shutdown`].
    _stop_on_drop: DropGuard,
    task: JoinHandle<std::io::Result<()>>,
}

impl DemoInstance {
    /// The MCP endpoint, e.g. `http://127.0.0.1:7001/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The instance's base URL (for `/healthz`, `/knobs`, `/metrics`).
    #[allow(dead_code)] // For the dashboard's knob controls (next change); tests use it now.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting calls, ends open streams and hanging calls, and waits for the server
    /// to finish (aborting it after a grace period).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let mut task = self.task;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => {
                tracing::warn!(instance = %self.instance_id, %error, "demo instance failed while stopping");
            }
            Ok(Err(error)) => {
                tracing::warn!(instance = %self.instance_id, %error, "demo instance task ended abnormally");
            }
            Err(_) => {
                tracing::warn!(instance = %self.instance_id, "demo instance did not stop in time; aborting it");
                task.abort();
            }
        }
    }
}

/// State of the instance's plain HTTP routes.
type CoreState = State<Arc<InstanceCore>>;

async fn healthz(State(core): CoreState) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "kind": core.kind,
        "instance_id": core.instance_id,
    }))
}

async fn get_knobs(State(core): CoreState) -> axum::Json<Knobs> {
    axum::Json(core.knobs.get())
}

/// Replaces the knobs. The body is parsed here rather than by axum's `Json` extractor so
/// that every bad input (syntax, unknown field, range) is a 400 with one clear message,
/// whatever the Content-Type.
async fn put_knobs(State(core): CoreState, body: Bytes) -> Response {
    let knobs: Knobs = match serde_json::from_slice(&body) {
        Ok(knobs) => knobs,
        Err(error) => return bad_request(format!("invalid knobs: {error}")),
    };
    match core.knobs.set(knobs) {
        Ok(previous) => {
            tracing::info!(
                instance = %core.instance_id,
                ?previous,
                current = ?knobs,
                "demo instance knobs changed"
            );
            axum::Json(knobs).into_response()
        }
        Err(error) => bad_request(error.to_string()),
    }
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

async fn metrics(State(core): CoreState) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        core.render_metrics(),
    )
}

/// The instance's routes: MCP at `/mcp`, plus health, knobs and metrics.
fn http_app<B: Backend>(server: DemoServer<B>, bind: SocketAddr) -> (Arc<InstanceCore>, Router) {
    let core = server.core.clone();
    // Stateless: every POST is served on its own, so progress notifications travel on the
    // call's own SSE response, and a cancelled call is seen as its stream closing.
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
        .with_cancellation_token(core.shutdown.child_token());
    if !bind.ip().is_loopback() {
        // rmcp only accepts loopback Host headers by default (DNS-rebinding protection);
        // an instance bound beyond loopback is meant to be reached by other names.
        config = config.disable_allowed_hosts();
    }
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = Router::new()
        .nest_service("/mcp", mcp)
        .route("/healthz", get(healthz))
        .route("/knobs", get(get_knobs).put(put_knobs))
        .route("/metrics", get(metrics))
        .with_state(core.clone());
    (core, router)
}

/// Starts a demo instance serving MCP over streamable HTTP at `http://{bind}/mcp`.
///
/// Port 0 picks a free port (see [`DemoInstance::addr`]). Invalid knobs are an
/// `InvalidInput` error.
pub async fn serve_demo_instance(
    kind: DemoKind,
    instance_id: &str,
    bind: SocketAddr,
    knobs: Knobs,
) -> std::io::Result<DemoInstance> {
    let knobs = KnobsHandle::new(knobs)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let (core, app) = match kind {
        DemoKind::Search => http_app(
            DemoServer::<SearchBackend>::new(instance_id, knobs.clone(), shutdown.clone()),
            bind,
        ),
        DemoKind::Database => http_app(
            DemoServer::<DatabaseBackend>::new(instance_id, knobs.clone(), shutdown.clone()),
            bind,
        ),
        DemoKind::Files => http_app(
            DemoServer::<FilesBackend>::new(instance_id, knobs.clone(), shutdown.clone()),
            bind,
        ),
        DemoKind::Notifications => http_app(
            DemoServer::<NotificationsBackend>::new(instance_id, knobs.clone(), shutdown.clone()),
            bind,
        ),
    };
    tracing::info!(
        %kind,
        instance = instance_id,
        %addr,
        median_latency_ms = core.latency.median_ms,
        "demo instance listening"
    );
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    Ok(DemoInstance {
        kind,
        instance_id: instance_id.to_owned(),
        addr,
        knobs,
        _stop_on_drop: shutdown.clone().drop_guard(),
        shutdown,
        task,
    })
}

/// Serves one demo server over stdin/stdout until the client closes stdin.
///
/// Nothing else may write to stdout meanwhile (logs belong on stderr). The knobs are fixed
/// for the process's life, since there is no HTTP side to change them.
pub async fn serve_demo_stdio(
    kind: DemoKind,
    instance_id: &str,
    knobs: Knobs,
) -> std::io::Result<()> {
    serve_demo_transport(kind, instance_id, knobs, rmcp::transport::stdio_pipes()).await
}

/// Serves one demo server over any rmcp transport until the peer closes it.
async fn serve_demo_transport<T, E, A>(
    kind: DemoKind,
    instance_id: &str,
    knobs: Knobs,
    transport: T,
) -> std::io::Result<()>
where
    T: IntoTransport<RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let knobs = KnobsHandle::new(knobs)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let shutdown = CancellationToken::new();
    // Ends hanging calls when the transport closes.
    let _stop_on_return = shutdown.clone().drop_guard();
    match kind {
        DemoKind::Search => {
            run_on_transport(
                DemoServer::<SearchBackend>::new(instance_id, knobs, shutdown),
                transport,
            )
            .await
        }
        DemoKind::Database => {
            run_on_transport(
                DemoServer::<DatabaseBackend>::new(instance_id, knobs, shutdown),
                transport,
            )
            .await
        }
        DemoKind::Files => {
            run_on_transport(
                DemoServer::<FilesBackend>::new(instance_id, knobs, shutdown),
                transport,
            )
            .await
        }
        DemoKind::Notifications => {
            run_on_transport(
                DemoServer::<NotificationsBackend>::new(instance_id, knobs, shutdown),
                transport,
            )
            .await
        }
    }
}

async fn run_on_transport<B, T, E, A>(server: DemoServer<B>, transport: T) -> std::io::Result<()>
where
    B: Backend,
    T: IntoTransport<RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let shutdown = server.core.shutdown.clone();
    let running = server
        .serve_with_ct(transport, shutdown)
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::{
        ClientHandler, RoleClient, ServiceError,
        model::{CallToolRequest, ClientRequest, Tool},
        service::{NotificationContext, PeerRequestOptions, RunningService},
        transport::StreamableHttpClientTransport,
    };
    use serde_json::{Value, json};

    /// The most any one test may take; every test body runs inside it.
    const TEST_TIMEOUT: Duration = Duration::from_secs(20);

    async fn bounded<T>(test: impl Future<Output = T>) -> T {
        tokio::time::timeout(TEST_TIMEOUT, test)
            .await
            .expect("the test exceeded its time bound")
    }

    /// reqwest is built with `rustls-no-provider`, so a process must pick the provider
    /// before building any client (rmcp's HTTP transport included).
    fn install_crypto() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    fn localhost() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// No natural latency, so tests only wait for what they ask for.
    fn quiet() -> Knobs {
        Knobs {
            latency_scale: 0.0,
            ..Knobs::default()
        }
    }

    async fn start(kind: DemoKind) -> DemoInstance {
        serve_demo_instance(kind, &format!("{kind}-test"), localhost(), quiet())
            .await
            .expect("the demo instance starts")
    }

    async fn connect<H: ClientHandler>(
        instance: &DemoInstance,
        handler: H,
    ) -> RunningService<RoleClient, H> {
        install_crypto();
        handler
            .serve(StreamableHttpClientTransport::from_uri(instance.mcp_url()))
            .await
            .expect("the client connects")
    }

    fn call_params(tool: &str, arguments: Value) -> CallToolRequestParams {
        let Value::Object(arguments) = arguments else {
            panic!("tool arguments must be a JSON object");
        };
        CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
    }

    async fn call<H: ClientHandler>(
        client: &RunningService<RoleClient, H>,
        tool: &str,
        arguments: Value,
    ) -> CallToolResult {
        client
            .call_tool(call_params(tool, arguments))
            .await
            .unwrap_or_else(|error| panic!("calling {tool} failed: {error}"))
    }

    fn text_of(result: &CallToolResult) -> String {
        result
            .content
            .iter()
            .filter_map(|content| content.as_text())
            .map(|text| text.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn structured<T: serde::de::DeserializeOwned>(result: &CallToolResult) -> T {
        assert_ne!(result.is_error, Some(true), "{}", text_of(result));
        let value = result
            .structured_content
            .clone()
            .expect("the result has structured content");
        serde_json::from_value(value).expect("the structured content has the declared shape")
    }

    fn http() -> reqwest::Client {
        install_crypto();
        reqwest::Client::new()
    }

    async fn put_knobs(instance: &DemoInstance, body: &str) -> (reqwest::StatusCode, Value) {
        let response = http()
            .put(format!("{}/knobs", instance.base_url()))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("PUT /knobs");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn metrics_text(instance: &DemoInstance) -> String {
        let response = http()
            .get(format!("{}/metrics", instance.base_url()))
            .send()
            .await
            .expect("GET /metrics");
        assert!(
            response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("text/plain")),
            "metrics are served as text/plain"
        );
        response.text().await.expect("a text body")
    }

    /// The value of the sample `series` (name and labels, exactly as rendered).
    fn sample(metrics: &str, series: &str) -> Option<f64> {
        metrics.lines().find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|value| value.parse().ok())
        })
    }

    /// Polls `/metrics` until `series` has `expected`, for up to five seconds.
    async fn wait_for_sample(instance: &DemoInstance, series: &str, expected: f64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let metrics = metrics_text(instance).await;
            if sample(&metrics, series) == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} never reached {expected}:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client that records the progress notifications it receives.
    #[derive(Clone, Default)]
    struct ProgressRecorder {
        seen: Arc<Mutex<Vec<ProgressNotificationParam>>>,
        changed: Arc<tokio::sync::Notify>,
    }

    impl ProgressRecorder {
        fn seen(&self) -> Vec<ProgressNotificationParam> {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        async fn wait_for(&self, count: usize) {
            loop {
                // Registered before the check, so a notification in between is not lost.
                let changed = self.changed.notified();
                if self.seen().len() >= count {
                    return;
                }
                changed.await;
            }
        }
    }

    impl ClientHandler for ProgressRecorder {
        async fn on_progress(
            &self,
            params: ProgressNotificationParam,
            _context: NotificationContext<RoleClient>,
        ) {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(params);
            self.changed.notify_waiters();
        }
    }

    fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
        tools
            .iter()
            .find(|tool| tool.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    }

    #[test]
    fn kinds_parse_and_name_themselves() {
        for kind in DemoKind::ALL {
            assert_eq!(kind.as_str().parse::<DemoKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(DemoKind::Search.server_name(), "fleetdeck-demo-search");
        let error = "weather".parse::<DemoKind>().expect_err("not a kind");
        assert!(error.to_string().contains("'weather'"));
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

    #[test]
    fn the_sql_subset_parses_and_refuses_the_rest_clearly() {
        let select = SqlParser::parse("select id, NAME from Users where team = 'it''s' limit 3;")
            .expect("a supported statement");
        assert_eq!(
            select,
            Select {
                columns: Some(vec!["id".to_owned(), "name".to_owned()]),
                table: "users".to_owned(),
                filter: Some(("team".to_owned(), json!("it's"))),
                limit: Some(3),
            }
        );
        for (sql, expected) in [
            ("DELETE FROM users", "only SELECT statements are supported"),
            (
                "SELECT * FROM users WHERE id > 3",
                "only equality is supported",
            ),
            (
                "SELECT * FROM users WHERE id = 1 AND team = 'x'",
                "unexpected 'AND'",
            ),
            ("SELECT * users", "expected FROM"),
            ("SELECT * FROM users LIMIT -1", "non-negative"),
            (
                "SELECT name FROM users WHERE name = 'open",
                "unterminated string",
            ),
            (
                "SELECT * FROM users WHERE id = NULL",
                "NULL is not supported",
            ),
            ("", "empty"),
        ] {
            let error = SqlParser::parse(sql).expect_err(sql);
            assert!(error.contains(expected), "{sql}: {error}");
        }
        let database = DatabaseBackend::generate(&mut fastrand::Rng::with_seed(1));
        let error = database
            .select("SELECT * FROM accounts")
            .expect_err("no such table");
        assert!(error.contains("orders, products, users"), "{error}");
        let error = database
            .select("SELECT * FROM users WHERE active = 'yes'")
            .expect_err("a boolean column");
        assert!(error.contains("true or false"), "{error}");
        let all = database.select("SELECT * FROM users").expect("valid");
        assert_eq!(all.row_count, 24);
        assert_eq!(all.columns[0], "id");
    }

    #[test]
    fn file_paths_are_normalised_and_confined() {
        assert_eq!(normalise_path("/a//b/./c/").as_deref(), Ok("/a/b/c"));
        assert_eq!(normalise_path("/").as_deref(), Ok("/"));
        assert!(normalise_path("relative").is_err());
        assert!(normalise_path("/a/../etc/passwd").is_err());
        let files = FilesBackend::generate(&mut fastrand::Rng::with_seed(1));
        assert!(files.write("/README.md/inner", "x".to_owned()).is_err());
        assert!(files.write("/docs", "x".to_owned()).is_err());
        let error = files.read("/docs").expect_err("a directory");
        assert!(error.contains("is a directory"), "{error}");
    }

    #[test]
    fn replicas_of_a_kind_share_their_data() {
        let one =
            SearchBackend::generate(&mut fastrand::Rng::with_seed(DemoKind::Search.data_seed()));
        let two =
            SearchBackend::generate(&mut fastrand::Rng::with_seed(DemoKind::Search.data_seed()));
        assert_eq!(one.documents.len(), SEARCH_DOCUMENTS);
        assert!(
            one.documents
                .iter()
                .zip(&two.documents)
                .all(|(a, b)| a.id == b.id && a.title == b.title && a.body == b.body)
        );
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
    async fn query_returns_ranked_hits_as_text_and_structured_content() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let client = connect(&instance, ()).await;
            let result = call(
                &client,
                "query",
                json!({ "q": "gateway breaker", "limit": 5 }),
            )
            .await;
            let output: QueryOutput = structured(&result);
            assert!(!output.hits.is_empty() && output.hits.len() <= 5);
            assert!(
                output
                    .hits
                    .windows(2)
                    .all(|pair| pair[0].score >= pair[1].score),
                "hits are ranked best first"
            );
            assert!(output.hits.iter().all(|hit| hit.id.starts_with("doc-")));
            let text: Value = serde_json::from_str(&text_of(&result)).expect("the text is JSON");
            assert_eq!(
                Some(text),
                result.structured_content,
                "text mirrors the structure"
            );

            let default_limit: QueryOutput =
                structured(&call(&client, "query", json!({ "q": "cache" })).await);
            assert!(default_limit.hits.len() <= 10);

            let too_many = call(&client, "query", json!({ "q": "cache", "limit": 51 })).await;
            assert_eq!(too_many.is_error, Some(true));
            assert!(text_of(&too_many).contains("limit must be between 1 and 50"));

            let document: Document =
                structured(&call(&client, "lookup", json!({ "id": output.hits[0].id })).await);
            assert_eq!(document.id, output.hits[0].id);
            assert_eq!(document.title, output.hits[0].title);
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn lookup_of_a_missing_document_is_a_tool_error() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let client = connect(&instance, ()).await;
            let result = call(&client, "lookup", json!({ "id": "doc-999" })).await;
            assert_eq!(result.is_error, Some(true));
            assert_eq!(text_of(&result), "no document doc-999");
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reindex_reports_progress_to_the_caller() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let recorder = ProgressRecorder::default();
            let client = connect(&instance, recorder.clone()).await;
            let result = call(
                &client,
                "reindex",
                json!({ "duration_ms": 200, "shards": 4 }),
            )
            .await;
            let output: ReindexOutput = structured(&result);
            assert_eq!(output.generation, 2);
            assert_eq!(output.shards, 4);
            assert_eq!(output.documents, SEARCH_DOCUMENTS);
            assert!(output.terms > 20);
            recorder.wait_for(4).await;
            let seen = recorder.seen();
            let progress: Vec<f64> = seen.iter().map(|param| param.progress).collect();
            assert_eq!(progress, vec![1.0, 2.0, 3.0, 4.0]);
            assert!(seen.iter().all(|param| param.total == Some(4.0)));
            assert!(seen.iter().all(|param| param.message.is_some()));

            // The rebuilt index answers queries like the first one.
            let hits: QueryOutput =
                structured(&call(&client, "query", json!({ "q": "cache" })).await);
            assert!(!hits.hits.is_empty());
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn reindex_stops_early_when_cancelled() {
        bounded(async {
            let instance = start(DemoKind::Search).await;
            let recorder = ProgressRecorder::default();
            let client = connect(&instance, recorder.clone()).await;
            let started = Instant::now();
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(call_params(
                "reindex",
                json!({ "duration_ms": 30_000, "shards": 100 }),
            )));
            let handle = client
                .send_cancellable_request(request, PeerRequestOptions::no_options())
                .await
                .expect("the call is sent");
            recorder.wait_for(2).await;
            handle
                .cancel(Some("the test is done waiting".to_owned()))
                .await
                .expect("the cancellation is sent");
            wait_for_sample(
                &instance,
                "demo_tool_calls_total{tool=\"reindex\",outcome=\"cancelled\"}",
                1.0,
            )
            .await;
            wait_for_sample(&instance, "demo_in_flight", 0.0).await;
            assert!(started.elapsed() < Duration::from_secs(10), "stopped early");
            let sent = recorder.seen().len();
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert_eq!(
                recorder.seen().len(),
                sent,
                "no progress after the cancellation"
            );
            let _ = client.cancel().await;
            instance.shutdown().await;
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
    async fn invalid_knobs_are_refused_with_400() {
        bounded(async {
            let instance = start(DemoKind::Database).await;
            for (body, expected) in [
                (
                    r#"{"error_rate": 2}"#,
                    "error_rate must be a number between 0 and 1, got 2",
                ),
                (r#"{"eror_rate": 1}"#, "unknown field `eror_rate`"),
                (r#"{"latency_scale": -1}"#, "latency_scale must be"),
                ("not json", "invalid knobs"),
            ] {
                let (status, reply) = put_knobs(&instance, body).await;
                assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
                let message = reply["error"].as_str().unwrap_or_default();
                assert!(message.contains(expected), "{body}: {message}");
            }
            assert_eq!(
                instance.knobs.get(),
                quiet(),
                "refused knobs change nothing"
            );
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
    async fn hang_rate_knob_leaves_calls_unanswered_until_shutdown() {
        bounded(async {
            let instance = start(DemoKind::Notifications).await;
            let client = connect(&instance, ()).await;
            let (status, _) = put_knobs(&instance, r#"{"hang_rate": 1}"#).await;
            assert_eq!(status, reqwest::StatusCode::OK);
            let answered = tokio::time::timeout(
                Duration::from_millis(300),
                client.call_tool(call_params("list_sent", json!({}))),
            )
            .await;
            assert!(answered.is_err(), "a hanging call does not answer");
            wait_for_sample(&instance, "demo_in_flight", 1.0).await;

            let stopping = Instant::now();
            instance.shutdown().await;
            assert!(
                stopping.elapsed() < SHUTDOWN_GRACE,
                "shutdown ends hanging calls instead of waiting for them"
            );
            let _ = client.cancel().await;
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

    #[tokio::test]
    async fn healthz_names_the_instance_and_shutdown_stops_serving() {
        bounded(async {
            let instance = start(DemoKind::Files).await;
            let url = format!("{}/healthz", instance.base_url());
            let health: Value = http()
                .get(&url)
                .send()
                .await
                .expect("GET /healthz")
                .json()
                .await
                .expect("JSON health");
            assert_eq!(
                health,
                json!({ "status": "ok", "kind": "files", "instance_id": "files-test" })
            );
            instance.shutdown().await;
            assert!(
                http().get(&url).send().await.is_err(),
                "nothing listens any more"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn database_selects_lists_and_inserts() {
        bounded(async {
            let instance = start(DemoKind::Database).await;
            let client = connect(&instance, ()).await;
            let selected: SelectOutput = structured(
                &call(
                    &client,
                    "sql_select",
                    json!({ "sql": "SELECT id, name, team FROM users WHERE active = true LIMIT 3" }),
                )
                .await,
            );
            assert_eq!(selected.columns, vec!["id", "name", "team"]);
            assert!(selected.row_count <= 3 && selected.row_count == selected.rows.len());

            let refused = call(&client, "sql_select", json!({ "sql": "DROP TABLE users" })).await;
            assert_eq!(refused.is_error, Some(true));
            assert!(text_of(&refused).contains("only SELECT statements are supported"));

            let row = json!({
                "table": "products",
                "values": { "sku": "SKU-9999", "name": "Demo mug", "price_cents": 1299, "stock": 3 }
            });
            let first: InsertOutput = structured(&call(&client, "insert_row", row.clone()).await);
            let second: InsertOutput = structured(&call(&client, "insert_row", row).await);
            assert_ne!(first.id, second.id, "inserting twice adds two rows");
            let found: SelectOutput = structured(
                &call(
                    &client,
                    "sql_select",
                    json!({ "sql": format!("SELECT name FROM products WHERE id = {}", first.id) }),
                )
                .await,
            );
            assert_eq!(found.rows, vec![vec![json!("Demo mug")]]);

            let incomplete = call(
                &client,
                "insert_row",
                json!({ "table": "products", "values": { "name": "No sku" } }),
            )
            .await;
            assert_eq!(incomplete.is_error, Some(true));
            assert!(text_of(&incomplete).contains("missing values for sku"));

            let tables: TablesOutput = structured(&call(&client, "list_tables", json!({})).await);
            let products = tables
                .tables
                .iter()
                .find(|table| table.name == "products")
                .expect("a products table");
            assert_eq!(products.rows, PRODUCTS.len() + 2);
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn files_are_listed_read_and_written() {
        bounded(async {
            let instance = start(DemoKind::Files).await;
            let client = connect(&instance, ()).await;
            let root: DirOutput = structured(&call(&client, "list_dir", json!({})).await);
            let names: Vec<&str> = root
                .entries
                .iter()
                .map(|entry| entry.name.as_str())
                .collect();
            assert_eq!(names, vec!["README.md", "config", "docs", "logs", "src"]);

            let written: WriteOutput = structured(
                &call(
                    &client,
                    "write_file",
                    json!({ "path": "/notes/today.md", "content": "ship it" }),
                )
                .await,
            );
            assert!(written.created);
            let again: WriteOutput = structured(
                &call(
                    &client,
                    "write_file",
                    json!({ "path": "/notes//today.md", "content": "ship it" }),
                )
                .await,
            );
            assert!(!again.created, "writing again replaces the same file");
            let read: FileOutput =
                structured(&call(&client, "read_file", json!({ "path": "/notes/today.md" })).await);
            assert_eq!(read.content, "ship it");

            let missing = call(&client, "read_file", json!({ "path": "/nope.txt" })).await;
            assert_eq!(missing.is_error, Some(true));
            assert_eq!(text_of(&missing), "no such file /nope.txt");
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn notifications_are_sent_and_listed_newest_first() {
        bounded(async {
            let instance = start(DemoKind::Notifications).await;
            let client = connect(&instance, ()).await;
            let message =
                json!({ "channel": "slack", "recipient": "#ops", "message": "deploy done" });
            let first: SentNotification = structured(&call(&client, "send", message.clone()).await);
            let second: SentNotification = structured(&call(&client, "send", message).await);
            assert_ne!(first.id, second.id, "every send is another notification");

            let listed: SentOutput =
                structured(&call(&client, "list_sent", json!({ "limit": 2 })).await);
            let ids: Vec<&str> = listed.notifications.iter().map(|n| n.id.as_str()).collect();
            assert_eq!(ids, vec![second.id.as_str(), first.id.as_str()]);
            let pages: SentOutput =
                structured(&call(&client, "list_sent", json!({ "channel": "pager" })).await);
            assert!(
                pages
                    .notifications
                    .iter()
                    .all(|notification| notification.channel == Channel::Pager)
            );

            let bad_channel = call(
                &client,
                "send",
                json!({ "channel": "pigeon", "recipient": "x", "message": "y" }),
            )
            .await;
            assert_eq!(bad_channel.is_error, Some(true));
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_transport_other_than_http_serves_the_same_server() {
        bounded(async {
            // stdio is this transport over stdin/stdout; a duplex pipe stands in for them.
            let (server_side, client_side) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(serve_demo_transport(
                DemoKind::Files,
                "files-stdio",
                quiet(),
                server_side,
            ));
            let client = ().serve(client_side).await.expect("the client connects");
            let read: FileOutput =
                structured(&call(&client, "read_file", json!({ "path": "/README.md" })).await);
            assert!(read.content.starts_with("# Acme services"));
            let _ = client.cancel().await;
            server
                .await
                .expect("the server task ends")
                .expect("the server ends cleanly when the client goes away");
        })
        .await;
    }
}
