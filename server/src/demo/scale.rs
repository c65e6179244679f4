//! A synthetic fleet at scale: many servers of many instances with large tool catalogs, for
//! the dashboard benchmark (`fleetdeck bench --dashboard`), the scale tests and anyone who
//! wants to see the dashboard at a thousand instances (`fleetdeck scale-fleet`).
//!
//! Each server is one loopback listener that answers MCP statelessly (its tools echo) and
//! serves a Prometheus page; all the instances of a server point at it, except every
//! `unreachable_every`-th instance, which points at a closed port and so turns unhealthy.
//! One process thus stands in for a thousand instances without a thousand data sets.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The shape of a synthetic fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleSpec {
    /// Servers (`srv00`, `srv01`, …).
    pub servers: usize,
    /// Instances of each server.
    pub instances_per_server: usize,
    /// Tools in each server's catalog.
    pub tools_per_server: usize,
    /// Assistants declared in the fleet file, with tiers in turn (viewer, developer, admin).
    pub assistants: usize,
    /// Every n-th instance (counted over the whole fleet, from 0) points at a closed port;
    /// 0: none does.
    pub unreachable_every: usize,
}

impl ScaleSpec {
    /// The fleet the dashboard's targets are set for: 50 servers × 20 instances (1,000),
    /// 200 tools each (10,000), 100 assistants; every 17th instance unreachable.
    pub const THOUSAND: ScaleSpec = ScaleSpec {
        servers: 50,
        instances_per_server: 20,
        tools_per_server: 200,
        assistants: 100,
        unreachable_every: 17,
    };

    /// Instances that point at a closed port.
    pub fn unreachable_instances(&self) -> usize {
        (0..self.servers)
            .flat_map(|n| (0..self.instances_per_server).map(move |i| (n, i)))
            .filter(|&(n, i)| self.is_unreachable(n, i))
            .count()
    }

    /// The name of server `n`.
    pub fn server_name(&self, n: usize) -> String {
        let width = digits(self.servers);
        format!("srv{n:0width$}")
    }

    /// The id of instance `i` of server `n`.
    pub fn instance_id(&self, n: usize, i: usize) -> String {
        let width = digits(self.instances_per_server);
        format!("{}-i{i:0width$}", self.server_name(n))
    }

    /// Whether instance `i` of server `n` points at a closed port.
    pub fn is_unreachable(&self, n: usize, i: usize) -> bool {
        self.unreachable_every > 0
            && (n * self.instances_per_server + i).is_multiple_of(self.unreachable_every)
    }

    /// The name of assistant `a`.
    pub fn assistant_name(&self, a: usize) -> String {
        let width = digits(self.assistants);
        format!("assistant-{a:0width$}")
    }

    /// The API key declared for assistant `a` (48 characters; a synthetic fleet's keys are
    /// not secret, they live in its fleet file).
    pub fn assistant_key(&self, a: usize) -> String {
        format!("scale-fleet-key-{a:06}-{}", "k".repeat(26))
    }
}

/// Decimal digits of the largest index below `count` (at least 2), so names sort.
fn digits(count: usize) -> usize {
    count.saturating_sub(1).max(1).to_string().len().max(2)
}

/// A running synthetic fleet; its listeners stop on [`ScaleFleet::shutdown`] or drop.
pub struct ScaleFleet {
    /// What it was started with.
    pub spec: ScaleSpec,
    /// Each server's listener, in server order.
    addrs: Vec<SocketAddr>,
    /// A loopback port nothing listens on (the unreachable instances').
    closed_port: u16,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl ScaleFleet {
    /// Starts one listener per server on loopback.
    pub async fn start(spec: ScaleSpec) -> std::io::Result<ScaleFleet> {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::with_capacity(spec.servers);
        for n in 0..spec.servers {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            addrs.push(listener.local_addr()?);
            let app = server_app(
                Arc::new(Catalog::new(&spec.server_name(n), spec.tools_per_server)),
                &stop,
            );
            let stop = stop.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(error) = served {
                    tracing::warn!(%error, "a synthetic server stopped");
                }
            });
        }
        // Bound, then released: nothing listens there while the fleet runs (a port reused
        // by something else later would only make those instances answer).
        let closed_port = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await?
            .local_addr()?
            .port();
        Ok(ScaleFleet {
            spec,
            addrs,
            closed_port,
            stop,
            tasks,
        })
    }

    /// The fleet file for these servers (TOML), with its assistants' keys.
    pub fn fleet_file(&self) -> String {
        let spec = &self.spec;
        let mut toml = String::from("# A synthetic fleet written by fleetdeck (scale-fleet).\n");
        for (n, addr) in self.addrs.iter().enumerate() {
            let name = spec.server_name(n);
            let _ = write!(
                toml,
                "\n[[server]]\nname = \"{name}\"\ndomain = \"synthetic\"\nstrategy = \"{}\"\ncache = {{ cacheable = [\"op_000\", \"op_001\"] }}\n",
                ["least-load", "round-robin", "random", "consistent-hash"][n % 4]
            );
            for i in 0..spec.instances_per_server {
                let base = if spec.is_unreachable(n, i) {
                    format!("http://127.0.0.1:{}", self.closed_port)
                } else {
                    format!("http://{addr}")
                };
                let _ = write!(
                    toml,
                    "\n  [[server.instance]]\n  id = \"{}\"\n  url = \"{base}/mcp\"\n  metrics_url = \"{base}/metrics\"\n",
                    spec.instance_id(n, i)
                );
            }
        }
        for a in 0..spec.assistants {
            let tier = ["viewer", "developer", "admin"][a % 3];
            let _ = write!(
                toml,
                "\n[[assistant]]\nname = \"{}\"\nkey = \"{}\"\ntier = \"{tier}\"\n",
                spec.assistant_name(a),
                spec.assistant_key(a)
            );
        }
        toml
    }

    /// Stops every listener and waits for them.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for ScaleFleet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One synthetic server's tools and its call counter.
struct Catalog {
    server: String,
    tools: Arc<Vec<Tool>>,
    calls: AtomicU64,
}

impl Catalog {
    fn new(server: &str, count: usize) -> Catalog {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "text": { "type": "string", "description": "Echoed back." },
                "limit": { "type": "integer", "minimum": 1, "maximum": 100 }
            },
            "required": ["text"]
        });
        let schema = match schema {
            serde_json::Value::Object(map) => Arc::new(map),
            _ => Arc::new(serde_json::Map::new()),
        };
        let tools = (0..count)
            .map(|t| {
                // Names a tier pattern can tell apart: reads, lookups and writes.
                let verb = ["op", "read", "lookup", "write"][t % 4];
                let name = if t < 2 { format!("op_{t:03}") } else { format!("{verb}_{t:03}") };
                let mut tool = Tool::new(
                    name,
                    format!(
                        "Synthetic tool {t} of {server}: echoes its text argument. Stands in for a real tool of a large catalog."
                    ),
                    schema.clone(),
                );
                let mut hints = ToolAnnotations::new();
                hints.read_only_hint = Some(verb != "write");
                tool.annotations = Some(hints);
                tool
            })
            .collect();
        Catalog {
            server: server.to_string(),
            tools: Arc::new(tools),
            calls: AtomicU64::new(0),
        }
    }

    /// A Prometheus page in client_golang's style: what the scraper reads.
    fn metrics(&self) -> String {
        format!(
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n\
             # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 5.24288e+07\n\
             # HELP mcp_in_flight Tool calls being served.\n# TYPE mcp_in_flight gauge\nmcp_in_flight 0\n\
             # HELP mcp_tool_calls_total Tool calls served.\n# TYPE mcp_tool_calls_total counter\n\
             mcp_tool_calls_total{{server=\"{}\"}} {}\n",
            self.server,
            self.calls.load(Ordering::Relaxed)
        )
    }
}

/// The MCP side of a synthetic server.
#[derive(Clone)]
struct SyntheticServer(Arc<Catalog>);

impl ServerHandler for SyntheticServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new(format!("synthetic-{}", self.0.server), "1.0.0"),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.0.tools.as_ref().clone(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.0.tools.iter().any(|tool| tool.name == request.name) {
            return Err(ErrorData::invalid_params(
                format!("no tool {}", crate::sanitize::bounded(&request.name, 128)),
                None,
            ));
        }
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        let text = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("text"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        Ok(CallToolResponse::Complete(CallToolResult::success(vec![
            ContentBlock::text(crate::sanitize::bounded_owned(text, 4096)),
        ])))
    }
}

/// One synthetic server's routes: MCP at `/mcp` (stateless, JSON answers), `/metrics`.
fn server_app(catalog: Arc<Catalog>, stop: &CancellationToken) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(stop.child_token());
    let handler = SyntheticServer(catalog.clone());
    let mcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new().nest_service("/mcp", mcp).route(
        "/metrics",
        get(move || {
            let catalog = catalog.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    catalog.metrics(),
                )
                    .into_response()
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_every_nth_instance_is_unreachable() {
        let spec = ScaleSpec::THOUSAND;
        assert_eq!(spec.server_name(7), "srv07");
        assert_eq!(spec.instance_id(7, 3), "srv07-i03");
        assert_eq!(spec.assistant_name(5), "assistant-05");
        assert!(spec.assistant_key(99).len() >= 32);
        // 0, 17, … 986: 59 of 1,000.
        assert_eq!(spec.unreachable_instances(), 59);
    }

    #[tokio::test]
    async fn the_fleet_file_parses_and_names_every_instance() {
        let spec = ScaleSpec {
            servers: 3,
            instances_per_server: 4,
            tools_per_server: 5,
            assistants: 4,
            unreachable_every: 5,
        };
        let fleet = ScaleFleet::start(spec).await.unwrap();
        let text = fleet.fleet_file();
        let parsed =
            crate::config::fleet::FleetFile::parse(&text, std::path::Path::new("scale.toml"))
                .unwrap_or_else(|error| panic!("{error}\n{text}"));
        assert_eq!(parsed.servers.len(), 3);
        assert_eq!(parsed.assistants.len(), 4);
        let closed = format!("127.0.0.1:{}/", fleet.closed_port);
        assert_eq!(
            text.matches(&closed).count(),
            2 * 3,
            "instances 0, 5, 10: url and metrics_url"
        );
        fleet.shutdown().await;
    }
}
