//! The server's own key: made by `init`, loaded on every delivery.

use anyhow::{anyhow, Context, Result};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::mem::Protected;
use openpgp::crypto::KeyPair;
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::KeyFlags;
use openpgp::{Cert, KeyHandle};
use std::cell::OnceCell;

use super::key_file::{dearmor, split, SecretSlot};
use super::policy;

/// Make the server key: a certification-only primary, a signing subkey and
/// an encryption subkey, with the given User IDs (one per service and
/// domain). No expiry: an expired server key silently breaks every client.
pub fn generate_server_key(user_ids: &[String], rsa_bits: Option<u32>) -> Result<Cert> {
    super::backend::check_rsa_generation(rsa_bits)?;
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

/// The server key: the public certificate, and the secrets parsed on
/// first use.
pub struct ServerKey {
    pub cert: Cert,
    slots: Vec<SecretSlot>,
    signer: OnceCell<KeyPair>,
    decryptors: Option<Vec<(KeyHandle, KeyPair)>>,
}

impl ServerKey {
    /// Fingerprint (hex) of the server's primary key, as a signature's
    /// Intended Recipient subpacket names it.
    pub fn fingerprint_hex(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// Read the key file (the caller checked that it is private) and load
    /// it; the file's bytes are erased from memory afterwards.
    pub fn from_file(path: &std::path::Path) -> Result<ServerKey> {
        let bytes = Protected::from(std::fs::read(path)?);
        ServerKey::from_tsk(&bytes)
    }

    /// Load the server key from its file's bytes. The file is our own
    /// (mode 0600, written by `init`), so its self-signatures are not
    /// verified again on every delivery: that verification was most of a
    /// delivery's CPU time. Each key is used as the flags of its first
    /// self-signature say. Only the public packets are parsed here; a
    /// secret key is parsed when an operation first needs it.
    pub fn from_tsk(bytes: &[u8]) -> Result<ServerKey> {
        use openpgp::packet::{Packet, Tag};
        let bin = dearmor(bytes)?;
        let Some((public, mut keys)) = split(&bin) else { return ServerKey::from_tsk_whole(&bin) };
        drop(bin);
        let pile =
            openpgp::PacketPile::from_bytes(&public).context("server key file is not an OpenPGP key")?;
        let mut slots: Vec<SecretSlot> = Vec::new();
        // The slot of the key packet last seen, until a self-signature
        // with flags says what it is for.
        let mut current: Option<usize> = None;
        let mut key_no = 0usize;
        for p in pile.children() {
            let fingerprint = match p {
                Packet::PublicKey(k) => Some(k.fingerprint()),
                Packet::PublicSubkey(k) => Some(k.fingerprint()),
                Packet::Unknown(u) if matches!(u.tag(), Tag::PublicKey | Tag::PublicSubkey) => None,
                Packet::Signature(sig) if binds(sig.typ()) => {
                    if let (Some(flags), Some(i)) = (sig.key_flags(), current) {
                        current = None;
                        slots[i].sign = flags.for_signing();
                        slots[i].encrypt = flags.for_transport_encryption() || flags.for_storage_encryption();
                    }
                    continue;
                }
                _ => continue,
            };
            // A key packet: was it a secret one?
            let secret = keys.get_mut(key_no).and_then(Option::take);
            key_no += 1;
            current = match (fingerprint, secret) {
                (Some(fingerprint), Some(packet)) => {
                    slots.push(SecretSlot { fingerprint, sign: false, encrypt: false, packet });
                    Some(slots.len() - 1)
                }
                _ => None,
            };
        }
        if key_no != keys.len() {
            return Err(anyhow!("server key file: key packets did not parse"));
        }
        let cert = Cert::from_packets(pile.into_children())?;
        super::backend::check_server_cert(&cert)?;
        // Slots no self-signature gave a use to are not kept.
        slots.retain(|s| s.sign || s.encrypt);
        if !slots.iter().any(|s| s.sign) {
            return Err(anyhow!("server key has no signing key"));
        }
        if !slots.iter().any(|s| s.encrypt) {
            return Err(anyhow!("server key has no encryption key"));
        }
        Ok(ServerKey { cert, slots, signer: OnceCell::new(), decryptors: None })
    }

    /// The signing key pair, parsed on first use.
    pub(super) fn signer(&self) -> Result<KeyPair> {
        if let Some(k) = self.signer.get() {
            return Ok(k.clone());
        }
        let slot =
            self.slots.iter().find(|s| s.sign).ok_or_else(|| anyhow!("server key has no signing key"))?;
        let pair = slot.keypair()?;
        let _ = self.signer.set(pair.clone());
        Ok(pair)
    }

    /// The decryption key pairs (with the handle of each key), parsed on
    /// first use.
    pub(super) fn decryptors(&mut self) -> Result<&mut Vec<(KeyHandle, KeyPair)>> {
        if self.decryptors.is_none() {
            let mut v = Vec::new();
            for s in self.slots.iter().filter(|s| s.encrypt) {
                v.push((s.fingerprint.clone().into(), s.keypair()?));
            }
            self.decryptors = Some(v);
        }
        self.decryptors.as_mut().ok_or_else(|| anyhow!("server key has no encryption key"))
    }

    /// During a rotation's grace period: requests encrypted to `old` are
    /// decrypted too. Signing stays with this key. The old key's secrets
    /// stay unparsed until a request needs them (most deliveries are mail
    /// to a nym, which only signs).
    pub fn accept_previous(&mut self, mut old: ServerKey) -> Result<()> {
        if self.decryptors.is_none() && old.decryptors.is_none() {
            self.slots
                .extend(old.slots.into_iter().filter(|s| s.encrypt).map(|s| SecretSlot { sign: false, ..s }));
        } else {
            // One of the two was parsed whole (a key file of a shape
            // `split` does not know): both lists are made now.
            let theirs = std::mem::take(old.decryptors()?);
            self.decryptors()?.extend(theirs);
        }
        Ok(())
    }

    /// The old way, every secret parsed at once: for a key file whose
    /// packets `split` does not know.
    fn from_tsk_whole(bin: &[u8]) -> Result<ServerKey> {
        use openpgp::packet::{Key, Packet};
        let pile = openpgp::PacketPile::from_bytes(bin).context("server key file is not an OpenPGP key")?;
        super::backend::check_server_algos(pile.children().filter_map(|p| match p {
            Packet::SecretKey(k) => Some(k.pk_algo()),
            Packet::PublicKey(k) => Some(k.pk_algo()),
            Packet::SecretSubkey(k) => Some(k.pk_algo()),
            Packet::PublicSubkey(k) => Some(k.pk_algo()),
            _ => None,
        }))?;
        let mut signer = None;
        let mut decryptors = Vec::new();
        let mut current: Option<
            Key<openpgp::packet::key::SecretParts, openpgp::packet::key::UnspecifiedRole>,
        > = None;
        for p in pile.children() {
            match p {
                Packet::SecretSubkey(k) => current = Some(k.clone().role_into_unspecified()),
                Packet::SecretKey(k) => current = Some(k.clone().role_into_unspecified()),
                Packet::PublicSubkey(_) | Packet::PublicKey(_) => current = None,
                Packet::Signature(sig) if binds(sig.typ()) && sig.key_flags().is_some() => {
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
        let cert = Cert::from_packets(pile.into_children())?.strip_secret_key_material();
        let signer = signer.ok_or_else(|| anyhow!("server key has no signing key"))?;
        if decryptors.is_empty() {
            return Err(anyhow!("server key has no encryption key"));
        }
        let cell = OnceCell::new();
        let _ = cell.set(signer);
        Ok(ServerKey { cert, slots: Vec::new(), signer: cell, decryptors: Some(decryptors) })
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
    super::backend::check_server_cert(&cert)?;
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

/// The signature types that bind a key or User ID to the primary key (the
/// ones the key file's packets are sorted by).
fn binds(t: openpgp::types::SignatureType) -> bool {
    use openpgp::types::SignatureType;
    matches!(
        t,
        SignatureType::SubkeyBinding
            | SignatureType::DirectKey
            | SignatureType::PositiveCertification
            | SignatureType::GenericCertification
            | SignatureType::CasualCertification
            | SignatureType::PersonaCertification
    )
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

#[cfg(test)]
mod lazy_tests {
    use super::*;
    use openpgp::Fingerprint;

    fn tsk(rsa: Option<u32>) -> Vec<u8> {
        let cert = generate_server_key(&["nymgate Config <config@a.example>".to_string()], rsa).unwrap();
        tsk_armored(&cert).unwrap()
    }

    /// A server key of the shape `init --rsa 2048` makes, made directly
    /// (a RustCrypto build refuses to make one through
    /// [`generate_server_key`]).
    fn rsa_tsk() -> Vec<u8> {
        let (cert, _) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::RSA2k)
            .set_validity_period(None)
            .add_signing_subkey()
            .add_subkey(KeyFlags::empty().set_transport_encryption().set_storage_encryption(), None, None)
            .add_userid("nymgate Config <config@a.example>")
            .generate()
            .unwrap();
        tsk_armored(&cert).unwrap()
    }

    #[test]
    fn an_rsa_server_key_is_refused_by_a_variable_time_build() {
        let bytes = rsa_tsk();
        let bin = dearmor(&bytes).unwrap();
        let refuses = super::super::backend::REFUSES_RSA_SECRETS;
        for r in [ServerKey::from_tsk(&bytes).err(), ServerKey::from_tsk_whole(&bin).err()] {
            assert_eq!(r.is_some(), refuses, "{r:?}");
            if let Some(e) = r {
                assert!(format!("{e:#}").contains("--features crypto-openssl"), "{e:#}");
            }
        }
        let made = generate_server_key(&["nymgate Config <config@a.example>".to_string()], Some(2048));
        assert_eq!(made.is_err(), super::super::backend::REFUSES_RSA_SECRETS);
    }

    #[test]
    fn the_previous_key_during_a_rotation_decrypts_and_stays_unparsed_until_needed() {
        let (a, b) = (tsk(None), tsk(None));
        let mut k = ServerKey::from_tsk(&a).unwrap();
        let old = ServerKey::from_tsk(&b).unwrap();
        let old_fpr = old.cert.fingerprint();
        k.accept_previous(old).unwrap();
        assert!(k.signer.get().is_none() && k.decryptors.is_none());
        // Signing stays with the current key.
        let signer = k.signer().unwrap();
        assert!(k.cert.keys().any(|ka| ka.key().fingerprint() == signer.public().fingerprint()));
        let old_cert = Cert::from_bytes(&b).unwrap();
        let handles: Vec<KeyHandle> = k.decryptors().unwrap().iter().map(|(h, _)| h.clone()).collect();
        assert_eq!(handles.len(), 2);
        assert!(handles.iter().any(|h| old_cert.keys().subkeys().any(|s| h.aliases(s.key().key_handle()))));
        assert!(handles.iter().all(|h| !h.aliases(KeyHandle::from(old_fpr.clone()))), "no primary decrypts");
    }

    #[test]
    fn loading_parses_no_secret_until_an_operation_needs_one() {
        let mut keys = vec![tsk(None), include_bytes!("../../fuzz/keys/server.key").to_vec()];
        if !super::super::backend::REFUSES_RSA_SECRETS {
            keys.push(rsa_tsk());
        }
        for bytes in keys {
            let mut k = ServerKey::from_tsk(&bytes).unwrap();
            // The split path was taken: the secrets wait in their slots.
            assert!(k.signer.get().is_none() && k.decryptors.is_none());
            assert!(!k.slots.is_empty());
            assert!(!k.cert.is_tsk(), "the certificate holds no secrets");
            // Same keys, same uses as parsing the whole file.
            let whole = ServerKey::from_tsk_whole(&dearmor(&bytes).unwrap()).unwrap();
            assert_eq!(k.cert.fingerprint(), whole.cert.fingerprint());
            let signer = k.signer().unwrap();
            assert_eq!(signer.public().fingerprint(), whole.signer().unwrap().public().fingerprint());
            assert!(k.decryptors.is_none(), "signing does not parse the decryption keys");
            let mut w = whole;
            let a: Vec<_> = k.decryptors().unwrap().iter().map(|(h, _)| h.clone()).collect();
            let b: Vec<_> = w.decryptors().unwrap().iter().map(|(h, _)| h.clone()).collect();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_panic() {
        let bytes = tsk(None);
        let bin = dearmor(&bytes).unwrap().to_vec();
        for cut in [1, 2, 7, bin.len() / 3, bin.len() / 2, bin.len() - 1] {
            let _ = ServerKey::from_tsk(&bin[..cut]).map(|mut k| {
                let _ = k.signer();
                let _ = k.decryptors();
            });
        }
        // A secret packet whose public part does not match is refused at use.
        let (_, keys) = split(&bin).unwrap();
        let mut slot = SecretSlot {
            fingerprint: Fingerprint::from_bytes(4, &[0u8; 20]).unwrap(),
            sign: true,
            encrypt: false,
            packet: keys.into_iter().flatten().next().unwrap(),
        };
        assert!(slot.keypair().is_err());
        slot.packet = Protected::from(&b"\xc5\x01\x04"[..]);
        assert!(slot.keypair().is_err());
    }
}
