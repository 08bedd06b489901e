//! TLS for the webhook: rustls with the ring provider, HTTP/2 and HTTP/1.1 by ALPN, an
//! optional client CA (mutual TLS with the API server), and the certificate and key reloaded
//! when their files change (cert-manager rotates them) without dropping a connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// The files TLS is read from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Why TLS could not be set up; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_err(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        file: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The bytes of the three files, to notice changes.
fn read_all(files: &TlsFiles) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut out = Vec::new();
    for path in [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        out.push(std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?);
    }
    Ok(out)
}

/// Builds a rustls server configuration from the files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_err(&files.cert, format!("cannot read certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&files.cert, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(&files.cert, "no certificate in this file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_err(&files.key, format!("no usable private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .map_err(|e| file_err(ca, format!("cannot read certificates: {e}")))?
            {
                let cert = cert.map_err(|e| file_err(ca, format!("invalid PEM: {e}")))?;
                roots.add(cert).map_err(|e| file_err(ca, e))?;
            }
            // Probes and Prometheus present no certificate: the handshake lets them in, and
            // /validate refuses a connection without a verified client certificate.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| file_err(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| file_err(&files.cert, format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Loads the files and starts a task that reloads them when they change. A half-written
/// rotation (a certificate that does not match its key yet), files deleted or replaced by
/// garbage keep the current configuration until the next look; each such problem is logged
/// and counted (`gitgate_tls_reload_errors_total`) once, not at every look.
pub fn load_and_watch(files: TlsFiles, every: Duration) -> Result<RustlsConfig, TlsError> {
    let config = RustlsConfig::from_config(server_config(&files)?);
    let mut seen = read_all(&files)?;
    let watched = config.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // The problem last reported, so that a lasting one is reported once.
        let mut reported: Option<String> = None;
        loop {
            tick.tick().await;
            let loaded = read_all(&files).and_then(|now| {
                if now == seen {
                    return Ok(None);
                }
                server_config(&files).map(|new| Some((now, new)))
            });
            match loaded {
                // As they were: a later problem is a new one.
                Ok(None) => reported = None,
                Ok(Some((now, new))) => {
                    watched.reload_from_config(new);
                    seen = now;
                    reported = None;
                    metrics::counter!("gitgate_tls_reloads_total").increment(1);
                    tracing::info!(cert = %files.cert.display(), "reloaded the TLS certificate");
                }
                Err(e) => {
                    let problem = e.to_string();
                    if reported.as_ref() != Some(&problem) {
                        metrics::counter!("gitgate_tls_reload_errors_total").increment(1);
                        tracing::warn!(error = %problem, "the TLS files changed but do not load; keeping the current certificate");
                        reported = Some(problem);
                    }
                }
            }
        }
    });
    Ok(config)
}
