//! Helpers for the cross-process tests: start the real `fleetdeck` binary on a free
//! loopback port with its own data dir, and stop it again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
}

impl Fleetdeck {
    /// Starts `fleetdeck serve` and waits until it listens (at most 60 s).
    pub async fn start(options: ServeOptions<'_>) -> Fleetdeck {
        let mut command = Command::new(fleetdeck_bin());
        command
            .args(["serve", "--addr", &options.addr.to_string(), "--data-dir"])
            .arg(options.data_dir)
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
