//! `POST /mcp` `tools/call`, answered without rmcp's server machinery: the request's own
//! task reads the envelope and the call's parameters, the dispatcher routes it, and the
//! answer goes back as one JSON response.
//!
//! Why: rmcp's streamable HTTP server sets up a whole service per request (several spawned
//! tasks and channels, the full message model both ways); `perf` showed it costing more
//! than the call itself. This layer takes only the plain case, which is nearly every
//! call, and passes everything else to rmcp unchanged, so that every other method and
//! every protocol error keeps rmcp's behaviour:
//! - anything whose headers do not agree with its body (`Mcp-Method`, `Mcp-Name`,
//!   `MCP-Protocol-Version` against `_meta`), an unknown or unsupported version, a missing
//!   `clientCapabilities`, an `Mcp-Param-*` header, an `Origin` header (rmcp checks it),
//!   several values of one header: rmcp answers with its -32020/-32022/-32602/403.
//!
//! A call with a progress token (rmcp's client puts one on every request) is answered as
//! JSON too when its answer comes before any progress; once progress arrives first, the
//! response becomes an SSE stream of the progress notifications and then the answer.
//!
//! A body that is not JSON is answered here: JSON-RPC parse error -32700 with HTTP 400
//! (rmcp says 415); JSON that is no JSON-RPC message gets -32600 with HTTP 400.

use crate::access::control::Caller;
use crate::gateway::dispatch::Dispatcher;
use crate::gateway::endpoint::{CallContext, KeyCheck, dispatch_call};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientJsonRpcMessage, ErrorCode,
    ErrorData, JsonRpcError, JsonRpcVersion2_0, NumberOrString, ProgressNotificationParam,
    ProgressToken, ResultType,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;

use crate::mcp_protocol::{
    LEGACY_VERSIONS as LEGACY, MCP_METHOD, MCP_NAME, META_PROTOCOL_VERSION, MODERN,
    PROTOCOL_VERSION,
};

/// What the layer needs.
#[derive(Clone)]
pub struct ToolCalls {
    /// Routes the calls.
    pub dispatcher: Arc<Dispatcher>,
    /// Largest request body (413 beyond, as rmcp answers).
    pub max_body_bytes: usize,
}

/// A request's envelope, parsed only as far as choosing the path needs.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(default)]
    id: Option<NumberOrString>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// A call this layer answers, and how.
struct PlainCall {
    id: NumberOrString,
    params: CallToolRequestParams,
    /// Stateless (2026-07-28): results keep `resultType`, protocol errors map to HTTP.
    modern: bool,
    /// The client declared the tasks extension.
    tasks: bool,
    /// The caller's progress token, if it wants progress.
    progress: Option<ProgressToken>,
}

/// Progress notifications waiting to be sent, at most (the upstream call waits beyond).
const PROGRESS_QUEUE: usize = 32;

/// Which way a request goes.
enum Route {
    Plain(Box<PlainCall>),
    /// To rmcp, unchanged.
    Pass,
    /// Not JSON at all.
    ParseError,
    /// JSON, but no JSON-RPC message.
    InvalidRequest,
}

/// The layer: answers plain `tools/call` requests, passes the rest on.
pub async fn answer_tool_calls(
    State(calls): State<ToolCalls>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if request.method() != Method::POST
        || !accepts_json_and_sse(headers)
        || !is_json(headers)
        || headers.contains_key(header::ORIGIN)
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, calls.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => return unreadable_body(error, calls.max_body_bytes),
    };
    match route(&parts.headers, &bytes) {
        Route::Pass => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Route::ParseError => protocol_error(
            None,
            ErrorData::parse_error("Parse error: the request body is not JSON", None),
            StatusCode::BAD_REQUEST,
        ),
        Route::InvalidRequest => protocol_error(
            None,
            ErrorData::invalid_request(
                "Invalid Request: the body is not a JSON-RPC 2.0 message",
                None,
            ),
            StatusCode::BAD_REQUEST,
        ),
        Route::Plain(call) => {
            let Some(caller) = parts.extensions.get::<Caller>().cloned() else {
                return protocol_error(
                    Some(call.id),
                    ErrorData::internal_error("request without an authenticated assistant", None),
                    StatusCode::OK,
                );
            };
            let context = CallContext {
                key_check: parts.extensions.get::<KeyCheck>().copied(),
                headers: parts.headers,
            };
            answer(calls.dispatcher, caller, context, *call).await
        }
    }
}

/// Routes and answers one plain call. The call runs in a task of its own so that a client
/// that disconnects cancels it (the guard below) while it still ends as the dispatcher
/// ends every call: recorded, the instance told.
async fn answer(
    dispatcher: Arc<Dispatcher>,
    caller: Caller,
    context: CallContext,
    call: PlainCall,
) -> Response {
    let PlainCall {
        id,
        params,
        modern,
        tasks,
        progress,
    } = call;
    let shape = Shape { id, modern, tasks };
    let (updates_tx, mut updates) = tokio::sync::mpsc::channel(PROGRESS_QUEUE);
    let wants_progress = progress.is_some();
    let sink = progress.map(|token| progress_sink(token, updates_tx));
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_disconnect = cancel.clone().drop_guard();
    let mut task = tokio::spawn(async move {
        dispatch_call(&dispatcher, &caller, &context, params, sink, cancel).await
    });
    // JSON when the answer comes first (nearly always); a stream once progress does.
    let first = if wants_progress {
        tokio::select! {
            biased;
            answered = &mut task => {
                if updates.is_empty() {
                    on_disconnect.disarm();
                    return shape.answer(answered);
                }
                return stream(shape, updates, None, Call::Ended(answered), on_disconnect);
            }
            first = updates.recv() => first,
        }
    } else {
        None
    };
    match first {
        Some(first) => stream(
            shape,
            updates,
            Some(first),
            Call::Running(task),
            on_disconnect,
        ),
        // No progress wanted, or none can come any more.
        None => {
            let answered = task.await;
            on_disconnect.disarm();
            shape.answer(answered)
        }
    }
}

/// The sink that queues the call's progress for the response, under the caller's token.
fn progress_sink(
    token: ProgressToken,
    queue: tokio::sync::mpsc::Sender<ProgressNotificationParam>,
) -> crate::upstream::ProgressSink {
    Arc::new(move |mut update: ProgressNotificationParam| {
        update.progress_token = token.clone();
        let queue = queue.clone();
        Box::pin(async move {
            // A caller that has gone away no longer reads progress.
            let _ = queue.send(update).await;
        })
    })
}

/// How an answer is shaped for the caller's era.
struct Shape {
    id: NumberOrString,
    modern: bool,
    tasks: bool,
}

type Answered = Result<Result<CallToolResponse, ErrorData>, tokio::task::JoinError>;

impl Shape {
    /// The JSON-RPC message answering the call.
    fn message(&self, answered: Answered) -> (StatusCode, Vec<u8>) {
        let answer = match answered {
            Ok(answer) => answer,
            Err(_) => Err(ErrorData::internal_error(
                "the call failed in the gateway",
                None,
            )),
        };
        match answer.and_then(|response| shaped(response, self.modern, self.tasks)) {
            Ok(response) => match encode_reply(&self.id, &response) {
                Ok(body) => (StatusCode::OK, body),
                Err(_) => self.error(ErrorData::internal_error(
                    "the answer could not be encoded",
                    None,
                )),
            },
            Err(error) => self.error(error),
        }
    }

    fn error(&self, error: ErrorData) -> (StatusCode, Vec<u8>) {
        let status = if self.modern {
            error_status(error.code)
        } else {
            StatusCode::OK
        };
        let body = serde_json::to_vec(&JsonRpcError::new(Some(self.id.clone()), error))
            .unwrap_or_default();
        (status, body)
    }

    fn answer(&self, answered: Answered) -> Response {
        let (status, body) = self.message(answered);
        json_response(status, body)
    }
}

/// Where the stream gets the answer from.
enum Call {
    /// The call has ended.
    Ended(Answered),
    /// It is still running.
    Running(tokio::task::JoinHandle<Result<CallToolResponse, ErrorData>>),
}

/// An SSE response: `first` progress (if any), the rest as it comes, the answer last.
/// Dropping the body (the client went away) cancels the call.
fn stream(
    shape: Shape,
    mut updates: tokio::sync::mpsc::Receiver<ProgressNotificationParam>,
    first: Option<ProgressNotificationParam>,
    call: Call,
    on_disconnect: tokio_util::sync::DropGuard,
) -> Response {
    let frames = async_stream_of(move |yield_frame| async move {
        let _cancel_when_dropped = on_disconnect;
        if let Some(update) = first {
            yield_frame(progress_event(update)).await;
        }
        let answered = match call {
            Call::Ended(answered) => answered,
            Call::Running(mut task) => loop {
                tokio::select! {
                    biased;
                    Some(update) = updates.recv() => yield_frame(progress_event(update)).await,
                    answered = &mut task => break answered,
                }
            },
        };
        // Progress sent just before the answer is still queued: it goes first.
        while let Ok(update) = updates.try_recv() {
            yield_frame(progress_event(update)).await;
        }
        let (_, body) = shape.message(answered);
        yield_frame(sse_event(&body)).await;
        _cancel_when_dropped.disarm();
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response()
}

/// A stream fed by an async producer through a small channel (no extra task: the
/// producer runs as the body is polled).
fn async_stream_of<F, Fut>(
    producer: F,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static
where
    F: FnOnce(Box<dyn Fn(Bytes) -> futures::future::BoxFuture<'static, ()> + Send + Sync>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let send: Box<dyn Fn(Bytes) -> futures::future::BoxFuture<'static, ()> + Send + Sync> =
        Box::new(move |frame| {
            let tx = tx.clone();
            Box::pin(async move {
                let _ = tx.send(frame).await;
            })
        });
    let producer = producer(send);
    futures::stream::unfold(
        (Some(Box::pin(producer)), rx),
        |(mut producer, mut rx)| async move {
            loop {
                match producer.as_mut() {
                    Some(running) => tokio::select! {
                        biased;
                        frame = rx.recv() => match frame {
                            Some(frame) => return Some((Ok(frame), (producer, rx))),
                            None => return None,
                        },
                        () = running.as_mut() => producer = None,
                    },
                    None => {
                        return rx.recv().await.map(|frame| (Ok(frame), (None, rx)));
                    }
                }
            }
        },
    )
}

fn progress_event(update: ProgressNotificationParam) -> Bytes {
    let message = serde_json::json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": update,
    });
    sse_event(&serde_json::to_vec(&message).unwrap_or_default())
}

fn sse_event(data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 16);
    frame.extend_from_slice(b"event: message\ndata: ");
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// What each era may receive (as rmcp's server handler does it): a task handle only for a
/// client that declared tasks, an input-required result only on 2026-07-28, `resultType`
/// on complete results only on 2026-07-28.
fn shaped(
    response: CallToolResponse,
    modern: bool,
    tasks: bool,
) -> Result<CallToolResponse, ErrorData> {
    match response {
        CallToolResponse::Task(_) if !tasks => Err(ErrorData::missing_required_client_capability(
            ClientCapabilities::builder().enable_tasks().build(),
        )),
        CallToolResponse::InputRequired(_) if !modern => Err(ErrorData::invalid_request(
            "InputRequiredResult requires negotiated protocol version 2026-07-28 or newer",
            None,
        )),
        CallToolResponse::Complete(mut result) => {
            result.result_type = modern.then_some(ResultType::COMPLETE);
            Ok(CallToolResponse::Complete(result))
        }
        other => Ok(other),
    }
}

/// The HTTP status of a protocol error on the stateless revision (legacy ones get 200).
fn error_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// Which way the request goes (see the module's doc for what passes to rmcp).
fn route(headers: &HeaderMap, body: &[u8]) -> Route {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            return Route::ParseError;
        }
        // JSON of another shape: rmcp parses it if it can, else it is no message at all.
        return match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
            Ok(_) => Route::Pass,
            Err(_) => Route::InvalidRequest,
        };
    };
    let (Some(id), Some("tools/call"), Some(params)) =
        (envelope.id, envelope.method.as_deref(), envelope.params)
    else {
        return Route::Pass;
    };
    if envelope.jsonrpc != "2.0" {
        return Route::Pass;
    }
    let Ok(params) = serde_json::from_str::<CallToolRequestParams>(params.get()) else {
        return Route::Pass;
    };
    match era(headers, &params) {
        Some((modern, tasks)) => Route::Plain(Box::new(PlainCall {
            id,
            progress: params.meta.as_ref().and_then(|m| m.get_progress_token()),
            params,
            modern,
            tasks,
        })),
        None => Route::Pass,
    }
}

/// `(modern, declares tasks)` when the call's headers and `_meta` agree in a way this
/// layer serves; `None` sends it to rmcp (which answers with the right error, or a stream).
fn era(headers: &HeaderMap, params: &CallToolRequestParams) -> Option<(bool, bool)> {
    let meta = params.meta.as_ref();
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("mcp-param-"))
    {
        return None;
    }
    let header_version = single(headers, PROTOCOL_VERSION)?;
    let meta_version = meta.and_then(|m| m.get(META_PROTOCOL_VERSION));
    let capabilities = meta.map(|m| m.client_capabilities());
    match (header_version, meta_version) {
        // The older revisions: no per-request version, no standard headers.
        (version, None) => {
            let known = version.is_none_or(|v| LEGACY.contains(&v));
            let plain = !headers.contains_key(MCP_METHOD) && !headers.contains_key(MCP_NAME);
            (known && plain).then_some((false, false))
        }
        // 2026-07-28: the header names the `_meta` version, and the standard headers
        // name the method and the tool.
        (Some(version), Some(meta_version)) => {
            let agrees = version == MODERN && meta_version.as_str() == Some(MODERN);
            let method = single(headers, MCP_METHOD)? == Some("tools/call");
            let name = single(headers, MCP_NAME)? == Some(params.name.as_ref());
            let capabilities = capabilities.flatten()?;
            (agrees && method && name).then_some((true, capabilities.supports_tasks()))
        }
        (None, Some(_)) => None,
    }
}

/// A header's one value: `Some(None)` when absent, `None` when repeated or not text.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<Option<&'a str>> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Some(None);
    };
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(Some)
}

/// `Accept` names both `application/json` and `text/event-stream` (what rmcp requires;
/// anything else goes to rmcp for its 406).
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let essence = parts.next().unwrap_or("").trim();
            // A zero weight excludes the type.
            let excluded = parts.any(|p| {
                p.split_once('=').is_some_and(|(name, weight)| {
                    name.trim().eq_ignore_ascii_case("q")
                        && weight.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
                })
            });
            if excluded {
                continue;
            }
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
        })
}

/// A body that could not be read: over the limit (413, rmcp's text) or broken.
fn unreadable_body(error: axum::Error, max: usize) -> Response {
    let over = std::error::Error::source(&error)
        .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
    if over {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Payload Too Large: request body exceeds {max} bytes"),
        )
            .into_response()
    } else {
        (StatusCode::BAD_REQUEST, "Failed to read request body").into_response()
    }
}

/// A JSON-RPC response.
#[derive(Serialize)]
struct Reply<'a, R> {
    jsonrpc: JsonRpcVersion2_0,
    id: &'a NumberOrString,
    result: R,
}

fn encode_reply(id: &NumberOrString, response: &CallToolResponse) -> serde_json::Result<Vec<u8>> {
    let reply = |result| Reply {
        jsonrpc: JsonRpcVersion2_0,
        id,
        result,
    };
    match response {
        CallToolResponse::Complete(result) => serde_json::to_vec(&reply(Answer::Complete(result))),
        CallToolResponse::Task(result) => serde_json::to_vec(&reply(Answer::Task(result))),
        CallToolResponse::InputRequired(result) => {
            serde_json::to_vec(&reply(Answer::InputRequired(result)))
        }
        _ => Err(serde::ser::Error::custom("an answer of an unknown kind")),
    }
}

/// A result as sent (each kind serialises as itself).
#[derive(Serialize)]
#[serde(untagged)]
enum Answer<'a> {
    Complete(&'a rmcp::model::CallToolResult),
    Task(&'a rmcp::model::CreateTaskResult),
    InputRequired(&'a rmcp::model::InputRequiredResult),
}

fn protocol_error(id: Option<NumberOrString>, error: ErrorData, status: StatusCode) -> Response {
    let body = serde_json::to_vec(&JsonRpcError::new(id, error)).unwrap_or_default();
    json_response(status, body)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const LEGACY_CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search__lookup","arguments":{"id":"doc-001"}}}"#;
    const MODERN_CALL: &str = r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"search__lookup","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

    fn is_plain(route: Route, modern: bool) -> bool {
        matches!(route, Route::Plain(call) if call.modern == modern)
    }

    #[test]
    fn plain_calls_of_both_eras_are_answered_here() {
        assert!(is_plain(
            route(&headers(&[]), LEGACY_CALL.as_bytes()),
            false
        ));
        let legacy = headers(&[("mcp-protocol-version", "2025-06-18")]);
        assert!(is_plain(route(&legacy, LEGACY_CALL.as_bytes()), false));
        let modern = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "search__lookup"),
        ]);
        assert!(is_plain(route(&modern, MODERN_CALL.as_bytes()), true));
    }

    #[test]
    fn disagreeing_headers_go_to_rmcp_for_its_errors() {
        let pass = |pairs: &[(&'static str, &'static str)], body: &str| {
            matches!(route(&headers(pairs), body.as_bytes()), Route::Pass)
        };
        // Wrong name, wrong method, missing headers, repeated headers, other versions.
        let version = ("mcp-protocol-version", "2026-07-28");
        let method = ("mcp-method", "tools/call");
        assert!(pass(&[version, method, ("mcp-name", "other")], MODERN_CALL));
        assert!(pass(
            &[
                version,
                ("mcp-method", "tools/list"),
                ("mcp-name", "search__lookup")
            ],
            MODERN_CALL
        ));
        assert!(pass(&[version, method], MODERN_CALL));
        assert!(pass(&[], MODERN_CALL));
        assert!(pass(
            &[
                version,
                method,
                ("mcp-name", "search__lookup"),
                ("mcp-name", "search__lookup")
            ],
            MODERN_CALL
        ));
        assert!(pass(&[("mcp-protocol-version", "2099-01-01")], LEGACY_CALL));
        assert!(pass(&[version], LEGACY_CALL));
        assert!(pass(&[("mcp-method", "tools/list")], LEGACY_CALL));
        assert!(pass(
            &[
                version,
                method,
                ("mcp-name", "search__lookup"),
                ("mcp-param-x", "1")
            ],
            MODERN_CALL
        ));
        // Not a tool call.
        assert!(pass(
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
        ));
        // A notification.
        assert!(pass(
            &[],
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        ));
    }

    #[test]
    fn a_progress_token_is_kept_for_the_answer() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":3}}}"#;
        match route(&headers(&[]), body.as_bytes()) {
            Route::Plain(call) => assert_eq!(
                call.progress,
                Some(ProgressToken(NumberOrString::Number(3)))
            ),
            _ => panic!("a call with a progress token is a plain call"),
        }
    }

    #[test]
    fn bodies_that_are_not_json_rpc_are_refused_here() {
        assert!(matches!(
            route(&headers(&[]), b"{not json"),
            Route::ParseError
        ));
        assert!(matches!(route(&headers(&[]), b""), Route::ParseError));
        assert!(matches!(
            route(&headers(&[]), b"[1,2]"),
            Route::InvalidRequest
        ));
        assert!(matches!(
            route(&headers(&[]), br#"{"a":1}"#),
            Route::InvalidRequest
        ));
    }

    #[test]
    fn accept_needs_both_types() {
        let accept = |value: &'static str| accepts_json_and_sse(&headers(&[("accept", value)]));
        assert!(accept("application/json, text/event-stream"));
        assert!(accept("text/event-stream;q=0.9, application/json"));
        assert!(!accept("application/json"));
        assert!(!accept("application/json;q=0, text/event-stream"));
        assert!(!accepts_json_and_sse(&headers(&[])));
    }

    #[test]
    fn each_era_gets_its_shape() {
        use rmcp::model::CallToolResult;
        let complete = || CallToolResponse::Complete(CallToolResult::success(vec![]));
        let Ok(CallToolResponse::Complete(legacy)) = shaped(complete(), false, false) else {
            panic!("legacy complete");
        };
        assert_eq!(legacy.result_type, None);
        let Ok(CallToolResponse::Complete(modern)) = shaped(complete(), true, false) else {
            panic!("modern complete");
        };
        assert_eq!(modern.result_type, Some(ResultType::COMPLETE));
        assert_eq!(
            error_status(ErrorCode::HEADER_MISMATCH),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(error_status(ErrorCode::INVALID_PARAMS), StatusCode::OK);
    }
}
