//! Users: dashboard logins, their roles and state. Admins add users, change roles, reset
//! passwords, disable, enable and delete logins and end their sessions; every change is
//! audited by the control plane. A password reset, a role change and disabling end the
//! user's sessions at once; when admins change their own login, the session they act from
//! lives on and only their others end.

use crate::components::confirm::ConfirmStep;
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

/// Changes a login's role (its sessions end).
#[server(prefix = "/api", endpoint = "users/set_role")]
pub async fn set_user_role(username: String, role: Role) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        let stamp = control()?.set_role(&actor, &username, role).await?;
        keep_own_session(&actor, stamp).await
    })
    .await
}

/// Replaces a login's password with a generated one, shown once (its sessions end).
#[server(prefix = "/api", endpoint = "users/reset_password")]
pub async fn reset_user_password(username: String) -> Result<IssuedPassword, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        let (issued, stamp) = control()?.reset_password(&actor, &username).await?;
        keep_own_session(&actor, stamp).await?;
        Ok(issued)
    })
    .await
}

/// Disables a login (it cannot log in, its sessions end) or enables it again.
#[server(prefix = "/api", endpoint = "users/set_disabled")]
pub async fn set_user_disabled(username: String, disabled: bool) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.set_disabled(&actor, &username, disabled).await
    })
    .await
}

/// Deletes a login.
#[server(prefix = "/api", endpoint = "users/delete")]
pub async fn delete_user(username: String) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.delete_user(&actor, &username).await
    })
    .await
}

/// Ends every session of a login, on every replica.
#[server(prefix = "/api", endpoint = "users/logout_everywhere")]
pub async fn logout_user_everywhere(username: String) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        let stamp = control()?.logout_everywhere(&actor, &username).await?;
        keep_own_session(&actor, stamp).await
    })
    .await
}

/// The commands of the table's rows.
#[derive(Clone, Copy)]
struct RowCommands {
    set_role: ServerAction<SetUserRole>,
    reset: ServerAction<ResetUserPassword>,
    set_disabled: ServerAction<SetUserDisabled>,
    delete: ServerAction<DeleteUser>,
    logout_everywhere: ServerAction<LogoutUserEverywhere>,
    /// The user whose deletion awaits confirmation.
    confirming_delete: RwSignal<Option<String>>,
}

/// The users table and the forms that change it.
#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let commands = RowCommands {
        set_role: ServerAction::new(),
        reset: ServerAction::new(),
        set_disabled: ServerAction::new(),
        delete: ServerAction::new(),
        logout_everywhere: ServerAction::new(),
        confirming_delete: RwSignal::new(None),
    };
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                commands.set_role.version().get(),
                commands.reset.version().get(),
                commands.set_disabled.version().get(),
                commands.delete.version().get(),
            )
        },
        |_| list_users(),
    );

    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        <p class="muted">
            "Dashboard logins. Viewers watch, operators also drain instances, reset breakers and invalidate caches, admins also manage permissions, assistants and users. A password reset, a role change and disabling end the user's sessions at once."
        </p>
        <IssuedPasswordNotice result=move || add.value().get() />
        <IssuedPasswordNotice result=move || commands.reset.value().get() />
        <ActionResultNotice result=move || commands.set_role.value().get() />
        <ActionResultNotice result=move || commands.set_disabled.value().get() />
        <ActionResultNotice result=move || commands.delete.value().get() />
        <ActionDoneNotice
            result=move || commands.logout_everywhere.value().get()
            done="Their sessions ended everywhere."
        />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(users) => {
                        view! {
                            <UsersTable users commands />
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

/// One row per login, each with its role form, state and session commands.
#[component]
fn UsersTable(users: Vec<UserSummary>, commands: RowCommands) -> impl IntoView {
    view! {
        <table class="data" data-testid="users">
            <thead>
                <tr>
                    <th>"User"</th>
                    <th>"Role"</th>
                    <th>"State"</th>
                    <th>"Password"</th>
                    <th>"Sessions"</th>
                    <th>"Login"</th>
                </tr>
            </thead>
            <tbody>
                {users
                    .into_iter()
                    .map(|user| view! { <UserRow user commands /> })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// One login and its commands.
#[component]
fn UserRow(user: UserSummary, commands: RowCommands) -> impl IntoView {
    let username = user.username.clone();
    let [role_field, reset_field, logout_field, toggle_field] =
        std::array::from_fn(|_| username_field(&username));
    let state = if user.disabled {
        view! { <span class="pill user-disabled">"disabled"</span> }.into_any()
    } else {
        view! { <span class="pill user-enabled">"enabled"</span> }.into_any()
    };
    let toggle_label = if user.disabled { "Enable" } else { "Disable" };
    let row_id = format!("user-{username}");
    view! {
        <tr data-testid=row_id data-disabled=user.disabled.to_string()>
            <td>{username.clone()}</td>
            <td>
                <ActionForm action=commands.set_role attr:class="inline-form">
                    {role_field}
                    <RoleSelect selected=user.role />
                    <button type="submit" class="secondary">"Change role"</button>
                </ActionForm>
            </td>
            <td>{state}</td>
            <td>
                <ActionForm action=commands.reset attr:class="inline-form">
                    {reset_field}
                    <button type="submit" class="secondary">"Reset password"</button>
                </ActionForm>
            </td>
            <td>
                <ActionForm action=commands.logout_everywhere attr:class="inline-form">
                    {logout_field}
                    <button type="submit" class="secondary" data-testid="logout-everywhere">
                        "Log out everywhere"
                    </button>
                </ActionForm>
            </td>
            <td>
                <div class="command-buttons">
                    <ActionForm action=commands.set_disabled attr:class="inline-form">
                        {toggle_field}
                        <input type="hidden" name="disabled" value=(!user.disabled).to_string() />
                        <button type="submit" class="secondary" data-testid="toggle-disabled">
                            {toggle_label}
                        </button>
                    </ActionForm>
                    <DeleteCommand username commands />
                </div>
            </td>
        </tr>
    }
}

/// The hidden field naming the row's user in each of its forms.
fn username_field(username: &str) -> impl IntoView + use<> {
    view! { <input type="hidden" name="username" value=username.to_string() /> }
}

/// Delete, asked once more before it is sent.
#[component]
fn DeleteCommand(username: String, commands: RowCommands) -> impl IntoView {
    let RowCommands {
        delete,
        confirming_delete,
        ..
    } = commands;
    move || {
        let username = username.clone();
        if confirming_delete.get().as_deref() == Some(username.as_str()) {
            view! {
                <ConfirmStep
                    question=format!("Delete {username}? This cannot be undone.")
                    pending=delete.pending()
                    on_confirm=move || {
                        confirming_delete.set(None);
                        delete.dispatch(DeleteUser { username: username.clone() });
                    }
                    on_cancel=move || confirming_delete.set(None)
                />
            }
            .into_any()
        } else {
            view! {
                <button
                    type="button"
                    class="secondary"
                    data-testid="delete-user"
                    disabled=move || delete.pending().get()
                    on:click=move |_| confirming_delete.set(Some(username.clone()))
                >
                    "Delete"
                </button>
            }
            .into_any()
        }
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
                    " — shown once: hand it over now. Sessions opened with the old password have ended."
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

/// Says that an action without a result was done, or why it failed.
#[component]
fn ActionDoneNotice(
    result: impl Fn() -> Option<Result<(), AppError>> + Send + Sync + 'static,
    done: &'static str,
) -> impl IntoView {
    move || {
        result().map(|outcome| match outcome {
            Ok(()) => view! { <p class="notice" role="status">{done}</p> }.into_any(),
            Err(error) => view! { <crate::components::notice::ErrorNotice error /> }.into_any(),
        })
    }
}
