//! Breakers: every instance's circuit breaker (state, consecutive failures, time to
//! half-open) and the recent transitions with their causes. Operators reset breakers after
//! a confirm step. Breakers that need attention come first, a page at a time, so the page
//! stays short at a thousand instances.

use crate::components::live::use_live_value;
use crate::components::pager::Pager;
use crate::error::AppError;
use crate::pages::fleet::{
    Command, CommandCell, Commands, breaker_label, current_user_resource, format_half_open_in,
    get_fleet_page, may,
};
use crate::wire::{
    BreakerFilter, BreakerTransitionsView, FleetPageView, FleetQuery, InstanceOrder, InstanceView,
    OpenServers, UrlQuery, format_timestamp_utc,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use std::time::Duration;

/// How often the Breakers page refreshes.
const REFRESH: Duration = Duration::from_secs(2);

/// The newest breaker transitions of the fleet (at most a hundred), newest first.
#[server(prefix = "/api", endpoint = "fleet/breaker_transitions")]
pub async fn get_breaker_transitions() -> Result<BreakerTransitionsView, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    /// How many transitions the page lists (each breaker keeps its newest 20).
    const TRANSITIONS_SHOWN: usize = 100;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.breaker_transitions(TRANSITIONS_SHOWN).await
    })
    .await
}

/// The Breakers page's query: the URL's, over every server's instances, with the breakers
/// that need attention (open, half-open, counting failures) first, so a thousand
/// instances' first page shows what an on-call engineer looks for.
fn breakers_query() -> Memo<Result<FleetQuery, String>> {
    let params = leptos_router::hooks::use_query_map();
    Memo::new(move |_| {
        params.with(|params| {
            let mut query =
                FleetQuery::from_pairs(params.into_iter().map(|(k, v)| (k.as_ref(), v)))?;
            query.open = OpenServers::All;
            query.order = InstanceOrder::Attention;
            Ok(query)
        })
    })
}

/// The breakers table and the transitions; refreshed every two seconds.
#[component]
pub fn BreakersPage() -> impl IntoView {
    let tick = crate::components::live::use_live_refresh(REFRESH);
    let query = breakers_query();
    let fleet = Resource::new(
        move || query.get(),
        |query| async move { get_fleet_page(query.map_err(AppError::Invalid)?).await },
    );
    let transitions = Resource::new(move || tick.get(), |_| get_breaker_transitions());
    let me = current_user_resource();

    view! {
        <Title text="Breakers" />
        <h1>"Breakers"</h1>
        <p class="muted">
            "A breaker opens after consecutive failures of its instance and routes no calls to it; after the reset timeout it lets probe calls through (half-open), which close it or open it again."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let operator = may(me, crate::wire::Role::Operator).await;
                match fleet.await {
                    Ok(page) if page.total_servers == 0 => {
                        view! { <crate::components::notice::NoServers /> }.into_any()
                    }
                    Ok(page) => {
                        let query = query.get_untracked().unwrap_or_default();
                        view! { <BreakersTable first=page query tick operator /> }.into_any()
                    }
                    Err(error) => {
                        view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                    }
                }
            })}
        </Transition>
        <section class="card">
            <h2>"Recent transitions"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match transitions.await {
                        Ok(listed) if listed.transitions.is_empty() => {
                            view! {
                                <p class="muted" data-testid="no-transitions">
                                    "None yet: every breaker has stayed closed."
                                </p>
                            }
                                .into_any()
                        }
                        Ok(listed) => view! { <TransitionsTable listed /> }.into_any(),
                        Err(error) => {
                            view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// One row per listed instance with its breaker, kept current in place.
#[component]
fn BreakersTable(
    first: FleetPageView,
    query: FleetQuery,
    tick: ReadSignal<u64>,
    operator: bool,
) -> impl IntoView {
    let commands = Commands::new();
    let done = commands.version();
    let version = Signal::derive(move || tick.get() + done.get() as u64);
    let asked = query.clone();
    let live = use_live_value(first, version, move || get_fleet_page(asked.clone()));
    let page = live.value;
    let attention = query.breaker == Some(BreakerFilter::Attention);
    let counts = move || {
        page.with(|p| {
            let open: u32 = p.servers.iter().map(|s| s.breakers_open).sum();
            if attention {
                format!(
                    "{} of {} breakers need attention (open, half-open, or counting failures).",
                    p.position.listed, p.total_instances
                )
            } else {
                format!(
                    "{} breakers, {open} open or half-open; those that need attention first.",
                    p.total_instances
                )
            }
        })
    };
    let other = if attention {
        view! { <A href="/breakers" attr:data-testid="breakers-all">"Show every breaker"</A> }
            .into_any()
    } else {
        view! { <A href="/breakers?breaker=attention" attr:data-testid="breakers-attention">"Only those that need attention"</A> }
            .into_any()
    };
    view! {
        {move || live.failed.get().map(|error| view! { <crate::components::notice::ErrorNotice error /> })}
        <p class="muted" data-testid="breaker-counts">{counts} " " {other}</p>
        <table class="data" data-testid="breakers">
            <thead>
                <tr>
                    <th>"Instance"</th>
                    <th>"Server"</th>
                    <th>"State"</th>
                    <th class="num">"Consecutive failures"</th>
                    <th>"Half-open"</th>
                    <th>"Last error"</th>
                    {operator.then(|| view! { <th>"Actions"</th> })}
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || page.with(|p| p.instances.iter().map(|i| i.id.clone()).collect::<Vec<_>>())
                    key=|id| id.clone()
                    children=move |id| view! { <BreakerRow id page commands operator /> }
                />
            </tbody>
        </table>
        <Pager
            position=Signal::derive(move || page.with(|p| p.position))
            href=move |to| query.on_page(to).href("/breakers")
        />
    }
}

/// One instance's breaker; the reset button is redrawn only when the breaker changes.
#[component]
fn BreakerRow(
    id: String,
    page: RwSignal<FleetPageView>,
    commands: Commands,
    operator: bool,
) -> impl IntoView {
    let key = id.clone();
    let row = Memo::new(move |_| page.with(|p| p.instances.iter().find(|i| i.id == key).cloned()));
    let text = move |text: fn(&InstanceView) -> String| {
        move || row.with(|r| r.as_ref().map(text).unwrap_or_default())
    };
    let actions = operator.then(|| {
        let state = Memo::new(move |_| {
            row.with(|r| {
                r.as_ref()
                    .map(|i| (i.breaker.clone(), i.consecutive_failures == 0))
            })
        });
        view! {
            <td class="actions">
                {move || {
                    // Read, not only tracked: a memo computes (and follows its sources)
                    // only once it is read.
                    state.with(|_| ());
                    row.get_untracked().map(|instance| {
                        view! { <CommandCell instance commands offer=&[Command::ResetBreaker] /> }
                    })
                }}
            </td>
        }
    });
    view! {
        <tr data-testid=format!("instance-{id}")>
            <td><strong class="nowrap">{id.clone()}</strong></td>
            <td>{text(|i| i.server.clone())}</td>
            <td>
                <span
                    class=text(|i| format!("pill breaker-{}", i.breaker))
                    data-testid=format!("breaker-{id}")
                >
                    {text(|i| breaker_label(&i.breaker).to_string())}
                </span>
            </td>
            <td class="num" data-testid=format!("failures-{id}")>
                {text(|i| i.consecutive_failures.to_string())}
            </td>
            <td data-testid=format!("half-open-{id}")>{text(format_half_open_in)}</td>
            <td class="last-error-cell">
                <div class="last-error">{text(|i| i.last_error.clone().unwrap_or_default())}</div>
            </td>
            {actions}
        </tr>
    }
}

/// The newest transitions, newest first.
#[component]
fn TransitionsTable(listed: BreakerTransitionsView) -> impl IntoView {
    let BreakerTransitionsView { transitions, total } = listed;
    let shown = transitions.len();
    let note = (total > shown).then(|| {
        view! {
            <p class="muted small">
                {format!("The newest {shown} of {total} transitions.")}
            </p>
        }
    });
    view! {
        <table class="data" data-testid="breaker-transitions">
            <thead>
                <tr>
                    <th>"Time (UTC)"</th>
                    <th>"Instance"</th>
                    <th>"Change"</th>
                    <th>"Cause"</th>
                </tr>
            </thead>
            <tbody>
                {transitions
                    .into_iter()
                    .map(|t| {
                        view! {
                            <tr>
                                <td class="nowrap">{format_timestamp_utc(t.at_ms)}</td>
                                <td>{t.instance} <span class="muted">" (" {t.server} ")"</span></td>
                                <td class="nowrap">
                                    <span class=format!("pill breaker-{}", t.from)>
                                        {breaker_label(&t.from).to_string()}
                                    </span>
                                    " → "
                                    <span class=format!("pill breaker-{}", t.to)>
                                        {breaker_label(&t.to).to_string()}
                                    </span>
                                </td>
                                <td>{t.cause}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        {note}
    }
}
