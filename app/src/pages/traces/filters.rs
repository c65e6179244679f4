//! The Traces page's filters in the URL: a [`TraceQuery`] to query-string pairs and back
//! (keys `tool`, `assistant`, `status`, `min_ms`, `from_ms`, `to_ms`, `limit`).

use crate::pages::audit::datetime::parse_datetime_local;
use crate::wire::TraceQuery;

/// Traces listed when the URL names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most one list may hold.
pub const MAX_LIMIT: u32 = 500;
/// The statuses the filter offers.
pub const STATUSES: [&str; 2] = ["ok", "error"];

/// The filters as query pairs in a fixed order (only those that are set; the limit when not
/// the default).
pub fn query_pairs(query: &TraceQuery) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    for (key, value) in [
        ("tool", &query.tool),
        ("assistant", &query.assistant),
        ("status", &query.status),
    ] {
        if let Some(value) = value {
            pairs.push((key, value.clone()));
        }
    }
    if let Some(min) = query.min_duration_ms {
        pairs.push(("min_ms", format_ms(min)));
    }
    if let Some(from) = query.from_ms {
        pairs.push(("from_ms", from.to_string()));
    }
    if let Some(to) = query.to_ms {
        pairs.push(("to_ms", to.to_string()));
    }
    if query.limit != DEFAULT_LIMIT {
        pairs.push(("limit", query.limit.to_string()));
    }
    pairs
}

/// A millisecond value without a needless `.0`.
pub fn format_ms(ms: f64) -> String {
    if ms.fract() == 0.0 && ms.abs() < 1e15 {
        format!("{}", ms as i64)
    } else {
        format!("{ms}")
    }
}

/// Reads the query from URL parameters. Values that do not parse are dropped, so a mangled
/// link still shows a list; `from`/`to` (`datetime-local`, as the unhydrated form submits
/// them) are read when `from_ms`/`to_ms` are absent.
pub fn query_from_params(get: impl Fn(&str) -> Option<String>) -> TraceQuery {
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
    TraceQuery {
        tool: text("tool"),
        assistant: text("assistant"),
        status: text("status").filter(|s| STATUSES.contains(&s.as_str())),
        min_duration_ms: text("min_ms")
            .and_then(|ms| ms.parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0),
        from_ms: time("from_ms", "from"),
        to_ms: time("to_ms", "to"),
        limit: text("limit")
            .and_then(|limit| limit.parse::<u32>().ok())
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .unwrap_or(DEFAULT_LIMIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, String)]) -> TraceQuery {
        query_from_params(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn queries_round_trip_through_their_pairs() {
        let query = TraceQuery {
            tool: Some("search__query".into()),
            assistant: Some("claude desktop".into()),
            status: Some("error".into()),
            min_duration_ms: Some(12.5),
            from_ms: Some(1_795_352_640_000),
            to_ms: Some(1_795_439_040_000),
            limit: 20,
        };
        assert_eq!(read(&query_pairs(&query)), query);
        let plain = TraceQuery {
            limit: DEFAULT_LIMIT,
            ..TraceQuery::default()
        };
        assert_eq!(query_pairs(&plain), vec![]);
        assert_eq!(read(&[]), plain);
        assert_eq!(
            query_pairs(&TraceQuery {
                min_duration_ms: Some(500.0),
                ..plain
            }),
            vec![("min_ms", "500".to_string())]
        );
    }

    #[test]
    fn mangled_parameters_are_dropped() {
        let query = read(&[
            ("status", "sideways".into()),
            ("min_ms", "-3".into()),
            ("from_ms", "yesterday".into()),
            ("limit", "100000".into()),
            ("tool", "  ".into()),
        ]);
        assert_eq!(
            query,
            TraceQuery {
                limit: DEFAULT_LIMIT,
                ..TraceQuery::default()
            }
        );
        let form = read(&[("from", "2026-11-22T13:04".into())]);
        assert_eq!(form.from_ms, Some(1_795_352_640_000));
    }
}
