//! Hostile or broken upstreams (issue 13): an instance may send too many tools, giant
//! descriptions, results of any size, error texts quoting secrets, floods of
//! `tools/list_changed`, stderr chatter, redirects; a database row may name a command. Each
//! test makes one such attack on the real `fleetdeck serve` and checks the refusal and that
//! the gateway still serves and audits afterwards. The hostile server is
//! `tests/src/bin/hostile_mcp.rs` (a real rmcp server over stdio).

use fleetdeck_tests::{
    Fleetdeck, ServeOptions, any_loopback_port, dashboard_session, gateway_client, hostile_mcp_bin,
    metrics_sample, scrape_metrics, server_fn, server_fn_form, sqlite_store, start_with_fleet,
    tool_call, write_fleet,
};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "hostile-upstream-key-0123456789abcdef";
const ADMIN_PASSWORD: &str = "hostile upstream admin password";

/// A `[[server]]` of hostile instances started with `args`, plus the tester assistant.
fn hostile_server(name: &str, args: &[&str], extra: &str) -> String {
    let mut command = vec![hostile_mcp_bin().display().to_string()];
    command.extend(args.iter().map(|a| a.to_string()));
    format!(
        "[[server]]\nname = \"{name}\"\n{extra}\n[[server.instance]]\nid = \"{name}-1\"\n\
         command = {command:?}\nenv = {{ GREETING = \"hi\" }}\n"
    )
}

fn fleet(servers: &[String]) -> String {
    format!(
        "{}\n[[assistant]]\nname = \"tester\"\nkey = \"{KEY}\"\ntier = \"admin\"\n\n\
         [access.tier.admin]\nrate_per_min = 1000000\n",
        servers.join("\n")
    )
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn tool_names(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// The stored fleet events of `kind`, oldest first.
async fn fleet_events(dir: &Path, kind: &str) -> Vec<String> {
    let pool = sqlite_store(dir).await;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT message FROM fleet_events WHERE kind = $1 ORDER BY id")
            .bind(kind)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.into_iter().map(|(m,)| m).collect()
}

/// Polls `check` every 100 ms for up to `within`; panics with `what` if it never holds.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_listing_over_max_tools_is_refused_and_the_rest_of_the_fleet_serves() {
    let dir = tempfile::tempdir().unwrap();
    let text = fleet(&[
        hostile_server("hoarder", &["--tools", "50"], "limits = { max_tools = 20 }"),
        hostile_server("sane", &[], ""),
    ]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;

    let names = tool_names(&client).await;
    assert!(names.contains(&"sane__echo".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("hoarder__")),
        "nothing of a refused listing is kept: {names:?}"
    );
    let refused = client
        .call_tool(tool_call("hoarder__echo", json!({})))
        .await
        .expect_err("a tool of a refused catalog is unknown");
    assert!(refused.to_string().contains("unknown tool"), "{refused}");
    let ok = client
        .call_tool(tool_call("sane__echo", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&ok), "ok");

    let metrics = scrape_metrics(&gateway).await;
    let refusals = metrics_sample(
        &metrics,
        "fleetdeck_upstream_refusals_total",
        &[("server", "hoarder"), ("reason", "catalog_too_large")],
    );
    assert!(refusals.is_some_and(|n| n >= 1.0), "{refusals:?}");
    let events = fleet_events(dir.path(), "catalog").await;
    assert!(
        events
            .iter()
            .any(|e| e.contains("hoarder-1") && e.contains("more than 20 tools")),
        "{events:?}"
    );
    client.cancel().await.unwrap();
    gateway.stop().await;
}

#[tokio::test]
async fn a_tool_over_its_caps_is_left_out_with_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let text = fleet(&[hostile_server(
        "chatter",
        &["--description-bytes", "20000"],
        "",
    )]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;

    let names = tool_names(&client).await;
    assert!(names.contains(&"chatter__echo".to_string()), "{names:?}");
    assert!(!names.contains(&"chatter__chatty".to_string()), "{names:?}");
    let events = fleet_events(dir.path(), "catalog").await;
    assert_eq!(
        events.len(),
        1,
        "reported once, not per listing: {events:?}"
    );
    assert!(
        events[0].contains("chatty") && events[0].contains("max_description_bytes"),
        "{events:?}"
    );
    let metrics = scrape_metrics(&gateway).await;
    assert_eq!(
        metrics_sample(
            &metrics,
            "fleetdeck_upstream_refusals_total",
            &[("server", "chatter"), ("reason", "tool_over_limit")],
        ),
        Some(1.0)
    );
    let ok = client
        .call_tool(tool_call("chatter__echo", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&ok), "ok");
    client.cancel().await.unwrap();
    gateway.stop().await;
}

#[tokio::test]
async fn a_tool_hiding_megabytes_in_its_meta_or_a_catalog_over_its_bytes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = fleet(&[
        // One tool with 1 MiB of `_meta`: over max_tool_bytes (160 KiB), left out.
        hostile_server("metaful", &["--meta-bytes", "1048576"], ""),
        // 30 filler tools of ~100 bytes each: over a 2 KiB catalog, refused whole.
        hostile_server(
            "bulky",
            &["--tools", "30"],
            "limits = { max_catalog_bytes = 2048 }",
        ),
    ]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let names = tool_names(&client).await;
    assert!(names.contains(&"metaful__echo".to_string()), "{names:?}");
    assert!(
        !names.contains(&"metaful__metaful".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("bulky__")), "{names:?}");
    let events = fleet_events(dir.path(), "catalog").await;
    assert!(
        events
            .iter()
            .any(|e| e.contains("metaful") && e.contains("max_tool_bytes")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("bulky-1") && e.contains("max_catalog_bytes")),
        "{events:?}"
    );
    client.cancel().await.unwrap();
    gateway.stop().await;
}

#[tokio::test]
async fn callers_of_a_server_whose_listing_fails_do_not_queue_behind_each_other() {
    let dir = tempfile::tempdir().unwrap();
    // Every listing takes a second and is refused (50 tools > 20).
    let text = fleet(&[
        hostile_server(
            "refused",
            &["--tools", "50", "--slow-listing-ms", "1000"],
            "limits = { max_tools = 20 }",
        ),
        hostile_server("sane", &[], ""),
    ]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let started = Instant::now();
    let lists: Vec<_> = (0..10).map(|_| tool_names(&client)).collect();
    let lists = futures::future::join_all(lists).await;
    let took = started.elapsed();
    eprintln!("10 concurrent listings behind a failing server took {took:?}");
    assert!(
        lists
            .iter()
            .all(|names| names.contains(&"sane__echo".to_string()))
    );
    // One listing of a second answers them all (ten in a row would take ten seconds).
    assert!(took < Duration::from_secs(4), "{took:?}");
    for _ in 0..5 {
        tool_names(&client).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let events = fleet_events(dir.path(), "catalog").await;
    assert_eq!(events.len(), 1, "the refusal is recorded once: {events:?}");
    client.cancel().await.unwrap();
    gateway.stop().await;
}

#[tokio::test]
async fn a_result_over_max_result_bytes_fails_the_call_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = fleet(&[hostile_server(
        "bulky",
        &[],
        "limits = { max_result_bytes = 100000 }",
    )]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;

    let over = client
        .call_tool(tool_call("bulky__big", json!({"bytes": 200_000})))
        .await
        .unwrap();
    assert_eq!(over.is_error, Some(true));
    let why = text_of(&over);
    assert!(why.contains("max_result_bytes (100000)"), "{why}");
    assert!(
        why.len() < 1024,
        "the refusal is short: {} bytes",
        why.len()
    );
    let fits = client
        .call_tool(tool_call("bulky__big", json!({"bytes": 50_000})))
        .await
        .unwrap();
    assert_eq!(text_of(&fits).len(), 50_000);

    gateway_stops_and_audits(gateway, client, dir.path(), 2).await;
    let pool = sqlite_store(dir.path()).await;
    let (outcome, error): (String, String) = sqlx::query_as(
        "SELECT outcome, error FROM tool_calls WHERE tool = 'big' ORDER BY id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(outcome, "failed");
    assert!(error.contains("max_result_bytes"), "{error}");
}

/// Stops the gateway gracefully and checks that exactly `calls` tool calls were audited.
async fn gateway_stops_and_audits(
    gateway: Fleetdeck,
    client: rmcp::service::RunningService<rmcp::RoleClient, ()>,
    dir: &Path,
    calls: i64,
) {
    client.cancel().await.unwrap();
    gateway.stop().await;
    let pool = sqlite_store(dir).await;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tool_calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, calls, "every call audited");
    pool.close().await;
}

#[tokio::test]
async fn a_flood_of_list_changed_neither_holds_calls_nor_multiplies_listings() {
    let dir = tempfile::tempdir().unwrap();
    // Every listing takes 3 s, and the instance announces a change every 2 ms: a call that
    // waited for a re-list would take seconds, and a listing per announcement would pile up.
    let text = fleet(&[hostile_server(
        "flood",
        &["--flood-list-changed", "--slow-listing-ms", "3000"],
        "",
    )]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    // The first listing is waited for (there is nothing else to answer from).
    assert!(
        tool_names(&client)
            .await
            .contains(&"flood__echo".to_string())
    );

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let at = Instant::now();
        let answer = client
            .call_tool(tool_call("flood__echo", json!({})))
            .await
            .unwrap();
        assert_eq!(text_of(&answer), "ok");
        slowest = slowest.max(at.elapsed());
        calls += 1;
    }
    eprintln!("{calls} calls during the flood, slowest {slowest:?}");
    assert!(
        slowest < Duration::from_millis(2500),
        "a call waited for a listing: {slowest:?}"
    );
    let listings: u64 = text_of(
        &client
            .call_tool(tool_call("flood__listings", json!({})))
            .await
            .unwrap(),
    )
    .parse()
    .unwrap();
    // One listing at a time, each 3 s, over ~11 s (the first included): at most 5.
    assert!(
        (2..=5).contains(&listings),
        "{listings} listings in {:?}",
        started.elapsed()
    );
    client.cancel().await.unwrap();
    gateway.stop().await;
}

#[tokio::test]
async fn a_stdio_child_gets_a_cleared_environment_and_its_stderr_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let fleet_file = write_fleet(dir.path(), &fleet(&[hostile_server("child", &[], "")]));
    let database_url = format!("sqlite://{}", dir.path().join("fleetdeck.db").display());
    let gateway = Fleetdeck::start_with_env(
        ServeOptions {
            data_dir: dir.path(),
            addr: any_loopback_port(),
            admin_password: Some(ADMIN_PASSWORD),
            extra_args: vec!["--fleet".into(), fleet_file.display().to_string()],
        },
        &[
            ("DATABASE_URL", &database_url),
            ("FLEETDECK_TEST_SECRET", "s3cret"),
        ],
    )
    .await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let env = |name: &'static str| {
        let client = &client;
        async move {
            text_of(
                &client
                    .call_tool(tool_call("child__env", json!({ "name": name })))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(env("DATABASE_URL").await, "<unset>");
    assert_eq!(env("FLEETDECK_TEST_SECRET").await, "<unset>");
    assert_eq!(env("FLEETDECK_ADMIN_PASSWORD").await, "<unset>");
    assert_eq!(env("GREETING").await, "hi", "the declared env is passed");
    assert_ne!(env("PATH").await, "<unset>", "PATH is passed");

    let shouted = client
        .call_tool(tool_call(
            "child__shout",
            json!({"lines": 3, "bytes": 10_000}),
        ))
        .await
        .unwrap();
    assert_eq!(text_of(&shouted), "shouted");
    eventually(
        Duration::from_secs(5),
        "the child's stderr in the log",
        || {
            let log = gateway.log();
            async move {
                log.iter()
                    .any(|l| l.contains("child-1") && l.contains("hostile line 2"))
            }
        },
    )
    .await;
    let longest = gateway
        .log()
        .iter()
        .filter(|l| l.contains("hostile line"))
        .map(String::len)
        .max()
        .unwrap();
    assert!(longest < 3000, "stderr lines are cut: {longest} bytes");
    gateway_stops_and_audits(gateway, client, dir.path(), 6).await;
}

#[tokio::test]
async fn a_command_read_from_the_database_is_never_started() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("planted-command-ran");
    let text = fleet(&[hostile_server("sane", &[], "")]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    gateway.stop().await;

    // What someone with write access to the database (but not to the fleet file) plants.
    let pool = sqlite_store(dir.path()).await;
    let command = json!(["sh", "-c", format!("touch {}", marker.display())]).to_string();
    sqlx::query(
        "INSERT INTO fleet_instances (id, server, url, command, env, added_at_ms, added_by) \
         VALUES ('planted', 'sane', NULL, $1, '{}', 0, 'attacker')",
    )
    .bind(&command)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let ok = client
        .call_tool(tool_call("sane__echo", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&ok), "ok");
    // Probes run every second: any start of the planted instance would have happened.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!marker.exists(), "the planted command ran");
    assert!(
        gateway
            .log()
            .iter()
            .any(|l| l.contains("planted") && l.contains("only the fleet file may start a process")),
        "the refusal is logged"
    );
    let session = dashboard_session(&gateway, "admin", ADMIN_PASSWORD).await;
    let fleet_view = server_fn(&session, &gateway, "fleet/get").await;
    assert!(
        !fleet_view.to_string().contains("planted"),
        "a refused instance is not in the fleet"
    );
    gateway_stops_and_audits(gateway, client, dir.path(), 1).await;
    let events = fleet_events(dir.path(), "refused").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("planted"), "{events:?}");
}

#[tokio::test]
async fn error_texts_of_upstreams_are_bounded_and_lose_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let text = fleet(&[
        hostile_server("loud", &[], ""),
        format!(
            "[[server]]\nname = \"gone\"\n[[server.instance]]\nid = \"gone-1\"\n\
             url = \"http://svc:hunter2@127.0.0.1:{dead_port}/mcp?token=abc123\"\n"
        ),
    ]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;

    let refused = client
        .call_tool(tool_call("loud__fail", json!({"bytes": 100_000})))
        .await
        .expect_err("the instance's error is passed on");
    let message = refused.to_string();
    assert!(message.len() <= 1200, "{} bytes", message.len());
    assert!(message.contains("said no"), "{message}");
    for secret in ["hunter2", "abc123"] {
        assert!(!message.contains(secret), "{secret} in {message}");
    }
    // The dead instance's connection errors (probes every second) quote its URL.
    let session = dashboard_session(&gateway, "admin", ADMIN_PASSWORD).await;
    eventually(Duration::from_secs(10), "the dead instance's error", || {
        let (session, gateway) = (&session, &gateway);
        async move {
            let view = server_fn(session, gateway, "fleet/get").await;
            view.to_string().contains("gone-1") && gone_instance(&view)["health"] == "unhealthy"
        }
    })
    .await;
    let view = server_fn(&session, &gateway, "fleet/get").await;
    let page = view.to_string();
    assert!(page.contains("127.0.0.1"), "{}", gone_instance(&view));
    let ok = client
        .call_tool(tool_call("loud__echo", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&ok), "ok");
    let log = gateway.log().join("\n");
    gateway_stops_and_audits(gateway, client, dir.path(), 2).await;

    let pool = sqlite_store(dir.path()).await;
    let (error,): (String,) = sqlx::query_as("SELECT error FROM tool_calls WHERE tool = 'fail'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(error.len() <= 1024, "audit error of {} bytes", error.len());
    // The failed call's trace was persisted: every span attribute within 256 bytes.
    let (body,): (String,) = sqlx::query_as("SELECT body FROM traces WHERE tool = 'loud__fail'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let trace: Value = serde_json::from_str(&body).unwrap();
    for span in trace["spans"].as_array().unwrap() {
        for pair in span["attributes"].as_array().unwrap() {
            let value = pair[1].as_str().unwrap();
            assert!(value.len() <= 256, "{}: {} bytes", pair[0], value.len());
        }
    }
    for (place, text) in [
        ("audit row", error.as_str()),
        ("trace", body.as_str()),
        ("fleet page", page.as_str()),
        ("log", log.as_str()),
    ] {
        for secret in ["hunter2", "abc123"] {
            let line = text.lines().find(|l| l.contains(secret));
            assert!(line.is_none(), "{secret} in the {place}: {line:?}");
        }
    }
}

fn gone_instance(view: &Value) -> Value {
    view["servers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["instances"].as_array().unwrap().clone())
        .find(|i| i["id"] == "gone-1")
        .unwrap_or(Value::Null)
}

/// An HTTP server answering every request with a redirect to `target`, counting requests.
async fn redirecting_server(
    target: String,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            let target = target.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                let _ = socket.read(&mut buffer).await;
                let response = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn redirects_of_instances_are_not_followed() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let (target, target_hits) = redirecting_server("http://127.0.0.1:9/nowhere".into()).await;
    let (redirector, redirector_hits) = redirecting_server(format!("http://{target}/mcp")).await;
    let (scrape_target, scrape_target_hits) =
        redirecting_server("http://127.0.0.1:9/nowhere".into()).await;
    let (scrape_redirector, scrape_redirector_hits) =
        redirecting_server(format!("http://{scrape_target}/metrics")).await;
    let text = fleet(&[
        hostile_server("sane", &[], ""),
        format!(
            "[[server]]\nname = \"moved\"\n[[server.instance]]\nid = \"moved-1\"\n\
             url = \"http://{redirector}/mcp\"\nmetrics_url = \"http://{scrape_redirector}/metrics\"\n"
        ),
    ]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    // Listing and probing reach the redirecting instance; nothing goes where it points.
    let names = tool_names(&client).await;
    assert!(!names.iter().any(|n| n.starts_with("moved__")), "{names:?}");
    eventually(
        Duration::from_secs(10),
        "probes of the redirecting instance",
        || {
            let hits = redirector_hits.clone();
            async move { hits.load(Ordering::Relaxed) >= 3 }
        },
    )
    .await;
    assert_eq!(
        target_hits.load(Ordering::Relaxed),
        0,
        "a redirect was followed"
    );
    assert!(
        scrape_redirector_hits.load(Ordering::Relaxed) >= 1,
        "scraped"
    );
    assert_eq!(
        scrape_target_hits.load(Ordering::Relaxed),
        0,
        "a scrape followed a redirect"
    );
    let ok = client
        .call_tool(tool_call("sane__echo", json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&ok), "ok");
    gateway_stops_and_audits(gateway, client, dir.path(), 1).await;
}

#[tokio::test]
async fn link_local_and_metadata_instances_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let text = fleet(&[hostile_server("sane", &[], "")]);
    let gateway = start_with_fleet(dir.path(), &text, ADMIN_PASSWORD).await;
    let session = dashboard_session(&gateway, "admin", ADMIN_PASSWORD).await;
    for (id, url) in [
        ("aws", "http://169.254.169.254/latest/meta-data/"),
        ("v6", "http://[fe80::1]:8080/mcp"),
        ("mapped", "http://[::ffff:169.254.169.254]/mcp"),
        ("gcp", "http://metadata.google.internal/computeMetadata/v1/"),
    ] {
        let (status, body) = server_fn_form(
            &session,
            &gateway,
            "fleet/add_instance",
            &[("server", "sane"), ("id", id), ("url", url)],
        )
        .await;
        assert!(status.is_client_error(), "{url}: {status} {body}");
        assert!(
            body.contains("link-local") || body.contains("metadata"),
            "{url}: {body}"
        );
    }
    let fleet_view = server_fn(&session, &gateway, "fleet/get").await;
    assert!(!fleet_view.to_string().contains("169.254"));
    // Ordinary addresses are still accepted.
    let (status, body) = server_fn_form(
        &session,
        &gateway,
        "fleet/add_instance",
        &[
            ("server", "sane"),
            ("id", "extra"),
            ("url", "http://127.0.0.1:9/mcp"),
        ],
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    gateway.stop().await;

    // A deployment that needs them says so.
    let allowed_dir = tempfile::tempdir().unwrap();
    let fleet_file = write_fleet(allowed_dir.path(), &text);
    let allowing = Fleetdeck::start(ServeOptions {
        data_dir: allowed_dir.path(),
        addr: any_loopback_port(),
        admin_password: Some(ADMIN_PASSWORD),
        extra_args: vec![
            "--fleet".into(),
            fleet_file.display().to_string(),
            "--allow-link-local-instances".into(),
        ],
    })
    .await;
    let session = dashboard_session(&allowing, "admin", ADMIN_PASSWORD).await;
    let (status, body) = server_fn_form(
        &session,
        &allowing,
        "fleet/add_instance",
        &[
            ("server", "sane"),
            ("id", "aws"),
            ("url", "http://169.254.169.254/mcp"),
        ],
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    allowing.stop().await;
}
