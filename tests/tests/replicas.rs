//! Two `fleetdeck serve` replicas sharing one PostgreSQL schema, as behind a load balancer:
//! an admin change made on one (drain, permission, key revocation, cache invalidation,
//! instance added or removed, logout) is in force on the other within a second, a
//! dashboard session is valid on both, and an MCP client whose requests alternate between
//! the replicas works throughout.
//!
//! PostgreSQL must run at 127.0.0.1:5432 (or `FLEETDECK_TEST_POSTGRES_URL`): without it
//! these tests fail, they are not skipped.

use fleetdeck_tests::{
    Balancer, DemoServerProcess, Fleetdeck, PgSchema, ServeOptions, any_loopback_port,
    dashboard_session, gateway_client, tool_call, write_fleet,
};
use reqwest::{Client, StatusCode};
use rmcp::model::ProgressNotificationParam;
use rmcp::service::{NotificationContext, RoleClient};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// An admin-tier assistant (every tool).
const OPS_KEY: &str = "replicas-ops-key-0123456789abcdef";
/// A developer-tier assistant whose permission is revoked.
const DEV_KEY: &str = "replicas-dev-key-0123456789abcdef";
/// A developer-tier assistant whose key is revoked.
const BOT_KEY: &str = "replicas-bot-key-0123456789abcdef";
const ADMIN_PASSWORD: &str = "replicas test password";

/// How fast a change on one replica must be in force on the other.
const PROPAGATION: Duration = Duration::from_secs(1);
/// How long the tests keep watching after a change (bounded loops).
const WATCH: Duration = Duration::from_secs(3);
/// Pause between two polls.
const POLL: Duration = Duration::from_millis(20);

/// Two replicas (`a`, `b`) on one schema, in front of two demo `search` instances.
struct Cluster {
    a: Fleetdeck,
    b: Fleetdeck,
    search_a: DemoServerProcess,
    search_b: DemoServerProcess,
    // Dropped after the replicas (fields drop in order): the schema last.
    _dirs: [TempDir; 3],
    schema: PgSchema,
}

impl Cluster {
    /// Starts the instances, then replica A, then replica B (or both at once).
    async fn start(together: bool) -> Cluster {
        let schema = PgSchema::create().await;
        let search_a = DemoServerProcess::start("search", "search-a").await;
        let search_b = DemoServerProcess::start("search", "search-b").await;
        let fleet_dir = tempfile::tempdir().unwrap();
        let fleet = write_fleet(
            fleet_dir.path(),
            &format!(
                "[[server]]\nname = \"search\"\nstrategy = \"round-robin\"\ntimeout_ms = 5000\n\
                 cache = {{ cacheable = [\"lookup\"] }}\n\
                 [[server.instance]]\nid = \"search-a\"\nurl = \"{}\"\n\
                 [[server.instance]]\nid = \"search-b\"\nurl = \"{}\"\n\
                 [[assistant]]\nname = \"ops\"\nkey = \"{OPS_KEY}\"\ntier = \"admin\"\n\
                 [[assistant]]\nname = \"dev\"\nkey = \"{DEV_KEY}\"\ntier = \"developer\"\n\
                 [[assistant]]\nname = \"bot\"\nkey = \"{BOT_KEY}\"\ntier = \"developer\"\n\
                 [access.tier.admin]\nrate_per_min = 1000000\n\
                 [access.tier.developer]\nrate_per_min = 1000000\n",
                search_a.url, search_b.url
            ),
        );
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let url = schema.url();
        let (a, b) = if together {
            tokio::join!(
                start_replica(dir_a.path(), &fleet, &url),
                start_replica(dir_b.path(), &fleet, &url)
            )
        } else {
            let a = start_replica(dir_a.path(), &fleet, &url).await;
            (a, start_replica(dir_b.path(), &fleet, &url).await)
        };
        Cluster {
            a,
            b,
            search_a,
            search_b,
            _dirs: [fleet_dir, dir_a, dir_b],
            schema,
        }
    }

    /// Stops both replicas gracefully (each must exit 0); the schema is dropped after.
    async fn stop(self) {
        let Cluster { a, b, schema, .. } = self;
        tokio::join!(a.stop(), b.stop());
        drop(schema);
    }
}

/// `fleetdeck serve` on the shared database with its own data dir.
async fn start_replica(data_dir: &Path, fleet: &Path, database_url: &str) -> Fleetdeck {
    Fleetdeck::start(ServeOptions {
        data_dir,
        addr: any_loopback_port(),
        admin_password: Some(ADMIN_PASSWORD),
        extra_args: vec![
            "--fleet".into(),
            fleet.display().to_string(),
            "--database-url".into(),
            database_url.into(),
            "--probe-interval-s".into(),
            "1".into(),
        ],
    })
    .await
}

/// Calls a server function under `base` (a replica or the balancer) with a form.
async fn call_fn(client: &Client, base: &str, endpoint: &str, form: &[(&str, &str)]) -> Value {
    let response = client
        .post(format!("{base}/api/{endpoint}"))
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}/api/{endpoint}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "{base}/api/{endpoint}: {status} {body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{endpoint} is not JSON ({e}): {body}"))
}

/// The instances of a replica's fleet view (`/api/fleet/get`).
async fn fleet_instances(dashboard: &Client, replica: &Fleetdeck) -> Vec<Value> {
    let fleet = call_fn(dashboard, &replica.url(""), "fleet/get", &[]).await;
    fleet["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .flat_map(|s| s["instances"].as_array().expect("instances").clone())
        .collect()
}

/// An instance's admin state in a replica's fleet view, `None` when it is not listed.
async fn admin_state(dashboard: &Client, replica: &Fleetdeck, instance: &str) -> Option<String> {
    fleet_instances(dashboard, replica)
        .await
        .into_iter()
        .find(|i| i["id"] == instance)
        .map(|i| i["admin"].as_str().expect("admin state").to_string())
}

/// A `search__query` call (never cached) that must succeed.
async fn query(client: &rmcp::service::RunningService<RoleClient, ()>, n: usize) {
    let result = client
        .call_tool(tool_call(
            "search__query",
            json!({"q": format!("replica {n}"), "limit": 1}),
        ))
        .await
        .unwrap_or_else(|e| panic!("search__query {n}: {e}"));
    assert_ne!(result.is_error, Some(true), "search__query {n}: {result:?}");
}

/// A bare `tools/list` with `key` (stateless: no initialize needed); its status.
async fn list_status(http: &Client, replica: &Fleetdeck, key: &str) -> StatusCode {
    http.post(replica.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect("POST /mcp")
        .status()
}

#[tokio::test]
async fn a_drain_on_one_replica_stops_routing_on_the_other_within_a_second() {
    let cluster = Cluster::start(false).await;
    let on_a = dashboard_session(&cluster.a, "admin", ADMIN_PASSWORD).await;
    let on_b = dashboard_session(&cluster.b, "admin", ADMIN_PASSWORD).await;
    let client = gateway_client(&cluster.b.url("/mcp"), OPS_KEY).await;

    // Round-robin on B reaches both instances.
    let before = cluster.search_a.calls_served().await;
    for n in 0..4 {
        query(&client, n).await;
    }
    assert_eq!(
        cluster.search_a.calls_served().await - before,
        2.0,
        "B sends every other call to search-a"
    );

    call_fn(
        &on_a,
        &cluster.a.url(""),
        "fleet/drain",
        &[("instance", "search-a")],
    )
    .await;
    let drained_at = Instant::now();
    let mut last_routed = None;
    let mut seen_on_b = None;
    let mut calls_after_propagation = 0;
    let mut n = 100;
    while drained_at.elapsed() < WATCH {
        let served = cluster.search_a.calls_served().await;
        query(&client, n).await;
        n += 1;
        if cluster.search_a.calls_served().await > served {
            last_routed = Some(drained_at.elapsed());
        } else if drained_at.elapsed() > PROPAGATION {
            calls_after_propagation += 1;
        }
        if seen_on_b.is_none()
            && matches!(
                admin_state(&on_b, &cluster.b, "search-a").await.as_deref(),
                Some("draining" | "drained")
            )
        {
            seen_on_b = Some(drained_at.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    if let Some(last) = last_routed {
        assert!(
            last <= PROPAGATION,
            "B still routed a call to the drained instance {last:?} after the drain on A"
        );
    }
    assert!(
        calls_after_propagation >= 10,
        "B kept serving calls after the drain ({calls_after_propagation})"
    );
    let seen = seen_on_b.expect("B's fleet view shows search-a draining or drained");
    eprintln!("drain on A: B's last call to search-a at {last_routed:?}, B's view after {seen:?}");
    assert!(
        seen <= PROPAGATION,
        "B's fleet view showed the drain after {seen:?}"
    );
    assert_eq!(
        admin_state(&on_b, &cluster.b, "search-a").await.as_deref(),
        Some("drained")
    );

    // Undrained on A: B routes to it again, as quickly.
    call_fn(
        &on_a,
        &cluster.a.url(""),
        "fleet/undrain",
        &[("instance", "search-a")],
    )
    .await;
    let undrained_at = Instant::now();
    let before = cluster.search_a.calls_served().await;
    loop {
        query(&client, n).await;
        n += 1;
        if cluster.search_a.calls_served().await > before {
            break;
        }
        assert!(
            undrained_at.elapsed() < WATCH,
            "B never routed to search-a again after the undrain on A"
        );
        tokio::time::sleep(POLL).await;
    }
    let took = undrained_at.elapsed();
    eprintln!("undrain on A: B routed to search-a after {took:?}");
    assert!(took <= PROPAGATION, "the undrain reached B after {took:?}");
    let _ = client.cancel().await;
    cluster.stop().await;
}

#[tokio::test]
async fn a_permission_or_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second() {
    let cluster = Cluster::start(false).await;
    let on_a = dashboard_session(&cluster.a, "admin", ADMIN_PASSWORD).await;
    let dev = gateway_client(&cluster.b.url("/mcp"), DEV_KEY).await;
    let dev_query = || tool_call("search__query", json!({"q": "permissions", "limit": 1}));
    dev.call_tool(dev_query())
        .await
        .expect("the developer tier may query");

    call_fn(
        &on_a,
        &cluster.a.url(""),
        "permissions/set",
        &[
            ("assistant", "dev"),
            ("server", "search"),
            ("tool", "query"),
            ("decision", "deny"),
        ],
    )
    .await;
    let revoked_at = Instant::now();
    let mut first_refusal = None;
    let mut refused_after = 0;
    while revoked_at.elapsed() < WATCH {
        match dev.call_tool(dev_query()).await {
            Ok(result) => assert!(
                first_refusal.is_none(),
                "B allowed a call again after refusing one: {result:?}"
            ),
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.contains("permission denied") && message.contains("search__query"),
                    "a permission refusal: {message}"
                );
                first_refusal.get_or_insert(revoked_at.elapsed());
                refused_after += 1;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let first = first_refusal.expect("B refused the revoked tool");
    eprintln!("permission denied on A: B refused from {first:?} on ({refused_after} calls)");
    assert!(first <= PROPAGATION, "B refused it only after {first:?}");
    assert!(refused_after >= 10, "refused {refused_after} calls");
    // Only that tool: the assistant's other tools still work on B.
    dev.call_tool(tool_call("search__lookup", json!({"id": "doc-001"})))
        .await
        .expect("lookup is still allowed");
    let _ = dev.cancel().await;

    // A key revoked on A is refused by B.
    let http = Client::new();
    assert_eq!(
        list_status(&http, &cluster.b, BOT_KEY).await,
        StatusCode::OK
    );
    let assistants = call_fn(&on_a, &cluster.a.url(""), "assistants/list", &[]).await;
    let bot = assistants
        .as_array()
        .expect("assistants")
        .iter()
        .find(|a| a["name"] == "bot")
        .expect("bot listed");
    let key_id = bot["keys"][0]["id"].as_i64().expect("key id").to_string();
    call_fn(
        &on_a,
        &cluster.a.url(""),
        "assistants/revoke_key",
        &[("assistant", "bot"), ("key_id", key_id.as_str())],
    )
    .await;
    let revoked_at = Instant::now();
    let mut first_401 = None;
    let mut refused_after = 0;
    while revoked_at.elapsed() < WATCH {
        let status = list_status(&http, &cluster.b, BOT_KEY).await;
        match status {
            StatusCode::UNAUTHORIZED => {
                first_401.get_or_insert(revoked_at.elapsed());
                refused_after += 1;
            }
            // After 30 failed attempts a minute from one address, the bearer throttle
            // answers 429 instead: still a refusal.
            StatusCode::TOO_MANY_REQUESTS if first_401.is_some() => refused_after += 1,
            StatusCode::OK => assert!(
                first_401.is_none(),
                "B accepted the revoked key again after refusing it"
            ),
            other => panic!("unexpected status {other} for a revoked key"),
        }
        tokio::time::sleep(POLL).await;
    }
    let first = first_401.expect("B refused the revoked key");
    eprintln!("key revoked on A: B answered 401 from {first:?} on ({refused_after} requests)");
    assert!(
        first <= PROPAGATION,
        "B refused the key only after {first:?}"
    );
    assert!(refused_after >= 10);
    assert_eq!(
        list_status(&http, &cluster.a, BOT_KEY).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        list_status(&http, &cluster.b, OPS_KEY).await,
        StatusCode::OK,
        "other keys are untouched"
    );
    cluster.stop().await;
}

/// A client that carries no cookie jar: the session cookie is sent by hand.
fn plain_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `/api/fleet/get` (needs a login) on `replica` with `cookie`: its status.
async fn fleet_status(http: &Client, replica: &Fleetdeck, cookie: Option<&str>) -> StatusCode {
    let mut request = http.post(replica.url("/api/fleet/get"));
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    request.send().await.expect("POST /api/fleet/get").status()
}

#[tokio::test]
async fn a_session_created_on_one_replica_is_valid_on_the_other_until_logout() {
    let cluster = Cluster::start(false).await;
    let http = plain_client();
    let login = http
        .post(cluster.a.url("/api/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("POST /api/login");
    assert!(
        login.status().is_success() || login.status().is_redirection(),
        "login on A: {}",
        login.status()
    );
    let cookie = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fleetdeck_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();

    assert_eq!(
        fleet_status(&http, &cluster.b, None).await,
        StatusCode::UNAUTHORIZED,
        "B refuses anonymous requests"
    );
    assert_eq!(
        fleet_status(&http, &cluster.b, Some(&cookie)).await,
        StatusCode::OK,
        "A's session is valid on B"
    );
    let me: Value = http
        .post(cluster.b.url("/api/me"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "admin", "{me}");
    // A page, not only a server function.
    let page = http
        .get(cluster.b.url("/fleet"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "B serves A's user the Fleet page"
    );

    let logout = http
        .post(cluster.a.url("/api/logout"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        logout.status().is_success() || logout.status().is_redirection(),
        "logout on A: {}",
        logout.status()
    );
    let logged_out_at = Instant::now();
    while fleet_status(&http, &cluster.b, Some(&cookie)).await != StatusCode::UNAUTHORIZED {
        assert!(
            logged_out_at.elapsed() < WATCH,
            "the session logged out on A stays valid on B"
        );
        tokio::time::sleep(POLL).await;
    }
    let took = logged_out_at.elapsed();
    eprintln!("logout on A: B refused the session after {took:?}");
    assert!(took <= PROPAGATION, "B ended the session after {took:?}");
    assert_eq!(
        fleet_status(&http, &cluster.a, Some(&cookie)).await,
        StatusCode::UNAUTHORIZED
    );
    cluster.stop().await;
}

/// An MCP client that notes when progress notifications arrive.
#[derive(Clone, Default)]
struct ProgressClient {
    progress: Arc<Mutex<Vec<Instant>>>,
}

impl ClientHandler for ProgressClient {
    async fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(Instant::now());
    }
}

/// The sum of `fleetdeck_tool_calls_total` over its labels: the calls a replica handled.
async fn tool_calls_handled(replica: &Fleetdeck) -> f64 {
    let text = reqwest::get(replica.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with("fleetdeck_tool_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn an_mcp_client_and_a_dashboard_behind_a_round_robin_balancer_work_on_both_replicas() {
    let cluster = Cluster::start(false).await;
    let balancer = Balancer::start(vec![cluster.a.addr, cluster.b.addr]).await;

    let mut config = StreamableHttpClientTransportConfig::with_uri(balancer.url("/mcp"));
    config.auth_header = Some(OPS_KEY.to_string());
    let client = ProgressClient::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("initialize through the balancer");
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list through the balancer")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for tool in ["search__query", "search__lookup", "search__reindex"] {
        assert!(tools.iter().any(|t| t == tool), "{tool} listed: {tools:?}");
    }
    for n in 0..10 {
        let result = client
            .call_tool(tool_call(
                "search__query",
                json!({"q": format!("balanced {n}"), "limit": 2}),
            ))
            .await
            .unwrap_or_else(|e| panic!("call {n} through the balancer: {e}"));
        assert_ne!(result.is_error, Some(true), "call {n}: {result:?}");
    }
    // A call with progress: its SSE response streams through the balancer (the first
    // notifications arrive well before the result).
    let started = Instant::now();
    let reindex = client
        .call_tool(tool_call(
            "search__reindex",
            json!({"duration_ms": 1000, "shards": 4}),
        ))
        .await
        .expect("reindex through the balancer");
    let finished = Instant::now();
    assert_ne!(reindex.is_error, Some(true), "{reindex:?}");
    let progress = client.service().progress.lock().unwrap().clone();
    assert!(progress.len() >= 3, "progress passed through: {progress:?}");
    assert!(
        finished.duration_since(progress[0]) >= Duration::from_millis(300),
        "the first progress arrived {:?} after the call started, {:?} before its result: \
         the response was buffered, not streamed",
        progress[0].duration_since(started),
        finished.duration_since(progress[0])
    );
    let requests = balancer.requests();
    assert!(
        requests.iter().all(|&n| n >= 1),
        "both replicas received requests: {requests:?}"
    );
    // Not only the handshake: tool calls themselves went to both replicas.
    let (on_a, on_b) = (
        tool_calls_handled(&cluster.a).await,
        tool_calls_handled(&cluster.b).await,
    );
    assert!(
        on_a >= 1.0 && on_b >= 1.0,
        "both replicas handled tool calls: A {on_a}, B {on_b}"
    );
    let _ = client.cancel().await;

    // The dashboard through the balancer: logged in on one replica, served by both.
    let dashboard = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = dashboard
        .post(balancer.url("/api/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(login.status().is_success() || login.status().is_redirection());
    let before = balancer.requests();
    for _ in 0..4 {
        call_fn(&dashboard, &balancer.url(""), "fleet/get", &[]).await;
    }
    let after = balancer.requests();
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "the reads alternated between the replicas: {before:?} → {after:?}"
    );
    drop(balancer);
    cluster.stop().await;
}

/// The result cache of `search` on a replica: its entries.
async fn result_cache_entries(dashboard: &Client, replica: &Fleetdeck) -> u64 {
    let caches = call_fn(dashboard, &replica.url(""), "caches/get", &[]).await;
    caches
        .as_array()
        .expect("caches")
        .iter()
        .find(|c| c["server"] == "search" && c["kind"] == "results")
        .and_then(|c| c["entries"].as_u64())
        .expect("search's result cache")
}

#[tokio::test]
async fn a_cache_invalidated_on_one_replica_is_emptied_on_the_other_within_a_second() {
    let cluster = Cluster::start(false).await;
    let on_a = dashboard_session(&cluster.a, "admin", ADMIN_PASSWORD).await;
    let on_b = dashboard_session(&cluster.b, "admin", ADMIN_PASSWORD).await;
    let client = gateway_client(&cluster.b.url("/mcp"), OPS_KEY).await;
    let lookup = || tool_call("search__lookup", json!({"id": "doc-007"}));
    let served =
        || async { cluster.search_a.calls_served().await + cluster.search_b.calls_served().await };

    client.call_tool(lookup()).await.expect("lookup");
    let after_first = served().await;
    client.call_tool(lookup()).await.expect("lookup again");
    assert_eq!(served().await, after_first, "B served it from its cache");
    assert!(result_cache_entries(&on_b, &cluster.b).await >= 1);

    let answer = call_fn(
        &on_a,
        &cluster.a.url(""),
        "caches/invalidate",
        &[("server", "search"), ("tool", "lookup")],
    )
    .await;
    assert_eq!(answer, "invalidated search__lookup");
    let invalidated_at = Instant::now();
    while result_cache_entries(&on_b, &cluster.b).await != 0 {
        assert!(
            invalidated_at.elapsed() < WATCH,
            "B's result cache was never emptied"
        );
        tokio::time::sleep(POLL).await;
    }
    let took = invalidated_at.elapsed();
    eprintln!("invalidation on A: B's cache empty after {took:?}");
    assert!(took <= PROPAGATION, "B emptied its cache after {took:?}");
    client.call_tool(lookup()).await.expect("lookup after");
    assert_eq!(
        served().await,
        after_first + 1.0,
        "B fetched it from an instance again"
    );
    let _ = client.cancel().await;
    cluster.stop().await;
}

#[tokio::test]
async fn an_instance_added_or_removed_on_one_replica_is_routed_accordingly_by_the_other() {
    let cluster = Cluster::start(false).await;
    let on_a = dashboard_session(&cluster.a, "admin", ADMIN_PASSWORD).await;
    let on_b = dashboard_session(&cluster.b, "admin", ADMIN_PASSWORD).await;
    let client = gateway_client(&cluster.b.url("/mcp"), OPS_KEY).await;
    let extra = DemoServerProcess::start("search", "search-c").await;

    call_fn(
        &on_a,
        &cluster.a.url(""),
        "fleet/add_instance",
        &[
            ("server", "search"),
            ("id", "search-c"),
            ("url", extra.url.as_str()),
        ],
    )
    .await;
    let added_at = Instant::now();
    let mut n = 0;
    while extra.calls_served().await == 0.0 {
        assert!(
            added_at.elapsed() < WATCH,
            "B never routed to the instance added on A"
        );
        query(&client, n).await;
        n += 1;
        tokio::time::sleep(POLL).await;
    }
    let took = added_at.elapsed();
    eprintln!("instance added on A: B routed to it after {took:?}");
    assert!(took <= PROPAGATION, "B routed to it after {took:?}");
    let listed = fleet_instances(&on_b, &cluster.b).await;
    let added = listed
        .iter()
        .find(|i| i["id"] == "search-c")
        .expect("B's fleet view lists search-c");
    assert_eq!(added["runtime"], true, "{added}");

    call_fn(
        &on_a,
        &cluster.a.url(""),
        "fleet/remove_instance",
        &[("instance", "search-c")],
    )
    .await;
    let removed_at = Instant::now();
    let mut last_routed = None;
    let mut unlisted = None;
    while removed_at.elapsed() < WATCH {
        let served = extra.calls_served().await;
        query(&client, n).await;
        n += 1;
        if extra.calls_served().await > served {
            last_routed = Some(removed_at.elapsed());
        }
        if unlisted.is_none() && admin_state(&on_b, &cluster.b, "search-c").await.is_none() {
            unlisted = Some(removed_at.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    if let Some(last) = last_routed {
        assert!(
            last <= PROPAGATION,
            "B routed to the removed instance {last:?} after its removal on A"
        );
    }
    let unlisted = unlisted.expect("B's fleet view no longer lists search-c");
    eprintln!(
        "instance removed on A: B's last call to it at {last_routed:?}, unlisted after {unlisted:?}"
    );
    assert!(unlisted <= PROPAGATION, "B unlisted it after {unlisted:?}");
    let _ = client.cancel().await;
    cluster.stop().await;
}

#[tokio::test]
async fn replicas_started_together_on_an_empty_schema_accept_the_fleet_files_keys_at_once() {
    // Several rounds: which replica imports the fleet file's assistants first is a race.
    for round in 0..3 {
        let cluster = Cluster::start(true).await;
        let http = Client::new();
        for (name, replica) in [("A", &cluster.a), ("B", &cluster.b)] {
            let status = list_status(&http, replica, OPS_KEY).await;
            let ready = replica
                .log()
                .into_iter()
                .find(|line| line.contains("access control ready"))
                .unwrap_or_default();
            assert_eq!(
                status,
                StatusCode::OK,
                "round {round}: replica {name} refused a key of the fleet file right after it \
                 started listening ({ready})"
            );
        }
        let on_b = dashboard_session(&cluster.b, "admin", ADMIN_PASSWORD).await;
        assert_eq!(
            fleet_instances(&on_b, &cluster.b).await.len(),
            2,
            "round {round}: the fleet"
        );
        cluster.stop().await;
    }
}
