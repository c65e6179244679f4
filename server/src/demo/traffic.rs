//! Synthetic assistants calling the fleet through the gateway at a steady rate, so that a
//! first look at the dashboard shows a live fleet.

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use std::time::Duration;

/// One call a synthetic assistant might make.
fn random_call(rng: &mut fastrand::Rng) -> (&'static str, Value) {
    const WORDS: [&str; 8] = [
        "gateway", "latency", "breaker", "deploy", "incident", "cache", "runbook", "billing",
    ];
    const FILES: [&str; 4] = [
        "/README.md",
        "/docs/runbook.md",
        "/docs/architecture.md",
        "/docs/oncall.md",
    ];
    const QUERIES: [&str; 3] = [
        "SELECT id, status FROM orders LIMIT 5",
        "SELECT name FROM products LIMIT 3",
        "SELECT id, name FROM users WHERE id = 7",
    ];
    match rng.u32(0..100) {
        0..=29 => (
            "search__query",
            json!({"q": WORDS[rng.usize(..WORDS.len())], "limit": 5}),
        ),
        30..=44 => (
            "search__lookup",
            json!({"id": format!("doc-{:03}", rng.u32(1..=60))}),
        ),
        45..=59 => (
            "database__sql_select",
            json!({"sql": QUERIES[rng.usize(..QUERIES.len())]}),
        ),
        60..=64 => ("database__list_tables", json!({})),
        65..=79 => (
            "files__read_file",
            json!({"path": FILES[rng.usize(..FILES.len())]}),
        ),
        80..=87 => ("files__list_dir", json!({"path": "/docs"})),
        88..=96 => ("notifications__list_sent", json!({"limit": 5})),
        _ => (
            "notifications__send",
            json!({"channel": "slack", "recipient": "#ops", "message": "deploy finished"}),
        ),
    }
}

async fn connect(url: &str, key: &str) -> Option<RunningService<RoleClient, ()>> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    config.auth_header = Some(key.to_string());
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .ok()
}

/// How often the demo prints its one-line traffic status.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// How the synthetic calls ended since the last status line.
#[derive(Default)]
struct Tally {
    ok: std::sync::atomic::AtomicU64,
    tool_errors: std::sync::atomic::AtomicU64,
    refused: std::sync::atomic::AtomicU64,
}

impl Tally {
    fn count(&self, counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The status line, and the counts start again.
    fn line(&self, every: Duration) -> String {
        let take =
            |c: &std::sync::atomic::AtomicU64| c.swap(0, std::sync::atomic::Ordering::Relaxed);
        let (ok, tool_errors, refused) =
            (take(&self.ok), take(&self.tool_errors), take(&self.refused));
        format!(
            "demo traffic, last {} s: {} calls ({ok} ok, {tool_errors} tool errors, {refused} refused: denied or rate-limited, as the synthetic assistants are meant to be)",
            every.as_secs(),
            ok + tool_errors + refused
        )
    }
}

/// Calls tools through `gateway_url` as the given assistants, `rate_per_s` calls a second in
/// all, until the task is dropped. Every [`STATUS_EVERY`] one line on stdout says how the
/// calls ended (refusals are expected: the audit log and traces have each one).
pub async fn run(gateway_url: String, assistants: Vec<(String, String)>, rate_per_s: f64) {
    if assistants.is_empty() || rate_per_s <= 0.0 {
        return;
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let mut clients: Vec<Option<RunningService<RoleClient, ()>>> = Vec::new();
    for (_, key) in &assistants {
        clients.push(connect(&gateway_url, key).await);
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate_per_s));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let tally = std::sync::Arc::new(Tally::default());
    let mut status =
        tokio::time::interval_at(tokio::time::Instant::now() + STATUS_EVERY, STATUS_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = status.tick() => {
                println!("{}", tally.line(STATUS_EVERY));
                continue;
            }
        }
        let who = rng.usize(..assistants.len());
        if clients[who].as_ref().is_none_or(|c| c.is_closed()) {
            clients[who] = connect(&gateway_url, &assistants[who].1).await;
        }
        let Some(client) = clients[who].as_ref() else {
            continue;
        };
        let (tool, arguments) = random_call(&mut rng);
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = arguments.as_object().cloned();
        let peer = client.peer().clone();
        let tally = tally.clone();
        // Calls overlap like real traffic; each is bounded by the gateway's timeouts.
        tokio::spawn(async move {
            match peer.call_tool(params).await {
                Ok(result) if result.is_error == Some(true) => tally.count(&tally.tool_errors),
                Ok(_) => tally.count(&tally.ok),
                Err(error) => {
                    tally.count(&tally.refused);
                    tracing::debug!(tool, %error, "demo traffic call refused");
                }
            }
        });
    }
}
