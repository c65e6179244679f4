//! Breakers: every instance's circuit breaker (state, consecutive failures, time to
//! half-open) and the recent transitions with their causes. Operators reset breakers after
//! a confirm step.

use crate::error::AppError;
use crate::pages::fleet::{
    Command, CommandCell, Commands, breaker_label, current_user_resource, format_half_open_in,
    get_fleet, may,
};
use crate::wire::{BreakerTransitionView, FleetView, InstanceView, format_timestamp_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// How often the Breakers page refreshes.
const REFRESH: Duration = Duration::from_secs(2);

/// How many transitions the page lists (each breaker keeps its newest 20).
const TRANSITIONS_SHOWN: usize = 100;

/// Recent breaker transitions of every instance, newest first.
#[server(prefix = "/api", endpoint = "fleet/breaker_transitions")]
pub async fn get_breaker_transitions() -> Result<Vec<BreakerTransitionView>, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.breaker_transitions().await
    })
    .await
}

/// The breakers table and the transitions; refreshed every two seconds.
#[component]
pub fn BreakersPage() -> impl IntoView {
    let tick = crate::components::live::use_live_refresh(REFRESH);
    let commands = Commands::new();
    let done = commands.version();
    let fleet = Resource::new(move || (tick.get(), done.get()), |_| get_fleet());
    let transitions = Resource::new(
        move || (tick.get(), done.get()),
        |_| get_breaker_transitions(),
    );
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
                    Ok(fleet) if fleet.servers.is_empty() => {
                        view! { <crate::components::notice::NoServers /> }.into_any()
                    }
                    Ok(fleet) => view! { <BreakersTable fleet commands operator /> }.into_any(),
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
                        Ok(transitions) if transitions.is_empty() => {
                            view! {
                                <p class="muted" data-testid="no-transitions">
                                    "None yet: every breaker has stayed closed."
                                </p>
                            }
                                .into_any()
                        }
                        Ok(transitions) => view! { <TransitionsTable transitions /> }.into_any(),
                        Err(error) => {
                            view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// One row per instance with its breaker.
#[component]
fn BreakersTable(fleet: FleetView, commands: Commands, operator: bool) -> impl IntoView {
    let instances: Vec<InstanceView> = fleet
        .servers
        .into_iter()
        .flat_map(|server| server.instances)
        .collect();
    view! {
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
                {instances
                    .into_iter()
                    .map(|instance| {
                        let id = instance.id.clone();
                        let half_open = format_half_open_in(&instance);
                        let actions = operator.then(|| {
                            view! {
                                <td class="actions">
                                    <CommandCell
                                        instance=instance.clone()
                                        commands
                                        offer=&[Command::ResetBreaker]
                                    />
                                </td>
                            }
                        });
                        view! {
                            <tr data-testid=format!("instance-{id}")>
                                <td><strong class="nowrap">{id.clone()}</strong></td>
                                <td>{instance.server.clone()}</td>
                                <td>
                                    <span
                                        class=format!("pill breaker-{}", instance.breaker)
                                        data-testid=format!("breaker-{id}")
                                    >
                                        {breaker_label(&instance.breaker).to_string()}
                                    </span>
                                </td>
                                <td class="num" data-testid=format!("failures-{id}")>
                                    {instance.consecutive_failures}
                                </td>
                                <td data-testid=format!("half-open-{id}")>{half_open}</td>
                                <td class="last-error-cell">
                                    <div class="last-error">{instance.last_error.clone()}</div>
                                </td>
                                {actions}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// The newest transitions, newest first.
#[component]
fn TransitionsTable(transitions: Vec<BreakerTransitionView>) -> impl IntoView {
    let total = transitions.len();
    let note = (total > TRANSITIONS_SHOWN).then(|| {
        view! {
            <p class="muted small">
                {format!("The newest {TRANSITIONS_SHOWN} of {total} transitions.")}
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
                    .take(TRANSITIONS_SHOWN)
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
