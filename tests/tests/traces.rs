//! Traces across processes: a call whose first instance is down yields one trace with two
//! attempts under the caller's trace id, and the instance that answered was called with a
//! `traceparent` naming the gateway's `upstream_call` span.

use fleetdeck_tests::{
    DemoServerProcess, Fleetdeck, ServeOptions, any_loopback_port, gateway_client,
    start_with_fleet, tool_call,
};
use reqwest::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const KEY: &str = "traces-key-0123456789abcdef-abcdefgh";
const ADMIN_PASSWORD: &str = "traces admin password";

/// A fleet whose `search` server has a dead instance first (nothing listens on its port)
/// and a real one second, routed round-robin with one retry.
fn fleet(dead_url: &str, live_url: &str) -> String {
    format!(
        r#"
[[server]]
name = "search"
strategy = "round-robin"
timeout_ms = 3000
retry = {{ attempts = 2, base_ms = 20, max_ms = 100, budget_ratio = 1.0 }}
  [[server.instance]]
  id = "search-dead"
  url = "{dead_url}"
  [[server.instance]]
  id = "search-live"
  url = "{live_url}"

[[assistant]]
name = "tracer"
key = "{KEY}"
tier = "admin"

[access.tier.admin]
rate_per_min = 1000000
"#
    )
}

async fn dashboard(gateway: &Fleetdeck) -> Client {
    let client = Client::builder().cookie_store(true).build().unwrap();
    let login = client
        .post(gateway.url("/api/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "login: {}", login.status());
    client
}

/// The trace view of `trace_id`, waiting (bounded) for the trace to finish.
async fn trace_view(client: &Client, gateway: &Fleetdeck, trace_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = client
            .post(gateway.url("/api/traces/get"))
            .form(&[("trace_id", trace_id)])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        if status.is_success() {
            return serde_json::from_str(&body).expect("trace JSON");
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} not found in time: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spans_named<'a>(view: &'a Value, name: &str) -> Vec<&'a Value> {
    view["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter(|s| s["name"] == name)
        .collect()
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == key)
        .and_then(|pair| pair[1].as_str())
}

#[tokio::test]
async fn a_retried_call_is_one_trace_with_two_attempts_under_the_callers_trace_id() {
    let live = DemoServerProcess::start("search", "search-live").await;
    let dead_url = format!("http://{}/mcp", any_loopback_port());
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(dir.path(), &fleet(&dead_url, &live.url), ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let dashboard = dashboard(&gateway).await;

    // Round-robin alternates the first pick: within a few calls one starts on the dead
    // instance (the prober may take it out of rotation later, so look early).
    let mut retried = None;
    for n in 0..6u64 {
        let trace_id = format!(
            "{:032x}",
            0x7ace_0000_0000_0000_0000_0000_0000_0000u128 + u128::from(n)
        );
        let parent = "00f067aa0ba902b7";
        let mut params = tool_call("search__query", json!({"q": "gateway", "limit": 2}));
        let mut meta = rmcp::model::RequestMetaObject::new();
        meta.set_traceparent(format!("00-{trace_id}-{parent}-01"));
        params.meta = Some(meta);
        let result = client.call_tool(params).await.expect("call");
        assert_ne!(result.is_error, Some(true), "call {n} failed: {result:?}");
        let view = trace_view(&dashboard, &gateway, &trace_id).await;
        assert_eq!(view["summary"]["trace_id"], trace_id.as_str());
        assert_eq!(view["summary"]["tool"], "search__query");
        assert_eq!(view["summary"]["assistant"], "tracer");
        assert_eq!(view["summary"]["status"], "ok");
        let upstream_seen = result
            .meta
            .as_ref()
            .and_then(|m| m.get_traceparent())
            .map(str::to_string)
            .expect("the demo instance reports the traceparent it was called with");
        if spans_named(&view, "attempt").len() == 2 {
            retried = Some((trace_id, view, upstream_seen));
            break;
        }
    }
    let (trace_id, view, upstream_seen) =
        retried.expect("one of the calls started on the dead instance and was retried");

    // One trace: a single root, every span inside it.
    let roots: Vec<&Value> = view["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["depth"] == 0)
        .collect();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0]["name"], "tools/call");
    assert_eq!(attribute(roots[0], "outcome"), Some("ok"));
    for name in [
        "authenticate",
        "rate_limit",
        "permission",
        "select_instance",
        "audit_enqueue",
    ] {
        assert!(!spans_named(&view, name).is_empty(), "a {name} span");
    }
    assert_eq!(view["summary"]["retries"], 1);
    // The key check (done by the HTTP middleware) is reported in the authenticate span.
    let authenticate = spans_named(&view, "authenticate")[0];
    assert_eq!(attribute(authenticate, "assistant"), Some("tracer"));
    assert!(
        attribute(authenticate, "key_id").is_some(),
        "{authenticate}"
    );
    assert!(
        attribute(authenticate, "key_check_us").is_some_and(|us| us.parse::<u64>().is_ok()),
        "{authenticate}"
    );

    let attempts = spans_named(&view, "attempt");
    let (first, second) = (attempts[0], attempts[1]);
    assert_eq!(attribute(first, "instance"), Some("search-dead"));
    assert_eq!(first["status"], "error");
    assert!(
        attribute(first, "error").is_some_and(|e| e.contains("connect")),
        "the first attempt's error: {first}"
    );
    assert!(
        first["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"]
                .as_str()
                .is_some_and(|m| m.contains("retrying after"))),
        "the retry is logged in the failed attempt: {first}"
    );
    assert_eq!(attribute(second, "instance"), Some("search-live"));
    assert_eq!(second["status"], "ok");
    assert!(attribute(second, "breaker").is_some());
    assert!(attribute(second, "backoff_ms").is_some());

    // The instance that answered was called inside the second attempt's upstream_call span.
    let calls = spans_named(&view, "upstream_call");
    let answered = calls
        .iter()
        .find(|c| c["parent_id"] == second["span_id"])
        .expect("an upstream_call under the second attempt");
    let expected = format!("00-{trace_id}-{}-01", answered["span_id"].as_str().unwrap());
    assert_eq!(upstream_seen, expected);
    assert_eq!(attribute(answered, "traceparent"), Some(expected.as_str()));

    // The list finds it by its filters.
    let listed: Value = dashboard
        .post(gateway.url("/api/traces/list"))
        .form(&[
            ("query[tool]", "search__query"),
            ("query[assistant]", "tracer"),
            ("query[limit]", "100"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t["trace_id"] == trace_id.as_str())
        .expect("the retried trace is listed");
    assert_eq!(entry["retries"], 1);
    assert_eq!(entry["status"], "ok");

    // The audit row of the call links to the trace.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let csv = dashboard
            .get(gateway.url("/api/audit.csv"))
            .query(&[("kind", "calls")])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if csv.contains(&trace_id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no audit row with trace {trace_id}:\n{csv}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gateway.stop().await;
}

#[tokio::test]
async fn the_http_header_is_accepted_and_meta_wins_over_it() {
    let live = DemoServerProcess::start("search", "search-live").await;
    let dir = tempfile::tempdir().unwrap();
    let fleet = format!(
        r#"
[[server]]
name = "search"
timeout_ms = 3000
  [[server.instance]]
  id = "search-live"
  url = "{}"

[[assistant]]
name = "tracer"
key = "{KEY}"
tier = "admin"
"#,
        live.url
    );
    let gateway = start_with_fleet(dir.path(), &fleet, ADMIN_PASSWORD).await;
    let dashboard = dashboard(&gateway).await;
    let http = Client::new();
    let call = |id: u64, header: Option<String>, meta: Option<String>| {
        let mut params = json!({"name": "search__query", "arguments": {"q": "gateway"}});
        if let Some(meta) = meta {
            params["_meta"] = json!({ "traceparent": meta });
        }
        let mut request = http
            .post(gateway.url("/mcp"))
            .header("Authorization", format!("Bearer {KEY}"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}));
        if let Some(header) = header {
            request = request.header("traceparent", header);
        }
        request.send()
    };
    let header_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let meta_trace = "0af7651916cd43dd8448eb211c80319c";
    let response = call(
        1,
        Some(format!("00-{header_trace}-00f067aa0ba902b7-01")),
        None,
    )
    .await
    .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let view = trace_view(&dashboard, &gateway, header_trace).await;
    assert_eq!(view["summary"]["tool"], "search__query");

    let response = call(
        2,
        Some("00-11111111111111111111111111111111-00f067aa0ba902b7-01".into()),
        Some(format!("00-{meta_trace}-b7ad6b7169203331-01")),
    )
    .await
    .unwrap();
    assert!(response.status().is_success());
    let view = trace_view(&dashboard, &gateway, meta_trace).await;
    assert_eq!(view["summary"]["trace_id"], meta_trace);
    let ignored = dashboard
        .post(gateway.url("/api/traces/get"))
        .form(&[("trace_id", "11111111111111111111111111111111")])
        .send()
        .await
        .unwrap();
    assert_eq!(ignored.status(), reqwest::StatusCode::NOT_FOUND);
    gateway.stop().await;
}

#[tokio::test]
async fn kept_traces_survive_a_restart_and_fast_ones_are_not_kept() {
    let live = DemoServerProcess::start("search", "search-live").await;
    let dir = tempfile::tempdir().unwrap();
    let fleet_file = fleetdeck_tests::write_fleet(
        dir.path(),
        &format!(
            r#"
[[server]]
name = "search"
timeout_ms = 3000
  [[server.instance]]
  id = "search-live"
  url = "{}"

[[assistant]]
name = "tracer"
key = "{KEY}"
tier = "admin"
"#,
            live.url
        ),
    );
    let start = |sample: &'static str| {
        let dir = dir.path().to_path_buf();
        let fleet_file = fleet_file.clone();
        async move {
            Fleetdeck::start(ServeOptions {
                data_dir: &dir,
                addr: any_loopback_port(),
                admin_password: Some(ADMIN_PASSWORD),
                extra_args: vec![
                    "--fleet".into(),
                    fleet_file.display().to_string(),
                    "--trace-sample".into(),
                    sample.into(),
                    "--trace-slow-ms".into(),
                    "60000".into(),
                ],
            })
            .await
        }
    };
    // Sample nothing: only the failed call (an unknown tool) is kept.
    let gateway = start("0").await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let call = |trace_id: &str, tool: &str| {
        let mut params = tool_call(tool, json!({"q": "gateway"}));
        let mut meta = rmcp::model::RequestMetaObject::new();
        meta.set_traceparent(format!("00-{trace_id}-00f067aa0ba902b7-01"));
        params.meta = Some(meta);
        params
    };
    let fine = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
    let failed = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2";
    client
        .call_tool(call(fine, "search__query"))
        .await
        .expect("a fine call");
    assert!(
        client
            .call_tool(call(failed, "search__nope"))
            .await
            .is_err()
    );
    let dashboard_before = dashboard(&gateway).await;
    let view = trace_view(&dashboard_before, &gateway, failed).await;
    assert_eq!(view["summary"]["status"], "error");
    trace_view(&dashboard_before, &gateway, fine).await;
    drop(client);
    // A graceful stop writes what is queued.
    gateway.stop().await;

    let gateway = start("0").await;
    let dashboard_after = dashboard(&gateway).await;
    let kept = trace_view(&dashboard_after, &gateway, failed).await;
    assert_eq!(kept, view, "the stored trace reads back as it was shown");
    let gone = dashboard_after
        .post(gateway.url("/api/traces/get"))
        .form(&[("trace_id", fine)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status(),
        reqwest::StatusCode::NOT_FOUND,
        "a fast, fine, unsampled trace lived in memory only"
    );
    gateway.stop().await;
}
