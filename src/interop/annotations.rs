//! kftray's auto-import annotations on a Service:
//!
//! - `kftray.app/enabled: "true"` marks the service for import;
//! - `kftray.app/configs: "alias-localport-targetport,…"` says which forwards to make, the
//!   target port a number or a port name.
//!
//! kftray splits an entry on every `-` and wants exactly three parts, so its aliases cannot
//! contain a dash. Here an entry is read from both ends: the local port is a number, and a
//! reading is kept when the part after it is a number or a port the service has. An alias
//! with dashes (`orders-api-8080-http`) is then read one way only; an entry that still reads
//! two ways is reported rather than guessed.

use crate::resolve::PortRef;

pub const ENABLED: &str = "kftray.app/enabled";
pub const CONFIGS: &str = "kftray.app/configs";

/// One entry of `kftray.app/configs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub alias: String,
    pub local_port: u16,
    /// The target port: a number, or the name of one of the service's ports.
    pub port: PortRef,
}

/// Reads `kftray.app/configs`. `names` are the port names the service knows (its ports'
/// names and the names their targetPorts use). Each entry gives a forward or the reason it
/// cannot, quoting it.
pub fn parse_configs(value: &str, names: &[String]) -> Vec<Result<Entry, EntryError>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| parse_entry(e, names))
        .collect()
}

fn parse_entry(entry: &str, names: &[String]) -> Result<Entry, EntryError> {
    let parts: Vec<&str> = entry.split('-').collect();
    let mut readings = Vec::new();
    let mut unknown_names = Vec::new();
    for i in 1..parts.len().saturating_sub(1) {
        let Some(local_port) = parts[i].parse::<u16>().ok().filter(|p| *p > 0) else {
            continue;
        };
        let alias_parts = &parts[..i];
        if alias_parts.iter().any(|p| p.is_empty()) {
            continue;
        }
        let alias = alias_parts.join("-");
        let target = parts[i + 1..].join("-");
        let port = match target.parse::<u16>() {
            Ok(n) if n > 0 => PortRef::Number(n),
            Ok(_) => continue,
            Err(_) if names.contains(&target) => PortRef::Name(target),
            Err(_) => {
                if !target.is_empty() {
                    unknown_names.push(target);
                }
                continue;
            }
        };
        readings.push(Entry {
            alias,
            local_port,
            port,
        });
    }
    match readings.len() {
        1 => Ok(readings.remove(0)),
        0 if !unknown_names.is_empty() => Err(EntryError::UnknownPortName {
            entry: entry.to_owned(),
            unknown: unknown_names,
            known: names.to_vec(),
        }),
        0 => Err(EntryError::Malformed {
            entry: entry.to_owned(),
        }),
        _ => Err(EntryError::Ambiguous {
            entry: entry.to_owned(),
            readings,
        }),
    }
}

/// Why an entry of `kftray.app/configs` gives no forward; each quotes the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error(
        "`{entry}`: the service has no port named {} (its port names: {})",
        quoted(unknown).join(" or "),
        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
    )]
    UnknownPortName {
        entry: String,
        unknown: Vec<String>,
        known: Vec<String>,
    },
    #[error("`{entry}` is not ALIAS-LOCALPORT-TARGETPORT (e.g. `grafana-13080-3000`)")]
    Malformed { entry: String },
    #[error(
        "`{entry}` can be read {} ways: {}; write the target port as a number",
        readings.len(),
        readings.iter().map(Entry::reading).collect::<Vec<_>>().join(" / ")
    )]
    Ambiguous { entry: String, readings: Vec<Entry> },
}

impl Entry {
    fn reading(&self) -> String {
        format!(
            "alias `{}`, local port {}, target port {}",
            self.alias, self.local_port, self.port
        )
    }
}

fn quoted(names: &[String]) -> Vec<String> {
    names.iter().map(|n| format!("`{n}`")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn entry(alias: &str, local_port: u16, port: PortRef) -> Result<Entry, EntryError> {
        Ok(Entry {
            alias: alias.into(),
            local_port,
            port,
        })
    }

    #[test]
    fn kftray_entries_read_as_kftray_reads_them() {
        assert_eq!(
            parse_configs(
                "web-3000-8080, api-3001-http,,admin-3002-grpc",
                &names(&["http", "grpc"])
            ),
            [
                entry("web", 3000, PortRef::Number(8080)),
                entry("api", 3001, PortRef::Name("http".into())),
                entry("admin", 3002, PortRef::Name("grpc".into())),
            ]
        );
    }

    #[test]
    fn aliases_and_port_names_with_dashes_when_only_one_reading_fits() {
        let known = names(&["http-alt", "metrics"]);
        assert_eq!(
            parse_configs("orders-api-8080-http-alt,web-1-9090-9100", &known),
            [
                entry("orders-api", 8080, PortRef::Name("http-alt".into())),
                // `web` + 1 + "9090-9100" is no port: only one reading is left.
                entry("web-1", 9090, PortRef::Number(9100)),
            ]
        );
    }

    #[test]
    fn two_readings_are_reported_not_guessed() {
        let known = names(&["http", "2-http"]);
        let got = parse_configs("a-1-2-http", &known);
        let err = got[0].clone().unwrap_err();
        assert!(matches!(&err, EntryError::Ambiguous { readings, .. } if readings.len() == 2));
        let err = err.to_string();
        assert!(err.contains("can be read 2 ways"), "{err}");
        assert!(
            err.contains("alias `a`, local port 1, target port 2-http"),
            "{err}"
        );
        assert!(
            err.contains("alias `a-1`, local port 2, target port http"),
            "{err}"
        );
    }

    #[test]
    fn malformed_entries_say_why() {
        let got = parse_configs("grafana-3000,web-8080-grpc,x-0-80", &names(&["http"]));
        let malformed = got[0].clone().unwrap_err();
        assert!(matches!(malformed, EntryError::Malformed { .. }));
        assert!(
            malformed
                .to_string()
                .contains("is not ALIAS-LOCALPORT-TARGETPORT")
        );
        assert_eq!(
            got[1].clone().unwrap_err().to_string(),
            "`web-8080-grpc`: the service has no port named `grpc` (its port names: http)"
        );
        assert!(got[2].is_err());
    }
}
