//! `kftray env`: the running project's forward addresses as environment variables, for
//! `eval "$(kftray env)"`, a `.env` file or a program that reads JSON.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, Output, runs_to_read};
use crate::state::{ForwardRow, State};
use std::collections::BTreeMap;
use std::net::SocketAddr;

#[derive(Debug, clap::Args)]
pub struct Args {
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
    let rows = read.map_err(|e| usage(&e.at(state.path())))?;
    if rows.is_empty() {
        return Err(Failure::Failed(
            "no kftray forwards are running for this project; start them with \
             `kftray up --wait`"
                .into(),
        ));
    }
    let (variables, unbound) = variables(&rows).map_err(Failure::Failed)?;
    for name in unbound {
        out.warning(&format!("{name} has no address: it is not listening"));
    }
    say(&render(&variables, args.format));
    Ok(())
}

/// The variable of a forward's `name`: `KFTRAY_` and the name in capitals, `-` and `:` (of
/// `alias:REMOTE`, an entry of a `ports` list) as `_`. Aliases are DNS labels, so nothing else
/// needs mapping.
pub(crate) fn prefix(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c {
            '-' | ':' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("KFTRAY_{mapped}")
}

/// Three variables per forward that listens (`_ADDR`, `_HOST`, `_PORT`), in name order, and
/// the names of those that do not. Two forwards whose names map to one variable (`web-80`
/// and `web:80`) are an error: either value would be wrong for the other.
pub(crate) fn variables(
    rows: &[ForwardRow],
) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let mut owners: BTreeMap<String, &str> = BTreeMap::new();
    let mut variables = BTreeMap::new();
    let mut unbound = Vec::new();
    for row in rows {
        let prefix = prefix(&row.name);
        if let Some(other) = owners.insert(prefix.clone(), &row.name) {
            return Err(format!(
                "forwards `{other}` and `{}` would both be {prefix}_*: rename one of them",
                row.name
            ));
        }
        let Ok(addr) = row.local_address.parse::<SocketAddr>() else {
            unbound.push(row.name.clone());
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
    use crate::state::ForwardState;

    fn row(name: &str, local: &str) -> ForwardRow {
        ForwardRow {
            name: name.into(),
            local_address: local.into(),
            target: "svc/web:http".into(),
            state: ForwardState::Ready,
            pod: None,
            connections: 0,
            bytes_in: 0,
            bytes_out: 0,
            since_ms: 0,
            last_error: None,
        }
    }

    #[test]
    fn names_map_dashes_and_port_entries_to_underscores() {
        assert_eq!(prefix("web"), "KFTRAY_WEB");
        assert_eq!(prefix("api-v2"), "KFTRAY_API_V2");
        assert_eq!(prefix("db:5432"), "KFTRAY_DB_5432");
    }

    #[test]
    fn each_listening_forward_gives_three_variables_and_v6_hosts_are_bare() {
        let (vars, unbound) = variables(&[
            row("web", "127.0.0.1:8080"),
            row("api-v2", "[::1]:9000"),
            row("broken", "-"),
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
        let clash = variables(&[row("web-80", "127.0.0.1:1"), row("web:80", "127.0.0.1:2")]);
        assert_eq!(
            clash.unwrap_err(),
            "forwards `web-80` and `web:80` would both be KFTRAY_WEB_80_*: rename one of them"
        );
    }
}
