//! Tells the dashboard which address a request came from (for login throttling): the TCP
//! peer, or what a trusted proxy forwarded ([`TrustedProxies::client_address`]), put into
//! the request's extensions as [`ClientAddress`] before the app runs.

use crate::access::client_address::TrustedProxies;
use app::auth::ssr::ClientAddress;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

/// Adds the request's [`ClientAddress`] (when the connection's peer is known).
pub(super) async fn tag_client_address(
    State(proxies): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(peer) = peer {
        let client = proxies.client_address(peer, request.headers());
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}
