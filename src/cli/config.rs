//! `kftray config`: the effective configuration, as it would run.

use super::failure::{Failure, Outcome};
use super::output::say;
use super::{Cli, Output, load_effective};
use crate::config::Effective;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `table` for people, or `json` (the resolved forwards and the sync source).
    #[arg(short = 'o', long, visible_alias = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[value(alias = "text")]
    Table,
    Json,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let effective = super::effective::expanded(load_effective(cli, out)?, &[], &[], out);
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&effective) {
            Ok(json) => say(&format!("{json}\n")),
            Err(e) => {
                return Err(Failure::Usage(format!(
                    "cannot print the configuration: {e}"
                )));
            }
        },
        Format::Table => say(&table(&effective)),
    }
    Ok(())
}

/// One line per forward, columns aligned; unset context and namespace show what kubectl
/// would use.
fn table(effective: &Effective) -> String {
    let mut rows = vec![
        [
            "NAME",
            "LOCAL",
            "TARGET",
            "REMOTE",
            "PROTO",
            "VIA",
            "CONTEXT",
            "NAMESPACE",
            "TAGS",
        ]
        .map(String::from),
    ];
    for f in &effective.forwards {
        let name = if f.enabled {
            f.name.clone()
        } else {
            format!("{} (disabled)", f.name)
        };
        let mut local = match f.local_address {
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", f.local_port),
            a => format!("{a}:{}", f.local_port),
        };
        if f.local_address_auto {
            local.push_str(" (auto)");
        }
        if let Some(domain) = &f.domain {
            local = format!("{domain} = {local}");
        }
        rows.push([
            name,
            local,
            f.target.to_string(),
            f.remote_port.to_string(),
            f.protocol.to_string(),
            f.via.to_string(),
            f.context.clone().unwrap_or_else(|| "(current)".into()),
            f.namespace.clone().unwrap_or_else(|| "(context's)".into()),
            f.tags.join(","),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    for all in &effective.all_ports {
        // Expanded ones have a row per port already; these are what `up` lists at start.
        if !effective.forwards.iter().any(|f| f.alias == all.alias) {
            text.push_str(&format!(
                "{}: every {} port of {}, listed when `up` starts\n",
                all.alias, all.protocol, all.target
            ));
        }
    }
    let relay = &effective.relay;
    if *relay != crate::config::Relay::default() {
        text.push_str(&format!(
            "\nrelay: image {}, manifest {}, namespace {}\n",
            relay
                .image
                .as_deref()
                .unwrap_or(crate::relay::DEFAULT_IMAGE),
            relay
                .manifest
                .as_ref()
                .map_or("(built in)".into(), |p| p.display().to_string()),
            relay.namespace.as_deref().unwrap_or("(each forward's)"),
        ));
    }
    for e in &effective.exposes {
        text.push_str(&format!(
            "{}{}: svc/{}:{} in {} ({}) to {}\n",
            e.name(),
            if e.enabled { "" } else { " (disabled)" },
            e.service,
            e.port,
            e.namespace.as_deref().unwrap_or("(context's)"),
            e.context.as_deref().unwrap_or("(current)"),
            e.local
        ));
    }
    if let Some(proxy) = &effective.proxy {
        let on = |kind: &str, port: Option<u16>| {
            port.map(|p| format!("{kind} on {}:{p}", proxy.local_address))
        };
        let listeners: Vec<String> = [on("SOCKS5", proxy.socks), on("HTTP", proxy.http)]
            .into_iter()
            .flatten()
            .collect();
        text.push_str(&format!(
            "\nproxy: {} into context {}, namespace {}\n",
            listeners.join(" and "),
            proxy.context.as_deref().unwrap_or("(current)"),
            proxy.namespace.as_deref().unwrap_or("(context's)"),
        ));
    }
    if let Some(sync) = &effective.sync {
        text.push_str(&format!(
            "\nsync: {} ref {} path {} every {}\n",
            sync.repo,
            sync.reference,
            sync.path.display(),
            serde_json::to_value(sync)
                .ok()
                .and_then(|v| v.get("interval").and_then(|i| i.as_str()).map(String::from))
                .unwrap_or_default()
        ));
    }
    text
}
