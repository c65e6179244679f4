//! Active health probes: every interval, an MCP ping to every instance (its round trip feeds
//! the health tracker, with hysteresis), and a scrape of the instance's `metrics_url` when it
//! has one. A dead instance stops receiving calls even when nobody is calling it.

use crate::registry::instance::HealthChange;
use crate::registry::{FleetEvent, Health, Instance, Registry, ServerEntry};
use crate::store::Store;
use crate::telemetry::scrape;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Probes every instance every `interval` until the task is dropped. Health changes are
/// published to the dashboard and recorded as fleet events.
pub async fn run(registry: Arc<Registry>, store: Store, interval: Duration) {
    // No redirects: whatever answers at a metrics_url cannot send the scraper elsewhere.
    let client = match reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
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
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let probes = registry.servers().into_iter().flat_map(|server| {
            server
                .instances()
                .into_iter()
                .map(move |instance| (server.clone(), instance))
        });
        let probes = probes.map(|(server, instance)| {
            let (registry, store, client) = (registry.clone(), store.clone(), client.clone());
            async move { probe(&registry, &store, &client, &server, &instance, stale_after).await }
        });
        futures::future::join_all(probes).await;
    }
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
