//! Both MCP protocol eras on `/mcp`, over raw HTTP (issue 14): the plain `tools/call` that
//! the gateway answers itself and everything it leaves to rmcp must agree with the
//! specification, whichever era the caller and the instance speak. The instances are a
//! demo server (rmcp, answers `server/discover`: called statelessly) and the official
//! TypeScript reference server (an `initialize` handshake and a session).

use fleetdeck_tests::{
    DemoServerProcess, ReferenceServer, gateway_client, start_with_fleet, tool_call,
};
use serde_json::{Value, json};

const KEY: &str = "protocol-eras-key-0123456789abcdefghij";
const ADMIN_PASSWORD: &str = "protocol eras admin password";
const MODERN: &str = "2026-07-28";

fn fleet(search_url: &str, reference_url: &str) -> String {
    format!(
        "[[server]]\nname = \"search\"\n[[server.instance]]\nid = \"search-1\"\nurl = \"{search_url}\"\n\n\
         [[server]]\nname = \"everything\"\n[[server.instance]]\nid = \"everything-1\"\nurl = \"{reference_url}\"\n\n\
         [[assistant]]\nname = \"alice\"\nkey = \"{KEY}\"\ntier = \"admin\"\n"
    )
}

/// A raw POST to `/mcp` with the headers every MCP client sends, plus `headers`.
async fn post(url: &str, headers: &[(&str, &str)], body: String) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.expect("POST /mcp");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .or_else(|_| {
            // An SSE answer: the data of its last event.
            text.lines()
                .rev()
                .filter_map(|l| l.strip_prefix("data:"))
                .find(|d| !d.trim().is_empty())
                .map_or(Ok(Value::String(text.clone())), |d| {
                    serde_json::from_str(d.trim())
                })
        })
        .unwrap_or(Value::String(text));
    (status, value)
}

fn call(id: Value, name: &str, arguments: Value, meta: Option<Value>) -> String {
    let mut params = json!({ "name": name, "arguments": arguments });
    if let Some(meta) = meta {
        params["_meta"] = meta;
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
}

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    })
}

fn text_of(answer: &Value) -> String {
    answer["result"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn both_eras_downstream_and_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let search = DemoServerProcess::start("search", "search-1").await;
    let reference = ReferenceServer::start().await;
    let gateway = start_with_fleet(
        dir.path(),
        &fleet(&search.url, &reference.url),
        ADMIN_PASSWORD,
    )
    .await;
    let mcp = gateway.url("/mcp");

    // 2025 era, no version header (2025-03-26 assumed) and with one: the result has no
    // `resultType`, as older clients expect; both upstream eras answer.
    for headers in [&[][..], &[("mcp-protocol-version", "2025-06-18")][..]] {
        let (status, answer) = post(
            &mcp,
            headers,
            call(json!(1), "search__lookup", json!({"id": "doc-001"}), None),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["id"], 1);
        assert!(answer["result"].get("resultType").is_none(), "{answer}");
        assert!(text_of(&answer).contains("doc-001"), "{answer}");
    }
    let (status, answer) = post(
        &mcp,
        &[("mcp-protocol-version", "2025-11-25")],
        call(
            json!("r1"),
            "everything__echo",
            json!({"message": "hello legacy"}),
            None,
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], "r1");
    assert!(text_of(&answer).contains("hello legacy"), "{answer}");

    // 2026-07-28: per-request `_meta`, the standard headers; the result says its type.
    let modern_headers = |name: &'static str| {
        vec![
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", name),
        ]
    };
    for name in ["search__lookup", "everything__echo"] {
        let arguments = if name == "search__lookup" {
            json!({"id": "doc-002"})
        } else {
            json!({"message": "hello modern"})
        };
        let (status, answer) = post(
            &mcp,
            &modern_headers(name),
            call(json!(2), name, arguments, Some(modern_meta())),
        )
        .await;
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
        assert!(!text_of(&answer).is_empty(), "{answer}");
    }

    // Headers that contradict the body: 400 with -32020, before anything is routed.
    let mut wrong_name = modern_headers("search__lookup");
    wrong_name[2] = ("mcp-name", "search__query");
    let mut wrong_method = modern_headers("search__lookup");
    wrong_method[1] = ("mcp-method", "tools/list");
    for headers in [wrong_name, wrong_method] {
        let (status, answer) = post(
            &mcp,
            &headers,
            call(
                json!(3),
                "search__lookup",
                json!({"id": "doc-001"}),
                Some(modern_meta()),
            ),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], -32020, "{answer}");
    }
    // `_meta` names a version the header does not.
    let (status, answer) = post(
        &mcp,
        &[("mcp-protocol-version", "2025-11-25")],
        call(
            json!(4),
            "search__lookup",
            json!({"id": "doc-001"}),
            Some(modern_meta()),
        ),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32020, "{answer}");
    // An unknown version in the header alone: refused with 400.
    let (status, _) = post(
        &mcp,
        &[("mcp-protocol-version", "2099-01-01")],
        call(json!(5), "search__lookup", json!({"id": "doc-001"}), None),
    )
    .await;
    assert_eq!(status, 400);

    // Not JSON: parse error -32700 with 400; JSON that is no message: -32600 with 400.
    let (status, answer) = post(&mcp, &[], "{\"jsonrpc\": \"2.0\", \"id\": 1,".into()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    let (status, answer) = post(&mcp, &[], "[1, 2, 3]".into()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    // Arguments that break the schema are the tool's error (isError), not a protocol
    // error; an unknown tool stays -32602.
    let (status, answer) = post(&mcp, &[], call(json!(6), "search__lookup", json!({}), None)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(text_of(&answer).contains("invalid arguments"), "{answer}");
    let (_, answer) = post(
        &mcp,
        &[],
        call(json!(7), "search__no_such_tool", json!({}), None),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");

    // Everything else is rmcp's: discovery of the stateless era, and listings.
    let (status, answer) = post(
        &mcp,
        &[("mcp-protocol-version", MODERN), ("mcp-method", "server/discover")],
        json!({"jsonrpc": "2.0", "id": 8, "method": "server/discover", "params": {"_meta": modern_meta()}})
            .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let versions = answer["result"]["supportedVersions"].to_string();
    assert!(versions.contains(MODERN), "{answer}");

    // An SDK client (rmcp, 2025 era with `initialize`) sees the same gateway.
    let client = gateway_client(&mcp, KEY).await;
    let tools = client.peer().list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "everything__echo"));
    let result = client
        .peer()
        .call_tool(tool_call("everything__get-sum", json!({"a": 2, "b": 40})))
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&result.content)
            .unwrap()
            .contains("42")
    );
    client.cancel().await.unwrap();

    gateway.stop().await;
}
