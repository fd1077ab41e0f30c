//! A test host of its own: a network namespace joined to this one by a veth pair, so that a
//! program run in it (`exec_prefix`) reaches this host's address over a real link, and the
//! link can drop every packet between them (nftables in the namespace) as a sleeping laptop's
//! Wi-Fi does: no reset, no ICMP, TCP retransmitting into nothing.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

pub struct NetHost {
    name: String,
    /// This side's end of the veth pair.
    outer: String,
    /// This side of the veth pair, and the namespace's side.
    pub here: Ipv4Addr,
    pub there: Ipv4Addr,
}

const TABLE: &str = "kftray_blackhole";

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetHost {
    /// A namespace named for this process and `tag`, on a /30 of 10.x.y.0 derived from both.
    /// Needs root (or CAP_NET_ADMIN), iproute2 and nftables.
    pub fn new(tag: u8) -> Result<NetHost, String> {
        let pid = std::process::id();
        let name = format!("kftray-{pid}-{tag}");
        // 10.(64+pid%64).(pid/64%256).(4*tag): one /30 per host, unlikely to meet another's.
        let net = [
            10,
            64 + (pid % 64) as u8,
            (pid / 64 % 256) as u8,
            tag.wrapping_mul(4),
        ];
        let here = Ipv4Addr::new(net[0], net[1], net[2], net[3] + 1);
        let there = Ipv4Addr::new(net[0], net[1], net[2], net[3] + 2);
        let (outer, inner) = (format!("kfo{pid}{tag}"), format!("kfi{pid}{tag}"));
        let host = NetHost {
            name,
            outer: outer.clone(),
            here,
            there,
        };
        let ns = host.name.as_str();
        run(&["ip", "netns", "add", ns])?;
        let wired = (|| {
            run(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            run(&["ip", "link", "set", &inner, "netns", ns])?;
            run(&["ip", "addr", "add", &format!("{here}/30"), "dev", &outer])?;
            run(&["ip", "link", "set", &outer, "up"])?;
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{there}/30"),
                "dev",
                &inner,
            ])?;
            run(&["ip", "-n", ns, "link", "set", &inner, "up"])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])
        })();
        // On failure the namespace is removed by drop, and the veth pair with it.
        wired.map(|()| host)
    }

    /// `ip netns exec NAME`: what runs a program on this host.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .map(String::from)
            .to_vec()
    }

    /// Drops every packet between this host and `port` of the other side (both ways) while
    /// `on`; anything else on the link still flows.
    pub fn blackhole(&self, port: u16, on: bool) -> Result<(), String> {
        let nft = |rules: &str| run(&["ip", "netns", "exec", &self.name, "nft", rules]);
        if !on {
            return nft(&format!("delete table inet {TABLE}"));
        }
        let here = self.here;
        nft(&format!(
            "table inet {TABLE} {{ \
               chain out {{ type filter hook output priority 0; ip daddr {here} tcp dport {port} drop; }}; \
               chain in {{ type filter hook input priority 0; ip saddr {here} tcp sport {port} drop; }}; \
             }}"
        ))
    }
}

impl Drop for NetHost {
    fn drop(&mut self) {
        // The pair goes with either end; deleted here too in case a process still holds the
        // namespace.
        let _ = run(&["ip", "link", "delete", &self.outer]);
        let _ = run(&["ip", "netns", "delete", &self.name]);
    }
}

/// A program run with `hosts` as its /etc/hosts (a mount namespace of its own), so that a
/// name resolves where the test says, and moves when the file is rewritten in place.
pub fn with_hosts(hosts: &Path) -> Vec<String> {
    [
        "unshare",
        "-m",
        "sh",
        "-c",
        "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
    ]
    .map(String::from)
    .into_iter()
    .chain([hosts.display().to_string()])
    .collect()
}
