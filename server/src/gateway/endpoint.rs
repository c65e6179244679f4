//! `/mcp`: the gateway as an MCP server over streamable HTTP. Assistants authenticate with
//! `Authorization: Bearer <key>` (keys live in the store as digests, see `access`); every
//! request then carries the calling assistant.

use crate::access::bearer_throttle::BearerThrottle;
use crate::access::client_address::TrustedProxies;
use crate::access::control::{AccessControl, Caller};
use crate::gateway::dispatch::Dispatcher;
use crate::gateway::tool_name;
use crate::sanitize;
use crate::telemetry::metrics::{AuthFailure, Metrics};
use crate::telemetry::traces::{self, context::TraceContext};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, DiscoverResult, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::Instrument;

/// How long the key check of a request took (its trace's `authenticate` span reports it:
/// the check runs here, before the body says which MCP method the request is).
#[derive(Clone, Copy, Debug)]
pub struct KeyCheck(std::time::Duration);

/// What a tool call's trace needs from its HTTP request.
pub struct CallContext {
    /// How long the key check took.
    pub key_check: Option<KeyCheck>,
    /// The request's headers (`traceparent`, `tracestate`).
    pub headers: axum::http::HeaderMap,
}

/// What the bearer check in front of `/mcp` needs.
#[derive(Clone)]
pub struct BearerGate {
    /// Keys and assistants.
    pub access: Arc<AccessControl>,
    /// Failed attempts per client address.
    pub throttle: Arc<BearerThrottle>,
    /// Which proxies' `X-Forwarded-For` names the client.
    pub proxies: TrustedProxies,
    /// Where refusals are counted.
    pub metrics: Arc<Metrics>,
}

/// Refuses a request without a valid, unrevoked bearer key (401, or 429 once the client's
/// address has failed too often), and records the calling assistant otherwise.
pub async fn authenticate(
    State(gate): State<BearerGate>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let client = peer.map(|peer| gate.proxies.client_address(peer, request.headers()));
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(caller) = presented.and_then(|key| gate.access.authenticate(key)) {
        request.extensions_mut().insert(caller);
        request.extensions_mut().insert(KeyCheck(started.elapsed()));
        return next.run(request).await;
    }
    // Only failures count against the address; a valid key always passes (see
    // `access::bearer_throttle` for why).
    if let Some(client) = client
        && let Err(wait) = gate.throttle.failed(client)
    {
        gate.metrics.auth_failure(AuthFailure::Throttled);
        tracing::debug!(%client, "bearer attempts throttled");
        return throttled(wait);
    }
    let (reason, message) = if presented.is_some() {
        (AuthFailure::Invalid, "invalid or revoked API key")
    } else {
        (
            AuthFailure::Missing,
            "missing Authorization: Bearer <API key>",
        )
    };
    gate.metrics.auth_failure(reason);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"fleetdeck\"")],
        axum::Json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": -32001, "message": message }
        })),
    )
        .into_response()
}

/// The answer to a blocked address: 429 with `Retry-After`.
fn throttled(wait: std::time::Duration) -> Response {
    let retry_after = wait.as_secs().max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, retry_after.to_string())],
        axum::Json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {
                "code": -32001,
                "message": format!("too many failed API key attempts from this address: retry in {retry_after} s")
            }
        })),
    )
        .into_response()
}

/// One downstream MCP request's handler; all share the dispatcher.
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

impl GatewayService {
    /// Charges a request that is not a tool call to the caller's rate limit (tool calls are
    /// charged by the dispatcher, which knows per-tool limits).
    fn charge(&self, context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        let caller = caller_of(context)?;
        self.dispatcher.charge_request(&caller)?;
        Ok(caller)
    }
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

    // Every request draws on the assistant's budget, not only tool calls: listings, pings
    // and handshakes cost the gateway work too.
    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.charge(&context).map(|_| ())
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.charge(&context)?;
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.charge(&context)?;
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.charge(&context)?;
        Ok(ListPromptsResult::default())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.charge(&context)?;
        Ok(ListResourcesResult::default())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.charge(&context)?;
        Ok(ListResourceTemplatesResult::default())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = self.charge(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.dispatcher.list_tools(&caller).await,
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller_of(&context)?;
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let call = CallContext {
            key_check: parts.and_then(|parts| parts.extensions.get::<KeyCheck>().copied()),
            headers: parts.map(|parts| parts.headers.clone()).unwrap_or_default(),
        };
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
        let meta = Some(&context.meta.0);
        let trace_context = trace_context_of([meta, request.meta.as_deref()], &call.headers);
        run_call(
            &self.dispatcher,
            &caller,
            &call,
            trace_context,
            request,
            progress,
            context.ct.clone(),
        )
        .await
    }
}

/// One tool call of `caller` through the dispatcher, under its trace's root span (the
/// caller's trace context continued when it sent one it may continue). Shared by the
/// plain-call layer and the rmcp handler.
pub async fn dispatch_call(
    dispatcher: &Dispatcher,
    caller: &Caller,
    call: &CallContext,
    request: CallToolRequestParams,
    progress: Option<crate::upstream::ProgressSink>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<CallToolResponse, ErrorData> {
    let trace_context = trace_context_of([request.meta.as_deref(), None], &call.headers);
    run_call(
        dispatcher,
        caller,
        call,
        trace_context,
        request,
        progress,
        cancel,
    )
    .await
}

async fn run_call(
    dispatcher: &Dispatcher,
    caller: &Caller,
    call: &CallContext,
    caller_context: Option<TraceContext>,
    request: CallToolRequestParams,
    progress: Option<crate::upstream::ProgressSink>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<CallToolResponse, ErrorData> {
    // The name as spans may show it: a name that breaks the rule only escaped and cut
    // (the dispatcher refuses it).
    let shown_name = match tool_name::check(&request.name) {
        Ok(name) => name.as_str().to_string(),
        Err(_) => sanitize::escaped_name(&request.name),
    };
    let mut refused_context = None;
    let caller_context = caller_context.filter(|c| {
        refused_context = traces::collector()
            .claim(c.trace_id, &caller.assistant)
            .refusal();
        refused_context.is_none()
    });
    let root = tracing::debug_span!(
        "tools/call",
        traceparent = %caller_context.as_ref().map_or(String::new(), |c| {
            traces::context::format_traceparent(c.trace_id, c.parent_span_id)
        }),
        tracestate = caller_context
            .as_ref()
            .and_then(|c| c.tracestate.as_deref())
            .unwrap_or(""),
        traceparent_refused = refused_context.unwrap_or(""),
        assistant = %caller.assistant,
        tool = %shown_name,
        outcome = tracing::field::Empty,
        error = tracing::field::Empty,
    );
    root.in_scope(|| {
        let span = tracing::debug_span!(
            "authenticate",
            assistant = %caller.assistant,
            key_id = caller.key_id,
            key_check_us = tracing::field::Empty,
        );
        if let Some(KeyCheck(took)) = call.key_check {
            span.record("key_check_us", took.as_micros() as u64);
        }
    });
    dispatcher
        .call_tool(caller, request, progress, cancel)
        .instrument(root)
        .await
}

/// The caller's trace context: the first valid one of the `_meta` objects
/// (`traceparent` with its `tracestate`), else the HTTP `traceparent` header (with the
/// `tracestate` header).
fn trace_context_of(
    metas: [Option<&rmcp::model::MetaObject>; 2],
    headers: &axum::http::HeaderMap,
) -> Option<TraceContext> {
    let from_meta = |meta: &rmcp::model::MetaObject| {
        meta.get_traceparent()
            .and_then(|tp| traces::context::parse(tp, meta.get_tracestate()))
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    metas
        .into_iter()
        .flatten()
        .find_map(from_meta)
        .or_else(|| traces::context::parse(header("traceparent")?, header("tracestate")))
}

/// Settings of the MCP endpoint.
#[derive(Clone)]
pub struct EndpointSettings {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// `Host` values accepted besides loopback (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Cancelled at shutdown: open response streams end so the server can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The `/mcp` router: bearer authentication in front of the rmcp streamable HTTP service.
pub fn router(dispatcher: Arc<Dispatcher>, gate: BearerGate, settings: EndpointSettings) -> Router {
    let dispatcher_for_calls = dispatcher.clone();
    let mut config = StreamableHttpServerConfig::default();
    // Stateless: any replica can serve any request; nothing lives in a session.
    config.legacy_session_mode = false;
    // Plain JSON answers for plain calls (cheaper than an SSE stream); a call that sends
    // progress first still gets a stream.
    config.json_response = true;
    config.max_request_body_bytes = settings.max_body_bytes;
    config.allowed_hosts.extend(settings.allowed_hosts);
    config.cancellation_token = settings.shutdown.child_token();
    let service = Arc::new(StreamableHttpService::new(
        move || {
            Ok(GatewayService {
                dispatcher: dispatcher.clone(),
            })
        },
        LocalSessionManager::default().into(),
        config,
    ));
    // Behind an `Arc`: axum clones a route's service for every request, and rmcp's own
    // `call` clones it once more (its whole configuration, host lists included); `perf`
    // showed both on every call. This clones a pointer.
    let service = tower::service_fn(move |request: Request| {
        let service = service.clone();
        async move {
            Ok::<_, std::convert::Infallible>(
                service.handle(request).await.map(axum::body::Body::new),
            )
        }
    });
    let plain_calls = crate::gateway::tools_call::ToolCalls {
        dispatcher: dispatcher_for_calls,
        max_body_bytes: settings.max_body_bytes,
    };
    // Layers run outside in: the key check, then the plain-call layer, then rmcp.
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            plain_calls,
            crate::gateway::tools_call::answer_tool_calls,
        ))
        .layer(axum::middleware::from_fn_with_state(gate, authenticate))
}
