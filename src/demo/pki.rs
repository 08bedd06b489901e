//! Certificates for the demo's webhook: a CA made on the spot signs a server certificate for
//! 127.0.0.1, and the demo's client trusts only that CA, as the API server trusts the
//! `caBundle` of a webhook configuration.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::serve::TlsFiles;

/// Writes `ca.crt`, `tls.crt` and `tls.key` into `dir`; returns the server's files and a
/// client configuration that trusts the CA.
pub fn make(dir: &Path) -> Result<(TlsFiles, rustls::ClientConfig)> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "gitgate demo CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "gitgate.gitgate.svc");
    let cert = params.signed_by(&key, &ca)?;

    let files = TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        client_ca: None,
    };
    for (path, text) in [
        (dir.join("ca.crt"), ca.pem()),
        (files.cert.clone(), cert.pem()),
        (files.key.clone(), key.serialize_pem()),
    ] {
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))?;
    }

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone())?;
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((files, client))
}
