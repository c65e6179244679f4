//! Active health probes: an MCP ping to every instance at an interval, with hysteresis in
//! the instance's health tracker, so that a dead instance stops receiving calls even when
//! nobody is calling it.

use crate::registry::{FleetEvent, Registry};
use std::sync::Arc;
use std::time::Duration;

/// Probes every instance every `interval`, each ping bounded by `timeout`.
pub async fn run(registry: Arc<Registry>, interval: Duration, timeout: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let probes = registry.servers().into_iter().flat_map(|s| s.instances()).map(|instance| {
            let registry = registry.clone();
            async move {
                let outcome = instance.upstream.ping(timeout).await;
                if let Err(error) = &outcome {
                    tracing::debug!(instance = %instance.id, %error, "probe failed");
                }
                if let Some(health) = instance.record_probe(outcome.is_ok()) {
                    tracing::info!(instance = %instance.id, health = health.as_str(), "health changed");
                    registry.publish(FleetEvent::Instance { server: instance.server.clone(), instance: instance.id.clone() });
                }
            }
        });
        futures::future::join_all(probes).await;
    }
}
