//! The holder's key itself: protection with a passphrase, renewal of its
//! expiry, and the subkey rotation of `nym rotate` (a new encryption
//! subkey, the old secrets erased once the server confirmed).

use std::time::Duration;

use anyhow::{anyhow, Result};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::packet::prelude::*;

use super::holder::Passphrase;

/// Does any secret key material of `cert` need a passphrase?
pub fn is_protected(cert: &Cert) -> bool {
    cert.keys().secret().any(|ka| ka.key().secret().is_encrypted())
}

/// Decrypt all secret key material with `password`.
pub fn unlock(cert: Cert, password: &Passphrase) -> Result<Cert> {
    let mut packets: Vec<Packet> = Vec::new();
    for ka in cert.keys().secret() {
        if ka.key().secret().is_encrypted() {
            let k = ka
                .key()
                .clone()
                .decrypt_secret(&password.0)
                .map_err(|_| anyhow!("wrong passphrase for the key {}", cert.fingerprint()))?;
            packets.push(as_packet(k, ka.primary()));
        }
    }
    let (cert, _) = cert.insert_packets(packets)?;
    Ok(cert)
}

/// A re-keyed secret key back in its place (primary or subkey).
fn as_packet(
    k: openpgp::packet::Key<openpgp::packet::key::SecretParts, openpgp::packet::key::UnspecifiedRole>,
    primary: bool,
) -> Packet {
    if primary {
        k.role_into_primary().into()
    } else {
        k.role_into_subordinate().into()
    }
}

/// Protect all secret key material with `password`.
pub fn protect(cert: Cert, password: &Passphrase) -> Result<Cert> {
    let mut packets: Vec<Packet> = Vec::new();
    for ka in cert.keys().unencrypted_secret() {
        let k = ka.key().clone().encrypt_secret(&password.0)?;
        packets.push(as_packet(k, ka.primary()));
    }
    let (cert, _) = cert.insert_packets(packets)?;
    Ok(cert)
}

/// `nym renew`: new binding signatures with the new expiry (`None`:
/// never, else that long from now) on the primary key, its User IDs and
/// every subkey, made with `unlocked` (usable secrets) and added to
/// `stored`, which keeps its passphrase protection.
pub fn renew(stored: Cert, unlocked: &Cert, expire: Option<Duration>) -> Result<Cert> {
    let p = super::policy();
    let until = expire.map(|d| std::time::SystemTime::now() + d);
    let mut primary = unlocked.primary_key().key().clone().parts_into_secret()?.into_keypair()?;
    let mut sigs: Vec<Packet> =
        unlocked.set_expiration_time(p, None, &mut primary, until)?.into_iter().map(Into::into).collect();
    let vc = unlocked.with_policy(p, None)?;
    for ka in vc.keys().subkeys() {
        // A signing subkey also signs its own back-signature.
        let mut sub =
            if ka.for_signing() { Some(ka.key().clone().parts_into_secret()?.into_keypair()?) } else { None };
        let s = ka.set_expiration_time(
            &mut primary,
            sub.as_mut().map(|k| k as &mut dyn openpgp::crypto::Signer),
            until,
        )?;
        sigs.extend(s.into_iter().map(Packet::from));
    }
    let (cert, _) = stored.insert_packets(sigs)?;
    Ok(cert)
}

/// `nym rotate`: a new encryption subkey for the nym key, of the kind of
/// the newest one it has (RSA of the same size, else Cv25519), valid as
/// long as the primary key, its secret protected with `password` if the
/// key is. `stored` is the key as kept (perhaps locked), `unlocked` the
/// same with usable secrets. Returns the new key and the fingerprints of
/// the encryption subkeys it had before, whose secrets
/// [`erase_secret_subkeys`] removes once the server confirmed.
pub fn add_encryption_subkey(
    stored: Cert,
    unlocked: &Cert,
    password: Option<&Passphrase>,
) -> Result<(Cert, Vec<String>)> {
    use openpgp::packet::key::{Key4, SecretParts, SubordinateRole};
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::types::{Curve, KeyFlags, PublicKeyAlgorithm, SignatureType};
    let p = super::policy();
    let vc = unlocked.with_policy(p, None)?;
    let old: Vec<_> = super::cert::encryption_keys(&vc);
    let newest = super::cert::newest_encryption_key(&vc);
    let old_fprs: Vec<String> = old.iter().map(|ka| ka.key().fingerprint().to_hex()).collect();
    // The new subkey must be visibly the newest: creation times count in
    // seconds.
    if let Some(t) = newest.as_ref().map(|k| k.key().creation_time()) {
        while std::time::SystemTime::now() < t + Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let rsa_bits = newest.as_ref().and_then(|k| {
        #[allow(deprecated)]
        let rsa =
            matches!(k.key().pk_algo(), PublicKeyAlgorithm::RSAEncryptSign | PublicKeyAlgorithm::RSAEncrypt);
        if rsa {
            k.key().mpis().bits()
        } else {
            None
        }
    });
    let key: Key<SecretParts, SubordinateRole> = match rsa_bits {
        Some(bits) => Key4::generate_rsa(bits.clamp(2048, 4096))?.into(),
        None => Key4::generate_ecc(false, Curve::Cv25519)?.into(),
    };
    let created = key.creation_time();
    let mut primary = unlocked.primary_key().key().clone().parts_into_secret()?.into_keypair()?;
    let flags = KeyFlags::empty().set_transport_encryption().set_storage_encryption();
    let mut builder = SignatureBuilder::new(SignatureType::SubkeyBinding).set_key_flags(flags)?;
    if let Some(until) = vc.primary_key().key_expiration_time() {
        let left =
            until.duration_since(created).map_err(|_| anyhow!("the nym key has expired; renew it first"))?;
        builder = builder.set_key_validity_period(left)?;
    }
    let binding = key.bind(&mut primary, unlocked, builder)?;
    let key = match password {
        Some(pw) => key.encrypt_secret(&pw.0)?,
        None => key,
    };
    let (cert, _) = stored.insert_packets(vec![Packet::from(key), binding.into()])?;
    Ok((cert, old_fprs))
}

/// Remove the secret parts of the subkeys with these fingerprints (hex),
/// keeping their public parts and signatures: the old encryption subkeys
/// after a rotation. What was encrypted to them can no longer be read
/// with this key.
pub fn erase_secret_subkeys(cert: Cert, fingerprints: &[String]) -> Result<Cert> {
    let gone = |k: &Key<openpgp::packet::key::SecretParts, openpgp::packet::key::SubordinateRole>| {
        fingerprints.iter().any(|f| f.eq_ignore_ascii_case(&k.fingerprint().to_hex()))
    };
    // A plain Cert::into_packets would drop every secret.
    let packets: Vec<Packet> = cert
        .into_tsk()
        .into_packets()
        .map(|p| match p {
            Packet::SecretSubkey(k) if gone(&k) => Packet::PublicSubkey(k.take_secret().0),
            other => other,
        })
        .collect();
    Cert::from_packets(packets.into_iter())
}

/// Does the key still hold the secret of the subkey with this fingerprint?
pub fn has_secret(cert: &Cert, fingerprint: &str) -> bool {
    cert.keys().secret().any(|ka| ka.key().fingerprint().to_hex().eq_ignore_ascii_case(fingerprint))
}
