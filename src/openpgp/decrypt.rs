//! The server's decryption of requests: decrypt with the server key,
//! check signatures against the nyms' keys, cap the plaintext (through the
//! guard every untrusted message passes).

use anyhow::anyhow;
use sequoia_openpgp as openpgp;
use std::time::SystemTime;

use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{DecryptionHelper, MessageLayer, MessageStructure, VerificationHelper};
use openpgp::serialize::SerializeInto;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle, KeyID};

use super::guard::{self, Refusal};
use super::ServerKey;

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
    /// Intended Recipient Fingerprints (hex) the signature names; GnuPG
    /// and sequoia add them when they sign and encrypt together.
    pub intended: Vec<String>,
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

impl From<Refusal> for DecryptError {
    fn from(r: Refusal) -> DecryptError {
        match r {
            Refusal::TooLarge => DecryptError::TooLarge,
            Refusal::NotForUs => DecryptError::NotForUs,
            Refusal::Malformed(s) => DecryptError::Malformed(s),
        }
    }
}

struct Helper<'a, F: FnMut(&[String]) -> Vec<Cert>> {
    server: &'a mut ServerKey,
    lookup: F,
    sigs: Vec<SigInfo>,
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
                            intended: g.sig.intended_recipients().map(|f| f.to_hex()).collect(),
                        },
                        Err(e) => {
                            let (sig, bad) = match e {
                                VE::MalformedSignature { sig, .. } => (sig, true),
                                VE::MissingKey { sig } => (sig, false),
                                VE::UnboundKey { sig, .. } => (sig, true),
                                VE::BadKey { sig, .. } => (sig, true),
                                VE::BadSignature { sig, .. } => (sig, true),
                                // A signature that did not even parse, and
                                // future variants: never good, and nothing
                                // to record.
                                _ => continue,
                            };
                            SigInfo {
                                good_signer: None,
                                issuers: issuers(sig),
                                created: sig.signature_creation_time(),
                                digest: sig_digest(sig),
                                bad,
                                intended: sig.intended_recipients().map(|f| f.to_hex()).collect(),
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
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        // Named recipients first, then wildcard ones (hidden recipients),
        // which we try with each of our keys.
        let decryptors = self.server.decryptors()?;
        for pkesk in pkesks {
            let Some(r) = pkesk.recipient() else { continue };
            for (id, pair) in decryptors.iter_mut() {
                if r.aliases(&*id) {
                    if let Some((algo, sk)) = pkesk.decrypt(pair, sym_algo) {
                        if decrypt(algo, &sk) {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        for pkesk in pkesks.iter().filter(|p| p.recipient().is_none()) {
            for (_, pair) in decryptors.iter_mut() {
                if let Some((algo, sk)) = pkesk.decrypt(pair, sym_algo) {
                    if decrypt(algo, &sk) {
                        return Ok(None);
                    }
                }
            }
        }
        Err(anyhow!("not encrypted to the server key"))
    }
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
    let helper = Helper { server, lookup, sigs: Vec::new() };
    let (plaintext, helper) = guard::open(message, max, time, helper)?;
    Ok(Decrypted { plaintext, signatures: helper.sigs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openpgp::{parse_certs, sign_encrypt};

    // An input our fuzzer found that makes sequoia 1.22's parser panic.
    #[test]
    fn parser_panic_is_a_malformed_message() {
        let mut key = ServerKey::from_tsk(include_bytes!("../../fuzz/keys/server.key")).unwrap();
        let bad = include_bytes!("../../fuzz/regressions/openpgp-sequoia-parse-5610-unwrap.bin");
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
        let mut key = ServerKey::from_tsk(include_bytes!("../../fuzz/keys/server.key")).unwrap();
        let bad = include_bytes!("../../fuzz/regressions/openpgp-sequoia-ecdh-340-overflow.bin");
        let r = decrypt(&mut key, bad, 1 << 20, |_| vec![]);
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn a_signed_request_from_the_client_decrypts_with_a_good_signature() {
        use crate::openpgp::holder;
        use crate::openpgp::testkit::{nym, server};
        let mut key = server();
        let to = key.cert.clone();
        let alice = nym("alice@nym.example");
        let armored = holder::encrypt(b"subject: hi\n", &[&to], Some(&alice)).unwrap();
        let public = alice.clone().strip_secret_key_material();
        let d = decrypt(&mut key, armored.as_bytes(), 1 << 20, |_| vec![public.clone()]).unwrap();
        assert_eq!(d.plaintext, b"subject: hi\n");
        let good = d.good().expect("a good signature");
        assert_eq!(good.good_signer.as_deref(), Some(alice.fingerprint().to_hex().as_str()));
        // Unknown signer: the signature is there, neither good nor bad.
        let d = decrypt(&mut key, armored.as_bytes(), 1 << 20, |_| vec![]).unwrap();
        assert!(d.good().is_none() && d.signatures.len() == 1 && !d.signatures[0].bad);
        // Over the cap.
        let r = decrypt(&mut key, armored.as_bytes(), 4, |_| vec![]);
        assert!(matches!(r, Err(DecryptError::TooLarge)), "{r:?}");
    }

    fn pgp_test_cert() -> Cert {
        parse_certs(include_bytes!("../../fuzz/keys/nym.asc")).unwrap().remove(0)
    }
}
