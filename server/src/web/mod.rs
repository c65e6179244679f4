//! The HTTP surface: the Leptos dashboard (pages and server functions), sessions, CSRF and
//! login gates, health endpoints and metrics; and the guards around every route (allowed
//! hosts, security headers).

pub mod assets;
mod audit_export;
mod charts;
mod client_address;
mod csrf;
mod events;
mod health;
mod host_allowlist;
mod login_gate;
mod metrics;
mod roi_export;
mod security_headers;
mod session_touch;

pub use csrf::AllowedOrigins;
pub use host_allowlist::AllowedHosts;
pub use security_headers::SecurityHeaders;

use crate::access::client_address::TrustedProxies;
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
    /// The audit log's queue depth and drops, read at each scrape.
    pub audit: crate::telemetry::metrics::AuditStatus,
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
    /// Proxies whose `X-Forwarded-For` names the client (for login throttling).
    pub trusted_proxies: TrustedProxies,
    /// The site's static assets (hashed or not).
    pub assets: assets::SiteAssets,
}

/// The logged-in user of a request's session, if any (for routes outside Leptos that the
/// login gate alone does not cover: downloads and images answer 401 rather than redirect).
async fn session_user(
    state: &AppState,
    session: &tower_sessions::Session,
) -> Option<app::wire::SessionUser> {
    let stamp = app::auth::ssr::session_stamp(session)
        .await
        .ok()
        .flatten()?;
    state.control.session_user(stamp).await.ok().flatten()
}

/// What every render of a page gets as context: the control plane, and the request's CSP
/// nonce as Leptos' own.
fn page_context(control: SharedControlPlane) -> impl Fn() + Clone + Send + 'static {
    move || {
        provide_context(control.clone());
        security_headers::provide_request_nonce();
    }
}

/// Builds the whole router.
pub fn router(state: AppState, sessions: SessionBackend, settings: WebSettings) -> Router {
    let routes = generate_route_list(app::App);
    let control = state.control.clone();
    let options = state.leptos_options.clone();
    let stylesheet = settings.assets.stylesheet.clone();
    let shell = move |options: LeptosOptions| app::shell(options, stylesheet.clone());
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
        .merge(settings.assets.pkg_routes())
        .leptos_routes_with_context(&state, routes, page_context(control.clone()), {
            let shell = shell.clone();
            move || shell(options.clone())
        })
        // The 404 page is rendered too: with the same nonce as its header.
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(page_context(control), shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            login_gate::require_login,
        ))
        // Inside the session layer, so that the touch is saved with the session.
        .layer(axum::middleware::from_fn_with_state(
            session_touch::TouchPolicy::for_idle(settings.session_idle),
            session_touch::touch_active_session,
        ))
        // Outside the gate: the gate reads the session.
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            settings.trusted_proxies,
            client_address::tag_client_address,
        ))
        .layer(axum::middleware::from_fn_with_state(
            settings.allowed_origins,
            csrf::refuse_foreign_origin,
        ))
        // Merged after the layers: scrapers neither log in nor get a session.
        .merge(metrics::routes())
        .layer(axum::middleware::from_fn(assets::revalidate_by_default))
        // Pages, data, charts and /metrics are compressed for clients that accept gzip;
        // event streams are not (each event must go out as it happens), nor answers that
        // are already compressed (the release build's precompressed assets).
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// Guards every route of `router` (the dashboard's and the gateway's alike): requests for
/// a host not allowed are refused, and every response carries the security headers.
pub fn guard_every_route(router: Router, hosts: AllowedHosts, headers: SecurityHeaders) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            host_allowlist::refuse_unknown_host,
        ))
        // Outermost: a refusal carries the headers too.
        .layer(axum::middleware::from_fn_with_state(
            headers,
            security_headers::add_security_headers,
        ))
}
