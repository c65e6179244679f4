//! Users: dashboard logins and their roles. Admins add users, change roles and reset
//! passwords; every change is audited by the control plane.

use crate::error::AppError;
use crate::wire::{IssuedPassword, Role, UserSummary};
use leptos::prelude::*;
use leptos_meta::Title;

/// Every dashboard login (admins only).
#[server(prefix = "/api", endpoint = "users/list")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        require(Role::Admin).await?;
        control()?.users().await
    })
    .await
}

/// Creates a login with a generated password, shown once.
#[server(prefix = "/api", endpoint = "users/add")]
pub async fn add_user(username: String, role: Role) -> Result<IssuedPassword, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.add_user(&actor, username.trim(), role).await
    })
    .await
}

/// Changes a login's role.
#[server(prefix = "/api", endpoint = "users/set_role")]
pub async fn set_user_role(username: String, role: Role) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.set_role(&actor, &username, role).await
    })
    .await
}

/// Replaces a login's password with a generated one, shown once.
#[server(prefix = "/api", endpoint = "users/reset_password")]
pub async fn reset_user_password(username: String) -> Result<IssuedPassword, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.reset_password(&actor, &username).await
    })
    .await
}

/// The users table and the forms that change it.
#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                set_role.version().get(),
                reset.version().get(),
            )
        },
        |_| list_users(),
    );

    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        <p class="muted">
            "Dashboard logins. Viewers watch, operators also drain instances, reset breakers and invalidate caches, admins also manage permissions, assistants and users."
        </p>
        <IssuedPasswordNotice result=move || add.value().get() />
        <IssuedPasswordNotice result=move || reset.value().get() />
        <ActionResultNotice result=move || set_role.value().get() />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(users) => {
                        view! {
                            <UsersTable users set_role reset />
                            <section class="card">
                                <h2>"Add a user"</h2>
                                <ActionForm action=add attr:class="inline-form">
                                    <label>
                                        "User name"
                                        <input
                                            name="username"
                                            required
                                            maxlength="64"
                                            pattern="[a-z0-9][a-z0-9._@\\-]*"
                                            title="lower-case letters, digits and . _ @ -"
                                        />
                                    </label>
                                    <label>"Role" <RoleSelect selected=Role::Viewer /></label>
                                    <button type="submit">"Add user"</button>
                                </ActionForm>
                            </section>
                        }
                            .into_any()
                    }
                    Err(error) => {
                        view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// One row per login, each with its role form and password reset.
#[component]
fn UsersTable(
    users: Vec<UserSummary>,
    set_role: ServerAction<SetUserRole>,
    reset: ServerAction<ResetUserPassword>,
) -> impl IntoView {
    view! {
        <table class="data" data-testid="users">
            <thead>
                <tr>
                    <th>"User"</th>
                    <th>"Role"</th>
                    <th>"Password"</th>
                </tr>
            </thead>
            <tbody>
                {users
                    .into_iter()
                    .map(|user| {
                        let (role_target, reset_target) = (user.username.clone(), user.username.clone());
                        view! {
                            <tr>
                                <td>{user.username}</td>
                                <td>
                                    <ActionForm action=set_role attr:class="inline-form">
                                        <input type="hidden" name="username" value=role_target />
                                        <RoleSelect selected=user.role />
                                        <button type="submit" class="secondary">"Change role"</button>
                                    </ActionForm>
                                </td>
                                <td>
                                    <ActionForm action=reset attr:class="inline-form">
                                        <input type="hidden" name="username" value=reset_target />
                                        <button type="submit" class="secondary">"Reset password"</button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// A `<select name="role">` with one role preselected.
#[component]
fn RoleSelect(selected: Role) -> impl IntoView {
    view! {
        <select name="role">
            {Role::ALL
                .into_iter()
                .map(|role| {
                    view! {
                        <option value=role.as_str() selected=role == selected>
                            {role.as_str()}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

/// Shows a generated password once, or why it could not be issued.
#[component]
fn IssuedPasswordNotice(
    result: impl Fn() -> Option<Result<IssuedPassword, AppError>> + Send + Sync + 'static,
) -> impl IntoView {
    move || {
        result().map(|outcome| match outcome {
            Ok(issued) => view! {
                <p class="notice notice-secret" role="status">
                    "Password for " <strong>{issued.username}</strong> ": "
                    <code data-testid="issued-password">{issued.password}</code>
                    " — shown once: hand it over now."
                </p>
            }
            .into_any(),
            Err(error) => view! { <crate::components::notice::ErrorNotice error /> }.into_any(),
        })
    }
}

/// Shows why an action without a result failed.
#[component]
fn ActionResultNotice(
    result: impl Fn() -> Option<Result<(), AppError>> + Send + Sync + 'static,
) -> impl IntoView {
    move || {
        result().and_then(Result::err).map(|error| {
            view! { <crate::components::notice::ErrorNotice error /> }
        })
    }
}
