//! The cluster's DNS, and the `kubesim/dns` pods: A records from a lookup function, over UDP
//! and TCP on one port. Enough of RFC 1035 for resolvers (the relay's, `dig`, hickory) to
//! get answers, NXDOMAIN for unknown names, and FORMERR rather than a crash for garbage.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub type Lookup = Arc<dyn Fn(&str) -> Option<Vec<IpAddr>> + Send + Sync>;

const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
const NXDOMAIN: u8 = 3;
/// Answers are short-lived, as cluster DNS answers are: pods and services move.
const TTL: u32 = 5;

pub struct DnsServer {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Serves on `ip:port` (UDP and TCP), falling back to a free port when that one is
    /// taken or needs privileges.
    pub async fn start(ip: IpAddr, port: u16, lookup: Lookup) -> io::Result<DnsServer> {
        let (udp, tcp) = match bind_both(ip, port).await {
            Ok(pair) => pair,
            Err(_) => bind_both(ip, 0).await?,
        };
        let addr = udp.local_addr()?;
        let udp_lookup = lookup.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..n], &*udp_lookup) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let tcp_task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = tcp.accept().await {
                let lookup = lookup.clone();
                tokio::spawn(async move {
                    // Each message is preceded by its length (RFC 1035 4.2.2).
                    loop {
                        let Ok(len) = conn.read_u16().await else {
                            return;
                        };
                        let mut query = vec![0u8; usize::from(len)];
                        if conn.read_exact(&mut query).await.is_err() {
                            return;
                        }
                        let Some(reply) = answer(&query, &*lookup) else {
                            return;
                        };
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        if conn.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(DnsServer {
            addr,
            tasks: vec![udp_task, tcp_task],
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A UDP socket and a TCP listener on the same port.
async fn bind_both(ip: IpAddr, port: u16) -> io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind((ip, port)).await?;
    let tcp = TcpListener::bind(udp.local_addr()?).await?;
    Ok((udp, tcp))
}

/// The reply to one query, or `None` when the bytes are not even a DNS header.
pub fn answer(query: &[u8], lookup: &dyn Fn(&str) -> Option<Vec<IpAddr>>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let id = [query[0], query[1]];
    let opcode_rd = query[2] & 0x79;
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    let header = |rcode: u8, qd: u16, an: u16| {
        let mut h = Vec::with_capacity(512);
        h.extend_from_slice(&id);
        h.push(0x80 | 0x04 | opcode_rd); // QR, AA, the query's opcode and RD
        h.push(0x80 | rcode); // RA
        h.extend_from_slice(&qd.to_be_bytes());
        h.extend_from_slice(&an.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    };
    let Some((name, question_end)) = (qdcount == 1).then(|| question(query)).flatten() else {
        return Some(header(FORMERR, 0, 0));
    };
    let qtype = u16::from_be_bytes([query[question_end - 4], query[question_end - 3]]);
    let qclass = u16::from_be_bytes([query[question_end - 2], query[question_end - 1]]);
    let found = lookup(&name.to_ascii_lowercase());
    let v4: Vec<[u8; 4]> = found
        .iter()
        .flatten()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4.octets()),
            IpAddr::V6(_) => None,
        })
        .collect();
    let wants_a = qclass == CLASS_IN && (qtype == TYPE_A || qtype == TYPE_ANY);
    let answers: &[[u8; 4]] = if wants_a { &v4 } else { &[] };
    let rcode = if found.is_some() { NOERROR } else { NXDOMAIN };
    let mut reply = header(rcode, 1, answers.len() as u16);
    reply.extend_from_slice(&query[12..question_end]);
    for ip in answers {
        reply.extend_from_slice(&[0xc0, 0x0c]); // the name, as a pointer to the question
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&TTL.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(ip);
    }
    Some(reply)
}

/// The question's name (without the final dot) and where the question ends.
fn question(message: &[u8]) -> Option<(String, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*message.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers and extended labels have no place in a question.
        if len > 63 {
            return None;
        }
        let label = message.get(at..at + len)?;
        labels.push(std::str::from_utf8(label).ok()?.to_string());
        at += len;
        if at > 255 + 12 {
            return None;
        }
    }
    let end = at + 4;
    (message.len() >= end).then(|| (labels.join("."), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    fn lookup(name: &str) -> Option<Vec<IpAddr>> {
        (name == "web.demo.svc.cluster.local").then(|| vec!["127.96.0.7".parse().unwrap()])
    }

    #[test]
    fn a_known_name_gets_its_address() {
        let reply = answer(&query("web.demo.svc.cluster.local", TYPE_A), &lookup).unwrap();
        assert_eq!(&reply[..2], &[0x12, 0x34]);
        assert_eq!(reply[3] & 0x0f, NOERROR);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 1);
        assert_eq!(&reply[reply.len() - 4..], &[127, 96, 0, 7]);
    }

    #[test]
    fn unknown_names_are_nxdomain_and_other_types_empty() {
        let reply = answer(&query("nope.demo.svc.cluster.local", TYPE_A), &lookup).unwrap();
        assert_eq!(reply[3] & 0x0f, NXDOMAIN);
        let reply = answer(&query("web.demo.svc.cluster.local", 28), &lookup).unwrap();
        assert_eq!(reply[3] & 0x0f, NOERROR);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0);
    }

    #[test]
    fn garbage_gets_formerr_or_nothing_and_never_panics() {
        assert!(answer(&[1, 2, 3], &lookup).is_none());
        let mut seed = 7u64;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len % 80)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = answer(&bytes, &lookup);
        }
        let mut truncated = query("web.demo.svc.cluster.local", TYPE_A);
        truncated.truncate(20);
        let reply = answer(&truncated, &lookup).unwrap();
        assert_eq!(reply[3] & 0x0f, FORMERR);
    }
}
