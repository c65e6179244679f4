//! `fleetdeck serve`: open the store, make sure an admin exists, serve until a signal.

use crate::access::UserDirectory;
use crate::access::audit_log::{AuditLog, AuditSettings};
use crate::access::bearer_throttle::BearerThrottle;
use crate::access::client_address::TrustedProxies;
use crate::access::control::AccessControl;
use crate::access::login_throttle::{LoginThrottle, ThrottleLimits};
use crate::cluster::{self, ChangeFeed, Replica};
use crate::config::ServeArgs;
use crate::config::cli::TraceArgs;
use crate::config::fleet::FleetFile;
use crate::control::FleetControl;
use crate::gateway::dispatch::Dispatcher;
use crate::gateway::endpoint::{self, BearerGate, EndpointSettings};
use crate::gateway::record::CallRecorder;
use crate::registry::Registry;
use crate::store::{Backend, Store};
use crate::telemetry::capacity::CapacityPolicy;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::prober;
use crate::telemetry::sampler::{self, SamplerSettings};
use crate::telemetry::series::SeriesBook;
use crate::telemetry::traces;
use crate::web::assets::SiteAssets;
use crate::web::{self, AllowedHosts, AllowedOrigins, AppState, SecurityHeaders, WebSettings};
use anyhow::Context;
use axum::serve::ListenerExt;
use leptos::prelude::LeptosOptions;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The site's file names (cargo-leptos' `output-name`).
const OUTPUT_NAME: &str = "fleetdeck";
use tower_sessions::session_store::ExpiredDeletion;

/// How often the store is checked for access changes made elsewhere (CLI, other replicas).
const ACCESS_WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Runs the server until SIGINT or SIGTERM, with the fleet of `--fleet` if given.
pub async fn run(args: ServeArgs, database_url: &str) -> anyhow::Result<()> {
    let fleet = match &args.fleet {
        Some(path) => FleetFile::load(path)?,
        None => FleetFile::default(),
    };
    run_fleet(args, database_url, fleet, None).await
}

/// Runs the server over `fleet`; `ready` learns the bound address once it listens.
pub async fn run_fleet(
    args: ServeArgs,
    database_url: &str,
    fleet: FleetFile,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    raise_open_file_limit();
    // Parsed once, before anything starts: a bad entry stops the server here.
    let trusted_proxies = TrustedProxies::parse(args.trusted_proxies.iter().map(String::as_str))
        .context("--trusted-proxy (FLEETDECK_TRUSTED_PROXIES)")?;
    let store = Store::open_with(database_url, args.database_max_connections).await?;
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

    let assets = SiteAssets::read(&args.site_root, OUTPUT_NAME).map_err(anyhow::Error::msg)?;
    if !assets.hashed() && !args.site_root.join("pkg/fleetdeck.js").is_file() {
        tracing::warn!(
            site_root = %args.site_root.display(),
            "the site's pkg/ holds no fleetdeck.js: pages will render but not hydrate (build with `cargo leptos build`)",
        );
    }

    let throttle = Arc::new(LoginThrottle::new(ThrottleLimits::default()));
    // Cancelled on SIGINT/SIGTERM: ends open streams (dashboards' events, MCP responses) so
    // that the graceful shutdown does not wait for them forever.
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    // Listening starts before anything is read from the store: a change committed while
    // this replica loads is heard (and applied again, harmlessly) rather than missed.
    let changes = store
        .listen()
        .await
        .context("listening to the other replicas' changes")?;
    // Rows written before instance URLs were redacted in the audit log.
    match store.redact_audited_instance_urls().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "redacted instance URLs in older audit rows"),
        Err(error) => tracing::warn!(%error, "cannot redact instance URLs in older audit rows"),
    }
    let registry = Registry::from_fleet(&fleet);
    registry.set_allow_link_local(args.allow_link_local_instances);
    // What operators changed while running: instances they added, admin states.
    cluster::apply_stored_fleet(&registry, &store)
        .await
        .context("reading the stored fleet state")?;
    let access = AccessControl::load(store.clone(), fleet.access_policy())
        .await
        .context("loading assistants and permissions")?;
    let declared: Vec<_> = fleet
        .assistants
        .iter()
        .map(|a| (a.name.get_ref().clone(), a.tier, a.key.get_ref().clone()))
        .collect();
    access
        .import_declared(&declared)
        .await
        .context("importing the fleet file's assistants")?;
    tracing::info!(
        assistants = access.assistants().len(),
        revision = access.revision(),
        "access control ready"
    );
    let (audit, audit_writer) = AuditLog::start(store.clone(), AuditSettings::default());
    let trace_writer = start_traces(&args.traces, &store);
    let otlp = match args
        .traces
        .otlp_endpoint
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        Some(endpoint) => Some(
            traces::otlp::start(endpoint, traces::collector().clone())
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let series = Arc::new(SeriesBook::new());
    let feed = Arc::new(ChangeFeed::default());
    let control = Arc::new(
        FleetControl::new(
            store.clone(),
            throttle.clone(),
            registry.clone(),
            access.clone(),
        )
        .with_series(series.clone())
        .with_change_feed(feed.clone()),
    );
    let leptos_options = LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(args.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(args.addr)
        .hash_files(assets.hashed())
        // An absolute path: Leptos joins it to the executable's directory, which keeps it.
        .hash_file(assets.hash_file.as_ref().map_or_else(
            || web::assets::HASH_FILE.into(),
            |p| p.to_string_lossy().into(),
        ))
        .build();
    let metrics = Metrics::new().with_max_tool_series(args.metrics_max_tool_series);
    let metrics = Arc::new(match store.backend() {
        Backend::Postgres => metrics.with_change_feed(feed.clone()),
        Backend::Sqlite => metrics,
    });
    let state = AppState {
        leptos_options,
        store: store.clone(),
        control,
        registry: registry.clone(),
        shutdown: shutdown.clone(),
        metrics: metrics.clone(),
        series: series.clone(),
        audit: {
            let audit = audit.clone();
            Arc::new(move || audit.reading())
        },
    };
    let settings = WebSettings {
        secure_cookie: args.secure_cookie,
        session_idle: Duration::from_secs_f64(args.session_idle_minutes * 60.0),
        allowed_origins: AllowedOrigins::new(args.allowed_origins),
        trusted_proxies: trusted_proxies.clone(),
        assets,
    };
    let dispatcher = Arc::new(
        Dispatcher::new(
            registry.clone(),
            access.clone(),
            CallRecorder::new(audit, metrics.clone(), series.clone()),
        )
        .with_event_store(store.clone()),
    );
    let bearer_throttle = Arc::new(BearerThrottle::default());
    let mcp = endpoint::router(
        dispatcher.clone(),
        BearerGate {
            access: access.clone(),
            throttle: bearer_throttle.clone(),
            proxies: trusted_proxies.clone(),
            metrics: metrics.clone(),
        },
        EndpointSettings {
            max_body_bytes: args.max_body_bytes,
            allowed_hosts: args.allowed_hosts.clone(),
            shutdown: shutdown.clone(),
        },
    );
    let security_headers = SecurityHeaders::for_process(state.leptos_options.reload_port);
    // The MCP endpoint sits outside the dashboard's session, login and CSRF layers, but
    // inside the host allowlist and the security headers, like every route.
    let router = web::guard_every_route(
        web::router(state, store.session_backend(), settings).merge(mcp),
        AllowedHosts::new(args.allowed_hosts.iter().map(String::as_str)),
        security_headers,
    );

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!("dashboard at http://{local}");
    tracing::info!(
        servers = fleet.servers.len(),
        "gateway at http://{local}/mcp"
    );
    if let Some(ready) = ready {
        let _ = ready.send(local);
    }

    let housekeeping = tokio::spawn(housekeeping(
        store.clone(),
        throttle,
        bearer_throttle,
        access.clone(),
    ));
    // Changes from the CLI or another replica reach this one within the interval.
    let access_watch = tokio::spawn(
        access
            .clone()
            .watch(ACCESS_WATCH_INTERVAL, shutdown.child_token()),
    );
    // Other replicas' admin changes (PostgreSQL only) are applied as they commit.
    let follower = changes.map(|changes| {
        tokio::spawn(cluster::follow_changes(
            changes,
            Replica {
                store: store.clone(),
                registry: registry.clone(),
                access: access.clone(),
                feed,
            },
            shutdown.child_token(),
        ))
    });
    let prober = tokio::spawn(prober::run(
        registry.clone(),
        store.clone(),
        Duration::from_secs(args.probe_interval_s),
    ));
    let sampler = tokio::spawn(sampler::run(
        registry.clone(),
        series.clone(),
        store.clone(),
        SamplerSettings {
            retention: Duration::from_secs(u64::from(args.series_retention_days) * 86_400),
            capacity: CapacityPolicy::default(),
        },
    ));
    // Learn the tools before the first assistant asks.
    let warm = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.all_tools().await }
    });
    // No Nagle delay on answers: clients that reuse connections would otherwise wait for
    // delayed ACKs (about 40 ms a call).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await
    .context("serving HTTP")?;
    housekeeping.abort();
    prober.abort();
    sampler.abort();
    warm.abort();
    // Every call answered is in the audit queue: write what is left before the store closes.
    audit_writer.flush_and_stop().await;
    trace_writer.flush_and_stop().await;
    if let Some(otlp) = otlp {
        otlp.flush_and_stop().await;
    }
    let _ = access_watch.await;
    if let Some(follower) = follower {
        let _ = follower.await;
    }
    for instance in registry.servers().iter().flat_map(|s| s.instances()) {
        instance.upstream.reset().await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Applies the trace settings to the process's collector and starts persisting its kept
/// traces into `store`.
fn start_traces(args: &TraceArgs, store: &Store) -> traces::persist::TraceWriter {
    let collector = traces::collector();
    collector.set_policy(traces::PersistPolicy {
        slow: Duration::from_millis(args.trace_slow_ms),
        sample: args.trace_sample,
    });
    traces::persist::start(
        store.clone(),
        collector.clone(),
        traces::persist::PersistSettings {
            max_age: Duration::from_secs(args.trace_retention_days * 86_400),
            max_count: args.trace_retention_max,
            ..traces::persist::PersistSettings::default()
        },
    )
}

/// Periodic clean-up: expired sessions, idle throttle and rate-limit keys.
async fn housekeeping(
    store: Store,
    throttle: Arc<LoginThrottle>,
    bearer_throttle: Arc<BearerThrottle>,
    access: Arc<AccessControl>,
) {
    let sessions = store.session_backend();
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        throttle.forget_idle();
        bearer_throttle.forget_idle();
        access.rate_limits().retain_recent();
        if let Err(error) = sessions.delete_expired().await {
            tracing::warn!(%error, "cannot delete expired sessions");
        }
    }
}

/// Raises the soft limit of open files to the hard one. A replica keeps a connection to
/// each instance for probes and scrapes, besides its clients, dashboards and database:
/// a thousand instances pass the usual soft limit of 1,024, which the hard limit (often
/// 524,288 under systemd) does not stop. A failure is logged, not fatal.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::debug!(before, after = limit.rlim_cur, "raised the open-file limit");
        } else {
            tracing::warn!(
                limit = before,
                "cannot raise the open-file limit; a large fleet may run out of connections"
            );
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
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
