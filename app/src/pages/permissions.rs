//! Permissions: the matrix of assistants × tools, grouped by server, with each effective
//! decision and the rule behind it. Everyone logged in reads it; admins flip single
//! tools, reset them to the tier's default, and grant or revoke a whole server at once.
//!
//! A hundred assistants × ten thousand tools is a million cells: the page shows a page of
//! tools for a page of assistants, filtered by assistant, server, decision and tool name,
//! all kept in the URL.

use crate::components::confirm::ConfirmStep;
use crate::components::live::{use_live_refresh, use_live_value};
use crate::components::notice::{ErrorNotice, NoServers};
use crate::components::pager::Pager;
use crate::error::AppError;
use crate::pages::fleet::{current_user_resource, may};
use crate::wire::{
    Decision, DecisionSource, PermissionCell, PermissionPageView, PermissionQuery, Role,
    ServerPermissions, Tier, UrlQuery,
};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use std::time::Duration;

/// How often the matrix refreshes on its own (tools and tiers change elsewhere too).
const REFRESH: Duration = Duration::from_secs(15);

/// The `tool` that stands for every tool of a server.
const EVERY_TOOL: &str = "*";

/// The part of the matrix `query` asks for (no query: the first page of everything).
#[server(prefix = "/api", endpoint = "permissions/matrix", input = Json)]
pub async fn get_permission_matrix(
    #[server(default)] query: PermissionQuery,
) -> Result<PermissionPageView, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.permission_page(query).await
    })
    .await
}

/// The page's query, read from its URL.
fn permissions_query() -> Memo<Result<PermissionQuery, String>> {
    let params = leptos_router::hooks::use_query_map();
    Memo::new(move |_| {
        params.with(|params| {
            PermissionQuery::from_pairs(params.into_iter().map(|(k, v)| (k.as_ref(), v)))
        })
    })
}

/// Sets an explicit decision for one tool (or `*`: every tool of the server), or removes it
/// (`decision` absent) so that the tier's patterns decide again.
#[server(prefix = "/api", endpoint = "permissions/set")]
pub async fn set_permission(
    assistant: String,
    server: String,
    tool: String,
    decision: Option<Decision>,
) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?
            .set_permission(&actor, &assistant, &server, &tool, decision)
            .await
    })
    .await
}

/// One change an admin asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionChange {
    assistant: String,
    server: String,
    /// A tool of the server, or [`EVERY_TOOL`].
    tool: String,
    /// `None`: back to the tier's default.
    decision: Option<Decision>,
}

impl PermissionChange {
    /// What the change covers: `search__lookup`, or `every search tool`.
    fn subject(&self) -> String {
        if self.tool == EVERY_TOOL {
            format!("every {} tool", self.server)
        } else {
            format!("{}__{}", self.server, self.tool)
        }
    }

    /// What was done, e.g. `claude: search__lookup → deny`.
    fn describe(&self) -> String {
        let to = self.decision.map_or("tier default", Decision::as_str);
        format!("{}: {} → {to}", self.assistant, self.subject())
    }

    /// The confirm step's question (asked for server-wide changes).
    fn question(&self) -> String {
        let (assistant, subject) = (&self.assistant, self.subject());
        match self.decision {
            Some(Decision::Allow) => format!("Grant {subject} to {assistant}?"),
            Some(Decision::Deny) => format!("Revoke {subject} from {assistant}?"),
            None => format!("Reset {subject} of {assistant} to the tier default?"),
        }
    }
}

/// The page's changes: the server-wide one awaiting confirmation, and the one sent last.
#[derive(Clone, Copy)]
struct PermissionChanges {
    confirming: RwSignal<Option<PermissionChange>>,
    send: Action<PermissionChange, (PermissionChange, Result<(), AppError>)>,
}

impl PermissionChanges {
    fn new() -> Self {
        let send = Action::new(|change: &PermissionChange| {
            let change = change.clone();
            async move {
                let result = set_permission(
                    change.assistant.clone(),
                    change.server.clone(),
                    change.tool.clone(),
                    change.decision,
                )
                .await;
                (change, result)
            }
        });
        PermissionChanges {
            confirming: RwSignal::new(None),
            send,
        }
    }
}

/// The `data-source` value of a cell: `explicit`, `server`, `pattern` or `unmatched`.
fn source_key(source: &DecisionSource) -> &'static str {
    match source {
        DecisionSource::Explicit => "explicit",
        DecisionSource::ServerWide => "server",
        DecisionSource::TierPattern(_) => "pattern",
        DecisionSource::Unmatched => "unmatched",
    }
}

/// The other decision.
fn opposite(decision: Decision) -> Decision {
    match decision {
        Decision::Allow => Decision::Deny,
        Decision::Deny => Decision::Allow,
    }
}

/// A toggle's label: the decision it sets.
fn decision_verb(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "Allow",
        Decision::Deny => "Deny",
    }
}

/// The matrix, its legend, and the last change's result.
#[component]
pub fn PermissionsPage() -> impl IntoView {
    let changes = PermissionChanges::new();
    let query = permissions_query();
    let first = Resource::new(
        move || query.get(),
        |query| async move { get_permission_matrix(query.map_err(AppError::Invalid)?).await },
    );
    let me = current_user_resource();
    let admin = Resource::new(|| (), move |_| may(me, Role::Admin));
    let send = changes.send;
    let result = move || {
        if send.pending().get() {
            return Some(view! { <p class="notice muted">"Saving…"</p> }.into_any());
        }
        let (change, outcome) = send.value().get()?;
        Some(match outcome {
            Ok(()) => view! {
                <p class="notice" role="status" data-testid="permission-result">
                    {change.describe()}
                </p>
            }
            .into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })
    };

    view! {
        <Title text="Permissions" />
        <h1>"Permissions"</h1>
        <p class="muted">
            "Which assistant may call which tool. An explicit entry for the tool decides first, then one for its whole server, then the first of the assistant's tier patterns that matches; nothing matching means deny. Changes apply from the next call."
        </p>
        <p class="perm-legend muted">
            <span class="perm perm-allow source-pattern">"allow"</span>
            <span class="perm perm-deny source-pattern">"deny"</span>
            " by the tier's patterns; "
            <span class="perm perm-allow source-explicit">"allow"</span>
            <span class="perm perm-deny source-explicit">"deny"</span>
            " set explicitly."
        </p>
        {result}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let admin = admin.await;
                match first.await {
                    Ok(page) if page.server_names.is_empty() => view! { <NoServers /> }.into_any(),
                    Ok(page) if page.assistant_names.is_empty() => {
                        view! {
                            <p class="notice" data-testid="no-assistants">
                                "No assistants yet: add one under " <a href="/assistants">"Assistants"</a> "."
                            </p>
                        }
                            .into_any()
                    }
                    Ok(page) => {
                        let query = query.get_untracked().unwrap_or_default();
                        view! { <PermissionsBody first=page query admin changes /> }.into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The filters and pagers of one URL, and its part of the matrix, kept current (another
/// admin's change, or this one's, redraws the cells; the filters stay as they are).
#[component]
fn PermissionsBody(
    first: PermissionPageView,
    query: PermissionQuery,
    admin: bool,
    changes: PermissionChanges,
) -> impl IntoView {
    let tick = use_live_refresh(REFRESH);
    let saved = changes.send.version();
    let version = Signal::derive(move || tick.get() + saved.get() as u64);
    let filters = (first.assistant_names.clone(), first.server_names.clone());
    let asked = query.clone();
    let live = use_live_value(first, version, move || get_permission_matrix(asked.clone()));
    let page = live.value;
    let filtered = query.is_filtered();
    let counts = move || {
        page.with(|p| {
            let tools = if filtered {
                format!("{} of {} tools match", p.rows.listed, p.total_tools)
            } else {
                format!("{} tools", p.total_tools)
            };
            format!(
                "{tools}; {} of {} assistants shown",
                p.assistants.len(),
                p.columns.listed
            )
        })
    };
    let (row_query, column_query) = (query.clone(), query.clone());
    view! {
        <PermissionFilters query filters />
        {move || live.failed.get().map(|error| view! { <ErrorNotice error /> })}
        <p class="muted" data-testid="permission-counts">{counts}</p>
        <Pager
            position=Signal::derive(move || page.with(|p| p.columns))
            href=move |to| column_query.on_columns(to).href("/permissions")
            label="Assistants"
            test_id="columns"
        />
        {move || {
            let PermissionPageView { assistants, servers, .. } = page.get();
            view! { <Matrix assistants servers admin changes /> }
        }}
        <Pager
            position=Signal::derive(move || page.with(|p| p.rows))
            href=move |to| row_query.on_page(to).href("/permissions")
            label="Tools"
        />
    }
}

/// The filters: a plain GET form, so the URL holds them.
#[component]
fn PermissionFilters(query: PermissionQuery, filters: (Vec<String>, Vec<String>)) -> impl IntoView {
    let (assistants, servers) = filters;
    let select = |name: &'static str,
                  label: &'static str,
                  values: Vec<String>,
                  chosen: Option<String>| {
        view! {
            <label>
                {label}
                <select name=name data-testid=format!("filter-{name}")>
                    <option value="">"any"</option>
                    {values
                        .into_iter()
                        .map(|value| {
                            let selected = chosen.as_ref() == Some(&value);
                            view! { <option value=value.clone() selected=selected>{value.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
        }
    };
    let decisions = vec!["allow".to_string(), "deny".to_string()];
    view! {
        <Form method="GET" action="/permissions" attr:class="inline-form filters" attr:data-testid="permission-filters">
            {select("assistant", "Assistant", assistants, query.assistant.clone())}
            {select("server", "Server", servers, query.server.clone())}
            {select("decision", "Decision", decisions, query.decision.map(|d| d.as_str().to_string()))}
            <label>
                "Tool"
                <input
                    type="search"
                    name="q"
                    maxlength="100"
                    placeholder="tool name"
                    value=query.search.clone().unwrap_or_default()
                    data-testid="filter-search"
                />
            </label>
            <button type="submit" data-testid="filter-apply">"Apply"</button>
            {query.is_filtered().then(|| view! { <A href="/permissions">"Clear filters"</A> })}
        </Form>
    }
}

/// The table: a column per shown assistant, a block of rows per server.
#[component]
fn Matrix(
    assistants: Vec<(String, Tier)>,
    servers: Vec<ServerPermissions>,
    admin: bool,
    changes: PermissionChanges,
) -> impl IntoView {
    let names: Vec<String> = assistants.iter().map(|(name, _)| name.clone()).collect();
    let empty = servers.is_empty().then(|| {
        view! { <p class="muted" data-testid="no-permission-rows">"No tool matches these filters."</p> }
    });
    view! {
        <div class="table-scroll">
            <table class="data matrix" data-testid="permissions">
                <thead>
                    <tr>
                        <th scope="col">"Tool"</th>
                        {assistants
                            .into_iter()
                            .map(|(name, tier)| view! { <AssistantHeader name tier /> })
                            .collect_view()}
                    </tr>
                </thead>
                {servers
                    .into_iter()
                    .map(|server| view! { <ServerBlock server names=names.clone() admin changes /> })
                    .collect_view()}
            </table>
        </div>
        {empty}
    }
}

/// An assistant's column header: its name and tier.
#[component]
fn AssistantHeader(name: String, tier: Tier) -> impl IntoView {
    let hook = name.clone();
    view! {
        <th scope="col" data-assistant=hook>
            <span class="nowrap">{name}</span>
            <span class=format!("pill tier-{tier}")>{tier.as_str()}</span>
        </th>
    }
}

/// One server: a header row (with the server-wide controls for admins) and a row per tool.
#[component]
fn ServerBlock(
    server: ServerPermissions,
    names: Vec<String>,
    admin: bool,
    changes: PermissionChanges,
) -> impl IntoView {
    let ServerPermissions {
        server: server_name,
        tools,
    } = server;
    let heading = if admin {
        let bulk = names
            .iter()
            .map(|assistant| {
                view! {
                    <td class="bulk">
                        <BulkControls server=server_name.clone() assistant=assistant.clone() changes />
                    </td>
                }
            })
            .collect_view();
        view! {
            <tr class="server-row">
                <th scope="rowgroup">{server_name.clone()}</th>
                {bulk}
            </tr>
        }
        .into_any()
    } else {
        view! {
            <tr class="server-row">
                <th scope="rowgroup" colspan=(names.len() + 1).to_string()>
                    {server_name.clone()}
                </th>
            </tr>
        }
        .into_any()
    };
    let rows = tools
        .into_iter()
        .map(|tool| {
            let cells = names
                .iter()
                .zip(tool.cells)
                .map(|(assistant, cell)| {
                    view! {
                        <DecisionCell
                            assistant=assistant.clone()
                            server=server_name.clone()
                            tool=tool.tool.clone()
                            cell
                            admin
                            changes
                        />
                    }
                })
                .collect_view();
            view! {
                <tr>
                    <th scope="row">
                        <code>{format!("{server_name}__{}", tool.tool)}</code>
                    </th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <tbody data-server=server_name.clone()>
            {heading}
            {rows}
        </tbody>
    }
}

/// One assistant's decision for one tool, with the admin's toggle and reset.
#[component]
fn DecisionCell(
    assistant: String,
    server: String,
    tool: String,
    cell: PermissionCell,
    admin: bool,
    changes: PermissionChanges,
) -> impl IntoView {
    let exposed = format!("{server}__{tool}");
    let decision = cell.decision.as_str();
    let source = source_key(&cell.source);
    let explained = cell.source.to_string();
    let controls = admin.then(|| {
        let send = changes.send;
        let flip_to = opposite(cell.decision);
        let flip = PermissionChange {
            assistant: assistant.clone(),
            server: server.clone(),
            tool: tool.clone(),
            decision: Some(flip_to),
        };
        let flip_label = format!("{} {exposed} for {assistant}", decision_verb(flip_to));
        // Only a tool's own entry can be removed here; a server-wide one is reset in the
        // server's row.
        let reset = (cell.source == DecisionSource::Explicit).then(|| {
            let change = PermissionChange {
                decision: None,
                ..flip.clone()
            };
            let label = format!("Reset {exposed} for {assistant} to the tier default");
            view! {
                <button
                    type="button"
                    class="secondary small"
                    aria-label=label
                    disabled=move || send.pending().get()
                    on:click=move |_| {
                        send.dispatch(change.clone());
                    }
                >
                    "Reset"
                </button>
            }
        });
        view! {
            <span class="perm-controls">
                <button
                    type="button"
                    class="secondary small"
                    aria-label=flip_label
                    disabled=move || send.pending().get()
                    on:click=move |_| {
                        send.dispatch(flip.clone());
                    }
                >
                    {decision_verb(flip_to)}
                </button>
                {reset}
            </span>
        }
    });
    view! {
        <td
            class=format!("perm perm-{decision} source-{source}")
            data-assistant=assistant
            data-tool=exposed
            data-decision=decision
            data-source=source
        >
            <span class="perm-decision">{decision}</span>
            <span class="perm-source">" · " {explained}</span>
            {controls}
        </td>
    }
}

/// Grant all, revoke all and reset for one server and one assistant, each confirmed first.
#[component]
fn BulkControls(server: String, assistant: String, changes: PermissionChanges) -> impl IntoView {
    let PermissionChanges { confirming, send } = changes;
    let bulk = |decision: Option<Decision>| PermissionChange {
        assistant: assistant.clone(),
        server: server.clone(),
        tool: EVERY_TOOL.to_string(),
        decision,
    };
    let offered = [
        (
            bulk(Some(Decision::Allow)),
            "Grant all",
            format!("Grant all {server} tools to {assistant}"),
        ),
        (
            bulk(Some(Decision::Deny)),
            "Revoke all",
            format!("Revoke all {server} tools from {assistant}"),
        ),
        (
            bulk(None),
            "Reset",
            format!("Reset all {server} tools of {assistant} to the tier default"),
        ),
    ];
    let here = (server.clone(), assistant.clone());
    let asking = Memo::new(move |_| {
        confirming
            .get()
            .filter(|change| (&change.server, &change.assistant) == (&here.0, &here.1))
    });
    move || match asking.get() {
        Some(change) => {
            let question = change.question();
            view! {
                <ConfirmStep
                    question
                    pending=send.pending()
                    on_confirm=move || {
                        confirming.set(None);
                        send.dispatch(change.clone());
                    }
                    on_cancel=move || confirming.set(None)
                />
            }
            .into_any()
        }
        None => view! {
            <span class="command-buttons" data-testid=format!("bulk-{server}-{assistant}")>
                {offered
                    .clone()
                    .into_iter()
                    .map(|(change, text, label)| {
                        view! {
                            <button
                                type="button"
                                class="secondary small"
                                aria-label=label
                                disabled=move || send.pending().get()
                                on:click=move |_| confirming.set(Some(change.clone()))
                            >
                                {text}
                            </button>
                        }
                    })
                    .collect_view()}
            </span>
        }
        .into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(tool: &str, decision: Option<Decision>) -> PermissionChange {
        PermissionChange {
            assistant: "claude".into(),
            server: "search".into(),
            tool: tool.into(),
            decision,
        }
    }

    #[test]
    fn changes_describe_what_they_do() {
        assert_eq!(
            change("lookup", Some(Decision::Deny)).describe(),
            "claude: search__lookup → deny"
        );
        assert_eq!(
            change("lookup", None).describe(),
            "claude: search__lookup → tier default"
        );
        assert_eq!(
            change(EVERY_TOOL, Some(Decision::Allow)).describe(),
            "claude: every search tool → allow"
        );
        assert_eq!(
            change(EVERY_TOOL, Some(Decision::Allow)).question(),
            "Grant every search tool to claude?"
        );
        assert_eq!(
            change(EVERY_TOOL, Some(Decision::Deny)).question(),
            "Revoke every search tool from claude?"
        );
        assert_eq!(
            change(EVERY_TOOL, None).question(),
            "Reset every search tool of claude to the tier default?"
        );
    }

    #[test]
    fn sources_have_stable_hooks() {
        assert_eq!(source_key(&DecisionSource::Explicit), "explicit");
        assert_eq!(source_key(&DecisionSource::ServerWide), "server");
        assert_eq!(
            source_key(&DecisionSource::TierPattern("read_*".into())),
            "pattern"
        );
        assert_eq!(source_key(&DecisionSource::Unmatched), "unmatched");
        assert_eq!(opposite(Decision::Allow), Decision::Deny);
        assert_eq!(opposite(Decision::Deny), Decision::Allow);
    }
}
