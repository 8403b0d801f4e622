//! What the server sends: messages signed by the server and encrypted to a
//! nym, and the optional symmetric layer (PROTOCOL.md section 5).

use anyhow::{anyhow, Result};
use sequoia_openpgp as openpgp;

use openpgp::crypto::Password;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::Features;
use openpgp::Cert;

use super::cert::newest_encryption_key;
use super::{policy, ServerKey};
use crate::protocol::padding;

/// The signature notation that marks the server's own notices. Mail the
/// server relays to a nym is signed without it, so a relayed mail that
/// pretends to come from config@ cannot pass for a notice. The value is
/// the service that speaks (`config`, `send`, ...). Not critical: GnuPG
/// shows it (`--verify-options show-notations`) and accepts it.
pub const NOTICE_NOTATION: &str = "notice@nymgate.invalid";

/// Sign `payload` with the server key and encrypt it to `cert` (to its
/// newest valid encryption subkey only). With
/// `hidden`, the recipient key IDs are the wildcard, so the message does
/// not name its reader (what `gpg --throw-keyids` does).
pub fn sign_encrypt(server: &mut ServerKey, cert: &Cert, payload: &[u8], hidden: bool) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(armored_size(payload.len()));
    sign_encrypt_into(&mut out, server, cert, &mut &payload[..], hidden, None)?;
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
/// as a stream and never held twice. `notice` names the service when the
/// payload is the server's own notice ([`NOTICE_NOTATION`]).
pub fn sign_encrypt_into(
    out: &mut Vec<u8>,
    server: &mut ServerKey,
    cert: &Cert,
    payload: &mut dyn std::io::Read,
    hidden: bool,
    notice: Option<&str>,
) -> Result<()> {
    sign_encrypt_padded_into(out, server, cert, payload, hidden, notice, false)
}

/// [`sign_encrypt_into`], with the signed message padded with Marker
/// packets to its size class when `pad` is set
/// ([`crate::protocol::padding`]), inside the encryption.
pub fn sign_encrypt_padded_into(
    out: &mut Vec<u8>,
    server: &mut ServerKey,
    cert: &Cert,
    payload: &mut dyn std::io::Read,
    hidden: bool,
    notice: Option<&str>,
    pad: bool,
) -> Result<()> {
    let vc = cert.with_policy(policy(), None)?;
    // The newest encryption key only, as GnuPG does (forward secrecy for
    // holders who rotate their encryption subkey).
    let ka = newest_encryption_key(&vc).ok_or_else(|| anyhow!("nym key has no usable encryption key"))?;
    let id = if hidden { None } else { Some(ka.key().keyid().into()) };
    let recipients = vec![Recipient::new(seipdv1(), id, ka.key())];
    {
        let msg = Message::new(out);
        let msg = Armorer::new(msg).build()?;
        let encryptor = Encryptor::for_recipients(msg, recipients).build()?;
        // The signed message is written through a counter into the
        // encryption, so that the padding after it can make its length
        // exact without holding the message twice.
        let mut counted = Counting { inner: encryptor, written: 0 };
        let msg = Message::new(&mut counted);
        let msg = server_signed(msg, server, cert, notice)?;
        let mut w = LiteralWriter::new(msg).build()?;
        // io::copy feeds the writers 8 KiB at a time: sequoia's armor
        // writer sizes its scratch buffer to the largest single write.
        std::io::copy(payload, &mut w)?;
        w.finalize()?;
        let Counting { inner: mut encryptor, written } = counted;
        if pad {
            let size = padding::target(written);
            padding::write_fill(&mut encryptor, size - written)?;
        }
        encryptor.finalize()?;
    }
    Ok(())
}

/// The server's signature layer over `msg`. It names the nym's key as its
/// intended recipient, so that a nym cannot re-encrypt an article of its
/// own to another nym and have it pass as the server's mail to them, and
/// carries the notice mark when `notice` names the speaking service.
fn server_signed<'a>(
    msg: Message<'a>,
    server: &mut ServerKey,
    cert: &Cert,
    notice: Option<&str>,
) -> Result<Message<'a>> {
    let signer = match notice {
        None => Signer::new(msg, server.signer()?)?,
        Some(service) => {
            use openpgp::packet::signature::subpacket::NotationDataFlags;
            use openpgp::packet::signature::SignatureBuilder;
            let template = SignatureBuilder::new(openpgp::types::SignatureType::Binary).add_notation(
                NOTICE_NOTATION,
                service.as_bytes(),
                NotationDataFlags::empty().set_human_readable(),
                false,
            )?;
            Signer::with_template(msg, server.signer()?, template)?
        }
    };
    signer.add_intended_recipient(cert).build()
}

/// `payload` signed by the server, armored, not encrypted (the `S` of a
/// fixedsize delivery, REPLY-BLOCKS.md 7.4), appended to `out`. The signature names `cert`
/// as its intended recipient, as [`sign_encrypt_into`] does, and carries
/// the notice mark when `notice` names a service.
pub fn sign_armored_into(
    out: &mut Vec<u8>,
    server: &mut ServerKey,
    cert: &Cert,
    payload: &mut dyn std::io::Read,
    notice: Option<&str>,
) -> Result<()> {
    {
        let msg = Message::new(out);
        let msg = Armorer::new(msg).build()?;
        let msg = server_signed(msg, server, cert, notice)?;
        let mut w = LiteralWriter::new(msg).build()?;
        std::io::copy(payload, &mut w)?;
        w.finalize()?;
    }
    Ok(())
}

/// `data` encrypted to `cert` (its newest encryption key), armored, with
/// neither compression nor signature (a fixedsize part, 7.4): parts of
/// one length give ciphertexts of one length. `hidden`: the wildcard key
/// ID.
pub fn encrypt_only(cert: &Cert, data: &[u8], hidden: bool) -> Result<Vec<u8>> {
    let vc = cert.with_policy(policy(), None)?;
    let ka = newest_encryption_key(&vc).ok_or_else(|| anyhow!("nym key has no usable encryption key"))?;
    let id = if hidden { None } else { Some(ka.key().keyid().into()) };
    let recipients = vec![Recipient::new(seipdv1(), id, ka.key())];
    let mut out = Vec::with_capacity(armored_size(data.len()));
    {
        let msg = Message::new(&mut out);
        let msg = Armorer::new(msg).build()?;
        let msg = Encryptor::for_recipients(msg, recipients).build()?;
        let mut w = LiteralWriter::new(msg).build()?;
        std::io::copy(&mut &data[..], &mut w)?;
        w.finalize()?;
    }
    Ok(out)
}

/// Passes writes on and counts the bytes.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What we write, whatever a key advertises: SEIPDv1 (with MDC), the
/// format every OpenPGP implementation reads. sequoia 2 would write RFC
/// 9580's SEIPDv2 to keys that announce it, which GnuPG 2.2 and 2.4, what
/// most holders read with, cannot open.
pub(crate) fn seipdv1() -> Features {
    Features::empty().set_seipdv1()
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
        let msg = Encryptor::with_passwords(msg, Some(Password::from(passphrase))).build()?;
        let mut w = LiteralWriter::new(msg).build()?;
        std::io::copy(&mut &data[..], &mut w)?;
        w.finalize()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openpgp::testkit::{nym, server};
    use crate::protocol::padding::CLASSES;

    fn padded(server: &mut ServerKey, cert: &Cert, payload: &[u8], notice: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        sign_encrypt_padded_into(&mut out, server, cert, &mut &payload[..], true, notice, true).unwrap();
        out
    }

    #[test]
    fn padded_messages_of_one_class_have_one_length_and_read_back_whole() {
        let mut key = server();
        let alice = nym("alice@nym.example");
        let mut lengths = Vec::new();
        for n in [0usize, 1, 100, 4000, 12_000, 15_000] {
            let payload = vec![b'a'; n];
            let msg = padded(&mut key, &alice, &payload, None);
            lengths.push(msg.len());
            // The holder's side: the padding is skipped, the server's
            // signature still checks.
            let opened = crate::openpgp::holder::open(
                &msg,
                std::slice::from_ref(&alice),
                &[],
                std::slice::from_ref(&key.cert),
            )
            .unwrap();
            assert_eq!(opened.plaintext, payload, "payload of {n} bytes");
            assert!(opened.good_signer.is_some());
        }
        lengths.dedup();
        assert_eq!(lengths.len(), 1, "{lengths:?}");
        // A notice carries a longer signature; still the same length.
        let notice = padded(&mut key, &alice, b"configured", Some("config"));
        assert_eq!(notice.len(), lengths[0]);
    }

    #[test]
    fn each_class_has_its_own_length_and_unpadded_mail_follows_its_size() {
        let mut key = server();
        let alice = nym("alice@nym.example");
        let mut last = 0;
        for &class in &CLASSES {
            let payload = vec![b'z'; class as usize - 2048];
            let len = padded(&mut key, &alice, &payload, None).len();
            assert!(len > last, "class {class}: {len} after {last}");
            // Armor: 4/3 of the binary, plus line breaks and framing.
            assert!(len as u64 > class * 4 / 3 && (len as u64) < class * 4 / 3 + class / 30 + 2048, "{len}");
            last = len;
        }
        let mut plain = Vec::new();
        sign_encrypt_into(&mut plain, &mut key, &alice, &mut &b"short"[..], true, None).unwrap();
        assert!(plain.len() < 2048, "{}", plain.len());
    }
}

#[cfg(test)]
mod newest_key_tests {
    use sequoia_openpgp as openpgp;

    use openpgp::cert::prelude::*;
    use openpgp::packet::key::Key4;
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::packet::Packet;
    use openpgp::parse::{PacketParser, PacketParserResult, Parse};
    use openpgp::types::{Curve, KeyFlags, SignatureType};
    use std::time::{Duration, SystemTime};

    use super::super::testkit::server;
    use super::*;

    /// A nym key made an hour ago with one encryption subkey (`first`),
    /// and a second one (`added`) bound after it, created `offset`
    /// seconds after the first. Returns (cert, first, added).
    fn two_encryption_subkeys(offset: i64) -> (Cert, openpgp::KeyID, openpgp::KeyID) {
        let t0 = SystemTime::now() - Duration::from_secs(3600);
        let (cert, _) = CertBuilder::new()
            .set_creation_time(t0)
            .add_userid("rot@nym.example")
            .add_signing_subkey()
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let old = cert.keys().subkeys().find(|k| k.key().pk_algo().for_encryption()).unwrap().key().keyid();
        let mut primary =
            cert.primary_key().key().clone().parts_into_secret().unwrap().into_keypair().unwrap();
        let mut k = Key4::generate_ecc(false, Curve::Cv25519).unwrap();
        let at = if offset >= 0 {
            t0 + Duration::from_secs(offset as u64)
        } else {
            t0 - Duration::from_secs(offset.unsigned_abs())
        };
        k.set_creation_time(at).unwrap();
        let k: openpgp::packet::Key<_, openpgp::packet::key::SubordinateRole> = k.parts_into_public().into();
        let flags = KeyFlags::empty().set_transport_encryption().set_storage_encryption();
        let builder = SignatureBuilder::new(SignatureType::SubkeyBinding).set_key_flags(flags).unwrap();
        let binding = k.bind(&mut primary, &cert, builder).unwrap();
        let new = k.keyid();
        let cert = cert.insert_packets(vec![Packet::from(k), binding.into()]).unwrap().0;
        (cert, old, new)
    }

    /// The key IDs the message's PKESK packets name.
    fn recipients_of(armored: &[u8]) -> Vec<openpgp::KeyID> {
        let mut ids = Vec::new();
        let mut ppr = PacketParser::from_bytes(armored).unwrap();
        while let PacketParserResult::Some(pp) = ppr {
            if let Packet::PKESK(p) = &pp.packet {
                ids.push(p.recipient().map(openpgp::KeyID::from).unwrap_or_else(openpgp::KeyID::wildcard));
            }
            ppr = pp.recurse().unwrap().1;
        }
        ids
    }

    #[test]
    fn postings_are_encrypted_to_the_newest_encryption_subkey_only() {
        let (cert, old, new) = two_encryption_subkeys(600);
        let vc = cert.with_policy(policy(), None).unwrap();
        assert_eq!(super::super::cert::encryption_keys(&vc).len(), 2, "both subkeys are valid");
        let msg = sign_encrypt(&mut server(), &cert, b"hello", false).unwrap();
        assert_eq!(recipients_of(&msg), vec![new.clone()]);
        assert_ne!(old, new);
        // Hidden recipient: still one encrypted session key, not two.
        let msg = sign_encrypt(&mut server(), &cert, b"hello", true).unwrap();
        assert_eq!(recipients_of(&msg).len(), 1);
    }

    #[test]
    fn the_newest_is_chosen_by_creation_time_not_by_position() {
        // The subkey bound last was created before the first one: the
        // first one is the newest.
        let (cert, first, added) = two_encryption_subkeys(-600);
        let vc = cert.with_policy(policy(), None).unwrap();
        assert_eq!(super::super::cert::encryption_keys(&vc).len(), 2, "both subkeys are valid");
        let chosen = super::super::cert::newest_encryption_key(&vc).unwrap();
        assert_eq!(chosen.key().keyid(), first);
        assert_eq!(recipients_of(&sign_encrypt(&mut server(), &cert, b"x", false).unwrap()), vec![first]);
        assert_ne!(chosen.key().keyid(), added);
    }
}
