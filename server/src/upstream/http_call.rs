//! `tools/call` to an instance over streamable HTTP without an rmcp client session: one
//! pooled keep-alive HTTP client per instance, any number of calls in flight on it, the
//! answer read as one JSON body or as an SSE stream (progress first), bounded in bytes.
//!
//! Why not rmcp's client on this path: its session sends every call of an instance through
//! one worker task and its channels (a serialisation point under load, found with `perf`),
//! and parses every message into the whole model. Here only the envelope and the result
//! are parsed. Active probes ping the same way: at a thousand instances, an rmcp session
//! each (its worker task, channels and buffers) held about 150 KB per instance. Listings
//! and `tools/list_changed` keep the rmcp session (`super`).
//!
//! Both protocol eras: an instance that answers `server/discover` naming 2026-07-28 is
//! called statelessly (per-request `_meta`, `Mcp-Method` and `Mcp-Name` headers); any other
//! after an `initialize` handshake, with the session id it issued if any. A 404 for that
//! session means it expired: the call fails as "not connected" (the tool never ran, so it
//! is retried) and the next call handshakes again.

use super::{AddressPolicy, ProgressSink, Reconnect, UpstreamError};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CreateTaskResult, ErrorData,
    InputRequiredResult, NumberOrString, ProgressNotificationParam, ProgressToken,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::mcp_protocol::{
    LEGACY, LEGACY_VERSIONS, MCP_METHOD, MCP_NAME, META_CLIENT_CAPABILITIES, META_CLIENT_INFO,
    META_PROTOCOL_VERSION, MODERN, PROTOCOL_VERSION, SESSION_ID,
};
/// Most bytes of a handshake answer read.
const MAX_HANDSHAKE_BYTES: usize = 256 * 1024;
/// An envelope's bytes beyond the result's own limit.
const ENVELOPE_SLACK_BYTES: usize = 64 * 1024;
/// How long a `notifications/cancelled` may take (sent after the call gave up).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);

/// How the HTTP client is built (the instance's fleet-file settings).
#[derive(Clone, Copy, Debug)]
pub struct ClientSettings {
    /// Reuse connections (servers with TCP_NODELAY); else one connection per request.
    pub keep_alive: bool,
    /// Which addresses may be reached.
    pub policy: AddressPolicy,
    /// Idle connections kept.
    pub max_idle: usize,
}

/// What the handshake learned: how to call this instance.
struct Connection {
    client: reqwest::Client,
    /// Probes' client: keeps its connection between probes whatever `keep_alive` says (a
    /// probe every few seconds should not cost a TCP handshake each; a one-write answer
    /// meets no delayed-ACK wait).
    probe_client: reqwest::Client,
    /// Headers of every call: content type, accept, protocol version, session.
    headers: HeaderMap,
    /// Stateless (2026-07-28): per-request `_meta` and the method/name headers.
    modern: bool,
    /// The settings it was built with (a change builds a new client).
    settings: (bool, AddressPolicy),
}

/// `tools/call` over HTTP to one instance.
pub struct HttpCaller {
    url: String,
    connection: std::sync::RwLock<Option<Arc<Connection>>>,
    /// One handshake at a time; calls wait for it rather than starting their own.
    handshake: tokio::sync::Mutex<()>,
    reconnect: std::sync::Mutex<Reconnect>,
    next_id: AtomicI64,
}

/// One JSON-RPC message from the instance, parsed only as far as routing needs.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(default)]
    id: Option<NumberOrString>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorData>,
    #[serde(default, borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// What one message means for the request waiting on it.
enum Settled<T> {
    /// The answer.
    Done(Result<T, UpstreamError>),
    /// A progress notification for the call.
    Progress(ProgressNotificationParam),
    /// Anything else (other notifications, server requests a stateless call cannot answer).
    Ignored,
}

impl HttpCaller {
    /// A caller of `url`, connecting on first use.
    pub fn new(url: &str) -> Self {
        HttpCaller {
            url: url.to_string(),
            connection: std::sync::RwLock::new(None),
            handshake: tokio::sync::Mutex::new(()),
            reconnect: std::sync::Mutex::new(Reconnect::default()),
            next_id: AtomicI64::new(1),
        }
    }

    /// Drops the connection: the next call handshakes again.
    pub fn reset(&self) {
        *self
            .connection
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn current(&self, settings: &ClientSettings) -> Option<Arc<Connection>> {
        self.connection
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .filter(|c| c.settings == (settings.keep_alive, settings.policy))
    }

    /// Forgets `connection` if it is still the current one (a newer one stays).
    fn forget(&self, connection: &Arc<Connection>) {
        let mut slot = self
            .connection
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, connection)) {
            *slot = None;
        }
    }

    /// The live connection, handshaking (once, for all waiting calls) when there is none.
    async fn connection(
        &self,
        settings: &ClientSettings,
        timeout: Duration,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Arc<Connection>, UpstreamError> {
        if let Some(connection) = self.current(settings) {
            return Ok(connection);
        }
        let _one = self.handshake.lock().await;
        if let Some(connection) = self.current(settings) {
            return Ok(connection);
        }
        self.reconnect
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(std::time::Instant::now())?;
        let connected =
            match tokio::time::timeout(timeout, self.handshake_now(settings, scrub)).await {
                Ok(connected) => connected,
                Err(_) => Err(UpstreamError::Connect(format!(
                    "no handshake within {timeout:?}"
                ))),
            };
        let mut reconnect = self
            .reconnect
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match connected {
            Ok(connection) => {
                reconnect.succeeded();
                let connection = Arc::new(connection);
                *self
                    .connection
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(connection.clone());
                Ok(connection)
            }
            Err(error) => {
                reconnect.failed(std::time::Instant::now());
                Err(error)
            }
        }
    }

    /// Learns the instance's era: `server/discover` first, else `initialize`.
    async fn handshake_now(
        &self,
        settings: &ClientSettings,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Connection, UpstreamError> {
        let connect = |e: &dyn std::fmt::Display| UpstreamError::Connect(scrub(&e.to_string()));
        if let Some(why) = super::refused_address(&self.url, settings.policy) {
            return Err(UpstreamError::Connect(why));
        }
        let client = super::clients::shared(super::clients::ClientKind {
            idle_per_host: if settings.keep_alive {
                settings.max_idle.max(1)
            } else {
                0
            },
            policy: settings.policy,
        })
        .map_err(|e| connect(&e))?;
        let probe_client = super::clients::shared(super::clients::ClientKind {
            idle_per_host: 1,
            policy: settings.policy,
        })
        .map_err(|e| connect(&e))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        let settings_key = (settings.keep_alive, settings.policy);

        // The stateless era first: one request, and no session to keep.
        let mut discover_headers = headers.clone();
        discover_headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(MODERN));
        discover_headers.insert(MCP_METHOD, HeaderValue::from_static("server/discover"));
        let discover = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "server/discover",
            "params": { "_meta": modern_meta() },
        });
        let answer = client
            .post(&self.url)
            .headers(discover_headers)
            .body(discover.to_string())
            .send()
            .await
            .map_err(|e| connect(&e))?;
        if answer.status().is_success()
            && let Ok(body) = read_answer(answer, 0, MAX_HANDSHAKE_BYTES).await
            && let Some(result) = body
            && result
                .get("supportedVersions")
                .and_then(|v| v.as_array())
                .is_some_and(|versions| versions.iter().any(|v| v == MODERN))
        {
            headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(MODERN));
            return Ok(Connection {
                client,
                probe_client: probe_client.clone(),
                headers,
                modern: true,
                settings: settings_key,
            });
        }

        // An older instance: the handshake, maybe a session.
        let initialize = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": LEGACY,
                "capabilities": {},
                "clientInfo": { "name": "fleetdeck-gateway", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let answer = client
            .post(&self.url)
            .headers(headers.clone())
            .body(initialize.to_string())
            .send()
            .await
            .map_err(|e| connect(&e))?;
        let status = answer.status();
        let session = answer.headers().get(SESSION_ID).cloned();
        if !status.is_success() {
            return Err(UpstreamError::Connect(format!(
                "initialize answered HTTP {status}"
            )));
        }
        let result = read_answer(answer, 0, MAX_HANDSHAKE_BYTES)
            .await?
            .ok_or_else(|| UpstreamError::Connect("initialize got no result".into()))?;
        let version = result
            .get("protocolVersion")
            .and_then(|v| v.as_str())
            .and_then(|v| LEGACY_VERSIONS.iter().find(|known| **known == v))
            .ok_or_else(|| {
                UpstreamError::Connect(
                    "initialize answered with no protocol version the gateway speaks".into(),
                )
            })?;
        headers.insert(PROTOCOL_VERSION, HeaderValue::from_static(version));
        if let Some(session) = session {
            headers.insert(SESSION_ID, session);
        }
        let initialized = client
            .post(&self.url)
            .headers(headers.clone())
            .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .send()
            .await
            .map_err(|e| connect(&e))?;
        if !initialized.status().is_success() {
            return Err(UpstreamError::Connect(format!(
                "notifications/initialized answered HTTP {}",
                initialized.status()
            )));
        }
        Ok(Connection {
            client,
            probe_client,
            headers,
            modern: false,
            settings: settings_key,
        })
    }

    /// Calls a tool: `progress` gets the instance's progress notifications in order;
    /// `cancel` or the timeout ends the call and tells the instance
    /// (`notifications/cancelled`). An answer over `max_result_bytes` is an
    /// [`UpstreamError::OverLimit`].
    #[allow(clippy::too_many_arguments)]
    pub async fn call_tool(
        &self,
        settings: &ClientSettings,
        mut params: CallToolRequestParams,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        timeout: Duration,
        max_result_bytes: usize,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<CallToolResponse, UpstreamError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let connection = tokio::select! {
            connection = self.connection(settings, timeout, scrub) => connection?,
            () = cancel.cancelled() => return Err(UpstreamError::Cancelled),
            () = tokio::time::sleep_until(deadline) => return Err(UpstreamError::Timeout(timeout)),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut headers = connection.headers.clone();
        if connection.modern {
            headers.insert(MCP_METHOD, HeaderValue::from_static("tools/call"));
            let name = HeaderValue::from_str(&params.name).map_err(|_| {
                UpstreamError::Protocol("a tool name unfit for the Mcp-Name header".into())
            })?;
            headers.insert(MCP_NAME, name);
        }
        // The caller's protocol keys are the caller's: this request carries the gateway's.
        let meta = params.meta.get_or_insert_default();
        meta.retain(|key, _| {
            !key.starts_with("io.modelcontextprotocol/") && key != "progressToken"
        });
        if connection.modern {
            for (key, value) in modern_meta() {
                meta.insert(key, value);
            }
        }
        if progress.is_some() {
            meta.insert("progressToken".into(), id.into());
        }
        if meta.is_empty() {
            params.meta = None;
        }
        let body = encode_call(id, &params)
            .map_err(|e| UpstreamError::Protocol(format!("cannot encode the call: {e}")))?;
        let exchange = self.exchange(
            &connection,
            &connection.client,
            headers,
            body,
            id,
            progress,
            max_result_bytes.saturating_add(ENVELOPE_SLACK_BYTES),
            scrub,
            parse_result,
        );
        let answer = tokio::select! {
            answer = exchange => return answer,
            () = cancel.cancelled() => (UpstreamError::Cancelled, "cancelled by the caller"),
            () = tokio::time::sleep_until(deadline) => (UpstreamError::Timeout(timeout), "timed out at the gateway"),
        };
        self.send_cancel(&connection, id, answer.1);
        Err(answer.0)
    }

    /// Whether the instance answers: an MCP `ping` for an instance of the older revisions
    /// (after the handshake, if it has none yet), `server/discover` for one of 2026-07-28
    /// (which has no `ping`: nothing to keep alive without sessions). Answered in time with
    /// no error is `Ok`.
    pub async fn ping(
        &self,
        settings: &ClientSettings,
        timeout: Duration,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<(), UpstreamError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let ping = async {
            let connection = self.connection(settings, timeout, scrub).await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut headers = connection.headers.clone();
            let message = if connection.modern {
                headers.insert(MCP_METHOD, HeaderValue::from_static("server/discover"));
                serde_json::json!({
                    "jsonrpc": "2.0", "id": id, "method": "server/discover",
                    "params": { "_meta": modern_meta() },
                })
            } else {
                serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": "ping" })
            };
            let body = serde_json::to_vec(&message)
                .map_err(|e| UpstreamError::Protocol(format!("cannot encode a ping: {e}")))?;
            self.exchange(
                &connection,
                &connection.probe_client,
                headers,
                body,
                id,
                None,
                MAX_HANDSHAKE_BYTES,
                scrub,
                |_| Ok(()),
            )
            .await
        };
        tokio::time::timeout_at(deadline, ping)
            .await
            .unwrap_or(Err(UpstreamError::Timeout(timeout)))
    }

    /// Tells the instance that call `id` is abandoned (in the background: the caller has
    /// gone, or will retry elsewhere).
    fn send_cancel(&self, connection: &Arc<Connection>, id: i64, reason: &'static str) {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": { "requestId": id, "reason": reason },
        });
        let mut headers = connection.headers.clone();
        if connection.modern {
            headers.insert(
                MCP_METHOD,
                HeaderValue::from_static("notifications/cancelled"),
            );
        }
        let request = connection
            .client
            .post(&self.url)
            .headers(headers)
            .timeout(CANCEL_TIMEOUT)
            .body(body.to_string());
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }

    /// One request and its answer.
    #[allow(clippy::too_many_arguments)]
    async fn exchange<T>(
        &self,
        connection: &Arc<Connection>,
        via: &reqwest::Client,
        headers: HeaderMap,
        body: Vec<u8>,
        id: i64,
        progress: Option<ProgressSink>,
        max_bytes: usize,
        scrub: &(dyn Fn(&str) -> String + Sync),
        parse: ParseResult<T>,
    ) -> Result<T, UpstreamError> {
        let sent = via.post(&self.url).headers(headers).body(body).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                self.forget(connection);
                let text = scrub(&error.to_string());
                return Err(if error.is_connect() {
                    UpstreamError::Connect(text)
                } else {
                    UpstreamError::Lost(text)
                });
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && connection.headers.contains_key(SESSION_ID) {
            // The instance forgot the session (restarted, expired): the tool never ran.
            self.forget(connection);
            return Err(UpstreamError::Connect(
                "the instance no longer knows the session".into(),
            ));
        }
        let streamed = is_event_stream(response.headers());
        let mut bytes = bounded_bytes(response, max_bytes);
        if streamed && status.is_success() {
            use futures::StreamExt;
            let mut failed = None;
            {
                let mut events = sse_stream::SseStream::from_bytes_stream(&mut bytes);
                while let Some(event) = events.next().await {
                    let event = match event {
                        Ok(event) => event,
                        Err(error) => {
                            failed = Some(error.to_string());
                            break;
                        }
                    };
                    let Some(data) = event.data.filter(|d| !d.is_empty()) else {
                        continue;
                    };
                    match settle(data.as_bytes(), id, scrub, parse) {
                        Settled::Done(answer) => return answer,
                        Settled::Progress(update) => {
                            if let Some(sink) = &progress {
                                sink(update).await;
                            }
                        }
                        Settled::Ignored => {}
                    }
                }
            }
            if let Some(over) = bytes.over_limit() {
                return Err(over);
            }
            self.forget(connection);
            return Err(UpstreamError::Lost(match failed {
                Some(error) => scrub(&error),
                None => "the response stream ended before the answer".into(),
            }));
        }
        let body = bytes
            .collect()
            .await
            .map_err(|e| self.stream_error(connection, &e, scrub))?;
        match settle(&body, id, scrub, parse) {
            Settled::Done(answer) => answer,
            _ if !status.is_success() => Err(UpstreamError::Lost(format!("HTTP {status}"))),
            _ => Err(UpstreamError::Protocol(
                "an answer that is not the call's JSON-RPC response".into(),
            )),
        }
    }

    fn stream_error(
        &self,
        connection: &Arc<Connection>,
        error: &BodyError,
        scrub: &(dyn Fn(&str) -> String + Sync),
    ) -> UpstreamError {
        match error {
            BodyError::OverLimit(bytes) => UpstreamError::OverLimit(format!(
                "the answer is over {bytes} bytes (the server's limits.max_result_bytes)"
            )),
            BodyError::Read(text) => {
                self.forget(connection);
                UpstreamError::Lost(scrub(text))
            }
        }
    }
}

/// A `tools/call` request.
#[derive(serde::Serialize)]
struct OutgoingCall<'a> {
    jsonrpc: &'static str,
    id: i64,
    method: &'static str,
    params: &'a CallToolRequestParams,
}

/// The request's bytes, serialised straight from the parameters (no JSON tree between).
fn encode_call(id: i64, params: &CallToolRequestParams) -> serde_json::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(256);
    serde_json::to_writer(
        &mut body,
        &OutgoingCall {
            jsonrpc: "2.0",
            id,
            method: "tools/call",
            params,
        },
    )?;
    Ok(body)
}

/// The request `_meta` of the stateless revision.
fn modern_meta() -> serde_json::Map<String, serde_json::Value> {
    let mut meta = serde_json::Map::new();
    meta.insert(META_PROTOCOL_VERSION.into(), MODERN.into());
    meta.insert(META_CLIENT_CAPABILITIES.into(), serde_json::json!({}));
    meta.insert(
        META_CLIENT_INFO.into(),
        serde_json::json!({ "name": "fleetdeck-gateway", "version": env!("CARGO_PKG_VERSION") }),
    );
    meta
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// What one message from the instance means for call `id`.
/// Reads a request's `result` into what the caller wants.
type ParseResult<T> = fn(&RawValue) -> Result<T, UpstreamError>;

fn settle<T>(
    data: &[u8],
    id: i64,
    scrub: &(dyn Fn(&str) -> String + Sync),
    parse: ParseResult<T>,
) -> Settled<T> {
    let Ok(message) = serde_json::from_slice::<Incoming>(data) else {
        return Settled::Ignored;
    };
    let ours = message.id == Some(NumberOrString::Number(id));
    if ours && let Some(result) = message.result {
        return Settled::Done(parse(result));
    }
    if ours && let Some(mut error) = message.error {
        error.message = scrub(&error.message).into();
        return Settled::Done(Err(UpstreamError::Rpc(error)));
    }
    if message.id.is_none()
        && message.method.as_deref() == Some("notifications/progress")
        && let Some(params) = message.params
        && let Ok(update) = serde_json::from_str::<ProgressNotificationParam>(params.get())
        && update.progress_token == ProgressToken(NumberOrString::Number(id))
    {
        return Settled::Progress(update);
    }
    Settled::Ignored
}

/// A `tools/call` result by its `resultType`: complete (or absent), input required, task.
fn parse_result(result: &RawValue) -> Result<CallToolResponse, UpstreamError> {
    // Nearly every answer is a complete result: try it first, the others only if it fails.
    if let Ok(complete) = serde_json::from_str::<CallToolResult>(result.get()) {
        return Ok(CallToolResponse::Complete(complete));
    }
    if let Ok(task) = serde_json::from_str::<CreateTaskResult>(result.get()) {
        return Ok(CallToolResponse::Task(task));
    }
    if let Ok(input) = serde_json::from_str::<InputRequiredResult>(result.get()) {
        return Ok(CallToolResponse::InputRequired(input));
    }
    Err(UpstreamError::Protocol(
        "an answer that is not a tool result".into(),
    ))
}

/// The `result` of a handshake answer (JSON or the first SSE message with one).
async fn read_answer(
    response: reqwest::Response,
    id: i64,
    max_bytes: usize,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, UpstreamError> {
    let streamed = is_event_stream(response.headers());
    let mut bytes = bounded_bytes(response, max_bytes);
    let parse = |data: &[u8]| -> Option<Option<serde_json::Map<String, serde_json::Value>>> {
        let message: serde_json::Value = serde_json::from_slice(data).ok()?;
        if message.get("id")? != &serde_json::Value::from(id) {
            return None;
        }
        Some(message.get("result").and_then(|r| r.as_object()).cloned())
    };
    if streamed {
        use futures::StreamExt;
        let mut events = sse_stream::SseStream::from_bytes_stream(&mut bytes);
        while let Some(Ok(event)) = events.next().await {
            if let Some(found) = event.data.as_deref().and_then(|d| parse(d.as_bytes())) {
                return Ok(found);
            }
        }
        return Ok(None);
    }
    let body = bytes
        .collect()
        .await
        .map_err(|e| UpstreamError::Connect(format!("reading the handshake: {e}")))?;
    Ok(parse(&body).flatten())
}

/// Why reading an answer stopped.
#[derive(Debug)]
enum BodyError {
    /// More than this many bytes.
    OverLimit(usize),
    /// The connection failed.
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::OverLimit(bytes) => write!(f, "more than {bytes} bytes"),
            BodyError::Read(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for BodyError {}

/// A response body read chunk by chunk, failing past `max` bytes.
struct BoundedBytes {
    inner: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    read: usize,
    max: usize,
    over: bool,
}

fn bounded_bytes(response: reqwest::Response, max: usize) -> BoundedBytes {
    use futures::StreamExt;
    BoundedBytes {
        inner: response.bytes_stream().boxed(),
        read: 0,
        max,
        over: false,
    }
}

impl BoundedBytes {
    /// The whole body.
    async fn collect(&mut self) -> Result<Vec<u8>, BodyError> {
        use futures::StreamExt;
        let mut body = Vec::new();
        while let Some(chunk) = self.next().await {
            body.extend_from_slice(&chunk?);
        }
        Ok(body)
    }

    /// The limit error, if the body was cut at the limit.
    fn over_limit(&self) -> Option<UpstreamError> {
        self.over.then(|| {
            UpstreamError::OverLimit(format!(
                "the answer is over {} bytes (the server's limits.max_result_bytes)",
                self.max
            ))
        })
    }
}

impl futures::Stream for BoundedBytes {
    type Item = Result<bytes::Bytes, BodyError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.over {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.read += chunk.len();
                if self.read > self.max {
                    self.over = true;
                    let max = self.max;
                    return Poll::Ready(Some(Err(BodyError::OverLimit(max))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                Poll::Ready(Some(Err(BodyError::Read(error.to_string()))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn a_complete_result_settles_the_call() {
        let data = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}],"isError":false}}"#;
        match settle(data, 7, &keep, parse_result) {
            Settled::Done(Ok(CallToolResponse::Complete(result))) => {
                assert_eq!(result.is_error, Some(false));
                assert_eq!(result.content.len(), 1);
            }
            _ => panic!("not settled as a complete result"),
        }
    }

    #[test]
    fn another_calls_answer_is_ignored() {
        let data = br#"{"jsonrpc":"2.0","id":8,"result":{"content":[]}}"#;
        assert!(matches!(
            settle(data, 7, &keep, parse_result),
            Settled::Ignored
        ));
        assert!(matches!(
            settle(b"not json", 7, &keep, parse_result),
            Settled::Ignored
        ));
    }

    #[test]
    fn an_error_settles_the_call_scrubbed() {
        let data = br#"{"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"bad"}}"#;
        assert!(matches!(
            settle(data, 7, &keep, parse_result),
            Settled::Ignored
        ));
        let data =
            br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad http://u:p@h/"}}"#;
        let scrub = |t: &str| crate::sanitize::scrub_url(t, "");
        match settle(data, 7, &scrub, parse_result) {
            Settled::Done(Err(UpstreamError::Rpc(error))) => {
                assert_eq!(error.code.0, -32602);
                assert!(!error.message.contains(":p@"), "{}", error.message);
            }
            _ => panic!("not settled as an error"),
        }
    }

    #[test]
    fn progress_for_this_call_only() {
        let data = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1,"total":3}}"#;
        assert!(
            matches!(settle(data, 7, &keep, parse_result), Settled::Progress(p) if p.progress == 1.0)
        );
        assert!(matches!(
            settle(data, 9, &keep, parse_result),
            Settled::Ignored
        ));
    }

    #[test]
    fn a_task_result_is_recognised() {
        let data = br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"task","taskId":"t1","status":"working","createdAt":"2026-12-01T00:00:00Z","lastUpdatedAt":"2026-12-01T00:00:00Z","ttlMs":1000}}"#;
        match settle(data, 1, &keep, parse_result) {
            Settled::Done(Ok(CallToolResponse::Task(_))) => {}
            Settled::Done(Err(error)) => panic!("{error}"),
            _ => panic!("not a task"),
        }
        let data = br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"nonsense"}}"#;
        assert!(matches!(
            settle(data, 1, &keep, parse_result),
            Settled::Done(Err(UpstreamError::Protocol(_)))
        ));
    }
}
