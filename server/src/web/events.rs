//! `GET /api/events`: server-sent events telling open dashboards what changed in the fleet
//! (instance state, breakers, tools, caches), so pages refresh without a reload. Browsers'
//! `EventSource` reconnects by itself when the stream drops.

use super::AppState;
use crate::registry::FleetEvent;
use app::auth::ssr::USER_ID_KEY;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tower_sessions::Session;

pub(super) async fn stream(State(state): State<AppState>, session: Session) -> Response {
    let user = match session.get::<i64>(USER_ID_KEY).await.ok().flatten() {
        Some(id) => state.control.session_user(id).await.ok().flatten(),
        None => None,
    };
    if user.is_none() {
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    }
    let hello = futures::stream::once(async {
        Ok::<_, Infallible>(Event::default().event("hello").data("{}"))
    });
    let updates = BroadcastStream::new(state.registry.subscribe()).map(|item| {
        let event = match item {
            Ok(event) => Event::default()
                .event("fleet")
                .json_data(&event)
                .unwrap_or_default(),
            // Too slow to keep up: tell the page to reload everything it shows.
            Err(BroadcastStreamRecvError::Lagged(_)) => {
                Event::default().event("fleet").data(resync())
            }
        };
        Ok::<_, Infallible>(event)
    });
    let stop = state.shutdown.clone().cancelled_owned();
    Sse::new(hello.chain(updates).take_until(stop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn resync() -> String {
    serde_json::to_string(&FleetEvent::Cache).unwrap_or_default()
}
