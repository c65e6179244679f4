//! The instance a bench measures against, and the call it makes: by default one demo
//! `search` instance in this process, answering as fast as it can (what the gateway itself
//! costs shows); with `--reference-server`, the official TypeScript reference server
//! (`@modelcontextprotocol/server-everything`) as a Node child process, whose `echo` is
//! the bottleneck (what a gateway in front of a real, slower server costs shows).

use super::Targets;
use crate::demo::{DemoInstance, DemoKind, Knobs, serve_demo_instance};
use anyhow::{Context, anyhow, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Keeps the reference server on loopback (it listens on every interface and has no host
/// option); the same preload the end-to-end tests use.
const LOOPBACK_PRELOAD: &str = include_str!("../../../../end2end/support/loopback.cjs");
/// How long the reference server may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the bench calls, on which instance.
pub struct Workload {
    /// The fleet file's server name (through the gateway the tool is `<server>__<tool>`).
    pub server: &'static str,
    /// The instance's id in the bench fleet.
    pub instance_id: &'static str,
    /// The upstream tool.
    pub tool: &'static str,
    /// Its arguments.
    pub arguments: serde_json::Map<String, serde_json::Value>,
    /// What the instance is, for the output's heading.
    pub instance: &'static str,
    /// The targets its figures are held to.
    pub targets: Targets,
}

/// A running bench instance; stopped by [`BenchInstance::stop`] or when dropped.
pub enum BenchInstance {
    /// The demo search instance, in this process.
    Demo(DemoInstance),
    /// The reference server, a Node child process.
    Reference(ReferenceServer),
}

impl BenchInstance {
    /// The demo search instance with no simulated latency.
    pub async fn demo() -> anyhow::Result<(BenchInstance, Workload)> {
        let quiet = Knobs {
            // The instance's simulated latency would drown the gateway's own.
            latency_scale: 0.0,
            ..Knobs::default()
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let instance = serve_demo_instance(DemoKind::Search, "bench-search-1", loopback, quiet)
            .await
            .context("starting the demo search instance")?;
        let mut arguments = serde_json::Map::new();
        arguments.insert("id".into(), "doc-001".into());
        let workload = Workload {
            server: "search",
            instance_id: "bench-search-1",
            tool: "lookup",
            arguments,
            instance: "one demo search instance (latency_scale 0)",
            targets: Targets::Overhead,
        };
        Ok((BenchInstance::Demo(instance), workload))
    }

    /// The reference server started from `script` (its `dist/index.js`) with the `node`
    /// on `PATH`, over streamable HTTP on a free loopback port; its preload is written to
    /// `dir`.
    pub async fn reference(script: &Path, dir: &Path) -> anyhow::Result<(BenchInstance, Workload)> {
        let server = ReferenceServer::start(script, dir).await?;
        let mut arguments = serde_json::Map::new();
        arguments.insert("message".into(), "bench".into());
        let workload = Workload {
            server: "everything",
            instance_id: "everything-1",
            tool: "echo",
            arguments,
            instance: "the TypeScript reference server (server-everything, one Node process)",
            targets: Targets::Reference,
        };
        Ok((BenchInstance::Reference(server), workload))
    }

    /// Its MCP endpoint.
    pub fn mcp_url(&self) -> String {
        match self {
            BenchInstance::Demo(instance) => instance.mcp_url(),
            BenchInstance::Reference(server) => format!("http://{}/mcp", server.addr),
        }
    }

    /// Stops it, waiting at most `timeout`.
    pub async fn stop(self, timeout: Duration) {
        match self {
            BenchInstance::Demo(instance) => {
                if tokio::time::timeout(timeout, instance.shutdown())
                    .await
                    .is_err()
                {
                    tracing::warn!("the demo instance did not stop in time");
                }
            }
            BenchInstance::Reference(mut server) => {
                let _ = tokio::time::timeout(timeout, server.child.kill()).await;
            }
        }
    }
}

/// The reference server's Node process (killed when dropped).
pub struct ReferenceServer {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl ReferenceServer {
    async fn start(script: &Path, dir: &Path) -> anyhow::Result<ReferenceServer> {
        if !script.is_file() {
            bail!(
                "no reference server at {} (`make test-tools` installs it under \
                 end2end/node_modules/@modelcontextprotocol/server-everything/dist/index.js)",
                script.display()
            );
        }
        let preload = dir.join("loopback.cjs");
        std::fs::write(&preload, LOOPBACK_PRELOAD)
            .with_context(|| format!("writing {}", preload.display()))?;
        let addr = super::free_loopback_addr()?;
        let port = addr.port();
        let mut child = tokio::process::Command::new("node")
            .arg("--require")
            .arg(&preload)
            .arg(script)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting `node` (the reference server needs Node.js on PATH)")?;
        let started = Instant::now();
        while started.elapsed() < LISTEN_TIMEOUT {
            if let Some(status) = child.try_wait().context("watching the reference server")? {
                bail!("the reference server exited before listening ({status})");
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(ReferenceServer { child, addr });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(anyhow!(
            "the reference server did not listen on {addr} within {LISTEN_TIMEOUT:?}"
        ))
    }
}
