//! Addresses as in a cluster, on loopback: pod IPs from 127.244.0.0/16 and ClusterIPs from
//! 127.96.0.0/16, on which the backends and service proxies really listen. Linux routes all
//! of 127.0.0.0/8 to the loopback interface, so nothing needs configuring.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct AddressPool {
    pods: AtomicU32,
    services: AtomicU32,
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
        }
    }

    pub fn pod_ip(&self) -> Ipv4Addr {
        next(&self.pods, 244)
    }

    pub fn cluster_ip(&self) -> Ipv4Addr {
        next(&self.services, 96)
    }
}

/// The next host of 127.<second>.0.0/16, skipping .0 and .255 in the last octet.
fn next(counter: &AtomicU32, second: u8) -> Ipv4Addr {
    loop {
        let n = counter.fetch_add(1, Ordering::Relaxed) % 65_536;
        let [_, _, third, fourth] = n.to_be_bytes();
        if fourth != 0 && fourth != 255 {
            return Ipv4Addr::new(127, second, third, fourth);
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
}
