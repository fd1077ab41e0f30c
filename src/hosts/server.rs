//! kftray-helper's service: a root-owned unix socket, one connection per kftray run, and
//! what each connection set up undone when it closes.

use crate::hosts::claims::Claims;
use crate::hosts::client::default_socket;
use crate::hosts::hosts_file::default_hosts_file;
use crate::hosts::ports;
use crate::hosts::protocol::{
    self, ErrorKind, MAX_LINE, PROTOCOL, Refusal, Reply, Request, VERSION,
};
use std::fs;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tracing::{info, warn};

pub use crate::hosts::hosts_file::HostsError;

/// How to run the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// The unix socket to listen on.
    pub socket: PathBuf,
    /// The hosts file whose kftray block the helper owns.
    pub hosts_file: PathBuf,
    /// The one user (besides root) the helper serves.
    pub allowed_uid: u32,
}

impl ServeOptions {
    /// The defaults (honouring `KFTRAY_HELPER_SOCKET` and `KFTRAY_HOSTS_FILE`) for a user.
    pub fn new(allowed_uid: u32) -> Self {
        ServeOptions {
            socket: default_socket(),
            hosts_file: default_hosts_file(),
            allowed_uid,
        }
    }
}

/// Why the helper cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A live helper answers at the socket already.
    #[error("another kftray-helper is already serving {}: stop it first", socket.display())]
    AlreadyRunning {
        /// The socket.
        socket: PathBuf,
    },
    /// Something other than a socket is in the way.
    #[error(
        "{} exists and is not a socket: remove it, or give another --socket",
        socket.display()
    )]
    NotASocket {
        /// The path.
        socket: PathBuf,
    },
    /// The socket could not be set up.
    #[error("cannot listen on {}: {source}", socket.display())]
    Listen {
        /// The socket.
        socket: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The hosts file could not be cleaned.
    #[error(transparent)]
    Hosts(#[from] HostsError),
}

/// Whether a peer may talk to the helper: the user it serves, or root.
pub fn allowed(peer_uid: u32, allowed_uid: u32) -> bool {
    peer_uid == allowed_uid || peer_uid == 0
}

/// Runs the helper until `stop` completes, then removes every entry and alias it holds and
/// its socket file.
pub async fn serve(
    options: ServeOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    Server::start(options).await?.run(stop).await
}

/// A helper that listens and has emptied the kftray block, not yet serving: lets a caller
/// (a test) know the socket exists before it connects.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    options: ServeOptions,
    claims: Arc<Mutex<Claims>>,
}

impl Server {
    /// Listens on the socket, readable and writable by the served user and root only, and
    /// empties the kftray block: at start no connection can own anything yet, which also
    /// cleans up after a helper that crashed.
    pub async fn start(options: ServeOptions) -> Result<Server, ServeError> {
        let socket = &options.socket;
        let listen_error = |source| ServeError::Listen {
            socket: socket.clone(),
            source,
        };
        remove_stale_socket(socket)?;
        let listener = UnixListener::bind(socket).map_err(listen_error)?;
        // Between bind and chmod the socket has the umask's mode; a stranger connecting in
        // that instant is still turned away by the peer check.
        fs::set_permissions(socket, fs::Permissions::from_mode(0o600)).map_err(listen_error)?;
        std::os::unix::fs::chown(socket, Some(options.allowed_uid), None).map_err(listen_error)?;
        let mut claims = Claims::new(options.hosts_file.clone());
        claims.forget_all()?;
        info!(
            socket = %socket.display(),
            hosts_file = %options.hosts_file.display(),
            uid = options.allowed_uid,
            "kftray-helper {VERSION} serving"
        );
        Ok(Server {
            listener,
            options,
            claims: Arc::new(Mutex::new(claims)),
        })
    }

    /// Serves connections until `stop` completes, then undoes everything.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), ServeError> {
        let mut connections = JoinSet::new();
        let mut next_id: u64 = 0;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        next_id += 1;
                        let claims = Arc::clone(&self.claims);
                        let allowed_uid = self.options.allowed_uid;
                        connections.spawn(connection(claims, next_id, stream, allowed_uid));
                    }
                    Err(e) => warn!("accepting a connection: {e}"),
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        // Cancelled tasks never hold the lock: they do not await while holding it.
        connections.shutdown().await;
        let result = lock(&self.claims).forget_all();
        if let Err(e) = fs::remove_file(&self.options.socket) {
            warn!("removing {}: {e}", self.options.socket.display());
        }
        info!("kftray-helper stopped");
        result.map_err(ServeError::from)
    }
}

/// Removes the socket file a previous helper left, unless a helper still answers there.
fn remove_stale_socket(socket: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::FileTypeExt;
    let listen_error = |source| ServeError::Listen {
        socket: socket.into(),
        source,
    };
    match fs::symlink_metadata(socket) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(listen_error(source)),
        Ok(meta) if !meta.file_type().is_socket() => Err(ServeError::NotASocket {
            socket: socket.into(),
        }),
        Ok(_) if std::os::unix::net::UnixStream::connect(socket).is_ok() => {
            Err(ServeError::AlreadyRunning {
                socket: socket.into(),
            })
        }
        Ok(_) => fs::remove_file(socket).map_err(listen_error),
    }
}

fn lock(claims: &Mutex<Claims>) -> MutexGuard<'_, Claims> {
    // A panic elsewhere leaves the map as consistent as any failed write does.
    claims
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The peer's uid and, where the OS tells it, pid.
fn peer(stream: &UnixStream) -> io::Result<(u32, Option<i32>)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let credentials =
            nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)?;
        Ok((credentials.uid(), Some(credentials.pid())))
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    {
        let (uid, _) = nix::unistd::getpeereid(stream)?;
        Ok((uid.as_raw(), None))
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    )))]
    {
        let _ = stream;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "kftray-helper cannot tell who connected on this operating system",
        ))
    }
}

/// One kftray run: serves its requests, and undoes what it set up when it goes.
async fn connection(claims: Arc<Mutex<Claims>>, id: u64, mut stream: UnixStream, allowed_uid: u32) {
    let (uid, pid) = match peer(&stream) {
        Ok(peer) => peer,
        Err(e) => {
            warn!(connection = id, "cannot tell who connected, refusing: {e}");
            return;
        }
    };
    if !allowed(uid, allowed_uid) {
        warn!(
            connection = id,
            uid, "refused: this helper serves uid {allowed_uid}"
        );
        let refusal = Refusal::new(
            ErrorKind::Forbidden,
            format!("this kftray-helper serves uid {allowed_uid}, not uid {uid}"),
        );
        let _ = send(&mut stream, &refusal.into(), None).await;
        return;
    }
    info!(connection = id, uid, pid, "connected");
    lock(&claims).connected(id, pid);
    let mut buffer = Vec::with_capacity(4096);
    let mut greeted = false;
    loop {
        let line = match read_line(&mut stream, &mut buffer).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                warn!(connection = id, "reading: {e}");
                break;
            }
        };
        let (reply, fd, close) = match serde_json::from_slice::<Request>(&line) {
            Ok(request) => handle(&claims, id, &mut greeted, request),
            Err(e) => {
                let refusal = Refusal::new(ErrorKind::Protocol, format!("not a request: {e}"));
                (refusal.into(), None, false)
            }
        };
        if let Err(e) = send(&mut stream, &reply, fd).await {
            warn!(connection = id, "replying: {e}");
            break;
        }
        if close {
            break;
        }
    }
    lock(&claims).forget(id);
    info!(connection = id, "closed");
}

/// One request: the reply, the descriptor to send with it, and whether to hang up after.
fn handle(
    claims: &Mutex<Claims>,
    id: u64,
    greeted: &mut bool,
    request: Request,
) -> (Reply, Option<OwnedFd>, bool) {
    let kind = request.kind();
    let result = match request {
        Request::Hello { protocol, version } => {
            info!(connection = id, protocol, %version, "hello");
            if *greeted {
                Err(Refusal::new(ErrorKind::Protocol, "hello was already said"))
            } else if protocol != PROTOCOL {
                warn!(connection = id, protocol, %version, "refused: protocol {PROTOCOL} spoken here");
                let refusal = Refusal::new(
                    ErrorKind::Version,
                    format!("kftray-helper {VERSION}, protocol {PROTOCOL}"),
                );
                return (refusal.into(), None, true);
            } else {
                *greeted = true;
                let hello = Reply::Hello {
                    protocol: PROTOCOL,
                    version: VERSION.into(),
                };
                return (hello, None, false);
            }
        }
        _ if !*greeted => Err(Refusal::new(
            ErrorKind::Protocol,
            format!("{kind} before hello: say hello first"),
        )),
        Request::SetEntries { entries } => {
            let names: Vec<String> = entries.iter().map(ToString::to_string).collect();
            info!(connection = id, entries = ?names, "set_entries");
            lock(claims).set_entries(id, entries)
        }
        Request::AddAlias { address } => {
            info!(connection = id, %address, "add_alias");
            lock(claims).add_alias(id, address)
        }
        Request::RemoveAlias { address } => {
            info!(connection = id, %address, "remove_alias");
            lock(claims).remove_alias(id, address)
        }
        Request::Bind { address, protocol } => {
            info!(connection = id, %address, %protocol, "bind");
            match ports::bind(address, protocol) {
                Ok(fd) => return (Reply::Bound, Some(fd), false),
                Err(refusal) => Err(refusal),
            }
        }
    };
    match result {
        Ok(()) => (Reply::Ok, None, false),
        Err(refusal) => {
            info!(connection = id, request = kind, "refused: {refusal}");
            (refusal.into(), None, false)
        }
    }
}

async fn read_line(stream: &mut UnixStream, buffer: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(line) = protocol::take_line(buffer) {
            return Ok(Some(line));
        }
        if buffer.len() > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a line longer than any request",
            ));
        }
        buffer.reserve(4096);
        if stream.read_buf(buffer).await? == 0 {
            return Ok(None);
        }
    }
}

/// Sends a reply, with the descriptor a `Bound` reply carries.
async fn send(stream: &mut UnixStream, reply: &Reply, fd: Option<OwnedFd>) -> io::Result<()> {
    let line = protocol::encode(reply);
    match fd {
        Some(fd) => ports::send_with_fd(stream, &line, fd).await,
        None => stream.write_all(&line).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::block::{BEGIN, END};
    use crate::hosts::client::{HelperClient, HelperError};
    use crate::hosts::protocol::entry;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;
    use tokio::io::AsyncBufReadExt;
    use tokio::sync::oneshot;

    const ORIGINAL: &str = "127.0.0.1\tlocalhost\n# a comment\n10.0.0.5 nas.home nas\n";

    struct Helper {
        dir: tempfile::TempDir,
        socket: PathBuf,
        hosts: PathBuf,
        stop: Option<oneshot::Sender<()>>,
        task: Option<tokio::task::JoinHandle<Result<(), ServeError>>>,
    }

    impl Helper {
        async fn start(hosts_text: &str) -> Helper {
            let dir = tempfile::tempdir().unwrap();
            let hosts = dir.path().join("hosts");
            fs::write(&hosts, hosts_text).unwrap();
            let socket = dir.path().join("helper.sock");
            let mut helper = Helper {
                dir,
                socket,
                hosts,
                stop: None,
                task: None,
            };
            helper.restart().await;
            helper
        }

        async fn restart(&mut self) {
            let options = ServeOptions {
                socket: self.socket.clone(),
                hosts_file: self.hosts.clone(),
                allowed_uid: nix::unistd::geteuid().as_raw(),
            };
            let server = Server::start(options).await.unwrap();
            let (stop, stopped) = oneshot::channel();
            self.stop = Some(stop);
            self.task = Some(tokio::spawn(server.run(async {
                let _ = stopped.await;
            })));
        }

        async fn stop(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(task) = self.task.take() {
                task.await.unwrap().unwrap();
            }
        }

        async fn client(&self) -> HelperClient {
            HelperClient::connect(&self.socket).await.unwrap()
        }

        fn text(&self) -> String {
            fs::read_to_string(&self.hosts).unwrap()
        }

        /// Waits up to 2 s for the hosts file to read `expected`.
        async fn wait_for(&self, expected: &str) {
            for _ in 0..200 {
                if self.text() == expected {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(self.text(), expected);
        }
    }

    fn with_block(lines: &[&str]) -> String {
        let mut text = format!("{ORIGINAL}{BEGIN}\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(END);
        text.push('\n');
        text
    }

    fn refusal(result: Result<(), HelperError>) -> String {
        match result {
            Err(HelperError::Refused(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn entries_follow_their_connection() {
        let mut helper = Helper::start(ORIGINAL).await;
        let mut client = helper.client().await;
        client
            .set_entries(vec![
                entry("127.0.0.2", "API.svc.local"),
                entry("127.0.0.3", "db.local"),
                entry("127.0.0.3", "db.local"),
            ])
            .await
            .unwrap();
        assert_eq!(
            helper.text(),
            with_block(&["127.0.0.2\tapi.svc.local", "127.0.0.3\tdb.local"])
        );
        let backup = helper.dir.path().join("hosts.kftray-backup");
        assert_eq!(fs::read_to_string(&backup).unwrap(), ORIGINAL);
        assert_eq!(
            fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
            0o644
        );

        // A subset removes the rest.
        client
            .set_entries(vec![entry("127.0.0.3", "db.local")])
            .await
            .unwrap();
        assert_eq!(helper.text(), with_block(&["127.0.0.3\tdb.local"]));

        // A second run cannot take a name the first one holds, and writes nothing.
        let mut other = helper.client().await;
        let message = refusal(
            other
                .set_entries(vec![
                    entry("127.0.0.9", "web.local"),
                    entry("127.0.0.3", "DB.local"),
                ])
                .await,
        );
        assert!(
            message.contains("db.local is already claimed by another running kftray"),
            "{message}"
        );
        assert_eq!(helper.text(), with_block(&["127.0.0.3\tdb.local"]));
        other
            .set_entries(vec![entry("127.0.0.9", "web.local")])
            .await
            .unwrap();
        assert_eq!(
            helper.text(),
            with_block(&["127.0.0.3\tdb.local", "127.0.0.9\tweb.local"])
        );

        // Closing a connection removes its entries, and only its.
        drop(client);
        helper
            .wait_for(&with_block(&["127.0.0.9\tweb.local"]))
            .await;
        drop(other);
        helper.wait_for(ORIGINAL).await;
        helper.stop().await;
        assert!(!helper.socket.exists());
    }

    #[tokio::test]
    async fn names_the_file_has_or_bad_requests_are_refused_whole() {
        let mut helper = Helper::start(ORIGINAL).await;
        let mut client = helper.client().await;
        let message = refusal(
            client
                .set_entries(vec![
                    entry("127.0.0.2", "ok.local"),
                    entry("127.0.0.3", "NAS"),
                ])
                .await,
        );
        let hosts = helper.hosts.display();
        assert_eq!(
            message,
            format!(
                "nas is already in {hosts}, line 3, which kftray did not write: kftray will not shadow it"
            )
        );
        assert_eq!(helper.text(), ORIGINAL);
        assert!(!helper.dir.path().join("hosts.kftray-backup").exists());

        for (entries, expected) in [
            (vec![entry("10.0.0.1", "x.local")], "not a loopback address"),
            (
                vec![entry("127.0.0.1", "localhost")],
                "own name for loopback",
            ),
            (
                vec![entry("127.0.0.1", "bad_name")],
                "not a valid host name",
            ),
            (
                vec![entry("127.0.0.1", "twice"), entry("127.0.0.2", "Twice")],
                "twice is asked for twice",
            ),
        ] {
            let message = refusal(client.set_entries(entries).await);
            assert!(message.contains(expected), "{message}");
        }
        assert_eq!(helper.text(), ORIGINAL);
        // The connection is still good after refusals.
        client.set_entries(vec![]).await.unwrap();
        helper.stop().await;
    }

    #[tokio::test]
    async fn a_starting_helper_empties_a_stale_block() {
        let stale = with_block(&["127.0.0.4\tleft.over"]);
        let mut helper = Helper::start(&stale).await;
        assert_eq!(helper.text(), ORIGINAL);
        assert_eq!(
            fs::read_to_string(helper.dir.path().join("hosts.kftray-backup")).unwrap(),
            stale
        );

        // Stopping empties the block too, and a restart on the same socket works.
        let mut client = helper.client().await;
        client
            .set_entries(vec![entry("127.0.0.4", "again.local")])
            .await
            .unwrap();
        helper.stop().await;
        assert_eq!(helper.text(), ORIGINAL);
        helper.restart().await;
        helper.client().await;
        helper.stop().await;
    }

    #[tokio::test]
    async fn a_damaged_block_is_reported_and_left_alone() {
        let damaged = format!("{ORIGINAL}{BEGIN}\n127.0.0.4\tx\n");
        let mut helper = Helper::start(&damaged).await;
        let mut client = helper.client().await;
        let message = refusal(
            client
                .set_entries(vec![entry("127.0.0.2", "a.local")])
                .await,
        );
        assert!(message.contains("has no end marker (line 4)"), "{message}");
        assert_eq!(helper.text(), damaged);
        helper.stop().await;
    }

    #[tokio::test]
    async fn wrong_protocol_and_garbage_get_error_replies() {
        let mut helper = Helper::start(ORIGINAL).await;
        let stream = UnixStream::connect(&helper.socket).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        write.write_all(b"this is not json\n").await.unwrap();
        let reply: Reply =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert!(
            matches!(
                reply,
                Reply::Error {
                    kind: ErrorKind::Protocol,
                    ..
                }
            ),
            "{reply:?}"
        );
        write
            .write_all(&protocol::encode(&Request::AddAlias {
                address: "127.0.0.2".parse().unwrap(),
            }))
            .await
            .unwrap();
        let reply: Reply =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert!(
            matches!(&reply, Reply::Error { kind: ErrorKind::Protocol, message } if message.contains("say hello first")),
            "{reply:?}"
        );
        write
            .write_all(&protocol::encode(&Request::Hello {
                protocol: PROTOCOL + 1,
                version: "9.9.9".into(),
            }))
            .await
            .unwrap();
        let reply: Reply =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(
            reply,
            Reply::Error {
                kind: ErrorKind::Version,
                message: format!("kftray-helper {VERSION}, protocol {PROTOCOL}"),
            }
        );
        // And the helper hangs up.
        assert_eq!(lines.next_line().await.unwrap(), None);
        helper.stop().await;
    }

    #[tokio::test]
    async fn a_second_helper_on_a_live_socket_refuses_to_start() {
        let mut helper = Helper::start(ORIGINAL).await;
        let options = ServeOptions {
            socket: helper.socket.clone(),
            hosts_file: helper.hosts.clone(),
            allowed_uid: 0,
        };
        let err = Server::start(options).await.unwrap_err();
        assert!(matches!(err, ServeError::AlreadyRunning { .. }), "{err}");
        helper.stop().await;
    }

    #[tokio::test]
    async fn aliases_are_accepted_on_linux() {
        let mut helper = Helper::start(ORIGINAL).await;
        let mut client = helper.client().await;
        let address: IpAddr = "127.0.0.7".parse().unwrap();
        if cfg!(target_os = "linux") {
            client.add_alias(address).await.unwrap();
            client.remove_alias(address).await.unwrap();
            let message = refusal(client.remove_alias(address).await);
            assert!(
                message.contains("not a loopback alias this run added"),
                "{message}"
            );
        }
        let message = refusal(client.add_alias("10.1.1.1".parse().unwrap()).await);
        assert!(message.contains("not a loopback address"), "{message}");
        helper.stop().await;
    }

    #[tokio::test]
    async fn low_ports_come_back_bound() {
        let mut helper = Helper::start(ORIGINAL).await;
        let mut client = helper.client().await;
        let message = match client.bind_tcp("127.0.0.1:8080".parse().unwrap()).await {
            Err(HelperError::Refused(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(
            message.contains("port 8080 needs no privilege"),
            "{message}"
        );

        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root: the helper cannot bind low ports, skipping that part");
            helper.stop().await;
            return;
        }
        // A free low port on a loopback address nothing else uses.
        let ip: IpAddr = "127.83.41.9".parse().unwrap();
        let mut listener = None;
        for port in 900..1000 {
            match client.bind_tcp(SocketAddr::new(ip, port)).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(HelperError::Refused(message)) if message.contains("in use") => {}
                Err(e) => panic!("{e}"),
            }
        }
        let listener = listener.expect("a free port below 1000");
        let address = listener.local_addr().unwrap();
        assert_eq!(address.ip(), ip);
        let dialer = std::thread::spawn(move || std::net::TcpStream::connect(address).unwrap());
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, dialer.join().unwrap().local_addr().unwrap());
        // The same port again is in use: the helper's copy is closed but ours listens.
        let message = match client.bind_tcp(address).await {
            Err(HelperError::Refused(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(message.contains("already in use"), "{message}");

        let udp = client
            .bind_udp(SocketAddr::new(ip, address.port()))
            .await
            .unwrap();
        let sender = std::net::UdpSocket::bind((ip, 0)).unwrap();
        sender.send_to(b"ping", udp.local_addr().unwrap()).unwrap();
        let mut buffer = [0u8; 8];
        let (read, from) = udp.recv_from(&mut buffer).unwrap();
        assert_eq!(
            (&buffer[..read], from),
            (&b"ping"[..], sender.local_addr().unwrap())
        );
        helper.stop().await;
    }

    #[test]
    fn only_the_served_user_and_root_are_allowed() {
        assert!(allowed(1000, 1000));
        assert!(allowed(0, 1000));
        assert!(!allowed(12345, 1000));
        assert!(!allowed(1000, 12345));
    }
}
