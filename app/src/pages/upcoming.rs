//! The frame of a page whose engine is not in this build yet.

use leptos::prelude::*;
use leptos_meta::Title;

/// Names the page and says what it will show, so the navigation is complete and honest.
#[component]
pub fn Upcoming(title: &'static str, what: &'static str) -> impl IntoView {
    view! {
        <Title text=title />
        <h1>{title}</h1>
        <section class="card upcoming">
            <p>"This page is not part of this build yet. It will show " {what} "."</p>
        </section>
    }
}
