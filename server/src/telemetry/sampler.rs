//! The telemetry clock: every second it samples each instance's utilisation into the
//! per-minute series; when a minute completes it writes it to the store and asks the
//! capacity advisor whether a server should scale; now and then it trims old minutes.

use crate::registry::{AdminState, FleetEvent, Health, Instance, Registry, ServerEntry};
use crate::store::{Store, now_ms};
use crate::telemetry::capacity::{CapacityAdvisor, CapacityPolicy, LoadInputs, utilisation};
use crate::telemetry::series::{SeriesBook, SeriesKey};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often utilisation is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often old minutes are deleted.
const TRIM_EVERY: Duration = Duration::from_secs(3600);

/// The sampler's settings.
#[derive(Clone, Copy, Debug)]
pub struct SamplerSettings {
    /// Minutes and events older than this are deleted.
    pub retention: Duration,
    /// When to advise scaling.
    pub capacity: CapacityPolicy,
}

/// An instance's utilisation now: its slots (own or scraped in-flight count), scraped CPU
/// against the server's `scrape.cpu_cores`, scraped memory against `scrape.memory_limit_mb`.
pub fn instance_utilisation(server: &ServerEntry, instance: &Instance, now: Instant) -> f64 {
    let signals = instance.load_signals(now);
    let scrape = &server.settings.scrape;
    utilisation(&LoadInputs {
        in_flight: f64::from(instance.routing_in_flight(now)),
        max_in_flight: instance.max_in_flight,
        cpu_cores: signals.and_then(|s| s.cpu_cores),
        cpu_limit: scrape.cpu_cores.unwrap_or(1.0),
        resident_bytes: signals.and_then(|s| s.resident_bytes),
        memory_limit_bytes: scrape.memory_limit_mb.map(|mb| mb as f64 * 1024.0 * 1024.0),
    })
}

/// Whether the balancer may route to it (ignoring its breaker and slots).
pub fn taking_calls(instance: &Instance) -> bool {
    instance.admin_state() == AdminState::Active && instance.health() != Health::Unhealthy
}

/// Samples utilisation into every server's and instance's series at `at_ms`.
pub fn sample(registry: &Registry, book: &SeriesBook, at_ms: i64, now: Instant) {
    for server in registry.servers() {
        let mut busy = Vec::new();
        for instance in server.instances() {
            let value = instance_utilisation(&server, &instance, now);
            book.sample_utilisation(
                at_ms,
                SeriesKey::instance(&server.name, &instance.id),
                value,
            );
            if taking_calls(&instance) {
                busy.push(value);
            }
        }
        // A server with no instance taking calls has no utilisation, rather than 0%: that
        // would advise scaling down a server that is down.
        if !busy.is_empty() {
            let mean = busy.iter().sum::<f64>() / busy.len() as f64;
            book.sample_utilisation(at_ms, SeriesKey::server(&server.name), mean);
        }
    }
}

/// Runs until the task is dropped.
pub async fn run(
    registry: Arc<Registry>,
    book: Arc<SeriesBook>,
    store: Store,
    settings: SamplerSettings,
) {
    let mut advisor = CapacityAdvisor::new(settings.capacity);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_trim: Option<Instant> = None;
    loop {
        tick.tick().await;
        let (at_ms, now) = (now_ms(), Instant::now());
        sample(&registry, &book, at_ms, now);
        let complete = book.take_complete(at_ms);
        if !complete.is_empty() {
            for (key, point) in &complete {
                let is_server =
                    !key.server.is_empty() && key.instance.is_empty() && key.tool.is_empty();
                let (Some(value), true) = (point.utilisation, is_server) else {
                    continue;
                };
                let instances = registry.server(&key.server).map_or(0, |s| {
                    s.instances().iter().filter(|i| taking_calls(i)).count()
                });
                if let Some(advice) =
                    advisor.observe(&key.server, point.minute_ms, value, instances)
                {
                    tracing::info!(server = %advice.server, advice = advice.direction.as_str(), "{}", advice.message);
                    let evidence = serde_json::json!({
                        "minutes": advice.evidence.iter().map(|(minute_ms, u)| serde_json::json!({
                            "minute_ms": minute_ms,
                            "utilisation": u,
                        })).collect::<Vec<_>>(),
                        "instances": advice.instances,
                        "high": settings.capacity.high,
                        "low": settings.capacity.low,
                    });
                    if let Err(error) = store
                        .insert_fleet_event(
                            at_ms,
                            advice.direction.as_str(),
                            &advice.server,
                            None,
                            &advice.message,
                            &evidence,
                        )
                        .await
                    {
                        tracing::warn!(%error, "cannot record capacity advice");
                    }
                    registry.publish(FleetEvent::Advice {
                        server: advice.server.clone(),
                    });
                }
            }
            if let Err(error) = store.insert_series(&complete).await {
                // The minutes are lost for charts, but nothing else depends on them.
                tracing::warn!(%error, points = complete.len(), "cannot store series minutes");
            }
        }
        if last_trim.is_none_or(|at| now.duration_since(at) >= TRIM_EVERY) {
            last_trim = Some(now);
            let before = at_ms - i64::try_from(settings.retention.as_millis()).unwrap_or(i64::MAX);
            match store.trim_series(before).await {
                Ok(0) => {}
                Ok(rows) => {
                    tracing::info!(rows, "deleted series minutes and events past retention")
                }
                Err(error) => tracing::warn!(%error, "cannot trim series"),
            }
        }
    }
}
