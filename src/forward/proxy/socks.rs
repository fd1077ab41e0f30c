//! SOCKS5 (RFC 1928): no authentication, CONNECT only, the destination named by IPv4, IPv6 or
//! host name (what `curl --proxy socks5h://` sends, so the name is resolved in the cluster).

use super::{Activity, DialError, LINGER, ProxyDial, Target};
use crate::forward::splice;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VERSION: u8 = 0x05;
const SOCKS4: u8 = 0x04;
const NO_AUTH: u8 = 0x00;
const NO_ACCEPTABLE_METHOD: u8 = 0xFF;
const CONNECT: u8 = 0x01;

const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// The reply codes of RFC 1928, section 6.
mod reply {
    pub(super) const SUCCEEDED: u8 = 0x00;
    pub(super) const GENERAL_FAILURE: u8 = 0x01;
    pub(super) const NETWORK_UNREACHABLE: u8 = 0x03;
    pub(super) const HOST_UNREACHABLE: u8 = 0x04;
    pub(super) const CONNECTION_REFUSED: u8 = 0x05;
    pub(super) const TTL_EXPIRED: u8 = 0x06;
    pub(super) const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub(super) const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
}

/// SOCKS4's "request rejected or failed".
const SOCKS4_REJECTED: u8 = 0x5B;

/// How long a refused client gets to read its answer before the connection is closed.
const LAST_WORDS: Duration = Duration::from_secs(1);

/// What the handshake ended with: a destination, or the reply that refuses the client.
enum Asked {
    Connect(Target),
    Refuse(Refusal),
}

enum Refusal {
    /// SOCKS5 greeting without NO AUTH among its methods.
    NoAcceptableMethod,
    /// A SOCKS5 request answered with this reply code.
    Reply(u8, String),
    /// A SOCKS4 or 4a request.
    Socks4,
}

/// Serves one SOCKS5 connection: handshake (within `patience`), dial, reply, then carry the
/// bytes.
pub(super) async fn serve_connection(
    mut local: TcpStream,
    dialer: &dyn ProxyDial,
    activity: &Activity,
    patience: Duration,
) -> Result<(), String> {
    let asked = match tokio::time::timeout(patience, handshake(&mut local)).await {
        Ok(Ok(asked)) => asked,
        Ok(Err(e)) => return Err(format!("SOCKS handshake: {e}")),
        Err(_) => {
            return Err(format!(
                "no SOCKS request within {}ms",
                patience.as_millis()
            ));
        }
    };
    let target = match asked {
        Asked::Connect(target) => target,
        Asked::Refuse(refusal) => {
            let (answer, why) = match refusal {
                Refusal::NoAcceptableMethod => (
                    vec![VERSION, NO_ACCEPTABLE_METHOD],
                    "the client offers no method but authentication, which is not supported"
                        .to_string(),
                ),
                Refusal::Reply(code, why) => (reply(code).to_vec(), why),
                Refusal::Socks4 => (
                    vec![0x00, SOCKS4_REJECTED, 0, 0, 0, 0, 0, 0],
                    "SOCKS4 is not supported, only SOCKS5".to_string(),
                ),
            };
            last_words(local, &answer).await;
            return Err(why);
        }
    };
    let remote = match dialer.dial(target.clone()).await {
        Ok(remote) => remote,
        Err(e) => {
            last_words(local, &reply(reply_code(&e))).await;
            return Err(format!("to {target}: {e}"));
        }
    };
    // The address the destination sees is bound inside the cluster, where the relay connects;
    // it means nothing here, so the reply names none.
    local
        .write_all(&reply(reply::SUCCEEDED))
        .await
        .map_err(|e| format!("SOCKS reply: {e}"))?;
    splice(local, remote, &activity.bytes, LINGER, &())
        .await
        .map_err(|e| format!("with {target}: {e}"))
}

/// Reads the greeting and the request; answers the greeting. Reads byte for byte what the
/// protocol says, never more, so bytes the client sends on at once stay for the splice.
async fn handshake(local: &mut TcpStream) -> std::io::Result<Asked> {
    match local.read_u8().await? {
        VERSION => {}
        // SOCKS4 and 4a get SOCKS4's own rejection, so such a client says why it failed.
        // Its fixed part is read first (command, port, IPv4 address) so that the answer is
        // not lost to a reset; the rest is left to `last_words`.
        SOCKS4 => {
            let mut fixed = [0u8; 7];
            local.read_exact(&mut fixed).await?;
            return Ok(Asked::Refuse(Refusal::Socks4));
        }
        other => return Err(invalid(format!("not SOCKS5 (version byte {other:#04x})"))),
    }
    let count = local.read_u8().await?;
    let mut methods = vec![0u8; usize::from(count)];
    local.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTH) {
        return Ok(Asked::Refuse(Refusal::NoAcceptableMethod));
    }
    local.write_all(&[VERSION, NO_AUTH]).await?;

    let mut head = [0u8; 4];
    local.read_exact(&mut head).await?;
    let [version, command, _reserved, address_type] = head;
    if version != VERSION {
        return Err(invalid(format!(
            "request of version {version:#04x}, not SOCKS5"
        )));
    }
    let host = match address_type {
        ATYP_IPV4 => {
            let mut ip = [0u8; 4];
            local.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string()
        }
        ATYP_IPV6 => {
            let mut ip = [0u8; 16];
            local.read_exact(&mut ip).await?;
            Ipv6Addr::from(ip).to_string()
        }
        ATYP_DOMAIN => {
            let len = local.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            local.read_exact(&mut name).await?;
            match String::from_utf8(name) {
                Ok(name) if !name.is_empty() => name,
                _ => {
                    return Ok(Asked::Refuse(Refusal::Reply(
                        reply::ADDRESS_TYPE_NOT_SUPPORTED,
                        "an empty or non-UTF-8 host name".into(),
                    )));
                }
            }
        }
        other => {
            // The address's length is unknown, so nothing more can be read.
            return Ok(Asked::Refuse(Refusal::Reply(
                reply::ADDRESS_TYPE_NOT_SUPPORTED,
                format!("address type {other:#04x}"),
            )));
        }
    };
    let port = local.read_u16().await?;
    if command != CONNECT {
        return Ok(Asked::Refuse(Refusal::Reply(
            reply::COMMAND_NOT_SUPPORTED,
            format!("SOCKS command {command:#04x} (only CONNECT is supported)"),
        )));
    }
    Ok(Asked::Connect(Target { host, port }))
}

fn invalid(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why)
}

/// A SOCKS5 reply with `code`, whose bound address is 0.0.0.0:0.
fn reply(code: u8) -> [u8; 10] {
    [VERSION, code, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0]
}

fn reply_code(error: &DialError) -> u8 {
    match error {
        DialError::NotFound(_) => reply::HOST_UNREACHABLE,
        DialError::Unreachable(_) => reply::NETWORK_UNREACHABLE,
        DialError::Refused(_) => reply::CONNECTION_REFUSED,
        DialError::TimedOut(_) => reply::TTL_EXPIRED,
        DialError::Other(_) => reply::GENERAL_FAILURE,
    }
}

/// Sends a refusal and closes: the write side first, then whatever the client still sends is
/// read away for a moment, so the close does not become a reset that loses the refusal.
async fn last_words(mut local: TcpStream, answer: &[u8]) {
    if local.write_all(answer).await.is_err() || local.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(LAST_WORDS, async {
        let mut sink = [0u8; 512];
        while matches!(local.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Activity, Kind};
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;

    /// Greets with NO AUTH and checks the method chosen.
    async fn greet(proxy: SocketAddr) -> TcpStream {
        let mut client = TcpStream::connect(proxy).await.unwrap();
        client.write_all(&[5, 1, 0]).await.unwrap();
        let mut chosen = [0u8; 2];
        client.read_exact(&mut chosen).await.unwrap();
        assert_eq!(chosen, [5, 0]);
        client
    }

    /// Sends a request with `command` and `address` (ATYP byte first), returns the reply code.
    async fn request(client: &mut TcpStream, command: u8, address: &[u8], port: u16) -> u8 {
        let mut req = vec![5, command, 0];
        req.extend_from_slice(address);
        req.extend_from_slice(&port.to_be_bytes());
        client.write_all(&req).await.unwrap();
        let mut answer = [0u8; 10];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer[0], 5);
        assert_eq!(answer[3..], [ATYP_IPV4, 0, 0, 0, 0, 0, 0]);
        answer[1]
    }

    fn domain(name: &str) -> Vec<u8> {
        let mut address = vec![ATYP_DOMAIN, name.len() as u8];
        address.extend_from_slice(name.as_bytes());
        address
    }

    #[tokio::test]
    async fn curl_socks5h_reaches_a_service_by_its_cluster_name() {
        let proxy = start(Kind::Socks).await;
        let (code, out, err) = curl(&[
            "--proxy",
            &format!("socks5h://{}", proxy.addr),
            &format!("http://{WEB}:{}/hello?x=1", proxy.web.port()),
        ])
        .await;
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with("GET /hello?x=1 host="), "{out}");
        let asked = proxy.dialer.asked.lock().unwrap().clone();
        assert_eq!(
            asked,
            [Target {
                host: WEB.into(),
                port: proxy.web.port()
            }]
        );
        assert!(proxy.activity.bytes.bytes_in.load(Ordering::Relaxed) > 0);
    }

    #[tokio::test]
    async fn curl_fails_on_an_unknown_host_with_a_socks_error() {
        let proxy = start(Kind::Socks).await;
        let (code, _, err) = curl(&[
            "--proxy",
            &format!("socks5h://{}", proxy.addr),
            "http://nowhere.demo.svc.cluster.local/",
        ])
        .await;
        // CURLE_PROXY: the SOCKS5 proxy answered with an error code.
        assert_eq!(code, 97, "{err}");
        // curl 7.x names the reply code, later ones its meaning.
        assert!(
            err.contains("(4)") || err.contains("Host unreachable"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn echoes_a_mebibyte_by_ipv4_and_by_name() {
        let proxy = start(Kind::Socks).await;
        let port = proxy.echo.port();
        for address in [vec![ATYP_IPV4, 127, 0, 0, 1], domain("echo")] {
            let mut client = greet(proxy.addr).await;
            assert_eq!(request(&mut client, CONNECT, &address, port).await, 0);
            let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
            let (mut read, mut write) = client.into_split();
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                write.write_all(&sent).await.unwrap();
                write.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            read.read_to_end(&mut got).await.unwrap();
            writer.await.unwrap();
            assert!(got == data, "the echo differs");
        }
        let asked = proxy.dialer.asked.lock().unwrap().clone();
        assert_eq!(asked[0].host, "127.0.0.1");
        assert_eq!(asked[1].host, "echo");
        assert!(proxy.activity.bytes.bytes_out.load(Ordering::Relaxed) >= 2 << 20);
        assert_eq!(proxy.activity.total_connections.load(Ordering::Relaxed), 2);
        assert_eq!(proxy.activity.failed_connections.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn bytes_sent_right_after_the_request_are_carried() {
        let proxy = start(Kind::Socks).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        let mut all = vec![5, 1, 0, 5, 1, 0];
        all.extend(domain("echo"));
        all.extend(proxy.echo.port().to_be_bytes());
        all.extend(b"early");
        client.write_all(&all).await.unwrap();
        let mut answer = [0u8; 2 + 10 + 5];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer[..2], [5, 0]);
        assert_eq!(answer[2..4], [5, 0]);
        assert_eq!(&answer[12..], b"early");
    }

    #[tokio::test]
    async fn ipv6_addresses_reach_the_dialer_as_text() {
        let proxy = start(Kind::Socks).await;
        let mut client = greet(proxy.addr).await;
        let mut address = vec![ATYP_IPV6];
        address.extend(Ipv6Addr::LOCALHOST.octets());
        // The test dialer knows no such name.
        assert_eq!(
            request(&mut client, CONNECT, &address, 8080).await,
            reply::HOST_UNREACHABLE
        );
        let asked = proxy.dialer.asked.lock().unwrap().clone();
        assert_eq!(
            asked,
            [Target {
                host: "::1".into(),
                port: 8080
            }]
        );
    }

    #[tokio::test]
    async fn dial_errors_become_their_reply_codes() {
        let proxy = start(Kind::Socks).await;
        for (name, code) in [
            ("nowhere", reply::HOST_UNREACHABLE),
            ("refused", reply::CONNECTION_REFUSED),
            ("slow", reply::TTL_EXPIRED),
            ("nonet", reply::NETWORK_UNREACHABLE),
            ("broken", reply::GENERAL_FAILURE),
        ] {
            let mut client = greet(proxy.addr).await;
            assert_eq!(request(&mut client, CONNECT, &domain(name), 80).await, code);
            // Then the proxy closes.
            assert_eq!(client.read(&mut [0u8; 8]).await.unwrap(), 0);
        }
        settles_at(&proxy.activity.failed_connections, 5).await;
    }

    #[tokio::test]
    async fn bind_and_udp_associate_are_not_supported() {
        let proxy = start(Kind::Socks).await;
        for command in [0x02, 0x03] {
            let mut client = greet(proxy.addr).await;
            let code = request(&mut client, command, &domain("echo"), 7).await;
            assert_eq!(code, reply::COMMAND_NOT_SUPPORTED);
        }
        assert!(proxy.dialer.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_address_type_is_not_supported() {
        let proxy = start(Kind::Socks).await;
        let mut client = greet(proxy.addr).await;
        client.write_all(&[5, 1, 0, 0x09]).await.unwrap();
        let mut answer = [0u8; 10];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer[1], reply::ADDRESS_TYPE_NOT_SUPPORTED);
    }

    #[tokio::test]
    async fn authentication_only_offers_are_refused() {
        let proxy = start(Kind::Socks).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        // Offers GSSAPI and username/password only.
        client.write_all(&[5, 2, 1, 2]).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, [5, 0xFF]);
    }

    #[tokio::test]
    async fn socks4_gets_a_socks4_rejection() {
        let proxy = start(Kind::Socks).await;
        let mut client = TcpStream::connect(proxy.addr).await.unwrap();
        // SOCKS4a CONNECT to echo:7, user "me".
        client
            .write_all(b"\x04\x01\x00\x07\x00\x00\x00\x01me\x00echo\x00")
            .await
            .unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, [0, 0x5B, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn a_silent_client_is_cut_after_the_handshake_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (mut client, local) = (client.unwrap(), accepted.unwrap().0);
        let dialer = std::sync::Arc::new(TestDialerStub);
        let activity = Activity::default();
        let patience = Duration::from_millis(300);
        let started = tokio::time::Instant::now();
        let serving = serve_connection(local, &*dialer, &activity, patience);
        // Half a greeting, then nothing.
        client.write_all(&[5]).await.unwrap();
        let result = serving.await;
        assert!(
            result
                .unwrap_err()
                .contains("no SOCKS request within 300ms")
        );
        assert!(started.elapsed() >= patience);
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
    }

    struct TestDialerStub;

    impl ProxyDial for TestDialerStub {
        fn dial(
            &self,
            to: Target,
        ) -> futures::future::BoxFuture<'static, Result<super::super::ProxyStream, DialError>>
        {
            Box::pin(async move { Err(DialError::NotFound(to.host)) })
        }
    }
}
