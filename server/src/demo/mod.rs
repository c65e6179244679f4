//! The demo fleet: small but real MCP servers (search, database, files, notifications)
//! that `fleetdeck demo` starts as instances behind the gateway.
//!
//! Each instance generates its data deterministically at start (every replica of a kind
//! serves the same data, as real replicas would), answers with a realistic, skewed latency,
//! and misbehaves on request through its [`Knobs`], adjustable at runtime over HTTP
//! (`PUT /knobs`) so the dashboard's breakers, retries and health states can be demonstrated.

mod database;
mod files;
pub mod fleet;
mod kind;
pub mod knobs;
mod notifications;
pub mod roi_seed;
pub mod scale;
mod search;
mod server;
mod serving;
pub mod traffic;

// The module's API; the dashboard's knob controls will name the rest of it.
pub use kind::DemoKind;
pub use knobs::Knobs;
pub use serving::{DemoInstance, serve_demo_instance, serve_demo_stdio};
