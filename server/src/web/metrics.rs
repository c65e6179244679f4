//! `/metrics`: the Prometheus exposition, for scrapers (no login).

use super::AppState;
use crate::telemetry::metrics::CONTENT_TYPE;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    // Result caches apply their pending maintenance first, so that entries and evictions
    // are current rather than as of the last cache operation.
    for server in state.registry.servers() {
        server.results.stats().await;
    }
    let body = state.metrics.render(&state.registry, (state.audit)());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}
