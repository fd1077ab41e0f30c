//! `kftray mcp`: a Model Context Protocol server on stdio, so that an AI agent working in a
//! project can see and manage its forwards.
//!
//! It is scoped to the project it starts in: every tool runs this same kftray's own command
//! on that project's file, so an agent goes through exactly what a person does (validation,
//! the comment-preserving edits of `add` and `rm`, the trust rule, loopback by default). No
//! tool takes a path, a kubeconfig, an address or `expose_to_network`: what an agent adds
//! listens on loopback, and it writes nothing but the project's files and `$KFTRAY_HOME`.

use super::failure::{Failure, Outcome};
use super::{Cli, runs_to_read};
use crate::state::State;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The server: the project's file, and where its runs are recorded.
#[derive(Clone)]
struct Project {
    file: PathBuf,
    home: PathBuf,
    project: Option<String>,
    #[expect(dead_code, reason = "read by the code #[tool_handler] writes")]
    tool_router: ToolRouter<Project>,
}

pub(super) fn run(cli: &Cli) -> Outcome {
    let file = super::config_path(cli, None).map_err(|e| Failure::Usage(e.to_string()))?;
    let file = std::path::absolute(&file).map_err(|e| Failure::Usage(e.to_string()))?;
    let (home, project) = runs_to_read(cli, false)?;
    let server = Project {
        file,
        home,
        project,
        tool_router: Project::tool_router(),
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Failure::Failed(format!("MCP: {e}")))?;
        running
            .waiting()
            .await
            .map_err(|e| Failure::Failed(format!("MCP: {e}")))?;
        Ok(())
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpArgs {
    /// Only these forwards: aliases, or `alias:PORT` for one port of a `ports` list. None:
    /// every enabled forward.
    #[serde(default)]
    names: Vec<String>,
    /// Only forwards with one of these tags.
    #[serde(default)]
    tags: Vec<String>,
    /// How long to wait for every forward to be ready, e.g. "60s" (the default).
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DownArgs {
    /// Only these forwards: aliases, or `alias:PORT` for one port of a `ports` list. None
    /// (and no tags): every forward, and the run ends.
    #[serde(default)]
    names: Vec<String>,
    /// Only forwards with one of these tags.
    #[serde(default)]
    tags: Vec<String>,
}

/// The kind of thing a forward reaches, as `kftray add` names it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum TargetKind {
    Service,
    Selector,
    Pod,
    Deployment,
    Statefulset,
    Daemonset,
    Proxy,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddArgs {
    /// The forward's alias (lowercase letters, digits and '-').
    alias: String,
    /// What the forward reaches.
    kind: TargetKind,
    /// Its name (a label selector for `selector`, a host for `proxy`).
    target: String,
    /// Ports, each "LOCAL:REMOTE" ("8080:80", "any:http") or "PORT".
    ports: Vec<String>,
    /// Namespace of the target. None: the context's.
    namespace: Option<String>,
    /// Kubernetes context. None: the current one.
    context: Option<String>,
    /// "tcp" (default) or "udp".
    protocol: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    description: Option<String>,
    /// Write it into kftray.local.toml (this machine's), not kftray.toml.
    #[serde(default)]
    local: bool,
    /// Log its HTTP traffic, for the `http_logs` tool.
    #[serde(default)]
    http_log: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RmArgs {
    /// The aliases to remove.
    aliases: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HttpLogsArgs {
    /// The forward whose HTTP traffic to read (its `http_log` must be on).
    alias: String,
    /// How many of the latest exchanges (default 50, at most 1000).
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EventsArgs {
    /// How many of the latest events (default 50, at most 1000).
    limit: Option<usize>,
}

#[tool_router]
impl Project {
    #[tool(
        description = "The project's running forwards as JSON: alias, local address, \
                          target, pod, state (ready, waiting, reconnecting, failed), \
                          connections, bytes and the last error."
    )]
    async fn status(&self) -> CallToolResult {
        self.kftray(&["status", "-o", "json"]).await
    }

    #[tool(
        description = "Checks kftray.toml (and kftray.local.toml) without touching a \
                          cluster; the problems as JSON with file, line, column and a hint \
                          ([] when valid)."
    )]
    async fn validate(&self) -> CallToolResult {
        self.kftray(&["validate", "-o", "json"]).await
    }

    #[tool(
        description = "Starts the project's forwards in the background (or joins the run \
                          that is up) and waits until each is ready; the forwards with their \
                          local addresses as JSON, or which are not ready and why."
    )]
    async fn up(&self, Parameters(args): Parameters<UpArgs>) -> CallToolResult {
        // Names and tags join a run that is up; up alone, with nothing held down, says so.
        if let Some(pid) = self.running()
            && args.names.is_empty()
            && args.tags.is_empty()
        {
            let joined = self.kftray(&["up", "--wait", "-o", "json"]).await;
            if joined.is_error != Some(true) {
                return joined;
            }
            let mut result = self.kftray(&["status", "-o", "json"]).await;
            result.content.push(ContentBlock::text(format!(
                "the project was up already (pid {pid}): these are its forwards; `up` with \
                 names or tags adds forwards to it, `down` with names or tags takes some away"
            )));
            return result;
        }
        let mut argv = vec!["up".to_owned(), "--wait".into(), "-o".into(), "json".into()];
        if let Some(timeout) = args.timeout {
            argv.push(format!("--timeout={timeout}"));
        }
        argv.extend(args.tags.iter().map(|t| format!("--tag={t}")));
        argv.push("--".into());
        argv.extend(args.names);
        self.kftray(&argv).await
    }

    #[tool(
        description = "Stops the project's running forwards: all of them, or only those \
                          named or tagged, while the run serves the others (`up` with their \
                          names brings them back)."
    )]
    async fn down(&self, Parameters(args): Parameters<DownArgs>) -> CallToolResult {
        let mut argv = vec!["down".to_owned()];
        argv.extend(args.tags.iter().map(|t| format!("--tag={t}")));
        argv.push("--".into());
        argv.extend(args.names);
        self.kftray(&argv).await
    }

    #[tool(
        description = "Adds a forward to kftray.toml (or kftray.local.toml), validated, \
                          keeping the rest of the file and its comments as they are. It \
                          listens on loopback. A running project follows the file at once."
    )]
    async fn add(&self, Parameters(args): Parameters<AddArgs>) -> CallToolResult {
        let kind = match args.kind {
            TargetKind::Service => "service",
            TargetKind::Selector => "selector",
            TargetKind::Pod => "pod",
            TargetKind::Deployment => "deployment",
            TargetKind::Statefulset => "statefulset",
            TargetKind::Daemonset => "daemonset",
            TargetKind::Proxy => "proxy",
        };
        let mut argv = vec!["add".to_owned(), format!("--{kind}={}", args.target)];
        argv.extend(args.ports.iter().map(|p| format!("--port={p}")));
        let optional = [
            ("namespace", args.namespace),
            ("context", args.context),
            ("protocol", args.protocol),
            ("description", args.description),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                argv.push(format!("--{key}={value}"));
            }
        }
        argv.extend(args.tags.iter().map(|t| format!("--tag={t}")));
        if args.local {
            argv.push("--local".into());
        }
        if args.http_log {
            argv.push("--http-log".into());
        }
        argv.push("--".into());
        argv.push(args.alias);
        self.kftray(&argv).await
    }

    #[tool(
        description = "Removes forwards from kftray.toml and kftray.local.toml, keeping \
                          the rest of the files as they are."
    )]
    async fn rm(&self, Parameters(args): Parameters<RmArgs>) -> CallToolResult {
        let mut argv = vec!["rm".to_owned(), "--".into()];
        argv.extend(args.aliases);
        self.kftray(&argv).await
    }

    #[tool(
        description = "The latest events of the project's running forwards as JSON: \
                          starts, reloads, failures and recoveries, with times and why."
    )]
    async fn events(&self, Parameters(args): Parameters<EventsArgs>) -> CallToolResult {
        let limit = args.limit.unwrap_or(50).min(1000);
        match events(&self.home, self.project.as_deref(), limit) {
            Ok(json) => CallToolResult::success(vec![ContentBlock::text(json)]),
            Err(why) => CallToolResult::error(vec![ContentBlock::text(why)]),
        }
    }

    #[tool(
        description = "The latest HTTP exchanges logged by a forward with `http_log` on, \
                          as a JSON array: time, method, URL, status, milliseconds, \
                          request and response bytes, and a note where something was cut \
                          or not HTTP. Credentials are redacted in the log itself."
    )]
    async fn http_logs(&self, Parameters(args): Parameters<HttpLogsArgs>) -> CallToolResult {
        let limit = args.limit.unwrap_or(50).min(1000);
        let project = self.project.as_deref().unwrap_or_default();
        match super::logs::latest_exchanges(&self.home, project, &args.alias, limit) {
            Ok(json) => CallToolResult::success(vec![ContentBlock::text(json)]),
            Err(why) => CallToolResult::error(vec![ContentBlock::text(why)]),
        }
    }
}

#[tool_handler]
impl ServerHandler for Project {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("kftray", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Kubernetes port-forwards of the project of {}, as code. `up` starts them and \
                 returns their local addresses; `status` and `events` say how they are.",
                self.file.display()
            ))
    }
}

impl Project {
    /// The pid of the project's live run, if there is one.
    fn running(&self) -> Option<u32> {
        let state = State::open(&self.home).ok()?;
        let runs = state.live_runs(self.project.as_deref()).ok()?;
        runs.first().map(|r| r.pid)
    }

    /// Runs this kftray's `args` on the project's file; its output is the tool's, and a
    /// failure (exit code not 0) is the tool's error, with what it said.
    async fn kftray(&self, args: &[impl AsRef<str>]) -> CallToolResult {
        let run = match std::env::current_exe() {
            Ok(exe) => {
                tokio::process::Command::new(exe)
                    .arg("--color=never")
                    .arg(format!("--file={}", self.file.display()))
                    .args(args.iter().map(AsRef::as_ref))
                    .current_dir(self.file.parent().unwrap_or(Path::new("/")))
                    // The protocol is on this process's stdin and stdout.
                    .stdin(Stdio::null())
                    .output()
                    .await
            }
            Err(e) => Err(e),
        };
        let output = match run {
            Ok(output) => output,
            Err(e) => {
                return CallToolResult::error(vec![ContentBlock::text(format!(
                    "cannot run kftray: {e}"
                ))]);
            }
        };
        let mut content = Vec::new();
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            if !text.trim().is_empty() {
                content.push(ContentBlock::text(text.trim_end().to_owned()));
            }
        }
        if output.status.success() {
            CallToolResult::success(content)
        } else {
            let code = output
                .status
                .code()
                .map_or("a signal".into(), |c| c.to_string());
            content.push(ContentBlock::text(format!("kftray exited with {code}")));
            CallToolResult::error(content)
        }
    }
}

/// The events of the project's live runs, oldest first, as a JSON array.
fn events(home: &Path, project: Option<&str>, limit: usize) -> Result<String, String> {
    let state = State::open(home).map_err(|e| e.to_string())?;
    let runs = state.live_runs(project).map_err(|e| e.to_string())?;
    if runs.is_empty() {
        return Err("no run of this project is up; start it with the `up` tool".into());
    }
    let mut all = Vec::new();
    for run in runs {
        for event in state.events(run.id, limit).map_err(|e| e.to_string())? {
            all.push(serde_json::json!({
                "at_ms": event.at_ms,
                "forward": event.forward,
                "kind": event.kind.as_str(),
                "message": event.message,
            }));
        }
    }
    all.sort_by_key(|e| e["at_ms"].as_i64());
    let skip = all.len().saturating_sub(limit);
    serde_json::to_string_pretty(&all[skip..]).map_err(|e| e.to_string())
}
