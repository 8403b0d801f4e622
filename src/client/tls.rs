//! TLS for NNTP and SMTP (rustls with the ring provider).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A byte stream that is either plain TCP or TLS over TCP.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Trusted roots: the Mozilla set, plus the PEM certificates in `ca_file`
/// (for a news or mail server with its own CA, or a test).
fn config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(p) = ca_file {
        let certs = CertificateDer::pem_file_iter(p)
            .with_context(|| format!("reading CA certificates from {}", p.display()))?;
        for c in certs {
            let c = c.map_err(|e| anyhow!("bad certificate in {}: {e}", p.display()))?;
            roots.add(c).map_err(|e| anyhow!("unusable CA certificate in {}: {e}", p.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Wrap `tcp` in TLS, checking the certificate against `host`.
pub fn wrap(tcp: TcpStream, host: &str, ca_file: Option<&Path>) -> Result<Box<dyn Stream>> {
    let name =
        ServerName::try_from(host.to_string()).map_err(|_| anyhow!("`{host}` is not a TLS server name"))?;
    let conn = rustls::ClientConnection::new(config(ca_file)?, name)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Finish the handshake now so that certificate errors show up here,
    // with the host name, rather than on the first read.
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).with_context(|| format!("TLS handshake with {host}"))?;
    }
    Ok(Box::new(s))
}
