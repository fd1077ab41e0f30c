//! What each connection (one kftray run) holds: host names, which no other run may take and
//! which the hosts file shows while their run lasts, and loopback aliases, which stay while
//! any run holds them. All of it goes when its connection closes.

use crate::hosts::alias;
use crate::hosts::hosts_file::{HostsError, HostsFile};
use crate::hosts::names::{check_address, check_name};
use crate::hosts::protocol::{Entry, ErrorKind, Refusal};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use tracing::{info, warn};

/// What every connection holds, and the hosts file that shows their names.
#[derive(Debug)]
pub(crate) struct Claims {
    file: HostsFile,
    connections: BTreeMap<u64, Claim>,
}

/// What one connection holds.
#[derive(Debug, Default)]
struct Claim {
    /// The peer's pid where the OS tells it, to name the run that holds a name.
    pid: Option<i32>,
    entries: Vec<Entry>,
    aliases: BTreeSet<IpAddr>,
}

impl Claims {
    /// Nothing claimed yet, in `hosts_file`.
    pub(crate) fn new(hosts_file: PathBuf) -> Claims {
        Claims {
            file: HostsFile::new(hosts_file),
            connections: BTreeMap::new(),
        }
    }

    /// Notes a new connection's peer, to name it when another run wants what it holds.
    pub(crate) fn connected(&mut self, id: u64, pid: Option<i32>) {
        self.connections.entry(id).or_default().pid = pid;
    }

    /// Writes the block from every connection's entries.
    fn rewrite(&mut self) -> Result<(), HostsError> {
        let all: Vec<Entry> = self
            .connections
            .values()
            .flat_map(|claim| claim.entries.iter().cloned())
            .collect();
        self.file.write(&all, &[])
    }

    /// Validates all of `requested` against itself, the other connections and the file, then
    /// writes the block; nothing is written unless everything is accepted.
    pub(crate) fn set_entries(&mut self, id: u64, requested: Vec<Entry>) -> Result<(), Refusal> {
        let mut wanted: BTreeMap<String, IpAddr> = BTreeMap::new();
        for entry in requested {
            let name = check_name(&entry.name)?;
            check_address(entry.address)?;
            if let Some(first) = wanted.insert(name.clone(), entry.address)
                && first != entry.address
            {
                return Err(Refusal::new(
                    ErrorKind::Conflict,
                    format!(
                        "{name} is asked for twice, for {first} and {}: give each name one \
                         address",
                        entry.address
                    ),
                ));
            }
        }
        let mut kept = Vec::new();
        for (other, claim) in self.connections.iter().filter(|(other, _)| **other != id) {
            if let Some(taken) = claim.entries.iter().find(|e| wanted.contains_key(&e.name)) {
                let who = match claim.pid {
                    Some(pid) => format!("another running kftray (pid {pid})"),
                    None => format!("another running kftray (helper connection {other})"),
                };
                return Err(Refusal::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} is already claimed by {who}, for {}: stop that run or give this \
                         forward another name",
                        taken.name, taken.address
                    ),
                ));
            }
            kept.extend(claim.entries.iter().cloned());
        }
        let entries: Vec<Entry> = wanted
            .into_iter()
            .map(|(name, address)| Entry { address, name })
            .collect();
        self.file.write(&kept, &entries)?;
        self.connections.entry(id).or_default().entries = entries;
        Ok(())
    }

    /// Puts `address` on lo0 for connection `id`, unless another connection has already.
    pub(crate) fn add_alias(&mut self, id: u64, address: IpAddr) -> Result<(), Refusal> {
        check_address(address)?;
        if !self.alias_held(address) {
            alias::add(address)?;
        }
        self.connections
            .entry(id)
            .or_default()
            .aliases
            .insert(address);
        Ok(())
    }

    /// Gives up connection `id`'s hold on `address`; lo0 loses it with the last holder.
    pub(crate) fn remove_alias(&mut self, id: u64, address: IpAddr) -> Result<(), Refusal> {
        let claim = self.connections.entry(id).or_default();
        if !claim.aliases.remove(&address) {
            return Err(Refusal::new(
                ErrorKind::Invalid,
                format!("{address} is not a loopback alias this run added"),
            ));
        }
        if !self.alias_held(address) {
            alias::remove(address)?;
        }
        Ok(())
    }

    /// Whether some connection holds the alias: another run may use an address too.
    fn alias_held(&self, address: IpAddr) -> bool {
        self.connections
            .values()
            .any(|claim| claim.aliases.contains(&address))
    }

    /// Forgets a closed connection: its entries leave the file, its aliases lo0.
    pub(crate) fn forget(&mut self, id: u64) {
        let Some(claim) = self.connections.remove(&id) else {
            return;
        };
        if !claim.entries.is_empty() {
            match self.rewrite() {
                Ok(()) => info!(
                    connection = id,
                    removed = claim.entries.len(),
                    "entries of a closed connection removed"
                ),
                Err(e) => warn!(
                    connection = id,
                    "removing the entries of a closed connection: {e}"
                ),
            }
        }
        self.drop_aliases(claim.aliases);
    }

    /// Forgets every connection, as the helper starts or stops: the block is emptied. A
    /// damaged block is only logged, as nothing of kftray's can be in a block the helper would
    /// not write to; the user must fix it, and until then every SetEntries says so, which
    /// reaches the user through kftray rather than only this log.
    pub(crate) fn forget_all(&mut self) -> Result<(), HostsError> {
        let connections = std::mem::take(&mut self.connections);
        self.drop_aliases(connections.into_values().flat_map(|claim| claim.aliases));
        match self.rewrite() {
            Err(HostsError::Block(e)) => {
                warn!("{e}");
                Ok(())
            }
            result => result,
        }
    }

    /// Takes off lo0 the aliases no connection holds any more.
    fn drop_aliases(&self, aliases: impl IntoIterator<Item = IpAddr>) {
        for address in aliases.into_iter().collect::<BTreeSet<_>>() {
            if !self.alias_held(address)
                && let Err(e) = alias::remove(address)
            {
                warn!("removing the loopback alias {address}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::protocol::entry;
    use std::fs;

    #[test]
    fn a_name_belongs_to_one_run_named_by_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        let mut claims = Claims::new(hosts.clone());
        claims.connected(1, Some(4242));
        claims.connected(2, None);
        claims
            .set_entries(1, vec![entry("127.0.0.2", "a.local")])
            .unwrap();
        let refusal = claims
            .set_entries(2, vec![entry("127.0.0.3", "A.local")])
            .unwrap_err();
        assert_eq!(refusal.kind, ErrorKind::Conflict);
        assert!(
            refusal.message.contains(
                "a.local is already claimed by another running kftray (pid 4242), for 127.0.0.2"
            ),
            "{refusal}"
        );
        // Once its run is gone the name is free.
        claims.forget(1);
        claims
            .set_entries(2, vec![entry("127.0.0.3", "a.local")])
            .unwrap();
        assert!(
            fs::read_to_string(&hosts)
                .unwrap()
                .contains("127.0.0.3\ta.local")
        );
        claims.forget_all().unwrap();
        assert_eq!(fs::read_to_string(&hosts).unwrap(), "");
    }

    #[test]
    fn an_alias_stays_while_any_run_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut claims = Claims::new(dir.path().join("hosts"));
        let address: IpAddr = "127.0.0.7".parse().unwrap();
        if cfg!(target_os = "linux") {
            claims.add_alias(1, address).unwrap();
            claims.add_alias(2, address).unwrap();
            claims.forget(1);
            assert!(claims.alias_held(address));
            claims.remove_alias(2, address).unwrap();
            assert!(!claims.alias_held(address));
            let refusal = claims.remove_alias(2, address).unwrap_err();
            assert_eq!(refusal.kind, ErrorKind::Invalid);
        }
        let refusal = claims
            .add_alias(1, "10.1.1.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(refusal.kind, ErrorKind::Invalid);
    }
}
