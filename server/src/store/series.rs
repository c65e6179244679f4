//! Per-minute series and fleet events: written by the telemetry sampler, read by charts and
//! the Overview, trimmed by age.

use super::{Store, StoreError, on_pool};
use crate::telemetry::series::{SeriesKey, SeriesPoint};

/// A fleet event as stored.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct FleetEventRecord {
    /// Row id.
    pub id: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// `health`, `scale_up` or `scale_down`.
    pub kind: String,
    /// The server.
    pub server: String,
    /// The instance, for health events.
    pub instance: Option<String>,
    /// What happened, in one sentence.
    pub message: String,
    /// Why (JSON).
    pub evidence: String,
}

#[derive(sqlx::FromRow)]
struct PointRow {
    minute_ms: i64,
    calls: i64,
    errors: i64,
    cache_lookups: i64,
    cache_hits: i64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    utilisation: Option<f64>,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn stored(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Writes complete minutes. A minute written again (a call that ended late, another
    /// replica's share) adds to the row: counts add up, percentiles keep the higher.
    pub async fn insert_series(
        &self,
        points: &[(SeriesKey, SeriesPoint)],
    ) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (key, p) in points {
                sqlx::query(
                    "INSERT INTO series_minutes (server, instance, tool, minute_ms, calls, errors, \
                     cache_lookups, cache_hits, p50_ms, p95_ms, p99_ms, utilisation) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (server, instance, tool, minute_ms) DO UPDATE SET \
                     calls = series_minutes.calls + excluded.calls, \
                     errors = series_minutes.errors + excluded.errors, \
                     cache_lookups = series_minutes.cache_lookups + excluded.cache_lookups, \
                     cache_hits = series_minutes.cache_hits + excluded.cache_hits, \
                     p50_ms = CASE WHEN series_minutes.p50_ms IS NULL OR excluded.p50_ms > series_minutes.p50_ms THEN excluded.p50_ms ELSE series_minutes.p50_ms END, \
                     p95_ms = CASE WHEN series_minutes.p95_ms IS NULL OR excluded.p95_ms > series_minutes.p95_ms THEN excluded.p95_ms ELSE series_minutes.p95_ms END, \
                     p99_ms = CASE WHEN series_minutes.p99_ms IS NULL OR excluded.p99_ms > series_minutes.p99_ms THEN excluded.p99_ms ELSE series_minutes.p99_ms END, \
                     utilisation = COALESCE(excluded.utilisation, series_minutes.utilisation)",
                )
                .bind(&key.server)
                .bind(&key.instance)
                .bind(&key.tool)
                .bind(p.minute_ms)
                .bind(stored(p.calls))
                .bind(stored(p.errors))
                .bind(stored(p.cache_lookups))
                .bind(stored(p.cache_hits))
                .bind(p.p50_ms)
                .bind(p.p95_ms)
                .bind(p.p99_ms)
                .bind(p.utilisation)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// One series' minutes from `from_ms` on, oldest first.
    pub async fn series(
        &self,
        key: &SeriesKey,
        from_ms: i64,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        let rows: Vec<PointRow> = on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT minute_ms, calls, errors, cache_lookups, cache_hits, p50_ms, p95_ms, p99_ms, \
             utilisation FROM series_minutes \
             WHERE server = $1 AND instance = $2 AND tool = $3 AND minute_ms >= $4 \
             ORDER BY minute_ms"
        )
        .bind(&key.server)
        .bind(&key.instance)
        .bind(&key.tool)
        .bind(from_ms)
        .fetch_all(pool)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| SeriesPoint {
                minute_ms: r.minute_ms,
                calls: count(r.calls),
                errors: count(r.errors),
                cache_lookups: count(r.cache_lookups),
                cache_hits: count(r.cache_hits),
                p50_ms: r.p50_ms,
                p95_ms: r.p95_ms,
                p99_ms: r.p99_ms,
                utilisation: r.utilisation,
            })
            .collect())
    }

    /// Deletes minutes and events older than `before_ms`; returns the rows deleted.
    pub async fn trim_series(&self, before_ms: i64) -> Result<u64, StoreError> {
        on_pool!(self, |pool| {
            let series = sqlx::query("DELETE FROM series_minutes WHERE minute_ms < $1")
                .bind(before_ms)
                .execute(pool)
                .await?
                .rows_affected();
            let events = sqlx::query("DELETE FROM fleet_events WHERE at_ms < $1")
                .bind(before_ms)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(series + events)
        })
    }

    /// Records a fleet event.
    pub async fn insert_fleet_event(
        &self,
        at_ms: i64,
        kind: &str,
        server: &str,
        instance: Option<&str>,
        message: &str,
        evidence: &serde_json::Value,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO fleet_events (at_ms, kind, server, instance, message, evidence) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(at_ms)
        .bind(kind)
        .bind(server)
        .bind(instance)
        .bind(message)
        .bind(evidence.to_string())
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The newest fleet events, newest first; with `advice_only`, capacity advice alone.
    pub async fn fleet_events(
        &self,
        advice_only: bool,
        limit: u32,
    ) -> Result<Vec<FleetEventRecord>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT id, at_ms, kind, server, instance, message, evidence FROM fleet_events \
             WHERE ($1 = 0 OR kind IN ('scale_up', 'scale_down')) ORDER BY at_ms DESC, id DESC LIMIT $2"
        )
        .bind(i64::from(advice_only))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;

    fn point(
        minute_ms: i64,
        calls: u64,
        p99: Option<f64>,
        utilisation: Option<f64>,
    ) -> SeriesPoint {
        SeriesPoint {
            minute_ms,
            calls,
            errors: 1,
            cache_lookups: calls,
            cache_hits: 1,
            p50_ms: p99.map(|p| p / 2.0),
            p95_ms: p99,
            p99_ms: p99,
            utilisation,
        }
    }

    each_backend! {
        async fn a_minute_written_in_parts_adds_up_and_old_minutes_are_trimmed(store) {
            let key = SeriesKey::server("search");
            store
                .insert_series(&[(key.clone(), point(60_000, 900, Some(40.0), Some(0.5)))])
                .await
                .unwrap();
            // A call that ended late for its minute, and no utilisation sample with it.
            store
                .insert_series(&[(key.clone(), point(60_000, 1, Some(90.0), None))])
                .await
                .unwrap();
            store
                .insert_series(&[(key.clone(), point(120_000, 5, None, None))])
                .await
                .unwrap();
            let points = store.series(&key, 0).await.unwrap();
            assert_eq!(points.len(), 2);
            let first = &points[0];
            assert_eq!(
                (
                    first.calls,
                    first.errors,
                    first.cache_lookups,
                    first.cache_hits
                ),
                (901, 2, 901, 2)
            );
            assert_eq!((first.p95_ms, first.p99_ms), (Some(90.0), Some(90.0)));
            assert_eq!(
                first.utilisation,
                Some(0.5),
                "kept when the late part has none"
            );
            assert_eq!(points[1].p99_ms, None);
            assert!(
                store
                    .series(&SeriesKey::fleet(), 0)
                    .await
                    .unwrap()
                    .is_empty()
            );

            store
                .insert_fleet_event(
                    1,
                    "health",
                    "search",
                    Some("search-1"),
                    "down",
                    &serde_json::json!({}),
                )
                .await
                .unwrap();
            assert_eq!(
                store.trim_series(120_000).await.unwrap(),
                2,
                "one minute, one event"
            );
            assert_eq!(store.series(&key, 0).await.unwrap().len(), 1);
        }
    }
}
