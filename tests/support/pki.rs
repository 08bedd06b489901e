//! A certificate authority made in a test, its server and client certificates, and HTTPS
//! clients that trust it: real TLS on loopback for the webhook's tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gitgate::config::Config;
use gitgate::serve::{AppState, Running, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA made for the test, which signs server and client certificates.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gitgate test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        Pki { ca, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `<name>.crt` and `<name>.key` for `localhost` and 127.0.0.1; returns the DER.
    pub fn issue(&self, name: &str, common_name: &str) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        // Write the key first, then the certificate, as a rotation would, through a rename so
        // that no reader sees half a file.
        for (file, text) in [
            (format!("{name}.key"), key.serialize_pem()),
            (format!("{name}.crt"), cert.pem()),
        ] {
            let tmp = self.path(&format!(".{file}.tmp"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, self.path(&file)).unwrap();
        }
        cert.der().to_vec()
    }

    /// Serves `state` over TLS on a loopback port with the `server` certificate (issue it
    /// first), requiring client certificates when `config` names a client CA.
    pub async fn serve(&self, state: AppState, config: &Config) -> Running {
        gitgate::serve::start(
            Arc::new(state),
            "127.0.0.1:0",
            self.files(config.server.client_ca.is_some()),
            config.server.max_body_bytes,
        )
        .await
        .expect("the server starts")
    }

    pub fn files(&self, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.crt"),
            key: self.path("server.key"),
            client_ca: client_ca.then(|| self.path("ca.crt")),
        }
    }

    pub fn client(&self, identity: Option<&str>) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.rustls_client(identity))
            .tls_info(true)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// A rustls client configuration trusting the test CA (ring provider).
    pub fn rustls_client(&self, identity: Option<&str>) -> rustls::ClientConfig {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(self.path("ca.crt")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let certs = rustls::pki_types::CertificateDer::pem_file_iter(
                    self.path(&format!("{name}.crt")),
                )
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
                let key = rustls::pki_types::PrivateKeyDer::from_pem_file(
                    self.path(&format!("{name}.key")),
                )
                .unwrap();
                builder.with_client_auth_cert(certs, key).unwrap()
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}
