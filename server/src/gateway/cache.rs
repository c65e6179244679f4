//! The result cache: results of tools marked cacheable, keyed by tool and the canonical JSON
//! of the arguments, bounded in entries, bytes and age (moka, with a weigher). Hits, misses and evictions are counted
//! for the dashboard; operators invalidate by tool, by server or everything.

use crate::gateway::result_size;
use moka::future::Cache;
use moka::notification::RemovalCause;
use rmcp::model::CallToolResult;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a cache has done since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries now (approximate until pending maintenance runs).
    pub entries: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to an instance.
    pub misses: u64,
    /// Entries pushed out by size or age (not invalidations).
    pub evictions: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: Arc<AtomicU64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    tool: Arc<str>,
    arguments: String,
}

/// One server's result cache.
pub struct ResultCache {
    cache: Cache<Key, Arc<CallToolResult>>,
    counters: Counters,
}

impl ResultCache {
    /// A cache of at most `max_entries` results and `max_bytes` bytes of them (results
    /// and argument keys, as JSON), each served for `ttl`.
    pub fn new(max_entries: u64, max_bytes: u64, ttl: Duration) -> Self {
        let counters = Counters::default();
        let evictions = counters.evictions.clone();
        // One capacity in moka, two bounds here: an entry weighs its bytes, but at least
        // max_bytes / max_entries, so that no more than max_entries fit either.
        let floor = (max_bytes / max_entries.max(1)).max(1);
        let cache = Cache::builder()
            .max_capacity(max_bytes.max(1))
            .weigher(move |key: &Key, value: &Arc<CallToolResult>| {
                let bytes = (key.arguments.len()
                    + key.tool.len()
                    + result_size::approx_bytes(value)) as u64;
                u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl.max(Duration::from_millis(1)))
            .support_invalidation_closures()
            .eviction_listener(move |_key, _value, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    evictions.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        ResultCache { cache, counters }
    }

    /// A cached result for this call, counting the hit or miss.
    pub async fn get(
        &self,
        tool: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Option<Arc<CallToolResult>> {
        let found = self.cache.get(&key(tool, arguments)).await;
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a successful result (error results are never cached).
    pub async fn put(
        &self,
        tool: &str,
        arguments: Option<&Map<String, Value>>,
        result: &CallToolResult,
    ) {
        if result.is_error != Some(true) {
            self.cache
                .insert(key(tool, arguments), Arc::new(result.clone()))
                .await;
        }
    }

    /// Drops every entry of one tool.
    pub async fn invalidate_tool(&self, tool: &str) {
        let tool: Arc<str> = tool.into();
        // The predicate cannot fail with invalidation closures enabled on the builder.
        let _ = self
            .cache
            .invalidate_entries_if(move |key, _| key.tool == tool);
        self.cache.run_pending_tasks().await;
    }

    /// Drops every entry.
    pub async fn invalidate_all(&self) {
        self.cache.invalidate_all();
        self.cache.run_pending_tasks().await;
    }

    /// Counts so far.
    pub async fn stats(&self) -> CacheStats {
        self.cache.run_pending_tasks().await;
        self.stats_now()
    }

    /// Counts so far without running pending maintenance, for callers that cannot wait
    /// (metrics scrapes): entries and evictions may lag until moka's next maintenance.
    pub fn stats_now(&self) -> CacheStats {
        CacheStats {
            entries: self.cache.entry_count(),
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        }
    }
}

fn key(tool: &str, arguments: Option<&Map<String, Value>>) -> Key {
    let arguments = arguments.map_or_else(
        || "{}".to_string(),
        |a| canonical_json(&Value::Object(a.clone())),
    );
    Key {
        tool: tool.into(),
        arguments,
    }
}

/// JSON with object keys sorted at every level, so that `{"a":1,"b":2}` and
/// `{"b":2,"a":1}` are the same call.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = Map::new();
                for (k, v) in entries {
                    out.insert(k.clone(), sorted(v));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // With serde_json's preserve_order (enabled by some dependencies) maps keep insertion
    // order, so sorting here is what makes the text canonical.
    sorted(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ContentBlock;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn canonical_json_ignores_key_order_at_every_level() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"p": 2, "q": 1}]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"p":2,"q":1}]},"b":1}"#
        );
        assert_ne!(
            canonical_json(&json!({"a": 1})),
            canonical_json(&json!({"a": "1"}))
        );
    }

    #[tokio::test]
    async fn hits_misses_and_invalidation_by_tool_and_all() {
        let cache = ResultCache::new(100, MIB, Duration::from_secs(60));
        let ok = CallToolResult::success(vec![ContentBlock::text("doc 7")]);
        let q = args(json!({"id": 7, "lang": "en"}));
        let same_q = args(json!({"lang": "en", "id": 7}));
        assert!(cache.get("lookup", Some(&q)).await.is_none());
        cache.put("lookup", Some(&q), &ok).await;
        cache.put("query", None, &ok).await;
        assert_eq!(
            cache.get("lookup", Some(&same_q)).await.as_deref(),
            Some(&ok)
        );
        assert!(
            cache
                .get("lookup", Some(&args(json!({"id": 8}))))
                .await
                .is_none()
        );
        let stats = cache.stats().await;
        assert_eq!((stats.entries, stats.hits, stats.misses), (2, 1, 2));

        cache.invalidate_tool("lookup").await;
        assert!(cache.get("lookup", Some(&q)).await.is_none());
        assert!(cache.get("query", None).await.is_some(), "other tools stay");
        cache.invalidate_all().await;
        assert!(cache.get("query", None).await.is_none());
        assert_eq!(cache.stats().await.entries, 0);
    }

    #[tokio::test]
    async fn error_results_are_not_cached() {
        let cache = ResultCache::new(100, MIB, Duration::from_secs(60));
        let failed = CallToolResult::error(vec![ContentBlock::text("boom")]);
        cache.put("lookup", None, &failed).await;
        assert!(cache.get("lookup", None).await.is_none());
    }

    #[tokio::test]
    async fn size_evictions_are_counted() {
        let cache = ResultCache::new(2, MIB, Duration::from_secs(60));
        let ok = CallToolResult::success(vec![ContentBlock::text("x")]);
        for i in 0..20 {
            cache
                .put("lookup", Some(&args(json!({"id": i}))), &ok)
                .await;
        }
        let stats = cache.stats().await;
        assert!(stats.entries <= 2, "{stats:?}");
        assert!(stats.evictions >= 18, "{stats:?}");
    }

    #[tokio::test]
    async fn the_cache_holds_no_more_bytes_than_its_bound() {
        // Room for 1000 entries by count, but 1 MiB of bytes: 100 KiB results, 10 fit.
        let cache = ResultCache::new(1000, MIB, Duration::from_secs(60));
        let big = CallToolResult::success(vec![ContentBlock::text("b".repeat(100 * 1024))]);
        for i in 0..50 {
            cache
                .put("lookup", Some(&args(json!({"id": i}))), &big)
                .await;
        }
        let stats = cache.stats().await;
        assert!((1..=10).contains(&stats.entries), "{stats:?}");
        assert!(
            cache.cache.weighted_size() <= MIB,
            "{}",
            cache.cache.weighted_size()
        );
    }

    const MIB: u64 = 1024 * 1024;
}
