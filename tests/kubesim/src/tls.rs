//! The cluster's test CA: it signs the API server's certificate and the client certificates
//! that authenticate users (CN = user name), as a kubeadm cluster's CA does.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

/// A client certificate and its key, both PEM, as a kubeconfig user carries them.
#[derive(Clone, Debug)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl Authority {
    pub fn new() -> anyhow::Result<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name.push(DnType::CommonName, "kubesim-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let mut server = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes.default.svc".to_string(),
        ])?;
        server
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &issuer)?;
        Ok(Self {
            issuer,
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
        })
    }

    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Signs a client certificate whose CN is `user`, as `kubeadm kubeconfig user` does.
    pub fn client_cert(&self, user: &str) -> anyhow::Result<ClientCert> {
        self.sign(user, None, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A client certificate for `user` in `group` (its O field, as Kubernetes reads it).
    pub fn client_cert_in(&self, user: &str, group: &str) -> anyhow::Result<ClientCert> {
        self.sign(user, Some(group), &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A serving certificate for these DNS names and IP addresses.
    pub fn server_cert(&self, name: &str, sans: &[String]) -> anyhow::Result<ClientCert> {
        self.sign(name, None, sans, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn sign(
        &self,
        cn: &str,
        group: Option<&str>,
        sans: &[String],
        usage: ExtendedKeyUsagePurpose,
    ) -> anyhow::Result<ClientCert> {
        let mut params = CertificateParams::new(sans.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(group) = group {
            params
                .distinguished_name
                .push(DnType::OrganizationName, group);
        }
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }

    /// Server config: a client certificate is optional (bearer tokens work too) but, when
    /// offered, must chain to this CA.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_cert.clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
