//! The gateway in front of the official reference MCP server (npm
//! `@modelcontextprotocol/server-everything`), over streamable HTTP and over stdio, called
//! by a real rmcp client: tools pass through intact, calls and progress pass through, and
//! bad input gets clear errors while the gateway keeps serving.

use fleetdeck_tests::{
    Fleetdeck, ReferenceServer, ServeOptions, any_loopback_port, reference_server_script, tool_call,
};
use rmcp::model::{ProgressNotificationParam, Tool};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const KEY: &str = "reference-test-key-0123456789-abcdef";

#[derive(Clone, Default)]
struct Client {
    progress: Arc<AtomicUsize>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }
}

async fn connect(
    url: &str,
    key: Option<&str>,
) -> Result<RunningService<RoleClient, Client>, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    config.auth_header = key.map(str::to_string);
    Client::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|e| e.to_string())
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    serde_json::to_value(&result.content).unwrap().to_string()
}

#[tokio::test]
async fn the_gateway_serves_the_reference_server_over_http_and_stdio() {
    let reference = ReferenceServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        format!(
            r#"
[[server]]
name = "everything"
strategy = "round-robin"
timeout_ms = 20000

  [[server.instance]]
  id = "everything-http"
  url = "{url}"

  [[server.instance]]
  id = "everything-stdio"
  command = ["node", "{script}", "stdio"]
  env = {{ FLEETDECK_INSTANCE = "stdio-child" }}

[[assistant]]
name = "tester"
key = "{KEY}"
tier = "admin"
"#,
            url = reference.url,
            script = reference_server_script().display(),
        ),
    )
    .unwrap();
    let server = Fleetdeck::start(ServeOptions {
        data_dir: dir.path(),
        addr: any_loopback_port(),
        admin_password: Some("reference test password"),
        extra_args: vec!["--fleet".into(), fleet.display().to_string()],
    })
    .await;
    let gateway_url = server.url("/mcp");

    // Tools arrive renamed, with description, schema and annotations intact.
    let direct = connect(&reference.url, None).await.expect("direct client");
    let upstream_tools: Vec<Tool> = direct.list_all_tools().await.unwrap();
    let client = connect(&gateway_url, Some(KEY))
        .await
        .expect("gateway client");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), upstream_tools.len(), "the same tools");
    for upstream in &upstream_tools {
        let exposed = tools
            .iter()
            .find(|t| t.name == format!("everything__{}", upstream.name))
            .unwrap_or_else(|| panic!("everything__{} is listed", upstream.name));
        assert_eq!(exposed.description, upstream.description);
        assert_eq!(exposed.input_schema, upstream.input_schema);
        assert_eq!(exposed.annotations, upstream.annotations);
    }

    // Calls pass through; round-robin reaches both the HTTP and the stdio instance.
    let echo = client
        .call_tool(tool_call(
            "everything__echo",
            json!({"message": "hello fleet"}),
        ))
        .await
        .unwrap();
    assert!(
        text_of(&echo).contains("Echo: hello fleet"),
        "{}",
        text_of(&echo)
    );
    let mut saw_stdio = 0;
    for _ in 0..4 {
        let env = client
            .call_tool(tool_call("everything__get-env", json!({})))
            .await
            .unwrap();
        if text_of(&env).contains("stdio-child") {
            saw_stdio += 1;
        }
    }
    assert_eq!(saw_stdio, 2, "every other call went to the stdio child");
    let sum = client
        .call_tool(tool_call("everything__get-sum", json!({"a": 2, "b": 40})))
        .await
        .unwrap();
    assert!(text_of(&sum).contains("42"), "{}", text_of(&sum));

    // Progress of a long-running tool reaches the caller through the gateway.
    let before = client.service().progress.load(Ordering::SeqCst);
    let long = client
        .call_tool(tool_call(
            "everything__trigger-long-running-operation",
            json!({"duration": 1, "steps": 4}),
        ))
        .await
        .unwrap();
    assert!(text_of(&long).contains("completed"), "{}", text_of(&long));
    let progress = client.service().progress.load(Ordering::SeqCst) - before;
    assert!(
        progress >= 3,
        "progress notifications passed through: {progress}"
    );

    // Bad input: clear errors, and the gateway keeps serving.
    let err = client
        .call_tool(tool_call("everything__no-such-tool", json!({})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown tool"), "{err}");
    let err = client
        .call_tool(tool_call("nowhere__echo", json!({})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown tool"), "{err}");
    // Arguments that break the schema are a tool execution error (SEP-1303: `isError`
    // with the reason, so the model can correct itself), still without an upstream call.
    let wrong = client
        .call_tool(tool_call(
            "everything__get-sum",
            json!({"a": "two", "b": 1}),
        ))
        .await
        .unwrap();
    assert_eq!(wrong.is_error, Some(true));
    let text_of = |result: &rmcp::model::CallToolResult| {
        result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<String>()
    };
    let text = text_of(&wrong);
    assert!(
        text.contains("argument \"a\" must be of type number"),
        "{text}"
    );
    let missing = client
        .call_tool(tool_call("everything__echo", json!({})))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    let text = text_of(&missing);
    assert!(text.contains("missing required argument"), "{text}");

    let http = reqwest::Client::new();
    let post = |body: String, key: Option<&str>| {
        let mut request = http
            .post(&gateway_url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let response = post(ping.clone(), None).await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("missing Authorization")
    );
    assert_eq!(
        post(ping.clone(), Some("wrong-key-0123456789"))
            .await
            .unwrap()
            .status(),
        401
    );
    let unknown =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/frobnicate", "params": {}}).to_string();
    let response = post(unknown, Some(KEY)).await.unwrap();
    let body = response.text().await.unwrap();
    assert!(
        body.contains("-32601") || body.contains("Method not found") || body.contains("-32602"),
        "unknown method: {body}"
    );
    let status = post("{not json".into(), Some(KEY)).await.unwrap().status();
    assert!(status.is_client_error(), "malformed JSON-RPC: {status}");
    assert_eq!(
        oversized_post_status(server.addr, 5 * 1024 * 1024).await,
        413
    );
    let again = client
        .call_tool(tool_call(
            "everything__echo",
            json!({"message": "still here"}),
        ))
        .await
        .unwrap();
    assert!(text_of(&again).contains("still here"));

    client.cancel().await.unwrap();
    direct.cancel().await.unwrap();
    server.stop().await;
}

/// POSTs a body of `size` bytes over a raw connection and returns the status. The server
/// may answer 413 and close before the body is written: write errors are expected, so a
/// plain HTTP client (which reports the broken pipe instead of the answer) will not do.
async fn oversized_post_status(addr: std::net::SocketAddr, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let (mut reader, mut writer) = stream.into_split();
    // Read while writing: an early answer is taken in before the connection is reset.
    let answer = tokio::spawn(async move {
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        response
    });
    writer.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut written = 0;
    while written < size {
        if writer.write_all(&chunk).await.is_err() {
            break;
        }
        written += chunk.len();
    }
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), answer)
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}
