//! `/healthz` (the process answers) and `/readyz` (and its database does too). Both answer
//! anyone, so their bodies say no more than ready or not; why goes to the log.

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

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    readiness(&state.store).await
}

/// Ready when the store answers.
async fn readiness(store: &crate::store::Store) -> (StatusCode, &'static str) {
    match store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn not_ready_says_no_more_than_that() {
        let (store, _dir) = temp_store().await;
        assert_eq!(readiness(&store).await, (StatusCode::OK, "ready\n"));
        store.close().await;
        assert_eq!(
            readiness(&store).await,
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        );
    }
}
