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
