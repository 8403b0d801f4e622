//! Server key rotation (docs/operators.md, "Rotating the server key";
//! docs/key-rotation.md for the wire): a new key with the same User IDs,
//! each certified by the old primary key with an ordinary OpenPGP
//! certification (what `gpg --check-sigs` and `sq` verify); the old key
//! revoked as superseded once the grace period is over; and, on the
//! holder's side, the check that a new key is certified by the one the
//! holder already trusts.

use anyhow::{anyhow, bail, Context, Result};
use sequoia_openpgp as openpgp;
use std::time::SystemTime;

use openpgp::cert::prelude::*;
use openpgp::packet::signature::SignatureBuilder;
use openpgp::parse::Parse;
use openpgp::policy::Policy;
use openpgp::serialize::Serialize;
use openpgp::types::{PublicKeyAlgorithm, ReasonForRevocation, SignatureType};
use openpgp::Cert;

use super::guard::guarded;
use super::policy;
use super::server_key::{generate_server_key, tsk_armored};

/// The Subject of the notice every nym receives when the key rotates.
pub const ROTATION_SUBJECT: &str = "Server key rotated";

fn cert_of(bytes: &[u8]) -> Result<Cert> {
    Cert::from_bytes(bytes).context("server key file is not an OpenPGP key")
}

/// The valid, unrevoked User IDs of a key, in order.
fn live_user_ids(cert: &Cert) -> Result<Vec<String>> {
    use openpgp::types::RevocationStatus;
    let vc = cert.with_policy(policy(), None).context("server key is not valid")?;
    Ok(vc
        .userids()
        .filter(|u| !matches!(u.revocation_status(), RevocationStatus::Revoked(_)))
        .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
        .collect())
}

/// The RSA size to give the new key (`None`: Curve25519), after the old.
fn rsa_bits_of(cert: &Cert) -> Option<u32> {
    let k = cert.primary_key().key();
    match k.pk_algo() {
        #[allow(deprecated)]
        PublicKeyAlgorithm::RSAEncryptSign | PublicKeyAlgorithm::RSASign => {
            Some(match k.mpis().bits().unwrap_or(3072) {
                0..=2048 => 2048,
                2049..=3072 => 3072,
                _ => 4096,
            })
        }
        _ => None,
    }
}

/// A new server key for the rotation of `old_tsk`: the same live User IDs,
/// the same kind of key, each User ID certified by the old primary key.
/// Returns the new armored secret key.
pub fn rotated_server_key(old_tsk: &[u8]) -> Result<Vec<u8>> {
    let old = cert_of(old_tsk)?;
    let uids = live_user_ids(&old)?;
    if uids.is_empty() {
        bail!("the server key has no User ID to carry over");
    }
    let new = generate_server_key(&uids, rsa_bits_of(&old))?;
    certify_user_ids(old_tsk, &tsk_armored(&new)?)
}

/// Every User ID of `new_tsk` that `certifier_tsk`'s primary key has not
/// certified yet gets a generic certification (0x10) by it, the one
/// `gpg --sign-key` makes: the shared step of a rotation and of a domain
/// added during its grace period. Returns the new armored secret key.
pub fn certify_user_ids(certifier_tsk: &[u8], new_tsk: &[u8]) -> Result<Vec<u8>> {
    let certifier = cert_of(certifier_tsk)?;
    super::backend::check_server_cert(&certifier)?;
    let new = cert_of(new_tsk)?;
    let mut signer = certifier
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .context("the old server key has no secret primary key")?
        .into_keypair()?;
    let issuer = certifier.fingerprint();
    let mut packets: Vec<openpgp::Packet> = Vec::new();
    for ua in new.userids() {
        let done = ua.certifications().any(|s| s.issuer_fingerprints().any(|f| *f == issuer));
        if done {
            continue;
        }
        let sig = SignatureBuilder::new(SignatureType::GenericCertification)
            .set_signature_creation_time(SystemTime::now())?
            .sign_userid_binding(&mut signer, new.primary_key().key(), ua.userid())?;
        packets.push(ua.userid().clone().into());
        packets.push(sig.into());
    }
    let (new, _) = new.insert_packets(packets)?;
    tsk_armored(&new)
}

/// The public key of `old_tsk` with a revocation, reason "key superseded",
/// naming the key that replaces it. Armored.
pub fn revoke_superseded(old_tsk: &[u8], new_fpr: &str) -> Result<Vec<u8>> {
    let old = cert_of(old_tsk)?;
    super::backend::check_server_cert(&old)?;
    let mut signer = old.primary_key().key().clone().parts_into_secret()?.into_keypair()?;
    let msg = format!("superseded by {new_fpr}");
    let rev = openpgp::cert::CertRevocationBuilder::new()
        .set_reason_for_revocation(ReasonForRevocation::KeySuperseded, msg.as_bytes())?
        .build(&mut signer, &old, None)?;
    let (old, _) = old.strip_secret_key_material().insert_packets(vec![openpgp::Packet::from(rev)])?;
    armored_public(&old)
}

fn armored_public(cert: &Cert) -> Result<Vec<u8>> {
    use openpgp::serialize::SerializeInto;
    cert.clone().strip_secret_key_material().armored().to_vec()
}

/// One armored public key block holding every key of `keys` (secret or
/// public, armored or binary; secrets are dropped): what `key export`
/// prints during and after a rotation. `gpg --import` and `sq cert
/// import` take all of them.
pub fn public_keyring(keys: &[&[u8]]) -> Result<Vec<u8>> {
    use openpgp::armor::{Kind, Writer};
    let mut w = Writer::new(Vec::new(), Kind::PublicKey)?;
    for k in keys {
        cert_of(k)?.strip_secret_key_material().serialize(&mut w)?;
    }
    Ok(w.finalize()?)
}

/// Fingerprint (hex) of an armored or binary key.
pub fn fingerprint_of(bytes: &[u8]) -> Result<String> {
    Ok(cert_of(bytes)?.fingerprint().to_hex())
}

/// Why a holder's client refuses a new server key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationProblem {
    #[error("the new key is the key already trusted")]
    Same,
    #[error("the new key is not valid: {0}")]
    Invalid(String),
    #[error("the key already trusted is revoked for a reason other than being superseded")]
    TrustedRevoked,
    #[error("User ID {0:?} of the trusted key is not on the new key")]
    MissingUserId(String),
    #[error("User ID {0:?} of the new key is not certified by the key already trusted")]
    NotCertified(String),
}

/// The holder's check of a rotation: `candidate` replaces `trusted` only
/// if every live User ID of `trusted` is on `candidate` and carries a
/// certification by `trusted`'s primary key that verifies, and `trusted`
/// was not revoked as compromised (a superseded key may be revoked, a
/// holder can read the notice after the grace period).
pub fn verify_rotation(trusted: &Cert, candidate: &Cert) -> Result<(), RotationProblem> {
    guarded(|| verify_rotation_inner(trusted, candidate))
        .unwrap_or_else(|| Err(RotationProblem::Invalid("the key parser panicked".into())))
}

fn verify_rotation_inner(trusted: &Cert, candidate: &Cert) -> Result<(), RotationProblem> {
    use openpgp::types::RevocationStatus;
    if trusted.fingerprint() == candidate.fingerprint() {
        return Err(RotationProblem::Same);
    }
    let p = policy();
    for rev in trusted.primary_key().self_revocations() {
        let reason = rev.reason_for_revocation().map(|(r, _)| r);
        if reason != Some(ReasonForRevocation::KeySuperseded)
            && rev
                .clone()
                .verify_primary_key_revocation(trusted.primary_key().key(), trusted.primary_key().key())
                .is_ok()
        {
            return Err(RotationProblem::TrustedRevoked);
        }
    }
    let vc = candidate.with_policy(p, None).map_err(|e| RotationProblem::Invalid(e.to_string()))?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(RotationProblem::Invalid("revoked".into()));
    }
    vc.alive().map_err(|e| RotationProblem::Invalid(e.to_string()))?;
    let signer = trusted.primary_key().key();
    let issuer = trusted.fingerprint();
    // The trusted key's own User IDs, judged without the policy's time
    // (a revoked old key has no valid view any more).
    let wanted: Vec<Vec<u8>> = trusted.userids().map(|u| u.userid().value().to_vec()).collect();
    for want in &wanted {
        let name = String::from_utf8_lossy(want).into_owned();
        let Some(ua) = vc.userids().find(|u| u.userid().value() == want.as_slice()) else {
            return Err(RotationProblem::MissingUserId(name));
        };
        let ok = ua.certifications().any(|sig| {
            sig.issuer_fingerprints().any(|f| *f == issuer)
                && p.signature(sig, openpgp::policy::HashAlgoSecurity::CollisionResistance).is_ok()
                && sig
                    .clone()
                    .verify_userid_binding(signer, candidate.primary_key().key(), ua.userid())
                    .is_ok()
        });
        if !ok {
            return Err(RotationProblem::NotCertified(name));
        }
    }
    Ok(())
}

/// Of the keys a published `key.asc` holds during or after a rotation,
/// the current one: not revoked, and certified by another key of the set
/// when more than one is left (the chain `key rotate` makes).
pub fn current_server_key(certs: Vec<Cert>) -> Result<Cert> {
    use openpgp::types::RevocationStatus;
    let live: Vec<&Cert> = certs
        .iter()
        .filter(|c| !matches!(c.revocation_status(policy(), None), RevocationStatus::Revoked(_)))
        .collect();
    let pick = match live.as_slice() {
        [] => bail!("every key in the file is revoked"),
        [one] => *one,
        _ => {
            let newer: Vec<&&Cert> =
                live.iter().filter(|c| live.iter().any(|o| verify_rotation(o, c).is_ok())).collect();
            match newer.as_slice() {
                [one] => **one,
                _ => bail!("the file holds {} keys and no single one replaces the others", live.len()),
            }
        }
    };
    Ok(pick.clone())
}

/// The new server key a rotation notice carries (its one public key block).
pub fn rotation_candidate(plaintext: &[u8]) -> Result<Cert> {
    let block = super::find_armor(plaintext, "PUBLIC KEY BLOCK")
        .ok_or_else(|| anyhow!("the notice carries no public key block"))?;
    let certs = super::parse_certs(block)?;
    match certs.len() {
        1 => Ok(certs.into_iter().next().expect("one")),
        n => bail!("the notice carries {n} keys instead of one"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Vec<u8> {
        let uids = ["nymgate Config <config@nym.example>".to_string(), "send@nym.example".to_string()];
        tsk_armored(&generate_server_key(&uids, None).unwrap()).unwrap()
    }

    #[test]
    fn a_rotated_key_is_certified_by_the_old_one_and_nothing_else_passes() {
        let old = server();
        let new = rotated_server_key(&old).unwrap();
        let (old_c, new_c) = (cert_of(&old).unwrap(), cert_of(&new).unwrap());
        let public = cert_of(&public_keyring(&[&new]).unwrap()).unwrap();
        assert!(!public.is_tsk());
        assert_eq!(verify_rotation(&old_c, &public), Ok(()));
        assert_eq!(live_user_ids(&new_c).unwrap(), live_user_ids(&old_c).unwrap());
        // Not certified at all, or certified by an unrelated key.
        let forged = server();
        assert!(matches!(
            verify_rotation(&old_c, &cert_of(&forged).unwrap()),
            Err(RotationProblem::NotCertified(_))
        ));
        let other = server();
        let by_other = cert_of(&certify_user_ids(&other, &forged).unwrap()).unwrap();
        assert!(matches!(verify_rotation(&old_c, &by_other), Err(RotationProblem::NotCertified(_))));
        assert_eq!(verify_rotation(&old_c, &old_c), Err(RotationProblem::Same));
        // The published pair resolves to the new key.
        let pair = vec![old_c.clone().strip_secret_key_material(), public.clone()];
        assert_eq!(current_server_key(pair).unwrap().fingerprint(), public.fingerprint());
        // Certifying twice adds nothing.
        assert_eq!(certify_user_ids(&old, &new).unwrap(), new);
    }

    #[test]
    fn a_trusted_key_revoked_as_compromised_certifies_nothing() {
        let old = server();
        let new = cert_of(&public_keyring(&[&rotated_server_key(&old).unwrap()]).unwrap()).unwrap();
        let old_c = cert_of(&old).unwrap();
        let mut signer =
            old_c.primary_key().key().clone().parts_into_secret().unwrap().into_keypair().unwrap();
        let rev = openpgp::cert::CertRevocationBuilder::new()
            .set_reason_for_revocation(ReasonForRevocation::KeyCompromised, b"stolen")
            .unwrap()
            .build(&mut signer, &old_c, None)
            .unwrap();
        let (revoked, _) = old_c.insert_packets(vec![openpgp::Packet::from(rev)]).unwrap();
        assert_eq!(verify_rotation(&revoked, &new), Err(RotationProblem::TrustedRevoked));
    }

    #[test]
    fn the_superseded_revocation_still_lets_a_late_holder_follow() {
        let old = server();
        let new = rotated_server_key(&old).unwrap();
        let revoked = cert_of(&revoke_superseded(&old, &fingerprint_of(&new).unwrap()).unwrap()).unwrap();
        let reasons: Vec<_> = revoked
            .primary_key()
            .self_revocations()
            .filter_map(|s| s.reason_for_revocation().map(|r| r.0))
            .collect();
        assert_eq!(reasons, vec![ReasonForRevocation::KeySuperseded]);
        assert!(!revoked.is_tsk());
        let public = cert_of(&public_keyring(&[&new]).unwrap()).unwrap();
        assert_eq!(verify_rotation(&revoked, &public), Ok(()));
    }
}
