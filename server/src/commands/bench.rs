//! `fleetdeck bench`: the gateway's overhead, measured on loopback.
//!
//! One instance (by default a demo `search` instance in this process answering as fast as
//! it can; with `--reference-server`, the TypeScript reference server, see [`instance`])
//! and a real gateway (`fleetdeck serve` as a child process, with its own store in a
//! temporary directory, so that its CPU time and memory are its own) routing to it. For
//! each concurrency, `c` clients call the tool in a loop directly against the instance,
//! then `c` other clients call it through the gateway; the difference between the two is
//! what the gateway costs. This is a benchmark, not a test: it reports, never asserts.
//!
//! The clients, the gateway and the instance share the machine's cores, so the gateway's
//! CPU time competes with the load generator's: at high concurrency the throughput ratio
//! measures the gateway's CPU cost per call as much as its latency. That cost is printed
//! too: the gateway process's CPU time (user + system) over the measured gateway phases,
//! divided by their calls, and its resident memory at the end.

use crate::access::password::generate_password;
use crate::config::BenchArgs;
use crate::config::fleet::FleetFile;
use anyhow::{Context, anyhow, bail};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

mod dashboard;
mod gateway_process;
mod instance;
mod machine_load;
use gateway_process::GatewayProcess;
use instance::{BenchInstance, Workload};
use machine_load::CpuCounters;
/// One call's bound; a call beyond it counts as an error and the phase goes on.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Calls per task and phase at most, whatever the duration (bounds the memory).
const MAX_CALLS_PER_TASK: usize = 1_000_000;
/// How long the gateway may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing a client or the demo instance may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Targets on a small (2-core) machine, as ratios within one run; reported, not enforced.
/// Throughput through the gateway at c=16 and c=64, as a share of direct.
const TARGET_RATIO: f64 = 0.6;
/// At c=1: gateway p50 at most this multiple of direct p50…
const TARGET_C1_LATENCY_RATIO: f64 = 1.5;
/// …and gateway throughput at least this share of direct.
const TARGET_C1_RATIO: f64 = 0.65;
/// In front of the reference server (one Node process, the bottleneck), throughput at c=64
/// as a share of direct.
const TARGET_REFERENCE_C64_RATIO: f64 = 0.9;

/// Which targets apply, by instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Targets {
    /// The demo instance: the gateway's own cost against a direct call.
    Overhead,
    /// The reference server: the gateway must not be what limits a slower server.
    Reference,
}

/// What to measure, from the command line.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    /// Concurrencies, ascending, without repeats.
    concurrency: Vec<usize>,
    /// Measured time per phase.
    duration: Duration,
    /// Unmeasured calls before each phase.
    warmup: Duration,
    /// The reference server's script, if it is the instance.
    reference_server: Option<std::path::PathBuf>,
}

impl Plan {
    fn from_args(args: &BenchArgs) -> anyhow::Result<Plan> {
        let mut concurrency: Vec<usize> = args
            .concurrency
            .iter()
            .map(|&c| usize::try_from(c).context("concurrency"))
            .collect::<anyhow::Result<_>>()?;
        concurrency.sort_unstable();
        concurrency.dedup();
        if concurrency.is_empty() || concurrency.contains(&0) {
            bail!("--concurrency needs at least one value, each at least 1");
        }
        Ok(Plan {
            concurrency,
            duration: Duration::from_secs(args.duration_s),
            warmup: Duration::from_secs(args.warmup_s),
            reference_server: args.reference_server.clone(),
        })
    }
}

/// A free loopback address, chosen now for a child process that binds it a moment later.
fn free_loopback_addr() -> anyhow::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("finding a free loopback port")
}

/// Runs the benchmark and prints its results on stdout; the last line is machine-readable.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args)?;
    let dir = std::env::temp_dir().join(format!("fleetdeck-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if args.dashboard {
        let loads = usize::try_from(args.loads).context("--loads")?;
        let outcome = tokio::select! {
            outcome = dashboard::run(loads, &dir) => outcome,
            () = super::serve::shutdown_signal() => Err(anyhow!("interrupted")),
        };
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), %error, "cannot remove the bench's temporary directory");
        }
        // Printed once everything has stopped, so that no log line can follow the last line.
        println!();
        for line in outcome?.report() {
            println!("{line}");
        }
        return Ok(());
    }
    let outcome = tokio::select! {
        outcome = bench(&plan, &dir) => outcome,
        () = super::serve::shutdown_signal() => Err(anyhow!("interrupted")),
    };
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), %error, "cannot remove the bench's temporary directory");
    }
    let Results {
        comparisons,
        cost,
        targets,
    } = outcome?;
    // Printed once everything has stopped, so that no log line can follow the last line.
    println!();
    for comparison in &comparisons {
        println!("{}", comparison.summary_line());
    }
    if comparisons.is_empty() {
        bail!("nothing was measured");
    }
    println!(
        "gateway process: {:.0} µs of CPU per call, {:.1} MB resident",
        cost.cpu_us_per_call, cost.rss_mb
    );
    println!();
    for line in target_lines(&comparisons, targets) {
        println!("{line}");
    }
    println!("{}", machine_line(&comparisons, &cost, targets));
    Ok(())
}

/// Starts the instance and the gateway, measures every phase, stops them again.
async fn bench(plan: &Plan, dir: &Path) -> anyhow::Result<Results> {
    let (instance, workload) = match &plan.reference_server {
        Some(script) => BenchInstance::reference(script, dir).await?,
        None => BenchInstance::demo().await?,
    };
    let key = crate::access::keys::generate_key();
    let fleet = fleet_text(&workload, &instance.mcp_url(), &key);
    FleetFile::parse(&fleet, Path::new("<bench fleet>")).context("the bench fleet file")?;
    let fleet_file = dir.join("bench-fleet.toml");
    std::fs::write(&fleet_file, fleet)
        .with_context(|| format!("writing {}", fleet_file.display()))?;
    // No probes while measuring: the calls alone should cost what is measured.
    let gateway =
        GatewayProcess::start(dir, &fleet_file, &generate_password(), 3600, READY_TIMEOUT)
            .await
            .context("starting the gateway")?;
    let addr = gateway.addr();
    let direct = Target {
        path: "direct",
        url: instance.mcp_url(),
        key: None,
        tool: workload.tool.to_string(),
        arguments: workload.arguments.clone(),
    };
    let through = Target {
        path: "gateway",
        url: format!("http://{addr}/mcp"),
        key: Some(key),
        tool: format!("{}__{}", workload.server, workload.tool),
        arguments: workload.arguments.clone(),
    };
    direct.check().await?;
    through.check().await?;

    println!(
        "fleetdeck bench: {} {} on {}, {} s per phase after {} s of warm-up, {} cores{}",
        workload.tool,
        serde_json::Value::Object(workload.arguments.clone()),
        workload.instance,
        plan.duration.as_secs(),
        plan.warmup.as_secs(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if cfg!(debug_assertions) {
            " (debug build: not representative)"
        } else {
            ""
        }
    );
    println!("{}", table_header());
    let mut comparisons = Vec::new();
    let mut gateway_cpu = Duration::ZERO;
    for &c in &plan.concurrency {
        let (direct_stats, _) = direct.measure(c, plan, None).await?;
        println!("{}", table_row(c, direct.path, &direct_stats));
        let (gateway_stats, cpu) = match through.measure(c, plan, Some(&gateway)).await {
            Ok(measured) => measured,
            Err(error) => return Err(error.context(gateway.exit_note())),
        };
        println!("{}", table_row(c, through.path, &gateway_stats));
        gateway_cpu += cpu.unwrap_or_default();
        comparisons.push(Comparison {
            concurrency: c,
            direct: direct_stats,
            gateway: gateway_stats,
        });
    }
    let gateway_calls: u64 = comparisons.iter().map(|c| c.gateway.calls).sum();
    let cost = GatewayCost {
        cpu_us_per_call: gateway_cpu.as_secs_f64() * 1e6 / gateway_calls.max(1) as f64,
        rss_mb: gateway.resident_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0),
    };

    gateway.stop().await;
    instance.stop(CLOSE_TIMEOUT).await;
    Ok(Results {
        comparisons,
        cost,
        targets: workload.targets,
    })
}

/// What the gateway process spent.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GatewayCost {
    /// CPU time (user + system) over the measured gateway phases per successful call.
    cpu_us_per_call: f64,
    /// Resident memory after the last phase.
    rss_mb: f64,
}

/// Everything measured.
struct Results {
    comparisons: Vec<Comparison>,
    cost: GatewayCost,
    targets: Targets,
}

/// The bench fleet: the one instance, round-robin, every call reaching it (no result
/// cache), a generous timeout, room for every client, and the bench's assistant (an admin
/// with a rate limit far above what the bench can reach, so that nothing is refused).
fn fleet_text(workload: &Workload, instance_url: &str, key: &str) -> String {
    let Workload {
        server,
        instance_id,
        ..
    } = workload;
    format!(
        "[[server]]\n\
         name = \"{server}\"\n\
         strategy = \"round-robin\"\n\
         timeout_ms = 30000\n\
         max_in_flight = 256\n\
         keep_alive = true\n\
         cache = {{ tools_ttl_s = 86400, cacheable = [] }}\n\
         \n  [[server.instance]]\n  id = \"{instance_id}\"\n  url = \"{instance_url}\"\n\
         \n[[assistant]]\nname = \"bench\"\nkey = \"{key}\"\ntier = \"admin\"\n\
         \n[access.tier.admin]\nrate_per_min = 1000000\n"
    )
}

/// Where the calls go.
struct Target {
    /// "direct" or "gateway".
    path: &'static str,
    url: String,
    /// The bearer key, if the endpoint wants one.
    key: Option<String>,
    /// The tool's name at this endpoint.
    tool: String,
    /// Its arguments.
    arguments: serde_json::Map<String, serde_json::Value>,
}

type Client = RunningService<RoleClient, ()>;

impl Target {
    fn params(&self) -> CallToolRequestParams {
        CallToolRequestParams::new(self.tool.clone()).with_arguments(self.arguments.clone())
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str());
        config.auth_header = self.key.clone();
        // Keep-alive, as a real assistant's client would: both servers send with TCP_NODELAY.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        ().serve(StreamableHttpClientTransport::with_client(http, config))
            .await
            .with_context(|| format!("connecting to {} ({})", self.url, self.path))
    }

    /// One call must answer before anything is measured.
    async fn check(&self) -> anyhow::Result<()> {
        let mut client = self.connect().await?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, client.peer().call_tool(self.params()))
            .await
            .map_err(|_| anyhow!("no answer within {CALL_TIMEOUT:?}"))
            .and_then(|answer| answer.map_err(anyhow::Error::from));
        let _ = client.close_with_timeout(CLOSE_TIMEOUT).await;
        let checked = match answer {
            Ok(result) if succeeded(&result) => Ok(()),
            Ok(result) => Err(anyhow!("the tool failed: {}", text_of(&result))),
            Err(error) => Err(error),
        };
        checked.with_context(|| format!("checking {} ({}) before measuring", self.tool, self.path))
    }

    /// One phase: `c` clients, warmed up, then calling for the plan's duration; with a
    /// gateway process, also the CPU time it spent over the measured part.
    async fn measure(
        &self,
        c: usize,
        plan: &Plan,
        gateway: Option<&GatewayProcess>,
    ) -> anyhow::Result<(PhaseStats, Option<Duration>)> {
        let mut clients = Vec::with_capacity(c);
        for _ in 0..c {
            clients.push(self.connect().await?);
        }
        let peers: Vec<Peer<RoleClient>> =
            clients.iter().map(|client| client.peer().clone()).collect();
        let measured = async {
            if !plan.warmup.is_zero() {
                drive(&peers, &self.params(), plan.warmup).await?;
            }
            let before = gateway.and_then(GatewayProcess::cpu_time);
            let machine_before = CpuCounters::now();
            let driven = drive(&peers, &self.params(), plan.duration).await?;
            let machine_after = CpuCounters::now();
            let after = gateway.and_then(GatewayProcess::cpu_time);
            let cpu = before.zip(after).map(|(b, a)| a.saturating_sub(b));
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let busy = machine_before
                .zip(machine_after)
                .and_then(|(b, a)| b.busy_cores_until(a, cores));
            Ok::<_, anyhow::Error>((driven, cpu, busy))
        }
        .await;
        futures::future::join_all(
            clients
                .iter_mut()
                .map(|client| client.close_with_timeout(CLOSE_TIMEOUT)),
        )
        .await;
        let ((tasks, elapsed), cpu, busy_cores) = measured?;
        let stats = PhaseStats {
            busy_cores,
            ..PhaseStats::from_tasks(tasks, elapsed)
        };
        if stats.calls == 0 {
            bail!(
                "c={c} {}: no call succeeded ({} errors)",
                self.path,
                stats.errors
            );
        }
        Ok((stats, cpu))
    }
}

/// What one calling task saw.
#[derive(Debug, Default)]
struct TaskResult {
    /// Latencies of the calls that succeeded.
    latencies: Vec<Duration>,
    /// Calls that failed, timed out or answered with an error.
    errors: u64,
}

/// Each peer calls in a loop until `duration` has passed; returns every task's record and
/// the wall time from the start until the last task ended.
async fn drive(
    peers: &[Peer<RoleClient>],
    params: &CallToolRequestParams,
    duration: Duration,
) -> anyhow::Result<(Vec<TaskResult>, Duration)> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<JoinHandle<TaskResult>> = peers
        .iter()
        .map(|peer| {
            let peer = peer.clone();
            let params = params.clone();
            tokio::spawn(async move {
                let mut result = TaskResult::default();
                let mut attempts = 0;
                while attempts < MAX_CALLS_PER_TASK && Instant::now() < deadline {
                    attempts += 1;
                    let sent = Instant::now();
                    let answer =
                        tokio::time::timeout(CALL_TIMEOUT, peer.call_tool(params.clone())).await;
                    let latency = sent.elapsed();
                    match answer {
                        Ok(Ok(answer)) if succeeded(&answer) => result.latencies.push(latency),
                        _ => result.errors += 1,
                    }
                }
                result
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.context("a calling task failed")?);
    }
    Ok((results, started.elapsed()))
}

fn succeeded(result: &CallToolResult) -> bool {
    result.is_error != Some(true)
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One phase's numbers.
#[derive(Debug, Clone, PartialEq)]
struct PhaseStats {
    /// Calls that succeeded.
    calls: u64,
    errors: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    /// Cores of the whole machine busy on average during the phase.
    busy_cores: Option<f64>,
}

impl PhaseStats {
    fn from_tasks(tasks: Vec<TaskResult>, elapsed: Duration) -> PhaseStats {
        let errors = tasks.iter().map(|t| t.errors).sum();
        let mut latencies: Vec<Duration> = tasks.into_iter().flat_map(|t| t.latencies).collect();
        latencies.sort_unstable();
        PhaseStats {
            calls: latencies.len() as u64,
            errors,
            elapsed,
            p50: percentile(&latencies, 50.0).unwrap_or_default(),
            p99: percentile(&latencies, 99.0).unwrap_or_default(),
            busy_cores: None,
        }
    }

    /// Successful calls per second.
    fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.calls as f64 / seconds
        } else {
            0.0
        }
    }
}

/// The nearest-rank percentile of ascending `sorted` values (`p` in 0..=100): the smallest
/// value with at least p% of the values at or below it. None when there are no values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Direct and gateway numbers at one concurrency.
#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    concurrency: usize,
    direct: PhaseStats,
    gateway: PhaseStats,
}

impl Comparison {
    /// What the gateway adds to the median, in milliseconds (noise may make it negative).
    fn added_p50_ms(&self) -> f64 {
        ms(self.gateway.p50) - ms(self.direct.p50)
    }

    fn added_p99_ms(&self) -> f64 {
        ms(self.gateway.p99) - ms(self.direct.p99)
    }

    /// Throughput through the gateway as a share of direct throughput.
    fn throughput_ratio(&self) -> f64 {
        let direct = self.direct.throughput();
        if direct > 0.0 {
            self.gateway.throughput() / direct
        } else {
            0.0
        }
    }

    fn summary_line(&self) -> String {
        let side = |stats: &PhaseStats| {
            format!(
                "{:.0}/s p50 {:.3} ms p99 {:.3} ms",
                stats.throughput(),
                ms(stats.p50),
                ms(stats.p99)
            )
        };
        let mut line = format!(
            "c={} direct: {} | gateway: {} | added p50 {:.3} ms p99 {:.3} ms | ratio {:.3}",
            self.concurrency,
            side(&self.direct),
            side(&self.gateway),
            self.added_p50_ms(),
            self.added_p99_ms(),
            self.throughput_ratio()
        );
        let errors = self.direct.errors + self.gateway.errors;
        if errors > 0 {
            let _ = write!(
                line,
                " | errors {} direct, {} gateway",
                self.direct.errors, self.gateway.errors
            );
        }
        line
    }

    /// Gateway p50 as a multiple of direct p50.
    fn latency_ratio(&self) -> f64 {
        let direct = ms(self.direct.p50);
        if direct > 0.0 {
            ms(self.gateway.p50) / direct
        } else {
            0.0
        }
    }
}

/// The comparison at concurrency `c`, if it was measured.
fn at(comparisons: &[Comparison], c: usize) -> Option<&Comparison> {
    comparisons
        .iter()
        .find(|comparison| comparison.concurrency == c)
}

/// The last line of the output, for scripts: the ratios of the targets (`-` for a
/// concurrency not measured) and the gateway's cost.
fn machine_line(comparisons: &[Comparison], cost: &GatewayCost, targets: Targets) -> String {
    let value = |c: usize, f: fn(&Comparison) -> f64| {
        at(comparisons, c).map_or("-".to_string(), |comparison| {
            format!("{:.3}", f(comparison))
        })
    };
    let prefix = match targets {
        Targets::Overhead => "bench",
        Targets::Reference => "bench-reference",
    };
    format!(
        "{prefix}: c1_latency_ratio={} c1_ratio={} c16_ratio={} c64_ratio={} cpu_us_per_call={:.0} rss_mb={:.1}",
        value(1, Comparison::latency_ratio),
        value(1, Comparison::throughput_ratio),
        value(16, Comparison::throughput_ratio),
        value(64, Comparison::throughput_ratio),
        cost.cpu_us_per_call,
        cost.rss_mb
    )
}

fn table_header() -> String {
    format!(
        "{:>4}  {:<8} {:>9} {:>10} {:>9} {:>9} {:>7} {:>6}",
        "c", "path", "calls", "calls/s", "p50 ms", "p99 ms", "errors", "cores"
    )
}

fn table_row(c: usize, path: &str, stats: &PhaseStats) -> String {
    format!(
        "{:>4}  {:<8} {:>9} {:>10.0} {:>9.3} {:>9.3} {:>7} {:>6}",
        c,
        path,
        stats.calls,
        stats.throughput(),
        ms(stats.p50),
        ms(stats.p99),
        stats.errors,
        stats
            .busy_cores
            .map_or("-".to_string(), |busy| format!("{busy:.2}"))
    )
}

/// Whether each target was met, for the concurrencies measured.
fn target_lines(comparisons: &[Comparison], targets: Targets) -> Vec<String> {
    let verdict = |met: bool| if met { "met" } else { "missed" };
    let mut lines = Vec::new();
    if targets == Targets::Reference {
        if let Some(c64) = at(comparisons, 64) {
            let ratio = c64.throughput_ratio();
            lines.push(format!(
                "target c=64 (reference server): throughput ratio {ratio:.3} >= \
                 {TARGET_REFERENCE_C64_RATIO}: {}",
                verdict(ratio >= TARGET_REFERENCE_C64_RATIO)
            ));
        }
        return lines;
    }
    if let Some(c1) = at(comparisons, 1) {
        let (latency, ratio) = (c1.latency_ratio(), c1.throughput_ratio());
        lines.push(format!(
            "target c=1: gateway p50 {latency:.2} x direct <= {TARGET_C1_LATENCY_RATIO}: {}",
            verdict(latency <= TARGET_C1_LATENCY_RATIO)
        ));
        lines.push(format!(
            "target c=1: throughput ratio {ratio:.3} >= {TARGET_C1_RATIO}: {}",
            verdict(ratio >= TARGET_C1_RATIO)
        ));
    }
    for c in [16, 64] {
        if let Some(comparison) = at(comparisons, c) {
            let ratio = comparison.throughput_ratio();
            lines.push(format!(
                "target c={c}: throughput ratio {ratio:.3} >= {TARGET_RATIO}: {}",
                verdict(ratio >= TARGET_RATIO)
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_micros(v)).collect()
    }

    fn stats(calls: u64, seconds: u64, p50_us: u64, p99_us: u64) -> PhaseStats {
        PhaseStats {
            calls,
            errors: 0,
            elapsed: Duration::from_secs(seconds),
            p50: Duration::from_micros(p50_us),
            p99: Duration::from_micros(p99_us),
            busy_cores: None,
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        let one = micros(&[7]);
        assert_eq!(percentile(&one, 50.0), Some(Duration::from_micros(7)));
        assert_eq!(percentile(&one, 99.0), Some(Duration::from_micros(7)));
        let hundred: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&hundred, 50.0), Some(Duration::from_micros(50)));
        assert_eq!(percentile(&hundred, 99.0), Some(Duration::from_micros(99)));
        assert_eq!(
            percentile(&hundred, 100.0),
            Some(Duration::from_micros(100))
        );
        assert_eq!(percentile(&hundred, 0.0), Some(Duration::from_micros(1)));
        // Four values: p50 is the 2nd, p99 the 4th.
        let four = micros(&[10, 20, 30, 40]);
        assert_eq!(percentile(&four, 50.0), Some(Duration::from_micros(20)));
        assert_eq!(percentile(&four, 99.0), Some(Duration::from_micros(40)));
    }

    #[test]
    fn phase_stats_merge_the_tasks_and_count_errors() {
        let tasks = vec![
            TaskResult {
                latencies: micros(&[300, 100]),
                errors: 1,
            },
            TaskResult {
                latencies: micros(&[200, 400]),
                errors: 2,
            },
        ];
        let stats = PhaseStats::from_tasks(tasks, Duration::from_secs(2));
        assert_eq!(stats.calls, 4);
        assert_eq!(stats.errors, 3);
        assert_eq!(stats.p50, Duration::from_micros(200));
        assert_eq!(stats.p99, Duration::from_micros(400));
        assert_eq!(stats.throughput(), 2.0);
        let none = PhaseStats::from_tasks(Vec::new(), Duration::ZERO);
        assert_eq!((none.calls, none.throughput()), (0, 0.0));
    }

    fn comparison() -> Comparison {
        Comparison {
            concurrency: 64,
            direct: stats(40_000, 5, 1_500, 4_000),
            gateway: stats(24_000, 5, 1_700, 4_750),
        }
    }

    #[test]
    fn the_summary_line_compares_both_paths() {
        assert_eq!(
            comparison().summary_line(),
            "c=64 direct: 8000/s p50 1.500 ms p99 4.000 ms | gateway: 4800/s p50 1.700 ms \
             p99 4.750 ms | added p50 0.200 ms p99 0.750 ms | ratio 0.600"
        );
        let mut with_errors = comparison();
        with_errors.gateway.errors = 3;
        assert!(
            with_errors
                .summary_line()
                .ends_with("| ratio 0.600 | errors 0 direct, 3 gateway")
        );
    }

    fn run(c1: Comparison) -> Vec<Comparison> {
        vec![
            c1,
            Comparison {
                concurrency: 16,
                ..comparison()
            },
            comparison(),
        ]
    }

    fn c1(gateway_p50_us: u64, gateway_calls: u64) -> Comparison {
        Comparison {
            concurrency: 1,
            direct: stats(10_000, 5, 400, 900),
            gateway: stats(gateway_calls, 5, gateway_p50_us, 1_200),
        }
    }

    const COST: GatewayCost = GatewayCost {
        cpu_us_per_call: 123.4,
        rss_mb: 41.25,
    };

    #[test]
    fn the_machine_line_has_the_documented_format() {
        assert_eq!(
            machine_line(&run(c1(500, 7_000)), &COST, Targets::Overhead),
            "bench: c1_latency_ratio=1.250 c1_ratio=0.700 c16_ratio=0.600 c64_ratio=0.600 \
             cpu_us_per_call=123 rss_mb=41.2"
        );
        // A concurrency not measured is `-`, not a made-up number.
        assert_eq!(
            machine_line(&[comparison()], &COST, Targets::Overhead),
            "bench: c1_latency_ratio=- c1_ratio=- c16_ratio=- c64_ratio=0.600 \
             cpu_us_per_call=123 rss_mb=41.2"
        );
        let line = machine_line(&run(c1(500, 7_000)), &COST, Targets::Overhead);
        let fields: Vec<(&str, &str)> = line
            .strip_prefix("bench: ")
            .expect("prefix")
            .split(' ')
            .map(|field| field.split_once('=').expect("key=value"))
            .collect();
        let keys: Vec<&str> = fields.iter().map(|(key, _)| *key).collect();
        assert_eq!(
            keys,
            [
                "c1_latency_ratio",
                "c1_ratio",
                "c16_ratio",
                "c64_ratio",
                "cpu_us_per_call",
                "rss_mb"
            ]
        );
        assert!(fields.iter().all(|(_, value)| value.parse::<f64>().is_ok()));
    }

    #[test]
    fn targets_are_reported_not_asserted() {
        assert_eq!(
            target_lines(&run(c1(500, 7_000)), Targets::Overhead),
            [
                "target c=1: gateway p50 1.25 x direct <= 1.5: met",
                "target c=1: throughput ratio 0.700 >= 0.65: met",
                "target c=16: throughput ratio 0.600 >= 0.6: met",
                "target c=64: throughput ratio 0.600 >= 0.6: met",
            ]
        );
        let slow = Comparison {
            gateway: stats(1_000, 5, 3_000, 9_000),
            ..comparison()
        };
        let slow_run = vec![
            c1(900, 3_000),
            Comparison {
                concurrency: 16,
                ..slow.clone()
            },
            slow,
        ];
        assert!(
            target_lines(&slow_run, Targets::Overhead)
                .iter()
                .all(|l| l.ends_with("missed"))
        );
    }

    #[test]
    fn the_reference_server_has_its_own_target_and_prefix() {
        let fast = comparison();
        assert_eq!(
            target_lines(std::slice::from_ref(&fast), Targets::Reference),
            ["target c=64 (reference server): throughput ratio 0.600 >= 0.9: missed"]
        );
        let close = Comparison {
            gateway: stats(38_000, 5, 1_600, 4_100),
            ..fast.clone()
        };
        assert!(target_lines(&[close], Targets::Reference)[0].ends_with(": met"));
        assert!(
            machine_line(&[fast], &COST, Targets::Reference)
                .starts_with("bench-reference: c1_latency_ratio=- c1_ratio=- c16_ratio=- ")
        );
    }

    #[test]
    fn the_plan_sorts_and_dedups_the_concurrencies() {
        let args = BenchArgs {
            duration_s: 2,
            concurrency: vec![64, 1, 16, 16],
            warmup_s: 0,
            reference_server: None,
            dashboard: false,
            loads: 20,
        };
        let plan = Plan::from_args(&args).expect("valid");
        assert_eq!(plan.concurrency, [1, 16, 64]);
        assert_eq!(plan.duration, Duration::from_secs(2));
        assert!(plan.warmup.is_zero());
        let empty = BenchArgs {
            concurrency: Vec::new(),
            ..args
        };
        assert!(Plan::from_args(&empty).is_err());
    }

    #[test]
    fn the_bench_fleet_parses_with_nothing_cached() {
        let workload = Workload {
            server: "search",
            instance_id: "bench-search-1",
            tool: "lookup",
            arguments: serde_json::Map::new(),
            instance: "",
            targets: Targets::Overhead,
        };
        let fleet = FleetFile::parse(
            &fleet_text(
                &workload,
                "http://127.0.0.1:9/mcp",
                "fd_bench_0123456789abcdef0123456789abcdef",
            ),
            Path::new("<bench fleet>"),
        )
        .expect("a valid fleet file");
        let server = &fleet.servers[0];
        assert_eq!(server.name.get_ref(), "search");
        assert_eq!(server.max_in_flight, 256);
        assert!(server.cache.cacheable.is_empty());
        assert_eq!(server.instances.len(), 1);
        assert_eq!(fleet.assistants.len(), 1);
    }
}
