//! The Permissions page at fleet scale: a hundred assistants × ten thousand tools is a
//! million cells, so the matrix shows a page of tools (rows) for a page of assistants
//! (columns), filtered by assistant, server, decision and a search over tool names.

use super::paging::{
    MAX_NAME_CHARS, MAX_SEARCH_CHARS, PagePosition, UrlQuery, check_page, check_text, clip,
    page_param, text_param,
};
use super::{Decision, ServerPermissions, Tier, ToolPermissions};
use serde::{Deserialize, Serialize};

/// Tools (rows) a page shows at most.
pub const PERMISSION_ROWS_PAGE: usize = 40;
/// Assistants (columns) a page shows at most.
pub const PERMISSION_COLUMNS_PAGE: usize = 8;

/// Which part of the matrix the page shows. Every part is optional and lives in the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct PermissionQuery {
    /// Only this assistant's column.
    pub assistant: Option<String>,
    /// Only this server's tools.
    pub server: Option<String>,
    /// Only tools that a shown assistant is allowed (or denied).
    pub decision: Option<Decision>,
    /// Only tools whose exposed name contains this (any case).
    pub search: Option<String>,
    /// The page of tools, from 1.
    pub page: usize,
    /// The page of assistants, from 1.
    pub columns: usize,
}

impl PermissionQuery {
    /// Reads a query from URL parameters (`assistant`, `server`, `decision`, `q`, `page`,
    /// `cols`); others are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut query = PermissionQuery::default();
        for (key, value) in pairs {
            match key {
                "assistant" => query.assistant = text_param(key, value, MAX_NAME_CHARS)?,
                "server" => query.server = text_param(key, value, MAX_NAME_CHARS)?,
                "decision" => {
                    query.decision = match value.trim() {
                        "" => None,
                        "allow" => Some(Decision::Allow),
                        "deny" => Some(Decision::Deny),
                        other => {
                            return Err(format!(
                                "decision: {:?} is not one of allow, deny",
                                clip(other)
                            ));
                        }
                    }
                }
                "q" => query.search = text_param(key, value, MAX_SEARCH_CHARS)?,
                "page" => query.page = page_param(key, value)?,
                "cols" => query.columns = page_param(key, value)?,
                _ => {}
            }
        }
        query.checked()
    }

    /// The query if every part is within bounds; the pages are at least 1.
    pub fn checked(mut self) -> Result<Self, String> {
        check_text("assistant", self.assistant.as_ref(), MAX_NAME_CHARS)?;
        check_text("server", self.server.as_ref(), MAX_NAME_CHARS)?;
        check_text("q", self.search.as_ref(), MAX_SEARCH_CHARS)?;
        self.page = check_page("page", self.page)?;
        self.columns = check_page("cols", self.columns)?;
        Ok(self)
    }

    /// Whether any filter is set.
    pub fn is_filtered(&self) -> bool {
        self.assistant.is_some()
            || self.server.is_some()
            || self.decision.is_some()
            || self.search.is_some()
    }

    /// The search text, lower-cased.
    pub fn search_folded(&self) -> Option<String> {
        self.search.as_ref().map(|text| text.to_lowercase())
    }

    /// The same query on another page of assistants (from the first page of tools).
    pub fn on_columns(&self, columns: usize) -> Self {
        PermissionQuery {
            columns: columns.max(1),
            page: 1,
            ..self.clone()
        }
    }
}

impl UrlQuery for PermissionQuery {
    fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(assistant) = &self.assistant {
            pairs.push(("assistant", assistant.clone()));
        }
        if let Some(server) = &self.server {
            pairs.push(("server", server.clone()));
        }
        if let Some(decision) = self.decision {
            pairs.push(("decision", decision.as_str().to_string()));
        }
        if let Some(search) = &self.search {
            pairs.push(("q", search.clone()));
        }
        if self.columns > 1 {
            pairs.push(("cols", self.columns.to_string()));
        }
        pairs
    }

    fn page(&self) -> usize {
        self.page
    }

    fn with_page(&self, page: usize) -> Self {
        PermissionQuery {
            page,
            ..self.clone()
        }
    }
}

/// One page of the matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionPageView {
    /// This page's columns: assistant names and tiers.
    pub assistants: Vec<(String, Tier)>,
    /// This page's rows, grouped by server, each with a cell per shown assistant.
    pub servers: Vec<ServerPermissions>,
    /// Which page of the matching tools this is.
    pub rows: PagePosition,
    /// Which page of the matching assistants this is.
    pub columns: PagePosition,
    /// Every assistant's name, for the filter.
    pub assistant_names: Vec<String>,
    /// Every server's name, for the filter.
    pub server_names: Vec<String>,
    /// Tools in the fleet.
    pub total_tools: usize,
}

/// Consecutive rows of one server as one block, in order.
pub fn group_by_server(rows: Vec<(String, ToolPermissions)>) -> Vec<ServerPermissions> {
    let mut servers: Vec<ServerPermissions> = Vec::new();
    for (server, row) in rows {
        match servers.last_mut() {
            Some(block) if block.server == server => block.tools.push(row),
            _ => servers.push(ServerPermissions {
                server,
                tools: vec![row],
            }),
        }
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip_through_the_url() {
        let query = PermissionQuery::from_pairs([
            ("assistant", "claude"),
            ("server", "db"),
            ("decision", "deny"),
            ("q", "sql"),
            ("page", "3"),
            ("cols", "2"),
        ])
        .unwrap();
        assert_eq!(query.decision, Some(Decision::Deny));
        assert_eq!(
            query.href("/permissions"),
            "/permissions?assistant=claude&server=db&decision=deny&q=sql&cols=2&page=3"
        );
        assert_eq!(
            query.on_columns(3).href("/permissions"),
            "/permissions?assistant=claude&server=db&decision=deny&q=sql&cols=3"
        );
        assert_eq!(
            PermissionQuery::from_pairs([("decision", "maybe")]).unwrap_err(),
            "decision: \"maybe\" is not one of allow, deny"
        );
        assert_eq!(
            PermissionQuery::from_pairs([])
                .unwrap()
                .href("/permissions"),
            "/permissions"
        );
    }

    #[test]
    fn rows_are_grouped_by_consecutive_server() {
        let row = |tool: &str| ToolPermissions {
            tool: tool.into(),
            cells: Vec::new(),
        };
        let groups = group_by_server(vec![
            ("a".into(), row("x")),
            ("a".into(), row("y")),
            ("b".into(), row("z")),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].tools.len(), 2);
        assert_eq!(groups[1].server, "b");
    }
}
