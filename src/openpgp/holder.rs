//! The nym holder's side (the `nym` client): key generation, request
//! encryption, and the two-layer decryption of articles.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, Password, SessionKey};
use openpgp::packet::prelude::*;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::serialize::stream::{Armorer, Encryptor2, LiteralWriter, Message, Recipient, Signer};
use openpgp::serialize::SerializeInto;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Fingerprint, KeyHandle};

/// A passphrase for the nym's secret key, kept in sequoia's protected
/// memory (encrypted while unused, zeroed when dropped).
#[derive(Clone)]
pub struct Passphrase(Password);

impl From<String> for Passphrase {
    fn from(s: String) -> Passphrase {
        Passphrase(s.into())
    }
}

impl From<&str> for Passphrase {
    fn from(s: &str) -> Passphrase {
        Passphrase(s.into())
    }
}

/// Parse a key lifetime: `6m`, `1y`, `30d`, `2w`, `12h`, a plain number of
/// days, or `never`/`0`.
pub fn parse_expiry(s: &str) -> Result<Option<Duration>> {
    let s = s.trim().to_ascii_lowercase();
    if s == "never" || s == "0" {
        return Ok(None);
    }
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s.as_str(), "d"),
    };
    let n: u64 = num.parse().map_err(|_| anyhow!("cannot read the lifetime `{s}`; try 6m, 1y or 30d"))?;
    let day = 86_400;
    let secs = match unit {
        "h" => 3600,
        "d" => day,
        "w" => 7 * day,
        "m" => 30 * day,
        "y" => 365 * day,
        _ => bail!("unknown unit in `{s}`; use h, d, w, m or y"),
    };
    if n == 0 {
        bail!("a lifetime of zero makes no sense; use `never` for no expiry");
    }
    Ok(Some(Duration::from_secs(n * secs)))
}

/// Make the nym's key: one User ID carrying the nym address, a signing
/// subkey and an encryption subkey, expiring after `expire`.
pub fn generate(
    addr: &str,
    expire: Option<Duration>,
    rsa: bool,
    password: Option<Passphrase>,
) -> Result<Cert> {
    let uid = UserID::from_address(None, None, addr)?;
    let suite = if rsa { CipherSuite::RSA4k } else { CipherSuite::Cv25519 };
    let (cert, _rev) = CertBuilder::general_purpose(suite, Some(uid))
        .set_validity_period(expire)
        .set_password(password.map(|p| p.0))
        .generate()
        .context("generating the nym key")?;
    Ok(cert)
}

/// Read certificates (armored or binary, one or several).
pub fn read_certs(data: &[u8]) -> Result<Vec<Cert>> {
    let certs: Vec<Cert> = CertParser::from_bytes(data)?.collect::<openpgp::Result<_>>()?;
    if certs.is_empty() {
        bail!("no OpenPGP key found");
    }
    Ok(certs)
}

pub fn read_cert(data: &[u8]) -> Result<Cert> {
    let mut certs = read_certs(data)?;
    if certs.len() > 1 {
        bail!("expected one OpenPGP key, found {}", certs.len());
    }
    Ok(certs.remove(0))
}

/// The email addresses of a certificate's valid User IDs.
pub fn emails(cert: &Cert) -> Vec<String> {
    let p = super::policy();
    let Ok(vc) = cert.with_policy(p, None) else { return Vec::new() };
    vc.userids().filter_map(|u| u.userid().email2().ok().flatten().map(|e| e.to_ascii_lowercase())).collect()
}

/// Check that `cert` is a nym server key for `domain`: it must be valid and
/// name config@, send@ and url@ the domain. A wrong key here would send the
/// user's requests to whoever owns it, so this is an error, not a warning.
pub fn check_server_key(cert: &Cert, domain: &str) -> Result<()> {
    let p = super::policy();
    cert.with_policy(p, None)
        .and_then(|vc| vc.alive())
        .map_err(|e| anyhow!("the server key {} is not usable: {e}", cert.fingerprint()))?;
    let have = emails(cert);
    for part in ["config", "send", "url"] {
        let want = format!("{part}@{domain}");
        if !have.contains(&want) {
            bail!(
                "the server key {} has no User ID {want}; is it the key of the server for {domain}?",
                cert.fingerprint()
            );
        }
    }
    if encryption_keys(cert).is_empty() {
        bail!("the server key {} has no usable encryption key", cert.fingerprint());
    }
    Ok(())
}

/// Check that `cert` can be a nym key for `addr` (what the server checks).
pub fn check_nym_key(cert: &Cert, addr: &str) -> Result<()> {
    let p = super::policy();
    let vc = cert
        .with_policy(p, None)
        .and_then(|vc| vc.alive().map(|_| vc))
        .map_err(|e| anyhow!("the key {} is not usable: {e}", cert.fingerprint()))?;
    if !emails(cert).iter().any(|e| e == addr) {
        bail!("the key {} has no User ID with the address {addr}", cert.fingerprint());
    }
    if vc.keys().alive().revoked(false).for_signing().next().is_none() {
        bail!("the key {} has no usable signing key", cert.fingerprint());
    }
    if encryption_keys(cert).is_empty() {
        bail!("the key {} has no usable encryption key", cert.fingerprint());
    }
    Ok(())
}

fn encryption_keys(
    cert: &Cert,
) -> Vec<Key<openpgp::packet::key::PublicParts, openpgp::packet::key::UnspecifiedRole>> {
    let p = super::policy();
    cert.keys()
        .with_policy(p, None)
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption()
        .map(|ka| ka.key().clone())
        .collect()
}

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
    let cert = cert.insert_packets(packets)?;
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
    let cert = cert.insert_packets(packets)?;
    Ok(cert)
}

pub fn armored_public(cert: &Cert) -> Result<String> {
    Ok(String::from_utf8(cert.armored().to_vec()?)?)
}

pub fn armored_secret(cert: &Cert) -> Result<String> {
    Ok(String::from_utf8(cert.as_tsk().armored().to_vec()?)?)
}

fn signing_keypair(cert: &Cert) -> Result<KeyPair> {
    let p = super::policy();
    let ka = cert
        .keys()
        .with_policy(p, None)
        .secret()
        .alive()
        .revoked(false)
        .for_signing()
        .next()
        .ok_or_else(|| anyhow!("the nym key {} has no usable secret signing key", cert.fingerprint()))?;
    ka.key()
        .clone()
        .into_keypair()
        .map_err(|_| anyhow!("the nym's secret key is still locked (passphrase needed)"))
}

/// Encrypt `plaintext` to `to` (armored), signing it with `signer` if given.
pub fn encrypt(plaintext: &[u8], to: &[&Cert], signer: Option<&Cert>) -> Result<String> {
    let keys: Vec<_> = to.iter().flat_map(|c| encryption_keys(c)).collect();
    if keys.is_empty() {
        bail!("no usable encryption key among the recipients");
    }
    let recipients: Vec<Recipient> = keys.iter().map(|k| Recipient::new(k.keyid(), k)).collect();
    let signing = signer.map(signing_keypair).transpose()?;

    let mut sink = Vec::new();
    {
        let message = Message::new(&mut sink);
        let message = Armorer::new(message).build()?;
        let message = Encryptor2::for_recipients(message, recipients).build()?;
        let message = match signing {
            Some(kp) => Signer::new(message, kp).build()?,
            None => message,
        };
        let mut w = LiteralWriter::new(message).build()?;
        w.write_all(plaintext)?;
        w.finalize()?;
    }
    Ok(String::from_utf8(sink)?)
}

/// What came out of one decryption layer.
#[derive(Debug)]
pub struct Opened {
    pub plaintext: Vec<u8>,
    /// The layer was opened with a passphrase (a symmetric layer).
    pub by_password: bool,
    /// Fingerprint of a trusted signer whose signature checked out.
    pub good_signer: Option<Fingerprint>,
    /// Signatures that were present but did not check out.
    pub bad_signatures: usize,
}

struct Helper<'a> {
    keys: &'a [Cert],
    passwords: &'a [String],
    signers: &'a [Cert],
    by_password: bool,
    good_signer: Option<Fingerprint>,
    bad_signatures: usize,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.signers.to_vec())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    match r {
                        Ok(good) => self.good_signer = Some(good.ka.cert().fingerprint()),
                        Err(_) => self.bad_signatures += 1,
                    }
                }
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt<D>(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        mut decrypt: D,
    ) -> openpgp::Result<Option<Fingerprint>>
    where
        D: FnMut(SymmetricAlgorithm, &SessionKey) -> bool,
    {
        let p = super::policy();
        // Articles name no recipient (wildcard key ID), so every secret
        // encryption key is tried on every PKESK that could be ours.
        for cert in self.keys {
            for ka in
                cert.keys().with_policy(p, None).secret().for_transport_encryption().for_storage_encryption()
            {
                let Ok(mut pair) = ka.key().clone().into_keypair() else { continue };
                let kid = ka.key().keyid();
                for pkesk in pkesks {
                    let r = pkesk.recipient();
                    if !(r.is_wildcard() || *r == kid) {
                        continue;
                    }
                    if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                        if decrypt(algo, &sk) {
                            return Ok(Some(cert.fingerprint()));
                        }
                    }
                }
            }
        }
        for pw in self.passwords {
            let pw: Password = pw.as_str().into();
            for skesk in skesks {
                if let Ok((algo, sk)) = skesk.decrypt(&pw) {
                    if decrypt(algo, &sk) {
                        self.by_password = true;
                        return Ok(None);
                    }
                }
            }
        }
        Err(anyhow!("none of our keys or passphrases opens this message"))
    }
}

/// Open one OpenPGP message (armored or binary) with the given secret keys
/// and passphrases; signatures are checked against `signers`.
pub fn open(data: &[u8], keys: &[Cert], passwords: &[String], signers: &[Cert]) -> Result<Opened> {
    let p = super::policy();
    let helper =
        Helper { keys, passwords, signers, by_password: false, good_signer: None, bad_signatures: 0 };
    let mut d = DecryptorBuilder::from_bytes(data)?.with_policy(p, None, helper)?;
    let mut plaintext = Vec::new();
    std::io::copy(&mut d, &mut plaintext)?;
    let h = d.into_helper();
    Ok(Opened {
        plaintext,
        by_password: h.by_password,
        good_signer: h.good_signer,
        bad_signatures: h.bad_signatures,
    })
}

/// The first armored PGP message in `text` (articles may carry a signature
/// line or other noise around it).
pub fn armored_block(text: &str) -> Option<&str> {
    // The markers are ASCII, so the block found in the bytes is valid UTF-8.
    let block = super::find_armor(text.as_bytes(), "MESSAGE")?;
    std::str::from_utf8(block).ok()
}

/// The fully opened article body.
#[derive(Debug)]
pub struct Article {
    pub plaintext: Vec<u8>,
    /// A symmetric layer was peeled.
    pub symmetric: bool,
    /// The server's signature checked out (its fingerprint).
    pub server_signed: Option<Fingerprint>,
    pub bad_signatures: usize,
}

/// Open an article body: first the optional symmetric layer, then the layer
/// encrypted to the nym and signed by the server.
pub fn open_article(body: &str, keys: &[Cert], passwords: &[String], server: &[Cert]) -> Result<Article> {
    let block = armored_block(body).ok_or_else(|| anyhow!("the article carries no PGP message"))?;
    let outer = open(block.as_bytes(), keys, passwords, server)?;
    if outer.by_password {
        let text = String::from_utf8_lossy(&outer.plaintext).into_owned();
        if let Some(inner) = armored_block(&text) {
            let o = open(inner.as_bytes(), keys, &[], server).context("opening the inner layer")?;
            return Ok(Article {
                plaintext: o.plaintext,
                symmetric: true,
                server_signed: o.good_signer,
                bad_signatures: o.bad_signatures,
            });
        }
        // A url@ answer: encrypted with the passphrase only, not signed.
        return Ok(Article {
            plaintext: outer.plaintext,
            symmetric: true,
            server_signed: outer.good_signer,
            bad_signatures: outer.bad_signatures,
        });
    }
    Ok(Article {
        plaintext: outer.plaintext,
        symmetric: false,
        server_signed: outer.good_signer,
        bad_signatures: outer.bad_signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_parsing() {
        assert_eq!(parse_expiry("never").unwrap(), None);
        assert_eq!(parse_expiry("2w").unwrap(), Some(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_expiry("30").unwrap(), Some(Duration::from_secs(30 * 86400)));
        assert!(parse_expiry("1x").is_err());
        assert!(parse_expiry("y").is_err());
    }

    #[test]
    fn sign_encrypt_open_roundtrip() {
        let nym = generate("alice@nym.example", parse_expiry("1y").unwrap(), false, None).unwrap();
        let other = generate("bob@nym.example", None, false, None).unwrap();
        check_nym_key(&nym, "alice@nym.example").unwrap();
        let ct = encrypt(b"hello", &[&other], Some(&nym)).unwrap();
        let o = open(ct.as_bytes(), std::slice::from_ref(&other), &[], std::slice::from_ref(&nym)).unwrap();
        assert_eq!(o.plaintext, b"hello");
        assert_eq!(o.good_signer, Some(nym.fingerprint()));
        assert!(open(ct.as_bytes(), &[nym], &[], &[]).is_err());
    }

    #[test]
    fn protected_keys_unlock() {
        let pw: Passphrase = "s3cret".into();
        let nym = generate("alice@nym.example", None, false, Some(pw.clone())).unwrap();
        assert!(is_protected(&nym));
        assert!(unlock(nym.clone(), &"wrong".into()).is_err());
        let open = unlock(nym, &pw).unwrap();
        assert!(!is_protected(&open));
        assert!(is_protected(&protect(open, &pw).unwrap()));
    }
}
