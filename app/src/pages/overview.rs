//! The Overview: the fleet at a glance (health, breakers, rates, charts, advice) and the
//! control plane's own state, refreshed live.

use crate::components::chart::Chart;
use crate::components::events::FleetEvents;
use crate::error::AppError;
use crate::wire::{
    AdminActionEntry, OverviewView, SystemStatus, format_duration_s, format_timestamp_utc,
};
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

/// The fleet at a glance.
#[server(prefix = "/api", endpoint = "overview/fleet")]
pub async fn get_overview() -> Result<OverviewView, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.overview().await
    })
    .await
}

/// How often the charts are redrawn while live.
const CHART_REFRESH: Duration = Duration::from_secs(15);

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
    let overview = Resource::new(move || tick.get(), |_| get_overview());
    let (chart_tick, set_chart_tick) = signal(0u64);
    let poll = crate::components::live::use_poll(CHART_REFRESH);
    Effect::new(move |_| {
        let moved = poll.get();
        if live.get_untracked() {
            set_chart_tick.set(moved);
        }
    });
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
                match overview.await {
                    Ok(overview) => view! { <FleetGlance overview /> }.into_any(),
                    Err(error) => {
                        view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                    }
                }
            })}
        </Transition>
        <section class="charts" data-testid="overview-charts">
            <Chart kind="latency" alt="Fleet latency percentiles, last hour".to_string() tick=chart_tick />
            <Chart kind="calls" alt="Fleet calls and errors per minute, last hour".to_string() tick=chart_tick />
            <Chart kind="hit-rate" alt="Fleet cache hit rate, last hour".to_string() tick=chart_tick />
        </section>
        <h2 class="section">"Control plane"</h2>
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

/// A ratio as a percentage with one decimal, or a dash.
fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// Milliseconds with sensible precision, or a dash.
fn millis(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms < 10.0 => format!("{ms:.2} ms"),
        Some(ms) => format!("{ms:.0} ms"),
        None => "–".to_string(),
    }
}

/// The fleet's cards, its servers and its recent events.
#[component]
fn FleetGlance(overview: OverviewView) -> impl IntoView {
    let count_of = |pairs: &[(String, u32)], name: &str| {
        pairs.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c)
    };
    let instances: u32 = overview.by_health.iter().map(|(_, c)| c).sum();
    let healthy = count_of(&overview.by_health, "healthy");
    let health_line = overview
        .by_health
        .iter()
        .filter(|(_, c)| *c > 0)
        .map(|(h, c)| format!("{c} {h}"))
        .collect::<Vec<_>>()
        .join(" · ");
    let admin_line = overview
        .by_admin
        .iter()
        .filter(|(_, c)| *c > 0)
        .map(|(a, c)| format!("{c} {a}"))
        .collect::<Vec<_>>()
        .join(" · ");
    let window = format!("last {} min", overview.window_minutes);
    let unhealthy = count_of(&overview.by_health, "unhealthy") > 0;
    view! {
        <section class="cards" data-testid="fleet-glance">
            <article class="card stat">
                <h2>"Instances"</h2>
                <p class="value" class:bad=unhealthy data-testid="instances-healthy">
                    {healthy} " / " {instances} " healthy"
                </p>
                <p class="muted" data-testid="instances-by-health">{health_line}</p>
                <p class="muted" data-testid="instances-by-admin">{admin_line}</p>
            </article>
            <article class="card stat">
                <h2>"Breakers"</h2>
                <p class="value" class:bad={overview.open_breakers > 0} data-testid="open-breakers">
                    {overview.open_breakers} " open"
                </p>
                <p class="muted">{overview.half_open_breakers} " half-open"</p>
            </article>
            <article class="card stat">
                <h2>"Calls"</h2>
                <p class="value" data-testid="calls-per-s">{format!("{:.2}/s", overview.calls_per_s)}</p>
                <p class="muted">{window.clone()}</p>
            </article>
            <article class="card stat">
                <h2>"Errors"</h2>
                <p class="value" data-testid="error-rate">{percent(overview.error_rate)}</p>
                <p class="muted">{window.clone()}</p>
            </article>
            <article class="card stat">
                <h2>"p99"</h2>
                <p class="value" data-testid="p99">{millis(overview.p99_ms)}</p>
                <p class="muted">"worst minute, " {window.clone()}</p>
            </article>
            <article class="card stat">
                <h2>"Cache hit rate"</h2>
                <p class="value" data-testid="hit-rate">{percent(overview.hit_rate)}</p>
                <p class="muted">{window}</p>
            </article>
        </section>
        {(!overview.advice.is_empty())
            .then(|| {
                view! {
                    <section class="card advice" data-testid="capacity-advice">
                        <h2>"Capacity advice"</h2>
                        <FleetEvents events=overview.advice.clone() />
                    </section>
                }
            })}
        <section class="card">
            <h2>"Servers"</h2>
            <table class="data" data-testid="server-glance">
                <thead>
                    <tr>
                        <th>"Server"</th>
                        <th>"Taking calls"</th>
                        <th>"Degraded"</th>
                        <th>"Open breakers"</th>
                        <th>"Calls"</th>
                        <th>"Errors"</th>
                        <th>"p99"</th>
                        <th>"Hit rate"</th>
                        <th>"Utilisation"</th>
                    </tr>
                </thead>
                <tbody>
                    {overview
                        .servers
                        .into_iter()
                        .map(|s| {
                            let down = s.taking_calls == 0;
                            view! {
                                <tr data-server=s.name.clone()>
                                    <td><a href=format!("/fleet#server-{}", s.name)>{s.name.clone()}</a></td>
                                    <td class:bad=down>{s.taking_calls} " / " {s.instances}</td>
                                    <td>{s.degraded}</td>
                                    <td class:bad={s.open_breakers > 0}>{s.open_breakers}</td>
                                    <td>{s.calls}</td>
                                    <td>{percent(s.error_rate)}</td>
                                    <td>{millis(s.p99_ms)}</td>
                                    <td>{percent(s.hit_rate)}</td>
                                    <td>{percent(s.utilisation)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Fleet events"</h2>
            {if overview.events.is_empty() {
                view! { <p class="muted">"No health changes or advice yet."</p> }.into_any()
            } else {
                view! { <FleetEvents events=overview.events /> }.into_any()
            }}
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
    // Replicas share PostgreSQL and follow each other's admin changes; SQLite is one replica.
    let (feed_value, feed_detail, feed_bad) = match &status.change_feed {
        None => (
            "single".to_string(),
            "SQLite: one replica".to_string(),
            false,
        ),
        Some(feed) if !feed.following => (
            "not following".to_string(),
            "other replicas' changes are not applied".to_string(),
            true,
        ),
        Some(feed) => (
            format!("{} applied", feed.applied),
            match feed.last_applied_ms {
                Some(at) => format!(
                    "last at {} UTC · {} resyncs",
                    format_clock_utc(at),
                    feed.resyncs
                ),
                None => format!("none yet · {} resyncs", feed.resyncs),
            },
            false,
        ),
    };
    view! {
        <section class="cards">
            <article class="card stat">
                <h2>"Control plane"</h2>
                <p class="value">"v" {status.version}</p>
                <p class="muted">"this replica: " <span data-testid="replica-id">{status.replica_id}</span></p>
            </article>
            <article class="card stat">
                <h2>"Changes from other replicas"</h2>
                <p class="value" class:bad=feed_bad data-testid="change-feed">{feed_value}</p>
                <p class="muted">{feed_detail}</p>
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
