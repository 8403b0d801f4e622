//! Nym keys: reading them from requests, the rules a nym key must follow
//! (PROTOCOL.md section 2), and keeping them in the database.

use anyhow::{anyhow, Result};
use sequoia_openpgp as openpgp;
use std::time::SystemTime;

use openpgp::cert::prelude::*;
use openpgp::cert::ValidCert;
use openpgp::crypto::SessionKey;
use openpgp::packet::key::{KeyParts, KeyRole, PublicParts};
use openpgp::packet::Key;
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::Cert;

use super::guard::guarded;
use super::policy;

/// Read every certificate in a key block.
pub fn parse_certs(block: &[u8]) -> Result<Vec<Cert>> {
    guarded(|| parse_certs_inner(block)).unwrap_or_else(|| Err(anyhow!("key parser panicked")))
}

fn parse_certs_inner(block: &[u8]) -> Result<Vec<Cert>> {
    use openpgp::cert::CertParser;
    let mut out = Vec::new();
    for c in CertParser::from_bytes(block)? {
        out.push(c?);
        if out.len() > 1 {
            break; // two are already too many
        }
    }
    Ok(out)
}

/// A certificate that is acceptable as a nym key.
#[derive(Debug, Clone)]
pub struct NymKey {
    pub fingerprint: String,
    pub local: String,
    pub domain: String,
    pub expires: Option<SystemTime>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyProblem {
    #[error("key is not valid under the policy")]
    Invalid,
    #[error("key is revoked")]
    Revoked,
    #[error("key has expired")]
    Expired,
    #[error("key has no usable encryption key")]
    NoEncryption,
    #[error("key has no usable signing key")]
    NoSigning,
    #[error("no User ID in a hosted domain")]
    NoAddress,
    #[error("more than one User ID in hosted domains")]
    TwoAddresses,
}

/// Check a certificate against the rules of PROTOCOL.md section 2.
pub fn check_nym_cert(cert: &Cert, hosts: impl Fn(&str) -> bool) -> Result<NymKey, KeyProblem> {
    // A key from a request is hostile input to sequoia as much as a
    // message is; a panic in there means "unusable key".
    guarded(|| check_nym_cert_inner(cert, hosts)).unwrap_or(Err(KeyProblem::Invalid))
}

fn check_nym_cert_inner(cert: &Cert, hosts: impl Fn(&str) -> bool) -> Result<NymKey, KeyProblem> {
    use openpgp::types::RevocationStatus;
    let p = policy();
    let vc = cert.with_policy(p, None).map_err(|_| KeyProblem::Invalid)?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(KeyProblem::Revoked);
    }
    if vc.alive().is_err() {
        return Err(KeyProblem::Expired);
    }
    let mut found: Option<(String, String)> = None;
    for ua in vc.userids() {
        if let RevocationStatus::Revoked(_) = ua.revocation_status() {
            continue;
        }
        let Ok(Some(email)) = ua.userid().email() else { continue };
        let Some((local, domain)) = email.rsplit_once('@') else { continue };
        if !hosts(domain) {
            continue;
        }
        let pair = (local.to_ascii_lowercase(), domain.to_ascii_lowercase());
        match &found {
            Some(f) if *f == pair => {}
            Some(_) => return Err(KeyProblem::TwoAddresses),
            None => found = Some(pair),
        }
    }
    let (local, domain) = found.ok_or(KeyProblem::NoAddress)?;
    // Every key the server may encrypt to must really take encryption:
    // a key can carry the encryption flags on an algorithm that cannot
    // encrypt (Ed25519) or on a point that gives no shared secret (all
    // zeros). Found only at send time, that would be a failure retried
    // forever instead of a refused key. The server writes to the newest
    // one only, but an older one becomes the newest when a later one
    // expires, so all of them are probed.
    let keys = encryption_keys(&vc);
    if keys.is_empty() || !keys.iter().all(|ka| can_encrypt(ka.key())) {
        return Err(KeyProblem::NoEncryption);
    }
    if vc.keys().alive().revoked(false).supported().for_signing().next().is_none() {
        return Err(KeyProblem::NoSigning);
    }
    let expires = vc.primary_key().key_expiration_time();
    Ok(NymKey { fingerprint: cert.fingerprint().to_hex(), local, domain, expires })
}

/// The keys a message to this certificate is encrypted to: every live
/// transport-encryption key, or if there is none every storage one.
pub(super) fn encryption_keys<'a>(vc: &ValidCert<'a>) -> Vec<ValidErasedKeyAmalgamation<'a, PublicParts>> {
    let usable = || vc.keys().alive().revoked(false).supported();
    let keys: Vec<_> = usable().for_transport_encryption().collect();
    if keys.is_empty() {
        usable().for_storage_encryption().collect()
    } else {
        keys
    }
}

/// The one key a message to this certificate is encrypted to: of the
/// keys [`encryption_keys`] finds, the one created last (what GnuPG
/// chooses). A holder who adds a new encryption subkey and destroys the
/// old secret cannot be read through the old one any more: forward
/// secrecy for holders who rotate. Among keys of the same creation time
/// the last in the certificate wins, so the choice is stable.
pub(super) fn newest_encryption_key<'a>(
    vc: &ValidCert<'a>,
) -> Option<ValidErasedKeyAmalgamation<'a, PublicParts>> {
    let mut newest: Option<ValidErasedKeyAmalgamation<'a, PublicParts>> = None;
    for ka in encryption_keys(vc) {
        if newest.as_ref().is_none_or(|n| ka.key().creation_time() >= n.key().creation_time()) {
            newest = Some(ka);
        }
    }
    newest
}

/// Does encrypting a session key to `key` work? One public-key operation:
/// the probe the server makes before it promises to write to a key. A
/// Curve25519 point of small order fails too, whatever the backend says.
pub(super) fn can_encrypt<P: KeyParts, R: KeyRole>(key: &Key<P, R>) -> bool {
    !has_small_order_x25519(key.mpis())
        && guarded(|| SessionKey::new(32).and_then(|sk| key.encrypt(&sk)).is_ok()).unwrap_or(false)
}

/// The Curve25519 points of order 1, 2, 4 or 8, in their little-endian
/// encodings (with the non-canonical ones p and p+1), as libsodium lists
/// them. X25519 with any of them gives a shared secret that does not
/// depend on the server's ephemeral key, so whatever is "encrypted" to
/// such a key can be read by anyone. OpenSSL's X25519 refuses the all-zero
/// result, but the RustCrypto backend (x25519-dalek) and Nettle return it,
/// so the check is ours.
const SMALL_ORDER_X25519: [[u8; 32]; 7] = {
    let mut p_minus_1 = [0xff; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let mut p = p_minus_1;
    p[0] = 0xed;
    let mut p_plus_1 = p_minus_1;
    p_plus_1[0] = 0xee;
    let mut one = [0; 32];
    one[0] = 1;
    [
        [0; 32],
        one,
        [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
            0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
        ],
        [
            0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
            0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
        ],
        p_minus_1,
        p,
        p_plus_1,
    ]
};

/// Is this a Curve25519 encryption key whose point has small order? The
/// top bit is ignored, as X25519 ignores it.
pub(super) fn has_small_order_x25519(mpis: &openpgp::crypto::mpi::PublicKey) -> bool {
    use openpgp::crypto::mpi::PublicKey;
    use openpgp::types::Curve;
    let u: &[u8] = match mpis {
        PublicKey::ECDH { curve: Curve::Cv25519, q, .. } => match q.decode_point(&Curve::Cv25519) {
            Ok((u, _)) => u,
            // Not a point at all: the trial encryption fails on it.
            Err(_) => return false,
        },
        PublicKey::X25519 { u } => u,
        PublicKey::MLKEM768_X25519 { ecdh, .. } => &ecdh[..],
        _ => return false,
    };
    let Ok(u) = <[u8; 32]>::try_from(u) else { return false };
    SMALL_ORDER_X25519.iter().any(|bad| bad[..31] == u[..31] && bad[31] == u[31] & 0x7f)
}

/// Key IDs (hex) of every key in the certificate, so that a signature's
/// issuer finds its nym.
pub fn key_ids(cert: &Cert) -> Vec<String> {
    cert.keys().map(|k| k.key().keyid().to_hex()).collect()
}

/// Binary serialization of the public certificate, for the database.
pub fn cert_bytes(cert: &Cert) -> Result<Vec<u8>> {
    cert.to_vec()
}

pub fn cert_from_bytes(b: &[u8]) -> Result<Cert> {
    Cert::from_bytes(b)
}

/// Merge a newer copy of a certificate (refresh: new expiry, new subkeys).
pub fn merge(old: Cert, new: Cert) -> Result<Cert> {
    guarded(|| old.merge_public(new)).unwrap_or_else(|| Err(anyhow!("key merge panicked")))
}

#[cfg(test)]
mod tests {
    use openpgp::packet::key::Key4;
    use openpgp::types::Curve;

    use super::super::testkit::{nym, with_encryption_subkey};
    use super::*;

    fn hosted(d: &str) -> bool {
        d == "nym.example"
    }

    #[test]
    fn a_key_from_the_client_is_a_nym_key() {
        let k = check_nym_cert(&nym("alice@nym.example"), hosted).unwrap();
        assert_eq!((k.local.as_str(), k.domain.as_str()), ("alice", "nym.example"));
    }

    #[test]
    fn an_ed25519_subkey_flagged_for_encryption_cannot_encrypt() {
        let ed = Key4::generate_ecc(true, Curve::Ed25519).unwrap().parts_into_public();
        let cert = with_encryption_subkey("bob@nym.example", ed.into());
        assert_eq!(check_nym_cert(&cert, hosted).unwrap_err(), KeyProblem::NoEncryption);
    }

    #[test]
    fn an_all_zero_cv25519_point_cannot_encrypt() {
        let zero = Key4::import_public_cv25519(&[0; 32], None, None, None).unwrap();
        let cert = with_encryption_subkey("carol@nym.example", zero.into());
        assert_eq!(check_nym_cert(&cert, hosted).unwrap_err(), KeyProblem::NoEncryption);
    }

    #[test]
    fn an_all_zero_x25519_point_cannot_encrypt() {
        let zero = Key4::import_public_x25519(&[0; 32], None).unwrap();
        let cert = with_encryption_subkey("dave@nym.example", zero.into());
        assert_eq!(check_nym_cert(&cert, hosted).unwrap_err(), KeyProblem::NoEncryption);
    }

    #[test]
    fn a_small_order_cv25519_point_cannot_encrypt() {
        // Every point of small order, and each with the top bit set (which
        // X25519 ignores): the trial encryption succeeds on most of them
        // with the RustCrypto backend, so only the explicit check stops
        // them.
        for (i, bad) in SMALL_ORDER_X25519.iter().enumerate() {
            for top in [0, 0x80] {
                let mut u = *bad;
                u[31] |= top;
                let k: Key4<_, openpgp::packet::key::SubordinateRole> =
                    Key4::import_public_cv25519(&u, None, None, None).unwrap();
                assert!(has_small_order_x25519(k.mpis()), "point {i} top {top:#x}");
                let cert = with_encryption_subkey("carol@nym.example", k.into());
                assert_eq!(check_nym_cert(&cert, hosted).unwrap_err(), KeyProblem::NoEncryption, "point {i}");
                let k = Key4::import_public_x25519(&u, None).unwrap();
                let cert = with_encryption_subkey("dave@nym.example", k.into());
                assert_eq!(
                    check_nym_cert(&cert, hosted).unwrap_err(),
                    KeyProblem::NoEncryption,
                    "x25519 {i}"
                );
            }
        }
    }

    #[test]
    fn an_ordinary_cv25519_point_is_not_small_order() {
        for _ in 0..32 {
            let k: Key4<_, openpgp::packet::key::SubordinateRole> =
                Key4::generate_ecc(false, Curve::Cv25519).unwrap().parts_into_public();
            assert!(!has_small_order_x25519(k.mpis()));
        }
        // A point one away from a small-order one is an ordinary point.
        let mut u = SMALL_ORDER_X25519[2];
        u[0] ^= 1;
        let k: Key4<_, openpgp::packet::key::SubordinateRole> =
            Key4::import_public_cv25519(&u, None, None, None).unwrap();
        assert!(!has_small_order_x25519(k.mpis()));
    }

    #[test]
    fn one_broken_encryption_key_beside_a_good_one_is_refused() {
        // The server writes to the newest encryption key, and an older one
        // takes its place when it expires: one that cannot take
        // encryption would break messages then.
        let good = Key4::generate_ecc(false, Curve::Cv25519).unwrap().parts_into_public();
        let cert = with_encryption_subkey("erin@nym.example", good.into());
        assert!(check_nym_cert(&cert, hosted).is_ok());
        let zero = Key4::import_public_cv25519(&[0; 32], None, None, None).unwrap();
        let mut primary =
            cert.primary_key().key().clone().parts_into_secret().unwrap().into_keypair().unwrap();
        let zero: Key<PublicParts, openpgp::packet::key::SubordinateRole> = zero.into();
        let builder =
            openpgp::packet::signature::SignatureBuilder::new(openpgp::types::SignatureType::SubkeyBinding)
                .set_key_flags(openpgp::types::KeyFlags::empty().set_transport_encryption())
                .unwrap();
        let binding = zero.bind(&mut primary, &cert, builder).unwrap();
        let (cert, _) = cert.insert_packets(vec![openpgp::Packet::from(zero), binding.into()]).unwrap();
        assert_eq!(check_nym_cert(&cert, hosted).unwrap_err(), KeyProblem::NoEncryption);
    }
}
