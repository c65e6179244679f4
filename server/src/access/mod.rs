//! Who may do what: dashboard logins (passwords, roles, throttling), and the gateway's
//! assistants (API keys, tool permissions, rate limits) and the audit log of their calls.

pub mod audit_log;
pub mod bearer_throttle;
pub mod client_address;
pub mod control;
pub mod keys;
pub mod login_throttle;
pub mod password;
pub mod policy;
pub mod rate_limit;
pub mod users;

pub use login_throttle::LoginThrottle;
pub use users::{UserDirectory, UserError};
