//! `/mcp`: the gateway as an MCP server over streamable HTTP. Assistants authenticate with
//! `Authorization: Bearer <key>`; every request then carries the assistant's identity.

use crate::gateway::dispatch::Dispatcher;
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
use std::collections::HashMap;
use std::sync::Arc;

/// The assistant behind a request, set by [`authenticate`].
#[derive(Clone, Debug)]
pub struct Assistant {
    /// Its name.
    pub name: String,
}

/// Bearer keys and the assistants they belong to.
#[derive(Clone, Debug, Default)]
pub struct AssistantKeys(Arc<HashMap<String, String>>);

impl AssistantKeys {
    /// From (name, key) pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        AssistantKeys(Arc::new(
            pairs.into_iter().map(|(name, key)| (key, name)).collect(),
        ))
    }

    /// The assistant holding `key`, compared in constant time per key.
    fn find(&self, key: &str) -> Option<&str> {
        let mut found = None;
        for (candidate, name) in self.0.iter() {
            if constant_time_eq(candidate.as_bytes(), key.as_bytes()) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a request without a valid bearer key (401), and records the assistant otherwise.
pub async fn authenticate(
    State(keys): State<AssistantKeys>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(name) = presented.and_then(|key| keys.find(key)) else {
        let message = if presented.is_some() {
            "invalid API key"
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
    request.extensions_mut().insert(Assistant {
        name: name.to_string(),
    });
    next.run(request).await
}

/// One downstream MCP session's handler; all share the dispatcher.
#[derive(Clone)]
pub struct GatewayService {
    dispatcher: Arc<Dispatcher>,
}

fn assistant_of(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Assistant>())
        .map_or_else(|| "anonymous".to_string(), |a| a.name.clone())
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
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.dispatcher.list_tools().await,
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let assistant = assistant_of(&context);
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
            .call_tool(&assistant, request, progress, context.ct.clone())
            .await
    }
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
    keys: AssistantKeys,
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
        .layer(axum::middleware::from_fn_with_state(keys, authenticate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_find_their_assistant_and_nothing_else() {
        let keys = AssistantKeys::new([("claude".to_string(), "k-0123456789abcdef".to_string())]);
        assert_eq!(keys.find("k-0123456789abcdef"), Some("claude"));
        assert_eq!(keys.find("k-0123456789abcdeF"), None);
        assert_eq!(keys.find(""), None);
    }
}
