//! Caches: every server's tool-list and result caches with their hit rates; operators
//! invalidate one tool, one server or everything.

use crate::components::chart::Chart;
use crate::components::live::use_live_refresh;
use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::pages::fleet::{current_user_resource, may};
use crate::wire::CacheView;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// Every cache's counters.
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

/// The caches table and the invalidation controls.
#[component]
pub fn CachesPage() -> impl IntoView {
    let invalidate = ServerAction::<InvalidateCache>::new();
    let live = use_live_refresh(Duration::from_secs(2));
    let caches = Resource::new(
        move || (live.get(), invalidate.version().get()),
        |_| get_caches(),
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
                match caches.await {
                    Ok(caches) => {
                        let mut servers: Vec<String> = caches
                            .iter()
                            .filter(|c| c.kind == "results" && !c.cacheable.is_empty())
                            .map(|c| c.server.clone())
                            .collect();
                        servers.dedup();
                        view! {
                            <CachesTable caches operator invalidate />
                            <details class="server-charts" data-testid="server-hit-rates">
                                <summary>"Hit rate per server, last hour"</summary>
                                <div class="charts">
                                    {servers
                                        .into_iter()
                                        .map(|server| view! {
                                            <Chart kind="hit-rate" alt=format!("{server}: cache hit rate") server=server tick=chart_tick />
                                        })
                                        .collect_view()}
                                </div>
                            </details>
                        }
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

#[component]
fn CachesTable(
    caches: Vec<CacheView>,
    operator: bool,
    invalidate: ServerAction<InvalidateCache>,
) -> impl IntoView {
    view! {
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
                {caches
                    .into_iter()
                    .map(|cache| {
                        let rate = cache
                            .hit_rate_percent()
                            .map_or_else(|| "–".to_string(), |r| format!("{r:.1} %"));
                        let id = format!("{}-{}", cache.server, cache.kind);
                        let results = cache.kind == "results";
                        let server = cache.server.clone();
                        let tools = cache.cacheable.clone();
                        view! {
                            <tr data-testid=format!("cache-{id}")>
                                <td>{cache.server.clone()}</td>
                                <td>
                                    {cache.kind.clone()}
                                    {(!tools.is_empty())
                                        .then(|| {
                                            view! { <span class="muted">" (" {tools.join(", ")} ")"</span> }
                                        })}
                                </td>
                                <td data-testid=format!("entries-{id}")>{cache.entries}</td>
                                <td>{cache.hits}</td>
                                <td>{cache.misses}</td>
                                <td>{rate}</td>
                                <td>{cache.evictions}</td>
                                <td>{format!("{} s", cache.ttl_s)}</td>
                                <td>
                                    {(operator && results)
                                        .then(|| {
                                            view! {
                                                <ActionForm action=invalidate attr:class="inline-form">
                                                    <input type="hidden" name="server" value=server.clone() />
                                                    <select name="tool" data-testid=format!("tool-{}", server)>
                                                        <option value="">"every tool"</option>
                                                        {tools
                                                            .iter()
                                                            .map(|t| view! { <option value=t.clone()>{t.clone()}</option> })
                                                            .collect_view()}
                                                    </select>
                                                    <button
                                                        type="submit"
                                                        class="secondary"
                                                        data-testid=format!("invalidate-{}", server)
                                                    >
                                                        "Invalidate"
                                                    </button>
                                                </ActionForm>
                                            }
                                        })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
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
    }
}
