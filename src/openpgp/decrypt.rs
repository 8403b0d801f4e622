//! The server's decryption of requests: decrypt with the server key,
//! check signatures against the nyms' keys, cap the plaintext.

use anyhow::anyhow;
use sequoia_openpgp as openpgp;
use std::io::Read;
use std::time::SystemTime;

use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, Fingerprint, KeyHandle, KeyID};

use super::guard::guarded;
use super::{policy, ServerKey};

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
    guarded(|| decrypt_inner(server, message, max, time, lookup))
        .unwrap_or_else(|| Err(DecryptError::Malformed("parser panicked".into())))
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

    fn pgp_test_cert() -> Cert {
        parse_certs(include_bytes!("../../fuzz/keys/nym.asc")).unwrap().remove(0)
    }
}
