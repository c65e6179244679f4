//! `GET /api/audit.csv`: the Audit page's CSV export, with the page's filters and every
//! matching row (up to [`MAX_EXPORT_ROWS`]), streamed in chunks read from the store.
//!
//! Query: `kind=calls|admin`, `assistant`, `tool`, `outcome`, `who`, `from_ms`, `to_ms`
//! (empty values mean "any"; `page` and `page_size` are accepted and ignored). Any logged-in
//! dashboard user may export; anonymous requests get 401, bad queries 400. Recorded tool
//! arguments are exported for operators and admins only (as on the Audit page); a viewer's
//! export has the digest and an empty `arguments` column.

use super::AppState;
use crate::store::{AuditCursor, MAX_CHUNK, Store, StoreError};
use app::wire::{
    AdminActionEntry, AuditKind, AuditQuery, Role, ToolCallEntry, format_timestamp_utc,
};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

/// The most rows one export holds; more are cut off, and the export says so.
pub const MAX_EXPORT_ROWS: usize = 100_000;

/// Response header present when the export was cut off: `<exported> of <matching>`.
pub const TRUNCATED_HEADER: &str = "x-fleetdeck-truncated";

/// The export's query string, as sent (validated into an [`AuditQuery`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportParams {
    kind: Option<String>,
    who: Option<String>,
    assistant: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
    from_ms: Option<String>,
    to_ms: Option<String>,
    // The page's own paging travels in its URL; an export covers every page.
    #[allow(dead_code)]
    page: Option<String>,
    #[allow(dead_code)]
    page_size: Option<String>,
}

/// A present, non-empty value.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Parses a time bound in Unix ms (empty = none).
fn parse_ms(name: &str, value: Option<String>) -> Result<Option<i64>, String> {
    non_empty(value)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("{name} must be a time in Unix milliseconds, got {v:?}"))
        })
        .transpose()
}

impl ExportParams {
    /// The store query these parameters ask for (page fields unused by exports).
    fn into_query(self) -> Result<AuditQuery, String> {
        let kind = match non_empty(self.kind).as_deref() {
            None | Some("calls") => AuditKind::Calls,
            Some("admin") => AuditKind::Admin,
            Some(other) => return Err(format!("kind must be calls or admin, got {other:?}")),
        };
        Ok(AuditQuery {
            kind,
            who: non_empty(self.who),
            assistant: non_empty(self.assistant),
            tool: non_empty(self.tool),
            outcome: non_empty(self.outcome),
            from_ms: parse_ms("from_ms", self.from_ms)?,
            to_ms: parse_ms("to_ms", self.to_ms)?,
            page: 1,
            page_size: 1,
        })
    }
}

/// A 400 with a one-line reason.
fn bad_request(message: &str) -> Response {
    let line = message.lines().next().unwrap_or("bad request");
    (StatusCode::BAD_REQUEST, format!("{line}\n")).into_response()
}

/// The handler.
pub(super) async fn export(
    State(state): State<AppState>,
    session: Session,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Response {
    let Some(user) = super::session_user(&state, &session).await else {
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    };
    let query = match params {
        Ok(Query(params)) => params.into_query(),
        Err(rejection) => Err(rejection.body_text()),
    };
    let query = match query {
        Ok(query) => query,
        Err(message) => return bad_request(&message),
    };
    // Counting first validates the filters (a 400 before any byte is streamed) and tells
    // whether the export will be cut off.
    let total = match state.store.audit_total(&query).await {
        Ok(total) => total,
        Err(StoreError::InvalidQuery(why)) => return bad_request(&why.to_string()),
        Err(error) => {
            tracing::error!(%error, "audit export: cannot count the matching rows");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the audit log cannot be read; see the server log\n",
            )
                .into_response();
        }
    };
    tracing::info!(user = %user.username, kind = ?query.kind, rows = total, "audit export");

    let name = match query.kind {
        AuditKind::Calls => "calls",
        AuditKind::Admin => "admin",
    };
    let body = Body::from_stream(futures::stream::unfold(
        Export::new(
            state.store.clone(),
            query,
            total,
            MAX_EXPORT_ROWS,
            user.role,
        ),
        |mut export| async move {
            let piece = export.next_piece().await?;
            Some((piece, export))
        },
    ));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"fleetdeck-audit-{name}.csv\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Audit data is not for shared caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if total > MAX_EXPORT_ROWS as u64
        && let Ok(value) = HeaderValue::from_str(&format!("{MAX_EXPORT_ROWS} of {total}"))
    {
        headers.insert(TRUNCATED_HEADER, value);
    }
    response
}

/// An export in progress: reads chunk after chunk and encodes each into CSV text.
struct Export {
    store: Store,
    query: AuditQuery,
    /// Who downloads: decides whether recorded arguments are included.
    reader: Role,
    total: u64,
    cap: usize,
    after: Option<AuditCursor>,
    exported: usize,
    header_sent: bool,
    finished: bool,
}

impl Export {
    /// An export of at most `cap` rows out of `total` matching ones, for `reader`.
    fn new(store: Store, query: AuditQuery, total: u64, cap: usize, reader: Role) -> Self {
        Export {
            store,
            query,
            reader,
            total,
            cap,
            after: None,
            exported: 0,
            header_sent: false,
            finished: false,
        }
    }

    /// The next piece of the body, or `None` when done. A read error ends the body early
    /// (the download fails visibly rather than looking complete).
    async fn next_piece(&mut self) -> Option<Result<String, StoreError>> {
        if self.finished {
            return None;
        }
        let mut out = String::new();
        if !self.header_sent {
            self.header_sent = true;
            let header = match self.query.kind {
                AuditKind::Calls => CALL_HEADER.as_slice(),
                AuditKind::Admin => ADMIN_HEADER.as_slice(),
            };
            push_csv_record(&mut out, header);
        }
        let room = self.cap - self.exported;
        let limit = u32::try_from(room).unwrap_or(MAX_CHUNK).min(MAX_CHUNK);
        let reader = self.reader;
        let read = match self.query.kind {
            AuditKind::Calls => self
                .store
                .tool_calls_chunk(&self.query, self.after, limit)
                .await
                .map(|chunk| {
                    for row in &chunk.rows {
                        push_csv_record(&mut out, &call_fields(&row.clone().for_reader(reader)));
                    }
                    (chunk.rows.len(), chunk.next)
                }),
            AuditKind::Admin => self
                .store
                .admin_audit_chunk(&self.query, self.after, limit)
                .await
                .map(|chunk| {
                    for row in &chunk.rows {
                        push_csv_record(&mut out, &admin_fields(row));
                    }
                    (chunk.rows.len(), chunk.next)
                }),
        };
        let (rows, next) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(%error, exported = self.exported, "audit export cut short");
                self.finished = true;
                return Some(Err(error));
            }
        };
        self.exported += rows;
        self.after = next;
        if next.is_none() {
            self.finished = true;
        } else if self.exported >= self.cap {
            self.finished = true;
            // A full last chunk may also have been the last row: only say so if more match.
            match self.more_after(next).await {
                Ok(false) => return Some(Ok(out)),
                Ok(true) => {}
                Err(error) => {
                    tracing::error!(%error, exported = self.exported, "audit export cut short");
                    return Some(Err(error));
                }
            }
            let matching = self.total.max(self.exported as u64 + 1);
            push_csv_record(
                &mut out,
                &[format!(
                    "# truncated: the first {} of {matching} matching rows; narrow the filters",
                    self.exported
                )],
            );
        }
        Some(Ok(out))
    }

    /// Whether any matching row comes after `after`.
    async fn more_after(&self, after: Option<AuditCursor>) -> Result<bool, StoreError> {
        Ok(match self.query.kind {
            AuditKind::Calls => !self
                .store
                .tool_calls_chunk(&self.query, after, 1)
                .await?
                .rows
                .is_empty(),
            AuditKind::Admin => !self
                .store
                .admin_audit_chunk(&self.query, after, 1)
                .await?
                .rows
                .is_empty(),
        })
    }
}

const CALL_HEADER: [&str; 15] = [
    "time_utc",
    "at_ms",
    "assistant",
    "server",
    "tool",
    "instance",
    "outcome",
    "cache_hit",
    "duration_ms",
    "attempts",
    "trace_id",
    "args_digest",
    "arguments",
    "error",
    "id",
];

const ADMIN_HEADER: [&str; 7] = [
    "time_utc", "at_ms", "actor", "action", "target", "before", "after",
];

/// Unix ms as ISO 8601 in UTC with milliseconds, e.g. `2026-11-22T02:36:00.123Z`.
pub fn iso8601_utc(ms: i64) -> String {
    let seconds = format_timestamp_utc(ms).replacen(' ', "T", 1);
    format!("{seconds}.{:03}Z", ms.rem_euclid(1000))
}

/// The CSV fields of one tool call, in [`CALL_HEADER`] order.
fn call_fields(row: &ToolCallEntry) -> [String; 15] {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        iso8601_utc(row.at_ms),
        row.at_ms.to_string(),
        row.assistant.clone(),
        row.server.clone(),
        row.tool.clone(),
        text(&row.instance),
        row.outcome.clone(),
        row.cache_hit.to_string(),
        format!("{:.3}", row.duration_ms),
        row.attempts.to_string(),
        text(&row.trace_id),
        row.args_digest.clone(),
        text(&row.arguments),
        text(&row.error),
        row.id.to_string(),
    ]
}

/// The CSV fields of one admin action, in [`ADMIN_HEADER`] order.
fn admin_fields(row: &AdminActionEntry) -> [String; 7] {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        iso8601_utc(row.at_ms),
        row.at_ms.to_string(),
        row.actor.clone(),
        row.action.clone(),
        row.target.clone(),
        text(&row.before),
        text(&row.after),
    ]
}

/// Appends one CSV record (RFC 4180: comma separated, CRLF terminated).
pub fn push_csv_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_field(out, field.as_ref());
    }
    out.push_str("\r\n");
}

/// Appends one field: a leading `'` when a spreadsheet would take it for a formula
/// (`=`, `+`, `-`, `@`, tab, CR first), then quoted when it holds a comma, quote, CR or
/// LF, with quotes doubled.
pub fn push_csv_field(out: &mut String, field: &str) {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = field.contains([',', '"', '\r', '\n']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quoted {
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> String {
        let mut out = String::new();
        push_csv_record(&mut out, fields);
        out
    }

    #[test]
    fn plain_fields_are_written_as_they_are() {
        assert_eq!(record(&["a", "b c", "", "1.5"]), "a,b c,,1.5\r\n");
    }

    #[test]
    fn fields_with_separators_quotes_or_line_breaks_are_quoted() {
        assert_eq!(record(&["a,b"]), "\"a,b\"\r\n");
        assert_eq!(record(&[r#"say "hi""#]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(
            record(&["two\nlines", "cr\rhere"]),
            "\"two\nlines\",\"cr\rhere\"\r\n"
        );
        assert_eq!(
            record(&[r#"{"q":"x","n":1}"#]),
            "\"{\"\"q\"\":\"\"x\"\",\"\"n\"\":1}\"\r\n"
        );
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(record(&["=1+2"]), "'=1+2\r\n");
        assert_eq!(record(&["+1", "-1", "@SUM(A1)"]), "'+1,'-1,'@SUM(A1)\r\n");
        assert_eq!(record(&["\tx"]), "'\tx\r\n");
        // Both at once: the quote goes inside the quoted field.
        assert_eq!(
            record(&["=HYPERLINK(\"http://x\",\"y\")"]),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n"
        );
        // Only a leading sign counts.
        assert_eq!(record(&["a=b", "1-2"]), "a=b,1-2\r\n");
    }

    #[test]
    fn times_are_iso_8601_utc_with_milliseconds() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_795_833_360_123), "2026-11-28T02:36:00.123Z");
        assert_eq!(iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn query_strings_become_store_queries() {
        let params = |q: &str| {
            let params: ExportParams = serde_urlencoded_from(q);
            params.into_query()
        };
        let query = params("kind=admin&who=alice&from_ms=5&to_ms=&assistant=").unwrap();
        assert_eq!(query.kind, AuditKind::Admin);
        assert_eq!(query.who.as_deref(), Some("alice"));
        assert_eq!((query.from_ms, query.to_ms), (Some(5), None));
        assert_eq!(query.assistant, None);
        let query = params("tool=search__query&outcome=ok&page=3&page_size=50").unwrap();
        assert_eq!(query.kind, AuditKind::Calls);
        assert_eq!(query.tool.as_deref(), Some("search__query"));
        assert_eq!(
            params("kind=everything").unwrap_err(),
            "kind must be calls or admin, got \"everything\""
        );
        assert!(
            params("from_ms=yesterday")
                .unwrap_err()
                .starts_with("from_ms must be a time in Unix milliseconds")
        );
    }

    /// Deserialises a query string the way axum's `Query` does.
    fn serde_urlencoded_from(q: &str) -> ExportParams {
        let uri: axum::http::Uri = format!("/api/audit.csv?{q}").parse().unwrap();
        Query::<ExportParams>::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn unknown_parameters_are_refused() {
        let uri: axum::http::Uri = "/api/audit.csv?outcom=ok".parse().unwrap();
        let rejection = Query::<ExportParams>::try_from_uri(&uri).unwrap_err();
        assert!(
            rejection.body_text().contains("outcom"),
            "{}",
            rejection.body_text()
        );
    }

    mod over_http {
        use super::super::*;
        use crate::access::LoginThrottle;
        use crate::access::login_throttle::ThrottleLimits;
        use crate::config::fleet::FleetFile;
        use crate::control::FleetControl;
        use crate::gateway::record::{CallRecord, Outcome};
        use crate::registry::Registry;
        use crate::store::test_support::temp_store;
        use app::auth::ssr::USER_ID_KEY;
        use app::wire::Role;
        use axum::Router;
        use axum::extract::Path;
        use axum::http::Request;
        use leptos::prelude::LeptosOptions;
        use std::sync::Arc;
        use std::time::Duration;
        use tower::ServiceExt;
        use tower_sessions::SessionManagerLayer;

        const FLEET: &str = r#"
[[server]]
name = "search"

  [[server.instance]]
  id = "search-1"
  url = "http://127.0.0.1:9/mcp"
"#;

        /// The export route behind real sessions, plus a route that logs a user id in.
        async fn app() -> (Router, Store, tempfile::TempDir) {
            let (store, dir) = temp_store().await;
            let fleet = FleetFile::parse(FLEET, std::path::Path::new("fleet.toml")).unwrap();
            let registry = Registry::from_fleet(&fleet);
            let throttle = Arc::new(LoginThrottle::new(ThrottleLimits::default()));
            let state = AppState {
                leptos_options: LeptosOptions::builder().output_name("fleetdeck").build(),
                store: store.clone(),
                control: Arc::new(FleetControl::new(
                    store.clone(),
                    throttle,
                    registry.clone(),
                    crate::access::control::AccessControl::load(
                        store.clone(),
                        crate::access::policy::AccessPolicy::default(),
                    )
                    .await
                    .unwrap(),
                )),
                registry,
                shutdown: tokio_util::sync::CancellationToken::new(),
                metrics: Arc::new(crate::telemetry::metrics::Metrics::new()),
                series: Arc::new(crate::telemetry::series::SeriesBook::new()),
                audit: Arc::new(Default::default),
            };
            let router = Router::new()
                .route("/api/audit.csv", axum::routing::get(export))
                .route(
                    "/test/login/{id}",
                    axum::routing::get(|session: Session, Path(id): Path<i64>| async move {
                        session.insert(USER_ID_KEY, id).await.unwrap();
                    }),
                )
                .layer(SessionManagerLayer::new(store.session_backend()))
                .with_state(state);
            (router, store, dir)
        }

        async fn get(router: &Router, uri: &str, cookie: Option<&str>) -> Response {
            let mut request = Request::get(uri);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            router
                .clone()
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap()
        }

        async fn text(response: Response) -> String {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        }

        /// Logs a new viewer in and returns the session cookie.
        async fn viewer_cookie(router: &Router, store: &Store) -> String {
            login_cookie(router, store, "vera", Role::Viewer).await
        }

        /// Logs a new user with `role` in and returns the session cookie.
        async fn login_cookie(router: &Router, store: &Store, name: &str, role: Role) -> String {
            let user = store.insert_user(name, "hash", role, "test").await.unwrap();
            let response = get(router, &format!("/test/login/{}", user.id), None).await;
            let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
            cookie.split(';').next().unwrap().to_string()
        }

        fn call(at_ms: i64, assistant: &str, arguments: Option<&str>) -> CallRecord {
            CallRecord {
                at_ms,
                assistant: assistant.into(),
                server: "search".into(),
                tool: "query".into(),
                instance: Some("search-1".into()),
                outcome: Outcome::Ok,
                cache_hit: false,
                cacheable: false,
                duration: Duration::from_micros(1500),
                attempts: 1,
                trace_id: None,
                args_digest: "d".into(),
                arguments: arguments.map(str::to_string),
                error: None,
                known_tool: true,
            }
        }

        /// Every piece of an export, joined.
        async fn drain(mut export: Export) -> String {
            let mut body = String::new();
            while let Some(piece) = export.next_piece().await {
                body.push_str(&piece.unwrap());
            }
            body
        }

        #[tokio::test]
        async fn an_export_past_its_cap_ends_with_a_truncation_line() {
            let (_router, store, _dir) = app().await;
            let calls: Vec<_> = (1..=5).map(|t| call(t * 1000, "alpha", None)).collect();
            store.insert_tool_calls(&calls).await.unwrap();
            let query = AuditQuery {
                page: 1,
                page_size: 1,
                ..AuditQuery::default()
            };
            let body = drain(Export::new(store.clone(), query.clone(), 5, 3, Role::Admin)).await;
            let lines: Vec<_> = body.trim_end().split("\r\n").collect();
            assert_eq!(lines.len(), 1 + 3 + 1, "{body}");
            let times: Vec<_> = lines[1..4]
                .iter()
                .map(|l| l.split(',').nth(1).unwrap())
                .collect();
            assert_eq!(times, ["5000", "4000", "3000"]);
            assert_eq!(
                lines[4],
                "# truncated: the first 3 of 5 matching rows; narrow the filters"
            );
            // Exactly at the cap nothing is cut off, so nothing is said.
            let body = drain(Export::new(store, query, 5, 5, Role::Admin)).await;
            assert_eq!(body.trim_end().split("\r\n").count(), 1 + 5, "{body}");
            assert!(!body.contains("truncated"), "{body}");
        }

        #[tokio::test]
        async fn anonymous_exports_are_refused() {
            let (router, _store, _dir) = app().await;
            let response = get(&router, "/api/audit.csv", None).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }

        #[tokio::test]
        async fn a_viewer_downloads_the_filtered_calls_as_csv_without_recorded_arguments() {
            let (router, store, _dir) = app().await;
            let cookie = viewer_cookie(&router, &store).await;
            store
                .insert_tool_calls(&[
                    call(1_000, "alpha", Some(r#"{"q":"=cmd"}"#)),
                    call(2_000, "beta", None),
                    call(3_000, "alpha", None),
                ])
                .await
                .unwrap();
            let response = get(
                &router,
                "/api/audit.csv?assistant=alpha&page=2",
                Some(&cookie),
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
            let headers = response.headers().clone();
            assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
            assert_eq!(
                headers[header::CONTENT_DISPOSITION],
                "attachment; filename=\"fleetdeck-audit-calls.csv\""
            );
            assert!(headers.get(TRUNCATED_HEADER).is_none());
            let body = text(response).await;
            let lines: Vec<_> = body.split("\r\n").collect();
            assert_eq!(lines.len(), 4, "{body}");
            assert!(lines[0].starts_with("time_utc,at_ms,assistant,server,tool,"));
            assert_eq!(
                lines[1],
                "1970-01-01T00:00:03.000Z,3000,alpha,search,query,search-1,ok,false,1.500,1,,d,,,3"
            );
            // The call's arguments were recorded; a viewer gets the digest only.
            assert_eq!(
                lines[2],
                "1970-01-01T00:00:01.000Z,1000,alpha,search,query,search-1,ok,false,1.500,1,,d,,,1"
            );
            assert_eq!(lines[3], "");
            assert!(!body.contains("cmd"), "{body}");

            // An operator's export of the same rows has them.
            let operator = login_cookie(&router, &store, "otto", Role::Operator).await;
            let response = get(&router, "/api/audit.csv?assistant=alpha", Some(&operator)).await;
            let body = text(response).await;
            let lines: Vec<_> = body.split("\r\n").collect();
            assert_eq!(
                lines[2],
                "1970-01-01T00:00:01.000Z,1000,alpha,search,query,search-1,ok,false,1.500,1,,d,\"{\"\"q\"\":\"\"=cmd\"\"}\",,1"
            );
        }

        #[tokio::test]
        async fn admin_actions_export_under_their_own_name() {
            let (router, store, _dir) = app().await;
            let cookie = viewer_cookie(&router, &store).await;
            let response = get(&router, "/api/audit.csv?kind=admin&who=test", Some(&cookie)).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()[header::CONTENT_DISPOSITION],
                "attachment; filename=\"fleetdeck-audit-admin.csv\""
            );
            let body = text(response).await;
            let lines: Vec<_> = body.split("\r\n").collect();
            assert_eq!(lines[0], "time_utc,at_ms,actor,action,target,before,after");
            // Creating the viewer was itself recorded, by "test".
            assert_eq!(lines.len(), 3, "{body}");
            assert!(lines[1].contains(",test,"), "{body}");
        }

        #[tokio::test]
        async fn bad_queries_get_a_one_line_400() {
            let (router, store, _dir) = app().await;
            let cookie = viewer_cookie(&router, &store).await;
            for (uri, expected) in [
                ("/api/audit.csv?outcome=boom", "unknown outcome \"boom\""),
                ("/api/audit.csv?kind=both", "kind must be calls or admin"),
                ("/api/audit.csv?from_ms=soon", "from_ms must be a time"),
                ("/api/audit.csv?colour=red", "colour"),
            ] {
                let response = get(&router, uri, Some(&cookie)).await;
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
                let body = text(response).await;
                assert!(body.contains(expected), "{uri}: {body}");
                assert_eq!(body.trim_end().lines().count(), 1, "{uri}: {body}");
            }
        }
    }
}
