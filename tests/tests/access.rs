//! Access control on the real gateway over real demo servers: each assistant sees and calls
//! only what its tier and explicit entries allow, the CLI's changes reach a running server,
//! rate limits refuse and recover, keys can be revoked, and every call leaves exactly one
//! audit row, also across a graceful shutdown.

use fleetdeck_tests::{
    DemoServerProcess, Fleetdeck, ServeOptions, any_loopback_port, gateway_client, run_fleetdeck,
    start_with_fleet, tool_call, write_fleet,
};
use reqwest::{Client, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const READER_KEY: &str = "reader-key-0123456789abcdef-abcdefgh";
const DEV_KEY: &str = "developer-key-0123456789abcdef-abcde";
const BOSS_KEY: &str = "admin-key-0123456789abcdef-abcdefghi";
const ADMIN_PASSWORD: &str = "access test password";

/// Two demo servers (files, search) and three assistants, one per tier; the admin tier's
/// limit is out of reach except for `search__lookup`, limited to 30 a minute.
struct Setup {
    _files: DemoServerProcess,
    _search: DemoServerProcess,
    fleet: String,
}

impl Setup {
    async fn new() -> Setup {
        let files = DemoServerProcess::start("files", "files-1").await;
        let search = DemoServerProcess::start("search", "search-1").await;
        let fleet = format!(
            "[[server]]\nname = \"files\"\n[[server.instance]]\nid = \"files-1\"\nurl = \"{}\"\n\
             [[server]]\nname = \"search\"\n[[server.instance]]\nid = \"search-1\"\nurl = \"{}\"\n\
             [[assistant]]\nname = \"reader\"\nkey = \"{READER_KEY}\"\ntier = \"viewer\"\n\
             [[assistant]]\nname = \"dev\"\nkey = \"{DEV_KEY}\"\ntier = \"developer\"\n\
             [[assistant]]\nname = \"boss\"\nkey = \"{BOSS_KEY}\"\ntier = \"admin\"\n\
             [access.tier.admin]\nrate_per_min = 100000\n\
             [access.tool_rate_per_min]\n\"search__lookup\" = 30\n",
            files.url, search.url
        );
        Setup {
            _files: files,
            _search: search,
            fleet,
        }
    }
}

async fn tool_names(url: &str, key: &str) -> BTreeSet<String> {
    let client = gateway_client(url, key).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let _ = client.cancel().await;
    tools.into_iter().map(|t| t.name.to_string()).collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A dashboard session logged in as the first admin.
async fn admin_session(gateway: &Fleetdeck) -> Client {
    let dashboard = Client::builder().cookie_store(true).build().unwrap();
    let login = dashboard
        .post(gateway.url("/api/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success(), "login: {}", login.status());
    dashboard
}

/// The audit log's tool calls matching `filters`, as CSV data rows (header dropped).
async fn audit_rows(
    dashboard: &Client,
    gateway: &Fleetdeck,
    filters: &[(&str, &str)],
) -> Vec<String> {
    let mut query = vec![("kind", "calls")];
    query.extend_from_slice(filters);
    let response = dashboard
        .get(gateway.url("/api/audit.csv"))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "CSV export");
    let text = response.text().await.unwrap();
    text.lines()
        .skip(1)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Polls `audit_rows` until `count` rows are there (the log is written in batches).
async fn wait_for_rows(
    dashboard: &Client,
    gateway: &Fleetdeck,
    filters: &[(&str, &str)],
    count: usize,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = audit_rows(dashboard, gateway, filters).await;
        if rows.len() >= count || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn each_assistant_lists_and_calls_only_what_it_may_and_denials_are_audited() {
    let setup = Setup::new().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(dir.path(), &setup.fleet, ADMIN_PASSWORD).await;
    let mcp = gateway.url("/mcp");

    // Tier defaults: viewer `read_*`; developer read/list/query/lookup…; admin everything.
    assert_eq!(
        tool_names(&mcp, READER_KEY).await,
        names(&["files__read_file"])
    );
    assert_eq!(
        tool_names(&mcp, DEV_KEY).await,
        names(&[
            "files__list_dir",
            "files__read_file",
            "search__lookup",
            "search__query"
        ])
    );
    assert_eq!(
        tool_names(&mcp, BOSS_KEY).await,
        names(&[
            "files__list_dir",
            "files__read_file",
            "files__write_file",
            "search__lookup",
            "search__query",
            "search__reindex",
        ])
    );

    let reader = gateway_client(&mcp, READER_KEY).await;
    let denied = reader
        .call_tool(tool_call("files__list_dir", json!({"path": "/docs"})))
        .await
        .expect_err("a viewer may not list directories");
    let message = denied.to_string();
    assert!(
        message.contains("permission denied") && message.contains("files__list_dir"),
        "a clear refusal: {message}"
    );
    let allowed = reader
        .call_tool(tool_call("files__read_file", json!({"path": "/README.md"})))
        .await
        .expect("a viewer may read files");
    assert_ne!(allowed.is_error, Some(true));

    // The CLI, another process on the same store, grants the tool: the running gateway
    // notices through the store's access revision.
    let data_dir = dir.path().display().to_string();
    let (code, out, err) = run_fleetdeck(
        &[
            "permission",
            "allow",
            "reader",
            "files__list_dir",
            "--data-dir",
            &data_dir,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "permission allow: {out}{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = reader
            .call_tool(tool_call("files__list_dir", json!({"path": "/docs"})))
            .await;
        if answer.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the grant never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        tool_names(&mcp, READER_KEY)
            .await
            .contains("files__list_dir")
    );
    let (code, out, _) = run_fleetdeck(
        &["permission", "list", "reader", "--data-dir", &data_dir],
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("tier viewer") && out.contains("files__list_dir\tallow\texplicit"),
        "permission list: {out}"
    );
    // A tool name the CLI cannot place is a usage problem, said in one line.
    let (code, _, err) = run_fleetdeck(
        &[
            "permission",
            "deny",
            "reader",
            "list_dir",
            "--data-dir",
            &data_dir,
        ],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("<server>__<tool>"), "{err}");
    let _ = reader.cancel().await;

    let dashboard = admin_session(&gateway).await;
    let denials = wait_for_rows(
        &dashboard,
        &gateway,
        &[("assistant", "reader"), ("outcome", "denied")],
        1,
    )
    .await;
    assert!(!denials.is_empty(), "the denial is in the audit log");
    assert!(denials[0].contains("files") && denials[0].contains("list_dir"));
    gateway.stop().await;
}

#[tokio::test]
async fn an_assistant_over_its_limit_is_refused_with_a_retry_time_and_recovers() {
    let setup = Setup::new().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(dir.path(), &setup.fleet, ADMIN_PASSWORD).await;
    let mcp = gateway.url("/mcp");
    let boss = gateway_client(&mcp, BOSS_KEY).await;
    let lookup = || tool_call("search__lookup", json!({"id": "doc-001"}));

    // 30 a minute: a burst of 30, then one more every 2 s.
    for n in 0..30 {
        boss.call_tool(lookup())
            .await
            .unwrap_or_else(|e| panic!("call {n} within the limit: {e}"));
    }
    let refused = boss
        .call_tool(lookup())
        .await
        .expect_err("the 31st is over");
    let message = refused.to_string();
    assert!(message.contains("rate limit"), "{message}");
    let retry_after_ms = match &refused {
        rmcp::ServiceError::McpError(error) => {
            assert_eq!(error.code.0, -32029);
            error.data.as_ref().unwrap()["retry_after_ms"]
                .as_u64()
                .unwrap()
        }
        other => panic!("expected an MCP error, got {other:?}"),
    };
    assert!(
        (1..=2000).contains(&retry_after_ms),
        "retry after {retry_after_ms} ms"
    );
    // Other tools and other assistants have their own budgets.
    boss.call_tool(tool_call("search__query", json!({"q": "cache"})))
        .await
        .expect("another tool is not limited by the lookup's override");
    let dev = gateway_client(&mcp, DEV_KEY).await;
    dev.call_tool(lookup())
        .await
        .expect("another assistant is not limited");

    tokio::time::sleep(Duration::from_millis(retry_after_ms + 50)).await;
    boss.call_tool(lookup())
        .await
        .expect("the limit lets a call through again after the window");

    let dashboard = admin_session(&gateway).await;
    let limited = wait_for_rows(
        &dashboard,
        &gateway,
        &[("assistant", "boss"), ("outcome", "rate_limited")],
        1,
    )
    .await;
    assert_eq!(limited.len(), 1, "one refusal recorded: {limited:?}");
    let _ = boss.cancel().await;
    let _ = dev.cancel().await;
    gateway.stop().await;
}

#[tokio::test]
async fn n_concurrent_calls_leave_exactly_n_audit_rows_even_across_a_shutdown() {
    let setup = Setup::new().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(dir.path(), &setup.fleet, ADMIN_PASSWORD).await;
    let mcp = gateway.url("/mcp");
    const WORKERS: usize = 8;
    const CALLS_EACH: usize = 25;
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let mcp = mcp.clone();
        tasks.push(tokio::spawn(async move {
            let client = gateway_client(&mcp, BOSS_KEY).await;
            for n in 0..CALLS_EACH {
                let result = client
                    .call_tool(tool_call(
                        "search__query",
                        json!({"q": format!("worker {worker} call {n}")}),
                    ))
                    .await
                    .expect("call");
                assert_ne!(result.is_error, Some(true));
            }
            let _ = client.cancel().await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Every call was answered, so every record is queued: a graceful stop writes them all.
    gateway.stop().await;

    let restarted = Fleetdeck::start(ServeOptions {
        data_dir: dir.path(),
        addr: any_loopback_port(),
        admin_password: Some(ADMIN_PASSWORD),
        extra_args: vec![
            "--fleet".into(),
            write_fleet(dir.path(), &setup.fleet).display().to_string(),
        ],
    })
    .await;
    let dashboard = admin_session(&restarted).await;
    let rows = audit_rows(
        &dashboard,
        &restarted,
        &[("assistant", "boss"), ("tool", "search__query")],
    )
    .await;
    assert_eq!(rows.len(), WORKERS * CALLS_EACH, "one row per call");
    assert!(rows.iter().all(|row| row.contains(",ok,")), "all ok");
    restarted.stop().await;
}

#[tokio::test]
async fn keys_added_and_revoked_by_the_cli_apply_to_a_running_gateway() {
    let setup = Setup::new().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(dir.path(), &setup.fleet, ADMIN_PASSWORD).await;
    let mcp = gateway.url("/mcp");
    let data_dir = dir.path().display().to_string();

    let (code, out, err) = run_fleetdeck(
        &[
            "assistant",
            "add",
            "ci-bot",
            "--tier",
            "viewer",
            "--data-dir",
            &data_dir,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "assistant add: {out}{err}");
    let key_line = out
        .lines()
        .find(|line| line.starts_with("key "))
        .expect("the key is printed");
    let (key_id, key) = key_line
        .trim_start_matches("key ")
        .split_once(": ")
        .expect("key <id>: <key>");
    assert!(key.starts_with("fdk_"), "{key}");

    // The new key works once the gateway has reloaded (it polls the store).
    let deadline = Instant::now() + Duration::from_secs(5);
    let http = Client::new();
    let probe = |key: String| {
        let http = http.clone();
        let mcp = mcp.clone();
        async move {
            http.post(&mcp)
                .bearer_auth(key)
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    while probe(key.to_string()).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "the new key never worked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tool_names(&mcp, key).await, names(&["files__read_file"]));

    let (code, out, err) = run_fleetdeck(
        &[
            "assistant",
            "revoke-key",
            "ci-bot",
            key_id,
            "--data-dir",
            &data_dir,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "revoke-key: {out}{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while probe(key.to_string()).await != StatusCode::UNAUTHORIZED {
        assert!(Instant::now() < deadline, "the revoked key kept working");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Revoking twice says so; an unknown assistant is a clear error.
    let (code, _, err) = run_fleetdeck(
        &[
            "assistant",
            "revoke-key",
            "ci-bot",
            key_id,
            "--data-dir",
            &data_dir,
        ],
        None,
    )
    .await;
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = run_fleetdeck(
        &["assistant", "issue-key", "nobody", "--data-dir", &data_dir],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("nobody"), "{err}");
    gateway.stop().await;
}

#[tokio::test]
async fn only_admins_change_access_and_a_dashboard_revocation_applies_at_once() {
    let setup = Setup::new().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_with_fleet(dir.path(), &setup.fleet, ADMIN_PASSWORD).await;
    let data_dir = dir.path().display().to_string();
    for (user, role) in [("vera", "viewer"), ("otto", "operator")] {
        let password = format!("{user} password for tests");
        let (code, out, err) = run_fleetdeck(
            &[
                "user",
                "add",
                user,
                "--role",
                role,
                "--password-stdin",
                "--data-dir",
                &data_dir,
            ],
            Some(&password),
        )
        .await;
        assert_eq!(code, 0, "user add: {out}{err}");
        let session = Client::builder().cookie_store(true).build().unwrap();
        let login = session
            .post(gateway.url("/api/login"))
            .form(&[("username", user), ("password", password.as_str())])
            .send()
            .await
            .unwrap();
        assert!(login.status().is_success());
        // Forged requests: the page shows these users no buttons; the server refuses anyway.
        let forged = [
            (
                "/api/permissions/set",
                vec![
                    ("assistant", "reader"),
                    ("server", "files"),
                    ("tool", "write_file"),
                    ("decision", "allow"),
                ],
            ),
            ("/api/assistants/issue_key", vec![("assistant", "reader")]),
            (
                "/api/assistants/revoke_key",
                vec![("assistant", "reader"), ("key_id", "1")],
            ),
        ];
        for (path, form) in forged {
            let response = session
                .post(gateway.url(path))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role} {path}");
        }
        // Reading is fine for every role (the matrix's first page: no query).
        let matrix = session
            .post(gateway.url("/api/permissions/matrix"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(matrix.status(), StatusCode::OK);
    }
    let mcp = gateway.url("/mcp");
    assert!(
        !tool_names(&mcp, READER_KEY)
            .await
            .contains("files__write_file")
    );

    // An admin revokes the reader's key on the dashboard: its next request is refused.
    let dashboard = admin_session(&gateway).await;
    let assistants: serde_json::Value = dashboard
        .post(gateway.url("/api/assistants/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reader = assistants
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "reader")
        .expect("reader listed");
    let key_id = reader["keys"][0]["id"].as_i64().unwrap().to_string();
    let client = gateway_client(&mcp, READER_KEY).await;
    client.list_all_tools().await.expect("works before");
    let revoke = dashboard
        .post(gateway.url("/api/assistants/revoke_key"))
        .form(&[("assistant", "reader"), ("key_id", key_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    assert!(
        client.list_all_tools().await.is_err(),
        "the revoked key is refused on its very next request"
    );
    gateway.stop().await;
}
