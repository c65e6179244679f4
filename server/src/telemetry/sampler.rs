//! The telemetry clock: every second it samples each instance's utilisation into the
//! per-minute series; when a minute completes it writes it to the store and asks the
//! capacity advisor whether a server should scale; now and then it trims old minutes.

use crate::registry::{AdminState, FleetEvent, Health, Instance, Registry, ServerEntry};
use crate::store::{Store, now_ms};
use crate::telemetry::capacity::{
    Advice, CapacityAdvisor, CapacityPolicy, LoadInputs, utilisation,
};
use crate::telemetry::series::{SeriesBook, SeriesKey, SeriesPoint};
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

/// Feeds the servers' complete minutes to the advisor; returns the advice it gives.
pub fn advise(
    advisor: &mut CapacityAdvisor,
    registry: &Registry,
    complete: &[(SeriesKey, SeriesPoint)],
) -> Vec<Advice> {
    complete
        .iter()
        .filter(|(key, _)| !key.server.is_empty() && key.instance.is_empty() && key.tool.is_empty())
        .filter_map(|(key, point)| {
            let utilisation = point.utilisation?;
            let instances = registry.server(&key.server).map_or(0, |s| {
                s.instances().iter().filter(|i| taking_calls(i)).count()
            });
            advisor.observe(&key.server, point.minute_ms, utilisation, instances)
        })
        .collect()
}

/// The evidence stored with advice: the minutes, the instances, the thresholds.
fn evidence(advice: &Advice, policy: &CapacityPolicy) -> serde_json::Value {
    serde_json::json!({
        "minutes": advice.evidence.iter().map(|(minute_ms, u)| serde_json::json!({
            "minute_ms": minute_ms,
            "utilisation": u,
        })).collect::<Vec<_>>(),
        "instances": advice.instances,
        "high": policy.high,
        "low": policy.low,
    })
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
            for advice in advise(&mut advisor, &registry, &complete) {
                tracing::info!(server = %advice.server, advice = advice.direction.as_str(), "{}", advice.message);
                if let Err(error) = store
                    .insert_fleet_event(
                        at_ms,
                        advice.direction.as_str(),
                        &advice.server,
                        None,
                        &advice.message,
                        &evidence(&advice, &settings.capacity),
                    )
                    .await
                {
                    tracing::warn!(%error, "cannot record capacity advice");
                }
                registry.publish(FleetEvent::Advice {
                    server: advice.server.clone(),
                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fleet::FleetFile;
    use crate::telemetry::capacity::Direction;

    fn registry() -> Arc<Registry> {
        let fleet = FleetFile::parse(
            "[[server]]\nname = \"search\"\nmax_in_flight = 4\n\
             [[server.instance]]\nid = \"search-1\"\nurl = \"http://127.0.0.1:9/mcp\"\n\
             [[server.instance]]\nid = \"search-2\"\nurl = \"http://127.0.0.1:9/mcp\"\n",
            std::path::Path::new("fleet.toml"),
        )
        .unwrap();
        Registry::from_fleet(&fleet)
    }

    #[test]
    fn busy_slots_become_server_minutes_and_five_busy_minutes_become_advice() {
        let registry = registry();
        let book = SeriesBook::new();
        let (_, one) = registry.instance("search-1").unwrap();
        let now = Instant::now();
        // search-1 has all 4 slots taken, search-2 none: the server is 50% busy.
        let permits: Vec<_> = (0..4).map(|_| one.try_admit(now).unwrap()).collect();
        let t0 = 1_700_000_040_000; // a minute's start
        sample(&registry, &book, t0, now);
        sample(&registry, &book, t0 + 1000, now);
        drop(permits);
        let complete = book.take_complete(t0 + 60_000);
        let value = |key: SeriesKey| {
            complete
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, p)| p.utilisation)
        };
        assert_eq!(value(SeriesKey::instance("search", "search-1")), Some(1.0));
        assert_eq!(value(SeriesKey::instance("search", "search-2")), Some(0.0));
        assert_eq!(value(SeriesKey::server("search")), Some(0.5));

        let mut advisor = CapacityAdvisor::new(CapacityPolicy::default());
        let busy_minute = |m: i64| {
            let mut point = complete
                .iter()
                .find(|(k, _)| *k == SeriesKey::server("search"))
                .unwrap()
                .clone();
            point.1.minute_ms = t0 + m * 60_000;
            point.1.utilisation = Some(0.95);
            point
        };
        for m in 0..4 {
            assert!(advise(&mut advisor, &registry, &[busy_minute(m)]).is_empty());
        }
        let advice = advise(&mut advisor, &registry, &[busy_minute(4)]);
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].direction, Direction::Up);
        assert_eq!(advice[0].instances, 2);
        let evidence = evidence(&advice[0], &CapacityPolicy::default());
        assert_eq!(evidence["minutes"].as_array().unwrap().len(), 5);
        assert_eq!(evidence["minutes"][4]["utilisation"], 0.95);
    }
}
