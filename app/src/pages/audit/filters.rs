//! The Audit page's filters in the URL: an [`AuditQuery`] to query-string pairs and back.
//!
//! The page's own URL and the CSV download use the same keys (`kind`, `who`, `assistant`,
//! `tool`, `outcome`, `from_ms`, `to_ms`; the page adds `page`), so a reload, a shared link
//! and the export all show the same rows.

use super::datetime::parse_datetime_local;
use crate::wire::{AuditKind, AuditQuery};

/// Rows per page of the Audit page.
pub const PAGE_SIZE: u32 = 50;

/// The outcomes a tool call can have, in the order the filter offers them.
pub const OUTCOMES: [&str; 7] = [
    "ok",
    "tool_error",
    "failed",
    "denied",
    "rate_limited",
    "rejected",
    "cancelled",
];

/// The trail's name in the URL.
pub fn kind_name(kind: AuditKind) -> &'static str {
    match kind {
        AuditKind::Calls => "calls",
        AuditKind::Admin => "admin",
    }
}

/// The filters as query pairs, in a fixed order; only those that apply to the query's trail
/// and are set. This is what the CSV export receives.
pub fn filter_pairs(query: &AuditQuery) -> Vec<(&'static str, String)> {
    let mut pairs = vec![("kind", kind_name(query.kind).to_string())];
    let text_filters: &[(&'static str, &Option<String>)] = match query.kind {
        AuditKind::Calls => &[
            ("assistant", &query.assistant),
            ("tool", &query.tool),
            ("outcome", &query.outcome),
        ],
        AuditKind::Admin => &[("who", &query.who)],
    };
    for (key, value) in text_filters {
        if let Some(value) = value {
            pairs.push((key, value.clone()));
        }
    }
    if let Some(from) = query.from_ms {
        pairs.push(("from_ms", from.to_string()));
    }
    if let Some(to) = query.to_ms {
        pairs.push(("to_ms", to.to_string()));
    }
    pairs
}

/// The filters and the page (when past the first) as query pairs: the page's own URL.
pub fn page_pairs(query: &AuditQuery) -> Vec<(&'static str, String)> {
    let mut pairs = filter_pairs(query);
    if query.page > 1 {
        pairs.push(("page", query.page.to_string()));
    }
    pairs
}

/// Reads the query from URL parameters (`get` returns a key's value). Values that do not
/// parse are dropped rather than refused, so a mangled link still shows a page.
///
/// The time range is `from_ms`/`to_ms`; `from`/`to` as `datetime-local` values are read
/// too, which is what the filter form submits before the page is hydrated.
pub fn query_from_params(get: impl Fn(&str) -> Option<String>) -> AuditQuery {
    let text = |key: &str| {
        get(key)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    let time = |ms_key: &str, local_key: &str| {
        text(ms_key)
            .and_then(|ms| ms.parse::<i64>().ok())
            .or_else(|| text(local_key).and_then(|v| parse_datetime_local(&v).ok()))
    };
    let kind = match text("kind").as_deref() {
        Some("admin") => AuditKind::Admin,
        _ => AuditKind::Calls,
    };
    let calls = kind == AuditKind::Calls;
    AuditQuery {
        kind,
        who: text("who").filter(|_| !calls),
        assistant: text("assistant").filter(|_| calls),
        tool: text("tool").filter(|_| calls),
        outcome: text("outcome").filter(|outcome| calls && OUTCOMES.contains(&outcome.as_str())),
        from_ms: time("from_ms", "from"),
        to_ms: time("to_ms", "to"),
        page: text("page")
            .and_then(|page| page.parse::<u32>().ok())
            .filter(|page| *page >= 1)
            .unwrap_or(1),
        page_size: PAGE_SIZE,
    }
}

/// `?key=value&…` with keys and values percent-encoded; empty for no pairs.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let joined = pairs
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    if joined.is_empty() {
        joined
    } else {
        format!("?{joined}")
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters. Written out here
/// (rather than the router's escape, which differs between server and browser) so that
/// links render identically on both sides.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a query back from pairs, as the page reads its URL.
    fn read(pairs: &[(&str, String)]) -> AuditQuery {
        query_from_params(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        })
    }

    fn calls_query() -> AuditQuery {
        AuditQuery {
            kind: AuditKind::Calls,
            who: None,
            assistant: Some("claude desktop".into()),
            tool: Some("search__lookup".into()),
            outcome: Some("rate_limited".into()),
            from_ms: Some(1_795_352_640_000),
            to_ms: Some(1_795_439_040_000),
            page: 3,
            page_size: PAGE_SIZE,
        }
    }

    #[test]
    fn queries_round_trip_through_their_pairs() {
        let calls = calls_query();
        assert_eq!(read(&page_pairs(&calls)), calls);
        let admin = AuditQuery {
            kind: AuditKind::Admin,
            who: Some("alice".into()),
            from_ms: Some(-60_000),
            page: 1,
            page_size: PAGE_SIZE,
            ..AuditQuery::default()
        };
        assert_eq!(read(&page_pairs(&admin)), admin);
        let first_page = AuditQuery {
            page: 1,
            page_size: PAGE_SIZE,
            ..AuditQuery::default()
        };
        assert_eq!(read(&[]), first_page);
        assert_eq!(read(&page_pairs(&first_page)), first_page);
    }

    #[test]
    fn pairs_hold_the_trails_filters_in_a_fixed_order() {
        let calls = calls_query();
        assert_eq!(
            page_pairs(&calls),
            vec![
                ("kind", "calls".to_string()),
                ("assistant", "claude desktop".to_string()),
                ("tool", "search__lookup".to_string()),
                ("outcome", "rate_limited".to_string()),
                ("from_ms", "1795352640000".to_string()),
                ("to_ms", "1795439040000".to_string()),
                ("page", "3".to_string()),
            ]
        );
        // The export gets the same filters without the page.
        assert_eq!(filter_pairs(&calls), page_pairs(&calls)[..6].to_vec());
        // Filters of the other trail are left out.
        let admin = AuditQuery {
            kind: AuditKind::Admin,
            who: Some("alice".into()),
            ..calls
        };
        assert_eq!(
            filter_pairs(&admin),
            vec![
                ("kind", "admin".to_string()),
                ("who", "alice".to_string()),
                ("from_ms", "1795352640000".to_string()),
                ("to_ms", "1795439040000".to_string()),
            ]
        );
    }

    #[test]
    fn query_strings_are_percent_encoded() {
        assert_eq!(query_string(&[]), "");
        assert_eq!(
            query_string(&[
                ("kind", "calls".into()),
                ("assistant", "a b&c=d/é".into()),
                ("tool", "search__read_page-2.~x".into()),
            ]),
            "?kind=calls&assistant=a%20b%26c%3Dd%2F%C3%A9&tool=search__read_page-2.~x"
        );
    }

    #[test]
    fn mangled_parameters_are_dropped() {
        let query = read(&[
            ("kind", "everything".into()),
            ("who", "alice".into()),
            ("assistant", "   ".into()),
            ("outcome", "exploded".into()),
            ("from_ms", "yesterday".into()),
            ("to_ms", "12x".into()),
            ("page", "0".into()),
        ]);
        assert_eq!(
            query,
            AuditQuery {
                page: 1,
                page_size: PAGE_SIZE,
                ..AuditQuery::default()
            },
            "unknown kind reads as calls, whose filters exclude `who`"
        );
        assert_eq!(read(&[("page", "-2".into())]).page, 1);
    }

    #[test]
    fn form_times_are_read_when_no_ms_is_given() {
        let query = read(&[
            ("from", "2026-11-22T13:04".into()),
            ("to", "2026-11-23T13:04".into()),
            ("to_ms", "5".into()),
        ]);
        assert_eq!(query.from_ms, Some(1_795_352_640_000));
        assert_eq!(
            query.to_ms,
            Some(5),
            "from_ms/to_ms win over the form's values"
        );
        assert_eq!(read(&[("from", "2026-02-30T00:00".into())]).from_ms, None);
    }
}
