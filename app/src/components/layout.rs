//! The frame around every page behind the login: top bar, navigation, content.

use crate::auth::{Logout, current_user};
use crate::wire::SessionUser;
use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

/// The logged-in user, as a resource pages can read (e.g. to show admin-only controls).
pub type CurrentUser = Resource<Result<Option<SessionUser>, crate::error::AppError>>;

/// The navigation, in the order operators scan it.
const NAV: [(&str, &str); 11] = [
    ("/", "Overview"),
    ("/fleet", "Fleet"),
    ("/tools", "Tools"),
    ("/breakers", "Breakers"),
    ("/caches", "Caches"),
    ("/traces", "Traces"),
    ("/permissions", "Permissions"),
    ("/assistants", "Assistants"),
    ("/audit", "Audit"),
    ("/roi", "ROI"),
    ("/users", "Users"),
];

/// Top bar with the user and logout, the side navigation, and the page in the middle.
#[component]
pub fn Layout() -> impl IntoView {
    let me: CurrentUser = Resource::new(|| (), |_| current_user());
    provide_context(me);
    let logout = ServerAction::<Logout>::new();

    view! {
        <div class="frame">
            <header class="topbar">
                <a class="brand" href="/">
                    "Fleetdeck"
                </a>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match me.await {
                            Ok(Some(user)) => {
                                view! {
                                    <a
                                        class="who"
                                        href="/account"
                                        data-testid="who"
                                        title="Your account: password and sessions"
                                    >
                                        {user.username}
                                        <span class="role">{user.role.as_str()}</span>
                                    </a>
                                    <ActionForm action=logout attr:class="logout">
                                        <button type="submit" data-testid="logout">
                                            "Log out"
                                        </button>
                                    </ActionForm>
                                }
                                    .into_any()
                            }
                            _ => view! { <a href="/login">"Log in"</a> }.into_any(),
                        }
                    })}
                </Transition>
            </header>
            <nav class="sidebar" aria-label="Pages">
                <ul>
                    {NAV
                        .into_iter()
                        .map(|(href, label)| {
                            view! {
                                <li>
                                    <A href=href exact=true>
                                        {label}
                                    </A>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <main class="content">
                <Outlet />
            </main>
        </div>
    }
}
