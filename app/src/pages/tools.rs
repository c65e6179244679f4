//! Tools: the catalog of every tool in the fleet, as assistants see it through the gateway.

use crate::components::live::use_live_refresh;
use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::wire::ToolView;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// Every tool of the fleet.
#[server(prefix = "/api", endpoint = "tools/get")]
pub async fn get_tools() -> Result<Vec<ToolView>, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.tools().await
    })
    .await
}

/// The catalog, one card per tool.
#[component]
pub fn ToolsPage() -> impl IntoView {
    let live = use_live_refresh(Duration::from_secs(30));
    let tools = Resource::new(move || live.get(), |_| get_tools());
    view! {
        <Title text="Tools" />
        <h1>"Tools"</h1>
        <p class="muted">
            "Every tool of the fleet under the name assistants call, with its description, input schema and annotations as the server declares them."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match tools.await {
                    Ok(tools) if tools.is_empty() => {
                        view! { <p class="muted">"No tools yet: the fleet has no server, or none has answered."</p> }
                            .into_any()
                    }
                    Ok(tools) => {
                        view! {
                            <p class="muted" data-testid="tool-count">{format!("{} tools", tools.len())}</p>
                            <div class="tool-list">
                                {tools.into_iter().map(|tool| view! { <ToolCard tool /> }).collect_view()}
                            </div>
                        }
                            .into_any()
                    }
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ToolCard(tool: ToolView) -> impl IntoView {
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
            <p class="muted">"Served by: " {tool.instances.join(", ")}</p>
            <details>
                <summary>"Input schema"</summary>
                <pre class="schema">{tool.input_schema.clone()}</pre>
            </details>
        </article>
    }
}
