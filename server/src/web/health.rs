//! `/healthz` (the process answers) and `/readyz` (and its database does too).

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database unreachable: {error}\n"),
        ),
    }
}
