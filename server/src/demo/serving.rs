//! Serving a demo server: a [`DemoInstance`] over streamable HTTP (MCP at `/mcp`, plus
//! `/healthz`, `/knobs` and `/metrics`), or one server over stdio.

use super::database::DatabaseBackend;
use super::files::FilesBackend;
use super::kind::DemoKind;
use super::knobs::{Knobs, KnobsHandle};
use super::notifications::NotificationsBackend;
use super::search::SearchBackend;
use super::server::{Backend, DemoServer, InstanceCore};
use axum::serve::ListenerExt;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::{
    RoleServer, ServiceExt,
    transport::{
        IntoTransport,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        },
    },
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How often an idle SSE response gets a keep-alive: the write is also how the server
/// notices a caller that went away, so this bounds how long an abandoned hang lingers.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// How long [`DemoInstance::shutdown`] waits for open connections before aborting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
        .with_json_response(true)
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
        // TCP_NODELAY: clients that keep connections alive (the gateway with `keep_alive`)
        // would otherwise wait ~40 ms for delayed ACKs.
        axum::serve(
            listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            app,
        )
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

/// Helpers for the demo servers' tests: starting an instance, talking to it as an MCP
/// client and over its plain HTTP routes.
#[cfg(test)]
pub(super) mod test_support {
    use super::*;
    use rmcp::{
        ClientHandler, RoleClient,
        model::{CallToolRequestParams, CallToolResult},
        service::RunningService,
        transport::StreamableHttpClientTransport,
    };
    use serde_json::Value;
    use std::time::Instant;

    /// The most any one test may take; every test body runs inside it.
    const TEST_TIMEOUT: Duration = Duration::from_secs(20);

    pub(in crate::demo) async fn bounded<T>(test: impl Future<Output = T>) -> T {
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
    pub(super) fn quiet() -> Knobs {
        Knobs {
            latency_scale: 0.0,
            ..Knobs::default()
        }
    }

    pub(in crate::demo) async fn start(kind: DemoKind) -> DemoInstance {
        serve_demo_instance(kind, &format!("{kind}-test"), localhost(), quiet())
            .await
            .expect("the demo instance starts")
    }

    pub(in crate::demo) async fn connect<H: ClientHandler>(
        instance: &DemoInstance,
        handler: H,
    ) -> RunningService<RoleClient, H> {
        install_crypto();
        handler
            .serve(StreamableHttpClientTransport::from_uri(instance.mcp_url()))
            .await
            .expect("the client connects")
    }

    pub(in crate::demo) fn call_params(tool: &str, arguments: Value) -> CallToolRequestParams {
        let Value::Object(arguments) = arguments else {
            panic!("tool arguments must be a JSON object");
        };
        CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
    }

    pub(in crate::demo) async fn call<H: ClientHandler>(
        client: &RunningService<RoleClient, H>,
        tool: &str,
        arguments: Value,
    ) -> CallToolResult {
        client
            .call_tool(call_params(tool, arguments))
            .await
            .unwrap_or_else(|error| panic!("calling {tool} failed: {error}"))
    }

    pub(in crate::demo) fn text_of(result: &CallToolResult) -> String {
        result
            .content
            .iter()
            .filter_map(|content| content.as_text())
            .map(|text| text.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(in crate::demo) fn structured<T: serde::de::DeserializeOwned>(
        result: &CallToolResult,
    ) -> T {
        assert_ne!(result.is_error, Some(true), "{}", text_of(result));
        let value = result
            .structured_content
            .clone()
            .expect("the result has structured content");
        serde_json::from_value(value).expect("the structured content has the declared shape")
    }

    pub(in crate::demo) fn http() -> reqwest::Client {
        install_crypto();
        reqwest::Client::new()
    }

    pub(in crate::demo) async fn put_knobs(
        instance: &DemoInstance,
        body: &str,
    ) -> (reqwest::StatusCode, Value) {
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

    pub(in crate::demo) async fn metrics_text(instance: &DemoInstance) -> String {
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
    pub(in crate::demo) fn sample(metrics: &str, series: &str) -> Option<f64> {
        metrics.lines().find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|value| value.parse().ok())
        })
    }

    /// Polls `/metrics` until `series` has `expected`, for up to five seconds.
    pub(in crate::demo) async fn wait_for_sample(
        instance: &DemoInstance,
        series: &str,
        expected: f64,
    ) {
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
}

#[cfg(test)]
mod tests {
    use super::test_support::{
        bounded, call, call_params, connect, http, put_knobs, quiet, start, structured,
        wait_for_sample,
    };
    use super::*;
    use crate::demo::files::FileOutput;
    use serde_json::{Value, json};
    use std::time::Instant;

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
    async fn hang_rate_knob_leaves_calls_unanswered_until_shutdown() {
        bounded(async {
            let instance = start(DemoKind::Notifications).await;
            let client = connect(&instance, ()).await;
            let (status, _) = put_knobs(&instance, r#"{"hang_rate": 1}"#).await;
            assert_eq!(status, reqwest::StatusCode::OK);
            // Keep the call pending: a client that gives up is seen at once by a JSON answer.
            let peer = client.peer().clone();
            let pending =
                tokio::spawn(
                    async move { peer.call_tool(call_params("list_sent", json!({}))).await },
                );
            wait_for_sample(&instance, "demo_in_flight", 1.0).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!pending.is_finished(), "a hanging call does not answer");

            let stopping = Instant::now();
            instance.shutdown().await;
            assert!(
                stopping.elapsed() < SHUTDOWN_GRACE,
                "shutdown ends hanging calls instead of waiting for them"
            );
            pending.abort();
            let _ = client.cancel().await;
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
