//! Assistants, their keys and permissions.

use super::{FleetControl, store_failure};
use crate::access::control::AccessError;
use crate::gateway::record::Outcome;
use app::control::AccessPlane;
use app::error::AppError;
use app::wire::{
    ApiKeyView, AssistantView, Decision, IssuedKey, PERMISSION_COLUMNS_PAGE, PERMISSION_ROWS_PAGE,
    PagePosition, PermissionPageView, PermissionQuery, SessionUser, Tier, ToolPermissions,
    contains_folded, group_by_server,
};

/// An access change refused or failed, as the dashboard shows it.
fn access_failure(error: AccessError) -> AppError {
    match error {
        AccessError::NotFound(what) => AppError::NotFound(what),
        AccessError::Conflict(why) => AppError::Conflict(why),
        AccessError::Invalid(why) => AppError::Invalid(why),
        AccessError::Store(error) => store_failure(error),
    }
}

#[async_trait::async_trait]
impl AccessPlane for FleetControl {
    async fn assistants(&self) -> Result<Vec<AssistantView>, AppError> {
        let since = crate::store::now_ms() - 24 * 3600 * 1000;
        let counts = self
            .store
            .call_counts_by_assistant(since)
            .await
            .map_err(store_failure)?;
        let count = |name: &str, outcome: Option<&str>| -> u64 {
            counts
                .iter()
                .filter(|(a, o, _)| a == name && outcome.is_none_or(|want| o == want))
                .map(|(_, _, n)| n)
                .sum()
        };
        Ok(self
            .access
            .assistants()
            .into_iter()
            .map(|a| {
                let keys: Vec<ApiKeyView> = a
                    .keys
                    .iter()
                    .map(|k| ApiKeyView {
                        id: k.id,
                        prefix: k.prefix.clone(),
                        created_at_ms: k.created_at_ms,
                        created_by: k.created_by.clone(),
                        revoked_at_ms: k.revoked_at_ms,
                        last_used_at_ms: k.last_used_at_ms,
                    })
                    .collect();
                AssistantView {
                    last_used_at_ms: keys.iter().filter_map(|k| k.last_used_at_ms).max(),
                    calls_24h: count(&a.name, None),
                    denials_24h: count(&a.name, Some(Outcome::Denied.as_str())),
                    rate_limited_24h: count(&a.name, Some(Outcome::RateLimited.as_str())),
                    rate_per_min: self.access.policy().tier(a.tier).rate_per_min,
                    name: a.name,
                    tier: a.tier,
                    created_at_ms: a.created_at_ms,
                    keys,
                }
            })
            .collect())
    }

    async fn add_assistant(
        &self,
        actor: &SessionUser,
        name: &str,
        tier: Tier,
    ) -> Result<IssuedKey, AppError> {
        let issued = self
            .access
            .add_assistant(&actor.username, name, tier)
            .await
            .map_err(access_failure)?;
        tracing::info!(actor = %actor.username, assistant = name, %tier, "assistant added");
        Ok(issued)
    }

    async fn set_assistant_tier(
        &self,
        actor: &SessionUser,
        name: &str,
        tier: Tier,
    ) -> Result<(), AppError> {
        self.access
            .set_tier(&actor.username, name, tier)
            .await
            .map_err(access_failure)?;
        tracing::info!(actor = %actor.username, assistant = name, %tier, "assistant tier changed");
        Ok(())
    }

    async fn issue_key(&self, actor: &SessionUser, assistant: &str) -> Result<IssuedKey, AppError> {
        let issued = self
            .access
            .issue_key(&actor.username, assistant)
            .await
            .map_err(access_failure)?;
        tracing::info!(actor = %actor.username, assistant, key = issued.key_id, "key issued");
        Ok(issued)
    }

    async fn revoke_key(
        &self,
        actor: &SessionUser,
        assistant: &str,
        key_id: i64,
    ) -> Result<(), AppError> {
        self.access
            .revoke_key(&actor.username, assistant, key_id)
            .await
            .map_err(access_failure)?;
        tracing::info!(actor = %actor.username, assistant, key = key_id, "key revoked");
        Ok(())
    }

    async fn permission_page(
        &self,
        query: PermissionQuery,
    ) -> Result<PermissionPageView, AppError> {
        let query = query.checked().map_err(AppError::Invalid)?;
        let mut every: Vec<(String, Tier)> = self
            .access
            .assistants()
            .into_iter()
            .map(|a| (a.name, a.tier))
            .collect();
        every.sort();
        let assistant_names: Vec<String> = every.iter().map(|(name, _)| name.clone()).collect();
        let matching: Vec<(String, Tier)> = every
            .into_iter()
            .filter(|(name, _)| query.assistant.as_ref().is_none_or(|a| a == name))
            .collect();
        let columns = PagePosition::new(matching.len(), query.columns, PERMISSION_COLUMNS_PAGE);
        let assistants = columns.cut(matching);
        let servers = self.registry.servers();
        let search = query.search_folded();
        // Rows are chosen on names (and, with a decision filter, on the shown columns'
        // decisions); cells are computed for this page's rows only.
        let mut rows: Vec<(String, String)> = Vec::new();
        for server in servers
            .iter()
            .filter(|s| query.server.as_ref().is_none_or(|name| *name == s.name))
        {
            let mut names: Vec<String> = server
                .catalog()
                .tools
                .iter()
                .map(|t| t.name.to_string())
                .filter(|tool| {
                    search.as_deref().is_none_or(|text| {
                        contains_folded(&format!("{}__{tool}", server.name), text)
                    })
                })
                .collect();
            names.sort();
            for tool in names {
                let wanted = query.decision.is_none_or(|decision| {
                    assistants.iter().any(|(assistant, _)| {
                        self.access.decide(assistant, &server.name, &tool).decision == decision
                    })
                });
                if wanted {
                    rows.push((server.name.clone(), tool));
                }
            }
        }
        let position = PagePosition::new(rows.len(), query.page, PERMISSION_ROWS_PAGE);
        let rows = position
            .cut(rows)
            .into_iter()
            .map(|(server, tool)| {
                let cells = assistants
                    .iter()
                    .map(|(assistant, _)| self.access.decide(assistant, &server, &tool))
                    .collect();
                (server, ToolPermissions { tool, cells })
            })
            .collect();
        Ok(PermissionPageView {
            assistants,
            servers: group_by_server(rows),
            rows: position,
            columns,
            assistant_names,
            server_names: servers.iter().map(|s| s.name.clone()).collect(),
            total_tools: servers.iter().map(|s| s.catalog().tools.len()).sum(),
        })
    }

    async fn set_permission(
        &self,
        actor: &SessionUser,
        assistant: &str,
        server: &str,
        tool: &str,
        decision: Option<Decision>,
    ) -> Result<(), AppError> {
        let entry = self
            .registry
            .server(server)
            .ok_or_else(|| AppError::NotFound(format!("server {server}")))?;
        if tool != "*" && entry.tool(tool).is_none() {
            return Err(AppError::NotFound(format!("tool {server}__{tool}")));
        }
        self.access
            .set_permission(&actor.username, assistant, server, tool, decision)
            .await
            .map_err(access_failure)?;
        tracing::info!(
            actor = %actor.username,
            assistant,
            tool = %format!("{server}__{tool}"),
            decision = decision.map_or("tier default", Decision::as_str),
            "permission changed"
        );
        Ok(())
    }
}
