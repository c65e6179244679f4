//! Who may do what: dashboard logins (passwords, roles, throttling). Assistants, API keys,
//! tool permissions and rate limits join here with the gateway.

pub mod login_throttle;
pub mod password;
pub mod users;

pub use login_throttle::LoginThrottle;
pub use users::{UserDirectory, UserError};
