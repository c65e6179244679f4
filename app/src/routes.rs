//! The pages whose code the browser loads when they are first visited, not with the rest
//! of the dashboard. The wasm is split (`cargo leptos build --split`): the first load
//! carries the framework, the layout, the login page and the Overview (where a login
//! lands); each page below is a module of its own (plus chunks of the code it shares with
//! others), fetched when the page is opened and before it hydrates.

use leptos::prelude::*;

/// A route whose page is split off: `view` is the split point.
macro_rules! lazy_page {
    ($(#[$doc:meta])* $route:ident => $($page:ident)::+) => {
        $(#[$doc])*
        pub struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                use crate::pages::$($page)::+ as Page;
                view! { <Page /> }.into_any()
            }
        }
    };
}

lazy_page!(
    /// `/fleet`.
    Fleet => fleet::FleetPage
);
lazy_page!(
    /// `/tools`.
    Tools => tools::ToolsPage
);
lazy_page!(
    /// `/breakers`.
    Breakers => breakers::BreakersPage
);
lazy_page!(
    /// `/caches`.
    Caches => caches::CachesPage
);
lazy_page!(
    /// `/traces`.
    Traces => traces::TracesPage
);
lazy_page!(
    /// `/traces/:trace_id`.
    Trace => traces::TracePage
);
lazy_page!(
    /// `/permissions`.
    Permissions => permissions::PermissionsPage
);
lazy_page!(
    /// `/assistants`.
    Assistants => assistants::AssistantsPage
);
lazy_page!(
    /// `/audit`.
    Audit => audit::AuditLogPage
);
lazy_page!(
    /// `/roi`.
    Roi => roi::RoiPage
);
lazy_page!(
    /// `/users`.
    Users => users::UsersPage
);
lazy_page!(
    /// `/account`.
    Account => account::AccountPage
);
