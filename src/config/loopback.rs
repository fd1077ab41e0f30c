//! `local_address = "auto"`: a loopback address of the forward's own, so that every forward
//! can listen on its remote port (postgres on 5432 for two clusters side by side).
//!
//! The address is derived from the project's folder and the alias, so it is the same at every
//! run of the project (a bookmark, a hosts entry or a client's config keeps working), and two
//! projects almost never meet on one. It is drawn from 127.1.0.1–127.254.255.254: 127.0.x.x is
//! left alone because systems use it (127.0.0.1 itself, Debian's 127.0.1.1 for the host name,
//! systemd-resolved's 127.0.0.53). A hash, not std's `DefaultHasher`, whose output may change
//! between Rust releases and would move every address at an upgrade.

use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;

/// Addresses in the range: 254 × 256 × 254.
const COUNT: u32 = 254 * 256 * 254;

/// The first address `alias` of the project in `project` tries.
pub fn auto_address(project: &str, alias: &str) -> Ipv4Addr {
    let digest = Sha256::new()
        .chain_update(project.as_bytes())
        .chain_update([0])
        .chain_update(alias.as_bytes())
        .finalize();
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    at(n % COUNT)
}

/// The address tried after `address`, when it is taken (wrapping around the range).
pub fn next_auto(address: Ipv4Addr) -> Ipv4Addr {
    at((index(address).unwrap_or(0) + 1) % COUNT)
}

/// Whether `address` is one `auto` may choose.
pub fn is_auto(address: Ipv4Addr) -> bool {
    index(address).is_some()
}

fn at(index: u32) -> Ipv4Addr {
    let (z, rest) = (index % 254, index / 254);
    let (y, x) = (rest % 256, rest / 256);
    // Each part is below 256 by construction.
    Ipv4Addr::new(127, (x + 1) as u8, y as u8, (z + 1) as u8)
}

fn index(address: Ipv4Addr) -> Option<u32> {
    let [a, x, y, z] = address.octets();
    if a != 127 || !(1..=254).contains(&x) || !(1..=254).contains(&z) {
        return None;
    }
    Some((u32::from(x) - 1) * 256 * 254 + u32::from(y) * 254 + u32::from(z) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_keeps_its_address_and_aliases_differ() {
        let a = auto_address("/home/dev/shop", "postgres");
        assert_eq!(a, auto_address("/home/dev/shop", "postgres"));
        assert!(is_auto(a), "{a}");
        assert_ne!(a, auto_address("/home/dev/shop", "redis"));
        assert_ne!(a, auto_address("/home/dev/billing", "postgres"));
        // A fixed value, so that an upgrade cannot move it unnoticed.
        assert_eq!(auto_address("/p", "db").to_string(), "127.21.37.95");
    }

    #[test]
    fn the_range_is_walked_in_order_and_wraps() {
        assert_eq!(
            next_auto(Ipv4Addr::new(127, 1, 0, 1)),
            Ipv4Addr::new(127, 1, 0, 2)
        );
        assert_eq!(
            next_auto(Ipv4Addr::new(127, 1, 0, 254)),
            Ipv4Addr::new(127, 1, 1, 1)
        );
        assert_eq!(
            next_auto(Ipv4Addr::new(127, 1, 255, 254)),
            Ipv4Addr::new(127, 2, 0, 1)
        );
        assert_eq!(
            next_auto(Ipv4Addr::new(127, 254, 255, 254)),
            Ipv4Addr::new(127, 1, 0, 1)
        );
        for i in [0, 1, 253, 254, 65_000, COUNT - 1] {
            assert_eq!(index(at(i)), Some(i));
        }
        assert!(!is_auto(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!is_auto(Ipv4Addr::new(127, 0, 1, 1)));
        assert!(!is_auto(Ipv4Addr::new(127, 255, 0, 1)));
        assert!(!is_auto(Ipv4Addr::new(10, 1, 0, 1)));
    }
}
