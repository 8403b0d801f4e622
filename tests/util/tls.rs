//! A private CA and a server certificate for `localhost`, made with
//! openssl, for the scripted TLS servers (nntps, STARTTLS, smtps).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ok;

/// The server configuration and the CA file the client is given.
pub fn tls_setup(dir: &Path) -> (Arc<rustls::ServerConfig>, PathBuf) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let sh = |script: &str| ok(std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir), None);
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null");
    sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null && \
        printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext && \
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
        -extfile ext 2>/dev/null");
    let certs: Vec<CertificateDer> =
        CertificateDer::pem_file_iter(dir.join("srv.pem")).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("srv.key")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    (Arc::new(cfg), dir.join("ca.pem"))
}

/// A byte stream the scripted servers speak over: TCP, or TLS over it.
pub trait Conn: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> Conn for T {}

/// Wrap a server-side stream in TLS.
pub fn server_tls(cfg: &Arc<rustls::ServerConfig>, inner: Box<dyn Conn>) -> Box<dyn Conn> {
    Box::new(rustls::StreamOwned::new(rustls::ServerConnection::new(cfg.clone()).unwrap(), inner))
}
