//! Login, logout and the session's user: server functions and the checks every other
//! server function runs first.

use crate::error::AppError;
use crate::wire::SessionUser;
use leptos::prelude::*;

/// Logs in and redirects to `next` (a local path) or the Overview.
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use self::ssr::*;
    respond(async move {
        let stamp = control()?
            .login(username.trim(), &password, client_ip().await)
            .await?;
        let session = session().await?;
        // A fresh id on login, so that a session id planted before login is worthless.
        session.cycle_id().await.map_err(internal)?;
        stamp_session(&session, stamp).await?;
        leptos_axum::redirect(local_redirect_target(next.as_deref()));
        Ok(())
    })
    .await
}

/// Ends the session and redirects to the login page.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use self::ssr::*;
    respond(async move {
        session().await?.flush().await.map_err(internal)?;
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

/// The session's user, or `None` when nobody is logged in.
#[server(prefix = "/api", endpoint = "me")]
pub async fn current_user() -> Result<Option<SessionUser>, AppError> {
    use self::ssr::*;
    respond(session_user()).await
}

/// Where to go after login: `next` when it is a path on this site, else the Overview.
/// Anything else (`//evil`, `https://…`, `\\evil`) would be an open redirect.
pub fn local_redirect_target(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

/// Server-side helpers for server functions: the session, the acting user, role checks.
#[cfg(feature = "ssr")]
pub mod ssr {
    pub use crate::control::{
        AccessPlane, AuditPlane, FleetPlane, RoiPlane, SessionStamp, SharedControlPlane,
        TelemetryPlane, UsersPlane,
    };
    use crate::error::AppError;
    use crate::wire::{Role, SessionUser};
    use leptos::prelude::*;
    use std::net::{IpAddr, SocketAddr};
    use tower_sessions::Session;

    /// The session key holding the logged-in user's id.
    pub const USER_ID_KEY: &str = "user_id";

    /// The session key holding the user's session epoch at login (see [`SessionStamp`]).
    pub const SESSION_EPOCH_KEY: &str = "session_epoch";

    /// The client's address as the server determined it (the TCP peer, or what a trusted
    /// proxy forwarded), put into the request's extensions before the app runs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ClientAddress(pub IpAddr);

    /// The control plane the server provided as context.
    pub fn control() -> Result<SharedControlPlane, AppError> {
        use_context::<SharedControlPlane>()
            .ok_or_else(|| AppError::Internal("the control plane is not in context".into()))
    }

    /// The request's session (the session layer must wrap the Leptos routes).
    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>()
            .await
            .map_err(|e| AppError::Internal(format!("no session on this request: {e}")))
    }

    /// The client's address, for login throttling: the server's [`ClientAddress`], else
    /// the TCP peer.
    pub async fn client_ip() -> Option<IpAddr> {
        if let Ok(axum::Extension(ClientAddress(address))) =
            leptos_axum::extract::<axum::Extension<ClientAddress>>().await
        {
            return Some(address);
        }
        leptos_axum::extract::<axum::extract::ConnectInfo<SocketAddr>>()
            .await
            .ok()
            .map(|info| info.0.ip())
    }

    /// The stamp a session carries, if someone logged in with it. Sessions from before
    /// session epochs existed carry none and count as epoch 0.
    pub async fn session_stamp(
        session: &Session,
    ) -> Result<Option<SessionStamp>, tower_sessions::session::Error> {
        let Some(user_id) = session.get::<i64>(USER_ID_KEY).await? else {
            return Ok(None);
        };
        let epoch = session.get::<i64>(SESSION_EPOCH_KEY).await?.unwrap_or(0);
        Ok(Some(SessionStamp { user_id, epoch }))
    }

    /// Writes `stamp` into `session` (at login, or after the user changed their own
    /// account, so that this session lives on while the user's others end).
    pub async fn stamp_session(session: &Session, stamp: SessionStamp) -> Result<(), AppError> {
        session
            .insert(USER_ID_KEY, stamp.user_id)
            .await
            .map_err(internal)?;
        session
            .insert(SESSION_EPOCH_KEY, stamp.epoch)
            .await
            .map_err(internal)
    }

    /// After a change to `stamp`'s user made by `actor`: when the actor changed their own
    /// account, re-stamps the session they act from, so only their other sessions end.
    /// Only when this change alone moved the epoch (by one, from the session's): if another
    /// revocation of the same user landed meanwhile, this session ends with the others
    /// rather than outliving it.
    pub async fn keep_own_session(
        actor: &SessionUser,
        stamp: SessionStamp,
    ) -> Result<(), AppError> {
        if stamp.user_id != actor.id {
            return Ok(());
        }
        let session = session().await?;
        let current = session_stamp(&session).await.map_err(internal)?;
        if current.is_some_and(|c| c.user_id == stamp.user_id && c.epoch + 1 == stamp.epoch) {
            stamp_session(&session, stamp).await?;
        }
        Ok(())
    }

    /// The logged-in user, fresh from the store (role changes, disabling, deletions and
    /// revoked sessions apply at once).
    pub async fn session_user() -> Result<Option<SessionUser>, AppError> {
        let session = session().await?;
        let Some(stamp) = session_stamp(&session).await.map_err(internal)? else {
            return Ok(None);
        };
        // A session no longer valid is not flushed here but left to expire: a concurrent
        // request of the same session may be re-stamping it (its user just changed their
        // own password), and a flush would make the browser drop the cookie it keeps.
        control()?.session_user(stamp).await
    }

    /// The logged-in user if their role allows `need`; the refusal otherwise.
    pub async fn require(need: Role) -> Result<SessionUser, AppError> {
        let user = session_user().await?.ok_or(AppError::Unauthenticated)?;
        if user.role.allows(need) {
            Ok(user)
        } else {
            Err(AppError::Forbidden {
                have: user.role,
                need,
            })
        }
    }

    /// Runs a server function's body and answers a failure with its HTTP status.
    pub async fn respond<T>(
        body: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let result = body.await;
        if let Err(error) = &result {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                let status = axum::http::StatusCode::from_u16(error.status())
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
                response.set_status(status);
            }
            if matches!(error, AppError::Internal(_)) {
                tracing::error!(%error, "server function failed");
            }
        }
        result
    }

    /// Wraps an unexpected failure (session store, encoding) as an internal error.
    pub fn internal(error: impl std::fmt::Display) -> AppError {
        AppError::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::local_redirect_target;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(local_redirect_target(Some("/users")), "/users");
        assert_eq!(local_redirect_target(Some("/fleet?x=1")), "/fleet?x=1");
        assert_eq!(local_redirect_target(None), "/");
        assert_eq!(local_redirect_target(Some("")), "/");
        assert_eq!(local_redirect_target(Some("//evil.example")), "/");
        assert_eq!(local_redirect_target(Some("https://evil.example")), "/");
        assert_eq!(local_redirect_target(Some("/\\evil.example")), "/");
        assert_eq!(local_redirect_target(Some("/a\nb")), "/");
    }
}
