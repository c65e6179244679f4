//! `/metrics` of a running gateway in front of the reference MCP server: served without a
//! login in the classic Prometheus text format, accepted by `promtool check metrics`, and
//! its call counter moves by exactly the calls made through the gateway.

use fleetdeck_tests::{
    ReferenceServer, gateway_client, metrics_sample as sample, scrape_metrics as scrape,
    start_with_fleet, tool_call,
};
use serde_json::json;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const KEY: &str = "metrics-test-key-0123456789-abcdefgh";
const CALLS: usize = 7;

/// Runs `promtool check metrics` on the exposition and requires exit status 0.
async fn promtool_check(exposition: &str) {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is missing: install Debian's `prometheus` package (scripts/ensure-tools.sh test does)"
        ),
        Err(error) => panic!("cannot run promtool: {error}"),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(exposition.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "promtool check metrics: {}{}\n--- the exposition:\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_every_call_through_the_gateway() {
    let reference = ReferenceServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(
        dir.path(),
        &format!(
            "[[server]]\nname = \"everything\"\ntimeout_ms = 20000\n\
             [[server.instance]]\nid = \"everything-http\"\nurl = \"{}\"\n\
             [[assistant]]\nname = \"scraped\"\nkey = \"{KEY}\"\n",
            reference.url
        ),
        "metrics test password",
    )
    .await;

    let before = scrape(&gateway).await;
    promtool_check(&before).await;
    assert_eq!(
        sample(
            &before,
            "fleetdeck_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{before}"
    );
    assert_eq!(
        sample(
            &before,
            "fleetdeck_instance_admin_state",
            &[
                ("server", "everything"),
                ("instance", "everything-http"),
                ("state", "active")
            ]
        ),
        Some(1.0),
        "{before}"
    );

    let echo_ok = [
        ("server", "everything"),
        ("tool", "echo"),
        ("outcome", "ok"),
    ];
    let calls_before = sample(&before, "fleetdeck_tool_calls_total", &echo_ok).unwrap_or_default();
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    for n in 0..CALLS {
        let result = client
            .call_tool(tool_call(
                "everything__echo",
                json!({"message": format!("call {n}")}),
            ))
            .await
            .expect("the call is answered");
        assert_ne!(result.is_error, Some(true), "call {n}: {result:?}");
    }

    let after = scrape(&gateway).await;
    promtool_check(&after).await;
    // Listed tools are exported from the first scrape on, at zero before any call.
    let calls_after = sample(&after, "fleetdeck_tool_calls_total", &echo_ok)
        .unwrap_or_else(|| panic!("no fleetdeck_tool_calls_total for everything__echo:\n{after}"));
    assert_eq!(
        calls_after - calls_before,
        CALLS as f64,
        "fleetdeck_tool_calls_total{{server=\"everything\",tool=\"echo\",outcome=\"ok\"}} must move by \
         exactly the {CALLS} calls made (the dispatcher calls Metrics::observe once per call):\n{after}"
    );
    client.cancel().await.ok();
    gateway.stop().await;
}
