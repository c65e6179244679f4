//! Hostile input against dashboard sessions and logins, on the real `fleetdeck` binary: a
//! foreign `Host` (DNS rebinding), the security headers, the idle timeout, revoked
//! sessions (password reset, role change, disabling, deletion, "log out everywhere", on
//! one replica and across two), the live event stream of a revoked session, login guessing
//! behind a proxy, and recorded tool arguments read by a viewer. Each test shows what the
//! attack gets and that the server still serves afterwards.

use fleetdeck_tests::{
    DemoServerProcess, Fleetdeck, PgSchema, ServeOptions, any_loopback_port, gateway_client,
    run_fleetdeck, tool_call, write_fleet,
};
use reqwest::header::{COOKIE, HOST, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "hostile sessions admin password";

/// A client without a cookie jar: each test session carries its cookie by hand, so that
/// what ends a session is the server, never the client forgetting a cookie.
fn http() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("http client")
}

/// `fleetdeck serve` on a fresh data dir with `extra` arguments.
async fn serve(dir: &Path, extra: &[&str]) -> Fleetdeck {
    Fleetdeck::start(ServeOptions {
        data_dir: dir,
        addr: any_loopback_port(),
        admin_password: Some(ADMIN_PASSWORD),
        extra_args: extra.iter().map(|a| a.to_string()).collect(),
    })
    .await
}

/// A login attempt: its status and body, and the session cookie it set (if any).
async fn try_login(
    server: &Fleetdeck,
    user: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let mut request = http()
        .post(server.url("/api/login"))
        .form(&[("username", user), ("password", password)]);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.expect("POST /api/login");
    let status = response.status();
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fleetdeck_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (status, response.text().await.unwrap_or_default(), cookie)
}

/// A logged-in session's cookie (`name=value`).
async fn login(server: &Fleetdeck, user: &str, password: &str) -> String {
    let (status, body, cookie) = try_login(server, user, password, None).await;
    assert_eq!(status, StatusCode::OK, "login as {user}: {body}");
    cookie.expect("a session cookie")
}

/// Calls a server function with `cookie`: its status and body.
async fn call(
    server: &Fleetdeck,
    cookie: &str,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = http()
        .post(server.url(&format!("/api/{endpoint}")))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /api/{endpoint}: {e}"));
    (response.status(), response.text().await.unwrap_or_default())
}

/// Calls a server function that must succeed; its JSON.
async fn call_ok(server: &Fleetdeck, cookie: &str, endpoint: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = call(server, cookie, endpoint, form).await;
    assert!(status.is_success(), "/api/{endpoint}: {status} {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The user name of `cookie`'s session, `None` when it is not logged in.
async fn whoami(server: &Fleetdeck, cookie: &str) -> Option<String> {
    let me = call_ok(server, cookie, "me", &[]).await;
    me["username"].as_str().map(str::to_string)
}

/// Adds a user as the admin; returns the generated password.
async fn add_user(server: &Fleetdeck, admin: &str, name: &str, role: &str) -> String {
    let issued = call_ok(
        server,
        admin,
        "users/add",
        &[("username", name), ("role", role)],
    )
    .await;
    issued["password"].as_str().expect("a password").to_string()
}

/// The admin actions of the audit log, oldest first, as `(actor, action, target)`.
async fn admin_actions(server: &Fleetdeck, admin: &str) -> Vec<(String, String, String)> {
    let response = http()
        .get(server.url("/api/audit.csv?kind=admin"))
        .header(COOKIE, admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let mut actions: Vec<_> = text
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[2].into(), fields[3].into(), fields[4].into())
        })
        .collect();
    actions.reverse();
    actions
}

#[tokio::test]
async fn a_foreign_host_is_refused_on_every_route_and_allowed_hosts_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &["--allowed-host", "deck.example.com:8443,ops.example"],
    )
    .await;
    let port = server.addr.port();
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;

    // A rebinding page: the browser resolves evil.example to 127.0.0.1 and sends its
    // cookie-less requests with `Host: evil.example`. The cookie is sent too here, to show
    // that even a logged-in session gets nothing under a foreign name.
    let routes = [
        ("GET", "/"),
        ("GET", "/login"),
        ("GET", "/users"),
        ("POST", "/api/me"),
        ("POST", "/api/users/list"),
        ("GET", "/api/events"),
        ("GET", "/api/audit.csv"),
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/pkg/fleetdeck.js"),
        ("POST", "/mcp"),
    ];
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        "deck.example.com:9999".to_string(),
        "deck.example.com".to_string(),
        format!("127.0.0.2:{port}"),
    ] {
        for (method, path) in routes {
            let request = match method {
                "GET" => http().get(server.url(path)),
                _ => http().post(server.url(path)),
            };
            let response = request
                .header(HOST, &host)
                .header(COOKIE, &admin)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{host} {method} {path}"
            );
            assert_eq!(response.headers()["x-frame-options"], "DENY", "{path}");
            let body = response.text().await.unwrap();
            assert!(
                body.starts_with("refused: this server does not answer to host")
                    && body.contains("--allowed-host"),
                "{host} {path}: {body}"
            );
        }
    }

    // Loopback names with any port and the configured hosts are served.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        "[::1]:3000".to_string(),
        "deck.example.com:8443".to_string(),
        "ops.example".to_string(),
        "OPS.example:80".to_string(),
    ] {
        let response = http()
            .get(server.url("/healthz"))
            .header(HOST, &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{host}");
        let me: Value = http()
            .post(server.url("/api/me"))
            .header(HOST, &host)
            .header(COOKIE, &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "admin", "{host}");
    }
    // The MCP endpoint answers an allowed host (401: no key), not 403.
    let response = http()
        .post(server.url("/mcp"))
        .header(HOST, "deck.example.com:8443")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Every `<script` tag of `html` and the `nonce` attribute each carries.
fn script_nonces(html: &str) -> Vec<Option<String>> {
    html.match_indices("<script")
        .map(|(at, _)| {
            let tag = &html[at..at + html[at..].find('>').expect("a closed tag")];
            tag.split("nonce=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string)
        })
        .collect()
}

/// The nonce a Content-Security-Policy allows for scripts.
fn csp_nonce(csp: &str) -> String {
    csp.split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy")
        .to_string()
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_page_scripts_the_requests_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;

    let mut nonces = Vec::new();
    for path in [
        "/login",
        "/",
        "/fleet",
        "/traces",
        "/audit",
        "/users",
        "/account",
        "/no-such-page",
    ] {
        let response = http()
            .get(server.url(path))
            .header(COOKIE, &admin)
            .send()
            .await
            .unwrap();
        let expected = if path == "/no-such-page" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(response.status(), expected, "{path}");
        let headers = response.headers().clone();
        let csp = headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        for directive in [
            "script-src 'self' 'nonce-",
            "'wasm-unsafe-eval'",
            "style-src 'self';",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-frame-options"], "DENY");
        let nonce = csp_nonce(&csp);
        let html = response.text().await.unwrap();
        let scripts = script_nonces(&html);
        assert!(!scripts.is_empty(), "{path} has its hydration script");
        for script in scripts {
            assert_eq!(
                script.as_deref(),
                Some(nonce.as_str()),
                "{path}: every inline script carries the header's nonce"
            );
        }
        assert!(!html.contains(" style=\""), "{path}: no inline styles");
        nonces.push(nonce);
    }
    let distinct: std::collections::HashSet<_> = nonces.iter().collect();
    assert_eq!(
        distinct.len(),
        nonces.len(),
        "a fresh nonce per response: {nonces:?}"
    );

    // Plumbing answers carry the fixed headers too.
    for (path, status) in [
        ("/healthz", StatusCode::OK),
        ("/readyz", StatusCode::OK),
        ("/metrics", StatusCode::OK),
        ("/api/events", StatusCode::UNAUTHORIZED),
    ] {
        let response = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert!(
            response.headers().contains_key("content-security-policy"),
            "{path}"
        );
    }
    let response = http().post(server.url("/mcp")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    // The readiness answer says no more than that.
    let ready = http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.text().await.unwrap(), "ready\n");
    server.stop().await;
}

#[tokio::test]
async fn a_session_unused_for_the_idle_time_ends_and_one_in_use_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    // Six seconds of idle time: sessions are touched every 1.5 s of use.
    let server = serve(dir.path(), &["--session-idle-minutes", "0.1"]).await;
    let idle = Duration::from_secs(6);
    let busy = login(&server, "admin", ADMIN_PASSWORD).await;
    let unused = login(&server, "admin", ADMIN_PASSWORD).await;
    let logged_in = Instant::now();

    // One session is used every second for well over the idle time; the other is not.
    while logged_in.elapsed() < idle + Duration::from_secs(3) {
        assert_eq!(
            whoami(&server, &busy).await.as_deref(),
            Some("admin"),
            "the busy session ended {:?} after login",
            logged_in.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        whoami(&server, &unused).await,
        None,
        "the unused session ended"
    );
    let page = http()
        .get(server.url("/fleet"))
        .header(COOKIE, &unused)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "its pages send it to the login"
    );
    assert_eq!(whoami(&server, &busy).await.as_deref(), Some("admin"));

    // Afterwards: a fresh login works.
    let again = login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(whoami(&server, &again).await.as_deref(), Some("admin"));
    server.stop().await;
}

#[tokio::test]
async fn a_reset_a_role_change_disabling_and_logout_everywhere_end_the_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let mut password = add_user(&server, &admin, "bob", "viewer").await;

    // A password reset ends both of bob's sessions; the new password logs in.
    let (first, second) = (
        login(&server, "bob", &password).await,
        login(&server, "bob", &password).await,
    );
    let reset = call_ok(
        &server,
        &admin,
        "users/reset_password",
        &[("username", "bob")],
    )
    .await;
    for cookie in [&first, &second] {
        assert_eq!(whoami(&server, cookie).await, None, "ended by the reset");
    }
    let (status, _, _) = try_login(&server, "bob", &password, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    password = reset["password"].as_str().unwrap().to_string();

    // A role change ends it too (a stolen viewer session cannot become an operator's).
    let session = login(&server, "bob", &password).await;
    call_ok(
        &server,
        &admin,
        "users/set_role",
        &[("username", "bob"), ("role", "operator")],
    )
    .await;
    assert_eq!(
        whoami(&server, &session).await,
        None,
        "ended by the role change"
    );
    let (status, _) = call(&server, &session, "fleet/get", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // "Log out everywhere".
    let session = login(&server, "bob", &password).await;
    call_ok(
        &server,
        &admin,
        "users/logout_everywhere",
        &[("username", "bob")],
    )
    .await;
    assert_eq!(whoami(&server, &session).await, None, "ended everywhere");

    // Disabling ends the session, and a disabled user's login is refused with the
    // message a wrong password gets.
    let session = login(&server, "bob", &password).await;
    call_ok(
        &server,
        &admin,
        "users/set_disabled",
        &[("username", "bob"), ("disabled", "true")],
    )
    .await;
    assert_eq!(whoami(&server, &session).await, None, "ended by disabling");
    let (status, disabled_answer, cookie) = try_login(&server, "bob", &password, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    let (_, wrong_answer, _) = try_login(&server, "bob", "not bob's password", None).await;
    assert_eq!(
        disabled_answer, wrong_answer,
        "a disabled login is not told apart"
    );
    let users = call_ok(&server, &admin, "users/list", &[]).await;
    let bob = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(bob["disabled"], true);

    // Enabled again, bob logs in; deleted, his session ends and his login is gone.
    call_ok(
        &server,
        &admin,
        "users/set_disabled",
        &[("username", "bob"), ("disabled", "false")],
    )
    .await;
    let session = login(&server, "bob", &password).await;
    assert_eq!(whoami(&server, &session).await.as_deref(), Some("bob"));
    call_ok(&server, &admin, "users/delete", &[("username", "bob")]).await;
    assert_eq!(
        whoami(&server, &session).await,
        None,
        "ended by the deletion"
    );
    let (status, _, _) = try_login(&server, "bob", &password, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The admin's own session lived through all of it, and every change is audited.
    assert_eq!(whoami(&server, &admin).await.as_deref(), Some("admin"));
    let actions: Vec<_> = admin_actions(&server, &admin)
        .await
        .into_iter()
        .filter(|(_, _, target)| target == "bob")
        .map(|(actor, action, _)| (actor, action))
        .collect();
    let expected = [
        "user.add",
        "user.reset_password",
        "user.set_role",
        "user.logout_everywhere",
        "user.disable",
        "user.enable",
        "user.delete",
    ];
    assert_eq!(
        actions,
        expected.map(|a| ("admin".to_string(), a.to_string()))
    );
    server.stop().await;
}

#[tokio::test]
async fn own_changes_keep_this_session_and_end_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let password = add_user(&server, &admin, "vera", "viewer").await;
    let (here, elsewhere) = (
        login(&server, "vera", &password).await,
        login(&server, "vera", &password).await,
    );

    // A wrong current password, a short new one or a mistyped repetition change nothing.
    for (current, new, repeated, why) in [
        (
            "not the password",
            "a brand new password",
            "a brand new password",
            "the current password is wrong",
        ),
        (password.as_str(), "short", "short", "at least 12"),
        (
            password.as_str(),
            "a brand new password",
            "a brand new passw0rd",
            "differ",
        ),
    ] {
        let (status, body) = call(
            &server,
            &here,
            "account/change_password",
            &[
                ("current_password", current),
                ("new_password", new),
                ("repeated_password", repeated),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(why), "{why}: {body}");
    }
    assert_eq!(whoami(&server, &elsewhere).await.as_deref(), Some("vera"));

    // The change: this session stays, the other one ends, the old password is gone.
    call_ok(
        &server,
        &here,
        "account/change_password",
        &[
            ("current_password", password.as_str()),
            ("new_password", "vera's own new password"),
            ("repeated_password", "vera's own new password"),
        ],
    )
    .await;
    assert_eq!(whoami(&server, &here).await.as_deref(), Some("vera"));
    assert_eq!(whoami(&server, &elsewhere).await, None);
    assert_eq!(
        try_login(&server, "vera", &password, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // "Log out my other sessions": the same.
    let other = login(&server, "vera", "vera's own new password").await;
    call_ok(&server, &here, "account/logout_elsewhere", &[]).await;
    assert_eq!(whoami(&server, &here).await.as_deref(), Some("vera"));
    assert_eq!(whoami(&server, &other).await, None);

    // An admin resetting their own password from the Users page keeps the session too.
    let admin_elsewhere = login(&server, "admin", ADMIN_PASSWORD).await;
    call_ok(
        &server,
        &admin,
        "users/reset_password",
        &[("username", "admin")],
    )
    .await;
    assert_eq!(whoami(&server, &admin).await.as_deref(), Some("admin"));
    assert_eq!(whoami(&server, &admin_elsewhere).await, None);

    // A stolen session cannot guess the password behind it: wrong current passwords are
    // throttled like failed logins.
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let guess = [
            ("current_password", "a guessed password"),
            ("new_password", "the thief's password"),
            ("repeated_password", "the thief's password"),
        ];
        statuses.push(
            call(&server, &here, "account/change_password", &guess)
                .await
                .0,
        );
    }
    // (The wrong guess at the start of the test is still draining: 9 or 10 get through.)
    let throttled = statuses
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .expect("guessing is throttled");
    assert!(throttled >= 9, "{statuses:?}");
    assert!(
        statuses[..throttled]
            .iter()
            .all(|s| *s == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    // Vera's logins are not affected, and her session still works.
    login(&server, "vera", "vera's own new password").await;
    assert_eq!(whoami(&server, &here).await.as_deref(), Some("vera"));

    let actions = admin_actions(&server, &admin).await;
    assert!(
        actions.contains(&("vera".into(), "user.change_password".into(), "vera".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&(
            "vera".into(),
            "user.logout_everywhere".into(),
            "vera".into()
        )),
        "{actions:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_last_enabled_admin_is_protected_from_the_dashboard_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let server = serve(dir.path(), &[]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;

    // Nobody disables or deletes their own login from the dashboard.
    for (endpoint, form) in [
        (
            "users/set_disabled",
            vec![("username", "admin"), ("disabled", "true")],
        ),
        ("users/delete", vec![("username", "admin")]),
    ] {
        let (status, body) = call(&server, &admin, endpoint, &form).await;
        assert_eq!(status, StatusCode::CONFLICT, "{endpoint}: {body}");
        assert!(body.contains("your own login"), "{body}");
    }
    // A second admin, disabled: the first is still the last enabled one.
    let second_password = add_user(&server, &admin, "root2", "admin").await;
    call_ok(
        &server,
        &admin,
        "users/set_disabled",
        &[("username", "root2"), ("disabled", "true")],
    )
    .await;
    let (status, body) = call(
        &server,
        &admin,
        "users/set_role",
        &[("username", "admin"), ("role", "viewer")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("admin is the last admin"), "{body}");
    for args in [["user", "disable", "admin"], ["user", "delete", "admin"]] {
        let mut args = args.to_vec();
        args.extend(["--data-dir", data_dir]);
        let (code, _, err) = run_fleetdeck(&args, None).await;
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("admin is the last admin"), "{err}");
    }
    assert_eq!(whoami(&server, &admin).await.as_deref(), Some("admin"));

    // The CLI acts on the running server's sessions: what it does applies at once.
    let bob_password = add_user(&server, &admin, "bob", "operator").await;
    let bob = login(&server, "bob", &bob_password).await;
    let cli = |args: &'static [&'static str]| {
        let mut args = args.to_vec();
        args.extend(["--data-dir", data_dir]);
        async move { run_fleetdeck(&args, None).await }
    };
    let (code, out, err) = cli(&["user", "logout-everywhere", "bob"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "every session of bob ended\n");
    assert_eq!(whoami(&server, &bob).await, None);
    let bob = login(&server, "bob", &bob_password).await;
    let (code, out, _) = cli(&["user", "disable", "bob"]).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "bob disabled; its sessions ended\n")
    );
    assert_eq!(whoami(&server, &bob).await, None);
    assert_eq!(
        try_login(&server, "bob", &bob_password, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, out, _) = cli(&["user", "list"]).await;
    assert!(out.contains("bob\toperator\tdisabled\n"), "{out}");
    let (code, out, _) = cli(&["user", "enable", "bob"]).await;
    assert_eq!((code, out.as_str()), (0, "bob enabled\n"));
    let bob = login(&server, "bob", &bob_password).await;
    let (code, out, _) = cli(&["user", "delete", "bob"]).await;
    assert_eq!((code, out.as_str()), (0, "deleted bob\n"));
    assert_eq!(whoami(&server, &bob).await, None);
    // The second admin, enabled again, logs in.
    let (code, _, err) = cli(&["user", "enable", "root2"]).await;
    assert_eq!(code, 0, "{err}");
    login(&server, "root2", &second_password).await;
    let actions = admin_actions(&server, &admin).await;
    for action in [
        "user.logout_everywhere",
        "user.disable",
        "user.enable",
        "user.delete",
    ] {
        assert!(
            actions.contains(&("cli".into(), action.into(), "bob".into())),
            "{action} in {actions:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_password_reset_on_one_replica_ends_the_session_on_the_other() {
    let schema = PgSchema::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = schema.url();
    let replica = |dir: &Path| {
        let url = url.clone();
        let dir = dir.to_path_buf();
        async move { serve(&dir, &["--database-url", &url]).await }
    };
    let a = replica(dir_a.path()).await;
    let b = replica(dir_b.path()).await;
    let admin_on_a = login(&a, "admin", ADMIN_PASSWORD).await;
    let password = add_user(&a, &admin_on_a, "bob", "operator").await;
    let bob_on_b = login(&b, "bob", &password).await;
    assert_eq!(whoami(&b, &bob_on_b).await.as_deref(), Some("bob"));

    call_ok(
        &a,
        &admin_on_a,
        "users/reset_password",
        &[("username", "bob")],
    )
    .await;
    // Sessions are read from the database on each request: the very next one on B fails.
    assert_eq!(whoami(&b, &bob_on_b).await, None, "B ended bob's session");
    let (status, _) = call(&b, &bob_on_b, "fleet/get", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // B still serves: the admin's session from A works there.
    assert_eq!(whoami(&b, &admin_on_a).await.as_deref(), Some("admin"));
    tokio::join!(a.stop(), b.stop());
    drop(schema);
}

/// Reads an event stream until it ends; `Err` with what was read when `limit` passes first.
async fn read_until_end(response: reqwest::Response, limit: Duration) -> Result<String, String> {
    let mut response = response;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) | Ok(Err(_)) => return Ok(seen),
            Err(_) => return Err(seen),
        }
    }
}

/// Opens `/api/events` with `cookie` and waits for its hello.
async fn open_events(server: &Fleetdeck, cookie: &str) -> reqwest::Response {
    let mut response = http()
        .get(server.url("/api/events"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let hello = tokio::time::timeout(Duration::from_secs(5), response.chunk())
        .await
        .expect("hello in time")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&hello).contains("event: hello"));
    response
}

#[tokio::test]
async fn the_live_event_stream_of_a_logged_out_or_demoted_session_ends_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let password = add_user(&server, &admin, "otto", "operator").await;

    // A stream that nothing ends keeps running (the re-check does not end valid ones).
    let session = login(&server, "otto", &password).await;
    let stream = open_events(&server, &session).await;
    assert!(
        read_until_end(stream, Duration::from_secs(5))
            .await
            .is_err(),
        "a valid session's stream lives on"
    );

    // Logout in another tab of the same session.
    let stream = open_events(&server, &session).await;
    let (status, _) = call(&server, &session, "logout", &[]).await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    let ended = Instant::now();
    read_until_end(stream, Duration::from_secs(6))
        .await
        .expect("the stream ended after the logout");
    let after_logout = ended.elapsed();

    // A demotion (a role change ends the user's sessions).
    let session = login(&server, "otto", &password).await;
    let stream = open_events(&server, &session).await;
    call_ok(
        &server,
        &admin,
        "users/set_role",
        &[("username", "otto"), ("role", "viewer")],
    )
    .await;
    let demoted = Instant::now();
    read_until_end(stream, Duration::from_secs(6))
        .await
        .expect("the stream ended after the demotion");
    let after_demotion = demoted.elapsed();
    eprintln!(
        "event stream ended {after_logout:?} after logout, {after_demotion:?} after demotion"
    );
    assert!(after_logout <= Duration::from_secs(5) && after_demotion <= Duration::from_secs(5));

    // Reconnecting is refused; a fresh login streams again.
    let response = http()
        .get(server.url("/api/events"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let fresh = login(&server, "otto", &password).await;
    drop(open_events(&server, &fresh).await);
    server.stop().await;
}

#[tokio::test]
async fn guessing_through_a_trusted_proxy_locks_out_its_address_not_the_user() {
    let dir = tempfile::tempdir().unwrap();
    // The test client plays the load balancer at 127.0.0.1.
    let server = serve(dir.path(), &["--trusted-proxy", "127.0.0.1/32"]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let password = add_user(&server, &admin, "bob", "operator").await;
    let attacker = Some("203.0.113.66");

    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            try_login(&server, "bob", "a wrong guess!!", attacker)
                .await
                .0,
        );
    }
    assert_eq!(
        &statuses[..10],
        [StatusCode::UNAUTHORIZED; 10],
        "{statuses:?}"
    );
    assert_eq!(
        &statuses[10..],
        [StatusCode::TOO_MANY_REQUESTS; 2],
        "{statuses:?}"
    );
    // Locked out even with the right password, from that address.
    let (status, body, _) = try_login(&server, "bob", &password, attacker).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("Throttled"), "{body}");

    // Bob, from his own address, logs in; successes never count against anyone.
    for _ in 0..15 {
        let (status, body, _) = try_login(&server, "bob", &password, Some("198.51.100.7")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server.stop().await;

    // Without a trusted proxy, `X-Forwarded-For` is not believed: rotating it gains the
    // attacker nothing.
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]).await;
    let mut statuses = Vec::new();
    for n in 0..11 {
        let forged = format!("198.51.100.{n}");
        statuses.push(
            try_login(&server, "admin", "a wrong guess!!", Some(&forged))
                .await
                .0,
        );
    }
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_trusted_proxy_entry_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_fleetdeck(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--trusted-proxy",
            "10.0.0.0/8,10.0.0.0/33",
        ],
        None,
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--trusted-proxy") && err.contains("\"10.0.0.0/33\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[tokio::test]
async fn recorded_arguments_reach_operators_and_admins_but_never_a_viewer() {
    let search = DemoServerProcess::start("search", "search-1").await;
    let dir = tempfile::tempdir().unwrap();
    let key = "hostile-sessions-key-0123456789abcdef";
    let fleet = write_fleet(
        dir.path(),
        &format!(
            "[[server]]\nname = \"search\"\naudit = {{ record_arguments = true }}\n\
             [[server.instance]]\nid = \"search-1\"\nurl = \"{}\"\n\
             [[assistant]]\nname = \"bot\"\nkey = \"{key}\"\ntier = \"admin\"\n",
            search.url
        ),
    );
    let server = serve(dir.path(), &["--fleet", fleet.to_str().unwrap()]).await;
    let admin = login(&server, "admin", ADMIN_PASSWORD).await;
    let viewer_password = add_user(&server, &admin, "vera", "viewer").await;
    let operator_password = add_user(&server, &admin, "otto", "operator").await;
    let viewer = login(&server, "vera", &viewer_password).await;
    let operator = login(&server, "otto", &operator_password).await;

    let secret = "needle-7f3a9c";
    let client = gateway_client(&server.url("/mcp"), key).await;
    client
        .call_tool(tool_call("search__query", json!({"q": secret, "limit": 1})))
        .await
        .expect("search__query");
    client.cancel().await.ok();

    let page = |cookie: String| {
        let server = &server;
        async move {
            call_ok(
                server,
                &cookie,
                "audit/query",
                &[
                    ("query[kind]", "calls"),
                    ("query[page]", "1"),
                    ("query[page_size]", "50"),
                ],
            )
            .await
        }
    };
    // The audit log is written in batches: wait for the row.
    let deadline = Instant::now() + Duration::from_secs(10);
    let operators_view = loop {
        let view = page(operator.clone()).await;
        if view["calls"].as_array().is_some_and(|c| !c.is_empty()) {
            break view;
        }
        assert!(
            Instant::now() < deadline,
            "the call was not audited: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let row = &operators_view["calls"][0];
    assert!(
        row["arguments"]
            .as_str()
            .is_some_and(|a| a.contains(secret)),
        "{row}"
    );
    let digest = row["args_digest"].as_str().unwrap().to_string();
    let admins_view = page(admin.clone()).await;
    assert!(admins_view.to_string().contains(secret));

    // The viewer's answer holds the digest and not the arguments: on the wire, not hidden.
    let viewers_view = page(viewer.clone()).await;
    let row = &viewers_view["calls"][0];
    assert_eq!(row["arguments"], Value::Null, "{row}");
    assert_eq!(row["args_digest"], digest.as_str());
    assert!(!viewers_view.to_string().contains(secret));
    let csv = |cookie: &str| {
        http()
            .get(server.url("/api/audit.csv?kind=calls"))
            .header(COOKIE, cookie)
            .send()
    };
    let viewers_csv = csv(&viewer).await.unwrap().text().await.unwrap();
    assert!(
        viewers_csv.contains(&digest) && !viewers_csv.contains(secret),
        "{viewers_csv}"
    );
    let operators_csv = csv(&operator).await.unwrap().text().await.unwrap();
    assert!(operators_csv.contains(secret), "{operators_csv}");
    // The call's trace carries no arguments for anyone to read.
    let trace_id = operators_view["calls"][0]["trace_id"]
        .as_str()
        .expect("traced")
        .to_string();
    let (status, trace) = call(&server, &viewer, "traces/get", &[("trace_id", &trace_id)]).await;
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert!(
        trace.contains("search__query") && !trace.contains(secret),
        "{trace}"
    );
    server.stop().await;
}
