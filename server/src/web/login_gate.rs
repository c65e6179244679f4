//! Pages need a login: an anonymous request for a page is sent to `/login?next=<page>`.
//! Server functions check the session themselves (with the role they need).

use super::AppState;
use app::auth::ssr::session_stamp;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

/// Paths anyone may fetch: the login page, server functions, assets, health.
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/healthz" | "/readyz" | "/favicon.svg")
        || path.starts_with("/api/")
        || path.starts_with("/pkg/")
}

/// Percent-encodes a path and query for use as a query value.
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

pub(super) async fn require_login(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let needs_login =
        matches!(*request.method(), Method::GET | Method::HEAD) && !is_public(request.uri().path());
    if !needs_login {
        return next.run(request).await;
    }
    let logged_in = match session_stamp(&session).await.ok().flatten() {
        Some(stamp) => matches!(state.control.session_user(stamp).await, Ok(Some(_))),
        None => false,
    };
    if logged_in {
        return next.run(request).await;
    }
    let here = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let target = if here == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", encode_query_value(here))
    };
    Redirect::to(&target).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_gated_and_plumbing_is_not() {
        for page in ["/", "/fleet", "/users", "/nonexistent"] {
            assert!(!is_public(page), "{page}");
        }
        for open in [
            "/login",
            "/api/login",
            "/pkg/fleetdeck.js",
            "/healthz",
            "/readyz",
        ] {
            assert!(is_public(open), "{open}");
        }
    }

    #[test]
    fn the_return_path_is_encoded() {
        assert_eq!(
            encode_query_value("/fleet?server=a b&x=1"),
            "/fleet%3Fserver%3Da%20b%26x%3D1"
        );
    }
}
