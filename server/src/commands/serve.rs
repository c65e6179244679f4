//! `fleetdeck serve`: open the store, make sure an admin exists, serve until a signal.

use crate::access::UserDirectory;
use crate::access::login_throttle::{LoginThrottle, ThrottleLimits};
use crate::config::ServeArgs;
use crate::control::FleetControl;
use crate::store::Store;
use crate::web::{self, AllowedOrigins, AppState, WebSettings};
use anyhow::Context;
use leptos::prelude::LeptosOptions;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_sessions::session_store::ExpiredDeletion;

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs, database_url: &str) -> anyhow::Result<()> {
    let store = Store::open(database_url).await?;
    tracing::info!(backend = store.backend().as_str(), "store ready");

    let users = UserDirectory::new(store.clone());
    if let Some(created) = users
        .ensure_initial_admin(args.admin_password.as_deref())
        .await
        .context("cannot create the first admin (FLEETDECK_ADMIN_PASSWORD)")?
    {
        match created.generated_password {
            Some(password) => tracing::warn!(
                "created the first admin: user \"admin\", password \"{password}\" (shown once: change it under Users)"
            ),
            None => {
                tracing::info!("created the first admin \"admin\" with FLEETDECK_ADMIN_PASSWORD")
            }
        }
    }

    let pkg_js = args.site_root.join("pkg/fleetdeck.js");
    if !pkg_js.is_file() {
        tracing::warn!(
            site_root = %args.site_root.display(),
            "{} is missing: pages will render but not hydrate (build with `cargo leptos build`)",
            pkg_js.display()
        );
    }

    let throttle = Arc::new(LoginThrottle::new(ThrottleLimits::default()));
    let control = Arc::new(FleetControl::new(store.clone(), throttle.clone()));
    let leptos_options = LeptosOptions::builder()
        .output_name("fleetdeck")
        .site_root(args.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(args.addr)
        .build();
    let state = AppState {
        leptos_options,
        store: store.clone(),
        control,
    };
    let settings = WebSettings {
        secure_cookie: args.secure_cookie,
        session_idle: Duration::from_secs(args.session_idle_minutes * 60),
        allowed_origins: AllowedOrigins::new(args.allowed_origins),
    };
    let router = web::router(state, store.session_backend(), settings);

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!("dashboard at http://{local}");

    let housekeeping = tokio::spawn(housekeeping(store.clone(), throttle));
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving HTTP")?;
    housekeeping.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Periodic clean-up: expired sessions, idle throttle keys.
async fn housekeeping(store: Store, throttle: Arc<LoginThrottle>) {
    let sessions = store.session_backend();
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        throttle.forget_idle();
        if let Err(error) = sessions.delete_expired().await {
            tracing::warn!(%error, "cannot delete expired sessions");
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
