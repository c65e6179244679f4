//! Fleet: every server and its instances, live (health, admin state, breaker, load, latency).
//! Operators drain and undrain instances and reset breakers, each after a confirm step;
//! the server authorises and audits every command.
//!
//! The command machinery ([`Commands`], [`CommandCell`]) and the polling helper are shared
//! with the Breakers page.

use crate::components::chart::Chart;
use crate::components::events::FleetEvents;
use crate::components::layout::CurrentUser;
use crate::error::AppError;
use crate::pages::instances::{AddInstance, InstancesAdmin, RemoveInstance};
use crate::wire::{FleetView, InstanceView, Role, ServerView, format_duration_s};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// How often the Fleet page refreshes.
const REFRESH: Duration = Duration::from_secs(1);

/// Every server and its instances as they stand now.
#[server(prefix = "/api", endpoint = "fleet/get")]
pub async fn get_fleet() -> Result<FleetView, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.fleet().await
    })
    .await
}

/// Stops routing new calls to an instance; it is drained once its in-flight calls end.
#[server(prefix = "/api", endpoint = "fleet/drain")]
pub async fn drain_instance(instance: String) -> Result<InstanceView, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Operator).await?;
        control()?.drain_instance(&actor, &instance).await
    })
    .await
}

/// Returns a draining or drained instance to service.
#[server(prefix = "/api", endpoint = "fleet/undrain")]
pub async fn undrain_instance(instance: String) -> Result<InstanceView, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Operator).await?;
        control()?.undrain_instance(&actor, &instance).await
    })
    .await
}

/// Closes an instance's breaker and clears its failure count.
#[server(prefix = "/api", endpoint = "fleet/reset_breaker")]
pub async fn reset_breaker(instance: String) -> Result<InstanceView, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Operator).await?;
        control()?.reset_breaker(&actor, &instance).await
    })
    .await
}

/// The logged-in user as the layout provides it (read when the page is created).
pub(crate) fn current_user_resource() -> Option<CurrentUser> {
    use_context::<CurrentUser>()
}

/// Whether the logged-in user's role allows `need`. This only decides which buttons are
/// shown: the server checks the role on every command.
pub(crate) async fn may(me: Option<CurrentUser>, need: Role) -> bool {
    match me {
        Some(me) => me
            .await
            .ok()
            .flatten()
            .is_some_and(|user| user.role.allows(need)),
        None => false,
    }
}

/// An operator command on one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Stop routing new calls to it.
    Drain,
    /// Return it to service.
    Undrain,
    /// Close its breaker.
    ResetBreaker,
}

impl Command {
    /// The button's label.
    fn label(self) -> &'static str {
        match self {
            Command::Drain => "Drain",
            Command::Undrain => "Undrain",
            Command::ResetBreaker => "Reset breaker",
        }
    }

    /// The button's test id prefix.
    fn test_id(self) -> &'static str {
        match self {
            Command::Drain => "drain",
            Command::Undrain => "undrain",
            Command::ResetBreaker => "reset",
        }
    }

    /// The confirm step's question.
    fn question(self, instance: &str) -> String {
        match self {
            Command::Drain => format!("Drain {instance}?"),
            Command::Undrain => format!("Undrain {instance}?"),
            Command::ResetBreaker => format!("Reset the breaker of {instance}?"),
        }
    }

    /// The part of an instance's state the command changes.
    fn state_of(self, instance: &InstanceView) -> String {
        match self {
            Command::Drain | Command::Undrain => instance.admin.clone(),
            Command::ResetBreaker => breaker_label(&instance.breaker).to_string(),
        }
    }

    /// What the command did, e.g. `search-1: active → draining`.
    fn outcome(self, instance: &str, before: &str, after: &str) -> String {
        match self {
            Command::Drain | Command::Undrain => format!("{instance}: {before} → {after}"),
            Command::ResetBreaker => format!("{instance}: breaker {before} → {after}"),
        }
    }

    /// Whether the command makes sense for the instance as shown.
    fn applies_to(self, instance: &InstanceView) -> bool {
        match self {
            Command::Drain => instance.admin == "active",
            Command::Undrain => instance.admin != "active",
            Command::ResetBreaker => true,
        }
    }
}

/// A command an operator asked for, with the state they saw when asking.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandRequest {
    command: Command,
    instance: String,
    before: String,
}

/// What a sent command came back with.
type CommandResult = (CommandRequest, Result<InstanceView, AppError>);

/// A page's commands: the one awaiting confirmation, and the one sent last.
#[derive(Clone, Copy)]
pub struct Commands {
    confirming: RwSignal<Option<CommandRequest>>,
    send: Action<CommandRequest, CommandResult>,
}

impl Commands {
    /// No command asked for yet.
    pub fn new() -> Self {
        let send = Action::new(|request: &CommandRequest| {
            let request = request.clone();
            async move {
                let instance = request.instance.clone();
                let result = match request.command {
                    Command::Drain => drain_instance(instance).await,
                    Command::Undrain => undrain_instance(instance).await,
                    Command::ResetBreaker => reset_breaker(instance).await,
                };
                (request, result)
            }
        });
        Commands {
            confirming: RwSignal::new(None),
            send,
        }
    }

    /// Goes up each time a command completes: pages refetch on it.
    pub fn version(self) -> RwSignal<usize> {
        self.send.version()
    }
}

impl Default for Commands {
    fn default() -> Self {
        Commands::new()
    }
}

/// An instance's command buttons, the confirm step, and the last command's result.
#[component]
pub fn CommandCell(
    instance: InstanceView,
    commands: Commands,
    offer: &'static [Command],
) -> impl IntoView {
    let Commands { confirming, send } = commands;
    let id = instance.id.clone();
    // What each offered button would ask for (plain data: the buttons are redrawn from it).
    let offered: Vec<(CommandRequest, bool)> = offer
        .iter()
        .copied()
        .filter(|command| command.applies_to(&instance))
        .map(|command| {
            let request = CommandRequest {
                command,
                instance: id.clone(),
                before: command.state_of(&instance),
            };
            // Nothing to reset on a closed breaker that counted no failures.
            let idle = command == Command::ResetBreaker
                && instance.breaker == "closed"
                && instance.consecutive_failures == 0;
            (request, idle)
        })
        .collect();
    let buttons = move || {
        offered
            .iter()
            .cloned()
            .map(|(request, idle)| {
                let test_id = format!("{}-{}", request.command.test_id(), request.instance);
                let label = request.command.label();
                view! {
                    <button
                        type="button"
                        class="secondary small"
                        data-testid=test_id
                        disabled=move || idle || send.pending().get()
                        title=idle.then_some("the breaker is closed and counted no failures")
                        on:click=move |_| confirming.set(Some(request.clone()))
                    >
                        {label}
                    </button>
                }
            })
            .collect_view()
    };

    let confirm_for = id.clone();
    let asking = Memo::new(move |_| {
        confirming
            .get()
            .filter(|request| request.instance == confirm_for)
    });
    let step = move || match asking.get() {
        None => view! { <span class="command-buttons">{buttons()}</span> }.into_any(),
        Some(request) => {
            let question = request.command.question(&request.instance);
            view! {
                <span class="confirm-step" role="group" aria-label="Confirm the command">
                    <span>{question}</span>
                    <button
                        type="button"
                        class="small"
                        data-testid="confirm"
                        disabled=move || send.pending().get()
                        on:click=move |_| {
                            confirming.set(None);
                            send.dispatch(request.clone());
                        }
                    >
                        "Confirm"
                    </button>
                    <button
                        type="button"
                        class="secondary small"
                        data-testid="cancel"
                        on:click=move |_| confirming.set(None)
                    >
                        "Cancel"
                    </button>
                </span>
            }
            .into_any()
        }
    };

    let result_for = id;
    let result = move || {
        if send.pending().get() {
            // One message at a time: the command being sent replaces the last result.
            let sending_here = send
                .input()
                .get()
                .is_some_and(|request| request.instance == result_for);
            return sending_here
                .then(|| view! { <span class="action-result muted">"Sending…"</span> }.into_any());
        }
        let (request, outcome) = send.value().get()?;
        if request.instance != result_for {
            return None;
        }
        Some(match outcome {
            Ok(after) => {
                let text = request.command.outcome(
                    &request.instance,
                    &request.before,
                    &request.command.state_of(&after),
                );
                view! {
                    <span class="action-result ok" role="status" data-testid="action-result">
                        {text}
                    </span>
                }
                .into_any()
            }
            Err(error) => view! {
                <span class="action-result failed" role="alert" data-testid="action-result">
                    {format!("{}: {error}", request.instance)}
                </span>
            }
            .into_any(),
        })
    };

    view! {
        <div class="commands">
            {step}
            {result}
        </div>
    }
}

/// The breaker state's display name.
pub(crate) fn breaker_label(state: &str) -> &str {
    match state {
        "half_open" => "half-open",
        other => other,
    }
}

/// A latency in ms, shown with a sensible unit; `—` before any call.
fn format_latency(ms: Option<f64>) -> String {
    match ms {
        None => "—".to_string(),
        Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
        Some(ms) if ms < 1000.0 => format!("{ms:.0} ms"),
        Some(ms) => format!("{:.2} s", ms / 1000.0),
    }
}

/// Time until an open breaker lets probes through, e.g. `12s`.
pub(crate) fn format_half_open_in(instance: &InstanceView) -> String {
    match (instance.breaker.as_str(), instance.half_open_in_ms) {
        ("open", Some(ms)) => format!("in {}", format_duration_s(ms.div_ceil(1000))),
        ("half_open", _) => "now (probing)".to_string(),
        _ => "—".to_string(),
    }
}

/// How often the server charts are redrawn.
const CHART_REFRESH: Duration = Duration::from_secs(15);

/// The Load cell: utilisation, then what the instance's own metrics say (or why they could
/// not be read).
fn load_lines(instance: &InstanceView) -> Vec<String> {
    let mut lines = vec![format!("{:.0}% used", instance.utilisation * 100.0)];
    if let Some(scraped) = &instance.scraped {
        if let Some(cores) = scraped.cpu_cores {
            lines.push(format!("cpu {cores:.2} cores"));
        }
        if let Some(bytes) = scraped.resident_bytes {
            lines.push(format!("mem {:.0} MiB", bytes / (1024.0 * 1024.0)));
        }
        if let Some(n) = scraped.in_flight {
            lines.push(format!("reports {n:.0} in flight"));
        }
    } else if let Some(error) = &instance.scrape_error {
        lines.push(format!("scrape failed: {error}"));
    }
    lines
}

/// Servers with their instances; refreshed every second.
#[component]
pub fn FleetPage() -> impl IntoView {
    let tick = crate::components::live::use_live_refresh(REFRESH);
    let commands = Commands::new();
    let done = commands.version();
    let add = ServerAction::<AddInstance>::new();
    let remove = ServerAction::<RemoveInstance>::new();
    let fleet = Resource::new(
        move || {
            (
                tick.get(),
                done.get(),
                add.version().get(),
                remove.version().get(),
            )
        },
        |_| get_fleet(),
    );
    let me = current_user_resource();
    let chart_tick = crate::components::live::use_poll(CHART_REFRESH);

    view! {
        <Title text="Fleet" />
        <h1>"Fleet"</h1>
        <p class="muted">
            "Every server and its instances, live. Draining an instance routes no new calls to it; its in-flight calls finish, then it is drained."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let operator = may(me, Role::Operator).await;
                match fleet.await {
                    Ok(fleet) if fleet.servers.is_empty() => {
                        view! { <crate::components::notice::NoServers /> }.into_any()
                    }
                    Ok(fleet) => {
                        let admin = may(me, Role::Admin).await;
                        let admin_view = admin.then(|| view! { <InstancesAdmin fleet=fleet.clone() add remove /> });
                        let advice = (!fleet.advice.is_empty()).then(|| {
                            view! {
                                <section class="card advice" data-testid="fleet-advice">
                                    <h2>"Capacity advice"</h2>
                                    <FleetEvents events=fleet.advice.clone() />
                                </section>
                            }
                        });
                        view! {
                            {advice}
                            {fleet
                                .servers
                                .into_iter()
                                .map(|server| view! { <ServerCard server commands operator chart_tick /> })
                                .collect_view()}
                            {admin_view}
                        }
                            .into_any()
                    }
                    Err(error) => {
                        view! { <crate::components::notice::ErrorNotice error /> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// One server: its settings and the table of its instances.
#[component]
fn ServerCard(
    server: ServerView,
    commands: Commands,
    operator: bool,
    chart_tick: ReadSignal<u64>,
) -> impl IntoView {
    let name = server.name.clone();
    let summary = [
        server.domain.map(|domain| format!("domain {domain}")),
        Some(format!("strategy {}", server.strategy)),
        Some(match server.instances.len() {
            1 => "1 instance".to_string(),
            n => format!("{n} instances"),
        }),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    let test_id = format!("server-{}", server.name);
    let anchor = format!("server-{}", server.name);
    view! {
        <section class="card server" data-testid=test_id id=anchor>
            <div class="server-head">
                <h2 class="server-name">{server.name}</h2>
                <span class="muted">{summary}</span>
            </div>
            <div class="table-scroll">
            <table class="data fleet">
                <thead>
                    <tr>
                        <th>"Instance"</th>
                        <th>"Health"</th>
                        <th>"Admin"</th>
                        <th>"Breaker"</th>
                        <th class="num">"In flight"</th>
                        <th class="num">"Calls"</th>
                        <th class="num">"Calls/s"</th>
                        <th class="num">"Failures"</th>
                        <th class="num">"p50"</th>
                        <th class="num">"p99"</th>
                        <th>"Load"</th>
                        <th>"Last error"</th>
                        {operator.then(|| view! { <th>"Actions"</th> })}
                    </tr>
                </thead>
                <tbody>
                    {server
                        .instances
                        .into_iter()
                        .map(|instance| view! { <InstanceRow instance commands operator /> })
                        .collect_view()}
                </tbody>
            </table>
            </div>
            <details class="server-charts">
                <summary>"Charts, last hour"</summary>
                <div class="charts">
                    <Chart kind="latency" alt=format!("{name}: latency percentiles") server=name.clone() tick=chart_tick />
                    <Chart kind="calls" alt=format!("{name}: calls and errors") server=name.clone() tick=chart_tick />
                    <Chart kind="utilisation" alt=format!("{name}: utilisation") server=name.clone() tick=chart_tick />
                </div>
            </details>
        </section>
    }
}

/// One instance's row.
#[component]
fn InstanceRow(instance: InstanceView, commands: Commands, operator: bool) -> impl IntoView {
    let id = instance.id.clone();
    // Under the breaker's state: what it counted and when it lets probes through.
    let breaker_notes: Vec<String> =
        match (instance.breaker.as_str(), instance.consecutive_failures) {
            ("closed", 0) => Vec::new(),
            ("open", n) => vec![
                format!("{n} failures"),
                format!("half-open {}", format_half_open_in(&instance)),
            ],
            (_, n) => vec![format!("{n} failures")],
        };
    let last_error = instance.last_error.clone().map(|cause| {
        let age = instance
            .last_error_age_s
            .map(|s| format!("{} ago", format_duration_s(s)));
        let title = cause.clone();
        view! {
            <div class="last-error" title=title>{cause}</div>
            {age.map(|age| view! { <div class="muted small">{age}</div> })}
        }
    });
    let health_note = match instance.probe_ms {
        Some(ms) => format!("ping {}", format_latency(Some(ms))),
        None => instance.health_reason.clone(),
    };
    let load = load_lines(&instance)
        .into_iter()
        .map(|line| view! { <div class="small nowrap">{line}</div> })
        .collect_view();
    let failures_class = if instance.failures > 0 {
        "num bad"
    } else {
        "num"
    };
    let actions = operator.then(|| {
        view! {
            <td class="actions">
                <CommandCell
                    instance=instance.clone()
                    commands
                    offer=&[Command::Drain, Command::Undrain, Command::ResetBreaker]
                />
            </td>
        }
    });
    view! {
        <tr data-testid=format!("instance-{id}")>
            <td>
                <strong class="nowrap">{id.clone()}</strong>
                <div class="endpoint muted" title=instance.endpoint.clone()>
                    {instance.endpoint.clone()}
                </div>
            </td>
            <td>
                <span
                    class=format!("pill health-{}", instance.health)
                    data-testid=format!("health-{id}")
                >
                    {instance.health.clone()}
                </span>
                <div class="muted small" title=instance.health_reason.clone() data-testid=format!("health-reason-{id}")>
                    {health_note}
                </div>
            </td>
            <td>
                <span
                    class=format!("pill admin-{}", instance.admin)
                    data-testid=format!("admin-{id}")
                >
                    {instance.admin.clone()}
                </span>
            </td>
            <td>
                <span
                    class=format!("pill breaker-{}", instance.breaker)
                    data-testid=format!("breaker-{id}")
                >
                    {breaker_label(&instance.breaker).to_string()}
                </span>
                {breaker_notes
                    .into_iter()
                    .map(|note| view! { <div class="muted small nowrap">{note}</div> })
                    .collect_view()}
            </td>
            <td class="num" data-testid=format!("inflight-{id}")>
                {format!("{} / {}", instance.in_flight, instance.max_in_flight)}
            </td>
            <td class="num" data-testid=format!("calls-{id}")>{instance.calls}</td>
            <td class="num" data-testid=format!("rate-{id}")>{format!("{:.1}", instance.calls_per_s)}</td>
            <td class=failures_class data-testid=format!("failures-{id}")>{instance.failures}</td>
            <td class="num">{format_latency(instance.p50_ms)}</td>
            <td class="num">{format_latency(instance.p99_ms)}</td>
            <td class="load" data-testid=format!("load-{id}")>{load}</td>
            <td class="last-error-cell">{last_error}</td>
            {actions}
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(admin: &str, breaker: &str) -> InstanceView {
        InstanceView {
            id: "search-1".into(),
            server: "search".into(),
            endpoint: "http://127.0.0.1:7001/mcp".into(),
            admin: admin.into(),
            health: "healthy".into(),
            breaker: breaker.into(),
            consecutive_failures: 0,
            half_open_in_ms: None,
            in_flight: 0,
            max_in_flight: 64,
            calls: 0,
            failures: 0,
            p50_ms: None,
            p99_ms: None,
            last_error: None,
            last_error_age_s: None,
            runtime: false,
            calls_per_s: 0.0,
            health_reason: "answering".into(),
            probe_ms: None,
            error_rate: None,
            utilisation: 0.0,
            scraped: None,
            scrape_error: None,
        }
    }

    #[test]
    fn commands_offer_what_applies_and_describe_their_outcome() {
        let active = instance("active", "closed");
        let drained = instance("drained", "half_open");
        assert!(Command::Drain.applies_to(&active));
        assert!(!Command::Undrain.applies_to(&active));
        assert!(!Command::Drain.applies_to(&drained));
        assert!(Command::Undrain.applies_to(&drained));
        assert_eq!(Command::Drain.question("search-1"), "Drain search-1?");
        assert_eq!(
            Command::Drain.outcome("search-1", "active", "draining"),
            "search-1: active → draining"
        );
        assert_eq!(Command::ResetBreaker.state_of(&drained), "half-open");
        assert_eq!(
            Command::ResetBreaker.outcome("search-1", "open", "closed"),
            "search-1: breaker open → closed"
        );
    }

    #[test]
    fn latencies_and_half_open_times_read_naturally() {
        assert_eq!(format_latency(None), "—");
        assert_eq!(format_latency(Some(3.25)), "3.2 ms");
        assert_eq!(format_latency(Some(412.6)), "413 ms");
        assert_eq!(format_latency(Some(2500.0)), "2.50 s");
        let mut open = instance("active", "open");
        open.half_open_in_ms = Some(11_200);
        assert_eq!(format_half_open_in(&open), "in 12s");
        assert_eq!(
            format_half_open_in(&instance("active", "half_open")),
            "now (probing)"
        );
        assert_eq!(format_half_open_in(&instance("active", "closed")), "—");
    }
}
