//! What the relay is told, by flag or environment variable (a pod manifest sets the latter).

use clap::{Parser, Subcommand};
use kftray_relay::protocol::DEFAULT_PORT;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "relay-server", version, about = "kftray's in-cluster relay")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Checks that the relay on the listen address answers a heartbeat (exit 0), for a
    /// startup probe.
    Probe,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Settings {
    /// Where to listen. The pod's loopback by default, so that only a port-forward (which
    /// enters the pod's network) reaches the relay, not the rest of the cluster.
    #[arg(long, env = "RELAY_LISTEN", default_value_t = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT))]
    pub listen: SocketAddr,
    /// A nameserver (IP, or IP:PORT) to use instead of those in /etc/resolv.conf; search
    /// domains and options still come from there.
    #[arg(long, env = "RELAY_NAMESERVER", value_parser = nameserver)]
    pub nameserver: Option<SocketAddr>,
    /// Exit when no client session has been alive for this long.
    #[arg(long, env = "RELAY_IDLE_EXIT", default_value = "10m", value_parser = duration)]
    pub idle_exit: Duration,
    /// Close a session that sends no heartbeat for this long.
    #[arg(long, env = "RELAY_HEARTBEAT_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub heartbeat_timeout: Duration,
    /// Close a UDP flow with no datagram either way for this long.
    #[arg(long, env = "RELAY_FLOW_IDLE", default_value = "2m", value_parser = duration)]
    pub flow_idle: Duration,
    /// How long a client has to send its request.
    #[arg(long, env = "RELAY_REQUEST_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub request_timeout: Duration,
    #[arg(long, env = "RELAY_RESOLVE_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub resolve_timeout: Duration,
    #[arg(long, env = "RELAY_CONNECT_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub connect_timeout: Duration,
    /// Connections at once; past this, new ones are answered "busy".
    #[arg(long, env = "RELAY_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// The address a listen request's port is opened on: every address of the pod by default,
    /// so that other pods reach it (the relay's own port stays on loopback).
    #[arg(long, env = "RELAY_EXPOSE_ADDRESS", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub expose_address: IpAddr,
    /// Reset a connection accepted on a listen's port that is not attached within this long.
    #[arg(long, env = "RELAY_ATTACH_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub attach_timeout: Duration,
}

/// "10.96.0.10" (port 53) or "10.96.0.10:5353".
fn nameserver(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{text:?} is not an IP address or IP:PORT"))
}

/// A number and a unit: "500ms", "30s", "10m", "1h".
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: ms, s, m or h"))?;
    let (number, unit) = text.split_at(at);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_nameservers_parse() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert!(duration("10").is_err());
        assert!(duration("1d").is_err());
        assert!(duration("s").is_err());
        assert_eq!(
            nameserver("10.96.0.10"),
            Ok("10.96.0.10:53".parse().unwrap())
        );
        assert_eq!(
            nameserver("127.96.0.1:1053"),
            Ok("127.96.0.1:1053".parse().unwrap())
        );
        assert!(nameserver("dns.local").is_err());
    }

    #[test]
    fn the_default_listens_on_the_pod_loopback() {
        let cli = Cli::try_parse_from(["relay-server"]).unwrap();
        assert_eq!(cli.settings.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(cli.settings.idle_exit, Duration::from_secs(600));
        assert_eq!(
            cli.settings.expose_address,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
        assert_eq!(cli.settings.attach_timeout, Duration::from_secs(10));
        let cli = Cli::try_parse_from(["relay-server", "--expose-address", "10.244.0.5"]).unwrap();
        assert_eq!(
            cli.settings.expose_address,
            "10.244.0.5".parse::<IpAddr>().unwrap()
        );
    }
}
