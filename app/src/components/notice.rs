//! Inline messages: an error in place, a one-time secret.

use crate::error::AppError;
use leptos::prelude::*;

/// An error shown where the failed action or load happened.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    view! {
        <p class="notice notice-error" role="alert">
            {error.to_string()}
        </p>
    }
}

/// Says the fleet is empty and how to give Fleetdeck one.
#[component]
pub fn NoServers() -> impl IntoView {
    view! {
        <p class="notice" data-testid="no-servers">
            "No servers: start Fleetdeck with " <code>"--fleet <file>"</code> " to manage a fleet."
        </p>
    }
}
