//! Long listings a page at a time, and the URL parameters every listing page reads: plain
//! data and arithmetic, shared by the server (which cuts the page) and the browser (which
//! builds the links).

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The highest page number accepted.
pub const MAX_PAGE: usize = 100_000;
/// The longest search text accepted (characters).
pub const MAX_SEARCH_CHARS: usize = 100;
/// The longest name a filter may carry (server names, assistant names: 64 at most).
pub const MAX_NAME_CHARS: usize = 64;

/// Where one page sits in a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagePosition {
    /// This page, from 1.
    pub page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// Items over all pages.
    pub listed: usize,
    /// Items per page.
    pub size: usize,
}

impl PagePosition {
    /// Page `asked` of `listed` items, `size` a page; a page past the end is the last.
    pub fn new(listed: usize, asked: usize, size: usize) -> Self {
        let size = size.max(1);
        let pages = listed.div_ceil(size).max(1);
        PagePosition {
            page: asked.clamp(1, pages),
            pages,
            listed,
            size,
        }
    }

    /// The items of this page, as indexes into the whole listing.
    pub fn range(&self) -> Range<usize> {
        let start = ((self.page - 1) * self.size).min(self.listed);
        start..(start + self.size).min(self.listed)
    }

    /// This page's items out of the whole listing.
    pub fn cut<T>(&self, items: impl IntoIterator<Item = T>) -> Vec<T> {
        let range = self.range();
        items
            .into_iter()
            .skip(range.start)
            .take(range.len())
            .collect()
    }

    /// E.g. `51–100 of 143 · page 2 of 3`.
    pub fn describe(&self) -> String {
        let range = self.range();
        format!(
            "{}–{} of {} · page {} of {}",
            range.start + 1,
            range.end,
            self.listed,
            self.page,
            self.pages
        )
    }
}

/// A listing page's query: filters and a page, all in the URL so that a view can be
/// bookmarked and shared.
pub trait UrlQuery: Clone {
    /// The parameters that are set, in a fixed order, without the page.
    fn filter_pairs(&self) -> Vec<(&'static str, String)>;

    /// The page, from 1.
    fn page(&self) -> usize;

    /// The same query on another page.
    fn with_page(&self, page: usize) -> Self;

    /// The query as URL parameters (the page last, when past the first).
    fn to_query_string(&self) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.filter_pairs() {
            url.append_pair(key, &value);
        }
        if self.page() > 1 {
            url.append_pair("page", &self.page().to_string());
        }
        url.finish()
    }

    /// `path` with this query, e.g. `/tools?server=search`.
    fn href(&self, path: &str) -> String {
        match self.to_query_string() {
            query if query.is_empty() => path.to_string(),
            query => format!("{path}?{query}"),
        }
    }

    /// The same query on `page` (at least 1).
    fn on_page(&self, page: usize) -> Self {
        self.with_page(page.max(1))
    }
}

/// A text filter from the URL: trimmed, at most `max` characters, else an error naming
/// `key`. Empty means "not set".
pub fn text_param(key: &str, value: &str, max: usize) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(format!("{key}: at most {max} characters"));
    }
    Ok(Some(value.to_string()))
}

/// A page number from the URL (empty: the first), at most [`MAX_PAGE`].
pub fn page_param(key: &str, value: &str) -> Result<usize, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(1);
    }
    let page: usize = value
        .parse()
        .map_err(|_| format!("{key}: {:?} is not a page number", clip(value)))?;
    if page > MAX_PAGE {
        return Err(format!("{key}: at most {MAX_PAGE}"));
    }
    Ok(page.max(1))
}

/// Checks a text filter a browser sent straight to a server function: the same bounds as
/// [`text_param`].
pub fn check_text(key: &str, value: Option<&String>, max: usize) -> Result<(), String> {
    match value {
        Some(value) if value.trim().is_empty() || value.chars().count() > max => {
            Err(format!("{key}: 1 to {max} characters"))
        }
        _ => Ok(()),
    }
}

/// Checks a page number a browser sent straight to a server function.
pub fn check_page(key: &str, page: usize) -> Result<usize, String> {
    if page > MAX_PAGE {
        return Err(format!("{key}: at most {MAX_PAGE}"));
    }
    Ok(page.max(1))
}

/// Whether `text` contains `needle`, ignoring case (`needle` already lower-case).
pub fn contains_folded(text: &str, needle: &str) -> bool {
    text.to_lowercase().contains(needle)
}

/// At most 40 characters of a refused value, for an error message.
pub fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_the_listing_and_clamp() {
        let position = PagePosition::new(143, 2, 50);
        assert_eq!((position.page, position.pages), (2, 3));
        assert_eq!(position.range(), 50..100);
        assert_eq!(position.describe(), "51–100 of 143 · page 2 of 3");
        let last = PagePosition::new(143, 9, 50);
        assert_eq!((last.page, last.range()), (3, 100..143));
        assert_eq!(last.cut(0..143).len(), 43);
        let empty = PagePosition::new(0, 4, 50);
        assert_eq!((empty.page, empty.pages, empty.range()), (1, 1, 0..0));
        assert!(empty.cut(0..0).is_empty());
        assert_eq!(
            PagePosition::new(10, 0, 0).size,
            1,
            "a page holds one item at least"
        );
    }

    #[test]
    fn url_parameters_are_bounded() {
        assert_eq!(text_param("q", "  ", 5), Ok(None));
        assert_eq!(text_param("q", " ab ", 5), Ok(Some("ab".into())));
        assert_eq!(
            text_param("q", "abcdef", 5),
            Err("q: at most 5 characters".into())
        );
        assert_eq!(page_param("page", ""), Ok(1));
        assert_eq!(page_param("page", "0"), Ok(1));
        assert_eq!(page_param("page", "7"), Ok(7));
        assert!(page_param("page", "100001").is_err());
        assert_eq!(
            page_param("page", "two"),
            Err("page: \"two\" is not a page number".into())
        );
        assert!(check_text("server", Some(&" ".to_string()), 64).is_err());
        assert!(check_text("server", Some(&"x".repeat(65)), 64).is_err());
        assert!(check_text("server", None, 64).is_ok());
        assert_eq!(check_page("page", 0), Ok(1));
        assert!(contains_folded("Search__Lookup", "lookup"));
    }
}
