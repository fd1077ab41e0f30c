//! Addresses as in a cluster, on loopback: pod IPs from 127.244.0.0/16 and ClusterIPs from
//! 127.96.0.0/16, on which the backends and service proxies really listen. Linux routes all
//! of 127.0.0.0/8 to the loopback interface, so nothing needs configuring.
//!
//! A real API server refuses loopback addresses in EndpointSlices, so the real control
//! plane's pods take their IPs from a range of its own (`AddressPool::within`).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct AddressPool {
    pods: AtomicU32,
    services: AtomicU32,
    pod_range: Range,
    service_range: Range,
}

/// `base/prefix`, handed out host by host.
#[derive(Clone, Copy)]
struct Range {
    base: u32,
    size: u32,
}

impl Default for AddressPool {
    fn default() -> Self {
        AddressPool::new()
    }
}

impl AddressPool {
    /// Starts at a random offset, so that two processes (a test run and a demo) rarely hand
    /// out the same addresses; within a process an address is never given twice until the
    /// 65,534 of a range are used up.
    pub fn new() -> Self {
        AddressPool {
            pods: AtomicU32::new(rand::random_range(1..60_000)),
            services: AtomicU32::new(rand::random_range(1..60_000)),
            pod_range: Range::new(Ipv4Addr::new(127, 244, 0, 0), 16),
            service_range: Range::new(Ipv4Addr::new(127, 96, 0, 0), 16),
        }
    }

    /// Pod IPs from `pods`, after its first 16 addresses (kept for Nodes), and ClusterIPs
    /// (for a simulated API server) from `services`.
    pub fn within(pods: (Ipv4Addr, u8), services: (Ipv4Addr, u8)) -> Self {
        AddressPool {
            pods: AtomicU32::new(16),
            services: AtomicU32::new(1),
            pod_range: Range::new(pods.0, pods.1),
            service_range: Range::new(services.0, services.1),
        }
    }

    pub fn pod_ip(&self) -> Ipv4Addr {
        self.pod_range.next(&self.pods)
    }

    pub fn cluster_ip(&self) -> Ipv4Addr {
        self.service_range.next(&self.services)
    }
}

impl Range {
    fn new(base: Ipv4Addr, prefix: u8) -> Self {
        let size = 1u32 << (32 - u32::from(prefix.clamp(8, 30)));
        Range {
            base: u32::from(base) & !(size - 1),
            size,
        }
    }

    /// The next host of the range, skipping .0 and .255 in the last octet.
    fn next(&self, counter: &AtomicU32) -> Ipv4Addr {
        loop {
            let n = counter.fetch_add(1, Ordering::Relaxed) % self.size;
            let ip = Ipv4Addr::from(self.base + n);
            let last = ip.octets()[3];
            if last != 0 && last != 255 {
                return ip;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn addresses_are_in_their_ranges_and_not_repeated() {
        let pool = AddressPool::new();
        let pods: HashSet<Ipv4Addr> = (0..5000).map(|_| pool.pod_ip()).collect();
        assert_eq!(pods.len(), 5000);
        assert!(pods.iter().all(|ip| ip.octets()[..2] == [127, 244]));
        let ip = pool.cluster_ip();
        assert_eq!(ip.octets()[..2], [127, 96]);
        assert!(ip.octets()[3] != 0 && ip.octets()[3] != 255);
    }

    #[test]
    fn a_pool_within_ranges_stays_inside_them() {
        let pool = AddressPool::within(
            (Ipv4Addr::new(198, 18, 16, 0), 20),
            (Ipv4Addr::new(198, 19, 16, 0), 20),
        );
        assert_eq!(pool.pod_ip(), Ipv4Addr::new(198, 18, 16, 16));
        let pods: HashSet<Ipv4Addr> = (0..4000).map(|_| pool.pod_ip()).collect();
        assert!(pods.len() > 3900);
        assert!(pods.iter().all(|ip| (16..32).contains(&ip.octets()[2])));
        assert_eq!(pool.cluster_ip(), Ipv4Addr::new(198, 19, 16, 1));
    }
}
