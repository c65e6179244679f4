//! Caches: every server's tool-list and result caches with their hit rates; operators
//! invalidate one tool, one server or everything. Twenty servers a page, with a server
//! filter (kept in the URL), so the page stays short in a fleet of many servers. Live
//! updates change the counters in place: the invalidation controls are not redrawn under
//! an operator's pointer.

use crate::components::chart::Chart;
use crate::components::live::{use_live_refresh, use_live_value};
use crate::components::notice::ErrorNotice;
use crate::components::pager::Pager;
use crate::error::AppError;
use crate::pages::fleet::{current_user_resource, may};
use crate::wire::{CachePageView, CacheQuery, CacheView, UrlQuery};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use std::time::Duration;

/// How often the counters refresh.
const REFRESH: Duration = Duration::from_secs(2);

/// Every cache's counters (for scripts; the page asks for a page of servers at a time).
#[server(prefix = "/api", endpoint = "caches/get")]
pub async fn get_caches() -> Result<Vec<CacheView>, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.caches().await
    })
    .await
}

/// The caches of the servers `query` asks for, a page at a time.
#[server(prefix = "/api", endpoint = "caches/page", input = Json)]
pub async fn get_caches_page(query: CacheQuery) -> Result<CachePageView, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.caches_page(query).await
    })
    .await
}

/// Empties result caches: a tool's (server + tool), a server's (server) or all (neither).
#[server(prefix = "/api", endpoint = "caches/invalidate")]
pub async fn invalidate_cache(
    server: Option<String>,
    tool: Option<String>,
) -> Result<String, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        let actor = require(Role::Operator).await?;
        control()?.invalidate_cache(&actor, server, tool).await
    })
    .await
}

/// The page's query, read from its URL.
fn caches_query() -> Memo<Result<CacheQuery, String>> {
    let params = leptos_router::hooks::use_query_map();
    Memo::new(move |_| {
        params
            .with(|params| CacheQuery::from_pairs(params.into_iter().map(|(k, v)| (k.as_ref(), v))))
    })
}

/// The caches table and the invalidation controls.
#[component]
pub fn CachesPage() -> impl IntoView {
    let invalidate = ServerAction::<InvalidateCache>::new();
    let query = caches_query();
    let first = Resource::new(
        move || query.get(),
        |query| async move { get_caches_page(query.map_err(AppError::Invalid)?).await },
    );
    let me = current_user_resource();
    let operator = Resource::new(|| (), move |_| may(me, crate::wire::Role::Operator));
    let chart_tick = crate::components::live::use_poll(Duration::from_secs(15));

    view! {
        <Title text="Caches" />
        <h1>"Caches"</h1>
        <p class="muted">
            "Tool lists are kept per server for their TTL; results of tools marked cacheable in the fleet file are served from the result cache until they expire or are invalidated."
        </p>
        {move || {
            invalidate
                .value()
                .get()
                .map(|outcome| match outcome {
                    Ok(done) => {
                        view! {
                            <p class="notice" role="status" data-testid="invalidate-result">
                                {done}
                            </p>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                })
        }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let operator = operator.await;
                match first.await {
                    Ok(page) => {
                        let query = query.get_untracked().unwrap_or_default();
                        view! { <CachesBody first=page query operator invalidate chart_tick /> }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
        <section class="charts" data-testid="cache-charts">
            <Chart kind="hit-rate" alt="Fleet cache hit rate, last hour".to_string() tick=chart_tick />
        </section>
    }
}

/// The filter, the table of one URL's page, kept current in place, and its charts.
#[component]
fn CachesBody(
    first: CachePageView,
    query: CacheQuery,
    operator: bool,
    invalidate: ServerAction<InvalidateCache>,
    chart_tick: ReadSignal<u64>,
) -> impl IntoView {
    let tick = use_live_refresh(REFRESH);
    let done = invalidate.version();
    let version = Signal::derive(move || tick.get() + done.get() as u64);
    let servers = first.servers.clone();
    let position = first.position;
    let mut charted: Vec<String> = first
        .caches
        .iter()
        .filter(|c| c.kind == "results" && !c.cacheable.is_empty())
        .map(|c| c.server.clone())
        .collect();
    charted.dedup();
    let asked = query.clone();
    let live = use_live_value(first, version, move || get_caches_page(asked.clone()));
    let page = live.value;
    let pager_query = query.clone();
    view! {
        <CacheFilters query servers />
        {move || live.failed.get().map(|error| view! { <ErrorNotice error /> })}
        <table class="data" data-testid="caches">
            <thead>
                <tr>
                    <th>"Server"</th>
                    <th>"Cache"</th>
                    <th>"Entries"</th>
                    <th>"Hits"</th>
                    <th>"Misses"</th>
                    <th>"Hit rate"</th>
                    <th>"Evictions"</th>
                    <th>"TTL"</th>
                    <th>"Invalidate"</th>
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || page.with(|p| p.caches.iter().map(|c| (c.server.clone(), c.kind.clone())).collect::<Vec<_>>())
                    key=|key| key.clone()
                    children=move |(server, kind)| view! { <CacheRow server kind page operator invalidate /> }
                />
            </tbody>
        </table>
        {operator
            .then(|| {
                view! {
                    <ActionForm action=invalidate attr:class="inline-form spaced">
                        <button type="submit" class="secondary" data-testid="invalidate-all">
                            "Invalidate every result cache"
                        </button>
                    </ActionForm>
                }
            })}
        <Pager
            position=Signal::stored(position)
            href=move |to| pager_query.on_page(to).href("/caches")
        />
        <details class="server-charts" data-testid="server-hit-rates">
            <summary>"Hit rate per server, last hour"</summary>
            <div class="charts">
                {charted
                    .into_iter()
                    .map(|server| view! {
                        <Chart kind="hit-rate" alt=format!("{server}: cache hit rate") server=server tick=chart_tick />
                    })
                    .collect_view()}
            </div>
        </details>
    }
}

/// The server filter: a plain GET form, so the URL holds it.
#[component]
fn CacheFilters(query: CacheQuery, servers: Vec<String>) -> impl IntoView {
    let chosen = query.server.clone();
    view! {
        <Form method="GET" action="/caches" attr:class="inline-form filters" attr:data-testid="cache-filters">
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
            <button type="submit" data-testid="filter-apply">"Apply"</button>
            {query.server.is_some().then(|| view! { <A href="/caches">"Clear filter"</A> })}
        </Form>
    }
}

/// One cache: its counters follow live updates; the invalidation form stays put.
#[component]
fn CacheRow(
    server: String,
    kind: String,
    page: RwSignal<CachePageView>,
    operator: bool,
    invalidate: ServerAction<InvalidateCache>,
) -> impl IntoView {
    let key = (server.clone(), kind.clone());
    let row = Memo::new(move |_| {
        page.with(|p| {
            p.caches
                .iter()
                .find(|c| (&c.server, &c.kind) == (&key.0, &key.1))
                .cloned()
        })
    });
    let number = move |pick: fn(&CacheView) -> u64| {
        move || row.with(|r| r.as_ref().map(pick).unwrap_or_default())
    };
    let rate = move || {
        row.with(|r| {
            r.as_ref()
                .and_then(CacheView::hit_rate_percent)
                .map_or_else(|| "–".to_string(), |rate| format!("{rate:.1} %"))
        })
    };
    // What a row offers does not change while the page is open: read once.
    let (tools, ttl_s) = row
        .get_untracked()
        .map(|c| (c.cacheable, c.ttl_s))
        .unwrap_or_default();
    let id = format!("{server}-{kind}");
    let controls = (operator && kind == "results").then(|| {
        let options = tools.clone();
        let server = server.clone();
        view! {
            <ActionForm action=invalidate attr:class="inline-form">
                <input type="hidden" name="server" value=server.clone() />
                <select name="tool" data-testid=format!("tool-{server}")>
                    <option value="">"every tool"</option>
                    {options
                        .into_iter()
                        .map(|t| view! { <option value=t.clone()>{t.clone()}</option> })
                        .collect_view()}
                </select>
                <button type="submit" class="secondary" data-testid=format!("invalidate-{server}")>
                    "Invalidate"
                </button>
            </ActionForm>
        }
    });
    view! {
        <tr data-testid=format!("cache-{id}")>
            <td>{server.clone()}</td>
            <td>
                {kind.clone()}
                {(!tools.is_empty())
                    .then(|| view! { <span class="muted">" (" {tools.join(", ")} ")"</span> })}
            </td>
            <td data-testid=format!("entries-{id}")>{number(|c| c.entries)}</td>
            <td>{number(|c| c.hits)}</td>
            <td>{number(|c| c.misses)}</td>
            <td>{rate}</td>
            <td>{number(|c| c.evictions)}</td>
            <td>{format!("{ttl_s} s")}</td>
            <td>{controls}</td>
        </tr>
    }
}
