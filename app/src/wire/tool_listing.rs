//! The Tools page at fleet scale: a server filter and a search over names and
//! descriptions, a page of tools at a time (a fleet of fifty servers lists ten thousand).

use super::ToolView;
use super::paging::{
    MAX_NAME_CHARS, MAX_SEARCH_CHARS, PagePosition, UrlQuery, check_page, check_text, page_param,
    text_param,
};
use serde::{Deserialize, Serialize};

/// Tools a page lists at most.
pub const TOOLS_PAGE_SIZE: usize = 50;
/// Instances a tool's card names at most (the rest are counted).
pub const TOOL_INSTANCES_SHOWN: usize = 8;

/// Which tools the Tools page lists. Every part is optional and lives in the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolQuery {
    /// Only this server's tools.
    pub server: Option<String>,
    /// Only tools whose exposed name, title or description contains this (any case).
    pub search: Option<String>,
    /// The page, from 1.
    pub page: usize,
}

impl ToolQuery {
    /// Reads a query from URL parameters (`server`, `q`, `page`); others are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut query = ToolQuery::default();
        for (key, value) in pairs {
            match key {
                "server" => query.server = text_param(key, value, MAX_NAME_CHARS)?,
                "q" => query.search = text_param(key, value, MAX_SEARCH_CHARS)?,
                "page" => query.page = page_param(key, value)?,
                _ => {}
            }
        }
        query.checked()
    }

    /// The query if every part is within bounds; the page is at least 1.
    pub fn checked(mut self) -> Result<Self, String> {
        check_text("server", self.server.as_ref(), MAX_NAME_CHARS)?;
        check_text("q", self.search.as_ref(), MAX_SEARCH_CHARS)?;
        self.page = check_page("page", self.page)?;
        Ok(self)
    }

    /// Whether any filter is set.
    pub fn is_filtered(&self) -> bool {
        self.server.is_some() || self.search.is_some()
    }

    /// A matcher for the query's search text (lower-cased once).
    pub fn search_folded(&self) -> Option<String> {
        self.search.as_ref().map(|text| text.to_lowercase())
    }
}

impl UrlQuery for ToolQuery {
    fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(server) = &self.server {
            pairs.push(("server", server.clone()));
        }
        if let Some(search) = &self.search {
            pairs.push(("q", search.clone()));
        }
        pairs
    }

    fn page(&self) -> usize {
        self.page
    }

    fn with_page(&self, page: usize) -> Self {
        ToolQuery {
            page,
            ..self.clone()
        }
    }
}

/// One page of the Tools page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolPageView {
    /// This page's tools, by server in fleet order, then as listed.
    pub tools: Vec<ToolView>,
    /// Which page of the matching tools this is.
    pub position: PagePosition,
    /// Tools in the fleet.
    pub total: usize,
    /// Every server's name, for the filter.
    pub servers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip_through_the_url() {
        let query =
            ToolQuery::from_pairs([("server", "db"), ("q", "sql "), ("page", "2"), ("x", "y")])
                .unwrap();
        assert_eq!(query.server.as_deref(), Some("db"));
        assert_eq!(query.search_folded().as_deref(), Some("sql"));
        assert_eq!(query.href("/tools"), "/tools?server=db&q=sql&page=2");
        assert_eq!(query.on_page(1).href("/tools"), "/tools?server=db&q=sql");
        assert_eq!(ToolQuery::from_pairs([]).unwrap().href("/tools"), "/tools");
        assert!(ToolQuery::from_pairs([("q", "x".repeat(101).as_str())]).is_err());
        let forged = ToolQuery {
            server: Some(" ".into()),
            ..ToolQuery::default()
        };
        assert!(forged.checked().is_err());
    }
}
