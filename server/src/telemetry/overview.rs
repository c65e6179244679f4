//! The fleet at a glance, for the Overview page: counts from the registry, rates over the
//! last minutes from the per-minute series, and the newest fleet events.

use crate::gateway::breaker::BreakerState;
use crate::registry::{AdminState, Health, Registry};
use crate::store::{FleetEventRecord, Store, StoreError, now_ms};
use crate::telemetry::sampler::{instance_utilisation, taking_calls};
use crate::telemetry::series::{self, SeriesBook, SeriesKey, SeriesPoint};
use app::wire::{FleetEventView, OverviewView, ServerGlance};
use std::time::Instant;

/// Minutes the Overview's rates cover.
pub const WINDOW_MINUTES: u32 = 5;
/// Events the Overview lists.
const EVENTS: u32 = 12;

/// Totals of a series over a window.
#[derive(Debug, Default, PartialEq)]
pub struct WindowTotals {
    /// Calls.
    pub calls: u64,
    /// Errors.
    pub errors: u64,
    /// Cacheable calls.
    pub cache_lookups: u64,
    /// Cache hits.
    pub cache_hits: u64,
    /// The highest per-minute p99 (ms).
    pub p99_ms: Option<f64>,
}

impl WindowTotals {
    /// Sums `points`.
    pub fn of(points: &[SeriesPoint]) -> Self {
        points
            .iter()
            .fold(WindowTotals::default(), |t, p| WindowTotals {
                calls: t.calls + p.calls,
                errors: t.errors + p.errors,
                cache_lookups: t.cache_lookups + p.cache_lookups,
                cache_hits: t.cache_hits + p.cache_hits,
                p99_ms: match (t.p99_ms, p.p99_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
            })
    }

    fn error_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.errors as f64 / self.calls as f64)
    }

    fn hit_rate(&self) -> Option<f64> {
        (self.cache_lookups > 0).then(|| self.cache_hits as f64 / self.cache_lookups as f64)
    }
}

/// A stored event as the dashboard shows it.
pub fn event_view(record: FleetEventRecord) -> FleetEventView {
    let evidence = serde_json::from_str::<serde_json::Value>(&record.evidence)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(record.evidence);
    FleetEventView {
        id: record.id,
        at_ms: record.at_ms,
        kind: record.kind,
        server: record.server,
        instance: record.instance,
        message: record.message,
        evidence,
    }
}

/// A series over the window: stored minutes and the ones still in memory.
async fn window(
    store: &Store,
    book: &SeriesBook,
    key: &SeriesKey,
    from_ms: i64,
) -> Result<Vec<SeriesPoint>, StoreError> {
    Ok(series::merge(
        store.series(key, from_ms).await?,
        book.pending(key),
    ))
}

/// Computes the Overview; `started_ms` is when this replica started (Unix ms), so that a
/// young replica's rates are not diluted over minutes it did not see.
pub async fn overview(
    registry: &Registry,
    store: &Store,
    book: &SeriesBook,
    started_ms: i64,
) -> Result<OverviewView, StoreError> {
    let (now, at_ms) = (Instant::now(), now_ms());
    // The window ends now and starts WINDOW_MINUTES whole minutes before the current one.
    let from_ms = series::minute_of(at_ms) - i64::from(WINDOW_MINUTES) * 60_000;
    let mut by_health = Health::ALL.map(|h| (h.as_str().to_string(), 0u32));
    let mut by_admin = AdminState::ALL.map(|a| (a.as_str().to_string(), 0u32));
    let (mut open, mut half_open) = (0, 0);
    let mut servers = Vec::new();
    for server in registry.servers() {
        let mut glance = ServerGlance {
            name: server.name.clone(),
            instances: 0,
            taking_calls: 0,
            degraded: 0,
            open_breakers: 0,
            calls: 0,
            error_rate: None,
            p99_ms: None,
            hit_rate: None,
            utilisation: None,
        };
        let mut busy = Vec::new();
        for instance in server.instances() {
            glance.instances += 1;
            let health = instance.health();
            let admin = instance.admin_state();
            by_health[Health::ALL.iter().position(|h| *h == health).unwrap_or(0)].1 += 1;
            by_admin[AdminState::ALL
                .iter()
                .position(|a| *a == admin)
                .unwrap_or(0)]
            .1 += 1;
            match instance.breaker_snapshot(now).state {
                BreakerState::Open => {
                    open += 1;
                    glance.open_breakers += 1;
                }
                BreakerState::HalfOpen => half_open += 1,
                BreakerState::Closed => {}
            }
            if health == Health::Degraded {
                glance.degraded += 1;
            }
            if taking_calls(&instance) {
                glance.taking_calls += 1;
                busy.push(instance_utilisation(&server, &instance, now));
            }
        }
        glance.utilisation =
            (!busy.is_empty()).then(|| busy.iter().sum::<f64>() / busy.len() as f64);
        let totals = WindowTotals::of(
            &window(store, book, &SeriesKey::server(&server.name), from_ms).await?,
        );
        glance.calls = totals.calls;
        glance.error_rate = totals.error_rate();
        glance.p99_ms = totals.p99_ms;
        glance.hit_rate = totals.hit_rate();
        servers.push(glance);
    }
    let fleet_points = window(store, book, &SeriesKey::fleet(), from_ms).await?;
    // Minutes stored before this replica started still count, from their own start.
    let covered_from = match fleet_points.first() {
        Some(first) => from_ms.max(started_ms.min(first.minute_ms)),
        None => from_ms.max(started_ms),
    };
    let seconds = ((at_ms - covered_from) as f64 / 1000.0).max(1.0);
    let fleet = WindowTotals::of(&fleet_points);
    let events = store.fleet_events(false, EVENTS).await?;
    let advice = store.fleet_events(true, EVENTS).await?;
    Ok(OverviewView {
        window_minutes: WINDOW_MINUTES,
        by_health: by_health.to_vec(),
        by_admin: by_admin.to_vec(),
        open_breakers: open,
        half_open_breakers: half_open,
        calls_per_s: fleet.calls as f64 / seconds,
        error_rate: fleet.error_rate(),
        p99_ms: fleet.p99_ms,
        hit_rate: fleet.hit_rate(),
        servers,
        advice: advice.into_iter().map(event_view).collect(),
        events: events.into_iter().map(event_view).collect(),
    })
}
