//! A server's tool catalog: listed from one of its instances (one listing at a time), and
//! vetted against the server's limits before anything keeps it. An instance may be broken
//! or compromised, so a listing over `max_tools` fails whole (the last good catalog stays),
//! and a tool whose name, description or schema is over its cap is left out; both are
//! counted, logged and recorded as a fleet event so that operators see why a tool is gone.

use crate::config::fleet::UpstreamLimitsSpec;
use crate::gateway::result_size::json_bytes;
use crate::gateway::tool_name::{self, MAX_TOOL_NAME_BYTES};
use crate::registry::{FleetEvent, Registry, ServerEntry};
use crate::sanitize;
use crate::store::Store;
use crate::telemetry::metrics::{Metrics, UpstreamRefusal};
use crate::upstream::UpstreamError;
use rmcp::model::Tool;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long listing a server's tools may take.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// A tool left out of a catalog, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// The tool's name as it may be shown (escaped and cut when it is not valid).
    pub tool: String,
    /// Which limit it broke.
    pub why: String,
}

/// The tools of a listing that fit the limits, and those left out.
#[derive(Debug, Default)]
pub struct Vetted {
    /// Tools kept, in listing order.
    pub kept: Vec<Tool>,
    /// Tools refused.
    pub left_out: Vec<LeftOut>,
}

/// Keeps the tools of `server` that fit `limits`: the whole tool within `max_tool_bytes`
/// (annotations, icons and `_meta` included), a valid name that stays within
/// [`MAX_TOOL_NAME_BYTES`] once exposed as `<server>__<tool>`, listed once, a description
/// and title within `max_description_bytes`, input and output schemas within
/// `max_schema_bytes`.
pub fn vet(server: &str, tools: Vec<Tool>, limits: &UpstreamLimitsSpec) -> Vetted {
    let mut vetted = Vetted::default();
    let mut seen = std::collections::HashSet::new();
    for tool in tools {
        let why = refusal(server, &tool, limits)
            .or_else(|| (!seen.insert(tool.name.to_string())).then(|| "listed twice".to_string()));
        match why {
            Some(why) => vetted.left_out.push(LeftOut {
                tool: sanitize::escaped_name(&tool.name),
                why,
            }),
            None => vetted.kept.push(tool),
        }
    }
    vetted
}

fn refusal(server: &str, tool: &Tool, limits: &UpstreamLimitsSpec) -> Option<String> {
    let whole = serde_json::to_value(tool).map_or(0, |v| json_bytes(&v));
    if whole > limits.max_tool_bytes {
        return Some(format!(
            "it has about {whole} bytes as JSON, over limits.max_tool_bytes ({})",
            limits.max_tool_bytes
        ));
    }
    let room = MAX_TOOL_NAME_BYTES.saturating_sub(server.len() + 2);
    if let Err(problem) = tool_name::check(&tool.name) {
        return Some(problem.to_string());
    }
    if tool.name.contains("__") {
        return Some("a tool name must not contain `__` (it separates server and tool)".into());
    }
    if tool.name.len() > room {
        return Some(format!(
            "the name is {} bytes; exposed as {server}__<tool> it may have {room}",
            tool.name.len()
        ));
    }
    let description = tool.description.as_deref().map_or(0, str::len);
    let title = tool.title.as_deref().map_or(0, str::len);
    if description.max(title) > limits.max_description_bytes {
        return Some(format!(
            "its description has {} bytes, over limits.max_description_bytes ({})",
            description.max(title),
            limits.max_description_bytes
        ));
    }
    let input = json_bytes(&serde_json::Value::Object((*tool.input_schema).clone()));
    let output = tool.output_schema.as_ref().map_or(0, |schema| {
        json_bytes(&serde_json::Value::Object((**schema).clone()))
    });
    if input.max(output) > limits.max_schema_bytes {
        return Some(format!(
            "its schema has about {} bytes, over limits.max_schema_bytes ({})",
            input.max(output),
            limits.max_schema_bytes
        ));
    }
    None
}

/// Lists `server`'s tools from the first instance that answers and keeps what fits.
/// Listings of one server run one at a time; one that finds the catalog refreshed while it
/// waited does nothing.
pub async fn refresh(
    registry: &Registry,
    server: &ServerEntry,
    metrics: &Metrics,
    store: Option<&Store>,
) -> Result<(), String> {
    let waited_from = Instant::now();
    let _one_at_a_time = server.listing().lock().await;
    // A listing that ended while this one waited (well or not) answers for it: callers
    // queued behind a failing instance do not each list again.
    if server.listing_ended_since(waited_from) {
        return Ok(());
    }
    let result = list_and_keep(registry, server, metrics, store).await;
    server.note_listing_ended(Instant::now());
    result
}

async fn list_and_keep(
    registry: &Registry,
    server: &ServerEntry,
    metrics: &Metrics,
    store: Option<&Store>,
) -> Result<(), String> {
    server.tool_list_misses.fetch_add(1, Ordering::Relaxed);
    let limits = server.settings.limits;
    let now = Instant::now();
    let mut last_error = String::from("no instance is eligible");
    // Eligible ones first; any instance will do for a listing.
    let mut instances = server.instances();
    instances.sort_by_key(|i| !i.looks_eligible(now));
    for instance in instances {
        let listing = instance
            .upstream
            .list_tools(LIST_TIMEOUT, limits.max_tools, limits.max_catalog_bytes)
            .await;
        let tools = match listing {
            Ok(tools) => tools,
            Err(error) => {
                if matches!(error, UpstreamError::OverLimit(_)) {
                    metrics.upstream_refusal(&server.name, UpstreamRefusal::CatalogTooLarge);
                    let message = format!("{}: tool listing refused: {error}", instance.id);
                    // Recorded when it changes, not at every (re)listing.
                    if server.note_catalog_report(&message) {
                        tracing::warn!(server = %server.name, "{}", sanitize::error_text(&message));
                        record_event(store, &server.name, Some(&instance.id), &message).await;
                    }
                }
                last_error = format!("{}: {error}", instance.id);
                continue;
            }
        };
        let vetted = vet(&server.name, tools, &limits);
        if !vetted.left_out.is_empty() {
            report_left_out(server, &instance.id, &vetted.left_out, metrics, store).await;
        }
        let changed = !server
            .catalog()
            .tools
            .iter()
            .map(|t| t.as_ref())
            .eq(vetted.kept.iter());
        server.set_catalog(vetted.kept, Instant::now());
        if changed {
            registry.publish(FleetEvent::Tools {
                server: server.name.clone(),
            });
        }
        return Ok(());
    }
    Err(last_error)
}

/// Counts, logs and records the tools a listing left out (once per change: a listing that
/// leaves out the same tools as the last one is not recorded again).
async fn report_left_out(
    server: &ServerEntry,
    instance: &str,
    left_out: &[LeftOut],
    metrics: &Metrics,
    store: Option<&Store>,
) {
    for _ in left_out {
        metrics.upstream_refusal(&server.name, UpstreamRefusal::ToolOverLimit);
    }
    let summary: Vec<String> = left_out
        .iter()
        .take(5)
        .map(|l| format!("{} ({})", l.tool, l.why))
        .collect();
    let more = left_out.len().saturating_sub(summary.len());
    let message = format!(
        "{instance}: {} tool(s) left out of the catalog: {}{}",
        left_out.len(),
        summary.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    );
    if server.note_catalog_report(&message) {
        tracing::warn!(server = %server.name, %instance, "{}", sanitize::error_text(&message));
        record_event(store, &server.name, Some(instance), &message).await;
    }
}

async fn record_event(store: Option<&Store>, server: &str, instance: Option<&str>, message: &str) {
    let Some(store) = store else { return };
    let message = sanitize::error_text(message);
    let evidence = serde_json::json!({ "reason": message });
    if let Err(error) = store
        .insert_fleet_event(
            crate::store::now_ms(),
            "catalog",
            server,
            instance,
            &message,
            &evidence,
        )
        .await
    {
        tracing::warn!(%error, "cannot record a catalog event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tool(name: &str, description: &str) -> Tool {
        Tool::new(
            name.to_string(),
            description.to_string(),
            Arc::new(serde_json::Map::new()),
        )
    }

    #[test]
    fn tools_over_a_limit_are_left_out_and_named() {
        let limits = UpstreamLimitsSpec {
            max_description_bytes: 100,
            max_schema_bytes: 200,
            ..UpstreamLimitsSpec::default()
        };
        let mut huge_schema = serde_json::Map::new();
        huge_schema.insert("description".into(), "s".repeat(500).into());
        let tools = vec![
            tool("lookup", "fine"),
            tool("chatty", &"d".repeat(101)),
            Tool::new("schemed", "ok", Arc::new(huge_schema)),
            tool("bad\0name", "x"),
            tool(&"n".repeat(125), "too long once exposed"),
            tool("has__sep", "x"),
            tool("lookup", "again"),
        ];
        let vetted = vet("search", tools, &limits);
        let kept: Vec<&str> = vetted.kept.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(kept, ["lookup"]);
        let why: Vec<(&str, &str)> = vetted
            .left_out
            .iter()
            .map(|l| (l.tool.as_str(), l.why.as_str()))
            .collect();
        assert_eq!(why.len(), 6, "{why:?}");
        assert!(why[0].1.contains("max_description_bytes"), "{why:?}");
        assert!(why[1].1.contains("max_schema_bytes"), "{why:?}");
        assert_eq!(why[2].0, "bad\\0name");
        assert!(why[3].1.contains("exposed as search__<tool>"), "{why:?}");
        assert!(why[4].1.contains("`__`"), "{why:?}");
        assert_eq!(why[5].1, "listed twice");
    }
}
