//! Fleet: every server and its instances, live (health, admin state, breaker, load, latency).
//! Operators drain and undrain instances and reset breakers, each after a confirm step;
//! the server authorises and audits every command.
//!
//! At fleet scale each server is one summary row (instances by health and admin state,
//! load, worst p99) until expanded; filters and the search box select instances across the
//! fleet, a page at a time, and all of it lives in the URL. Live updates change the cells
//! that changed, keyed by server and instance, so rows and buttons stay where they are.
//!
//! The command machinery ([`Commands`], [`CommandCell`]) is shared with the Breakers page.

use crate::components::chart::Chart;
use crate::components::events::FleetEvents;
use crate::components::layout::CurrentUser;
use crate::components::live::use_live_value;
use crate::components::pager::Pager;
use crate::error::AppError;
use crate::pages::instances::{AddInstance, InstancesAdmin, RemoveInstance};
use crate::wire::{
    AdminFilter, BreakerFilter, FleetPageView, FleetQuery, FleetView, HealthFilter, InstanceView,
    OpenServers, Role, ServerSummaryView, UrlQuery, format_duration_s,
};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use std::time::Duration;

/// How often the Fleet page refreshes.
const REFRESH: Duration = Duration::from_secs(1);

/// Every server and its instances as they stand now (for scripts and tests; the page asks
/// for one page at a time).
#[server(prefix = "/api", endpoint = "fleet/get")]
pub async fn get_fleet() -> Result<FleetView, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.fleet().await
    })
    .await
}

/// The servers as summary rows and the instances `query` lists, a page at a time.
#[server(prefix = "/api", endpoint = "fleet/page", input = Json)]
pub async fn get_fleet_page(query: FleetQuery) -> Result<FleetPageView, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.fleet_page(query).await
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

/// The Fleet page's query, read from its URL.
fn fleet_query() -> Memo<Result<FleetQuery, String>> {
    let params = leptos_router::hooks::use_query_map();
    Memo::new(move |_| {
        params
            .with(|params| FleetQuery::from_pairs(params.into_iter().map(|(k, v)| (k.as_ref(), v))))
    })
}

/// Servers as summary rows, the instances the URL asks for, live.
#[component]
pub fn FleetPage() -> impl IntoView {
    let query = fleet_query();
    let add = ServerAction::<AddInstance>::new();
    let remove = ServerAction::<RemoveInstance>::new();
    let fleet = Resource::new(
        move || (query.get(), add.version().get(), remove.version().get()),
        |(query, _, _)| async move { get_fleet_page(query.map_err(AppError::Invalid)?).await },
    );
    let me = current_user_resource();

    view! {
        <Title text="Fleet" />
        <h1>"Fleet"</h1>
        <p class="muted">
            "Every server and its instances, live. Draining an instance routes no new calls to it; its in-flight calls finish, then it is drained."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let operator = may(me, Role::Operator).await;
                let admin = may(me, Role::Admin).await;
                match fleet.await {
                    Ok(page) if page.total_servers == 0 => {
                        view! { <crate::components::notice::NoServers /> }.into_any()
                    }
                    Ok(page) => {
                        let query = query.get_untracked().unwrap_or_default();
                        let admin_view = admin.then(|| {
                            view! {
                                <InstancesAdmin
                                    servers=page.server_names.clone()
                                    runtime=page.runtime.clone()
                                    add
                                    remove
                                />
                            }
                        });
                        view! {
                            <FleetBody first=page query operator />
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

/// The filters, the summary rows and the listed instances of one URL, kept current in
/// place: a live update changes the cells that changed, not the rows around them.
#[component]
fn FleetBody(first: FleetPageView, query: FleetQuery, operator: bool) -> impl IntoView {
    let tick = crate::components::live::use_live_refresh(REFRESH);
    let commands = Commands::new();
    let done = commands.version();
    let version = Signal::derive(move || tick.get() + done.get() as u64);
    let every = first.server_names.clone();
    let asked = query.clone();
    let live = use_live_value(first, version, move || get_fleet_page(asked.clone()));
    let page = live.value;
    let chart_tick = crate::components::live::use_poll(CHART_REFRESH);
    let advice = Memo::new(move |_| page.with(|p| p.advice.clone()));
    let listed_servers = move || {
        page.with(|p| {
            let mut names: Vec<String> = Vec::new();
            for instance in &p.instances {
                if names.last() != Some(&instance.server) {
                    names.push(instance.server.clone());
                }
            }
            names
        })
    };
    let expand_all = FleetQuery {
        open: OpenServers::All,
        page: 1,
        ..query.clone()
    }
    .href("/fleet");
    let filtered = query.is_filtered();
    let counts = move || {
        page.with(|p| {
            let servers = match p.servers.len() {
                1 => "1 server".to_string(),
                n => format!("{n} servers"),
            };
            if filtered {
                format!(
                    "{} of {} instances match, on {servers}",
                    p.position.listed, p.total_instances
                )
            } else {
                format!("{servers}, {} instances", p.total_instances)
            }
        })
    };
    let summary_query = query.clone();
    let pager_query = query.clone();
    let summary_every = every.clone();
    view! {
        {move || {
            let advice = advice.get();
            (!advice.is_empty())
                .then(|| {
                    view! {
                        <section class="card advice" data-testid="fleet-advice">
                            <h2>"Capacity advice"</h2>
                            <FleetEvents events=advice />
                        </section>
                    }
                })
        }}
        <FleetFilters query=query.clone() servers=every.clone() />
        {move || live.failed.get().map(|error| view! { <crate::components::notice::ErrorNotice error /> })}
        <section class="card">
            <div class="server-head">
                <h2>"Servers"</h2>
                <span class="muted" data-testid="fleet-counts">{counts}</span>
                {(!filtered).then(|| view! { <A href=expand_all attr:class="small">"Show every instance"</A> })}
            </div>
            <div class="table-scroll">
                <table class="data fleet-summary" data-testid="fleet-summary">
                    <thead>
                        <tr>
                            <th>"Server"</th>
                            <th class="num">"Instances"</th>
                            <th>"Health"</th>
                            <th class="num">"Out of service"</th>
                            <th class="num">"Breakers open"</th>
                            <th class="num">"In flight"</th>
                            <th class="num">"Calls/s"</th>
                            <th class="num">"Failures"</th>
                            <th class="num">"Worst p99"</th>
                            <th>{if filtered { "Matching" } else { "Instances" }}</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || page.with(|p| p.servers.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
                            key=|name| name.clone()
                            children=move |name| {
                                view! { <ServerSummaryRow name page query=summary_query.clone() every=summary_every.clone() /> }
                            }
                        />
                    </tbody>
                </table>
            </div>
        </section>
        <For
            each=listed_servers
            key=|name| name.clone()
            children=move |name| view! { <ServerCard name page commands operator chart_tick /> }
        />
        <Pager
            position=Signal::derive(move || page.with(|p| p.position))
            href=move |to| pager_query.on_page(to).href("/fleet")
        />
    }
}

/// The Fleet page's filters: a plain GET form, so the URL holds them (and it works before
/// the page is hydrated).
#[component]
fn FleetFilters(query: FleetQuery, servers: Vec<String>) -> impl IntoView {
    fn choice<T: Copy + PartialEq>(
        name: &'static str,
        label: &'static str,
        values: &'static [T],
        text: fn(T) -> &'static str,
        chosen: Option<T>,
    ) -> impl IntoView {
        view! {
            <label>
                {label}
                <select name=name data-testid=format!("filter-{name}")>
                    <option value="">"any"</option>
                    {values
                        .iter()
                        .map(|value| {
                            view! {
                                <option value=text(*value) selected=chosen == Some(*value)>
                                    {text(*value).replace('_', "-")}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
        }
    }
    let chosen_server = query.server.clone();
    view! {
        <Form method="GET" action="/fleet" attr:class="inline-form filters" attr:data-testid="fleet-filters">
            {choice("health", "Health", HealthFilter::ALL, HealthFilter::as_str, query.health)}
            {choice("admin", "Admin", AdminFilter::ALL, AdminFilter::as_str, query.admin)}
            {choice("breaker", "Breaker", BreakerFilter::ALL, BreakerFilter::as_str, query.breaker)}
            <label>
                "Server"
                <select name="server" data-testid="filter-server">
                    <option value="">"any"</option>
                    {servers
                        .into_iter()
                        .map(|name| {
                            let selected = chosen_server.as_ref() == Some(&name);
                            view! { <option value=name.clone() selected=selected>{name.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Search"
                <input
                    type="search"
                    name="q"
                    maxlength="100"
                    placeholder="instance id or URL"
                    value=query.search.clone().unwrap_or_default()
                    data-testid="filter-search"
                />
            </label>
            <button type="submit" data-testid="filter-apply">"Apply"</button>
            {query.is_filtered().then(|| view! { <A href="/fleet">"Clear filters"</A> })}
        </Form>
    }
}

/// One server's summary row; its cells follow live updates.
#[component]
fn ServerSummaryRow(
    name: String,
    page: RwSignal<FleetPageView>,
    query: FleetQuery,
    every: Vec<String>,
) -> impl IntoView {
    let key = name.clone();
    let summary =
        Memo::new(move |_| page.with(|p| p.servers.iter().find(|s| s.name == key).cloned()));
    let cell = move |text: fn(&ServerSummaryView) -> String| {
        move || summary.with(|s| s.as_ref().map(text).unwrap_or_default())
    };
    let health = move || {
        summary.with(|s| {
            let Some(s) = s else { return Vec::new() };
            [
                ("healthy", s.healthy),
                ("degraded", s.degraded),
                ("unhealthy", s.unhealthy),
                ("unknown", s.unknown),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(health, n)| {
                view! {
                    <span class=format!("pill health-{health}") title=health>{format!("{n} {health}")}</span>
                }
            })
            .collect::<Vec<_>>()
        })
    };
    let listing = if query.is_filtered() {
        view! { <span data-testid=format!("matched-{name}")>{cell(|s| s.matched.to_string())}</span> }
            .into_any()
    } else {
        let (listed, small_fleet) = page.with_untracked(|p| {
            let listed = p.servers.iter().any(|s| s.name == name && s.listed);
            (listed, p.total_instances <= crate::wire::PAGE_SIZE)
        });
        let label = if listed { "Hide" } else { "Show" };
        let href = query.toggled(&name, &every, small_fleet).href("/fleet");
        view! { <A href=href attr:data-testid=format!("toggle-{name}")>{label}</A> }.into_any()
    };
    let anchor = format!("summary-{name}");
    view! {
        <tr data-testid=anchor.clone() id=anchor>
            <td>
                <strong>{name.clone()}</strong>
                <div class="muted small">{cell(|s| s.domain.clone().unwrap_or_default())}</div>
            </td>
            <td class="num">{cell(|s| s.instances.to_string())}</td>
            <td class="health-counts" data-testid=format!("summary-health-{name}")>{health}</td>
            <td class="num">{cell(|s| s.out_of_service.to_string())}</td>
            <td class="num">{cell(|s| s.breakers_open.to_string())}</td>
            <td class="num">{cell(|s| s.in_flight.to_string())}</td>
            <td class="num">{cell(|s| format!("{:.1}", s.calls_per_s))}</td>
            <td class="num">{cell(|s| s.failures.to_string())}</td>
            <td class="num">{cell(|s| format_latency(s.p99_ms))}</td>
            <td>{listing}</td>
        </tr>
    }
}

/// One server's instances on this page, with its charts.
#[component]
fn ServerCard(
    name: String,
    page: RwSignal<FleetPageView>,
    commands: Commands,
    operator: bool,
    chart_tick: ReadSignal<u64>,
) -> impl IntoView {
    let key = name.clone();
    let summary = Memo::new(move |_| {
        page.with(|p| {
            p.servers.iter().find(|s| s.name == key).map(|server| {
                [
                    server
                        .domain
                        .as_ref()
                        .map(|domain| format!("domain {domain}")),
                    Some(format!("strategy {}", server.strategy)),
                    Some(match server.instances {
                        1 => "1 instance".to_string(),
                        n => format!("{n} instances"),
                    }),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · ")
            })
        })
    });
    let of_server = name.clone();
    let ids = move || {
        page.with(|p| {
            p.instances
                .iter()
                .filter(|i| i.server == of_server)
                .map(|i| i.id.clone())
                .collect::<Vec<_>>()
        })
    };
    let test_id = format!("server-{name}");
    view! {
        <section class="card server" data-testid=test_id.clone() id=test_id>
            <div class="server-head">
                <h2 class="server-name">{name.clone()}</h2>
                <span class="muted">{move || summary.get().unwrap_or_default()}</span>
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
                    <For
                        each=ids
                        key=|id| id.clone()
                        children=move |id| view! { <InstanceRow id page commands operator /> }
                    />
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

/// The state of an instance that decides which command buttons it offers: they are
/// redrawn only when it changes.
type CommandState = (String, String, bool);

/// One instance's row. Each cell follows live updates on its own; the command buttons are
/// redrawn only when what they offer changes.
#[component]
fn InstanceRow(
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
    let lines = move |lines: fn(&InstanceView) -> Vec<String>, class: &'static str| {
        move || {
            row.with(|r| r.as_ref().map(lines).unwrap_or_default())
                .into_iter()
                .map(|line| view! { <div class=class>{line}</div> })
                .collect_view()
        }
    };
    let last_error = move || {
        row.with(|r| {
            let instance = r.as_ref()?;
            let cause = instance.last_error.clone()?;
            let age = instance
                .last_error_age_s
                .map(|s| format!("{} ago", format_duration_s(s)));
            Some(view! {
                <div class="last-error" title=cause.clone()>{cause.clone()}</div>
                {age.map(|age| view! { <div class="muted small">{age}</div> })}
            })
        })
    };
    let actions = operator.then(|| {
        let state: Memo<Option<CommandState>> = Memo::new(move |_| {
            row.with(|r| {
                r.as_ref().map(|i| {
                    (
                        i.admin.clone(),
                        i.breaker.clone(),
                        i.consecutive_failures == 0,
                    )
                })
            })
        });
        view! {
            <td class="actions">
                {move || {
                    // Read, not only tracked: a memo computes (and follows its sources)
                    // only once it is read.
                    state.with(|_| ());
                    row.get_untracked().map(|instance| {
                        view! {
                            <CommandCell
                                instance
                                commands
                                offer=&[Command::Drain, Command::Undrain, Command::ResetBreaker]
                            />
                        }
                    })
                }}
            </td>
        }
    });
    view! {
        <tr data-testid=format!("instance-{id}")>
            <td>
                <strong class="nowrap">{id.clone()}</strong>
                <div class="endpoint muted" title=text(|i| i.endpoint.clone())>
                    {text(|i| i.endpoint.clone())}
                </div>
            </td>
            <td>
                <span
                    class=text(|i| format!("pill health-{}", i.health))
                    data-testid=format!("health-{id}")
                >
                    {text(|i| i.health.clone())}
                </span>
                <div
                    class="muted small"
                    title=text(|i| i.health_reason.clone())
                    data-testid=format!("health-reason-{id}")
                >
                    {text(health_note)}
                </div>
            </td>
            <td>
                <span
                    class=text(|i| format!("pill admin-{}", i.admin))
                    data-testid=format!("admin-{id}")
                >
                    {text(|i| i.admin.clone())}
                </span>
            </td>
            <td>
                <span
                    class=text(|i| format!("pill breaker-{}", i.breaker))
                    data-testid=format!("breaker-{id}")
                >
                    {text(|i| breaker_label(&i.breaker).to_string())}
                </span>
                {lines(breaker_notes, "muted small nowrap")}
            </td>
            <td class="num" data-testid=format!("inflight-{id}")>
                {text(|i| format!("{} / {}", i.in_flight, i.max_in_flight))}
            </td>
            <td class="num" data-testid=format!("calls-{id}")>{text(|i| i.calls.to_string())}</td>
            <td class="num" data-testid=format!("rate-{id}")>{text(|i| format!("{:.1}", i.calls_per_s))}</td>
            <td
                class=text(|i| if i.failures > 0 { "num bad" } else { "num" }.to_string())
                data-testid=format!("failures-{id}")
            >
                {text(|i| i.failures.to_string())}
            </td>
            <td class="num">{text(|i| format_latency(i.p50_ms))}</td>
            <td class="num">{text(|i| format_latency(i.p99_ms))}</td>
            <td class="load" data-testid=format!("load-{id}")>{lines(load_lines, "small nowrap")}</td>
            <td class="last-error-cell">{last_error}</td>
            {actions}
        </tr>
    }
}

/// Under the health pill: the probe's round trip, or why the instance has its health.
fn health_note(instance: &InstanceView) -> String {
    match instance.probe_ms {
        Some(ms) => format!("ping {}", format_latency(Some(ms))),
        None => instance.health_reason.clone(),
    }
}

/// Under the breaker's state: what it counted and when it lets probes through.
fn breaker_notes(instance: &InstanceView) -> Vec<String> {
    match (instance.breaker.as_str(), instance.consecutive_failures) {
        ("closed", 0) => Vec::new(),
        ("open", n) => vec![
            format!("{n} failures"),
            format!("half-open {}", format_half_open_in(instance)),
        ],
        (_, n) => vec![format!("{n} failures")],
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
