//! Loopback aliases on lo0. Only macOS needs them: it routes 127.0.0.1 alone to lo0, where
//! Linux routes all of 127.0.0.0/8 (and ::1) to lo already, so there both are no-ops.

use crate::hosts::protocol::Refusal;
use std::net::IpAddr;

/// Puts `address` on lo0.
pub(crate) fn add(address: IpAddr) -> Result<(), Refusal> {
    lo0(address, true)
}

/// Takes `address` off lo0 again.
pub(crate) fn remove(address: IpAddr) -> Result<(), Refusal> {
    lo0(address, false)
}

#[cfg(target_os = "linux")]
fn lo0(_address: IpAddr, _add: bool) -> Result<(), Refusal> {
    Ok(())
}

// Not tested: the project's machines and CI run Linux.
#[cfg(target_os = "macos")]
fn lo0(address: IpAddr, add: bool) -> Result<(), Refusal> {
    use crate::hosts::protocol::ErrorKind;
    let v4 = match address {
        // 127.0.0.1 is always on lo0, and ::1 is the only IPv6 loopback address.
        IpAddr::V4(v4) if v4 != std::net::Ipv4Addr::LOCALHOST => v4.to_string(),
        _ => return Ok(()),
    };
    let args: &[&str] = if add {
        &["lo0", "alias", &v4, "up"]
    } else {
        &["lo0", "-alias", &v4]
    };
    let output = std::process::Command::new("/sbin/ifconfig")
        .args(args)
        .output()
        .map_err(|e| Refusal::new(ErrorKind::Failed, format!("running ifconfig: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorKind::Failed,
            format!(
                "`ifconfig {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn lo0(_address: IpAddr, _add: bool) -> Result<(), Refusal> {
    Err(Refusal::new(
        crate::hosts::protocol::ErrorKind::Unsupported,
        "kftray-helper adds loopback aliases on macOS and Linux only",
    ))
}
