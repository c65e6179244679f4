//! `fleetdeck bench --dashboard`: the dashboard at fleet scale. A synthetic fleet of 1,000
//! instances (50 servers × 20, 200 tools each, 100 assistants; [`ScaleSpec::THOUSAND`])
//! in this process, a replica (`fleetdeck serve` as a child process, probing every 5 s)
//! in front of it, and an admin's session that loads each page in turn. Reported: each
//! page's server render time (the whole response) and size, what one live update moves
//! (the event plus the refresh it triggers), `/metrics`, and the replica's CPU while idle
//! and its resident memory. A benchmark: it reports, never asserts.

use super::gateway_process::GatewayProcess;
use crate::access::password::generate_password;
use crate::demo::scale::{ScaleFleet, ScaleSpec};
use anyhow::{Context, anyhow, bail};
use std::path::Path;
use std::time::{Duration, Instant};

/// The pages measured, with the targets they share.
const PAGES: [&str; 7] = [
    "/",
    "/fleet",
    "/fleet?health=unhealthy",
    "/tools",
    "/breakers",
    "/caches",
    "/permissions",
];
/// Targets (issue 20): server render p50 per page, HTML per page, bytes per live update,
/// `/metrics` answer time, resident memory and idle CPU of the replica.
const TARGET_PAGE_P50_MS: f64 = 50.0;
const TARGET_PAGE_KB: f64 = 300.0;
const TARGET_LIVE_UPDATE_KB: f64 = 20.0;
const TARGET_METRICS_MS: f64 = 200.0;
const TARGET_RSS_MB: f64 = 200.0;
const TARGET_IDLE_CPU_PERCENT: f64 = 10.0;
/// How long the idle replica is watched.
const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// How long the replica may take to list every catalog and probe every instance.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Probe interval of the replica (the default of `serve`).
const PROBE_INTERVAL_S: u64 = 5;

/// One page's loads.
struct PageFigures {
    path: &'static str,
    /// Why the page could not be measured (then the figures are zero).
    failed: Option<String>,
    p50_ms: f64,
    max_ms: f64,
    bytes: usize,
    wire_bytes: usize,
}

/// Everything measured.
pub struct DashboardFigures {
    pages: Vec<PageFigures>,
    event_bytes: usize,
    refresh_bytes: usize,
    refresh_wire_bytes: usize,
    metrics_p50_ms: f64,
    metrics_bytes: usize,
    idle_cpu_percent: f64,
    rss_mb: f64,
    tools: usize,
    loads: usize,
}

/// Runs the dashboard benchmark in `dir` (the replica's store) and prints its figures.
pub async fn run(loads: usize, dir: &Path) -> anyhow::Result<DashboardFigures> {
    let spec = ScaleSpec::THOUSAND;
    let fleet = ScaleFleet::start(spec)
        .await
        .context("starting the synthetic fleet")?;
    let fleet_file = dir.join("scale-fleet.toml");
    std::fs::write(&fleet_file, fleet.fleet_file())
        .with_context(|| format!("writing {}", fleet_file.display()))?;
    let password = generate_password();
    let replica = GatewayProcess::start(
        dir,
        &fleet_file,
        &password,
        PROBE_INTERVAL_S,
        Duration::from_secs(60),
    )
    .await
    .context("starting the replica")?;
    let base = format!("http://{}", replica.addr());
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let cookie = log_in(&http, &base, &password).await?;
    let session = Session { http, base, cookie };

    println!(
        "fleetdeck bench --dashboard: {} servers × {} instances, {} tools each, {} assistants; {} loads per page{}",
        spec.servers,
        spec.instances_per_server,
        spec.tools_per_server,
        spec.assistants,
        loads,
        if cfg!(debug_assertions) {
            " (debug build: not representative)"
        } else {
            ""
        }
    );
    let tools = list_every_catalog(&session.base, &spec).await?;
    settle(&session, &spec).await?;

    let mut pages = Vec::new();
    for path in PAGES {
        // A page that fails is reported as such: the others are still worth measuring.
        let figures = session
            .page(path, loads)
            .await
            .unwrap_or_else(|error| PageFigures {
                path,
                failed: Some(format!("{error:#}")),
                p50_ms: 0.0,
                max_ms: 0.0,
                bytes: 0,
                wire_bytes: 0,
            });
        pages.push(figures);
    }
    let (event_bytes, refresh_bytes, refresh_wire_bytes) = session.live_update(&spec).await?;
    let (metrics_p50_ms, metrics_bytes) = session.metrics(loads).await?;

    // Idle: no page open, only probes, scrapes, series and their writes.
    let before = replica
        .cpu_time()
        .ok_or_else(|| anyhow!("cannot read the replica's CPU time"))?;
    tokio::time::sleep(IDLE_WINDOW).await;
    let after = replica
        .cpu_time()
        .ok_or_else(|| anyhow!("cannot read the replica's CPU time"))?;
    let idle_cpu_percent =
        (after.saturating_sub(before)).as_secs_f64() * 100.0 / IDLE_WINDOW.as_secs_f64();
    let rss_mb = replica.resident_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);

    replica.stop().await;
    fleet.shutdown().await;
    Ok(DashboardFigures {
        pages,
        event_bytes,
        refresh_bytes,
        refresh_wire_bytes,
        metrics_p50_ms,
        metrics_bytes,
        idle_cpu_percent,
        rss_mb,
        tools,
        loads,
    })
}

impl DashboardFigures {
    /// The table, the targets and the machine-readable last line.
    pub fn report(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "{} tools listed through the gateway; {} loads per page",
                self.tools, self.loads
            ),
            format!(
                "{:<26} {:>8} {:>8} {:>10} {:>10}",
                "page", "p50 ms", "max ms", "HTML KB", "gzip KB"
            ),
        ];
        for page in &self.pages {
            lines.push(match &page.failed {
                Some(error) => format!("{:<26} failed: {error}", page.path),
                None => format!(
                    "{:<26} {:>8.1} {:>8.1} {:>10.1} {:>10.1}",
                    page.path,
                    page.p50_ms,
                    page.max_ms,
                    kb(page.bytes),
                    kb(page.wire_bytes)
                ),
            });
        }
        let live_kb = kb(self.event_bytes + self.refresh_wire_bytes);
        lines.push(format!(
            "live update: event {} B + Fleet refresh {:.1} KB ({:.1} KB on the wire) = {:.1} KB",
            self.event_bytes,
            kb(self.refresh_bytes),
            kb(self.refresh_wire_bytes),
            live_kb
        ));
        lines.push(format!(
            "/metrics: p50 {:.1} ms, {:.1} KB",
            self.metrics_p50_ms,
            kb(self.metrics_bytes)
        ));
        lines.push(format!(
            "replica: {:.1}% of a core while idle ({} s), {:.1} MB resident",
            self.idle_cpu_percent,
            IDLE_WINDOW.as_secs(),
            self.rss_mb
        ));
        lines.push(String::new());
        let failed = self.pages.iter().any(|p| p.failed.is_some());
        let worst_p50 = self.pages.iter().map(|p| p.p50_ms).fold(0.0, f64::max);
        let heaviest = self.pages.iter().map(|p| kb(p.bytes)).fold(0.0, f64::max);
        let verdict = |met: bool| if met { "met" } else { "missed" };
        lines.push(format!(
            "target: every page p50 {worst_p50:.1} ms <= {TARGET_PAGE_P50_MS}: {}",
            verdict(!failed && worst_p50 <= TARGET_PAGE_P50_MS)
        ));
        lines.push(format!(
            "target: every page {heaviest:.1} KB <= {TARGET_PAGE_KB}: {}",
            verdict(!failed && heaviest <= TARGET_PAGE_KB)
        ));
        lines.push(format!(
            "target: live update {live_kb:.1} KB <= {TARGET_LIVE_UPDATE_KB}: {}",
            verdict(live_kb <= TARGET_LIVE_UPDATE_KB)
        ));
        lines.push(format!(
            "target: /metrics {:.1} ms <= {TARGET_METRICS_MS}: {}",
            self.metrics_p50_ms,
            verdict(self.metrics_p50_ms <= TARGET_METRICS_MS)
        ));
        lines.push(format!(
            "target: resident {:.1} MB <= {TARGET_RSS_MB}: {}",
            self.rss_mb,
            verdict(self.rss_mb <= TARGET_RSS_MB)
        ));
        lines.push(format!(
            "target: idle CPU {:.1}% <= {TARGET_IDLE_CPU_PERCENT}%: {}",
            self.idle_cpu_percent,
            verdict(self.idle_cpu_percent <= TARGET_IDLE_CPU_PERCENT)
        ));
        let mut last = String::from("bench-dashboard:");
        for page in &self.pages {
            let name = match page.path {
                "/" => "overview".to_string(),
                path => path.trim_start_matches('/').replace(['?', '='], "_"),
            };
            last.push_str(&format!(
                " {name}_p50_ms={:.1} {name}_kb={:.1}",
                page.p50_ms,
                kb(page.bytes)
            ));
        }
        last.push_str(&format!(
            " live_update_kb={live_kb:.1} metrics_p50_ms={:.1} idle_cpu_pct={:.1} rss_mb={:.1}",
            self.metrics_p50_ms, self.idle_cpu_percent, self.rss_mb
        ));
        lines.push(String::new());
        lines.push(last);
        lines
    }
}

/// Whether a chunk of the event stream holds a `fleet` event.
fn is_fleet_event(chunk: &[u8]) -> bool {
    String::from_utf8_lossy(chunk).lines().any(|line| {
        line.strip_prefix("event:")
            .is_some_and(|name| name.trim() == "fleet")
    })
}

fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}

/// An admin's dashboard session.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

/// Logs in as `admin` and returns the session cookie (`name=value`).
async fn log_in(http: &reqwest::Client, base: &str, password: &str) -> anyhow::Result<String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("username", "admin")
        .append_pair("password", password)
        .finish();
    let answer = http
        .post(format!("{base}/api/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .context("logging in")?;
    if !(answer.status().is_success() || answer.status().is_redirection()) {
        bail!("logging in: {}", answer.status());
    }
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(crate::web::SESSION_COOKIE))
        .and_then(|value| value.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("logging in: no session cookie"))
}

/// Lists the tools through the gateway as an admin-tier assistant: the first listing of
/// each catalog, so that the pages show the whole fleet. Returns how many it saw.
async fn list_every_catalog(base: &str, spec: &ScaleSpec) -> anyhow::Result<usize> {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    // Assistants take the tiers in turn; the third is an admin (every tool).
    let mut config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"));
    config.auth_header = Some(spec.assistant_key(2));
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .context("connecting to the gateway")?;
    let tools = tokio::time::timeout(SETTLE_TIMEOUT, client.peer().list_all_tools())
        .await
        .map_err(|_| anyhow!("listing the tools took over {SETTLE_TIMEOUT:?}"))?
        .context("listing the tools")?;
    let _ = client.cancel().await;
    Ok(tools.len())
}

/// Waits until every instance has been probed and the unreachable ones are unhealthy
/// (read from `fleet/get`, which every build of the dashboard answers, so that an older
/// build can be measured the same way with `FLEETDECK_BENCH_GATEWAY`).
async fn settle(session: &Session, spec: &ScaleSpec) -> anyhow::Result<()> {
    let unreachable = spec.unreachable_instances();
    let started = Instant::now();
    loop {
        let (fleet, _) = session.server_fn("fleet/get", "").await?;
        let fleet: serde_json::Value = serde_json::from_str(&fleet).context("the fleet's data")?;
        let health = |wanted: &str| {
            fleet["servers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|server| server["instances"].as_array().into_iter().flatten())
                .filter(|instance| instance["health"] == wanted)
                .count()
        };
        let (unhealthy, unknown) = (health("unhealthy"), health("unknown"));
        if unhealthy >= unreachable && unknown == 0 {
            return Ok(());
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            bail!(
                "after {SETTLE_TIMEOUT:?}, {unhealthy} of {unreachable} unreachable instances are unhealthy"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Session {
    /// Loads `path` `loads` times: render times, and the size raw and gzip-compressed.
    async fn page(&self, path: &'static str, loads: usize) -> anyhow::Result<PageFigures> {
        let url = format!("{}{path}", self.base);
        let mut times = Vec::with_capacity(loads);
        let mut bytes = 0;
        for _ in 0..loads {
            let started = Instant::now();
            let answer = self.get(&url, false).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            bytes = answer.len();
        }
        let wire_bytes = self.get(&url, true).await?.len();
        times.sort_by(f64::total_cmp);
        Ok(PageFigures {
            path,
            failed: None,
            p50_ms: times[times.len() / 2],
            max_ms: times.last().copied().unwrap_or_default(),
            bytes,
            wire_bytes,
        })
    }

    /// One live update on the Fleet page: an operator drains an instance, the event
    /// reaches an open stream, the page refreshes what it shows. Returns the event's bytes
    /// and the refresh's, raw and on the wire.
    async fn live_update(&self, spec: &ScaleSpec) -> anyhow::Result<(usize, usize, usize)> {
        let mut events = self
            .http
            .get(format!("{}/api/events", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .context("opening the event stream")?;
        // The stream's greeting first.
        let _hello = tokio::time::timeout(Duration::from_secs(5), events.chunk()).await;
        let instance = spec.instance_id(1, 1);
        let body = format!("instance={instance}");
        self.server_fn_form("fleet/drain", &body).await?;
        let event = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match events.chunk().await {
                    Ok(Some(chunk)) if is_fleet_event(&chunk) => {
                        return Ok(chunk.len());
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => bail!("the event stream ended"),
                    Err(error) => return Err(anyhow::Error::from(error)),
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no event within 5 s of a drain"))??;
        // What the Fleet page asks for on each update: one page of its listing (an older
        // build's page asked for the whole fleet, `fleet/get`).
        let (refresh, wire) = match self.server_fn("fleet/page", r#"{"query":{}}"#).await {
            Ok((refresh, _)) => {
                let (_, wire) = self.server_fn_wire("fleet/page", r#"{"query":{}}"#).await?;
                (refresh, wire)
            }
            Err(_) => {
                let (refresh, _) = self.server_fn("fleet/get", "").await?;
                let (_, wire) = self.server_fn_wire("fleet/get", "").await?;
                (refresh, wire)
            }
        };
        self.server_fn_form("fleet/undrain", &body).await?;
        Ok((event, refresh.len(), wire))
    }

    /// `/metrics`: the median answer time over `loads` scrapes, and its size.
    async fn metrics(&self, loads: usize) -> anyhow::Result<(f64, usize)> {
        let url = format!("{}/metrics", self.base);
        let mut times = Vec::with_capacity(loads);
        let mut bytes = 0;
        for _ in 0..loads {
            let started = Instant::now();
            bytes = self.get(&url, false).await?.len();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        Ok((times[times.len() / 2], bytes))
    }

    /// GET with the session; the body as sent (compressed when `gzip` asks for it).
    async fn get(&self, url: &str, gzip: bool) -> anyhow::Result<bytes::Bytes> {
        let mut request = self.http.get(url).header("cookie", &self.cookie);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        let answer = request.send().await.with_context(|| format!("GET {url}"))?;
        if !answer.status().is_success() {
            bail!("GET {url}: {}", answer.status());
        }
        answer.bytes().await.with_context(|| format!("GET {url}"))
    }

    /// A server function with a JSON body: its answer and its size on the wire uncompressed.
    async fn server_fn(&self, endpoint: &str, json: &str) -> anyhow::Result<(String, usize)> {
        let answer = self.post(endpoint, "application/json", json, false).await?;
        let len = answer.len();
        Ok((String::from_utf8_lossy(&answer).into_owned(), len))
    }

    /// The same, asking for gzip: the answer as sent, and its size.
    async fn server_fn_wire(
        &self,
        endpoint: &str,
        json: &str,
    ) -> anyhow::Result<(bytes::Bytes, usize)> {
        let answer = self.post(endpoint, "application/json", json, true).await?;
        let len = answer.len();
        Ok((answer, len))
    }

    async fn server_fn_form(&self, endpoint: &str, form: &str) -> anyhow::Result<()> {
        self.post(endpoint, "application/x-www-form-urlencoded", form, false)
            .await
            .map(drop)
    }

    async fn post(
        &self,
        endpoint: &str,
        content_type: &str,
        body: &str,
        gzip: bool,
    ) -> anyhow::Result<bytes::Bytes> {
        let url = format!("{}/api/{endpoint}", self.base);
        // No arguments: an empty form (what a server function without input reads).
        let content_type = if body.is_empty() {
            "application/x-www-form-urlencoded"
        } else {
            content_type
        };
        let mut request = self
            .http
            .post(&url)
            .header("cookie", &self.cookie)
            .header("content-type", content_type)
            .body(body.to_string());
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        let answer = request
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .with_context(|| format!("POST {url}"))?;
        if !status.is_success() {
            bail!("POST {url}: {status} {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }
}
