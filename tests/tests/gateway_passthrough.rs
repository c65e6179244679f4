//! What the gateway passes through unchanged: structured content, `isError` results, and
//! a caller's cancellation, which reaches the instance.

use fleetdeck_tests::{DemoServerProcess, gateway_client, start_with_fleet, tool_call};
use rmcp::model::{CallToolRequest, ClientRequest};
use rmcp::service::PeerRequestOptions;
use serde_json::json;
use std::time::{Duration, Instant};

const KEY: &str = "passthrough-key-0123456789-abcdefghi";

/// The instance's count of calls with this outcome.
async fn outcome_count(instance: &DemoServerProcess, tool: &str, outcome: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", instance.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("demo_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn structured_content_errors_and_cancellation_pass_through() {
    let search = DemoServerProcess::start("search", "search-1").await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(
        dir.path(),
        &format!(
            "[[server]]\nname = \"search\"\ntimeout_ms = 30000\n[[server.instance]]\nid = \"search-1\"\nurl = \"{}\"\n\
             [[assistant]]\nname = \"t\"\nkey = \"{KEY}\"\ntier = \"admin\"\n",
            search.url
        ),
        "passthrough admin password",
    )
    .await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;

    // Structured content arrives as the instance sent it.
    let hits = client
        .call_tool(tool_call(
            "search__query",
            json!({"q": "gateway", "limit": 3}),
        ))
        .await
        .unwrap();
    let structured = hits
        .structured_content
        .expect("structured content passed through");
    assert!(
        structured["hits"]
            .as_array()
            .is_some_and(|h| !h.is_empty() && h.len() <= 3),
        "{structured}"
    );

    // An isError result is the tool's answer: passed through, not retried, not a failure.
    let missing = client
        .call_tool(tool_call("search__lookup", json!({"id": "doc-999"})))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert!(
        serde_json::to_string(&missing.content)
            .unwrap()
            .contains("doc-999")
    );

    // A long call cancelled by the caller is cancelled at the instance too.
    let before = outcome_count(&search, "reindex", "cancelled").await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(tool_call(
        "search__reindex",
        json!({"duration_ms": 20000, "shards": 20}),
    )));
    let handle = client
        .peer()
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    handle
        .cancel(Some("the user changed their mind".into()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while outcome_count(&search, "reindex", "cancelled").await <= before {
        assert!(
            Instant::now() < deadline,
            "the cancellation reached the instance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The gateway keeps serving.
    let ok = client
        .call_tool(tool_call("search__query", json!({"q": "cache"})))
        .await
        .unwrap();
    assert_ne!(ok.is_error, Some(true));
    gateway.stop().await;
}
