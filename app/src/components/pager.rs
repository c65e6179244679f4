//! Links to the other pages of a long listing (Fleet, Breakers, Tools, Caches,
//! Permissions): previous, where this page sits, next. Plain links, so the page number
//! lives in the URL like the filters.

use crate::wire::PagePosition;
use leptos::prelude::*;
use leptos_router::components::A;

/// The pager of a listing; nothing when it fits on one page. `href` gives a page's URL;
/// `label` names the listing for screen readers (and tells two pagers of a page apart);
/// `test_id` is the pager's test id and prefixes its links' (`pager-next`).
#[component]
pub fn Pager<F>(
    position: Signal<PagePosition>,
    href: F,
    #[prop(default = "Pages")] label: &'static str,
    #[prop(default = "pager")] test_id: &'static str,
) -> impl IntoView
where
    F: Fn(usize) -> String + Clone + Send + Sync + 'static,
{
    move || {
        let at = position.get();
        (at.pages > 1).then(|| {
            let link = |to: usize, text: &'static str, which: &str| {
                (to >= 1 && to <= at.pages && to != at.page).then(|| {
                    view! { <A href=href(to) attr:data-testid=format!("{test_id}-{which}")>{text}</A> }
                })
            };
            view! {
                <nav class="pager" aria-label=label data-testid=test_id>
                    {link(at.page.wrapping_sub(1), "‹ Previous", "previous")}
                    <span class="muted">{at.describe()}</span>
                    {link(at.page + 1, "Next ›", "next")}
                </nav>
            }
        })
    }
}
