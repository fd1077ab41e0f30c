//! `ports = "all"` made concrete: once a cluster has listed the ports a target declares, one
//! forward per port, on the same local port unless another forward listens there.

use super::effective::{Effective, LocalPort};
use crate::target::PortRef;
use std::collections::BTreeMap;
use std::fmt;

/// A declared port that is not forwarded: its local port is another forward's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The name it would have run under (`alias:PORT`).
    pub name: String,
    /// The forward that listens on that port.
    pub taken_by: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.name.rsplit(':').next().unwrap_or_default();
        write!(
            f,
            "{} is not forwarded: local port {port} is `{}`'s (give `{}` another local_port to \
             free it)",
            self.name, self.taken_by, self.taken_by
        )
    }
}

impl Effective {
    /// The forwards with each `all_ports` entry that `listed` has ports for (by alias) turned
    /// into `alias:PORT` forwards; the entries stay in `all_ports`, so that a later listing
    /// can expand them again. Forwards the file lists keep their ports; among expanded ones,
    /// the first alias to claim a local port keeps it.
    pub fn expand(&self, listed: &BTreeMap<String, Vec<u16>>) -> (Effective, Vec<Skipped>) {
        let mut expanded = self.clone();
        let mut skipped = Vec::new();
        for all in &self.all_ports {
            let Some(ports) = listed.get(&all.alias) else {
                continue;
            };
            for &port in ports {
                let forward = all.with_port(
                    format!("{}:{port}", all.alias),
                    LocalPort::Fixed(port),
                    PortRef::Number(port),
                );
                match expanded
                    .forwards
                    .iter()
                    .find(|f| f.shares_port_with(&forward))
                {
                    Some(taken) => skipped.push(Skipped {
                        name: forward.name,
                        taken_by: taken.name.clone(),
                    }),
                    None => expanded.forwards.push(forward),
                }
            }
        }
        expanded.forwards.sort();
        (expanded, skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[forwards.db]
service = "postgres"
remote_port = 5432

[forwards.api]
service = "api"
ports = "all"
tags = ["backend"]

[forwards.dns]
service = "coredns"
protocol = "udp"
ports = "all"
"#;

    #[test]
    fn every_listed_port_becomes_a_forward_on_the_same_local_port() {
        let effective = super::super::load_str("kftray.toml", FILE).unwrap();
        assert_eq!(effective.forwards.len(), 1);
        let aliases: Vec<&str> = effective
            .all_ports
            .iter()
            .map(|a| a.alias.as_str())
            .collect();
        assert_eq!(aliases, ["api", "dns"]);

        let listed = BTreeMap::from([
            ("api".to_owned(), vec![8080, 9090]),
            ("dns".to_owned(), vec![53]),
        ]);
        let (expanded, skipped) = effective.expand(&listed);
        assert!(skipped.is_empty(), "{skipped:?}");
        let names: Vec<&str> = expanded.forwards.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["api:8080", "api:9090", "db", "dns:53"]);
        let api = &expanded.forwards[1];
        assert_eq!(api.local_port, LocalPort::Fixed(9090));
        assert_eq!(api.remote_port, PortRef::Number(9090));
        assert_eq!(api.tags, ["backend"]);
        let dns = &expanded.forwards[3];
        assert_eq!(dns.protocol, super::super::Protocol::Udp);
        assert_eq!(dns.via, super::super::Via::Relay);
        assert_eq!(expanded.all_ports, effective.all_ports);
    }

    #[test]
    fn a_port_another_forward_listens_on_is_skipped_and_said() {
        let effective = super::super::load_str("kftray.toml", FILE).unwrap();
        // The same number over UDP does not clash with a TCP listener.
        let listed = BTreeMap::from([
            ("api".to_owned(), vec![5432, 8080]),
            ("dns".to_owned(), vec![5432]),
        ]);
        let (expanded, skipped) = effective.expand(&listed);
        let names: Vec<&str> = expanded.forwards.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["api:8080", "db", "dns:5432"]);
        assert_eq!(
            skipped,
            [Skipped {
                name: "api:5432".into(),
                taken_by: "db".into()
            }]
        );
        assert_eq!(
            skipped[0].to_string(),
            "api:5432 is not forwarded: local port 5432 is `db`'s (give `db` another \
             local_port to free it)"
        );
    }

    #[test]
    fn an_alias_not_listed_yet_is_not_expanded() {
        let effective = super::super::load_str("kftray.toml", FILE).unwrap();
        let (expanded, skipped) = effective.expand(&BTreeMap::new());
        assert_eq!(expanded.forwards, effective.forwards);
        assert!(skipped.is_empty());
    }
}
