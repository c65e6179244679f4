//! The bench's gateway: `fleetdeck serve` (this same binary) as a child process on a free
//! loopback port, so that its CPU time and resident memory can be read on their own
//! (`/proc/<pid>/stat` and `status`). Killed when dropped.

use anyhow::{Context, anyhow, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A running gateway process.
pub struct GatewayProcess {
    child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
}

impl GatewayProcess {
    /// Starts `serve` with `fleet_file` and its store under `dir`, probing every
    /// `probe_interval_s`, and waits until it answers `/healthz` (or `ready_timeout` passes).
    pub async fn start(
        dir: &Path,
        fleet_file: &Path,
        admin_password: &str,
        probe_interval_s: u64,
        ready_timeout: Duration,
    ) -> anyhow::Result<GatewayProcess> {
        // Another build may be measured in this build's bench (before and after a change,
        // in one run): `FLEETDECK_BENCH_GATEWAY=<path to fleetdeck>`.
        let program = match std::env::var_os("FLEETDECK_BENCH_GATEWAY") {
            Some(path) => std::path::PathBuf::from(path),
            None => std::env::current_exe().context("finding this program")?,
        };
        // A free port, chosen now: the child binds it a moment later (loopback only).
        let addr = super::free_loopback_addr()?;
        let child = tokio::process::Command::new(program)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--fleet")
            .arg(fleet_file)
            .arg("--addr")
            .arg(addr.to_string())
            .arg("--probe-interval-s")
            .arg(probe_interval_s.to_string())
            // Not inherited by the child's own children, and never logged by it.
            .env("FLEETDECK_ADMIN_PASSWORD", admin_password)
            // What an operator should act on, not every call.
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting `fleetdeck serve`")?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the gateway exited at once"))?;
        let mut gateway = GatewayProcess { child, pid, addr };
        gateway.wait_ready(ready_timeout).await?;
        Ok(gateway)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building the readiness client")?;
        let url = format!("http://{}/healthz", self.addr);
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().context("watching the gateway")? {
                bail!("the gateway exited before listening ({status})");
            }
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|answer| answer.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the gateway did not answer {url} within {timeout:?}")
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its CPU time so far (user + system), if the system says.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        cpu_time_of(&stat, clock_ticks_per_second()?)
    }

    /// Its resident memory, if the system says.
    pub fn resident_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        resident_bytes_of(&status)
    }

    /// Why a phase may have failed: the gateway's exit, if it exited.
    pub fn exit_note(&self) -> String {
        match std::fs::metadata(format!("/proc/{}", self.pid)) {
            Ok(_) => "the gateway process is still running".into(),
            Err(_) => "the gateway process has exited".into(),
        }
    }

    /// Stops it (SIGKILL: a bench's throw-away store needs no graceful end).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn clock_ticks_per_second() -> Option<f64> {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name in
/// parentheses may hold spaces, so fields are counted after its closing parenthesis.
fn cpu_time_of(stat: &str, ticks_per_second: f64) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, field 3 (state) is index 0: utime (14) is index 11, stime 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks_per_second,
    ))
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn resident_bytes_of(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "4242 (fleet deck) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_time_of(stat, 100.0), Some(Duration::from_secs(3)));
        assert_eq!(cpu_time_of("garbage", 100.0), None);
    }

    #[test]
    fn resident_memory_is_read_in_bytes() {
        let status = "Name:\tfleetdeck\nVmPeak:\t  900 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(resident_bytes_of(status), Some(2 * 1024 * 1024));
        assert_eq!(resident_bytes_of("Name: x\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = std::fs::read_to_string("/proc/self/stat").expect("procfs");
        assert!(cpu_time_of(&me, clock_ticks_per_second().expect("ticks")).is_some());
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
        assert!(resident_bytes_of(&status).is_some_and(|bytes| bytes > 0));
    }
}
