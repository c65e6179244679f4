//! `GET /charts/<chart>.svg?server=&instance=&tool=&minutes=`: a chart of one series as an
//! SVG image, for the Overview, Fleet and Caches pages (which reload it to stay live).

use super::AppState;
use crate::store::now_ms;
use crate::telemetry::charts::{self, ChartKind};
use crate::telemetry::series::{self, SeriesKey};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

/// The longest period a chart covers: the default retention of the series.
const MAX_MINUTES: u32 = 7 * 24 * 60;

/// Which series, over how long.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChartParams {
    /// Server name (none: the whole fleet).
    server: Option<String>,
    /// Instance id (with `server`).
    instance: Option<String>,
    /// Upstream tool name (with `server`).
    tool: Option<String>,
    /// Minutes before now (default 60).
    minutes: Option<u32>,
    /// Ignored: pages change it to reload the image.
    #[serde(rename = "t")]
    _reload: Option<String>,
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

/// The handler.
pub(super) async fn chart(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    params: Result<Query<ChartParams>, QueryRejection>,
) -> Response {
    if super::session_user(&state, &session).await.is_none() {
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    }
    let Some(kind) = name.strip_suffix(".svg") else {
        return (StatusCode::NOT_FOUND, "charts are <name>.svg\n").into_response();
    };
    let kind: ChartKind = match kind.parse() {
        Ok(kind) => kind,
        Err(error) => return (StatusCode::NOT_FOUND, format!("{error}\n")).into_response(),
    };
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_request(&rejection.body_text()),
    };
    let minutes = params.minutes.unwrap_or(60);
    if !(5..=MAX_MINUTES).contains(&minutes) {
        return bad_request(&format!("minutes must be 5..={MAX_MINUTES}"));
    }
    let key = match (params.server, params.instance, params.tool) {
        (None, None, None) => SeriesKey::fleet(),
        (Some(server), None, None) => SeriesKey::server(&server),
        (Some(server), Some(instance), None) => SeriesKey::instance(&server, &instance),
        (Some(server), None, Some(tool)) => SeriesKey::tool(&server, &tool),
        _ => return bad_request("give a server, and with it at most one of instance or tool"),
    };
    let now = now_ms();
    // The oldest minute whose start is still on the chart's x axis.
    let from = series::minute_of(now) - i64::from(minutes - 1) * 60_000;
    let stored = match state.store.series(&key, from).await {
        Ok(points) => points,
        Err(error) => {
            tracing::error!(%error, "cannot read series for a chart");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the series cannot be read; see the server log\n",
            )
                .into_response();
        }
    };
    let points = series::merge(stored, state.series.pending(&key));
    let svg = charts::render(kind, &points, now, minutes);
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response()
}
