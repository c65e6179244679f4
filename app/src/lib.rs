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
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

use crate::components::layout::Layout;
use crate::pages::traces::{TracePage, TracesPage};
use crate::pages::{
    account::AccountPage, assistants::AssistantsPage, audit::AuditLogPage, breakers::BreakersPage,
    caches::CachesPage, fleet::FleetPage, login::LoginPage, not_found::NotFound,
    overview::OverviewPage, permissions::PermissionsPage, tools::ToolsPage, users::UsersPage,
};

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
                    <Route path=path!("fleet") view=FleetPage />
                    <Route path=path!("tools") view=ToolsPage />
                    <Route path=path!("breakers") view=BreakersPage />
                    <Route path=path!("caches") view=CachesPage />
                    <Route path=path!("traces") view=TracesPage />
                    <Route path=path!("traces/:trace_id") view=TracePage />
                    <Route path=path!("permissions") view=PermissionsPage />
                    <Route path=path!("assistants") view=AssistantsPage />
                    <Route path=path!("audit") view=AuditLogPage />
                    <Route path=path!("roi") view=crate::pages::roi::RoiPage />
                    <Route path=path!("users") view=UsersPage />
                    <Route path=path!("account") view=AccountPage />
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
    leptos::mount::hydrate_body(App);
}
