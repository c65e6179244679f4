//! The Overview: the fleet at a glance. Today, the control plane's own state, refreshed live.

use crate::error::AppError;
use crate::wire::{AdminActionEntry, SystemStatus, format_duration_s, format_timestamp_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// How often the Overview refreshes while live.
const REFRESH: Duration = Duration::from_secs(2);

/// This replica's state: version, database, uptime, logins by role.
#[server(prefix = "/api", endpoint = "overview/status")]
pub async fn get_system_status() -> Result<SystemStatus, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.system_status().await
    })
    .await
}

/// The newest admin actions (for everyone: operators should see what changed).
#[server(prefix = "/api", endpoint = "overview/recent_admin_actions")]
pub async fn get_recent_admin_actions() -> Result<Vec<AdminActionEntry>, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    /// How many admin actions the Overview lists.
    const RECENT_ACTIONS: u32 = 8;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.recent_admin_actions(RECENT_ACTIONS).await
    })
    .await
}

/// Cards with the control plane's state; polls while "live" is on.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let (live, set_live) = signal(true);
    let (tick, set_tick) = signal(0u64);
    // Effects run only in the browser, so the timer starts after hydration.
    Effect::new(move |_| {
        let timer = set_interval_with_handle(
            move || {
                if live.get_untracked() {
                    set_tick.update(|t| *t += 1);
                }
            },
            REFRESH,
        )
        .ok();
        on_cleanup(move || {
            if let Some(timer) = timer {
                timer.clear();
            }
        });
    });
    let status = Resource::new(move || tick.get(), |_| get_system_status());
    let actions = Resource::new(move || tick.get(), |_| get_recent_admin_actions());

    view! {
        <Title text="Overview" />
        <div class="page-head">
            <h1>"Overview"</h1>
            <button
                class="secondary"
                data-testid="live-toggle"
                aria-pressed=move || live.get().to_string()
                on:click=move |_| set_live.update(|on| *on = !*on)
            >
                {move || if live.get() { "Pause live updates" } else { "Resume live updates" }}
            </button>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Ok(status) => view! { <StatusCards status /> }.into_any(),
                    Err(error) => {
                        view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                    }
                }
            })}
        </Transition>
        <section class="card">
            <h2>"Recent admin actions"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match actions.await {
                        Ok(actions) if actions.is_empty() => {
                            view! { <p class="muted">"None yet."</p> }.into_any()
                        }
                        Ok(actions) => view! { <AdminActions actions /> }.into_any(),
                        Err(error) => {
                            view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// A table of admin actions, newest first.
#[component]
fn AdminActions(actions: Vec<AdminActionEntry>) -> impl IntoView {
    view! {
        <table class="data" data-testid="admin-actions">
            <thead>
                <tr>
                    <th>"Time (UTC)"</th>
                    <th>"Who"</th>
                    <th>"Action"</th>
                    <th>"Target"</th>
                    <th>"Change"</th>
                </tr>
            </thead>
            <tbody>
                {actions
                    .into_iter()
                    .map(|a| {
                        let change = match (a.before, a.after) {
                            (Some(before), Some(after)) => format!("{before} → {after}"),
                            (None, Some(after)) => after,
                            (Some(before), None) => format!("was {before}"),
                            (None, None) => String::new(),
                        };
                        view! {
                            <tr>
                                <td>{format_timestamp_utc(a.at_ms)}</td>
                                <td>{a.actor}</td>
                                <td><code>{a.action}</code></td>
                                <td>{a.target}</td>
                                <td>{change}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// The cards for one reading of the system status.
#[component]
fn StatusCards(status: SystemStatus) -> impl IntoView {
    let users = status
        .users_by_role
        .iter()
        .rev()
        .map(|(role, count)| format!("{count} {role}"))
        .collect::<Vec<_>>()
        .join(" · ");
    let database_state = if status.database_ok {
        "reachable"
    } else {
        "unreachable"
    };
    view! {
        <section class="cards">
            <article class="card stat">
                <h2>"Control plane"</h2>
                <p class="value">"v" {status.version}</p>
                <p class="muted">"this replica"</p>
            </article>
            <article class="card stat">
                <h2>"Database"</h2>
                <p class="value" class:bad=!status.database_ok>{status.database}</p>
                <p class="muted" data-testid="database-state">{database_state}</p>
            </article>
            <article class="card stat">
                <h2>"Uptime"</h2>
                <p class="value" data-testid="uptime">{format_duration_s(status.uptime_s)}</p>
                <p class="muted">
                    "as of " <span data-testid="as-of">{format_clock_utc(status.now_ms)}</span>
                    " UTC"
                </p>
            </article>
            <article class="card stat">
                <h2>"Logins"</h2>
                <p class="value compact">{users}</p>
                <p class="muted">"admins manage them under Users"</p>
            </article>
        </section>
    }
}

/// `HH:MM:SS` of a Unix-ms time, in UTC (the same on server and browser, so hydration matches).
fn format_clock_utc(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::format_clock_utc;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(format_clock_utc(0), "00:00:00");
        // 2026-11-22T13:04:05.678Z
        assert_eq!(format_clock_utc(1_795_352_645_678), "13:04:05");
    }
}
