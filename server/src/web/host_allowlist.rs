//! DNS-rebinding defence: every request must name this server in `Host`.
//!
//! A page on `evil.example` can make the browser resolve that name to 127.0.0.1 and then
//! talk to a Fleetdeck on loopback as if it were same-origin; its requests still carry
//! `Host: evil.example`. Requests are therefore served only when `Host` (HTTP/2:
//! `:authority`) is a loopback name (`localhost`, `127.0.0.1`, `::1`, any port) or one of
//! the configured `--allowed-host` entries: `host` (any port) or `host:port` (that port).
//! Anything else gets 403 with a plain-text reason, on every route: dashboard, `/api/*`,
//! `/metrics`, `/healthz`, `/readyz` and `/mcp` (whose rmcp service checks the same list
//! again).

use crate::telemetry::logging::LogLimiter;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Host names accepted with any port, whatever is configured.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// One accepted host: a lower-case name (IPv6 without brackets) and maybe a port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostEntry {
    name: String,
    port: Option<u16>,
}

/// The `Host` values this server answers to.
#[derive(Clone, Debug)]
pub struct AllowedHosts(Arc<Vec<HostEntry>>);

impl AllowedHosts {
    /// Loopback plus `configured` entries (`host` or `host:port`; blank ones ignored).
    pub fn new<'a>(configured: impl IntoIterator<Item = &'a str>) -> Self {
        let loopback = LOOPBACK_NAMES.iter().map(|name| HostEntry {
            name: (*name).to_string(),
            port: None,
        });
        let configured = configured
            .into_iter()
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                parse_authority(entry).unwrap_or_else(|| HostEntry {
                    name: normalise(entry),
                    port: None,
                })
            });
        AllowedHosts(Arc::new(loopback.chain(configured).collect()))
    }

    /// Whether a request naming `authority` (`host[:port]`) may be served.
    fn allows(&self, authority: &str) -> bool {
        let Some(asked) = parse_authority(authority) else {
            return false;
        };
        self.0.iter().any(|entry| {
            entry.name == asked.name && entry.port.is_none_or(|port| asked.port == Some(port))
        })
    }
}

/// A host name as compared: lower case, IPv6 brackets removed.
fn normalise(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// `host[:port]` as an entry, `None` when it is not a valid authority (or holds userinfo).
fn parse_authority(text: &str) -> Option<HostEntry> {
    let authority = text.parse::<axum::http::uri::Authority>().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    Some(HostEntry {
        name: normalise(authority.host()),
        port: authority.port_u16(),
    })
}

/// The authority a request names: its `Host` header, else (HTTP/2) the URI's.
fn requested_authority<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    match headers.get(header::HOST) {
        Some(host) => host.to_str().ok(),
        None => uri.authority().map(|a| a.as_str()),
    }
}

/// Refuses requests whose `Host` is not an allowed host.
pub async fn refuse_unknown_host(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    match requested_authority(request.headers(), request.uri()) {
        Some(authority) if allowed.allows(authority) => next.run(request).await,
        asked => {
            let shown: String = asked
                .unwrap_or("")
                .chars()
                .take(100)
                .filter(|c| !c.is_control())
                .collect();
            // Anyone can send these: logged bounded, at most once a minute.
            static REFUSALS: LogLimiter = LogLimiter::every(std::time::Duration::from_secs(60));
            let path = crate::sanitize::bounded(request.uri().path(), 256);
            REFUSALS.note(|| {
                tracing::warn!(host = %shown, %path, "request for a host not allowed refused (DNS rebinding?)");
            });
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "refused: this server does not answer to host {shown:?}; an operator can allow it with --allowed-host (FLEETDECK_ALLOWED_HOSTS)\n"
                ),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_pass_with_any_port() {
        let hosts = AllowedHosts::new([]);
        for ok in [
            "localhost",
            "localhost:3000",
            "LOCALHOST:1",
            "127.0.0.1:3000",
            "127.0.0.1",
            "[::1]:3000",
            "[::1]",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:3000",
            "127.0.0.2:3000",
            "localhost.evil.example",
            "user@localhost:3000",
            "",
            "local host",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
    }

    #[test]
    fn configured_hosts_pass_with_their_port_or_any() {
        let hosts =
            AllowedHosts::new(["deck.example.com", "Ops.Example:8443", " ", "[2001:db8::1]"]);
        assert!(hosts.allows("deck.example.com"));
        assert!(hosts.allows("DECK.example.com:443"));
        assert!(hosts.allows("ops.example:8443"));
        assert!(!hosts.allows("ops.example:8444"));
        assert!(!hosts.allows("ops.example"));
        assert!(hosts.allows("[2001:db8::1]:3000"));
        assert!(!hosts.allows("other.example.com"));
        assert!(hosts.allows("localhost:3000"), "loopback stays allowed");
    }

    #[test]
    fn the_uri_authority_stands_in_for_a_missing_host_header() {
        let uri: Uri = "http://deck.example.com/fleet".parse().unwrap();
        assert_eq!(
            requested_authority(&HeaderMap::new(), &uri),
            Some("deck.example.com")
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "localhost:3000".parse().unwrap());
        assert_eq!(requested_authority(&headers, &uri), Some("localhost:3000"));
        assert_eq!(
            requested_authority(&HeaderMap::new(), &"/fleet".parse().unwrap()),
            None
        );
    }
}
