//! Tools: the catalog of every tool in the fleet, as assistants see it through the gateway.
//! A fleet of fifty servers lists ten thousand tools, so the page shows fifty at a time,
//! filtered by server and by a search over names and descriptions (kept in the URL).

use crate::components::live::{use_live_value, use_poll};
use crate::components::notice::ErrorNotice;
use crate::components::pager::Pager;
use crate::error::AppError;
use crate::wire::{ToolPageView, ToolQuery, ToolView, UrlQuery};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use std::time::Duration;

/// How often the listed tools are read again (catalogs change rarely).
const REFRESH: Duration = Duration::from_secs(30);

/// The tools `query` asks for, a page at a time.
#[server(prefix = "/api", endpoint = "tools/page", input = Json)]
pub async fn get_tools_page(query: ToolQuery) -> Result<ToolPageView, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.tools_page(query).await
    })
    .await
}

/// The page's query, read from its URL.
fn tools_query() -> Memo<Result<ToolQuery, String>> {
    let params = leptos_router::hooks::use_query_map();
    Memo::new(move |_| {
        params
            .with(|params| ToolQuery::from_pairs(params.into_iter().map(|(k, v)| (k.as_ref(), v))))
    })
}

/// The filters, the count, a card per tool and the pager.
#[component]
pub fn ToolsPage() -> impl IntoView {
    let query = tools_query();
    let tools = Resource::new(
        move || query.get(),
        |query| async move { get_tools_page(query.map_err(AppError::Invalid)?).await },
    );
    view! {
        <Title text="Tools" />
        <h1>"Tools"</h1>
        <p class="muted">
            "Every tool of the fleet under the name assistants call, with its description, input schema and annotations as the server declares them."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match tools.await {
                    Ok(page) if page.total == 0 => {
                        view! { <p class="muted">"No tools yet: the fleet has no server, or none has answered."</p> }
                            .into_any()
                    }
                    Ok(page) => {
                        let query = query.get_untracked().unwrap_or_default();
                        view! { <ToolList page query /> }.into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One page of tools under its filters; the cards follow catalog changes (polled), the
/// filters stay as the user left them.
#[component]
fn ToolList(page: ToolPageView, query: ToolQuery) -> impl IntoView {
    let servers = page.servers.clone();
    let filtered = query.is_filtered();
    let asked = query.clone();
    let live = use_live_value(page, use_poll(REFRESH).into(), move || {
        get_tools_page(asked.clone())
    });
    let page = live.value;
    let count = move || {
        page.with(|p| {
            if filtered {
                format!("{} of {} tools match", p.position.listed, p.total)
            } else {
                format!("{} tools", p.total)
            }
        })
    };
    let pager_query = query.clone();
    view! {
        <ToolFilters query servers />
        <p class="muted" data-testid="tool-count">{count}</p>
        <div class="tool-list">
            <For
                each=move || page.with(|p| p.tools.clone())
                key=|tool| tool.clone()
                children=|tool| view! { <ToolCard tool /> }
            />
        </div>
        <Pager
            position=Signal::derive(move || page.with(|p| p.position))
            href=move |to| pager_query.on_page(to).href("/tools")
        />
    }
}

/// The Tools page's filters: a plain GET form, so the URL holds them.
#[component]
fn ToolFilters(query: ToolQuery, servers: Vec<String>) -> impl IntoView {
    let chosen = query.server.clone();
    view! {
        <Form method="GET" action="/tools" attr:class="inline-form filters" attr:data-testid="tool-filters">
            <label>
                "Server"
                <select name="server" data-testid="filter-server">
                    <option value="">"any"</option>
                    {servers
                        .into_iter()
                        .map(|name| {
                            let selected = chosen.as_ref() == Some(&name);
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
                    placeholder="name or description"
                    value=query.search.clone().unwrap_or_default()
                    data-testid="filter-search"
                />
            </label>
            <button type="submit" data-testid="filter-apply">"Apply"</button>
            {query.is_filtered().then(|| view! { <A href="/tools">"Clear filters"</A> })}
        </Form>
    }
}

#[component]
fn ToolCard(tool: ToolView) -> impl IntoView {
    let more = (tool.instance_count as usize).saturating_sub(tool.instances.len());
    let served_by = match more {
        0 => tool.instances.join(", "),
        more => format!("{} and {more} more", tool.instances.join(", ")),
    };
    view! {
        <article class="card tool" data-testid=format!("tool-{}", tool.name)>
            <h2 class="tool-name">
                <code>{tool.name.clone()}</code>
                {tool.cacheable.then(|| view! { <span class="role">"cached"</span> })}
            </h2>
            {tool.title.clone().map(|t| view! { <p class="tool-title">{t}</p> })}
            <p>{tool.description.clone().unwrap_or_default()}</p>
            <p class="muted">
                "Annotations: "
                {if tool.annotations.is_empty() {
                    "none".to_string()
                } else {
                    tool.annotations.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
                }}
            </p>
            <p class="muted">"Served by: " {served_by}</p>
            <details>
                <summary>"Input schema"</summary>
                <pre class="schema">{tool.input_schema.clone()}</pre>
            </details>
        </article>
    }
}
