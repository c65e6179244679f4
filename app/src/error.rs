//! The one error type server functions return: typed, serialisable, with an HTTP status.

use crate::wire::Role;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What can go wrong in a dashboard request, as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    /// No valid session.
    #[error("you are not logged in (or your session has expired)")]
    Unauthenticated,
    /// The session's role is too low.
    #[error("your role ({have}) may not do this: it needs {need}")]
    Forbidden {
        /// The session user's role.
        have: Role,
        /// The role the action needs.
        need: Role,
    },
    /// Unknown user and wrong password get this same message.
    #[error("unknown user or wrong password")]
    BadCredentials,
    /// Too many login attempts from this user name or address.
    #[error("too many login attempts: try again in {retry_after_s} s")]
    Throttled {
        /// Seconds until the next attempt is allowed.
        retry_after_s: u64,
    },
    /// The input was refused; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The action conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Something failed on the server; details are in its log.
    #[error("internal error: {0}")]
    Internal(String),
    /// The server function machinery failed (network, encoding).
    #[error("{0}")]
    ServerFn(ServerFnErrorErr),
}

impl AppError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::Forbidden { .. } => 403,
            AppError::Throttled { .. } => 429,
            AppError::Invalid(_) => 400,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::Internal(_) | AppError::ServerFn(_) => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::ServerFn(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_kind_of_failure() {
        assert_eq!(AppError::Unauthenticated.status(), 401);
        let forbidden = AppError::Forbidden {
            have: Role::Viewer,
            need: Role::Admin,
        };
        assert_eq!(forbidden.status(), 403);
        assert_eq!(
            forbidden.to_string(),
            "your role (viewer) may not do this: it needs admin"
        );
        assert_eq!(AppError::Throttled { retry_after_s: 3 }.status(), 429);
    }
}
