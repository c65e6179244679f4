//! Hostile callers (issue 13): anything holding an API key, or trying keys. Each test makes
//! one attack on the real `fleetdeck serve` over raw HTTP (what an attacker sends is not
//! what an SDK would), and checks the refusal and that the gateway still serves and audits
//! afterwards. The upstream is the hostile test server in its harmless mode.

use fleetdeck_tests::{
    Fleetdeck, PgSchema, ServeOptions, any_loopback_port, dashboard_session, hostile_mcp_bin,
    metrics_sample, run_fleetdeck, scrape_metrics, server_fn, sqlite_store, write_fleet,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const KEY: &str = "hostile-caller-key-0123456789abcdefgh";
const OTHER_KEY: &str = "hostile-other-key-0123456789abcdefghi";
const ADMIN_PASSWORD: &str = "hostile caller admin password";
/// The MCP tool-name rule, as refusals state it.
const RULE: &str = "a tool name is 1 to 128 bytes of ASCII letters, digits, '_', '.' and '-'";

/// A fleet of one harmless instance (`mock__echo`, …) and two assistants; `access` is
/// appended as it is (tier overrides).
fn fleet(access: &str) -> String {
    format!(
        "[[server]]\nname = \"mock\"\n[[server.instance]]\nid = \"mock-1\"\ncommand = [{:?}]\n\n\
         [[assistant]]\nname = \"alice\"\nkey = \"{KEY}\"\ntier = \"admin\"\n\n\
         [[assistant]]\nname = \"bob\"\nkey = \"{OTHER_KEY}\"\ntier = \"admin\"\n\n{access}",
        hostile_mcp_bin().display().to_string()
    )
}

async fn start(dir: &Path, access: &str, extra: &[&str]) -> Fleetdeck {
    let fleet_file = write_fleet(dir, &fleet(access));
    let mut extra_args = vec!["--fleet".to_string(), fleet_file.display().to_string()];
    extra_args.extend(extra.iter().map(|a| a.to_string()));
    Fleetdeck::start(ServeOptions {
        data_dir: dir,
        addr: any_loopback_port(),
        admin_password: Some(ADMIN_PASSWORD),
        extra_args,
    })
    .await
}

/// A raw JSON-RPC POST to `/mcp`.
struct Raw {
    http: reqwest::Client,
    url: String,
}

impl Raw {
    fn new(gateway: &Fleetdeck) -> Raw {
        Raw {
            http: reqwest::Client::new(),
            url: gateway.url("/mcp"),
        }
    }

    fn request(
        &self,
        key: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request
    }

    /// Sends `method` with `params` and returns the JSON-RPC answer.
    async fn rpc(&self, key: &str, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .request(Some(key), body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        parse_answer(&text).unwrap_or_else(|| panic!("{method}: {status} {text}"))
    }

    /// A `tools/call` of `name`.
    async fn call(&self, key: &str, name: &str) -> Value {
        self.rpc(key, "tools/call", json!({"name": name, "arguments": {}}))
            .await
    }
}

/// The JSON-RPC message of an answer, whether sent as JSON or as one SSE event.
fn parse_answer(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok().or_else(|| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
    })
}

fn error_code(answer: &Value) -> Option<i64> {
    answer["error"]["code"].as_i64()
}

async fn audited(dir: &Path) -> Vec<(String, String, String, Option<String>)> {
    let pool = sqlite_store(dir).await;
    let rows = sqlx::query_as("SELECT server, tool, outcome, trace_id FROM tool_calls ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn bad_tool_names_are_refused_with_the_rule_and_kept_only_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(dir.path(), "", &[]).await;
    let raw = Raw::new(&gateway);
    let long = "n".repeat(3000);
    for name in [
        "mock__ec\0ho",
        long.as_str(),
        "mock__echo; rm -rf /",
        "mock__écho",
        "",
    ] {
        let answer = raw.call(KEY, name).await;
        assert_eq!(error_code(&answer), Some(-32602), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(RULE), "{message}");
        assert!(
            message.len() < 200,
            "the refusal does not echo the name: {message}"
        );
    }
    let ok = raw.call(KEY, "mock__echo").await;
    assert_eq!(ok["result"]["content"][0]["text"], "ok", "{ok}");
    let metrics = scrape_metrics(&gateway).await;
    assert!(!metrics.contains("nnnnnnnn") && !metrics.contains("rm -rf"));
    gateway.stop().await;

    let rows = audited(dir.path()).await;
    assert_eq!(rows.len(), 6, "every refusal audited: {rows:?}");
    for (server, tool, outcome, _) in &rows[..5] {
        assert_eq!(outcome, "rejected");
        assert!(server.len() + tool.len() <= 100, "kept short: {tool}");
        assert!(!tool.contains('\0'), "no NUL stored");
    }
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("", "mock__ec\\0ho"),
        "escaped, so nothing is hidden, and not split"
    );
    assert!(rows[1].1.ends_with("(3000 bytes)"), "{}", rows[1].1);
    assert_eq!(
        (rows[5].0.as_str(), rows[5].1.as_str(), rows[5].2.as_str()),
        ("mock", "echo", "ok")
    );
}

#[tokio::test]
async fn two_thousand_calls_with_4_mib_names_leave_the_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    // Bodies up to 6 MiB are accepted, so that the names reach the gateway's own check.
    let gateway = start(
        dir.path(),
        "[access.tier.admin]\nrate_per_min = 1000000\n",
        &["--max-body-bytes", "6291456"],
    )
    .await;
    let raw = Raw::new(&gateway);
    let name = "x".repeat(4 * 1024 * 1024);
    let body = bytes::Bytes::from(
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": name, "arguments": {}}})
        .to_string(),
    );
    let send = |body: bytes::Bytes| {
        let request = raw.request(Some(KEY), body);
        async move {
            let answer = request.send().await.unwrap().text().await.unwrap();
            let answer = parse_answer(&answer).unwrap();
            assert_eq!(error_code(&answer), Some(-32602), "{answer}");
        }
    };
    // Warm up: the allocator's pools and the gateway's caches settle first.
    for _ in 0..40 {
        send(body.clone()).await;
    }
    let before = gateway.resident_bytes();
    let started = std::time::Instant::now();
    use futures::StreamExt;
    futures::stream::iter(0..2000)
        .map(|_| send(body.clone()))
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = gateway.resident_bytes();
    let grown = after.saturating_sub(before);
    eprintln!(
        "2000 calls with 4 MiB names in {:?}: resident {} MB → {} MB",
        started.elapsed(),
        before / 1_000_000,
        after / 1_000_000
    );
    assert!(
        grown < 50 * 1024 * 1024,
        "resident memory grew by {grown} bytes"
    );
    let ok = raw.call(KEY, "mock__echo").await;
    assert_eq!(ok["result"]["content"][0]["text"], "ok", "{ok}");
    gateway.stop().await;
    let rows = audited(dir.path()).await;
    assert_eq!(rows.len(), 2041, "every call audited");
    let longest = rows.iter().map(|r| r.1.len()).max().unwrap();
    assert!(longest < 100, "audit rows keep {longest}-byte names");
}

#[tokio::test]
async fn every_request_draws_on_the_rate_limit_before_names_are_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(dir.path(), "[access.tier.admin]\nrate_per_min = 8\n", &[]).await;
    let raw = Raw::new(&gateway);
    let initialize = json!({
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}
    });
    // Eight requests of every kind but a real call use the whole budget.
    assert!(raw.rpc(KEY, "initialize", initialize).await["result"].is_object());
    assert!(raw.rpc(KEY, "tools/list", json!({})).await["result"]["tools"].is_array());
    assert!(raw.rpc(KEY, "ping", json!({})).await["result"].is_object());
    assert_eq!(error_code(&raw.call(KEY, "mock__nope").await), Some(-32602));
    assert_eq!(error_code(&raw.call(KEY, "nope__nope").await), Some(-32602));
    assert_eq!(error_code(&raw.call(KEY, "bad name").await), Some(-32602));
    assert!(raw.rpc(KEY, "resources/list", json!({})).await["result"].is_object());
    assert!(raw.rpc(KEY, "prompts/list", json!({})).await["result"].is_object());
    for (method, params) in [
        ("tools/call", json!({"name": "mock__echo", "arguments": {}})),
        ("tools/list", json!({})),
        ("ping", json!({})),
        ("tools/call", json!({"name": "made__up", "arguments": {}})),
    ] {
        let answer = raw.rpc(KEY, method, params).await;
        assert_eq!(error_code(&answer), Some(-32029), "{method}: {answer}");
        assert!(answer["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 0);
    }
    // Another assistant's budget is its own.
    let other = raw.call(OTHER_KEY, "mock__echo").await;
    assert_eq!(other["result"]["content"][0]["text"], "ok", "{other}");
    let metrics = scrape_metrics(&gateway).await;
    assert_eq!(
        metrics_sample(
            &metrics,
            "fleetdeck_rate_limited_calls_total",
            &[("assistant", "alice")]
        ),
        Some(4.0)
    );
    gateway.stop().await;
}

#[tokio::test]
async fn made_up_tool_names_never_become_metric_labels() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(dir.path(), "", &[]).await;
    let raw = Raw::new(&gateway);
    for i in 0..25 {
        let answer = raw.call(KEY, &format!("invented{i}__tool{i}")).await;
        assert_eq!(error_code(&answer), Some(-32602));
    }
    let ok = raw.call(KEY, "mock__echo").await;
    assert_eq!(ok["result"]["content"][0]["text"], "ok");
    let metrics = scrape_metrics(&gateway).await;
    assert!(
        !metrics.contains("invented"),
        "a made-up name became a label"
    );
    assert_eq!(
        metrics_sample(
            &metrics,
            "fleetdeck_tool_calls_total",
            &[
                ("server", "_other"),
                ("tool", "_other"),
                ("outcome", "rejected")
            ]
        ),
        Some(25.0)
    );
    assert_eq!(
        metrics_sample(
            &metrics,
            "fleetdeck_tool_calls_total",
            &[("server", "mock"), ("tool", "echo"), ("outcome", "ok")]
        ),
        Some(1.0)
    );
    gateway.stop().await;
}

#[tokio::test]
async fn failed_bearer_attempts_are_throttled_per_client_address() {
    let dir = tempfile::tempdir().unwrap();
    // The test's requests come through a "proxy" at 127.0.0.1 that names the client.
    let gateway = start(dir.path(), "", &["--trusted-proxy", "127.0.0.1"]).await;
    let raw = Raw::new(&gateway);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let from = |client: &str, key: Option<&str>| {
        raw.request(key, ping.clone())
            .header("x-forwarded-for", client)
            .send()
    };
    for n in 0..30 {
        let key = format!("guess-{n:04}-0123456789abcdef0123456789");
        let status = from("203.0.113.1", Some(&key)).await.unwrap().status();
        assert_eq!(status, 401, "attempt {n}");
    }
    let throttled = from("203.0.113.1", Some("one-more-guess")).await.unwrap();
    assert_eq!(throttled.status(), 429);
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Missing keys are failures too; a valid key is never throttled (many assistants may
    // share one address).
    assert_eq!(from("203.0.113.1", None).await.unwrap().status(), 429);
    assert_eq!(from("203.0.113.1", Some(KEY)).await.unwrap().status(), 200);
    // Another address has its own budget.
    assert_eq!(
        from("203.0.113.2", Some("a-wrong-key"))
            .await
            .unwrap()
            .status(),
        401
    );
    let metrics = scrape_metrics(&gateway).await;
    let failures = |reason| {
        metrics_sample(
            &metrics,
            "fleetdeck_mcp_auth_failures_total",
            &[("reason", reason)],
        )
    };
    assert_eq!(failures("invalid"), Some(31.0));
    assert_eq!(failures("throttled"), Some(2.0));
    gateway.stop().await;
}

/// A `tools/call` of `mock__echo` carrying `traceparent`; returns nothing (the audit row
/// tells the trace it went to).
async fn traced_call(raw: &Raw, key: &str, traceparent: &str) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "mock__echo", "arguments": {}}});
    let response = raw
        .request(Some(key), body.to_string())
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    let answer = parse_answer(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
}

#[tokio::test]
async fn a_caller_cannot_add_to_another_assistants_trace_or_grow_one_without_end() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(dir.path(), "", &[]).await;
    let raw = Raw::new(&gateway);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    traced_call(&raw, KEY, &traceparent).await;
    // bob presents alice's trace id: his call gets a trace of its own.
    traced_call(&raw, OTHER_KEY, &traceparent).await;
    // alice reuses her trace id: 32 fragments at most, then new traces.
    for _ in 0..32 {
        traced_call(&raw, KEY, &traceparent).await;
    }
    // The trace view shows alice's fragments only (bob's went to a trace of their own).
    let session = dashboard_session(&gateway, "admin", ADMIN_PASSWORD).await;
    let (status, view) =
        fleetdeck_tests::server_fn_form(&session, &gateway, "traces/get", &[("trace_id", trace)])
            .await;
    assert!(status.is_success(), "{status} {view}");
    assert!(view.contains("alice") && !view.contains("bob"), "{view}");
    gateway.stop().await;
    let rows = audited(dir.path()).await;
    let of = |n: usize| rows[n].3.clone().unwrap();
    assert_eq!(of(0), trace);
    assert_ne!(of(1), trace, "bob's call joined alice's trace");
    let alice_in_trace = rows
        .iter()
        .filter(|r| r.3.as_deref() == Some(trace))
        .count();
    assert_eq!(alice_in_trace, 32, "fragments per trace id are capped");
    assert_ne!(of(33), trace);
}

#[tokio::test]
async fn declared_keys_need_32_characters_and_show_only_as_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let short = write_fleet(
        dir.path(),
        "[[assistant]]\nname = \"weak\"\nkey = \"password123\"\ntier = \"admin\"\n",
    );
    let data = dir.path().join("data");
    let (code, _, stderr) = run_fleetdeck(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--fleet",
            short.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("fleet.toml:3") && stderr.contains("at least 32 characters"),
        "{stderr}"
    );

    let gateway = start(dir.path(), "", &[]).await;
    let session = dashboard_session(&gateway, "admin", ADMIN_PASSWORD).await;
    let assistants = server_fn(&session, &gateway, "assistants/list").await;
    let text = assistants.to_string();
    assert!(
        !text.contains(&KEY[..8]),
        "a declared key's start is shown: {text}"
    );
    let shown: Vec<&str> = assistants
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["keys"].as_array().unwrap())
        .map(|k| k["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(shown.len(), 2);
    assert!(shown.iter().all(|p| p.starts_with("sha256:")), "{shown:?}");
    gateway.stop().await;
}

#[tokio::test]
async fn on_postgres_a_nul_and_a_3kb_name_do_not_stop_the_audit_log() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(
        dir.path(),
        "[access.tier.admin]\nrate_per_min = 1000000\n",
        &["--database-url", &schema.url()],
    )
    .await;
    let raw = Raw::new(&gateway);
    assert_eq!(error_code(&raw.call(KEY, "mock__a\0b").await), Some(-32602));
    assert_eq!(
        error_code(&raw.call(KEY, &"t".repeat(3000)).await),
        Some(-32602)
    );
    use futures::StreamExt;
    let answers: Vec<Value> = futures::stream::iter(0..1000)
        .map(|_| raw.call(KEY, "mock__echo"))
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        answers
            .iter()
            .all(|a| a["result"]["content"][0]["text"] == "ok")
    );
    gateway.stop().await;

    let pool = sqlx::PgPool::connect(&schema.url()).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tool_calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1002, "every call audited, the hostile ones too");
    let (ok,): (i64,) = sqlx::query_as("SELECT count(*) FROM tool_calls WHERE outcome = 'ok'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ok, 1000);
    pool.close().await;
}

#[tokio::test]
async fn on_postgres_a_row_refused_for_good_is_dropped_counted_and_the_rest_written() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start(
        dir.path(),
        "[access.tier.admin]\nrate_per_min = 1000000\n",
        &["--database-url", &schema.url()],
    )
    .await;
    // The database refuses bob's rows for good (a constraint violation, class 23), even
    // cut down: they can only be dropped. Nothing else may stall behind them.
    let pool = sqlx::PgPool::connect(&schema.url()).await.unwrap();
    sqlx::query("ALTER TABLE tool_calls ADD CONSTRAINT no_bob CHECK (assistant <> 'bob')")
        .execute(&pool)
        .await
        .unwrap();
    let raw = Raw::new(&gateway);
    for _ in 0..5 {
        let answer = raw.call(OTHER_KEY, "mock__echo").await;
        assert_eq!(answer["result"]["content"][0]["text"], "ok", "{answer}");
    }
    use futures::StreamExt;
    let answers: Vec<Value> = futures::stream::iter(0..300)
        .map(|_| raw.call(KEY, "mock__echo"))
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        answers
            .iter()
            .all(|a| a["result"]["content"][0]["text"] == "ok")
    );
    let mut dropped = None;
    for _ in 0..50 {
        let metrics = scrape_metrics(&gateway).await;
        dropped = metrics_sample(&metrics, "fleetdeck_audit_records_dropped_total", &[]);
        if dropped == Some(5.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dropped, Some(5.0));
    let refusals = gateway
        .log()
        .iter()
        .filter(|l| l.contains("refused a tool call record even cut down"))
        .count();
    assert_eq!(refusals, 1, "logged once, not five times");
    gateway.stop().await;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tool_calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 300, "every other call audited");
    pool.close().await;
}
