//! Logs now; traces, metrics and probes join here with the gateway.

pub mod logging;
pub mod metrics;
pub mod prober;
pub mod traces;
