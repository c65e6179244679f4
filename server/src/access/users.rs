//! The directory of dashboard logins: validation, hashing and the first admin. The CLI and
//! the dashboard both go through it, so both enforce the same rules and audit alike.

use super::password::{self, PasswordError};
use crate::store::{RoleChange, Store, StoreError, UserRecord};
use app::control::SessionStamp;
use app::wire::Role;

/// The first admin's user name.
pub const INITIAL_ADMIN: &str = "admin";

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user name breaks the naming rule.
    #[error(
        "invalid user name {0:?}: use 1 to 64 lower-case letters, digits and . _ @ -, starting with a letter or digit"
    )]
    InvalidName(String),
    /// The password breaks the policy.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The current password given for a change of one's own password is not it.
    #[error("the current password is wrong")]
    WrongPassword,
    /// The blocking hashing task died.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Checks a user name: 1–64 of `a-z 0-9 . _ @ -`, starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<(), UserError> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._@-".contains(c);
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() <= 64 && starts_well && name.chars().all(valid_char) {
        Ok(())
    } else {
        Err(UserError::InvalidName(
            crate::sanitize::bounded(name, 64).into_owned(),
        ))
    }
}

/// Logins over the store.
#[derive(Clone, Debug)]
pub struct UserDirectory {
    store: Store,
}

/// Argon2 is deliberately slow: keep it off the async workers.
async fn hash_off_thread(password: &str) -> Result<String, UserError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || password::hash_password(&password))
        .await
        .map_err(|e| UserError::Hashing(e.to_string()))?
        .map_err(UserError::from)
}

/// `user` if `password` is theirs, off the async workers; an unknown user costs the same.
async fn verify_off_thread(
    user: Option<UserRecord>,
    password: &str,
) -> Result<Option<UserRecord>, UserError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || match user {
        Some(user) if password::verify_password(&password, &user.password_hash) => Some(user),
        Some(_) => None,
        None => {
            password::verify_against_nothing(&password);
            None
        }
    })
    .await
    .map_err(|e| UserError::Hashing(e.to_string()))
}

impl UserDirectory {
    /// A directory over `store`.
    pub fn new(store: Store) -> Self {
        UserDirectory { store }
    }

    /// The enabled user whose name and password these are, or `None`. Unknown users cost
    /// the same time as wrong passwords, and disabled ones get the same answer.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<UserRecord>, UserError> {
        let user = self.store.user_by_name(username).await?;
        Ok(verify_off_thread(user, password)
            .await?
            .filter(UserRecord::is_enabled))
    }

    /// Creates a login with the given password.
    pub async fn add(
        &self,
        actor: &str,
        username: &str,
        role: Role,
        password: &str,
    ) -> Result<UserRecord, UserError> {
        validate_username(username)?;
        let hash = hash_off_thread(password).await?;
        Ok(self.store.insert_user(username, &hash, role, actor).await?)
    }

    /// Changes a login's role (a new role ends its sessions).
    pub async fn set_role(
        &self,
        actor: &str,
        username: &str,
        role: Role,
    ) -> Result<RoleChange, UserError> {
        Ok(self.store.update_role(username, role, actor).await?)
    }

    /// Sets a login's password and ends its sessions.
    pub async fn reset_password(
        &self,
        actor: &str,
        username: &str,
        password: &str,
    ) -> Result<SessionStamp, UserError> {
        let hash = hash_off_thread(password).await?;
        Ok(self.store.update_password(username, &hash, actor).await?)
    }

    /// Changes `username`'s own password after checking the current one; ends the user's
    /// sessions. A wrong current password changes nothing.
    pub async fn change_own_password(
        &self,
        username: &str,
        current: &str,
        new: &str,
    ) -> Result<SessionStamp, UserError> {
        password::validate_password(new)?;
        let user = self.store.user_by_name(username).await?;
        let Some(user) = verify_off_thread(user, current).await? else {
            return Err(UserError::WrongPassword);
        };
        let hash = hash_off_thread(new).await?;
        Ok(self
            .store
            .change_own_password(username, &user.password_hash, &hash)
            .await?)
    }

    /// Disables a login (it cannot log in; its sessions end) or enables it; `false` when
    /// it already was so.
    pub async fn set_disabled(
        &self,
        actor: &str,
        username: &str,
        disabled: bool,
    ) -> Result<bool, UserError> {
        Ok(self
            .store
            .set_user_disabled(username, disabled, actor)
            .await?)
    }

    /// Deletes a login.
    pub async fn delete(&self, actor: &str, username: &str) -> Result<(), UserError> {
        Ok(self.store.delete_user(username, actor).await?)
    }

    /// Ends every session of a login.
    pub async fn logout_everywhere(
        &self,
        actor: &str,
        username: &str,
    ) -> Result<SessionStamp, UserError> {
        Ok(self.store.end_user_sessions(username, actor).await?)
    }

    /// On a store with no users, creates `admin` with `password`, or with a generated
    /// password that is returned so the caller can show it once. `None` when users exist.
    pub async fn ensure_initial_admin(
        &self,
        password: Option<&str>,
    ) -> Result<Option<InitialAdmin>, UserError> {
        if !self.store.list_users().await?.is_empty() {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(given) => (given.to_string(), false),
            None => (password::generate_password(), true),
        };
        match self
            .add("fleetdeck", INITIAL_ADMIN, Role::Admin, &password)
            .await
        {
            Ok(_) => Ok(Some(InitialAdmin {
                generated_password: generated.then_some(password),
            })),
            // Another replica created it first.
            Err(UserError::Store(StoreError::Conflict(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The first admin was just created.
#[derive(Debug)]
pub struct InitialAdmin {
    /// The password, when Fleetdeck generated it (to be shown once).
    pub generated_password: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::each_backend;

    #[test]
    fn user_names_follow_the_rule() {
        for ok in [
            "admin",
            "a",
            "jane.doe",
            "ops-1",
            "x_y",
            "j@example.com",
            &"a".repeat(64),
        ] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Admin",
            ".hidden",
            "-x",
            "a b",
            "ä",
            &"a".repeat(65),
            "a/b",
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    each_backend! {
        async fn authentication_accepts_the_password_and_nothing_else(store) {
            let users = UserDirectory::new(store);
            users
                .add("test", "alice", Role::Operator, "alice's long password")
                .await
                .unwrap();
            let found = users
                .authenticate("alice", "alice's long password")
                .await
                .unwrap();
            assert_eq!(found.map(|u| u.role), Some(Role::Operator));
            assert!(
                users
                    .authenticate("alice", "wrong password!")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                users
                    .authenticate("nobody", "alice's long password")
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }

    each_backend! {
        async fn the_initial_admin_is_created_once(store) {
            let users = UserDirectory::new(store.clone());
            let first = users
                .ensure_initial_admin(None)
                .await
                .unwrap()
                .expect("created");
            let password = first.generated_password.expect("generated");
            assert!(
                users
                    .authenticate(INITIAL_ADMIN, &password)
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(
                users
                    .ensure_initial_admin(Some("another password"))
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(store.list_users().await.unwrap().len(), 1);
        }
    }

    each_backend! {
        async fn a_given_initial_password_must_pass_the_policy(store) {
            let users = UserDirectory::new(store.clone());
            let err = users.ensure_initial_admin(Some("short")).await.unwrap_err();
            assert!(err.to_string().contains("at least 12"), "{err}");
            assert!(store.list_users().await.unwrap().is_empty());
            let created = users
                .ensure_initial_admin(Some("a long enough password"))
                .await
                .unwrap();
            assert!(created.unwrap().generated_password.is_none());
        }
    }

    each_backend! {
        async fn a_disabled_user_cannot_log_in_until_enabled(store) {
            let users = UserDirectory::new(store);
            users.add("test", "root", Role::Admin, "root's long password").await.unwrap();
            users.add("test", "bob", Role::Viewer, "bob's long password").await.unwrap();
            assert!(users.set_disabled("root", "bob", true).await.unwrap());
            assert!(users.authenticate("bob", "bob's long password").await.unwrap().is_none());
            assert!(users.set_disabled("root", "bob", false).await.unwrap());
            assert!(users.authenticate("bob", "bob's long password").await.unwrap().is_some());
        }
    }

    each_backend! {
        async fn an_own_password_change_needs_the_current_one_and_the_policy(store) {
            let users = UserDirectory::new(store.clone());
            users.add("test", "bob", Role::Viewer, "bob's long password").await.unwrap();
            let err = users
                .change_own_password("bob", "not bob's password", "a new long password")
                .await
                .unwrap_err();
            assert!(matches!(err, UserError::WrongPassword), "{err}");
            let err = users
                .change_own_password("bob", "bob's long password", "short")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("at least 12"), "{err}");
            assert_eq!(store.user_by_name("bob").await.unwrap().unwrap().session_epoch, 0);
            let stamp = users
                .change_own_password("bob", "bob's long password", "a new long password")
                .await
                .unwrap();
            assert_eq!(stamp.epoch, 1);
            assert!(users.authenticate("bob", "bob's long password").await.unwrap().is_none());
            assert!(users.authenticate("bob", "a new long password").await.unwrap().is_some());
            let last = store.recent_admin_audit(1).await.unwrap().remove(0);
            assert_eq!((last.actor.as_str(), last.action.as_str()), ("bob", "user.change_password"));
        }
    }
}
