//! The idle timeout is measured from the last request, not from the login.
//!
//! tower-sessions with `Expiry::OnInactivity` moves a session's stored expiry (and the
//! cookie's `Max-Age`) only when it saves the session, and it saves only a modified one:
//! left alone, a session would end the idle time after login however busy its user. This
//! middleware, inside the session layer, stores the time of the latest touch in a logged-in
//! session whenever the previous touch is older than [`TouchPolicy::interval`]; that
//! modification makes the layer save the session and so push its expiry out again. Writing
//! on every request would cost a database write per request; with the interval a session
//! is written at most about once a minute, and ends at most one interval early.

use app::auth::ssr::USER_ID_KEY;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Duration;
use tower_sessions::Session;

/// The session key holding when the session was last touched (Unix ms).
pub const TOUCHED_AT_KEY: &str = "touched_at_ms";

/// The longest time between two touches of an active session.
const MAX_TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// How often an active session is written to extend its expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TouchPolicy {
    /// A session is touched when its last touch is at least this old.
    pub interval: Duration,
}

impl TouchPolicy {
    /// For sessions ending after `idle` without a request: touched every `idle / 4`, at
    /// most every minute (so a session ends between ¾ of `idle` and `idle` after its last
    /// request).
    pub fn for_idle(idle: Duration) -> Self {
        TouchPolicy {
            interval: (idle / 4).min(MAX_TOUCH_INTERVAL),
        }
    }

    /// Whether a session last touched at `touched_at_ms` (if ever) needs a touch at `now_ms`.
    fn is_due(self, touched_at_ms: Option<i64>, now_ms: i64) -> bool {
        let interval_ms = i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX);
        touched_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= interval_ms)
    }
}

/// Touches the request's session when it is logged in and its last touch is due. Runs
/// before the handler, so that a logout in the handler ends the session for good.
pub async fn touch_active_session(
    State(policy): State<TouchPolicy>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if let Err(error) = touch(&session, policy).await {
        // Not touching only shortens the session; the request itself can still be served.
        tracing::warn!(%error, "cannot touch the session");
    }
    next.run(request).await
}

async fn touch(
    session: &Session,
    policy: TouchPolicy,
) -> Result<(), tower_sessions::session::Error> {
    if session.get::<i64>(USER_ID_KEY).await?.is_none() {
        return Ok(());
    }
    let now = crate::store::now_ms();
    if policy.is_due(session.get::<i64>(TOUCHED_AT_KEY).await?, now) {
        session.insert(TOUCHED_AT_KEY, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_a_quarter_of_the_idle_time_and_at_most_a_minute() {
        let interval =
            |idle_s: f64| TouchPolicy::for_idle(Duration::from_secs_f64(idle_s)).interval;
        assert_eq!(interval(6.0), Duration::from_millis(1500));
        assert_eq!(interval(120.0), Duration::from_secs(30));
        assert_eq!(interval(720.0 * 60.0), Duration::from_secs(60));
    }

    #[test]
    fn a_touch_is_due_once_the_interval_has_passed() {
        let policy = TouchPolicy {
            interval: Duration::from_secs(60),
        };
        assert!(policy.is_due(None, 1_000));
        assert!(!policy.is_due(Some(1_000), 1_000));
        assert!(!policy.is_due(Some(1_000), 60_999));
        assert!(policy.is_due(Some(1_000), 61_000));
        // A clock that went backwards waits for the interval again.
        assert!(!policy.is_due(Some(5_000), 1_000));
    }
}
