//! CSRF defence: a state-changing request must come from this site's own pages.
//!
//! Browsers send `Origin` on every cross-origin POST (and `Sec-Fetch-Site`), so a request
//! whose origin is neither this host nor an allowed origin is refused with 403. Requests
//! with neither header come from non-browser clients, which carry no ambient cookies to
//! abuse. The session cookie is also `SameSite=Strict`; this check does not rely on it.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Origins (`scheme://host[:port]`) accepted besides the request's own host, e.g. the
/// public URL when a proxy rewrites `Host`.
#[derive(Clone, Debug, Default)]
pub struct AllowedOrigins(Arc<Vec<String>>);

impl AllowedOrigins {
    /// From configured origins; trailing slashes are ignored, case is not significant.
    pub fn new(origins: impl IntoIterator<Item = String>) -> Self {
        AllowedOrigins(Arc::new(
            origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        ))
    }
}

/// Whether the request's headers show it was sent by a page of this site.
fn is_same_site(headers: &HeaderMap, allowed: &AllowedOrigins) -> Result<(), String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("<not text>").to_ascii_lowercase();
        let own = ["http://", "https://"].iter().any(|scheme| {
            !host.is_empty() && origin == format!("{scheme}{}", host.to_ascii_lowercase())
        });
        return if own || allowed.0.contains(&origin) {
            Ok(())
        } else {
            Err(origin)
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("cross-site") => Err("a cross-site page".into()),
        _ => Ok(()),
    }
}

pub(super) async fn refuse_foreign_origin(
    State(allowed): State<AllowedOrigins>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    match is_same_site(request.headers(), &allowed) {
        Ok(()) => next.run(request).await,
        Err(origin) => {
            tracing::warn!(%origin, path = %request.uri().path(), "cross-origin request refused");
            (
                StatusCode::FORBIDDEN,
                format!("refused: the request came from {origin}, not from this site\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                k.parse::<axum::http::HeaderName>().unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn own_origin_is_accepted_on_either_scheme() {
        let none = AllowedOrigins::default();
        assert!(
            is_same_site(
                &headers(&[
                    ("host", "127.0.0.1:3000"),
                    ("origin", "http://127.0.0.1:3000")
                ]),
                &none
            )
            .is_ok()
        );
        assert!(
            is_same_site(
                &headers(&[("host", "Deck.Example"), ("origin", "https://deck.example")]),
                &none
            )
            .is_ok()
        );
    }

    #[test]
    fn foreign_and_null_origins_are_refused() {
        let none = AllowedOrigins::default();
        let h = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(is_same_site(&h, &none), Err("http://evil.example".into()));
        let h = headers(&[("host", "127.0.0.1:3000"), ("origin", "null")]);
        assert!(is_same_site(&h, &none).is_err());
        // Same host, other port: another origin.
        let h = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3001"),
        ]);
        assert!(is_same_site(&h, &none).is_err());
    }

    #[test]
    fn configured_origins_are_accepted() {
        let allowed = AllowedOrigins::new(["https://deck.example.com/".to_string()]);
        let h = headers(&[
            ("host", "10.0.0.5:3000"),
            ("origin", "https://deck.example.com"),
        ]);
        assert!(is_same_site(&h, &allowed).is_ok());
    }

    #[test]
    fn without_origin_only_a_cross_site_fetch_is_refused() {
        let none = AllowedOrigins::default();
        assert!(is_same_site(&headers(&[("host", "h")]), &none).is_ok());
        assert!(
            is_same_site(
                &headers(&[("host", "h"), ("sec-fetch-site", "same-origin")]),
                &none
            )
            .is_ok()
        );
        assert!(
            is_same_site(
                &headers(&[("host", "h"), ("sec-fetch-site", "cross-site")]),
                &none
            )
            .is_err()
        );
    }
}
