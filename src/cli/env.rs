//! `kftray env`: the running project's forward addresses as environment variables, for
//! `eval "$(kftray env)"`, a `.env` file or a program that reads JSON.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::picked::Picked;
use super::{Cli, Output, config_path, runs_to_read};
use crate::state::State;
use std::collections::BTreeMap;
use std::net::SocketAddr;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these forwards (aliases; `alias:PORT` for one port of a `ports` list).
    pub names: Vec<String>,
    /// Only forwards with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// `shell` (export lines for eval), `dotenv` (NAME=value lines) or `json` (one object).
    #[arg(long, value_enum, default_value_t = Format::Shell)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Shell,
    Dotenv,
    Json,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let (home, project) = runs_to_read(cli, false)?;
    let usage = |e: &dyn std::fmt::Display| Failure::Usage(e.to_string());
    let mut state = State::open(&home).map_err(|e| usage(&e))?;
    let read = state.reap_dead_runs().and_then(|_| {
        let mut rows = Vec::new();
        for run in state.live_runs(project.as_deref())? {
            rows.extend(state.forwards(run.id)?);
        }
        Ok(rows)
    });
    let mut rows = read.map_err(|e| usage(&e.at(state.path())))?;
    if rows.is_empty() {
        return Err(Failure::Failed(
            "no kftray forwards are running for this project; start them with \
             `kftray up --wait`"
                .into(),
        ));
    }
    if !args.names.is_empty() || !args.tags.is_empty() {
        let path = config_path(cli, None)?;
        let picked = Picked::new(&path, &args.names, &args.tags, out)?;
        rows.retain(|r| picked.picks(&r.name));
        if rows.is_empty() {
            return Err(Failure::Failed(format!(
                "no running forward of this project is {picked}"
            )));
        }
    }
    let named = rows
        .iter()
        .map(|r| (r.name.as_str(), r.local_address.as_str()));
    let (variables, unbound) = variables(named).map_err(Failure::Failed)?;
    for name in unbound {
        out.warning(&format!("{name} has no address: it is not listening"));
    }
    say(&render(&variables, args.format));
    Ok(())
}

/// The variable of a forward's `name`: `KFTRAY_` and the name in capitals, `-` and `:` (of
/// `alias:REMOTE`, an entry of a `ports` list) and `.` (of the proxy's `proxy.socks`) as `_`.
/// Aliases are DNS labels, so nothing else needs mapping.
fn prefix(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c {
            '-' | ':' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("KFTRAY_{mapped}")
}

/// Three variables per forward (name, local address) that listens (`_ADDR`, `_HOST`,
/// `_PORT`), in name order, and the names of those that do not. Two forwards whose names
/// map to one variable (`web-80` and `web:80`) are an error: either value would be wrong
/// for the other.
pub(super) fn variables<'a>(
    forwards: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let mut owners: BTreeMap<String, &str> = BTreeMap::new();
    let mut variables = BTreeMap::new();
    let mut unbound = Vec::new();
    for (name, local) in forwards {
        let prefix = prefix(name);
        if let Some(other) = owners.insert(prefix.clone(), name) {
            return Err(format!(
                "forwards `{other}` and `{name}` would both be {prefix}_*: rename one of them"
            ));
        }
        let Ok(addr) = local.parse::<SocketAddr>() else {
            unbound.push(name.to_owned());
            continue;
        };
        variables.insert(format!("{prefix}_ADDR"), addr.to_string());
        variables.insert(format!("{prefix}_HOST"), addr.ip().to_string());
        variables.insert(format!("{prefix}_PORT"), addr.port().to_string());
    }
    Ok((variables, unbound))
}

fn render(variables: &BTreeMap<String, String>, format: Format) -> String {
    match format {
        // Values are addresses and numbers; quoted anyway, as the shell will read them.
        Format::Shell => variables
            .iter()
            .map(|(k, v)| format!("export {k}='{v}'\n"))
            .collect(),
        Format::Dotenv => variables
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect(),
        Format::Json => {
            let json = serde_json::to_string_pretty(variables).unwrap_or_default();
            format!("{json}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_dashes_and_port_entries_to_underscores() {
        assert_eq!(prefix("web"), "KFTRAY_WEB");
        assert_eq!(prefix("api-v2"), "KFTRAY_API_V2");
        assert_eq!(prefix("db:5432"), "KFTRAY_DB_5432");
        assert_eq!(prefix("proxy.socks"), "KFTRAY_PROXY_SOCKS");
    }

    #[test]
    fn each_listening_forward_gives_three_variables_and_v6_hosts_are_bare() {
        let (vars, unbound) = variables([
            ("web", "127.0.0.1:8080"),
            ("api-v2", "[::1]:9000"),
            ("broken", "-"),
        ])
        .unwrap();
        assert_eq!(vars["KFTRAY_WEB_ADDR"], "127.0.0.1:8080");
        assert_eq!(vars["KFTRAY_WEB_HOST"], "127.0.0.1");
        assert_eq!(vars["KFTRAY_WEB_PORT"], "8080");
        assert_eq!(vars["KFTRAY_API_V2_ADDR"], "[::1]:9000");
        assert_eq!(vars["KFTRAY_API_V2_HOST"], "::1");
        assert_eq!(vars.len(), 6);
        assert_eq!(unbound, ["broken"]);
        assert_eq!(
            render(&vars, Format::Dotenv).lines().next(),
            Some("KFTRAY_API_V2_ADDR=[::1]:9000")
        );
        assert!(render(&vars, Format::Shell).contains("export KFTRAY_WEB_PORT='8080'\n"));
    }

    #[test]
    fn two_names_for_one_variable_are_refused() {
        let clash = variables([("web-80", "127.0.0.1:1"), ("web:80", "127.0.0.1:2")]);
        assert_eq!(
            clash.unwrap_err(),
            "forwards `web-80` and `web:80` would both be KFTRAY_WEB_80_*: rename one of them"
        );
    }
}
