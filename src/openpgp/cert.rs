//! Nym keys: reading them from requests, the rules a nym key must follow
//! (PROTOCOL.md section 2), and keeping them in the database.

use anyhow::{anyhow, Result};
use sequoia_openpgp as openpgp;
use std::time::SystemTime;

use openpgp::cert::prelude::*;
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
        let Ok(Some(email)) = ua.userid().email2() else { continue };
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
    let usable = || vc.keys().alive().revoked(false).supported();
    if usable().for_transport_encryption().next().is_none()
        && usable().for_storage_encryption().next().is_none()
    {
        return Err(KeyProblem::NoEncryption);
    }
    if usable().for_signing().next().is_none() {
        return Err(KeyProblem::NoSigning);
    }
    let expires = vc.primary_key().key_expiration_time();
    Ok(NymKey { fingerprint: cert.fingerprint().to_hex(), local, domain, expires })
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
