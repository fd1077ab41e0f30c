//! Real git servers for the tests, on ephemeral loopback ports: a team repository (bare, with
//! a work clone to push from), `git daemon`, and `git http-backend` behind nginx and fcgiwrap
//! demanding Basic auth; sshd; and a Secret Service (gnome-keyring) on a private D-Bus.

use super::{TIMEOUT, git};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `team.git` (bare) under a folder that servers export, and a clone that pushes to it.
pub struct TeamRepo {
    pub dir: tempfile::TempDir,
}

impl TeamRepo {
    pub fn new(text: &str) -> TeamRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = TeamRepo { dir };
        let base = repo.base();
        std::fs::create_dir_all(&base).unwrap();
        git(&base, &["init", "-q", "--bare", "-b", "main", "team.git"]);
        git(
            repo.dir.path(),
            &[
                "clone",
                "-q",
                base.join("team.git").to_str().unwrap(),
                "work",
            ],
        );
        git(&repo.work(), &["checkout", "-q", "-b", "main"]);
        repo.push(text);
        repo
    }

    /// The folder the servers export (`team.git` is in it).
    pub fn base(&self) -> PathBuf {
        self.dir.path().join("srv")
    }

    pub fn bare(&self) -> PathBuf {
        self.base().join("team.git")
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Commits kftray.toml with `text` and pushes it; returns the commit id.
    pub fn push(&self, text: &str) -> String {
        self.push_file("kftray.toml", text)
    }

    pub fn push_file(&self, path: &str, text: &str) -> String {
        let work = self.work();
        let file = work.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "--allow-empty", "-m", "change"]);
        git(&work, &["push", "-q", "origin", "main"]);
        git(&work, &["rev-parse", "HEAD"])
    }
}

/// A server certificate for 127.0.0.1 from a CA of its own, written to `ca_file`, as a
/// company's internal git server has: (certificate PEM, key PEM).
fn private_ca_certificate(ca_file: &Path) -> (String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "kftray test private CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(ca_file, issuer.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `git daemon` exporting a folder over git://.
pub struct GitDaemon {
    child: Option<Child>,
    base: PathBuf,
    pub port: u16,
}

impl GitDaemon {
    pub fn start(base: &Path) -> GitDaemon {
        GitDaemon::start_on(base, free_port())
    }

    pub fn start_on(base: &Path, port: u16) -> GitDaemon {
        let mut child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                base.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port, "git daemon", &mut child);
        GitDaemon {
            child: Some(child),
            base: base.to_path_buf(),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/team.git", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    /// Starts again on the same port (after `stop`).
    pub fn restart(&mut self) {
        *self = GitDaemon::start_on(&self.base.clone(), self.port);
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `git http-backend` behind nginx (through fcgiwrap), which demands Basic auth with one
/// user and token.
pub struct HttpGit {
    nginx: Child,
    fcgiwrap: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    tls: bool,
}

pub const HTTP_USER: &str = "x-access-token";

impl HttpGit {
    pub fn start(base: &Path, token: &str) -> HttpGit {
        HttpGit::start_with(base, token, false)
    }

    /// The same over HTTPS, with a certificate from a CA of its own (`ca_file`).
    pub fn start_tls(base: &Path, token: &str) -> HttpGit {
        HttpGit::start_with(base, token, true)
    }

    fn start_with(base: &Path, token: &str, tls: bool) -> HttpGit {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let listen = if tls {
            let (cert, key) = private_ca_certificate(&d.join("ca.pem"));
            std::fs::write(d.join("server.pem"), cert).unwrap();
            std::fs::write(d.join("server.key"), key).unwrap();
            format!(
                "ssl;\n    ssl_certificate {d}/server.pem;\n    ssl_certificate_key {d}/server.key",
                d = d.display()
            )
        } else {
            String::new()
        };
        for sub in [
            "tmp/body",
            "tmp/fastcgi",
            "tmp/proxy",
            "tmp/uwsgi",
            "tmp/scgi",
            "logs",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(
            d.join("htpasswd"),
            format!("{HTTP_USER}:{{PLAIN}}{token}\n"),
        )
        .unwrap();
        let socket = d.join("fcgi.sock");
        let mut fcgiwrap = Command::new("fcgiwrap")
            .arg("-s")
            .arg(format!("unix:{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fcgiwrap (scripts/test.sh installs it)");
        let deadline = Instant::now() + TIMEOUT;
        while !socket.exists() {
            assert!(Instant::now() < deadline, "fcgiwrap never made its socket");
            if let Ok(Some(status)) = fcgiwrap.try_wait() {
                panic!("fcgiwrap exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let exec_path = super::git(base, &["--exec-path"]);
        let port = free_port();
        // As root, nginx's workers would otherwise run as nobody and be refused fcgiwrap's
        // socket.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        let conf = format!(
            "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {d}/tmp/body;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n\
               proxy_temp_path {d}/tmp/proxy;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
               server {{\n    listen 127.0.0.1:{port} {listen};\n\
                 location / {{\n      auth_basic \"git\";\n      auth_basic_user_file {d}/htpasswd;\n\
                   include /etc/nginx/fastcgi_params;\n\
                   fastcgi_param SCRIPT_FILENAME {exec_path}/git-http-backend;\n\
                   fastcgi_param GIT_PROJECT_ROOT {base};\n\
                   fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n\
                   fastcgi_param PATH_INFO $uri;\n\
                   fastcgi_param REMOTE_USER $remote_user;\n\
                   fastcgi_pass unix:{socket};\n    }}\n  }}\n}}\n",
            d = d.display(),
            base = base.display(),
            socket = socket.display(),
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let mut nginx = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("logs/error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (scripts/test.sh installs it)");
        wait_listening(port, "nginx", &mut nginx);
        HttpGit {
            nginx,
            fcgiwrap,
            dir,
            port,
            tls,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/team.git", self.port)
    }

    /// The CA that signed the HTTPS certificate (PEM), for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        stop(&mut self.nginx);
        stop(&mut self.fcgiwrap);
    }
}

/// A Secret Service (gnome-keyring-daemon) on a D-Bus session bus of its own: the OS keyring
/// as a Linux desktop has it, for `kftray auth` and the keyring step of the credentials.
pub struct SecretService {
    dbus: Child,
    keyring: Child,
    dir: tempfile::TempDir,
}

impl SecretService {
    pub fn start() -> SecretService {
        let dir = tempfile::tempdir().unwrap();
        let bus = format!("unix:path={}", dir.path().join("bus").display());
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={bus}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (scripts/test.sh installs it)");
        let deadline = Instant::now() + TIMEOUT;
        while !dir.path().join("bus").exists() {
            assert!(
                Instant::now() < deadline,
                "dbus-daemon never made its socket"
            );
            if let Ok(Some(status)) = dbus.try_wait() {
                panic!("dbus-daemon exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .envs(SecretService::env_in(dir.path(), &bus))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (scripts/test.sh installs it)");
        // --unlock reads the login keyring's password on stdin (and creates the keyring).
        {
            use std::io::Write;
            let mut stdin = keyring.stdin.take().unwrap();
            stdin.write_all(b"test-keyring-password").unwrap();
        }
        // Until the login keyring is on disk the daemon has no default collection, and a
        // client that stores a secret then gets a creation prompt nobody can answer.
        let login = dir.path().join("home/data/keyrings/login.keyring");
        while !login.exists() {
            assert!(
                Instant::now() < deadline,
                "gnome-keyring-daemon never created its login keyring"
            );
            if let Ok(Some(status)) = keyring.try_wait() {
                panic!("gnome-keyring-daemon exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        SecretService { dbus, keyring, dir }
    }

    fn env_in(dir: &Path, bus: &str) -> Vec<(String, String)> {
        let home = dir.join("home");
        let runtime = dir.join("run");
        for d in [&home, &runtime] {
            std::fs::create_dir_all(d).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), bus.into()),
            ("XDG_RUNTIME_DIR".into(), runtime.display().to_string()),
            (
                "XDG_DATA_HOME".into(),
                home.join("data").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".into(),
                home.join("cache").display().to_string(),
            ),
        ]
    }

    /// What a client process needs to reach this Secret Service.
    pub fn env(&self) -> Vec<(String, String)> {
        let bus = format!("unix:path={}", self.dir.path().join("bus").display());
        SecretService::env_in(self.dir.path(), &bus)
            .into_iter()
            .filter(|(k, _)| k == "DBUS_SESSION_BUS_ADDRESS")
            .collect()
    }

    /// Where gnome-keyring keeps its files (to check what it stored).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("home/data")
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        stop(&mut self.keyring);
        stop(&mut self.dbus);
    }
}

/// OpenSSH's sshd on a loopback port, serving the team repository over ssh:// to one key as
/// the user running the tests, with a client key pair and known_hosts written into a HOME.
pub struct SshGit {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    repo: PathBuf,
    user: String,
}

impl SshGit {
    /// Starts sshd; `home` gets `.ssh/id_ed25519` (the only key it accepts) and, when
    /// `known` is true, `.ssh/known_hosts` naming its host key.
    pub fn start(repo: &Path, home: &Path, known: bool) -> SshGit {
        let dir = tempfile::tempdir().unwrap();
        let keygen = |path: &Path| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "kftray-test", "-f"])
                .arg(path)
                .output()
                .expect("ssh-keygen (scripts/test.sh installs openssh)");
            assert!(out.status.success(), "{out:?}");
        };
        let host_key = dir.path().join("host_key");
        keygen(&host_key);
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        keygen(&ssh.join("id_ed25519"));
        std::fs::copy(
            ssh.join("id_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = free_port();
        if known {
            let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
            let mut fields = host_pub.split_whitespace();
            let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
            std::fs::write(
                ssh.join("known_hosts"),
                format!("[127.0.0.1]:{port} {kind} {key}\n"),
            )
            .unwrap();
        }
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nPidFile {}\n",
                host_key.display(),
                dir.path().join("authorized_keys").display(),
                dir.path().join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // sshd started by root wants its privilege-separation directory.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/sbin/sshd (scripts/test.sh installs openssh-server)");
        wait_listening(port, "sshd", &mut child);
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        SshGit {
            child,
            dir,
            port,
            repo: repo.to_path_buf(),
            user,
        }
    }

    pub fn url(&self) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.repo.display()
        )
    }
}

impl Drop for SshGit {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
