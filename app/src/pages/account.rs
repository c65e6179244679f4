//! Account: every logged-in user changes their own password here (the current one is
//! required) and can end their other sessions. Either change ends the user's other
//! sessions, on every replica; the session it is made from lives on.

use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;

/// Changes the session user's own password.
#[server(prefix = "/api", endpoint = "account/change_password")]
pub async fn change_own_password(
    current_password: String,
    new_password: String,
    repeated_password: String,
) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(crate::wire::Role::Viewer).await?;
        if new_password != repeated_password {
            return Err(AppError::Invalid(
                "the new password and its repetition differ".into(),
            ));
        }
        let stamp = control()?
            .change_own_password(&actor, &current_password, &new_password)
            .await?;
        keep_own_session(&actor, stamp).await
    })
    .await
}

/// Ends every session of the session user except this one.
#[server(prefix = "/api", endpoint = "account/logout_elsewhere")]
pub async fn logout_elsewhere() -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(crate::wire::Role::Viewer).await?;
        let stamp = control()?
            .logout_everywhere(&actor, &actor.username)
            .await?;
        keep_own_session(&actor, stamp).await
    })
    .await
}

/// The password form and the "log out elsewhere" command.
#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangeOwnPassword>::new();
    let elsewhere = ServerAction::<LogoutElsewhere>::new();
    view! {
        <Title text="Account" />
        <h1>"Account"</h1>
        <section class="card">
            <h2>"Change your password"</h2>
            <p class="muted">
                "At least 12 characters. Your other sessions end; this one stays logged in."
            </p>
            <ActionForm action=change attr:class="stacked-form" attr:data-testid="change-password">
                <label>
                    "Current password"
                    <input
                        type="password"
                        name="current_password"
                        autocomplete="current-password"
                        required
                        maxlength="1024"
                    />
                </label>
                <label>
                    "New password"
                    <input
                        type="password"
                        name="new_password"
                        autocomplete="new-password"
                        required
                        minlength="12"
                        maxlength="1024"
                    />
                </label>
                <label>
                    "New password again"
                    <input
                        type="password"
                        name="repeated_password"
                        autocomplete="new-password"
                        required
                        minlength="12"
                        maxlength="1024"
                    />
                </label>
                <button type="submit" disabled=change.pending()>
                    "Change password"
                </button>
            </ActionForm>
            <Outcome result=move || change.value().get() done="Password changed." />
        </section>
        <section class="card">
            <h2>"Sessions"</h2>
            <p class="muted">
                "Logged in somewhere you no longer use? End every session of yours except this one."
            </p>
            <ActionForm action=elsewhere attr:class="inline-form">
                <button type="submit" class="secondary" data-testid="logout-elsewhere">
                    "Log out my other sessions"
                </button>
            </ActionForm>
            <Outcome
                result=move || elsewhere.value().get()
                done="Your other sessions have ended."
            />
        </section>
    }
}

/// Says an action was done, or why it failed.
#[component]
fn Outcome(
    result: impl Fn() -> Option<Result<(), AppError>> + Send + Sync + 'static,
    done: &'static str,
) -> impl IntoView {
    move || {
        result().map(|outcome| match outcome {
            Ok(()) => view! {
                <p class="notice" role="status" data-testid="account-done">
                    {done}
                </p>
            }
            .into_any(),
            Err(error) => view! { <crate::components::notice::ErrorNotice error /> }.into_any(),
        })
    }
}
