//! Assistants: the MCP clients of the gateway, their tiers, API keys and the last day's
//! calls and refusals. Everyone logged in reads it; admins add assistants, change tiers,
//! issue keys (shown once) and revoke them.

use crate::components::confirm::ConfirmStep;
use crate::components::live::use_live_refresh;
use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::pages::fleet::{current_user_resource, may};
use crate::wire::{ApiKeyView, AssistantView, IssuedKey, Role, Tier, format_timestamp_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// How often the table refreshes (last use and the day's counters move with traffic).
const REFRESH: Duration = Duration::from_secs(10);

/// Every assistant with its keys and the last 24 hours' calls and refusals.
#[server(prefix = "/api", endpoint = "assistants/list")]
pub async fn list_assistants() -> Result<Vec<AssistantView>, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        require(Role::Viewer).await?;
        control()?.assistants().await
    })
    .await
}

/// Adds an assistant and issues its first key, shown once.
#[server(prefix = "/api", endpoint = "assistants/add")]
pub async fn add_assistant(name: String, tier: Tier) -> Result<IssuedKey, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.add_assistant(&actor, name.trim(), tier).await
    })
    .await
}

/// Changes an assistant's tier (its default permissions and rate limit).
#[server(prefix = "/api", endpoint = "assistants/set_tier")]
pub async fn set_assistant_tier(name: String, tier: Tier) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.set_assistant_tier(&actor, &name, tier).await
    })
    .await
}

/// Issues another key for an assistant, shown once.
#[server(prefix = "/api", endpoint = "assistants/issue_key")]
pub async fn issue_key(assistant: String) -> Result<IssuedKey, AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.issue_key(&actor, &assistant).await
    })
    .await
}

/// Revokes one key of an assistant.
#[server(prefix = "/api", endpoint = "assistants/revoke_key")]
pub async fn revoke_key(assistant: String, key_id: i64) -> Result<(), AppError> {
    use crate::auth::ssr::*;
    respond(async move {
        let actor = require(Role::Admin).await?;
        control()?.revoke_key(&actor, &assistant, key_id).await
    })
    .await
}

/// The admin's commands on the table's rows.
#[derive(Clone, Copy)]
struct RowCommands {
    set_tier: ServerAction<SetAssistantTier>,
    issue: ServerAction<IssueKey>,
    revoke: ServerAction<RevokeKey>,
    /// The key whose revocation awaits confirmation.
    confirming_revoke: RwSignal<Option<RevokeKey>>,
}

/// A time, or `never`.
fn format_optional_time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "never".to_string(), format_timestamp_utc)
}

/// The admin form, the key issued last, and the table.
#[component]
pub fn AssistantsPage() -> impl IntoView {
    let add = ServerAction::<AddAssistant>::new();
    let commands = RowCommands {
        set_tier: ServerAction::new(),
        issue: ServerAction::new(),
        revoke: ServerAction::new(),
        confirming_revoke: RwSignal::new(None),
    };
    let live = use_live_refresh(REFRESH);
    let assistants = Resource::new(
        move || {
            (
                live.get(),
                add.version().get(),
                commands.set_tier.version().get(),
                commands.issue.version().get(),
                commands.revoke.version().get(),
            )
        },
        |_| list_assistants(),
    );
    let me = current_user_resource();
    let admin = Resource::new(|| (), move |_| may(me, Role::Admin));

    // The secret of the key issued last (by adding an assistant or issuing a key), until
    // the admin dismisses it.
    let issued = RwSignal::new(None::<IssuedKey>);
    Effect::new(move |_| {
        if let Some(Ok(key)) = add.value().get() {
            issued.set(Some(key));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(key)) = commands.issue.value().get() {
            issued.set(Some(key));
        }
    });
    let row_errors = move || {
        [
            commands.set_tier.value().get().and_then(Result::err),
            commands.issue.value().get().and_then(Result::err),
            commands.revoke.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .map(|error| view! { <ErrorNotice error /> })
        .collect_view()
    };

    view! {
        <Title text="Assistants" />
        <h1>"Assistants"</h1>
        <p class="muted">
            "MCP clients of the gateway. Each authenticates with an API key; its tier sets its default permissions and rate limit. Counts cover the last 24 hours."
        </p>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                admin.await.then(|| view! { <AddAssistantForm add /> })
            })}
        </Transition>
        <IssuedKeyNotice issued />
        {row_errors}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let admin = admin.await;
                match assistants.await {
                    Ok(assistants) if assistants.is_empty() => {
                        view! {
                            <p class="notice" data-testid="no-assistants">
                                "No assistants yet."
                                {admin.then_some(" Add one above; its first key is shown once.")}
                            </p>
                        }
                            .into_any()
                    }
                    Ok(assistants) => view! { <AssistantsTable assistants admin commands /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Admins' form to add an assistant; the server's refusal shows under it.
#[component]
fn AddAssistantForm(add: ServerAction<AddAssistant>) -> impl IntoView {
    view! {
        <section class="card" data-testid="add-assistant">
            <h2>"Add an assistant"</h2>
            <ActionForm action=add attr:class="inline-form">
                <label>"Name" <input name="name" required maxlength="64" autocomplete="off" /></label>
                <label>"Tier" <TierSelect name="tier" selected=Tier::Viewer /></label>
                <button type="submit">"Add assistant"</button>
            </ActionForm>
            {move || add.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> })}
        </section>
    }
}

/// The key issued last, in clear, until dismissed: the only time anyone sees it.
#[component]
fn IssuedKeyNotice(issued: RwSignal<Option<IssuedKey>>) -> impl IntoView {
    move || {
        issued.get().map(|key| {
            view! {
                <div class="notice notice-secret issued-key" role="status">
                    <p>
                        "New API key for " <strong>{key.assistant}</strong> " (key #" {key.key_id}
                        "):"
                    </p>
                    <code class="secret" data-testid="issued-key">{key.key}</code>
                    <p class="muted">
                        "Copy it now and hand it to the assistant: it is stored only as a digest; it cannot be shown again."
                    </p>
                    <button type="button" class="secondary small" on:click=move |_| issued.set(None)>
                        "I have copied it"
                    </button>
                </div>
            }
        })
    }
}

/// One row per assistant.
#[component]
fn AssistantsTable(
    assistants: Vec<AssistantView>,
    admin: bool,
    commands: RowCommands,
) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="data assistants" data-testid="assistants">
                <thead>
                    <tr>
                        <th>"Assistant"</th>
                        <th>"Tier"</th>
                        <th>"Keys"</th>
                        <th>"Last used (UTC)"</th>
                        <th class="num">"Calls"</th>
                        <th class="num">"Denied"</th>
                        <th class="num">"Rate-limited"</th>
                        <th class="num">"Limit / min"</th>
                        {admin.then(|| view! { <th>"Actions"</th> })}
                    </tr>
                </thead>
                <tbody>
                    {assistants
                        .into_iter()
                        .map(|assistant| view! { <AssistantRow assistant admin commands /> })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// An assistant's row: tier (a select for admins), keys, activity, and Issue key.
#[component]
fn AssistantRow(assistant: AssistantView, admin: bool, commands: RowCommands) -> impl IntoView {
    let name = assistant.name.clone();
    let tier = if admin {
        let set_tier = commands.set_tier;
        let target = name.clone();
        view! {
            <TierSelect
                name="tier"
                selected=assistant.tier
                label=format!("Tier of {name}")
                test_id=format!("tier-{name}")
                on_pick=Box::new(move |tier: Tier| {
                    set_tier.dispatch(SetAssistantTier { name: target.clone(), tier });
                })
            />
        }
        .into_any()
    } else {
        view! { <span class=format!("pill tier-{}", assistant.tier)>{assistant.tier.as_str()}</span> }
            .into_any()
    };
    let keys = if assistant.keys.is_empty() {
        view! { <span class="muted">"no keys"</span> }.into_any()
    } else {
        view! {
            <ul class="keys">
                {assistant
                    .keys
                    .into_iter()
                    .map(|key| view! { <KeyItem assistant=name.clone() key admin commands /> })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    let count_class = |count: u64| if count > 0 { "num bad" } else { "num" };
    let actions = admin.then(|| {
        let issue = commands.issue;
        let target = name.clone();
        view! {
            <td>
                <button
                    type="button"
                    class="secondary small"
                    data-testid=format!("issue-key-{name}")
                    aria-label=format!("Issue a new key for {name}")
                    disabled=move || issue.pending().get()
                    on:click=move |_| {
                        issue.dispatch(IssueKey { assistant: target.clone() });
                    }
                >
                    "Issue key"
                </button>
            </td>
        }
    });
    view! {
        <tr data-testid=format!("assistant-{name}") data-assistant=name.clone()>
            <td><strong>{name.clone()}</strong></td>
            <td>{tier}</td>
            <td>{keys}</td>
            <td class="nowrap">{format_optional_time(assistant.last_used_at_ms)}</td>
            <td class="num" data-testid=format!("calls-{name}")>{assistant.calls_24h}</td>
            <td class=count_class(assistant.denials_24h) data-testid=format!("denials-{name}")>
                {assistant.denials_24h}
            </td>
            <td
                class=count_class(assistant.rate_limited_24h)
                data-testid=format!("rate-limited-{name}")
            >
                {assistant.rate_limited_24h}
            </td>
            <td class="num">{assistant.rate_per_min}</td>
            {actions}
        </tr>
    }
}

/// One key: prefix, who issued it when, last use, and its revocation (or Revoke for admins).
#[component]
fn KeyItem(
    assistant: String,
    key: ApiKeyView,
    admin: bool,
    commands: RowCommands,
) -> impl IntoView {
    let RowCommands {
        revoke,
        confirming_revoke,
        ..
    } = commands;
    let key_id = key.id;
    let state = match key.revoked_at_ms {
        Some(at) => view! {
            <span class="pill key-revoked">{format!("revoked {}", format_timestamp_utc(at))}</span>
        }
        .into_any(),
        None if admin => {
            let request = RevokeKey {
                assistant: assistant.clone(),
                key_id,
            };
            let question = format!(
                "Revoke key {}… of {assistant}? Calls with it are refused from then on.",
                key.prefix
            );
            let label = format!("Revoke key {}… of {assistant}", key.prefix);
            (move || {
                let asking = confirming_revoke
                    .get()
                    .is_some_and(|pending| pending.key_id == key_id);
                if asking {
                    let request = request.clone();
                    view! {
                        <ConfirmStep
                            question=question.clone()
                            pending=revoke.pending()
                            on_confirm=move || {
                                confirming_revoke.set(None);
                                revoke.dispatch(request.clone());
                            }
                            on_cancel=move || confirming_revoke.set(None)
                        />
                    }
                    .into_any()
                } else {
                    let request = request.clone();
                    view! {
                        <button
                            type="button"
                            class="secondary small"
                            data-testid=format!("revoke-{key_id}")
                            aria-label=label.clone()
                            disabled=move || revoke.pending().get()
                            on:click=move |_| confirming_revoke.set(Some(request.clone()))
                        >
                            "Revoke"
                        </button>
                    }
                    .into_any()
                }
            })
            .into_any()
        }
        None => view! { <span class="pill key-active">"active"</span> }.into_any(),
    };
    view! {
        <li
            class="key"
            class:revoked=key.revoked_at_ms.is_some()
            data-testid=format!("key-{key_id}")
            data-key-id=key_id.to_string()
        >
            <code>{format!("{}…", key.prefix)}</code>
            <span class="muted small">
                {format!(
                    " issued {} by {} · last used {}",
                    format_timestamp_utc(key.created_at_ms),
                    key.created_by,
                    format_optional_time(key.last_used_at_ms),
                )}
            </span>
            {state}
        </li>
    }
}

/// A `<select>` of the tiers with one preselected; `on_pick` runs when the choice changes.
#[component]
fn TierSelect(
    /// The form field's name.
    name: &'static str,
    /// The tier shown first.
    selected: Tier,
    /// The accessible name, when no `<label>` wraps the select.
    #[prop(optional, into)]
    label: Option<String>,
    /// The select's test id.
    #[prop(optional, into)]
    test_id: Option<String>,
    /// Called with the newly chosen tier.
    #[prop(optional)]
    on_pick: Option<Box<dyn Fn(Tier) + Send + Sync>>,
) -> impl IntoView {
    view! {
        <select
            name=name
            aria-label=label
            data-testid=test_id
            on:change=move |event| {
                if let (Some(on_pick), Ok(tier)) = (&on_pick, event_target_value(&event).parse()) {
                    on_pick(tier);
                }
            }
        >
            {Tier::ALL
                .into_iter()
                .map(|tier| {
                    view! {
                        <option value=tier.as_str() selected=tier == selected>
                            {tier.as_str()}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_times_read_never() {
        assert_eq!(format_optional_time(None), "never");
        assert_eq!(format_optional_time(Some(0)), "1970-01-01 00:00:00");
    }
}
