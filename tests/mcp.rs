//! `kftray mcp` driven by a real MCP client (rmcp's, over the child's stdio) on the real
//! control plane: the tools an agent has, a forward added through the same edit path as
//! `kftray add`, brought up, reached, seen in status and events, brought down and removed;
//! unknown tools and bad arguments are protocol errors that leave the server serving.

mod support;

use kubesim::testing::http_get;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use std::net::SocketAddr;
use support::cluster::Namespace;
use support::{Project, address};

type Client = RunningService<RoleClient, ()>;

async fn connect(project: &Project) -> Client {
    let command = tokio::process::Command::from(project.command(&["mcp"]));
    let transport = TokioChildProcess::new(command).unwrap();
    ().serve(transport).await.unwrap()
}

async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    if let Value::Object(map) = arguments {
        params = params.with_arguments(map);
    }
    client
        .call_tool(params)
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// The text of a result, its parts joined.
fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A tool that succeeded, and the JSON of its first part.
fn json_of(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{}", text(result));
    let first = match &result.content[0] {
        ContentBlock::Text(t) => t.text.clone(),
        other => panic!("not text: {other:?}"),
    };
    serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_adds_a_forward_brings_it_up_reaches_it_and_takes_it_away() {
    let ns = Namespace::with_web("kftray-mcp").await;
    let project = ns.project("# the team's forwards\n");
    let client = connect(&project).await;

    let mut tools: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    tools.sort();
    assert_eq!(
        tools,
        [
            "add",
            "down",
            "events",
            "http_logs",
            "rm",
            "status",
            "up",
            "validate"
        ]
    );

    let added = call(
        &client,
        "add",
        json!({"alias": "web", "kind": "service", "target": "web", "ports": ["any:http"],
               "tags": ["frontend"], "http_log": true}),
    )
    .await;
    assert_ne!(added.is_error, Some(true), "{}", text(&added));
    let file = std::fs::read_to_string(project.path("kftray.toml")).unwrap();
    assert!(
        file.contains("# the team's forwards") && file.contains("[forwards.web]"),
        "{file}"
    );
    assert_eq!(
        json_of(&call(&client, "validate", json!({})).await),
        json!([])
    );

    // The edit path refuses what it refuses for a person, with the place.
    let bad = call(
        &client,
        "add",
        json!({"alias": "Bad_Alias", "kind": "service", "target": "web", "ports": ["80"]}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true), "{}", text(&bad));
    assert!(text(&bad).contains("Bad_Alias"), "{}", text(&bad));

    let up = json_of(&call(&client, "up", json!({"tags": ["frontend"]})).await);
    let forwards = up.as_array().unwrap();
    assert_eq!(forwards.len(), 1, "{up:#}");
    assert_eq!(forwards[0]["state"], "ready", "{up:#}");
    let addr: SocketAddr = forwards[0]["local_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");
    let (code, _) = http_get(addr, "/").await.unwrap();
    assert_eq!(code, 200);
    // What went through is in the forward's HTTP log, which the agent reads.
    let deadline = tokio::time::Instant::now() + support::TIMEOUT;
    loop {
        let logged = call(&client, "http_logs", json!({"alias": "web", "limit": 5})).await;
        if logged.is_error != Some(true)
            && let Some(entries) = json_of(&logged).as_array()
            && entries
                .iter()
                .any(|e| e["method"] == "GET" && e["status"] == 200)
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", text(&logged));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Up again: the run that is up answers.
    let again = call(&client, "up", json!({})).await;
    assert_eq!(address(json_of(&again).as_array().unwrap(), "web"), addr);
    assert!(text(&again).contains("was up already"), "{}", text(&again));

    let status = json_of(&call(&client, "status", json!({})).await);
    let rows: Vec<Value> = status.as_array().unwrap().clone();
    assert_eq!(address(&rows, "web"), addr);
    let events = json_of(&call(&client, "events", json!({"limit": 10})).await);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "started"),
        "{events:#}"
    );

    // An unknown tool is an error of the protocol; bad arguments are the tool's error, said
    // so that the agent can correct them (as MCP asks). The server goes on serving.
    let unknown = client
        .call_tool(CallToolRequestParams::new("format_disk"))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    for (tool, arguments) in [
        ("rm", json!({"aliases": "web"})),
        ("up", json!({"local_address": "0.0.0.0"})),
        (
            "add",
            json!({"alias": "x", "kind": "ingress", "target": "x", "ports": ["80"]}),
        ),
    ] {
        let refused = call(&client, tool, arguments).await;
        assert_eq!(refused.is_error, Some(true), "{tool}: {}", text(&refused));
        assert!(
            text(&refused).contains("failed to deserialize parameters"),
            "{tool}: {}",
            text(&refused)
        );
    }
    assert_eq!(
        json_of(&call(&client, "validate", json!({})).await),
        json!([])
    );

    // Another forward joins the run by name, and leaves it by name; web serves throughout.
    let added = call(
        &client,
        "add",
        json!({"alias": "web-b", "kind": "service", "target": "web", "ports": ["any:http"]}),
    )
    .await;
    assert_ne!(added.is_error, Some(true), "{}", text(&added));
    let joined = call(&client, "up", json!({"names": ["web-b"]})).await;
    assert_ne!(joined.is_error, Some(true), "{}", text(&joined));
    let rows = json_of(&call(&client, "status", json!({})).await);
    let aliases: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["alias"].as_str())
        .collect();
    assert_eq!(aliases, ["web", "web-b"], "{rows:#}");
    let left = call(&client, "down", json!({"names": ["web-b"]})).await;
    assert_ne!(left.is_error, Some(true), "{}", text(&left));
    let rows = json_of(&call(&client, "status", json!({})).await);
    assert_eq!(address(rows.as_array().unwrap(), "web"), addr);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");

    let down = call(&client, "down", json!({})).await;
    assert_ne!(down.is_error, Some(true), "{}", text(&down));
    assert!(project.status().await.is_empty());
    let removed = call(&client, "rm", json!({"aliases": ["web"]})).await;
    assert_ne!(removed.is_error, Some(true), "{}", text(&removed));
    let file = std::fs::read_to_string(project.path("kftray.toml")).unwrap();
    assert!(!file.contains("[forwards.web]"), "{file}");
    assert!(file.contains("# the team's forwards"), "{file}");
    client.cancel().await.unwrap();
}
