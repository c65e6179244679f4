//! Audit: the two trails, tool calls through the gateway and admin actions, filtered and
//! paginated, newest first. The filters live in the URL (a reload or a shared link shows
//! the same rows) and the CSV download takes the same filters.

pub mod datetime;
pub mod filters;

use self::datetime::{InvalidDateTime, format_datetime_local, parse_datetime_local};
use self::filters::{
    OUTCOMES, PAGE_SIZE, filter_pairs, kind_name, page_pairs, query_from_params, query_string,
};
use crate::components::notice::ErrorNotice;
use crate::error::AppError;
use crate::wire::{AdminActionEntry, AuditKind, AuditQuery, ToolCallEntry, format_timestamp_utc};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

/// The page's own path.
const AUDIT_PATH: &str = "/audit";

/// The CSV export of the same filters (served by the server, outside the app's routes).
const CSV_PATH: &str = "/api/audit.csv";

/// One page of the audit log.
#[server(prefix = "/api", endpoint = "audit/query")]
pub async fn query_audit(query: AuditQuery) -> Result<crate::wire::AuditPage, AppError> {
    use crate::auth::ssr::*;
    use crate::wire::Role;
    respond(async move {
        let reader = require(Role::Viewer).await?;
        control()?.audit(&reader, query).await
    })
    .await
}

/// A page of rows with the query that asked for it (links are built from that query).
type Fetched = (AuditQuery, Result<crate::wire::AuditPage, AppError>);

/// The page's URL for a query.
fn audit_href(query: &AuditQuery) -> String {
    format!("{AUDIT_PATH}{}", query_string(&page_pairs(query)))
}

/// Pages needed for `total` rows (at least one, so an empty result reads "page 1 of 1").
fn page_count(total: u64, page_size: u32) -> u64 {
    total.div_ceil(u64::from(page_size.max(1))).max(1)
}

/// The first characters of a long value, with an ellipsis.
fn shorten(text: &str, keep: usize) -> String {
    if text.chars().count() > keep {
        format!("{}…", text.chars().take(keep).collect::<String>())
    } else {
        text.to_string()
    }
}

/// An admin action's change: `before → after`, or whichever side was recorded.
fn change_text(before: Option<String>, after: Option<String>) -> String {
    match (before, after) {
        (Some(before), Some(after)) => format!("{before} → {after}"),
        (None, Some(after)) => after,
        (Some(before), None) => format!("was {before}"),
        (None, None) => String::new(),
    }
}

/// The trail switch, the filters, the rows and the pager, all read from the URL.
#[component]
pub fn AuditLogPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|params| query_from_params(|key| params.get(key))));
    // Applying the same filters again reloads the rows (the URL, and so `query`, is unchanged).
    let (reloads, set_reloads) = signal(0u32);
    let rows = Resource::new(
        move || (query.get(), reloads.get()),
        |(query, _)| async move {
            let result = query_audit(query.clone()).await;
            (query, result)
        },
    );

    view! {
        <Title text="Audit" />
        <h1>"Audit"</h1>
        <p class="muted">
            "Every tool call through the gateway and every admin action, newest first. Times are UTC."
        </p>
        {move || view! { <KindSwitch query=query.get() /> }}
        {move || view! { <FilterForm initial=query.get() reload=set_reloads /> }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (query, result): Fetched = rows.await;
                match result {
                    Ok(page) => view! { <AuditResults query page /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Links to the two trails, keeping the time range.
#[component]
fn KindSwitch(query: AuditQuery) -> impl IntoView {
    let link = |kind: AuditKind, label: &'static str| {
        let target = AuditQuery {
            kind,
            page: 1,
            ..query.clone()
        };
        let current = query.kind == kind;
        view! {
            <a
                href=audit_href(&target)
                class="tab"
                class:active=current
                aria-current=current.then_some("page")
                data-testid=format!("kind-{}", kind_name(kind))
            >
                {label}
            </a>
        }
    };
    view! {
        <nav class="tabs" aria-label="Audit trail">
            {link(AuditKind::Calls, "Tool calls")}
            {link(AuditKind::Admin, "Admin actions")}
        </nav>
    }
}

/// Why the filter form was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum FilterError {
    /// A time that does not parse.
    #[error("{0}: {1}")]
    Time(&'static str, InvalidDateTime),
    /// An empty or reversed range.
    #[error("the range is empty: \"from\" must be before \"to\"")]
    EmptyRange,
}

/// A `datetime-local` field's value as Unix ms (`None` when empty).
fn read_time(field: &'static str, value: &str) -> Result<Option<i64>, FilterError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    parse_datetime_local(value)
        .map(Some)
        .map_err(|error| FilterError::Time(field, error))
}

/// The filters of the shown trail. Applying navigates to the new URL, first page; the form
/// also works as a plain GET form before the page is hydrated.
#[component]
fn FilterForm(initial: AuditQuery, reload: WriteSignal<u32>) -> impl IntoView {
    let navigate = use_navigate();
    let kind = initial.kind;
    let text = |value: &Option<String>| RwSignal::new(value.clone().unwrap_or_default());
    let time = |ms: Option<i64>| RwSignal::new(ms.map(format_datetime_local).unwrap_or_default());
    let (who, assistant, tool, outcome) = (
        text(&initial.who),
        text(&initial.assistant),
        text(&initial.tool),
        text(&initial.outcome),
    );
    let (from, to) = (time(initial.from_ms), time(initial.to_ms));
    let error = RwSignal::new(None::<FilterError>);
    let optional = |value: String| {
        let value = value.trim().to_string();
        (!value.is_empty()).then_some(value)
    };
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let range = read_time("from", &from.get_untracked()).and_then(|from_ms| {
            let to_ms = read_time("to", &to.get_untracked())?;
            match (from_ms, to_ms) {
                (Some(from), Some(to)) if from >= to => Err(FilterError::EmptyRange),
                _ => Ok((from_ms, to_ms)),
            }
        });
        let (from_ms, to_ms) = match range {
            Ok(range) => range,
            Err(refusal) => {
                error.set(Some(refusal));
                return;
            }
        };
        error.set(None);
        let query = AuditQuery {
            kind,
            who: optional(who.get_untracked()),
            assistant: optional(assistant.get_untracked()),
            tool: optional(tool.get_untracked()),
            outcome: optional(outcome.get_untracked()),
            from_ms,
            to_ms,
            page: 1,
            page_size: PAGE_SIZE,
        };
        reload.update(|n| *n += 1);
        navigate(&audit_href(&query), NavigateOptions::default());
    };
    let field =
        |label: &'static str, name: &'static str, value: RwSignal<String>, hint: &'static str| {
            view! {
                <label>
                    {label}
                    <input
                        name=name
                        value=value.get_untracked()
                        placeholder=hint
                        autocomplete="off"
                        on:input=move |event| value.set(event_target_value(&event))
                    />
                </label>
            }
        };
    let trail_fields = match kind {
        AuditKind::Calls => view! {
            {field("Assistant", "assistant", assistant, "name")}
            {field("Tool", "tool", tool, "server__tool or server")}
            <label>
                "Outcome"
                <select name="outcome" on:change=move |event| outcome.set(event_target_value(&event))>
                    <option value="" selected=initial.outcome.is_none()>"any"</option>
                    {OUTCOMES
                        .into_iter()
                        .map(|name| {
                            view! {
                                <option value=name selected=initial.outcome.as_deref() == Some(name)>
                                    {name}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
        }
        .into_any(),
        AuditKind::Admin => field("Who", "who", who, "user name or cli").into_any(),
    };
    let time_field = |label: &'static str, name: &'static str, value: RwSignal<String>| {
        view! {
            <label>
                {label}
                <input
                    type="datetime-local"
                    name=name
                    value=value.get_untracked()
                    on:input=move |event| value.set(event_target_value(&event))
                />
            </label>
        }
    };
    let clear = audit_href(&AuditQuery {
        kind,
        page: 1,
        page_size: PAGE_SIZE,
        ..AuditQuery::default()
    });
    view! {
        <form
            class="card filters"
            method="get"
            action=AUDIT_PATH
            data-testid="audit-filters"
            on:submit=on_submit
        >
            <input type="hidden" name="kind" value=kind_name(kind) />
            {trail_fields}
            {time_field("From (UTC)", "from", from)}
            {time_field("To (UTC)", "to", to)}
            <button type="submit">"Apply"</button>
            <a href=clear class="clear" data-testid="clear-filters">"Clear"</a>
        </form>
        {move || error.get().map(|refusal| view! { <p class="notice notice-error" role="alert">{refusal.to_string()}</p> })}
    }
}

/// The count, the CSV link, the rows and the pager.
#[component]
fn AuditResults(query: AuditQuery, page: crate::wire::AuditPage) -> impl IntoView {
    let pages = page_count(page.total, page.page_size);
    let noun = match (query.kind, page.total) {
        (AuditKind::Calls, 1) => "tool call",
        (AuditKind::Calls, _) => "tool calls",
        (AuditKind::Admin, 1) => "admin action",
        (AuditKind::Admin, _) => "admin actions",
    };
    let csv = format!("{CSV_PATH}{}", query_string(&filter_pairs(&query)));
    let rows = match query.kind {
        AuditKind::Calls if page.calls.is_empty() => None,
        AuditKind::Admin if page.admin.is_empty() => None,
        AuditKind::Calls => Some(view! { <CallsTable calls=page.calls /> }.into_any()),
        AuditKind::Admin => Some(view! { <AdminTable actions=page.admin /> }.into_any()),
    };
    let rows = rows.unwrap_or_else(|| {
        view! { <p class="notice muted" data-testid="audit-empty">"Nothing matches these filters."</p> }
            .into_any()
    });
    view! {
        <div class="audit-summary">
            <span data-testid="audit-total">{format!("{} {noun}", page.total)}</span>
            <a href=csv class="button-link" download rel="external" data-testid="download-csv">
                "Download CSV"
            </a>
        </div>
        {rows}
        <Pager query page=page.page pages />
    }
}

/// Previous and next page links and "page X of Y".
#[component]
fn Pager(query: AuditQuery, page: u32, pages: u64) -> impl IntoView {
    let link = |target: u32, text: &'static str, test_id: &'static str, rel: &'static str| {
        let exists = target >= 1 && u64::from(target) <= pages;
        if exists {
            let href = audit_href(&AuditQuery {
                page: target,
                ..query.clone()
            });
            view! { <a href=href rel=rel data-testid=test_id>{text}</a> }.into_any()
        } else {
            view! { <span class="muted" aria-disabled="true" data-testid=test_id>{text}</span> }
                .into_any()
        }
    };
    // A page past the end (an old link) still offers the way back.
    let previous = page
        .saturating_sub(1)
        .min(u32::try_from(pages).unwrap_or(u32::MAX));
    view! {
        <nav class="pager" aria-label="Pages">
            {link(previous, "← Previous", "page-prev", "prev")}
            <span data-testid="page-of">{format!("page {page} of {pages}")}</span>
            {link(page.saturating_add(1), "Next →", "page-next", "next")}
        </nav>
    }
}

/// Tool-call rows.
#[component]
fn CallsTable(calls: Vec<ToolCallEntry>) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="data audit" data-testid="audit-calls">
                <thead>
                    <tr>
                        <th>"Time (UTC)"</th>
                        <th>"Assistant"</th>
                        <th>"Tool"</th>
                        <th>"Instance"</th>
                        <th>"Outcome"</th>
                        <th class="num">"Duration (ms)"</th>
                        <th class="num">"Attempts"</th>
                        <th>"Trace"</th>
                        <th>"Arguments"</th>
                        <th>"Error"</th>
                    </tr>
                </thead>
                <tbody>
                    {calls.into_iter().map(|call| view! { <CallRow call /> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// One tool call.
#[component]
fn CallRow(call: ToolCallEntry) -> impl IntoView {
    let trace = call.trace_id.map(|id| {
        view! {
            <a href=format!("/traces/{id}") title=id.clone() data-testid="trace-link">
                <code>{shorten(&id, 8)}</code>
            </a>
        }
    });
    // Present only where the server records arguments and the reader may see them (the
    // server leaves them out for viewers).
    let arguments = call.arguments.map(|arguments| {
        view! {
            <details class="call-arguments">
                <summary>"recorded"</summary>
                <code data-testid="call-arguments">{arguments}</code>
            </details>
        }
    });
    let error = call.error.map(|error| {
        let title = error.clone();
        view! { <div class="last-error" title=title>{error}</div> }
    });
    view! {
        <tr data-testid=format!("call-{}", call.id) data-outcome=call.outcome.clone()>
            <td class="nowrap">{format_timestamp_utc(call.at_ms)}</td>
            <td>{call.assistant}</td>
            <td><code>{format!("{}__{}", call.server, call.tool)}</code></td>
            <td>{call.instance.unwrap_or_else(|| "—".to_string())}</td>
            <td class="nowrap">
                <span class=format!("pill outcome-{}", call.outcome)>{call.outcome.clone()}</span>
                {call.cache_hit.then(|| view! { <span class="muted small">" cached"</span> })}
            </td>
            <td class="num">{format!("{:.1}", call.duration_ms)}</td>
            <td class="num">{call.attempts}</td>
            <td>{trace}</td>
            <td>
                <code class="digest" title=call.args_digest.clone()>{shorten(&call.args_digest, 12)}</code>
                {arguments}
            </td>
            <td class="last-error-cell">{error}</td>
        </tr>
    }
}

/// Admin-action rows.
#[component]
fn AdminTable(actions: Vec<AdminActionEntry>) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table class="data audit" data-testid="audit-admin">
                <thead>
                    <tr>
                        <th>"Time (UTC)"</th>
                        <th>"Who"</th>
                        <th>"Action"</th>
                        <th>"Target"</th>
                        <th>"Before → after"</th>
                    </tr>
                </thead>
                <tbody>
                    {actions
                        .into_iter()
                        .map(|action| {
                            view! {
                                <tr>
                                    <td class="nowrap">{format_timestamp_utc(action.at_ms)}</td>
                                    <td>{action.actor}</td>
                                    <td><code>{action.action}</code></td>
                                    <td>{action.target}</td>
                                    <td class="change">{change_text(action.before, action.after)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_total() {
        assert_eq!(page_count(0, PAGE_SIZE), 1);
        assert_eq!(page_count(50, 50), 1);
        assert_eq!(page_count(51, 50), 2);
        assert_eq!(
            page_count(7, 0),
            7,
            "a zero page size is read as one row per page"
        );
    }

    #[test]
    fn links_and_cells_read_naturally() {
        let query = AuditQuery {
            kind: AuditKind::Admin,
            who: Some("alice".into()),
            page: 2,
            page_size: PAGE_SIZE,
            ..AuditQuery::default()
        };
        assert_eq!(audit_href(&query), "/audit?kind=admin&who=alice&page=2");
        assert_eq!(shorten("0123456789abcdef", 12), "0123456789ab…");
        assert_eq!(shorten("abc", 12), "abc");
        assert_eq!(
            change_text(Some("viewer".into()), Some("admin".into())),
            "viewer → admin"
        );
        assert_eq!(change_text(None, Some("added".into())), "added");
        assert_eq!(change_text(Some("k1".into()), None), "was k1");
    }

    #[test]
    fn form_times_are_checked_before_navigating() {
        assert_eq!(read_time("from", "  "), Ok(None));
        assert_eq!(read_time("from", "1970-01-01T00:01"), Ok(Some(60_000)));
        assert_eq!(
            read_time("to", "soon").unwrap_err().to_string(),
            "to: \"soon\" is not a time: expected YYYY-MM-DDTHH:MM (UTC)"
        );
    }
}
