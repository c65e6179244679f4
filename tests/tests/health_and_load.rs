//! Health and load across processes: a demo instance killed with SIGKILL turns unhealthy
//! within the probe window and healthy again once restarted in place (both recorded as fleet
//! events); an instance's own Prometheus endpoint is scraped, its values reach the registry
//! (`/metrics`, the Fleet view), least-load routing avoids the instance it reports busy, and
//! the calls show in the Overview's per-minute series.

use fleetdeck_tests::{
    DemoServerProcess, Fleetdeck, dashboard_session, gateway_client, metrics_sample,
    scrape_metrics, server_fn, start_with_fleet, tool_call,
};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "health-test-key-0123456789-abcdefghi";
const PASSWORD: &str = "health test password";

/// The probe settings of the test fleets: 1 s interval (`start_with_fleet`), 2 failures to
/// go unhealthy, 2 successes to come back, 500 ms per probe.
const PROBE: &str = "probe = { timeout_ms = 500, unhealthy_after = 2, healthy_after = 2 }";
/// Longest time to notice: a probe may have just passed (1 s), then two failing probes
/// (2 × 1 s, each at most 500 ms), plus scheduling slack on a loaded machine.
const PROBE_WINDOW: Duration = Duration::from_millis(1000 + 2 * 1000 + 500 + 1500);

/// Polls `/metrics` until `instance` has `health`, or gives up after `limit`; returns the
/// time it took.
async fn wait_for_health(
    gateway: &Fleetdeck,
    instance: &str,
    health: &str,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let text = scrape_metrics(gateway).await;
        let labels = [
            ("server", "search"),
            ("instance", instance),
            ("state", health),
        ];
        if metrics_sample(&text, "fleetdeck_instance_health", &labels) == Some(1.0) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{instance} not {health} after {limit:?}:\n{}",
            text.lines()
                .filter(|l| l.starts_with("fleetdeck_instance_health"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_killed_instance_turns_unhealthy_within_the_probe_window_and_healthy_when_restarted() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut instance = DemoServerProcess::start_at("search", "search-a", &addr).await;
    let spare = DemoServerProcess::start("search", "search-b").await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(
        dir.path(),
        &format!(
            "[[server]]\nname = \"search\"\n{PROBE}\n\
             [[server.instance]]\nid = \"search-a\"\nurl = \"{a}\"\n\
             [[server.instance]]\nid = \"search-b\"\nurl = \"{b}\"\n\
             [[assistant]]\nname = \"prober-test\"\nkey = \"{KEY}\"\ntier = \"admin\"\n",
            a = instance.url,
            b = spare.url
        ),
        PASSWORD,
    )
    .await;
    wait_for_health(&gateway, "search-a", "healthy", Duration::from_secs(15)).await;

    instance.kill().await;
    let to_unhealthy = wait_for_health(&gateway, "search-a", "unhealthy", PROBE_WINDOW * 2).await;
    assert!(
        to_unhealthy <= PROBE_WINDOW,
        "unhealthy after {to_unhealthy:?}, the probe window is {PROBE_WINDOW:?}"
    );
    // Calls go to the survivor meanwhile.
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let result = client
        .call_tool(tool_call(
            "search__query",
            json!({"q": "probe", "limit": 1}),
        ))
        .await
        .expect("routed around the dead instance");
    assert_ne!(result.is_error, Some(true));

    let _restarted = DemoServerProcess::start_at("search", "search-a", &addr).await;
    let to_healthy = wait_for_health(&gateway, "search-a", "healthy", PROBE_WINDOW * 2).await;
    assert!(
        to_healthy <= PROBE_WINDOW,
        "healthy after {to_healthy:?}, the probe window is {PROBE_WINDOW:?}"
    );

    // Both changes are fleet events, with their reasons, on the Overview.
    let session = dashboard_session(&gateway, "admin", PASSWORD).await;
    let overview = server_fn(&session, &gateway, "overview/fleet").await;
    let messages: Vec<&str> = overview["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "health" && e["instance"] == "search-a")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("search-a: healthy → unhealthy (2 probes failed in a row")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("search-a: unhealthy → healthy")),
        "{messages:?}"
    );
    gateway.stop().await;
}

/// A Prometheus endpoint standing in for an instance's own: every scrape reports 0.1 more
/// CPU seconds, 128 MiB resident, and `in_flight` calls in progress. Counts its scrapes.
async fn fake_metrics_endpoint(in_flight: u32) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let scrapes = Arc::new(AtomicU64::new(0));
    let counted = scrapes.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                let body = format!(
                    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                     # TYPE process_cpu_seconds_total counter\n\
                     process_cpu_seconds_total {cpu}\n\
                     # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                     # TYPE process_resident_memory_bytes gauge\n\
                     process_resident_memory_bytes 134217728\n\
                     # HELP mcp_in_flight Calls being served.\n\
                     # TYPE mcp_in_flight gauge\n\
                     mcp_in_flight{{transport=\"http\"}} {in_flight}\n",
                    cpu = 0.1 * n as f64
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, scrapes)
}

#[tokio::test]
async fn scraped_load_reaches_the_registry_steers_least_load_and_calls_show_in_the_series() {
    let busy = DemoServerProcess::start("search", "search-busy").await;
    let idle = DemoServerProcess::start("search", "search-idle").await;
    let (metrics_url, scrapes) = fake_metrics_endpoint(48).await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(
        dir.path(),
        &format!(
            "[[server]]\nname = \"search\"\nstrategy = \"least-load\"\nmax_in_flight = 64\n{PROBE}\n\
             scrape = {{ in_flight_metric = \"mcp_in_flight\", memory_limit_mb = 1024 }}\n\
             [[server.instance]]\nid = \"search-busy\"\nurl = \"{b}\"\nmetrics_url = \"{metrics_url}\"\n\
             [[server.instance]]\nid = \"search-idle\"\nurl = \"{i}\"\n\
             [[assistant]]\nname = \"loader\"\nkey = \"{KEY}\"\ntier = \"admin\"\n",
            b = busy.url,
            i = idle.url
        ),
        PASSWORD,
    )
    .await;

    // Two scrapes give a CPU rate; wait until every scraped value is in the registry.
    let labels = [("server", "search"), ("instance", "search-busy")];
    let started = Instant::now();
    let text = loop {
        let text = scrape_metrics(&gateway).await;
        if metrics_sample(&text, "fleetdeck_instance_scraped_cpu_cores", &labels).is_some() {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no scraped CPU after 15 s (scrapes: {})",
            scrapes.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        metrics_sample(&text, "fleetdeck_instance_scraped_in_flight", &labels),
        Some(48.0)
    );
    assert_eq!(
        metrics_sample(
            &text,
            "fleetdeck_instance_scraped_resident_memory_bytes",
            &labels
        ),
        Some(134_217_728.0)
    );
    // 0.1 CPU s per scrape, one scrape a second: about a tenth of a core.
    let cpu = metrics_sample(&text, "fleetdeck_instance_scraped_cpu_cores", &labels).unwrap();
    assert!((0.02..=0.5).contains(&cpu), "cpu {cpu}");
    // Utilisation: the busiest of 48/64 slots, ~0.1 core of 1, 128 of 1024 MiB.
    let utilisation =
        metrics_sample(&text, "fleetdeck_instance_utilisation_ratio", &labels).unwrap();
    assert_eq!(utilisation, 0.75);
    let idle_labels = [("server", "search"), ("instance", "search-idle")];
    assert_eq!(
        metrics_sample(&text, "fleetdeck_instance_scraped_in_flight", &idle_labels),
        None,
        "no metrics_url: no scraped series"
    );

    // Least-load sees 48 calls in flight on the busy instance: everything goes to the idle one.
    const CALLS: usize = 12;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    for n in 0..CALLS {
        let result = client
            .call_tool(tool_call(
                "search__query",
                json!({"q": format!("load {n}"), "limit": 2}),
            ))
            .await
            .expect("call");
        assert_ne!(result.is_error, Some(true));
    }
    assert_eq!(
        busy.calls_served().await,
        0.0,
        "the busy instance got no call"
    );
    assert_eq!(idle.calls_served().await, CALLS as f64);

    // The Fleet view carries the same signals, and the Overview counts the calls from the
    // per-minute series.
    let session = dashboard_session(&gateway, "admin", PASSWORD).await;
    let fleet = server_fn(&session, &gateway, "fleet/get").await;
    let instance = fleet["servers"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "search-busy")
        .unwrap()
        .clone();
    assert_eq!(instance["scraped"]["in_flight"], json!(48.0));
    assert_eq!(instance["scraped"]["resident_bytes"], json!(134_217_728.0));
    let overview = server_fn(&session, &gateway, "overview/fleet").await;
    let search = &overview["servers"][0];
    assert_eq!(search["name"], "search");
    assert_eq!(search["calls"], json!(CALLS));
    assert_eq!(search["error_rate"], json!(0.0));
    assert!(overview["calls_per_s"].as_f64().unwrap() > 0.0);

    // The chart of those calls is an SVG drawn from the same series.
    let chart = session
        .get(gateway.url("/charts/calls.svg?server=search&minutes=60"))
        .send()
        .await
        .unwrap();
    assert_eq!(chart.status(), reqwest::StatusCode::OK);
    assert_eq!(
        chart.headers()[reqwest::header::CONTENT_TYPE],
        "image/svg+xml"
    );
    let svg = chart.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    let refused = session
        .get(gateway.url("/charts/calls.svg?minutes=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("minutes must be"));
    gateway.stop().await;
}
