//! The page for an unknown path.

use leptos::prelude::*;
use leptos_meta::Title;

/// Says the page does not exist and links back to the Overview.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <main class="login">
            <h1>"Not found"</h1>
            <p>"There is no page at this address."</p>
            <p>
                <a href="/">"Back to the Overview"</a>
            </p>
        </main>
    }
}
