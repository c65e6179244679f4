//! Operator actions on a live gateway, through the dashboard's server functions: a drain
//! under load loses no call and routes no new one; cache invalidation empties what it names.

use fleetdeck_tests::{DemoServerProcess, Fleetdeck, gateway_client, start_with_fleet, tool_call};
use reqwest::Client;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "operator-test-key-0123456789-abcdefg";
const ADMIN_PASSWORD: &str = "operator test password";

async fn start(dir: &std::path::Path, fleet: String) -> (Fleetdeck, Client) {
    let gateway = start_with_fleet(dir, &fleet, ADMIN_PASSWORD).await;
    let dashboard = Client::builder().cookie_store(true).build().unwrap();
    let login = dashboard
        .post(gateway.url("/api/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "login: {}", login.status());
    (gateway, dashboard)
}

async fn admin_state(dashboard: &Client, gateway: &Fleetdeck, instance: &str) -> String {
    let fleet: Value = dashboard
        .post(gateway.url("/api/fleet/get"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    fleet["servers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["instances"].as_array().unwrap().iter())
        .find(|i| i["id"] == instance)
        .map(|i| i["admin"].as_str().unwrap().to_string())
        .expect("instance listed")
}

#[tokio::test]
async fn a_drain_under_load_loses_no_call_and_routes_no_new_one() {
    let drained = DemoServerProcess::start("search", "search-a").await;
    let other = DemoServerProcess::start("search", "search-b").await;
    // Slow calls, so that some are in flight when the drain starts.
    drained.set_knobs(json!({"extra_latency_ms": 150})).await;
    other.set_knobs(json!({"extra_latency_ms": 150})).await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway, dashboard) = start(
        dir.path(),
        format!(
            "[[server]]\nname = \"search\"\nstrategy = \"round-robin\"\ntimeout_ms = 5000\n\
             [[server.instance]]\nid = \"search-a\"\nurl = \"{}\"\n[[server.instance]]\nid = \"search-b\"\nurl = \"{}\"\n\
             [[assistant]]\nname = \"load\"\nkey = \"{KEY}\"\ntier = \"admin\"\n\
             [access.tier.admin]\nrate_per_min = 1000000\n",
            drained.url, other.url
        ),
    )
    .await;
    let client = Arc::new(gateway_client(&gateway.url("/mcp"), KEY).await);

    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, ok, failures) = (client.clone(), ok.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline && n < 500 {
                n += 1;
                // A mutating, non-idempotent tool: a lost call could not be retried.
                let result = client
                    .call_tool(tool_call(
                        "search__reindex",
                        json!({"duration_ms": 50, "shards": 1}),
                    ))
                    .await;
                match result {
                    Ok(r) if r.is_error != Some(true) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures.lock().unwrap().push(format!("{other:?}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let response = dashboard
        .post(gateway.url("/api/fleet/drain"))
        .form(&[("instance", "search-a")])
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "drain: {}",
        response.text().await.unwrap()
    );
    let started = Instant::now();
    while admin_state(&dashboard, &gateway, "search-a").await != "drained" {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "in-flight calls finished and it drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served_when_drained = drained.calls_served().await;
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(20), worker)
            .await
            .expect("no call hangs")
            .unwrap();
    }
    assert!(
        failures.lock().unwrap().is_empty(),
        "lost calls: {:?}",
        failures.lock().unwrap()
    );
    assert!(ok.load(Ordering::Relaxed) > 20);
    assert_eq!(
        drained.calls_served().await,
        served_when_drained,
        "no call was routed to the drained instance"
    );

    // Undrain: it takes calls again.
    dashboard
        .post(gateway.url("/api/fleet/undrain"))
        .form(&[("instance", "search-a")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        admin_state(&dashboard, &gateway, "search-a").await,
        "active"
    );
    for _ in 0..4 {
        client
            .call_tool(tool_call("search__query", json!({"q": "x"})))
            .await
            .unwrap();
    }
    assert!(drained.calls_served().await > served_when_drained);
    gateway.stop().await;
}

#[tokio::test]
async fn invalidation_empties_exactly_what_it_names() {
    let search = DemoServerProcess::start("search", "search-1").await;
    let files = DemoServerProcess::start("files", "files-1").await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway, dashboard) = start(
        dir.path(),
        format!(
            "[[server]]\nname = \"search\"\ncache = {{ cacheable = [\"lookup\", \"query\"] }}\n\
             [[server.instance]]\nid = \"search-1\"\nurl = \"{}\"\n\
             [[server]]\nname = \"files\"\ncache = {{ cacheable = [\"read_file\"] }}\n\
             [[server.instance]]\nid = \"files-1\"\nurl = \"{}\"\n\
             [[assistant]]\nname = \"reader\"\nkey = \"{KEY}\"\ntier = \"admin\"\n",
            search.url, files.url
        ),
    )
    .await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let lookup = || tool_call("search__lookup", json!({"id": "doc-007"}));
    let query = || tool_call("search__query", json!({"q": "cache", "limit": 2}));
    let read = || tool_call("files__read_file", json!({"path": "/README.md"}));

    // Each call once: misses, then served from the cache (the instances see nothing new).
    let first = client.call_tool(lookup()).await.unwrap();
    client.call_tool(query()).await.unwrap();
    client.call_tool(read()).await.unwrap();
    let (search_calls, files_calls) = (search.calls_served().await, files.calls_served().await);
    assert_eq!(
        client.call_tool(lookup()).await.unwrap().content,
        first.content
    );
    client.call_tool(query()).await.unwrap();
    client.call_tool(read()).await.unwrap();
    assert_eq!(
        search.calls_served().await,
        search_calls,
        "served from the cache"
    );
    assert_eq!(
        files.calls_served().await,
        files_calls,
        "served from the cache"
    );

    let invalidate = |form: Vec<(&'static str, &'static str)>| {
        let request = dashboard
            .post(gateway.url("/api/caches/invalidate"))
            .form(&form);
        async move {
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "invalidate: {}",
                response.status()
            );
            response.json::<String>().await.unwrap()
        }
    };

    // One tool: only lookup goes back to the instance.
    assert_eq!(
        invalidate(vec![("server", "search"), ("tool", "lookup")]).await,
        "invalidated search__lookup"
    );
    client.call_tool(lookup()).await.unwrap();
    client.call_tool(query()).await.unwrap();
    client.call_tool(read()).await.unwrap();
    assert_eq!(
        search.calls_served().await,
        search_calls + 1.0,
        "lookup refetched, query still cached"
    );
    assert_eq!(files.calls_served().await, files_calls, "files untouched");

    // One server: every search tool, and still not files.
    invalidate(vec![("server", "search")]).await;
    client.call_tool(lookup()).await.unwrap();
    client.call_tool(query()).await.unwrap();
    client.call_tool(read()).await.unwrap();
    assert_eq!(search.calls_served().await, search_calls + 3.0);
    assert_eq!(files.calls_served().await, files_calls);

    // Everything.
    invalidate(vec![]).await;
    client.call_tool(read()).await.unwrap();
    assert_eq!(files.calls_served().await, files_calls + 1.0);

    // The counters show the hits.
    let caches: Value = dashboard
        .post(gateway.url("/api/caches/get"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let search_results = caches
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["server"] == "search" && c["kind"] == "results")
        .unwrap();
    assert!(
        search_results["hits"].as_u64().unwrap() >= 3,
        "{search_results}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn open_dashboards_hear_of_changes_within_a_second() {
    let search = DemoServerProcess::start("search", "search-1").await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway, dashboard) = start(
        dir.path(),
        format!(
            "[[server]]\nname = \"search\"\n[[server.instance]]\nid = \"search-1\"\nurl = \"{}\"\n\
             [[assistant]]\nname = \"reader\"\nkey = \"{KEY}\"\ntier = \"admin\"\n",
            search.url
        ),
    )
    .await;

    // Anonymous: no stream.
    let anonymous = reqwest::get(gateway.url("/api/events")).await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let mut events = dashboard
        .get(gateway.url("/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        read_until(&mut events, &mut seen, "event: hello"),
    )
    .await
    .expect("hello");

    let started = Instant::now();
    dashboard
        .post(gateway.url("/api/fleet/drain"))
        .form(&[("instance", "search-1")])
        .send()
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(1),
        read_until(&mut events, &mut seen, "\"instance\":\"search-1\""),
    )
    .await
    .expect("the drain reached the open stream within 1 s");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(seen.contains("event: fleet"), "{seen}");
    gateway.stop().await;
}

/// Reads the event stream into `seen` until it contains `needle`.
async fn read_until(events: &mut reqwest::Response, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let chunk = events
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}
