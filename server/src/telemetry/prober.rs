//! Active health probes: every interval, an MCP ping to every instance (its round trip feeds
//! the health tracker, with hysteresis), and a scrape of the instance's `metrics_url` when it
//! has one. A dead instance stops receiving calls even when nobody is calling it.

use crate::registry::instance::HealthChange;
use crate::registry::{FleetEvent, Health, Instance, Registry, ServerEntry};
use crate::store::Store;
use crate::telemetry::scrape;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Probes running at once at most: a fleet of slow or hanging instances delays its own
/// next cycle rather than piling up connections.
const MAX_CONCURRENT_PROBES: usize = 64;
/// Moments an interval's probes start at: each starts its share of the fleet together.
/// Twenty keep every burst small (50 probes at a thousand instances) without waking the
/// runtime for each probe (which, measured at a thousand instances, doubled the idle CPU).
const SLOTS_PER_INTERVAL: usize = 20;

/// Probes every instance every `interval` until the task is dropped, spread over the
/// interval (a thousand instances at 5 s are 50 probes every 250 ms, not a thousand at
/// once). Health changes are published to the dashboard and recorded as fleet events.
pub async fn run(registry: Arc<Registry>, store: Store, interval: Duration) {
    // No redirects: whatever answers at a metrics_url cannot send the scraper elsewhere.
    let client = match reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        // One connection kept per host between scrapes (instances sharing a host take
        // turns), not one per instance of it.
        .pool_max_idle_per_host(1)
        .build()
    {
        Ok(client) => Some(client),
        Err(error) => {
            // Never a default client (it would follow redirects): pings go on, scrapes stop.
            tracing::error!(%error, "cannot build the metrics scraper's HTTP client; scrapes are off");
            None
        }
    };
    // Scraped values outlive a missed scrape or two, not more.
    let stale_after = (interval * 3).max(Duration::from_secs(30));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_PROBES));
    let probing: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut cycle = tokio::time::Instant::now();
    loop {
        let instances: Vec<_> = registry
            .servers()
            .into_iter()
            .flat_map(|server| {
                server
                    .instances()
                    .into_iter()
                    .map(move |instance| (server.clone(), instance))
            })
            .collect();
        let offsets = spread(instances.len(), interval);
        let mut slot_start = None;
        for ((server, instance), offset) in instances.into_iter().zip(offsets) {
            if slot_start != Some(offset) {
                slot_start = Some(offset);
                tokio::time::sleep_until(cycle + offset).await;
            }
            // An instance whose last probe is still out (a hanging ping) is skipped.
            if !lock(&probing).insert(instance.id.clone()) {
                continue;
            }
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (registry, store, client, probing) = (
                registry.clone(),
                store.clone(),
                client.clone(),
                probing.clone(),
            );
            tokio::spawn(async move {
                probe(&registry, &store, &client, &server, &instance, stale_after).await;
                lock(&probing).remove(&instance.id);
                drop(slot);
            });
        }
        // The next cycle starts an interval after this one, or now if this one overran.
        cycle = (cycle + interval).max(tokio::time::Instant::now());
        tokio::time::sleep_until(cycle).await;
    }
}

/// When each of `count` probes starts within `interval`: in [`SLOTS_PER_INTERVAL`] evenly
/// spaced moments from 0, the probes shared out in order (fewer instances, fewer slots).
pub fn spread(count: usize, interval: Duration) -> impl Iterator<Item = Duration> {
    let slots = count.clamp(1, SLOTS_PER_INTERVAL);
    let per_slot = count.div_ceil(slots).max(1);
    let step = interval / u32::try_from(slots).unwrap_or(u32::MAX);
    (0..count).map(move |n| step * u32::try_from(n / per_slot).unwrap_or(u32::MAX))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One probe of one instance: the health changes real calls caused since the last probe,
/// then a ping, then a scrape.
pub async fn probe(
    registry: &Registry,
    store: &Store,
    client: &Option<reqwest::Client>,
    server: &ServerEntry,
    instance: &Arc<Instance>,
    scrape_stale_after: Duration,
) {
    for change in instance.take_health_changes() {
        report(registry, store, instance, change).await;
    }
    let timeout = server.settings.probe_timeout;
    let before = instance.health();
    let started = Instant::now();
    let outcome = instance
        .upstream
        .ping(timeout)
        .await
        .map(|()| started.elapsed())
        .map_err(|error| error.to_string());
    if let Err(error) = &outcome {
        tracing::debug!(instance = %instance.id, %error, "probe failed");
    }
    let changed = instance.record_probe(Instant::now(), outcome);
    if let (Some(url), Some(client)) = (&instance.metrics_url, client) {
        let reading = scrape::fetch(
            client,
            url,
            server.settings.scrape.in_flight_metric.as_deref(),
            timeout,
        )
        .await;
        if let Err(error) = &reading {
            tracing::debug!(instance = %instance.id, %error, "scrape failed");
        }
        instance.record_scrape(reading.map_err(|e| e.to_string()), scrape_stale_after);
    }
    if let Some(after) = changed {
        let (_, reason, _, _) = instance.health_detail(Instant::now());
        report(
            registry,
            store,
            instance,
            HealthChange {
                before,
                after,
                reason,
            },
        )
        .await;
    }
}

/// Tells the dashboard about a health change and records it as a fleet event (except an
/// instance's first `healthy`: that for every instance at start would bury what matters).
async fn report(registry: &Registry, store: &Store, instance: &Instance, change: HealthChange) {
    let HealthChange {
        before,
        after,
        reason,
    } = change;
    registry.publish(FleetEvent::Instance {
        server: instance.server.clone(),
        instance: instance.id.clone(),
    });
    if before == Health::Unknown && after == Health::Healthy {
        return;
    }
    let (_, _, latency_ms, error_rate) = instance.health_detail(Instant::now());
    tracing::info!(instance = %instance.id, from = before.as_str(), to = after.as_str(), %reason, "health changed");
    let message = format!(
        "{}: {} → {} ({reason})",
        instance.id,
        before.as_str(),
        after.as_str()
    );
    let evidence = serde_json::json!({
        "from": before.as_str(),
        "to": after.as_str(),
        "reason": reason,
        "probe_round_trip_ms": latency_ms,
        "error_rate": error_rate,
    });
    if let Err(error) = store
        .insert_fleet_event(
            crate::store::now_ms(),
            "health",
            &instance.server,
            Some(&instance.id),
            &message,
            &evidence,
        )
        .await
    {
        tracing::warn!(%error, "cannot record a health event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_spread_over_the_interval_in_small_bursts() {
        let at: Vec<Duration> = spread(1000, Duration::from_secs(5)).collect();
        assert_eq!(at.len(), 1000);
        assert_eq!(at[0], Duration::ZERO);
        assert_eq!(at[49], Duration::ZERO);
        assert_eq!(at[50], Duration::from_millis(250));
        assert_eq!(at[999], Duration::from_millis(4750));
        // Twenty moments of fifty probes: no burst of the whole fleet.
        let moments: std::collections::BTreeMap<Duration, usize> =
            at.iter().fold(Default::default(), |mut counts, t| {
                *counts.entry(*t).or_default() += 1;
                counts
            });
        assert_eq!(moments.len(), 20);
        assert!(moments.values().all(|&n| n == 50));
        // A small fleet: one probe per moment, evenly apart.
        let few: Vec<Duration> = spread(4, Duration::from_secs(2)).collect();
        assert_eq!(few, [0, 500, 1000, 1500].map(Duration::from_millis));
        assert_eq!(spread(0, Duration::from_secs(5)).count(), 0);
        assert_eq!(
            spread(1, Duration::from_secs(5)).collect::<Vec<_>>(),
            [Duration::ZERO]
        );
    }
}
