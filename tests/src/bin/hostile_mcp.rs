//! A hostile (or broken) MCP server over stdio, for the tests of what the gateway accepts
//! from its upstreams: too many tools, a giant description, results of any size, error
//! texts that quote secrets, a flood of `tools/list_changed`, chatter on stderr, and a tool
//! that reports its own environment.
//!
//! `hostile-mcp [--tools N] [--description-bytes N] [--meta-bytes N]
//!              [--flood-list-changed] [--slow-listing-ms N]`

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How this instance misbehaves.
#[derive(Clone, Debug, Default)]
struct Behaviour {
    /// Filler tools listed besides the real ones.
    extra_tools: usize,
    /// Bytes of the description of the `chatty` tool (0: no such tool).
    description_bytes: usize,
    /// Announce `tools/list_changed` without pause after the handshake (for 20 s).
    flood_list_changed: bool,
    /// How long each `tools/list` takes.
    slow_listing: Duration,
    /// Bytes of `_meta` on the `metaful` tool (0: no such tool).
    meta_bytes: usize,
}

#[derive(Clone)]
struct Hostile {
    behaviour: Behaviour,
    listings: Arc<AtomicU64>,
}

fn schema(properties: Value) -> Arc<Map<String, Value>> {
    let mut schema = Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), properties);
    Arc::new(schema)
}

fn text(value: impl Into<String>) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::success(vec![ContentBlock::text(
        value.into(),
    )]))
}

fn number(arguments: &Option<Map<String, Value>>, key: &str, default: u64) -> u64 {
    arguments
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(default)
}

impl Hostile {
    fn tools(&self) -> Vec<Tool> {
        let mut tools = vec![
            Tool::new("echo", "Answers ok", schema(json!({}))),
            Tool::new(
                "big",
                "A text result of `bytes` bytes",
                schema(json!({"bytes": {"type": "integer"}})),
            ),
            Tool::new(
                "env",
                "The value of environment variable `name` in this process",
                schema(json!({"name": {"type": "string"}})),
            ),
            Tool::new(
                "shout",
                "Writes `lines` lines of `bytes` bytes to stderr",
                schema(json!({"lines": {"type": "integer"}, "bytes": {"type": "integer"}})),
            ),
            Tool::new(
                "fail",
                "Refuses with a JSON-RPC error of about `bytes` bytes that quotes a secret URL",
                schema(json!({"bytes": {"type": "integer"}})),
            ),
            Tool::new(
                "listings",
                "How many tools/list requests this process answered",
                schema(json!({})),
            ),
        ];
        if self.behaviour.description_bytes > 0 {
            tools.push(Tool::new(
                "chatty",
                "d".repeat(self.behaviour.description_bytes),
                schema(json!({})),
            ));
        }
        if self.behaviour.meta_bytes > 0 {
            let mut tool = Tool::new("metaful", "Carries a large _meta", schema(json!({})));
            let mut meta = Map::new();
            meta.insert("blob".into(), "m".repeat(self.behaviour.meta_bytes).into());
            tool.meta = Some(rmcp::model::MetaObject(meta));
            tools.push(tool);
        }
        for i in 0..self.behaviour.extra_tools {
            tools.push(Tool::new(
                format!("filler-{i}"),
                "filler",
                schema(json!({})),
            ));
        }
        tools
    }
}

impl ServerHandler for Hostile {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("hostile-mcp", "0.0.1"))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if !self.behaviour.flood_list_changed {
            return;
        }
        let peer = context.peer.clone();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + Duration::from_secs(20);
            while tokio::time::Instant::now() < until {
                if peer.notify_tool_list_changed().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.listings.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.behaviour.slow_listing).await;
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.clone();
        match request.name.as_ref() {
            "echo" => Ok(text("ok")),
            "big" => Ok(text("b".repeat(number(&arguments, "bytes", 0) as usize))),
            "env" => {
                let name = arguments
                    .as_ref()
                    .and_then(|a| a.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Ok(text(
                    std::env::var(name).unwrap_or_else(|_| "<unset>".to_string()),
                ))
            }
            "shout" => {
                let (lines, bytes) = (
                    number(&arguments, "lines", 1),
                    number(&arguments, "bytes", 10),
                );
                for n in 0..lines {
                    eprintln!("hostile line {n} {}", "s".repeat(bytes as usize));
                }
                Ok(text("shouted"))
            }
            "fail" => {
                let filler = "e".repeat(number(&arguments, "bytes", 100) as usize);
                Err(ErrorData::new(
                    ErrorCode(-32000),
                    format!(
                        "backend at http://svc:hunter2@10.9.8.7:5432/db?token=abc123 said no {filler}"
                    ),
                    None,
                ))
            }
            "listings" => Ok(text(self.listings.load(Ordering::Relaxed).to_string())),
            other => Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        }
    }
}

fn parse_args() -> Behaviour {
    let mut behaviour = Behaviour::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--tools" => behaviour.extra_tools = value() as usize,
            "--description-bytes" => behaviour.description_bytes = value() as usize,
            "--slow-listing-ms" => behaviour.slow_listing = Duration::from_millis(value()),
            "--meta-bytes" => behaviour.meta_bytes = value() as usize,
            "--flood-list-changed" => behaviour.flood_list_changed = true,
            other => panic!("unknown argument {other}"),
        }
    }
    behaviour
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = Hostile {
        behaviour: parse_args(),
        listings: Arc::new(AtomicU64::new(0)),
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .expect("serve on stdio");
    let _ = running.waiting().await;
}
