//! Security headers on every response, with a Content-Security-Policy the hydrated
//! dashboard works under.
//!
//! Scripts run only from this origin, plus inline scripts carrying the request's nonce:
//! Leptos writes its hydration bootstrap and the chunks of a streamed page as inline
//! `<script nonce=…>` elements, taking the nonce from its context, where
//! [`provide_request_nonce`] puts the one this middleware generated for the request and
//! sent in the header. `'wasm-unsafe-eval'` lets the page compile its WebAssembly; nothing
//! else may evaluate code. Styles come from this origin only: the pages use no inline
//! styles (the trace waterfall draws its bars as SVG geometry, which CSP does not govern).
//! Pages cannot be framed, plugins are off, and forms and `<base>` stay on this origin.
//!
//! cargo-leptos' live-reload script renders only under `cargo leptos watch`
//! (`LEPTOS_WATCH` set; it carries the nonce too): only then is its WebSocket to the reload
//! port allowed as well.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use leptos::nonce::Nonce;
use leptos::prelude::{provide_context, use_context};
use std::sync::Arc;

/// The nonce of one request's inline scripts, in its extensions.
#[derive(Clone, Debug)]
struct RequestNonce(Nonce);

/// The policy's fixed parts, built once at start.
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    /// `connect-src` beyond `'self'` (the live-reload socket under `cargo leptos watch`).
    extra_connect: Arc<str>,
}

impl SecurityHeaders {
    /// The policy for this process: with the live-reload socket when `LEPTOS_WATCH` is set
    /// (as `AutoReload` decides), on `reload_port`.
    pub fn for_process(reload_port: u32) -> Self {
        let live_reload = std::env::var_os("LEPTOS_WATCH").map(|_| reload_port);
        SecurityHeaders::new(live_reload)
    }

    /// The policy, allowing a live-reload socket on `live_reload` if given.
    pub fn new(live_reload: Option<u32>) -> Self {
        let extra_connect = live_reload
            .map(|port| format!(" ws://*:{port} wss://*:{port}"))
            .unwrap_or_default();
        SecurityHeaders {
            extra_connect: extra_connect.into(),
        }
    }

    /// The Content-Security-Policy of a response whose inline scripts carry `nonce`.
    fn content_security_policy(&self, nonce: &str) -> String {
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self'; img-src 'self'; connect-src 'self'{extra}; object-src 'none'; \
             base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
            extra = self.extra_connect
        )
    }
}

/// Generates the request's nonce and sets the security headers on its response.
pub async fn add_security_headers(
    State(policy): State<SecurityHeaders>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = Nonce::new();
    let csp = policy.content_security_policy(&nonce);
    request.extensions_mut().insert(RequestNonce(nonce));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    let fixed: [(HeaderName, &str); 3] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Makes the request's nonce Leptos' own for the page being rendered (call it in the
/// render's additional context, after leptos_axum provided a fresh nonce of its own).
pub fn provide_request_nonce() {
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<RequestNonce>().cloned());
    if let Some(RequestNonce(nonce)) = nonce {
        provide_context(nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_self_the_nonce_and_wasm_only() {
        let csp = SecurityHeaders::new(None).content_security_policy("abc123");
        for directive in [
            "default-src 'self'",
            "script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'",
            "style-src 'self'",
            "connect-src 'self';",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(!csp.contains("'unsafe-eval'"), "{csp}");
        assert!(!csp.contains("ws:"), "{csp}");
    }

    #[test]
    fn live_reload_adds_only_its_socket() {
        let csp = SecurityHeaders::new(Some(3001)).content_security_policy("n");
        assert!(
            csp.contains("connect-src 'self' ws://*:3001 wss://*:3001;"),
            "{csp}"
        );
    }
}
