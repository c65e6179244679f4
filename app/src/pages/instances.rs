//! Adding and removing instances while running (admins). Instances added here are
//! persisted in the store and survive restarts; the fleet file's own are changed there.

use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::wire::InstanceView;
use leptos::prelude::*;

/// Adds a streamable-HTTP instance to a server.
#[server(prefix = "/api", endpoint = "fleet/add_instance")]
pub async fn add_instance(
    server: String,
    id: String,
    url: String,
) -> Result<InstanceView, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.add_instance(&actor, &server, &id, &url).await
    })
    .await
}

/// Removes an instance that was added while running.
#[server(prefix = "/api", endpoint = "fleet/remove_instance")]
pub async fn remove_instance(instance: String) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.remove_instance(&actor, &instance).await
    })
    .await
}

/// The admins' form to add an instance and the list of removable ones.
#[component]
pub fn InstancesAdmin(
    /// Every server's name.
    servers: Vec<String>,
    /// The instances added while running.
    runtime: Vec<InstanceView>,
    add: ServerAction<AddInstance>,
    remove: ServerAction<RemoveInstance>,
) -> impl IntoView {
    view! {
        <section class="card" data-testid="instances-admin">
            <h2>"Add an instance"</h2>
            <ActionForm action=add attr:class="inline-form">
                <label>
                    "Server"
                    <select name="server">
                        {servers
                            .into_iter()
                            .map(|name| view! { <option value=name.clone()>{name.clone()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>"Id" <input name="id" required maxlength="64" placeholder="search-4" /></label>
                <label>
                    "MCP URL"
                    <input name="url" type="url" required placeholder="http://10.0.0.7:7001/mcp" size="32" />
                </label>
                <button type="submit">"Add"</button>
            </ActionForm>
            {move || {
                add.value()
                    .get()
                    .map(|outcome| match outcome {
                        Ok(instance) => {
                            view! {
                                <p class="notice" role="status" data-testid="add-result">
                                    "Added " {instance.id} " to " {instance.server} "."
                                </p>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    })
            }}
            {move || remove.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> })}
            {(!runtime.is_empty())
                .then(|| {
                    view! {
                        <h2 class="spaced">"Added while running"</h2>
                        <ul class="plain">
                            {runtime
                                .into_iter()
                                .map(|i| {
                                    view! {
                                        <li>
                                            <ActionForm action=remove attr:class="inline-form">
                                                <span>{i.id.clone()} " (" {i.server.clone()} ", " {i.endpoint.clone()} ")"</span>
                                                <input type="hidden" name="instance" value=i.id.clone() />
                                                <button
                                                    type="submit"
                                                    class="secondary"
                                                    data-testid=format!("remove-{}", i.id)
                                                >
                                                    "Remove"
                                                </button>
                                            </ActionForm>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                })}
        </section>
    }
}
