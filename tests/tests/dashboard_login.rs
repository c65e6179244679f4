//! The real `fleetdeck` binary over HTTP: login, roles, CSRF, sessions across a restart.

use fleetdeck_tests::{Fleetdeck, ServeOptions, any_loopback_port};
use reqwest::header::{HeaderMap, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};
use serde_json::Value;

const ADMIN_PASSWORD: &str = "admin password for tests";

/// A browser-like client: a cookie jar, no automatic redirects (we check them).
fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .expect("http client")
}

async fn post_form(
    client: &Client,
    server: &Fleetdeck,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .expect("POST")
}

async fn login(
    client: &Client,
    server: &Fleetdeck,
    user: &str,
    password: &str,
) -> reqwest::Response {
    post_form(
        client,
        server,
        "/api/login",
        &[("username", user), ("password", password)],
    )
    .await
}

async fn me(client: &Client, server: &Fleetdeck) -> Value {
    let response = client
        .post(server.url("/api/me"))
        .send()
        .await
        .expect("POST /api/me");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

fn cookie_attributes(headers: &HeaderMap) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase())
        .find(|c| c.starts_with("fleetdeck_session="))
        .expect("a session cookie is set")
}

async fn list_usernames_and_roles(client: &Client, server: &Fleetdeck) -> Vec<(String, String)> {
    let response = client
        .post(server.url("/api/users/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let users: Vec<Value> = response.json().await.unwrap();
    users
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap().to_string(),
                u["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn login_roles_csrf_and_sessions_across_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Fleetdeck::start(ServeOptions {
        data_dir: data.path(),
        addr: any_loopback_port(),
        admin_password: Some(ADMIN_PASSWORD),
        extra_args: Vec::new(),
    })
    .await;
    let admin = client();

    // Anonymous: pages send you to the login page; the login page and health are open.
    let response = admin.get(server.url("/users")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?next=/users");
    let login_page = admin.get(server.url("/login")).send().await.unwrap();
    assert_eq!(login_page.status(), StatusCode::OK);
    assert!(
        login_page
            .text()
            .await
            .unwrap()
            .contains("name=\"password\"")
    );
    assert_eq!(
        admin
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        admin
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(me(&admin, &server).await, Value::Null);

    // Unknown user and wrong password: same status, same message.
    let wrong = login(&admin, &server, "admin", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong = wrong.text().await.unwrap();
    let unknown = login(&admin, &server, "nobody", "not the password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.text().await.unwrap(), wrong);
    assert!(wrong.contains("BadCredentials"), "{wrong}");

    // The first admin logs in with FLEETDECK_ADMIN_PASSWORD; the cookie is locked down.
    // (A script client gets 200 and the target in Location; a plain form post gets 302.)
    let response = login(&admin, &server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[LOCATION], "/");
    let cookie = cookie_attributes(response.headers());
    assert!(cookie.contains("httponly"), "{cookie}");
    assert!(cookie.contains("samesite=strict"), "{cookie}");
    assert!(
        !cookie.contains("secure"),
        "plain http on loopback: {cookie}"
    );
    assert_eq!(me(&admin, &server).await["role"], "admin");
    let overview = admin.get(server.url("/")).send().await.unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    assert!(overview.text().await.unwrap().contains("Overview"));

    // The admin adds a viewer, who gets a generated password once.
    let response = post_form(
        &admin,
        &server,
        "/api/users/add",
        &[("username", "vera"), ("role", "viewer")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let issued: Value = response.json().await.unwrap();
    let vera_password = issued["password"].as_str().unwrap().to_string();
    assert_eq!(vera_password.len(), 20);

    // A viewer's mutating calls are refused with 403 and change nothing.
    let vera = client();
    assert_eq!(
        login(&vera, &server, "vera", &vera_password).await.status(),
        StatusCode::OK
    );
    assert_eq!(me(&vera, &server).await["role"], "viewer");
    let response = post_form(
        &vera,
        &server,
        "/api/users/set_role",
        &[("username", "vera"), ("role", "admin")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &vera,
        &server,
        "/api/users/add",
        &[("username", "mallory"), ("role", "admin")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &vera,
        &server,
        "/api/users/reset_password",
        &[("username", "admin")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // An anonymous caller is refused too.
    let response = post_form(
        &client(),
        &server,
        "/api/users/set_role",
        &[("username", "vera"), ("role", "admin")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The admin's own session, driven from a foreign origin, is refused (CSRF).
    let response = admin
        .post(server.url("/api/users/set_role"))
        .header(ORIGIN, "http://evil.example")
        .form(&[("username", "vera"), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The same request from the site's own origin goes through.
    let response = admin
        .post(server.url("/api/users/set_role"))
        .header(ORIGIN, format!("http://{}", server.addr))
        .form(&[("username", "vera"), ("role", "operator")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        list_usernames_and_roles(&admin, &server).await,
        [
            ("admin".to_string(), "admin".to_string()),
            ("vera".to_string(), "operator".to_string())
        ]
    );
    // The role change ends vera's session at once; logged in again, she is an operator.
    assert_eq!(me(&vera, &server).await, Value::Null);
    assert_eq!(
        login(&vera, &server, "vera", &vera_password).await.status(),
        StatusCode::OK
    );
    assert_eq!(me(&vera, &server).await["role"], "operator");

    // Password guessing against one user is throttled.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            login(&client(), &server, "ghost", "guess guess guess")
                .await
                .status(),
        );
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(
        *statuses.last().unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "{statuses:?}"
    );

    // Sessions live in the database: they survive a restart of the binary.
    let addr = server.addr;
    server.stop().await;
    let server = Fleetdeck::start(ServeOptions {
        data_dir: data.path(),
        addr,
        admin_password: None,
        extra_args: Vec::new(),
    })
    .await;
    assert_eq!(me(&admin, &server).await["username"], "admin");
    assert_eq!(me(&vera, &server).await["username"], "vera");
    assert_eq!(
        admin
            .get(server.url("/users"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert!(
        !server
            .log()
            .iter()
            .any(|line| line.contains("created the first admin")),
        "no second admin on restart"
    );

    // Logout ends the session for good.
    let response = admin
        .post(server.url("/api/logout"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[LOCATION], "/login");
    assert_eq!(me(&admin, &server).await, Value::Null);
    assert_eq!(
        admin.get(server.url("/")).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}
