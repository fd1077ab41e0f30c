//! The relay never serves as root. Its image runs it as user 65532 and kftray's pod manifest
//! asks for that user, but a manifest of someone's own or a runtime that ignores the image's
//! user could still start it as root; it then stops and says why, rather than carry traffic
//! into a cluster with root's reach on the node.

/// An error naming what to change when the relay runs as root, else Ok.
pub(super) fn refuse_root() -> Result<(), String> {
    match effective_uid() {
        Some(0) => Err(
            "the relay does not run as root: run it as a user of its own, as its image does \
             (USER 65532) and kftray's relay pod asks (securityContext.runAsUser: 65532); a \
             `[relay] manifest` of your own must set runAsUser too"
                .to_string(),
        ),
        _ => Ok(()),
    }
}

/// The effective user id, from the kernel's own account of this process (no unsafe code, no
/// libc binding for one number). None where that is not available.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    effective_uid_in(&status)
}

/// `Uid:` lists the real, effective, saved and filesystem ids.
fn effective_uid_in(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_id_is_the_second_of_four() {
        let status =
            "Name:\trelay-server\nUmask:\t0022\nUid:\t1000\t65532\t1000\t65532\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid_in(status), Some(65532));
        assert_eq!(effective_uid_in("Name:\tx\n"), None);
        assert_eq!(effective_uid_in("Uid:\t0\n"), None);
    }
}
