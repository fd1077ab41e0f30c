//! What the helper accepts into the hosts file. It writes a root-owned file on behalf of an
//! unprivileged user, so it takes only what a forward needs: host names that cannot hijack
//! the machine's own names, pointing at loopback addresses only, where nothing but a local
//! process (kftray's forward) can answer.

use std::net::IpAddr;

/// Why a name or an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// An empty name.
    #[error("an empty host name: give the forward a name such as `api.svc.local`")]
    Empty,
    /// More than 253 characters.
    #[error("the host name `{name}` is longer than 253 characters: shorten it")]
    TooLong {
        /// The name as given.
        name: String,
    },
    /// A name ending in '.'.
    #[error("the host name `{name}` ends with a dot: write it without the trailing dot")]
    TrailingDot {
        /// The name as given.
        name: String,
    },
    /// A label that RFC 1123 does not allow.
    #[error(
        "`{name}` is not a valid host name: its part `{label}` must be 1 to 63 letters, \
         digits or '-', not starting or ending with '-'"
    )]
    BadLabel {
        /// The name as given.
        name: String,
        /// The offending dot-separated part.
        label: String,
    },
    /// localhost and its kin.
    #[error(
        "`{name}` is this machine's own name for loopback: kftray will not redefine it, pick \
         another name"
    )]
    Localhost {
        /// The name as given.
        name: String,
    },
    /// An IP address written where a name belongs.
    #[error("`{name}` is an IP address, not a host name: forwards to an address need no entry")]
    Address {
        /// The name as given.
        name: String,
    },
    /// An address outside loopback.
    #[error(
        "{address} is not a loopback address: kftray-helper only points names at 127.0.0.0/8 \
         or ::1, where kftray's forwards listen"
    )]
    NotLoopback {
        /// The address as given.
        address: IpAddr,
    },
}

/// Checks a host name and returns it in lowercase, the form the helper compares and writes.
pub fn check_name(name: &str) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(NameError::Address { name: name.into() });
    }
    if name.len() > 253 {
        return Err(NameError::TooLong { name: name.into() });
    }
    if name.ends_with('.') {
        return Err(NameError::TrailingDot { name: name.into() });
    }
    let lower = name.to_ascii_lowercase();
    if let Some(label) = lower.split('.').find(|label| !is_label(label)) {
        return Err(NameError::BadLabel {
            name: name.into(),
            label: label.into(),
        });
    }
    if lower == "localhost" || lower == "localhost.localdomain" || lower.ends_with(".localhost") {
        return Err(NameError::Localhost { name: name.into() });
    }
    Ok(lower)
}

/// RFC 1123 label, already lowercased.
fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Checks that an address is loopback: 127.0.0.0/8 or ::1. An IPv4-mapped `::ffff:127.x` is
/// refused too: it is not what a hosts-file reader would take for loopback.
pub fn check_address(address: IpAddr) -> Result<(), NameError> {
    if address.is_loopback() {
        Ok(())
    } else {
        Err(NameError::NotLoopback { address })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_come_back_lowercase() {
        assert_eq!(check_name("api").unwrap(), "api");
        assert_eq!(check_name("API.Svc.Local").unwrap(), "api.svc.local");
        assert_eq!(check_name("a-1.b2").unwrap(), "a-1.b2");
        assert_eq!(check_name("9lives.example").unwrap(), "9lives.example");
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(longest.len(), 253);
        assert!(check_name(&longest).is_ok());
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert!(matches!(
            check_name("api."),
            Err(NameError::TrailingDot { .. })
        ));
        assert!(matches!(
            check_name("-api"),
            Err(NameError::BadLabel { .. })
        ));
        assert!(matches!(
            check_name("api-"),
            Err(NameError::BadLabel { .. })
        ));
        assert!(matches!(
            check_name("a..b"),
            Err(NameError::BadLabel { .. })
        ));
        assert!(matches!(check_name("a_b"), Err(NameError::BadLabel { .. })));
        assert!(matches!(check_name("a b"), Err(NameError::BadLabel { .. })));
        assert!(matches!(
            check_name("é.com"),
            Err(NameError::BadLabel { .. })
        ));
        assert!(matches!(
            check_name(&"a".repeat(64)),
            Err(NameError::BadLabel { .. })
        ));
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        assert!(matches!(check_name(&long), Err(NameError::TooLong { .. })));
        let message = check_name("-api").unwrap_err().to_string();
        assert!(message.contains("`-api`"), "{message}");
    }

    #[test]
    fn localhost_and_addresses_are_not_names() {
        for name in [
            "localhost",
            "LocalHost",
            "localhost.localdomain",
            "my.localhost",
        ] {
            assert!(
                matches!(check_name(name), Err(NameError::Localhost { .. })),
                "{name}"
            );
        }
        assert!(check_name("localhost.example").is_ok());
        for name in ["127.0.0.1", "::1", "10.1.2.3"] {
            assert!(
                matches!(check_name(name), Err(NameError::Address { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn only_loopback_addresses() {
        for ok in ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1"] {
            assert!(check_address(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "192.168.1.1",
            "::ffff:127.0.0.1",
        ] {
            let err = check_address(bad.parse().unwrap()).unwrap_err();
            assert!(err.to_string().contains("not a loopback"), "{bad}");
        }
    }
}
