//! Every OpenPGP operation of the server. This is the only module that
//! touches sequoia-openpgp, so that policy (what we accept, what we emit)
//! is decided in one place.

use anyhow::{anyhow, Context, Result};
use sequoia_openpgp as openpgp;
use std::io::Read;
use std::time::SystemTime;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, Password, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor2, LiteralWriter, Message, Recipient, Signer};
use openpgp::serialize::SerializeInto;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, Fingerprint, KeyHandle, KeyID};

pub use openpgp::Cert as PgpCert;

/// The policy every check uses: sequoia's standard policy (no SHA-1
/// signatures, no weak keys).
pub fn policy() -> &'static StandardPolicy<'static> {
    static P: StandardPolicy<'static> = StandardPolicy::new();
    &P
}

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
        .add_signing_subkey()
        .add_subkey(KeyFlags::empty().set_transport_encryption().set_storage_encryption(), None, None);
    for uid in user_ids {
        b = b.add_userid(uid.as_str());
    }
    let (cert, _rev) = b.generate()?;
    Ok(cert)
}

use openpgp::types::KeyFlags;

/// The server key with its secrets unlocked, ready for use.
pub struct ServerKey {
    pub cert: Cert,
    signer: KeyPair,
    decryptors: Vec<(KeyID, KeyPair)>,
}

impl ServerKey {
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
                        decryptors.push((k.keyid(), k.into_keypair()?));
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

    pub fn fingerprint(&self) -> Fingerprint {
        self.cert.fingerprint()
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

/// What we learnt about one signature on a decrypted message.
#[derive(Debug, Clone)]
pub struct SigInfo {
    /// Fingerprint (hex) of the certificate whose key made a good
    /// signature; `None` when it could not be checked (unknown key) or is bad.
    pub good_signer: Option<String>,
    /// Key IDs (hex) named by the signature (issuer, issuer fingerprint).
    pub issuers: Vec<String>,
    pub created: Option<SystemTime>,
    /// SHA-256 of the serialized signature packet: what the replay cache keeps.
    pub digest: [u8; 32],
    /// The key was known but the signature did not verify.
    pub bad: bool,
}

#[derive(Debug)]
pub struct Decrypted {
    pub plaintext: Vec<u8>,
    pub signatures: Vec<SigInfo>,
}

impl Decrypted {
    /// The first good signature, if any.
    pub fn good(&self) -> Option<&SigInfo> {
        self.signatures.iter().find(|s| s.good_signer.is_some())
    }
}

/// Why a message could not be decrypted. All of these are permanent: the
/// same bytes will never decrypt later.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    #[error("no OpenPGP message found")]
    NoMessage,
    #[error("not encrypted to the server key")]
    NotForUs,
    #[error("malformed OpenPGP data: {0}")]
    Malformed(String),
    #[error("plaintext larger than the limit")]
    TooLarge,
}

struct Helper<'a, F: FnMut(&[String]) -> Vec<Cert>> {
    server: &'a mut ServerKey,
    lookup: F,
    sigs: Vec<SigInfo>,
    decrypted: bool,
}

fn sig_digest(sig: &openpgp::packet::Signature) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let bytes = openpgp::Packet::from(sig.clone()).to_vec().unwrap_or_default();
    Sha256::digest(&bytes).into()
}

fn issuers(sig: &openpgp::packet::Signature) -> Vec<String> {
    let mut v: Vec<String> = sig.get_issuers().into_iter().map(|h| KeyID::from(h).to_hex()).collect();
    v.dedup();
    v
}

impl<F: FnMut(&[String]) -> Vec<Cert>> VerificationHelper for Helper<'_, F> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        let ids: Vec<String> = ids.iter().map(|h| KeyID::from(h.clone()).to_hex()).collect();
        Ok((self.lookup)(&ids))
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        use openpgp::parse::stream::VerificationError as VE;
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    let info = match r {
                        Ok(g) => SigInfo {
                            good_signer: Some(g.ka.cert().fingerprint().to_hex()),
                            issuers: issuers(g.sig),
                            created: g.sig.signature_creation_time(),
                            digest: sig_digest(g.sig),
                            bad: false,
                        },
                        Err(e) => {
                            let (sig, bad) = match e {
                                VE::MalformedSignature { sig, .. } => (sig, true),
                                VE::MissingKey { sig } => (sig, false),
                                VE::UnboundKey { sig, .. } => (sig, true),
                                VE::BadKey { sig, .. } => (sig, true),
                                VE::BadSignature { sig, .. } => (sig, true),
                                // Future variants: count them as bad, never as good.
                                #[allow(unreachable_patterns)]
                                _ => continue,
                            };
                            SigInfo {
                                good_signer: None,
                                issuers: issuers(sig),
                                created: sig.signature_creation_time(),
                                digest: sig_digest(sig),
                                bad,
                            }
                        }
                    };
                    self.sigs.push(info);
                }
            }
        }
        Ok(())
    }
}

impl<F: FnMut(&[String]) -> Vec<Cert>> DecryptionHelper for Helper<'_, F> {
    fn decrypt<D>(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        mut decrypt: D,
    ) -> openpgp::Result<Option<Fingerprint>>
    where
        D: FnMut(SymmetricAlgorithm, &SessionKey) -> bool,
    {
        // Named recipients first, then wildcard ones (hidden recipients),
        // which we try with each of our keys.
        for pkesk in pkesks {
            for (id, pair) in self.server.decryptors.iter_mut() {
                if pkesk.recipient() == id {
                    if let Some((algo, sk)) = pkesk.decrypt(pair, sym_algo) {
                        if decrypt(algo, &sk) {
                            self.decrypted = true;
                            return Ok(None);
                        }
                    }
                }
            }
        }
        for pkesk in pkesks.iter().filter(|p| p.recipient().is_wildcard()) {
            for (_, pair) in self.server.decryptors.iter_mut() {
                if let Some((algo, sk)) = pkesk.decrypt(pair, sym_algo) {
                    if decrypt(algo, &sk) {
                        self.decrypted = true;
                        return Ok(None);
                    }
                }
            }
        }
        Err(anyhow!("not encrypted to the server key"))
    }
}

/// Find the first armored block of `kind` ("MESSAGE", "PUBLIC KEY BLOCK")
/// in `text`, markers included.
pub fn find_armor<'t>(text: &'t [u8], kind: &str) -> Option<&'t [u8]> {
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let start = find(text, begin.as_bytes())?;
    let rest = &text[start..];
    let stop = find(rest, end.as_bytes())? + end.len();
    Some(&rest[..stop])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decrypt `message` (armored or binary) with the server key, verifying
/// any signatures against certificates from `lookup`. At most `max` bytes
/// of plaintext are accepted, which also defuses compression bombs.
pub fn decrypt<F>(
    server: &mut ServerKey,
    message: &[u8],
    max: usize,
    lookup: F,
) -> std::result::Result<Decrypted, DecryptError>
where
    F: FnMut(&[String]) -> Vec<Cert>,
{
    decrypt_at(server, message, max, None, lookup)
}

/// [`decrypt`] with signatures judged at `time` instead of now. Used once
/// more on a signature dated in the future, to learn whether a nym really
/// made it (and tell that nym why it was refused).
pub fn decrypt_at<F>(
    server: &mut ServerKey,
    message: &[u8],
    max: usize,
    time: Option<SystemTime>,
    lookup: F,
) -> std::result::Result<Decrypted, DecryptError>
where
    F: FnMut(&[String]) -> Vec<Cert>,
{
    // sequoia can panic on some malformed input (an unwrap in its parser,
    // found by our fuzzer). Such input is junk like any other: report it
    // as malformed instead of letting the MTA retry it forever.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decrypt_inner(server, message, max, time, lookup)
    }));
    caught.unwrap_or_else(|_| Err(DecryptError::Malformed("parser panicked".into())))
}

fn decrypt_inner<F>(
    server: &mut ServerKey,
    message: &[u8],
    max: usize,
    time: Option<SystemTime>,
    lookup: F,
) -> std::result::Result<Decrypted, DecryptError>
where
    F: FnMut(&[String]) -> Vec<Cert>,
{
    let helper = Helper { server, lookup, sigs: Vec::new(), decrypted: false };
    let mut d =
        match DecryptorBuilder::from_bytes(message).and_then(|b| b.with_policy(policy(), time, helper)) {
            Ok(d) => d,
            Err(e) => return Err(classify(e)),
        };
    let mut plaintext = Vec::new();
    match (&mut d).take(max as u64 + 1).read_to_end(&mut plaintext) {
        Ok(_) => {}
        Err(e) => return Err(DecryptError::Malformed(e.to_string())),
    }
    if plaintext.len() > max {
        return Err(DecryptError::TooLarge);
    }
    if !d.message_processed() {
        // Signatures are checked once the whole message was read.
        return Err(DecryptError::Malformed("message did not end properly".into()));
    }
    let helper = d.into_helper();
    if !helper.decrypted {
        return Err(DecryptError::NotForUs);
    }
    Ok(Decrypted { plaintext, signatures: helper.sigs })
}

fn classify(e: anyhow::Error) -> DecryptError {
    let s = e.to_string();
    if s.contains("not encrypted to the server key") {
        DecryptError::NotForUs
    } else {
        DecryptError::Malformed(s)
    }
}

/// Read every certificate in a key block.
pub fn parse_certs(block: &[u8]) -> Result<Vec<Cert>> {
    std::panic::catch_unwind(|| parse_certs_inner(block))
        .unwrap_or_else(|_| Err(anyhow!("key parser panicked")))
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
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_nym_cert_inner(cert, hosts)))
        .unwrap_or(Err(KeyProblem::Invalid))
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
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| old.merge_public(new)))
        .unwrap_or_else(|_| Err(anyhow!("key merge panicked")))
}

/// Sign `payload` with the server key and encrypt it to `cert`. With
/// `hidden`, the recipient key IDs are the wildcard, so the message does
/// not name its reader (what `gpg --throw-keyids` does).
pub fn sign_encrypt(server: &mut ServerKey, cert: &Cert, payload: &[u8], hidden: bool) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(armored_size(payload.len()));
    sign_encrypt_into(&mut out, server, cert, &mut &payload[..], hidden)?;
    Ok(out)
}

/// Room for the armored encryption of `n` bytes: base64 (4/3), line
/// breaks and packet overhead. Reserving it up front avoids growing (and
/// briefly doubling) a large buffer.
pub fn armored_size(n: usize) -> usize {
    n / 3 * 4 + n / 40 + 4096
}

/// [`sign_encrypt`] of everything `payload` yields, appended to `out`
/// (which may already hold the article's headers): a large message is read
/// as a stream and never held twice.
pub fn sign_encrypt_into(
    out: &mut Vec<u8>,
    server: &mut ServerKey,
    cert: &Cert,
    payload: &mut dyn std::io::Read,
    hidden: bool,
) -> Result<()> {
    let vc = cert.with_policy(policy(), None)?;
    let keys: Vec<_> = vc.keys().alive().revoked(false).supported().for_transport_encryption().collect();
    let keys = if keys.is_empty() {
        vc.keys().alive().revoked(false).supported().for_storage_encryption().collect()
    } else {
        keys
    };
    if keys.is_empty() {
        return Err(anyhow!("nym key has no usable encryption key"));
    }
    let recipients: Vec<Recipient> = keys
        .iter()
        .map(|ka| {
            let id = if hidden { KeyID::wildcard() } else { ka.key().keyid() };
            Recipient::new(id, ka.key())
        })
        .collect();
    {
        let msg = Message::new(out);
        let msg = Armorer::new(msg).build()?;
        let msg = Encryptor2::for_recipients(msg, recipients).build()?;
        let msg = Signer::new(msg, server.signer.clone()).build()?;
        let mut w = LiteralWriter::new(msg).build()?;
        // io::copy feeds the writers 8 KiB at a time: sequoia's armor
        // writer sizes its scratch buffer to the largest single write.
        std::io::copy(payload, &mut w)?;
        w.finalize()?;
    }
    Ok(())
}

/// Encrypt `data` with a passphrase only (PROTOCOL.md section 5, step 2).
pub fn encrypt_symmetric(data: &[u8], passphrase: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(armored_size(data.len()));
    encrypt_symmetric_into(&mut out, data, passphrase)?;
    Ok(out)
}

/// [`encrypt_symmetric`], appending to `out`.
pub fn encrypt_symmetric_into(out: &mut Vec<u8>, data: &[u8], passphrase: &str) -> Result<()> {
    {
        let msg = Message::new(out);
        let msg = Armorer::new(msg).build()?;
        let msg = Encryptor2::with_passwords(msg, Some(Password::from(passphrase))).build()?;
        let mut w = LiteralWriter::new(msg).build()?;
        std::io::copy(&mut &data[..], &mut w)?;
        w.finalize()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // An input our fuzzer found that makes sequoia 1.22's parser panic.
    #[test]
    fn parser_panic_is_a_malformed_message() {
        let mut key = ServerKey::from_tsk(include_bytes!("../fuzz/keys/server.key")).unwrap();
        let bad = include_bytes!("../fuzz/regressions/openpgp-sequoia-parse-5610-unwrap.bin");
        let r = decrypt(&mut key, bad, 1 << 20, |_| vec![]);
        assert!(matches!(r, Err(DecryptError::Malformed(_))), "{r:?}");
        // The key is still usable afterwards.
        let cert = pgp_test_cert();
        let enc = sign_encrypt(&mut key, &cert, b"still fine", true).unwrap();
        assert!(enc.starts_with(b"-----BEGIN PGP MESSAGE-----"));
    }

    // Another: an integer overflow in sequoia's ECDH code (a panic with
    // overflow checks on, as in debug builds and the fuzzer).
    #[test]
    fn ecdh_overflow_is_a_malformed_message() {
        let mut key = ServerKey::from_tsk(include_bytes!("../fuzz/keys/server.key")).unwrap();
        let bad = include_bytes!("../fuzz/regressions/openpgp-sequoia-ecdh-340-overflow.bin");
        let r = decrypt(&mut key, bad, 1 << 20, |_| vec![]);
        assert!(r.is_err(), "{r:?}");
    }

    fn pgp_test_cert() -> Cert {
        parse_certs(include_bytes!("../fuzz/keys/nym.asc")).unwrap().remove(0)
    }
}
