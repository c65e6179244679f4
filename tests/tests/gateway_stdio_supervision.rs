//! Stdio instances are child processes in their own process group: a shutdown of the
//! gateway leaves none of them, nor their own children, behind.

use fleetdeck_tests::{
    Fleetdeck, ServeOptions, any_loopback_port, fleetdeck_bin, gateway_client, write_fleet,
};
use rmcp::model::CallToolRequestParams;
use std::time::Duration;

const KEY: &str = "stdio-test-key-0123456789-abcdefghij";

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(cmdline);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_shutdown_kills_the_whole_process_group_of_stdio_instances() {
    let marker = format!("fleetdeck-grandchild-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    // The instance starts a grandchild of its own (a long sleep), then becomes the server.
    let script = format!(
        "exec -a {marker} sleep 600 & exec {bin} demo-server files --stdio --id files-stdio",
        bin = fleetdeck_bin().display()
    );
    let fleet = write_fleet(
        dir.path(),
        &format!(
            "[[server]]\nname = \"files\"\n[[server.instance]]\nid = \"files-stdio\"\ncommand = [\"bash\", \"-c\", {script:?}]\n\
             [[assistant]]\nname = \"t\"\nkey = \"{KEY}\"\ntier = \"admin\"\n"
        ),
    );
    let gateway = Fleetdeck::start(ServeOptions {
        data_dir: dir.path(),
        addr: any_loopback_port(),
        admin_password: Some("stdio admin password"),
        extra_args: vec!["--fleet".into(), fleet.display().to_string()],
    })
    .await;
    let client = gateway_client(&gateway.url("/mcp"), KEY).await;
    let mut params = CallToolRequestParams::new("files__list_dir".to_string());
    params.arguments = serde_json::json!({"path": "/"}).as_object().cloned();
    let listing = client.call_tool(params).await.unwrap();
    assert_ne!(listing.is_error, Some(true), "{:?}", listing.content);
    assert_eq!(processes_with(&marker).len(), 1, "the grandchild runs");

    client.cancel().await.unwrap();
    gateway.stop().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !processes_with(&marker).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {:?}",
            processes_with(&marker)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
