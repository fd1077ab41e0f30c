//! Host names and loopback addresses: each forward's `domain` (a name the hosts file can
//! take, not one the system owns, from git only when the user trusts it, one forward per
//! name), and the addresses of `local_address = "auto"`, chosen once the whole file is known.

use super::Context;
use crate::config::diagnostic::Issue;
use crate::config::effective::{AllPorts, Forward};
use crate::config::loopback::{auto_address, next_auto};
use crate::config::model::{At, ForwardSpec};
use crate::config::trust;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

impl Context<'_> {
    /// The forward's host name, lowercase, if it is one kftray may write.
    pub(super) fn domain(
        &self,
        spec: &ForwardSpec,
        address: IpAddr,
        trusted: bool,
        issues: &mut Vec<Issue>,
    ) -> Option<String> {
        let domain = spec.domain.as_ref()?;
        // kftray-helper writes loopback addresses only; 0.0.0.0 answers on 127.0.0.1 too.
        if !address.is_loopback() && !address.is_unspecified() {
            issues.push(
                Issue::new(
                    "kftray::domain",
                    format!(
                        "`{}` would name {address}, which is not loopback",
                        domain.value
                    ),
                )
                .label(
                    domain.span.clone(),
                    "a host name for a loopback address only",
                )
                .help(
                    "a name in the hosts file reaches this machine's own forwards: listen on a \
                     127.x.y.z address (or 0.0.0.0), or drop `domain`",
                ),
            );
            return None;
        }
        if let Err(why) = crate::hosts::names::check_name(&domain.value) {
            issues.push(
                Issue::new(
                    "kftray::domain",
                    format!("`{}` cannot be a forward's host name", domain.value),
                )
                .label(domain.span.clone(), why.to_string())
                .help(
                    "write a name of your own like \"api.dev.test\" (letters, digits, '-' and \
                     dots; .test and .internal are reserved for such use)",
                ),
            );
            return None;
        }
        trust::domain(self.alias, domain, trusted, self.map, issues);
        Some(domain.value.to_ascii_lowercase())
    }
}

/// Two forwards that claim one host name: the hosts file would answer with one of them.
pub(super) fn domain_conflicts(claims: &[(String, At<String>)], issues: &mut Vec<Issue>) {
    let mut first: BTreeMap<String, &(String, At<String>)> = BTreeMap::new();
    for claim in claims {
        let name = claim.1.value.to_ascii_lowercase();
        let Some(earlier) = first.get(&name) else {
            first.insert(name, claim);
            continue;
        };
        issues.push(
            Issue::new(
                "kftray::domain-conflict",
                format!(
                    "`{}` and `{}` both claim the host name `{name}`",
                    earlier.0, claim.0
                ),
            )
            .label(
                earlier.1.span.clone(),
                format!("`{}` claims it here", earlier.0),
            )
            .label(claim.1.span.clone(), format!("and `{}` too", claim.0))
            .help("a name reaches one address: give one of them another domain"),
        );
    }
}

/// Gives every `local_address = "auto"` forward its address: its own (see `loopback.rs`), or
/// the next free one when another alias of the file, or a fixed address in it, has it. All
/// the ports of one alias share its address.
pub(super) fn auto_addresses(project: &str, mut forwards: Vec<&mut Forward>, all: &mut [AllPorts]) {
    let mut taken: BTreeSet<IpAddr> = forwards
        .iter()
        .filter(|f| !f.local_address_auto)
        .map(|f| f.local_address)
        .chain(
            all.iter()
                .filter(|a| !a.local_address_auto)
                .map(|a| a.local_address),
        )
        .collect();
    let mut aliases: Vec<&str> = forwards
        .iter()
        .filter(|f| f.local_address_auto)
        .map(|f| f.alias.as_str())
        .chain(
            all.iter()
                .filter(|a| a.local_address_auto)
                .map(|a| a.alias.as_str()),
        )
        .collect();
    aliases.sort_unstable();
    aliases.dedup();
    let mut chosen = BTreeMap::new();
    for alias in aliases {
        let mut address = auto_address(project, alias);
        while taken.contains(&IpAddr::V4(address)) {
            address = next_auto(address);
        }
        taken.insert(IpAddr::V4(address));
        chosen.insert(alias.to_owned(), IpAddr::V4(address));
    }
    for f in forwards.iter_mut().filter(|f| f.local_address_auto) {
        f.local_address = chosen[&f.alias];
    }
    for a in all.iter_mut().filter(|a| a.local_address_auto) {
        a.local_address = chosen[&a.alias];
    }
}
