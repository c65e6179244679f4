//! The MCP gateway: routes each tool call to a healthy instance of the right server.
//! `endpoint` and `dispatch` are the hot path; the other modules are its I/O-free core
//! (breakers, instance choice, retries with a budget, latency, the result cache).
//! See README.md in this folder for how a call flows.

pub mod balancer;
pub mod breaker;
pub mod cache;
pub mod catalog;
pub mod dispatch;
pub mod endpoint;
pub mod latency;
pub mod record;
pub mod result_size;
pub mod retry;
pub mod tool_name;
pub mod tools_call;
