//! Server-side TLS for berth's listeners (`registry serve`, and `serve` on TCP): PEM files in,
//! a rustls acceptor out, with client certificates required when a CA is given (dockerd's
//! `--tlsverify`).

use crate::RegistryError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;

pub use tokio_rustls::TlsAcceptor;

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| RegistryError::Tls(format!("reading the {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(RegistryError::Tls(format!(
            "no PEM certificate in {} (the {what})",
            path.display()
        )));
    }
    Ok(certs)
}

/// An acceptor serving `cert` (a PEM chain) with `key`; with `client_ca`, only clients that
/// present a certificate signed by that CA get through the handshake.
pub fn acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<TlsAcceptor, RegistryError> {
    let certs = read_certs(cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        RegistryError::Tls(format!("reading the private key {}: {e}", key.display()))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Tls(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca, "CA certificate")? {
                roots.add(c).map_err(|e| {
                    RegistryError::Tls(format!("the CA certificate {}: {e}", ca.display()))
                })?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| {
                        RegistryError::Tls(format!("the CA certificate {}: {e}", ca.display()))
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| RegistryError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
