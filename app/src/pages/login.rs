//! The login page.

use crate::auth::Login;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// User name and password; works before hydration too (a plain form post).
#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let pending = login.pending();

    view! {
        <Title text="Log in" />
        <main class="login">
            <h1>"Fleetdeck"</h1>
            <p class="tagline">"The control plane of your MCP fleet"</p>
            <ActionForm action=login attr:class="card login-form">
                <label>
                    "User name"
                    <input
                        name="username"
                        autocomplete="username"
                        required
                        autofocus
                        maxlength="64"
                    />
                </label>
                <label>
                    "Password"
                    <input
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        required
                        maxlength="1024"
                    />
                </label>
                <input type="hidden" name="next" value=next />
                <button type="submit" disabled=pending>
                    "Log in"
                </button>
                {move || {
                    login
                        .value()
                        .get()
                        .and_then(Result::err)
                        .map(|error| {
                            view! {
                                <p class="notice notice-error" role="alert" data-testid="login-error">
                                    {error.to_string()}
                                </p>
                            }
                        })
                }}
            </ActionForm>
        </main>
    }
}
