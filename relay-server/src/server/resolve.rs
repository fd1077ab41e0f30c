//! Names resolve as the pod resolves them: /etc/resolv.conf (the cluster DNS, its search
//! domains and ndots in a real pod) and /etc/hosts. RELAY_NAMESERVER only replaces the
//! nameservers; nothing else differs.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use kftray_relay::protocol::{Address, Destination, Reply, Status};
use std::net::SocketAddr;
use std::time::Duration;

pub(super) struct Resolver {
    inner: Result<TokioResolver, String>,
    timeout: Duration,
}

impl Resolver {
    pub(super) fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Resolver {
        let inner = build(nameserver, timeout);
        if let Err(why) = &inner {
            tracing::warn!("no resolver ({why}): only IP destinations will work");
        }
        Resolver { inner, timeout }
    }

    /// The addresses to try for a destination, or the reply that says why there are none.
    pub(super) async fn resolve(&self, to: &Destination) -> Result<Vec<SocketAddr>, Reply> {
        let host = match &to.address {
            Address::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, to.port)]),
            Address::Host(host) => host,
        };
        let resolver = self
            .inner
            .as_ref()
            .map_err(|why| Reply::new(Status::ResolveFailed, None, format!("{host}: {why}")))?;
        let answer = tokio::time::timeout(self.timeout, resolver.lookup_ip(host.as_str())).await;
        let lookup = match answer {
            Err(_) => {
                return Err(Reply::new(
                    Status::ResolveTimeout,
                    None,
                    format!("{host}: no answer within {:?}", self.timeout),
                ));
            }
            Ok(Err(e)) => return Err(failure(host, &e)),
            Ok(Ok(lookup)) => lookup,
        };
        let addresses: Vec<SocketAddr> = lookup
            .iter()
            .map(|ip| SocketAddr::new(ip, to.port))
            .collect();
        if addresses.is_empty() {
            return Err(Reply::new(
                Status::NoSuchHost,
                None,
                format!("{host}: no address"),
            ));
        }
        Ok(addresses)
    }
}

fn failure(host: &str, e: &NetError) -> Reply {
    if e.is_no_records_found() {
        Reply::new(Status::NoSuchHost, None, format!("{host}: no such host"))
    } else if matches!(e, NetError::Timeout) {
        Reply::new(Status::ResolveTimeout, None, format!("{host}: {e}"))
    } else {
        Reply::new(Status::ResolveFailed, None, format!("{host}: {e}"))
    }
}

fn build(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<TokioResolver, String> {
    let system = hickory_resolver::system_conf::read_system_conf();
    let (config, mut options) = match (system, nameserver) {
        (Ok((config, options)), None) => (config, options),
        (Ok((config, options)), Some(ns)) => {
            let (domain, search, _) = config.into_parts();
            (
                ResolverConfig::from_parts(domain, search, vec![server(ns)]),
                options,
            )
        }
        (Err(_), Some(ns)) => (
            ResolverConfig::from_name_servers(vec![server(ns)]),
            ResolverOpts::default(),
        ),
        (Err(e), None) => return Err(format!("cannot read /etc/resolv.conf: {e}")),
    };
    // Within our own deadline, a retry on the next server is worth more than one long wait.
    options.timeout = options.timeout.min(timeout / 2);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = options;
    builder.build().map_err(|e| e.to_string())
}

fn server(ns: SocketAddr) -> NameServerConfig {
    let mut config = NameServerConfig::udp_and_tcp(ns.ip());
    for connection in &mut config.connections {
        connection.port = ns.port();
    }
    config
}
