//! The server's own key: made by `init`, loaded on every delivery.

use anyhow::{anyhow, Context, Result};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::KeyPair;
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::KeyFlags;
use openpgp::{Cert, KeyHandle};

use super::policy;

/// Make the server key: a certification-only primary, a signing subkey and
/// an encryption subkey, with the given User IDs (one per service and
/// domain). No expiry: an expired server key silently breaks every client.
pub fn generate_server_key(user_ids: &[String], rsa_bits: Option<u32>) -> Result<Cert> {
    let suite = match rsa_bits {
        None => CipherSuite::Cv25519,
        Some(2048) => CipherSuite::RSA2k,
        Some(3072) => CipherSuite::RSA3k,
        Some(4096) => CipherSuite::RSA4k,
        Some(b) => return Err(anyhow!("unsupported RSA size {b} (use 2048, 3072 or 4096)")),
    };
    let mut b = CertBuilder::new()
        .set_cipher_suite(suite)
        .set_validity_period(None)
        .set_features(super::encrypt::seipdv1())?
        .add_signing_subkey()
        .add_subkey(KeyFlags::empty().set_transport_encryption().set_storage_encryption(), None, None);
    for uid in user_ids {
        b = b.add_userid(uid.as_str());
    }
    let (cert, _rev) = b.generate()?;
    Ok(cert)
}

/// The server key with its secrets unlocked, ready for use.
pub struct ServerKey {
    pub cert: Cert,
    pub(super) signer: KeyPair,
    pub(super) decryptors: Vec<(KeyHandle, KeyPair)>,
}

impl ServerKey {
    /// Fingerprint (hex) of the server's primary key, as a signature's
    /// Intended Recipient subpacket names it.
    pub fn fingerprint_hex(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// Load the server key from its file. The file is our own (mode 0600,
    /// written by `init`), so its self-signatures are not verified again on
    /// every delivery: that verification was most of a delivery's CPU time.
    /// Each key is used as the flags of its first self-signature say.
    pub fn from_tsk(bytes: &[u8]) -> Result<ServerKey> {
        use openpgp::packet::{Key, Packet};
        use openpgp::types::SignatureType;
        let pile = openpgp::PacketPile::from_bytes(bytes).context("server key file is not an OpenPGP key")?;
        let mut signer = None;
        let mut decryptors = Vec::new();
        let mut current: Option<
            Key<openpgp::packet::key::SecretParts, openpgp::packet::key::UnspecifiedRole>,
        > = None;
        // Walk the packets: each secret subkey is followed by its binding
        // signature, whose flags say what the subkey is for.
        for p in pile.children() {
            match p {
                Packet::SecretSubkey(k) => current = Some(k.clone().role_into_unspecified()),
                // The primary key's flags sit on its direct-key or User ID
                // self-signature; the first one that has flags decides.
                Packet::SecretKey(k) => current = Some(k.clone().role_into_unspecified()),
                Packet::PublicSubkey(_) | Packet::PublicKey(_) => current = None,
                Packet::Signature(sig)
                    if matches!(
                        sig.typ(),
                        SignatureType::SubkeyBinding
                            | SignatureType::DirectKey
                            | SignatureType::PositiveCertification
                            | SignatureType::GenericCertification
                            | SignatureType::CasualCertification
                            | SignatureType::PersonaCertification
                    ) && sig.key_flags().is_some() =>
                {
                    let (Some(k), Some(flags)) = (current.take(), sig.key_flags()) else { continue };
                    if !k.has_unencrypted_secret() {
                        continue;
                    }
                    if flags.for_signing() && signer.is_none() {
                        signer = Some(k.clone().into_keypair()?);
                    }
                    if flags.for_transport_encryption() || flags.for_storage_encryption() {
                        decryptors.push((k.fingerprint().into(), k.into_keypair()?));
                    }
                }
                _ => {}
            }
        }
        let cert = Cert::from_packets(pile.into_children())?;
        let signer = signer.ok_or_else(|| anyhow!("server key has no signing key"))?;
        if decryptors.is_empty() {
            return Err(anyhow!("server key has no encryption key"));
        }
        Ok(ServerKey { cert, signer, decryptors })
    }

    /// Full check of the server key under the policy (for `init` and
    /// operators' tools), then load it.
    pub fn from_tsk_checked(bytes: &[u8]) -> Result<ServerKey> {
        let cert = Cert::from_bytes(bytes).context("server key file is not an OpenPGP key")?;
        let vc = cert.with_policy(policy(), None).context("server key is not valid")?;
        if vc.keys().alive().revoked(false).for_signing().next().is_none() {
            return Err(anyhow!("server key has no usable signing key"));
        }
        ServerKey::from_tsk(bytes)
    }

    /// Armored public key, as published for clients (key.asc).
    pub fn public_armored(&self) -> Result<Vec<u8>> {
        self.cert.armored().to_vec()
    }
}

/// Armored transferable secret key, for the state directory.
pub fn tsk_armored(cert: &Cert) -> Result<Vec<u8>> {
    cert.as_tsk().armored().to_vec()
}

/// The User IDs of the armored key in `bytes` (public or secret).
pub fn user_ids(bytes: &[u8]) -> Result<Vec<String>> {
    use openpgp::parse::Parse;
    let cert = Cert::from_bytes(bytes)?;
    Ok(cert.userids().map(|u| String::from_utf8_lossy(u.userid().value()).into_owned()).collect())
}

/// The server key (`bytes`, a transferable secret key) with these User IDs
/// added, each bound by the same primary key with a self-signature like
/// the existing User IDs' (a domain added after `init`). User IDs already
/// on the key are left alone. Returns the new armored secret key.
pub fn add_user_ids(bytes: &[u8], uids: &[String]) -> Result<Vec<u8>> {
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::packet::UserID;
    use openpgp::parse::Parse;
    let cert = Cert::from_bytes(bytes).context("server key file is not an OpenPGP key")?;
    let template = {
        let vc = cert.with_policy(policy(), None).context("server key is not valid")?;
        let binding = vc.primary_userid().context("server key has no User ID")?.binding_signature().clone();
        SignatureBuilder::from(binding)
            .set_signature_creation_time(std::time::SystemTime::now())?
            .set_primary_userid(false)?
    };
    let mut primary = cert.primary_key().key().clone().parts_into_secret()?.into_keypair()?;
    let mut packets: Vec<openpgp::Packet> = Vec::new();
    for u in uids {
        if cert.userids().any(|ua| ua.userid().value() == u.as_bytes()) {
            continue;
        }
        let uid = UserID::from(u.as_str());
        let sig = uid.bind(&mut primary, &cert, template.clone())?;
        packets.push(uid.into());
        packets.push(sig.into());
    }
    let (cert, _) = cert.insert_packets(packets)?;
    tsk_armored(&cert)
}

#[cfg(test)]
mod add_uid_tests {
    use super::*;

    #[test]
    fn added_user_ids_are_bound_by_the_same_primary_key() {
        let cert = generate_server_key(&["nymgate Config <config@a.example>".to_string()], None).unwrap();
        let tsk = tsk_armored(&cert).unwrap();
        let new = [
            "nymgate Config <config@b.example>".to_string(),
            "nymgate Config <config@a.example>".to_string(),
        ];
        let out = add_user_ids(&tsk, &new).unwrap();
        let checked = ServerKey::from_tsk_checked(&out).unwrap();
        assert_eq!(checked.cert.fingerprint(), cert.fingerprint());
        let vc = checked.cert.with_policy(policy(), None).unwrap();
        let uids: Vec<String> =
            vc.userids().map(|u| String::from_utf8_lossy(u.userid().value()).into_owned()).collect();
        assert_eq!(uids.len(), 2, "{uids:?}");
        assert!(uids.contains(&"nymgate Config <config@b.example>".to_string()));
    }
}
