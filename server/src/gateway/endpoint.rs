//! `/mcp`: the gateway as an MCP server over streamable HTTP. Assistants authenticate with
//! `Authorization: Bearer <key>` (keys live in the store as digests, see `access`); every
//! request then carries the calling assistant.

use crate::access::control::{AccessControl, Caller};
use crate::gateway::dispatch::Dispatcher;
use crate::telemetry::traces::{self, context::TraceContext};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use std::sync::Arc;
use tracing::Instrument;

/// How long the key check of a request took (its trace's `authenticate` span reports it:
/// the check runs here, before the body says which MCP method the request is).
#[derive(Clone, Copy, Debug)]
struct KeyCheck(std::time::Duration);

/// Refuses a request without a valid, unrevoked bearer key (401), and records the calling
/// assistant otherwise.
pub async fn authenticate(
    State(access): State<Arc<AccessControl>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(caller) = presented.and_then(|key| access.authenticate(key)) else {
        let message = if presented.is_some() {
            "invalid or revoked API key"
        } else {
            "missing Authorization: Bearer <API key>"
        };
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"fleetdeck\"")],
            axum::Json(serde_json::json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": { "code": -32001, "message": message }
            })),
        )
            .into_response();
    };
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(KeyCheck(started.elapsed()));
    next.run(request).await
}

/// One downstream MCP session's handler; all share the dispatcher.
#[derive(Clone)]
pub struct GatewayService {
    dispatcher: Arc<Dispatcher>,
}

/// The authenticated assistant of a request (always set by [`authenticate`]).
fn caller_of(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| {
            ErrorData::internal_error("request without an authenticated assistant", None)
        })
}

impl ServerHandler for GatewayService {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("fleetdeck", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Fleetdeck gateway: the tools of a whole MCP fleet, named <server>__<tool>.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller_of(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.dispatcher.list_tools(&caller).await,
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The call's trace: the caller's context if it sent one (`_meta` first, then the
        // HTTP header), else a new trace.
        let caller_context = trace_context_of(&request, &context);
        let root = tracing::debug_span!(
            "tools/call",
            traceparent = %caller_context.as_ref().map_or(String::new(), |c| {
                traces::context::format_traceparent(c.trace_id, c.parent_span_id)
            }),
            tracestate = caller_context
                .as_ref()
                .and_then(|c| c.tracestate.as_deref())
                .unwrap_or(""),
            assistant = tracing::field::Empty,
            tool = %request.name,
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let caller = root.in_scope(|| {
            let span = tracing::debug_span!(
                "authenticate",
                assistant = tracing::field::Empty,
                key_id = tracing::field::Empty,
                key_check_us = tracing::field::Empty,
                error = tracing::field::Empty
            );
            let _entered = span.enter();
            let caller = caller_of(&context);
            match &caller {
                Ok(caller) => {
                    span.record("assistant", &*caller.assistant);
                    span.record("key_id", caller.key_id);
                }
                Err(error) => {
                    span.record("error", &*error.message);
                }
            };
            let check = context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<KeyCheck>());
            if let Some(KeyCheck(took)) = check {
                span.record("key_check_us", took.as_micros() as u64);
            }
            caller
        })?;
        root.record("assistant", &*caller.assistant);
        let progress = context.meta.get_progress_token().map(|token| {
            let peer = context.peer.clone();
            let sink: crate::upstream::ProgressSink =
                Arc::new(move |update: ProgressNotificationParam| {
                    let peer = peer.clone();
                    let mut update = update;
                    update.progress_token = token.clone();
                    Box::pin(async move {
                        let _ = peer.notify_progress(update).await;
                    })
                });
            sink
        });
        self.dispatcher
            .call_tool(&caller, request, progress, context.ct.clone())
            .instrument(root)
            .await
    }
}

/// The caller's trace context: the first valid one of `_meta.traceparent` (with its
/// `tracestate`) and the HTTP `traceparent` header (with the `tracestate` header).
fn trace_context_of(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Option<TraceContext> {
    let from_meta = |meta: &rmcp::model::MetaObject| {
        meta.get_traceparent()
            .and_then(|tp| traces::context::parse(tp, meta.get_tracestate()))
    };
    let header = |parts: &axum::http::request::Parts, name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    from_meta(&context.meta.0)
        .or_else(|| request.meta.as_ref().and_then(|meta| from_meta(&meta.0)))
        .or_else(|| {
            let parts = context.extensions.get::<axum::http::request::Parts>()?;
            let traceparent = header(parts, "traceparent")?;
            traces::context::parse(&traceparent, header(parts, "tracestate").as_deref())
        })
}

/// Settings of the MCP endpoint.
#[derive(Clone, Debug)]
pub struct EndpointSettings {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// `Host` values accepted besides loopback (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Cancelled at shutdown: open response streams end so the server can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The `/mcp` router: bearer authentication in front of the rmcp streamable HTTP service.
pub fn router(
    dispatcher: Arc<Dispatcher>,
    access: Arc<AccessControl>,
    settings: EndpointSettings,
) -> Router {
    let mut config = StreamableHttpServerConfig::default();
    // Stateless: any replica can serve any request; nothing lives in a session.
    config.legacy_session_mode = false;
    // Plain JSON answers for plain calls (cheaper than an SSE stream); a call that sends
    // progress first still gets a stream.
    config.json_response = true;
    config.max_request_body_bytes = settings.max_body_bytes;
    config.allowed_hosts.extend(settings.allowed_hosts);
    config.cancellation_token = settings.shutdown.child_token();
    let service = StreamableHttpService::new(
        move || {
            Ok(GatewayService {
                dispatcher: dispatcher.clone(),
            })
        },
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(access, authenticate))
}
