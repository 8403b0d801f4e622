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
/// the probe the server makes before it promises to write to a key.
pub(super) fn can_encrypt<P: KeyParts, R: KeyRole>(key: &Key<P, R>) -> bool {
    guarded(|| SessionKey::new(32).and_then(|sk| key.encrypt(&sk)).is_ok()).unwrap_or(false)
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
