//! Fleetdeck's dashboard: a Leptos app rendered on the server (feature `ssr`) and hydrated
//! in the browser (feature `hydrate`).
//!
//! - [`wire`]: the serde types both sides exchange;
//! - [`control`]: the `ControlPlane` seam the server implements (ssr only);
//! - [`auth`]: login, logout and the role checks every server function runs first;
//! - [`pages`]: one module per page, each with the server functions it calls;
//! - [`components`]: the layout and shared pieces.

#![recursion_limit = "256"]

pub mod auth;
pub mod components;
#[cfg(feature = "ssr")]
pub mod control;
pub mod error;
pub mod pages;
pub mod routes;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::Lazy;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

use crate::components::layout::Layout;
use crate::pages::{login::LoginPage, not_found::NotFound, overview::OverviewPage};

/// The HTML document around the app, rendered on the server; `stylesheet` is the CSS
/// file's URL (its name is hashed in a release build).
pub fn shell(options: LeptosOptions, stylesheet: String) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <link rel="stylesheet" id="leptos" href=stylesheet />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The dashboard: the login page and, behind it, the pages in the shared layout.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, once hydrated: mark <body> so that tests and
    // monitoring can tell a hydrated page from a server-rendered one.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "");
        }
    });
    view! {
        <Title formatter=|page: String| format!("{page} · Fleetdeck") />
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage />
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view=OverviewPage />
                    <Route path=path!("fleet") view={Lazy::<routes::Fleet>::new()} />
                    <Route path=path!("tools") view={Lazy::<routes::Tools>::new()} />
                    <Route path=path!("breakers") view={Lazy::<routes::Breakers>::new()} />
                    <Route path=path!("caches") view={Lazy::<routes::Caches>::new()} />
                    <Route path=path!("traces") view={Lazy::<routes::Traces>::new()} />
                    <Route path=path!("traces/:trace_id") view={Lazy::<routes::Trace>::new()} />
                    <Route path=path!("permissions") view={Lazy::<routes::Permissions>::new()} />
                    <Route path=path!("assistants") view={Lazy::<routes::Assistants>::new()} />
                    <Route path=path!("audit") view={Lazy::<routes::Audit>::new()} />
                    <Route path=path!("roi") view={Lazy::<routes::Roi>::new()} />
                    <Route path=path!("users") view={Lazy::<routes::Users>::new()} />
                    <Route path=path!("account") view={Lazy::<routes::Account>::new()} />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The browser's entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy routes: a page's split-off code is loaded before its part of the page hydrates.
    leptos::mount::hydrate_lazy(App);
}
