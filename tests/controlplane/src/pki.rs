//! Certificates, keys and kubeconfigs for every component and user, from one test CA, as
//! kubeadm lays them out.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use kubesim::Credentials;
use kubesim::kubeconfig::{self, Entry};
use kubesim::tls::{Authority, ClientCert};

/// The user a restricted kubeconfig authenticates as, in the group
/// `examples/relay-rbac.yaml` binds; it has no rights but those that Roles bound to it give.
pub const RESTRICTED_USER: &str = "kftray-dev";
pub const RESTRICTED_GROUP: &str = "developers";

pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
    pub kubelet_cert: PathBuf,
    pub kubelet_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub admin: PathBuf,
    pub restricted: PathBuf,
    pub controller_manager: PathBuf,
    pub kubelet: PathBuf,
}

impl Pki {
    pub fn write(
        dir: &Path,
        server: &str,
        first_service_ip: Ipv4Addr,
        node_ips: &[Ipv4Addr],
    ) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let ca = Authority::new()?;
        let file = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        let pair = |name: &str, c: &ClientCert| -> anyhow::Result<(PathBuf, PathBuf)> {
            Ok((
                file(&format!("{name}.crt"), &c.cert_pem)?,
                file(&format!("{name}.key"), &c.key_pem)?,
            ))
        };
        let mut sans: Vec<String> = [
            "localhost",
            "127.0.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .map(String::from)
        .to_vec();
        sans.push(first_service_ip.to_string());
        let (apiserver_cert, apiserver_key) =
            pair("apiserver", &ca.server_cert("kube-apiserver", &sans)?)?;
        // The API server's identity towards kubelets, as kubeadm's apiserver-kubelet-client.
        let (kubelet_client_cert, kubelet_client_key) = pair(
            "apiserver-kubelet-client",
            &ca.client_cert_in("kube-apiserver-kubelet-client", "system:masters")?,
        )?;
        let kubelet_sans: Vec<String> = node_ips.iter().map(ToString::to_string).collect();
        let (kubelet_cert, kubelet_key) =
            pair("kubelet", &ca.server_cert("kubelet", &kubelet_sans)?)?;
        // Service account tokens are signed with a key of their own (ECDSA P-256: ES256).
        let sa = rcgen::KeyPair::generate()?;
        let sa_key = file("sa.key", &sa.serialize_pem())?;
        let sa_pub = file("sa.pub", &sa.public_key_pem())?;

        let kubeconfig = |name: &str, cert: ClientCert| -> anyhow::Result<PathBuf> {
            let path = dir.join(format!("{name}.kubeconfig"));
            kubeconfig::write(
                &path,
                &[Entry {
                    name: "kftray-test".into(),
                    server: server.into(),
                    ca_pem: ca.ca_pem(),
                    user: Credentials::ClientCert {
                        cert_pem: cert.cert_pem,
                        key_pem: cert.key_pem,
                    },
                    namespace: "default".into(),
                }],
            )?;
            Ok(path)
        };
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca: file("ca.crt", &ca.ca_pem())?,
            apiserver_cert,
            apiserver_key,
            kubelet_client_cert,
            kubelet_client_key,
            kubelet_cert,
            kubelet_key,
            sa_key,
            sa_pub,
            admin: kubeconfig(
                "admin",
                ca.client_cert_in("kubernetes-admin", "system:masters")?,
            )?,
            restricted: kubeconfig(
                "restricted",
                ca.client_cert_in(RESTRICTED_USER, RESTRICTED_GROUP)?,
            )?,
            controller_manager: kubeconfig(
                "controller-manager",
                ca.client_cert("system:kube-controller-manager")?,
            )?,
            // Both halves of the test kubelet bind pods and write any Node's status, which
            // the Node authorizer would not allow a real kubelet: they act as admins.
            kubelet: kubeconfig(
                "kubelet",
                ca.client_cert_in("kftray-test-kubelet", "system:masters")?,
            )?,
        })
    }
}
