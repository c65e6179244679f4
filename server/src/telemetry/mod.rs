//! Telemetry: logs, Prometheus metrics, instance health (active probes and scrapes),
//! per-minute series, capacity advice and the charts drawn from them.

pub mod capacity;
pub mod chart_theme;
pub mod charts;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod overview;
pub mod prober;
pub mod sampler;
pub mod scrape;
pub mod series;
pub mod traces;
