//! Which crypto backend this binary was built with, and what the server
//! refuses to do with it.
//!
//! The default build uses sequoia's RustCrypto backend (Cargo feature
//! `crypto-rust`): a whole delivery costs a third of the instructions of
//! the OpenSSL backend (docs/performance.md). Its RSA secret-key code (the
//! `rsa` crate) is not constant-time, so the timing of a decryption or
//! signature can leak the key (the Marvin attack, RUSTSEC-2023-0071). The
//! server's secret-key operations are driven by hostile mail, so a build
//! with that backend never does one with an RSA key: `init --rsa` and an
//! RSA server key file are refused with a message saying how to build a
//! binary that takes them. The server's public-key operations on a
//! holder's RSA key (encrypting to it, checking its signatures) involve no
//! secret and stay allowed. Curve25519 and Ed25519 (x25519-dalek,
//! ed25519-dalek) are constant-time in RustCrypto too.

use anyhow::{bail, Result};
use sequoia_openpgp as openpgp;

use openpgp::types::PublicKeyAlgorithm;
use openpgp::Cert;

/// The backend's name, as `nymgate --version` and the bench show it.
pub const NAME: &str = if cfg!(feature = "crypto-openssl") {
    "OpenSSL"
} else if cfg!(feature = "crypto-nettle") {
    "Nettle"
} else {
    "RustCrypto"
};

/// Does this build refuse RSA secret-key operations on the server?
pub const REFUSES_RSA_SECRETS: bool =
    cfg!(feature = "crypto-rust") && !cfg!(feature = "crypto-openssl") && !cfg!(feature = "crypto-nettle");

/// What the operator reads when an RSA server key is refused.
pub const RSA_REFUSED: &str = "this nymgate is built with the RustCrypto backend, whose RSA secret-key \
     operations are not constant-time (the Marvin timing attack), so it uses no RSA server key; \
     build with `cargo build --release --no-default-features --features crypto-openssl` (or \
     `crypto-nettle`) for an RSA server key, or make a Curve25519 key (init without --rsa)";

#[allow(deprecated)]
fn is_rsa(algo: PublicKeyAlgorithm) -> bool {
    matches!(
        algo,
        PublicKeyAlgorithm::RSAEncryptSign | PublicKeyAlgorithm::RSAEncrypt | PublicKeyAlgorithm::RSASign
    )
}

/// `init --rsa BITS`: refused before anything is written.
pub fn check_rsa_generation(rsa_bits: Option<u32>) -> Result<()> {
    if REFUSES_RSA_SECRETS && rsa_bits.is_some() {
        bail!("{RSA_REFUSED}");
    }
    Ok(())
}

/// A server key whose primary key or any subkey is RSA is refused by this
/// build: every one of its secret keys is used (the primary certifies
/// rotations and new domains, the subkeys sign and decrypt).
pub fn check_server_cert(cert: &Cert) -> Result<()> {
    check_server_algos(cert.keys().map(|k| k.key().pk_algo()))
}

/// [`check_server_cert`] on the algorithms of a key's packets.
pub fn check_server_algos(mut algos: impl Iterator<Item = PublicKeyAlgorithm>) -> Result<()> {
    if REFUSES_RSA_SECRETS && algos.any(is_rsa) {
        bail!("{RSA_REFUSED}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openpgp::generate_server_key;

    #[test]
    fn an_rsa_server_key_is_refused_exactly_when_the_backend_is_variable_time() {
        let uids = ["nymgate Config <config@a.example>".to_string()];
        let cv = generate_server_key(&uids, None).unwrap();
        assert!(check_server_cert(&cv).is_ok());
        assert!(check_rsa_generation(None).is_ok());
        assert_eq!(check_rsa_generation(Some(2048)).is_err(), REFUSES_RSA_SECRETS);
        assert_eq!(REFUSES_RSA_SECRETS, NAME == "RustCrypto");
    }

    #[test]
    fn the_refusal_tells_the_operator_how_to_build_for_rsa() {
        assert!(RSA_REFUSED.contains("--features crypto-openssl"));
        assert!(RSA_REFUSED.contains("Marvin"));
    }
}
