//! The HTTP surface: the Leptos dashboard (pages and server functions), sessions, CSRF and
//! login gates, health endpoints and metrics.

mod audit_export;
mod charts;
mod csrf;
mod events;
mod health;
mod login_gate;
mod metrics;
mod roi_export;

pub use csrf::AllowedOrigins;

use crate::store::{SessionBackend, Store};
use app::control::SharedControlPlane;
use axum::Router;
use axum::extract::FromRef;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::time::Duration;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "fleetdeck_session";

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Leptos' site options (site root, output name).
    pub leptos_options: LeptosOptions,
    /// The store, for health checks.
    pub store: Store,
    /// The dashboard's control plane.
    pub control: SharedControlPlane,
    /// The fleet, for the live event stream.
    pub registry: std::sync::Arc<crate::registry::Registry>,
    /// Cancelled at shutdown: live streams end.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The gateway's metrics, served at `/metrics`.
    pub metrics: std::sync::Arc<crate::telemetry::metrics::Metrics>,
    /// The per-minute series, for charts.
    pub series: std::sync::Arc<crate::telemetry::series::SeriesBook>,
    /// The audit log's queue depth, read at each scrape.
    pub audit_queue_depth: crate::telemetry::metrics::AuditQueueDepth,
}

/// Cookie and origin settings of the dashboard.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Mark the session cookie `Secure` (serve behind https).
    pub secure_cookie: bool,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// Origins accepted for mutating requests besides the request's own host.
    pub allowed_origins: AllowedOrigins,
}

/// The logged-in user of a request's session, if any (for routes outside Leptos that the
/// login gate alone does not cover: downloads and images answer 401 rather than redirect).
async fn session_user(
    state: &AppState,
    session: &tower_sessions::Session,
) -> Option<app::wire::SessionUser> {
    let id = session
        .get::<i64>(app::auth::ssr::USER_ID_KEY)
        .await
        .ok()
        .flatten()?;
    state.control.session_user(id).await.ok().flatten()
}

/// Builds the whole router.
pub fn router(state: AppState, sessions: SessionBackend, settings: WebSettings) -> Router {
    let routes = generate_route_list(app::App);
    let control = state.control.clone();
    let options = state.leptos_options.clone();
    let sessions = SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(settings.secure_cookie)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::try_from(settings.session_idle)
                .unwrap_or(tower_sessions::cookie::time::Duration::hours(12)),
        ));

    Router::new()
        .merge(health::routes())
        .route("/api/events", axum::routing::get(events::stream))
        .route("/api/audit.csv", axum::routing::get(audit_export::export))
        .route("/charts/{chart}", axum::routing::get(charts::chart))
        .route("/api/roi.csv", axum::routing::get(roi_export::export))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(control.clone()),
            move || app::shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            app::shell,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            login_gate::require_login,
        ))
        // Outside the gate: the gate reads the session.
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            settings.allowed_origins,
            csrf::refuse_foreign_origin,
        ))
        // Merged after the layers: scrapers neither log in nor get a session.
        .merge(metrics::routes())
        .with_state(state)
}
