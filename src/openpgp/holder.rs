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
use openpgp::parse::stream::{DecryptionHelper, MessageLayer, MessageStructure, VerificationHelper};
use openpgp::parse::Parse;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::serialize::SerializeInto;
use openpgp::types::SymmetricAlgorithm;
use openpgp::KeyHandle;

use super::encrypt::seipdv1;
use super::guard::{self, Refusal};
pub use super::holder_key::{
    add_encryption_subkey, erase_secret_subkeys, has_secret, is_protected, protect, renew, unlock,
};

/// The most plaintext a message to a nym may have. The server's default
/// `max_message_size` is 20 MiB, so every mail it relays fits; a
/// compression bomb stops here. The symmetric layer holds the armored
/// inner message, a third larger: its cap is [`outer_max`].
pub const MAX_PLAINTEXT: usize = 24 << 20;

/// The cap for a layer that holds an armored message of up to
/// [`MAX_PLAINTEXT`] bytes of plaintext.
fn outer_max() -> usize {
    super::armored_size(MAX_PLAINTEXT)
}

/// A passphrase for the nym's secret key, kept in sequoia's protected
/// memory (encrypted while unused, zeroed when dropped).
#[derive(Clone)]
pub struct Passphrase(pub(super) Password);

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
    let (cert, _rev) = CertBuilder::general_purpose(Some(uid))
        .set_cipher_suite(suite)
        .set_features(seipdv1())?
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
    vc.userids().filter_map(|u| u.userid().email().ok().flatten().map(|e| e.to_ascii_lowercase())).collect()
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
    // The server refuses a key that claims to encrypt but cannot.
    let keys = super::cert::encryption_keys(&vc);
    if keys.is_empty() || !keys.iter().all(|ka| super::cert::can_encrypt(ka.key())) {
        bail!("the key {} has no usable encryption key", cert.fingerprint());
    }
    Ok(())
}

/// The keys to encrypt to (as the server chooses them), without those that
/// cannot take encryption.
fn encryption_keys(
    cert: &Cert,
) -> Vec<Key<openpgp::packet::key::PublicParts, openpgp::packet::key::UnspecifiedRole>> {
    let Ok(vc) = cert.with_policy(super::policy(), None) else { return Vec::new() };
    super::cert::encryption_keys(&vc)
        .into_iter()
        .filter(|ka| super::cert::can_encrypt(ka.key()))
        .map(|ka| ka.key().clone())
        .collect()
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
    let recipients: Vec<Recipient> =
        keys.iter().map(|k| Recipient::new(seipdv1(), Some(k.keyid().into()), k)).collect();
    let signing = signer.map(signing_keypair).transpose()?;

    let mut sink = Vec::new();
    {
        let message = Message::new(&mut sink);
        let message = Armorer::new(message).build()?;
        let message = Encryptor::for_recipients(message, recipients).build()?;
        let message = match signing {
            Some(kp) => Signer::new(message, kp)?.build()?,
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
    /// Fingerprint (hex) of a trusted signer whose signature checked out.
    pub good_signer: Option<String>,
    /// The good signature marks the payload as the server's own notice:
    /// the service that speaks (see `NOTICE_NOTATION`).
    pub notice: Option<String>,
    /// Intended Recipient Fingerprints (hex) the good signature names.
    pub intended: Vec<String>,
    /// Signatures that were present but did not check out.
    pub bad_signatures: usize,
}

struct Helper<'a> {
    keys: &'a [Cert],
    passwords: &'a [String],
    signers: &'a [Cert],
    by_password: bool,
    good_signer: Option<String>,
    notice: Option<String>,
    intended: Vec<String>,
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
                        Ok(good) => {
                            self.good_signer = Some(good.ka.cert().fingerprint().to_hex());
                            self.intended = good.sig.intended_recipients().map(|f| f.to_hex()).collect();
                            self.notice = good
                                .sig
                                .notation(super::NOTICE_NOTATION)
                                .next()
                                .map(|v| String::from_utf8_lossy(v).into_owned());
                        }
                        Err(_) => self.bad_signatures += 1,
                    }
                }
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let p = super::policy();
        // Articles name no recipient (wildcard key ID), so every secret
        // encryption key is tried on every PKESK that could be ours.
        for cert in self.keys {
            for ka in
                cert.keys().with_policy(p, None).secret().for_transport_encryption().for_storage_encryption()
            {
                let Ok(mut pair) = ka.key().clone().into_keypair() else { continue };
                let ours = KeyHandle::from(ka.key().fingerprint());
                for pkesk in pkesks {
                    if pkesk.recipient().is_some_and(|r| !r.aliases(&ours)) {
                        continue;
                    }
                    if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                        if decrypt(algo, &sk) {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        for pw in self.passwords {
            let pw: Password = pw.as_str().into();
            for skesk in skesks.iter().filter(|s| guard::s2k_affordable(s)) {
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

/// Open one OpenPGP message (armored or binary) from the newsgroup with the
/// given secret keys and passphrases; signatures are checked against
/// `signers`. Only a message encrypted to one of the keys or passphrases
/// opens; at most `max` bytes of plaintext are read.
fn open_capped(
    data: &[u8],
    keys: &[Cert],
    passwords: &[String],
    signers: &[Cert],
    max: usize,
) -> Result<Opened> {
    let helper = Helper {
        keys,
        passwords,
        signers,
        by_password: false,
        good_signer: None,
        notice: None,
        intended: Vec::new(),
        bad_signatures: 0,
    };
    let (plaintext, h) = guard::open(data, max, None, helper).map_err(|r| match r {
        Refusal::TooLarge => anyhow!("the message is larger than {} MiB once opened", max >> 20),
        Refusal::NotForUs => anyhow!("the message is not encrypted to this nym"),
        Refusal::Malformed(e) => anyhow!("malformed OpenPGP message: {e}"),
    })?;
    Ok(Opened {
        plaintext,
        by_password: h.by_password,
        good_signer: h.good_signer,
        notice: h.notice,
        intended: h.intended,
        bad_signatures: h.bad_signatures,
    })
}

/// [`open_capped`] with the cap of a whole article.
pub fn open(data: &[u8], keys: &[Cert], passwords: &[String], signers: &[Cert]) -> Result<Opened> {
    open_capped(data, keys, passwords, signers, outer_max())
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
    /// The server's signature checked out (its fingerprint, hex).
    pub server_signed: Option<String>,
    /// The server's signature marks this as its own notice (the service
    /// that speaks); `None` for mail the server relayed.
    pub notice: Option<String>,
    /// Whom the server's signature says it wrote to (fingerprints, hex).
    pub intended: Vec<String>,
    pub bad_signatures: usize,
}

/// Open an article body: first the optional symmetric layer, then the layer
/// encrypted to the nym and signed by the server.
pub fn open_article(body: &str, keys: &[Cert], passwords: &[String], server: &[Cert]) -> Result<Article> {
    let mut a = open_article_inner(body, keys, passwords, server)?;
    // The server names the nym it wrote to; an article it signed for
    // another nym (re-encrypted to us by that nym) is not its mail to us.
    if a.server_signed.is_some() && !a.intended.is_empty() {
        let ours: Vec<String> = keys.iter().map(|k| k.fingerprint().to_hex()).collect();
        if !a.intended.iter().any(|f| ours.iter().any(|o| o.eq_ignore_ascii_case(f))) {
            a.server_signed = None;
            a.notice = None;
            a.bad_signatures += 1;
        }
    }
    Ok(a)
}

fn open_article_inner(body: &str, keys: &[Cert], passwords: &[String], server: &[Cert]) -> Result<Article> {
    let block = armored_block(body).ok_or_else(|| anyhow!("the article carries no PGP message"))?;
    let outer = open_capped(block.as_bytes(), keys, passwords, server, outer_max())?;
    if outer.by_password {
        if let Some(inner) = super::find_armor(&outer.plaintext, "MESSAGE") {
            let o =
                open_capped(inner, keys, &[], server, MAX_PLAINTEXT).context("opening the inner layer")?;
            return Ok(Article {
                plaintext: o.plaintext,
                symmetric: true,
                server_signed: o.good_signer,
                notice: o.notice,
                intended: o.intended,
                bad_signatures: o.bad_signatures,
            });
        }
        // A url@ answer: encrypted with the passphrase only, not signed.
        return Ok(Article {
            plaintext: outer.plaintext,
            symmetric: true,
            server_signed: outer.good_signer,
            notice: None,
            intended: Vec::new(),
            bad_signatures: outer.bad_signatures,
        });
    }
    if outer.plaintext.len() > MAX_PLAINTEXT {
        bail!("the message is larger than {} MiB once opened", MAX_PLAINTEXT >> 20);
    }
    Ok(Article {
        plaintext: outer.plaintext,
        symmetric: false,
        server_signed: outer.good_signer,
        notice: outer.notice,
        intended: outer.intended,
        bad_signatures: outer.bad_signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_adds_the_newest_encryption_subkey_and_erases_the_old_secret_on_request() {
        let pw: Passphrase = "pass".into();
        let locked =
            generate("rot@nym.example", Some(Duration::from_secs(86400 * 30)), false, Some(pw.clone()))
                .unwrap();
        let unlocked = unlock(locked.clone(), &pw).unwrap();
        let (rotated, old) = add_encryption_subkey(locked, &unlocked, Some(&pw)).unwrap();
        assert_eq!(old.len(), 1);
        assert!(is_protected(&rotated), "the new secret is protected like the others");
        check_nym_key(&rotated, "rot@nym.example").unwrap();
        let vc = rotated.with_policy(super::super::policy(), None).unwrap();
        let newest = super::super::cert::newest_encryption_key(&vc).unwrap().key().fingerprint().to_hex();
        assert_ne!(newest, old[0]);
        // As long as the primary key.
        let sub = vc.keys().subkeys().find(|k| k.key().fingerprint().to_hex() == newest).unwrap();
        assert_eq!(sub.key_expiration_time(), vc.primary_key().key_expiration_time());
        assert!(has_secret(&rotated, &newest) && has_secret(&rotated, &old[0]));
        // A message to the rotated key opens with the new subkey alone.
        let erased = erase_secret_subkeys(rotated, &old).unwrap();
        assert!(!has_secret(&erased, &old[0]));
        assert!(has_secret(&erased, &newest));
        let msg = encrypt(b"after", &[&erased], None).unwrap();
        let opened = unlock(erased, &pw).unwrap();
        assert!(open_article(&msg, &[opened], &[], &[]).is_ok());
    }

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
        assert_eq!(o.good_signer, Some(nym.fingerprint().to_hex()));
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

    mod articles {
        use super::super::super::testkit::{bomb, peak_alloc, server, signed_only};
        use super::super::super::{encrypt_symmetric, sign_encrypt};
        use super::*;

        struct World {
            server: crate::openpgp::ServerKey,
            alice: Cert,
        }

        fn world() -> World {
            World { server: server(), alice: generate("alice@nym.example", None, false, None).unwrap() }
        }

        impl World {
            fn read(&self, body: &[u8], passwords: &[&str]) -> Result<Article> {
                let pw: Vec<String> = passwords.iter().map(|p| p.to_string()).collect();
                let body = String::from_utf8(body.to_vec()).unwrap();
                open_article(
                    &body,
                    std::slice::from_ref(&self.alice),
                    &pw,
                    std::slice::from_ref(&self.server.cert),
                )
            }
        }

        #[test]
        fn an_article_the_server_wrote_to_another_nym_is_not_trusted() {
            use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
            use std::io::Write;
            let w = world();
            let bob = generate("bob@nym.example", None, false, None).unwrap();
            // What a nym relaying the server's mail to bob on to alice
            // produces: the server's signature naming bob, encrypted to alice.
            let recipients: Vec<_> = w
                .alice
                .keys()
                .with_policy(super::super::super::policy(), None)
                .for_transport_encryption()
                .map(|ka| {
                    openpgp::serialize::stream::Recipient::new(
                        openpgp::types::Features::empty().set_seipdv1(),
                        None,
                        ka.key(),
                    )
                })
                .collect();
            let mut out = Vec::new();
            {
                let m = Message::new(&mut out);
                let m = Armorer::new(m).build().unwrap();
                let m = Encryptor::for_recipients(m, recipients).build().unwrap();
                let m = Signer::new(m, w.server.signer().unwrap())
                    .unwrap()
                    .add_intended_recipient(&bob)
                    .build()
                    .unwrap();
                let mut l = LiteralWriter::new(m).build().unwrap();
                l.write_all(b"From: config@nym.example\n\nfor bob\n").unwrap();
                l.finalize().unwrap();
            }
            let a = w.read(&out, &[]).unwrap();
            assert!(a.server_signed.is_none(), "misdirected article trusted");
            assert!(a.bad_signatures > 0);
            // What the server writes to alice names alice and is trusted.
            let mut w = w;
            let alice = w.alice.clone();
            let mine = sign_encrypt(&mut w.server, &alice, b"From: x\n\nfor alice\n", true).unwrap();
            assert!(w.read(&mine, &[]).unwrap().server_signed.is_some());
        }

        #[test]
        fn only_the_servers_own_notices_carry_the_notice_mark() {
            let mut w = world();
            let alice = w.alice.clone();
            let mut notice = Vec::new();
            let text = b"From: config@nym.example\nSubject: Nym deleted\n\nbye\n";
            crate::openpgp::sign_encrypt_into(
                &mut notice,
                &mut w.server,
                &alice,
                &mut &text[..],
                true,
                Some("config"),
            )
            .unwrap();
            let a = w.read(&notice, &[]).unwrap();
            assert_eq!(a.notice.as_deref(), Some("config"));
            assert!(a.server_signed.is_some());
            // The same text relayed as mail to the nym: signed, but no notice.
            let relayed = sign_encrypt(&mut w.server, &alice, text, true).unwrap();
            let a = w.read(&relayed, &[]).unwrap();
            assert!(a.server_signed.is_some());
            assert_eq!(a.notice, None);
        }

        #[test]
        fn an_article_from_the_server_opens_with_a_good_signature() {
            let mut w = world();
            let alice = w.alice.clone();
            let body = sign_encrypt(&mut w.server, &alice, b"From: someone\n\nhello\n", true).unwrap();
            let a = w.read(&body, &[]).unwrap();
            assert_eq!(a.plaintext, b"From: someone\n\nhello\n");
            assert!(!a.symmetric && a.bad_signatures == 0);
            assert_eq!(a.server_signed, Some(w.server.cert.fingerprint().to_hex()));
        }

        #[test]
        fn a_symmetric_layer_is_peeled_first() {
            let mut w = world();
            let alice = w.alice.clone();
            let inner = sign_encrypt(&mut w.server, &alice, b"hello\n", false).unwrap();
            let body = encrypt_symmetric(&inner, "panda").unwrap();
            let a = w.read(&body, &["old", "panda"]).unwrap();
            assert_eq!(a.plaintext, b"hello\n");
            assert!(a.symmetric && a.server_signed.is_some());
            assert!(w.read(&body, &["wrong"]).is_err());
            // A url@ answer: the passphrase only, no signature.
            let a = w.read(&encrypt_symmetric(b"<html>", "panda").unwrap(), &["panda"]).unwrap();
            assert!(a.symmetric && a.server_signed.is_none() && a.plaintext == b"<html>");
        }

        #[test]
        fn a_server_signed_message_posted_in_clear_is_not_the_nyms_mail() {
            // What any nym finds inside its own article, posted again
            // unencrypted under alice's hSub.
            let w = world();
            let body = signed_only(&w.server, b"From: config@nym.example\nSubject: Nym deleted\n\n");
            let e = w.read(&body, &[]).unwrap_err();
            assert!(format!("{e:#}").contains("not encrypted"), "{e:#}");
            // Nor inside a symmetric layer with alice's passphrase.
            let body = encrypt_symmetric(&body, "panda").unwrap();
            assert!(w.read(&body, &["panda"]).is_err());
        }

        #[test]
        fn someone_elses_article_does_not_open() {
            let mut w = world();
            let bob = generate("bob@nym.example", None, false, None).unwrap();
            let body = sign_encrypt(&mut w.server, &bob, b"for bob", true).unwrap();
            assert!(w.read(&body, &[]).is_err());
        }

        #[test]
        fn a_compression_bomb_in_an_article_is_refused_near_the_cap() {
            let w = world();
            let msg = bomb(&w.alice, 16 << 20);
            let cap = 1 << 20;
            let (r, peak) = peak_alloc(|| open_capped(&msg, std::slice::from_ref(&w.alice), &[], &[], cap));
            let e = r.unwrap_err();
            assert!(format!("{e:#}").contains("larger than"), "{e:#}");
            assert!(peak < cap + cap / 4 + (3 << 20), "peak {peak}");
        }
    }
}
