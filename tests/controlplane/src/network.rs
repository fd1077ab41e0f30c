//! The cluster's addresses: a /20 of pod IPs in 198.18.0.0/16 and a /20 of ClusterIPs in
//! 198.19.0.0/16 per cluster, one of sixteen slots, each held with a lock file so that
//! clusters started at once on one machine never share an address.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;

pub const SLOTS: u8 = 16;
const LOCK_DIR: &str = "/tmp/kftray-controlplane";

/// A claimed slot; released when dropped (or when the process dies).
pub struct Slot {
    pub index: u8,
    _lock: File,
}

impl Slot {
    pub fn claim() -> anyhow::Result<Slot> {
        std::fs::create_dir_all(LOCK_DIR)?;
        for index in 0..SLOTS {
            let file = File::create(format!("{LOCK_DIR}/slot-{index}.lock"))?;
            // SAFETY: flock(2) on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Slot { index, _lock: file });
            }
        }
        anyhow::bail!("all {SLOTS} control plane address slots are in use on this machine")
    }

    /// The lock's descriptor, for processes that must hold the slot as long as they live.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    /// The pod range (198.18.<16·index>.0/20): its first addresses are the Nodes'.
    pub fn pods(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::new(198, 18, self.index * 16, 0), 20)
    }

    /// The service range (198.19.<16·index>.0/20).
    pub fn services(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::new(198, 19, self.index * 16, 0), 20)
    }

    /// Node `n`'s InternalIP (n < 16).
    pub fn node_ip(&self, n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.index * 16, 1 + n)
    }

    /// The cluster DNS Service's ClusterIP, the tenth of the range as kubeadm's.
    pub fn dns_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.index * 16, 10)
    }
}

pub fn cidr((ip, prefix): (Ipv4Addr, u8)) -> String {
    format!("{ip}/{prefix}")
}

/// Makes 198.18.0.0/15 local to this machine (as 127/8 is), if it is not yet: needs root.
pub fn ensure_route() -> anyhow::Result<()> {
    let show = Command::new("ip")
        .args(["route", "show", "table", "local", "198.18.0.0/15"])
        .output();
    let out = match show {
        Ok(out) => out,
        Err(e) => anyhow::bail!("cannot run `ip` (iproute2) to check the pod network: {e}"),
    };
    if String::from_utf8_lossy(&out.stdout).contains("198.18.0.0/15") {
        return Ok(());
    }
    let add = Command::new("ip")
        .args(["route", "add", "local", "198.18.0.0/15", "dev", "lo"])
        .output()?;
    anyhow::ensure!(
        add.status.success() || String::from_utf8_lossy(&add.stderr).contains("File exists"),
        "the test cluster's pods and services live on 198.18.0.0/15, which must be local to \
         this machine; as root run: ip route add local 198.18.0.0/15 dev lo ({})",
        String::from_utf8_lossy(&add.stderr).trim()
    );
    Ok(())
}
