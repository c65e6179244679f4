//! The MCP gateway: routes each tool call to a healthy instance of the right server.
//! These modules are its I/O-free core: circuit breakers, instance choice, retries with a
//! budget, and latency statistics; the hot path wires them to upstream sessions.

// Wired into the gateway's hot path in the next change.
#![allow(dead_code)]

pub mod balancer;
pub mod breaker;
pub mod cache;
pub mod dispatch;
pub mod endpoint;
pub mod latency;
pub mod retry;
