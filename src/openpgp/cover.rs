//! The key a dummy article is encrypted to: made for one article and
//! dropped, so that nobody (the operator included) can open the dummy.

use anyhow::Result;
use sequoia_openpgp as openpgp;

use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::Cert;

/// A fresh Cv25519 certificate with one encryption subkey, the shape of
/// the nym keys that the seed guide and `nym new` make, so that the
/// dummy's session-key packet has the length of theirs. Its secrets live
/// only in memory and go when it is dropped.
pub fn throwaway_cert() -> Result<Cert> {
    let (cert, _) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_transport_encryption_subkey()
        .generate()?;
    Ok(cert)
}
