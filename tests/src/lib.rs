//! Helpers for the cross-process tests: start the real `fleetdeck` binary on a free
//! loopback port with its own data dir, and stop it again; a PostgreSQL schema per test
//! and a round-robin proxy for tests of several replicas.

pub mod balancer;
pub mod postgres;

pub use balancer::Balancer;
pub use postgres::PgSchema;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Installs rustls' ring provider once: in a workspace build reqwest is compiled with
/// `rustls-no-provider` (the server's choice), and panics without one.
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The `fleetdeck` binary under test: `$FLEETDECK_BIN`, else the one built beside this test.
pub fn fleetdeck_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FLEETDECK_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test> → target/<profile>/fleetdeck
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("fleetdeck");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (make build)",
        bin.display()
    );
    bin
}

/// A running `fleetdeck serve`, killed when dropped.
pub struct Fleetdeck {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// How to start a server.
pub struct ServeOptions<'a> {
    /// The data dir (kept by the caller so that restarts see the same state).
    pub data_dir: &'a Path,
    /// Listen address; port 0 picks a free one.
    pub addr: SocketAddr,
    /// FLEETDECK_ADMIN_PASSWORD, if any.
    pub admin_password: Option<&'a str>,
    /// More `serve` arguments, e.g. `--fleet <file>`.
    pub extra_args: Vec<String>,
}

impl Fleetdeck {
    /// Starts `fleetdeck serve` and waits until it listens (at most 60 s).
    pub async fn start(options: ServeOptions<'_>) -> Fleetdeck {
        Self::start_with_env(options, &[]).await
    }

    /// [`Fleetdeck::start`] with these variables added to the server's environment.
    pub async fn start_with_env(options: ServeOptions<'_>, env: &[(&str, &str)]) -> Fleetdeck {
        install_crypto();
        let mut command = Command::new(fleetdeck_bin());
        command
            .args(["serve", "--addr", &options.addr.to_string(), "--data-dir"])
            .arg(options.data_dir)
            .args(&options.extra_args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match options.admin_password {
            Some(password) => command.env("FLEETDECK_ADMIN_PASSWORD", password),
            None => command.env_remove("FLEETDECK_ADMIN_PASSWORD"),
        };
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("spawn fleetdeck");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut addr_tx = Some(addr_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("dashboard at http://").nth(1)
                    && let Ok(addr) = rest.trim().parse::<SocketAddr>()
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match tokio::time::timeout(Duration::from_secs(60), addr_rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                let status = child.try_wait().ok().flatten();
                panic!(
                    "fleetdeck did not start (exit: {status:?}); its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Fleetdeck {
            child: Some(child),
            addr,
            log,
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("a running server")
    }

    /// The server's resident memory now, in bytes (Linux: `VmRSS` of /proc/<pid>/status).
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// The server's log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Stops it with SIGTERM (a graceful shutdown) and waits for it to exit.
    pub async fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
            Ok(Ok(status)) => assert!(status.success(), "fleetdeck exited with {status}"),
            _ => {
                let _ = child.kill().await;
                panic!("fleetdeck did not stop within 20 s of SIGTERM");
            }
        }
    }
}

/// The hostile MCP server of this package (`src/bin/hostile_mcp.rs`), built beside the
/// tests by `cargo test`.
pub fn hostile_mcp_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("hostile-mcp");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with cargo test",
        bin.display()
    );
    bin
}

/// The loopback address with a free port chosen by the OS.
pub fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Runs `fleetdeck` with `args` to completion: (exit code, stdout, stderr).
pub async fn run_fleetdeck(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(fleetdeck_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("FLEETDECK_ADMIN_PASSWORD")
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fleetdeck");
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("fleetdeck finished within 60 s")
        .expect("fleetdeck output");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The workspace root (for the npm peers under `end2end/node_modules`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The official reference MCP server (`@modelcontextprotocol/server-everything`), served
/// over streamable HTTP on loopback; killed when dropped.
pub struct ReferenceServer {
    _child: Child,
    /// Its MCP endpoint.
    pub url: String,
}

/// The reference server's entry point, for stdio instances.
pub fn reference_server_script() -> PathBuf {
    workspace_root()
        .join("end2end/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

impl ReferenceServer {
    /// Starts it on a free loopback port and waits until it accepts connections.
    pub async fn start() -> ReferenceServer {
        install_crypto();
        let script = reference_server_script();
        assert!(
            script.is_file(),
            "{} is missing: run make test-tools",
            script.display()
        );
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("addr").port()
        };
        let child = Command::new("node")
            .arg("--require")
            .arg(workspace_root().join("end2end/support/loopback.cjs"))
            .arg(&script)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the reference server did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ReferenceServer {
            _child: child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

/// A `fleetdeck demo-server` process (so a test can SIGKILL it).
pub struct DemoServerProcess {
    child: Child,
    /// Its MCP endpoint.
    pub url: String,
    /// Its base URL (knobs at `/knobs`, metrics at `/metrics`).
    pub base: String,
}

impl DemoServerProcess {
    /// Starts `fleetdeck demo-server <kind> --id <id>` on a free loopback port.
    pub async fn start(kind: &str, id: &str) -> DemoServerProcess {
        Self::start_at(kind, id, "127.0.0.1:0").await
    }

    /// Starts it on `addr` (e.g. the port of one killed before, to restart it in place).
    pub async fn start_at(kind: &str, id: &str, addr: &str) -> DemoServerProcess {
        install_crypto();
        let mut child = Command::new(fleetdeck_bin())
            .args(["demo-server", kind, "--id", id, "--addr", addr])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn demo-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("demo-server printed its address in time")
            .expect("read stdout")
            .expect("a line");
        let url = line.rsplit(' ').next().expect("url").to_string();
        let base = url.trim_end_matches("/mcp").to_string();
        DemoServerProcess { child, url, base }
    }

    /// Kills it with SIGKILL (no goodbye to anyone).
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// Sets its fault-injection knobs (JSON, e.g. `{"fail_rate": 1.0}`).
    pub async fn set_knobs(&self, knobs: serde_json::Value) {
        let response = reqwest::Client::new()
            .put(format!("{}/knobs", self.base))
            .json(&knobs)
            .send()
            .await
            .expect("PUT /knobs");
        assert!(
            response.status().is_success(),
            "knobs refused: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// `demo_tool_calls_total` summed over tools and outcomes: the calls it has served.
    pub async fn calls_served(&self) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| l.starts_with("demo_tool_calls_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// `fleetdeck scale-fleet`: a synthetic fleet of many instances on loopback, whose fleet
/// file it wrote; killed when dropped.
pub struct ScaleFleetProcess {
    _child: Child,
    /// The fleet file.
    pub fleet_file: PathBuf,
}

impl ScaleFleetProcess {
    /// Starts it with these `scale-fleet` arguments (`--servers 50` …), writing its fleet
    /// file into `dir`, and waits until it is ready.
    pub async fn start(dir: &Path, args: &[&str]) -> ScaleFleetProcess {
        let fleet_file = dir.join("scale-fleet.toml");
        let mut child = Command::new(fleetdeck_bin())
            .arg("scale-fleet")
            .arg("--write-fleet")
            .arg(&fleet_file)
            .args(args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn scale-fleet");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("scale-fleet ready in time")
            .expect("read stdout")
            .expect("a line");
        assert!(line.starts_with("synthetic fleet ready"), "{line}");
        ScaleFleetProcess {
            _child: child,
            fleet_file,
        }
    }
}

/// Calls a server function whose input is JSON (`input = Json`) with a dashboard session;
/// its JSON answer (a failure panics with the status and body).
pub async fn server_fn_json(
    client: &reqwest::Client,
    server: &Fleetdeck,
    endpoint: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = client
        .post(server.url(&format!("/api/{endpoint}")))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/{endpoint}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "/api/{endpoint}: {status} {text}");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("/api/{endpoint} is not JSON ({e}): {text}"))
}

/// Writes a fleet file into `dir` and returns its path.
pub fn write_fleet(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).expect("write fleet.toml");
    path
}

/// An rmcp client of the gateway, authenticated with `key`.
pub async fn gateway_client(
    url: &str,
    key: &str,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    install_crypto();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    config.auth_header = Some(key.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("connect to the gateway")
}

/// The parameters of a `tools/call` of `name` with these JSON arguments.
pub fn tool_call(name: &str, arguments: serde_json::Value) -> rmcp::model::CallToolRequestParams {
    let mut params = rmcp::model::CallToolRequestParams::new(name.to_string());
    params.arguments = arguments.as_object().cloned();
    params
}

/// Starts `fleetdeck serve` on a free port with `fleet` (fleet-file text) written into
/// `dir`, which is also its data dir; the prober pings every second.
pub async fn start_with_fleet(dir: &Path, fleet: &str, admin_password: &str) -> Fleetdeck {
    let fleet = write_fleet(dir, fleet);
    Fleetdeck::start(ServeOptions {
        data_dir: dir,
        addr: any_loopback_port(),
        admin_password: Some(admin_password),
        extra_args: vec![
            "--fleet".into(),
            fleet.display().to_string(),
            "--probe-interval-s".into(),
            "1".into(),
        ],
    })
    .await
}

/// Fetches `/metrics` as a scraper does: no session, no redirects followed.
pub async fn scrape_metrics(gateway: &Fleetdeck) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(gateway.url("/metrics")).send().await.unwrap();
    assert_eq!(
        response.status(),
        reqwest::StatusCode::OK,
        "/metrics answers without a login"
    );
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "classic text format, got {content_type:?}"
    );
    response.text().await.unwrap()
}

/// The value of the sample `name` with exactly these labels, parsed as our scraper does.
pub fn metrics_sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let lines = exposition.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parsable exposition");
    scrape
        .samples
        .into_iter()
        .find(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// A dashboard session of `user` (a cookie jar that follows no redirects).
pub async fn dashboard_session(server: &Fleetdeck, user: &str, password: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let response = client
        .post(server.url("/api/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("POST /api/login");
    assert!(
        response.status().is_success() || response.status().is_redirection(),
        "login as {user}: {}",
        response.status()
    );
    client
}

/// Calls a server function (no arguments) with a dashboard session and returns its JSON.
pub async fn server_fn(
    client: &reqwest::Client,
    server: &Fleetdeck,
    endpoint: &str,
) -> serde_json::Value {
    let response = client
        .post(server.url(&format!("/api/{endpoint}")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/{endpoint}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "/api/{endpoint}: {status} {body}");
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("/api/{endpoint} is not JSON ({e}): {body}"))
}

/// Calls a server function with form arguments and a dashboard session: its status and
/// body, whatever they are (for refusals as much as for successes).
pub async fn server_fn_form(
    client: &reqwest::Client,
    server: &Fleetdeck,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, String) {
    let response = client
        .post(server.url(&format!("/api/{endpoint}")))
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/{endpoint}: {e}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// A connection to the SQLite store of a server whose data dir is `dir` (for tests that
/// read what was stored, or plant what a hostile database row would hold).
pub async fn sqlite_store(dir: &Path) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}?mode=rw", dir.join("fleetdeck.db").display());
    sqlx::SqlitePool::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"))
}
