//! Resilience against real demo instances (separate processes): an instance killed with
//! SIGKILL under load, and a breaker that opens and recovers.

use fleetdeck_tests::{DemoServerProcess, gateway_client, start_with_fleet, tool_call};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "resilience-key-0123456789-abcdefghij";

#[tokio::test]
async fn a_killed_instance_fails_no_read_only_call_and_nothing_hangs() {
    let mut doomed = DemoServerProcess::start("search", "search-a").await;
    let survivor = DemoServerProcess::start("search", "search-b").await;
    let notify = DemoServerProcess::start("notifications", "notify-a").await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(
        dir.path(),
        &format!(
            r#"
[[server]]
name = "search"
strategy = "round-robin"
timeout_ms = 3000
retry = {{ attempts = 2, base_ms = 10, max_ms = 100, budget_ratio = 0.5 }}
  [[server.instance]]
  id = "search-a"
  url = "{a}"
  [[server.instance]]
  id = "search-b"
  url = "{b}"

[[server]]
name = "notifications"
timeout_ms = 3000
  [[server.instance]]
  id = "notify-a"
  url = "{n}"

[[assistant]]
name = "load"
key = "{KEY}"
tier = "admin"

[access.tier.admin]
rate_per_min = 1000000
"#,
            a = doomed.url,
            b = survivor.url,
            n = notify.url
        ),
        "resilience admin password",
    )
    .await;
    let client = Arc::new(gateway_client(&gateway.url("/mcp"), KEY).await);

    // Eight workers call a read-only tool for 3 s; one instance dies after 1 s.
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline && n < 2000 {
                n += 1;
                let result = client
                    .call_tool(tool_call(
                        "search__query",
                        json!({"q": "gateway", "limit": 3}),
                    ))
                    .await;
                match result {
                    Ok(r) if r.is_error != Some(true) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failed
                        .lock()
                        .unwrap()
                        .push(format!("worker {w}: {:?}", r.content)),
                    Err(e) => failed.lock().unwrap().push(format!("worker {w}: {e}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    doomed.kill().await;
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(20), worker)
            .await
            .expect("no call hangs")
            .unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "read-only calls failed: {failed:?}");
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "calls went through: {}",
        ok.load(Ordering::Relaxed)
    );
    assert!(survivor.calls_served().await > 0.0);

    // A non-idempotent tool whose only instance is gone fails with a clear error, at once.
    let mut notify = notify;
    notify.kill().await;
    let started = Instant::now();
    let result = client
        .call_tool(tool_call(
            "notifications__send",
            json!({"channel": "slack", "recipient": "#ops", "message": "hi"}),
        ))
        .await
        .expect("an answer, not a protocol failure");
    assert_eq!(result.is_error, Some(true));
    let text = serde_json::to_string(&result.content).unwrap();
    assert!(text.contains("notifications__send"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered without hanging"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_failing_instance_trips_its_breaker_which_recovers_after_the_fault() {
    let flaky = DemoServerProcess::start("search", "flaky").await;
    let steady = DemoServerProcess::start("search", "steady").await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(
        dir.path(),
        &format!(
            r#"
[[server]]
name = "search"
strategy = "round-robin"
timeout_ms = 3000
breaker = {{ failures = 3, reset_s = 2, half_open_probes = 1 }}
retry = {{ attempts = 1, base_ms = 1, max_ms = 10, budget_ratio = 1.0 }}
  [[server.instance]]
  id = "flaky"
  url = "{f}"
  [[server.instance]]
  id = "steady"
  url = "{s}"

[[assistant]]
name = "load"
key = "{KEY}"
tier = "admin"

[access.tier.admin]
rate_per_min = 1000000
"#,
            f = flaky.url,
            s = steady.url
        ),
        "resilience admin password",
    )
    .await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let query = || tool_call("search__query", json!({"q": "cache"}));

    // The flaky instance now answers every call with an internal error.
    flaky.set_knobs(json!({"fail_rate": 1.0})).await;
    for _ in 0..12 {
        let result = client.call_tool(query()).await.expect("answered");
        assert_ne!(
            result.is_error,
            Some(true),
            "retried on the steady instance: {:?}",
            result.content
        );
    }
    // Open: the flaky instance gets no more calls.
    let seen = flaky.calls_served().await;
    assert!(seen >= 3.0, "it failed at least `failures` times: {seen}");
    for _ in 0..10 {
        client.call_tool(query()).await.unwrap();
    }
    assert_eq!(
        flaky.calls_served().await,
        seen,
        "no call reached the instance behind an open breaker"
    );

    // Fixed: after the reset timeout a probe succeeds and the breaker closes again.
    flaky.set_knobs(json!({})).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    for _ in 0..10 {
        client.call_tool(query()).await.unwrap();
    }
    assert!(
        flaky.calls_served().await >= seen + 3.0,
        "traffic returned to the recovered instance"
    );
    gateway.stop().await;
}
