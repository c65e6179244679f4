//! The Caches page at fleet scale: a server filter and a page of servers at a time (each
//! server has a tool-list cache and a result cache).

use super::CacheView;
use super::paging::{
    MAX_NAME_CHARS, PagePosition, UrlQuery, check_page, check_text, page_param, text_param,
};
use serde::{Deserialize, Serialize};

/// Servers a page of the Caches page shows at most.
pub const CACHE_SERVERS_PAGE_SIZE: usize = 20;

/// Which servers' caches the page lists. Every part is optional and lives in the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheQuery {
    /// Only this server's caches.
    pub server: Option<String>,
    /// The page, from 1.
    pub page: usize,
}

impl CacheQuery {
    /// Reads a query from URL parameters (`server`, `page`); others are ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut query = CacheQuery::default();
        for (key, value) in pairs {
            match key {
                "server" => query.server = text_param(key, value, MAX_NAME_CHARS)?,
                "page" => query.page = page_param(key, value)?,
                _ => {}
            }
        }
        query.checked()
    }

    /// The query if every part is within bounds; the page is at least 1.
    pub fn checked(mut self) -> Result<Self, String> {
        check_text("server", self.server.as_ref(), MAX_NAME_CHARS)?;
        self.page = check_page("page", self.page)?;
        Ok(self)
    }
}

impl UrlQuery for CacheQuery {
    fn filter_pairs(&self) -> Vec<(&'static str, String)> {
        self.server
            .iter()
            .map(|server| ("server", server.clone()))
            .collect()
    }

    fn page(&self) -> usize {
        self.page
    }

    fn with_page(&self, page: usize) -> Self {
        CacheQuery {
            page,
            ..self.clone()
        }
    }
}

/// One page of the Caches page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachePageView {
    /// The caches of this page's servers (tool list, then results, per server).
    pub caches: Vec<CacheView>,
    /// Which page of the matching servers this is.
    pub position: PagePosition,
    /// Every server's name, for the filter.
    pub servers: Vec<String>,
}

impl CachePageView {
    /// The page `query` asks for, out of every cache (grouped by server, in fleet order).
    pub fn of(caches: Vec<CacheView>, query: &CacheQuery) -> Self {
        let mut servers: Vec<String> = caches.iter().map(|c| c.server.clone()).collect();
        servers.dedup();
        let matching: Vec<&String> = servers
            .iter()
            .filter(|name| query.server.as_ref().is_none_or(|server| server == *name))
            .collect();
        let position = PagePosition::new(matching.len(), query.page, CACHE_SERVERS_PAGE_SIZE);
        let shown: Vec<String> = position.cut(matching).into_iter().cloned().collect();
        CachePageView {
            caches: caches
                .into_iter()
                .filter(|cache| shown.contains(&cache.server))
                .collect(),
            position,
            servers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(server: &str, kind: &str) -> CacheView {
        CacheView {
            server: server.into(),
            kind: kind.into(),
            entries: 0,
            hits: 0,
            misses: 0,
            evictions: 0,
            ttl_s: 60,
            cacheable: Vec::new(),
        }
    }

    #[test]
    fn a_page_holds_whole_servers() {
        let caches: Vec<CacheView> = (0..45)
            .flat_map(|n| {
                let server = format!("srv{n:02}");
                [cache(&server, "tools"), cache(&server, "results")]
            })
            .collect();
        let second = CachePageView::of(
            caches.clone(),
            &CacheQuery::from_pairs([("page", "2")]).unwrap(),
        );
        assert_eq!((second.position.page, second.position.pages), (2, 3));
        assert_eq!(second.caches.len(), 2 * CACHE_SERVERS_PAGE_SIZE);
        assert_eq!(second.caches[0].server, "srv20");
        assert_eq!(second.servers.len(), 45);
        let one = CachePageView::of(
            caches,
            &CacheQuery::from_pairs([("server", "srv07")]).unwrap(),
        );
        assert_eq!(one.caches.len(), 2);
        assert_eq!(one.position.listed, 1);
        assert_eq!(
            CacheQuery::from_pairs([("server", "srv07"), ("page", "3")])
                .unwrap()
                .href("/caches"),
            "/caches?server=srv07&page=3"
        );
    }
}
