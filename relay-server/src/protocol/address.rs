//! Destinations: an IP address or a host name the relay resolves, and a port.

use super::ProtocolError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest host name DNS allows (without the final dot).
pub const MAX_HOST_LEN: usize = 253;

pub(crate) const TYPE_NONE: u8 = 0;
pub(crate) const TYPE_IPV4: u8 = 1;
pub(crate) const TYPE_IPV6: u8 = 2;
pub(crate) const TYPE_HOST: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    Ip(IpAddr),
    /// A host name, resolved by the relay as its pod resolves names.
    Host(String),
}

/// Where the relay connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub address: Address,
    pub port: u16,
}

impl Destination {
    /// A host name or an IP address literal, and a port.
    pub fn new(host: &str, port: u16) -> Destination {
        let address = match host.parse::<IpAddr>() {
            Ok(ip) => Address::Ip(ip),
            Err(_) => Address::Host(host.to_string()),
        };
        Destination { address, port }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Host(host) => f.write_str(host),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Address::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            other => write!(f, "{other}:{}", self.port),
        }
    }
}

/// Checks a host name as DNS writes it: 1 to 253 bytes, an optional final dot, labels of 1 to
/// 63 letters, digits, '-' and '_' (service names), no label starting or ending with '-'.
pub fn check_host(host: &str) -> Result<(), ProtocolError> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err(ProtocolError::BadHost("empty"));
    }
    if name.len() > MAX_HOST_LEN {
        return Err(ProtocolError::BadHost("longer than 253 bytes"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(ProtocolError::BadHost("an empty label"));
        }
        if label.len() > 63 {
            return Err(ProtocolError::BadHost("a label longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ProtocolError::BadHost(
                "only letters, digits, '-', '_' and '.' are allowed",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(ProtocolError::BadHost("a label starts or ends with '-'"));
        }
    }
    Ok(())
}

/// The address type and bytes of an address.
pub(crate) fn encode_address(address: &Address, out: &mut Vec<u8>) {
    match address {
        Address::Ip(IpAddr::V4(ip)) => {
            out.extend_from_slice(&[TYPE_IPV4, 4]);
            out.extend_from_slice(&ip.octets());
        }
        Address::Ip(IpAddr::V6(ip)) => {
            out.extend_from_slice(&[TYPE_IPV6, 16]);
            out.extend_from_slice(&ip.octets());
        }
        Address::Host(host) => {
            // Checked hosts fit; a longer one is cut rather than overflowing the length byte,
            // and the relay then refuses it.
            let bytes = &host.as_bytes()[..host.len().min(255)];
            out.extend_from_slice(&[TYPE_HOST, bytes.len() as u8]);
            out.extend_from_slice(bytes);
        }
    }
}

/// Checks an address type against its length byte, before the bytes themselves are read.
pub(crate) fn check_length(kind: u8, len: u8, allow_host: bool) -> Result<(), ProtocolError> {
    let expected = match kind {
        TYPE_NONE => "0",
        TYPE_IPV4 => "4",
        TYPE_IPV6 => "16",
        TYPE_HOST if allow_host => "1 to 254",
        TYPE_HOST => return Err(ProtocolError::HostInReply),
        other => return Err(ProtocolError::UnknownAddressType(other)),
    };
    let fits = match kind {
        TYPE_NONE => len == 0,
        TYPE_IPV4 => len == 4,
        TYPE_IPV6 => len == 16,
        _ => (1..=MAX_HOST_LEN as u8 + 1).contains(&len),
    };
    if fits {
        Ok(())
    } else {
        Err(ProtocolError::AddressLength {
            kind,
            expected,
            found: len,
        })
    }
}

/// The address of a checked type from its bytes; `None` for type 0.
pub(crate) fn decode_address(kind: u8, bytes: &[u8]) -> Result<Option<Address>, ProtocolError> {
    Ok(Some(match kind {
        TYPE_IPV4 => {
            let octets: [u8; 4] = bytes.try_into().map_err(|_| length(kind, "4", bytes))?;
            Address::Ip(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        TYPE_IPV6 => {
            let octets: [u8; 16] = bytes.try_into().map_err(|_| length(kind, "16", bytes))?;
            Address::Ip(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        TYPE_HOST => {
            let host = std::str::from_utf8(bytes)
                .map_err(|_| ProtocolError::BadHost("not ASCII"))?
                .to_string();
            check_host(&host)?;
            Address::Host(host)
        }
        _ => return Ok(None),
    }))
}

fn length(kind: u8, expected: &'static str, bytes: &[u8]) -> ProtocolError {
    ProtocolError::AddressLength {
        kind,
        expected,
        found: bytes.len().min(255) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_dns_rules() {
        for good in [
            "redis",
            "redis.internal",
            "_sip._udp.example.com",
            "a-b.c",
            "1.2.3.4.example",
            "fqdn.example.",
        ] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["abc"; 64].join(".");
        for bad in [
            "",
            ".",
            "a..b",
            "-a.b",
            "a-.b",
            "sp ace",
            "semi;colon",
            "ünï",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(check_host(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn ip_literals_become_ip_addresses() {
        assert_eq!(
            Destination::new("10.0.0.7", 5432).address,
            Address::Ip("10.0.0.7".parse().unwrap())
        );
        assert_eq!(
            Destination::new("::1", 53).to_string(),
            "[::1]:53".to_string()
        );
        assert_eq!(
            Destination::new("db.internal", 5432).address,
            Address::Host("db.internal".into())
        );
    }
}
