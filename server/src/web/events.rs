//! `GET /api/events`: server-sent events telling open dashboards what changed in the fleet
//! (instance state, breakers, tools, caches), so pages refresh without a reload. Browsers'
//! `EventSource` reconnects by itself when the stream drops.
//!
//! A stream lives longer than the request that opened it, so it re-checks its session
//! every [`SESSION_RECHECK`]: it reloads the session record from the store and asks for
//! the session's user again, and ends once the session is gone (logout, idle expiry) or no
//! longer valid (revoked, user disabled or deleted). The browser's reconnect then gets 401.

use super::AppState;
use crate::registry::FleetEvent;
use app::auth::ssr::{SharedControlPlane, session_stamp};
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

/// How often an open stream checks that its session is still valid.
const SESSION_RECHECK: Duration = Duration::from_secs(2);

pub(super) async fn stream(State(state): State<AppState>, session: Session) -> Response {
    let Some(user) = super::session_user(&state, &session).await else {
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    };
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
    let session_ended = Box::pin(async move {
        let mut tick = tokio::time::interval(SESSION_RECHECK);
        tick.tick().await;
        loop {
            tick.tick().await;
            if !still_valid(&state.control, &session).await {
                tracing::info!(username = %user.username, "live events ended: the session is no longer valid");
                return;
            }
        }
    });
    let stop = futures::future::select(
        Box::pin(state.shutdown.clone().cancelled_owned()),
        session_ended,
    );
    Sse::new(hello.chain(updates).take_until(stop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Whether `session`, as the store has it now, still belongs to a valid login. A store
/// that cannot answer keeps the stream (the page's own requests tell the user anyway).
async fn still_valid(control: &SharedControlPlane, session: &Session) -> bool {
    if let Err(error) = session.load().await {
        tracing::warn!(%error, "live events: cannot reload the session");
        return true;
    }
    let stamp = match session_stamp(session).await {
        Ok(Some(stamp)) => stamp,
        Ok(None) => return false,
        Err(error) => {
            tracing::warn!(%error, "live events: cannot read the session");
            return true;
        }
    };
    match control.session_user(stamp).await {
        Ok(user) => user.is_some(),
        Err(_) => true,
    }
}

fn resync() -> String {
    serde_json::to_string(&FleetEvent::Cache).unwrap_or_default()
}
