//! The OpenPGP side of the Type I remailer (REPLY-BLOCKS.md section 10):
//! opening one `Encrypted: PGP` layer with the server key, and the
//! `Encrypt-Key` / `**` encryption of 10.5 in the one exact form that
//! Mixmaster, GnuPG and `sq` all read.

use anyhow::Result;
use sequoia_openpgp as openpgp;

use openpgp::crypto::{Password, S2K};
use openpgp::packet::skesk::SKESK4;
use openpgp::packet::Packet;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message};
use openpgp::serialize::Serialize;
use openpgp::types::{DataFormat, HashAlgorithm, SymmetricAlgorithm};

use super::{decrypt, DecryptError, ServerKey};

/// The S2K iteration count of 10.5: 65536 bytes hashed (coded 96).
pub const EK_S2K_BYTES: u32 = 65536;

/// Encrypt `text` with `passphrase` as 10.5 asks: SKESK v4 (the key
/// derived straight from the passphrase, no encrypted session key) with
/// an iterated and salted SHA-1 S2K of count 65536, a SEIPD v1 packet
/// (with MDC) under AES-128, holding a text-mode literal with an empty
/// name and date 0; no compression. Armored, with the CRC line.
pub fn encrypt_key(passphrase: &str, text: &[u8]) -> Result<Vec<u8>> {
    let algo = SymmetricAlgorithm::AES128;
    let mut salt = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    let s2k = S2K::Iterated { hash: HashAlgorithm::SHA1, salt, hash_bytes: EK_S2K_BYTES };
    let key = s2k.derive_key(&Password::from(passphrase), algo.key_size()?)?;
    let skesk = SKESK4::new(algo, s2k, None)?;
    let mut out = Vec::with_capacity(super::armored_size(text.len()));
    {
        let msg = Message::new(&mut out);
        let mut msg = Armorer::new(msg).build()?;
        Packet::SKESK(skesk.into()).serialize(&mut msg)?;
        let msg = Encryptor::with_session_key(msg, algo, key)?.build()?;
        #[allow(deprecated)]
        let w = LiteralWriter::new(msg).format(DataFormat::Text);
        let mut w = w.date(std::time::UNIX_EPOCH)?.build()?;
        std::io::Write::write_all(&mut w, text)?;
        w.finalize()?;
    }
    Ok(out)
}

/// Open one `Encrypted: PGP` layer with the server key: integrity
/// protection required (the policy refuses SED packets, and a SEIPD whose
/// MDC does not match fails), at most `max` bytes of plaintext, through
/// the guard of every untrusted message. Signatures are not looked at.
pub fn decrypt_layer(server: &mut ServerKey, armored: &[u8], max: usize) -> Result<Vec<u8>, DecryptError> {
    decrypt(server, armored, max, |_| Vec::new()).map(|d| d.plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::parse::{PacketParser, PacketParserResult, Parse};

    #[test]
    fn encrypt_key_packets_are_the_ones_mixmaster_reads() {
        let armored = encrypt_key("k1", b"hello\nworld\n").unwrap();
        let s = String::from_utf8(armored.clone()).unwrap();
        assert!(s.starts_with("-----BEGIN PGP MESSAGE-----\n"), "{s}");
        assert!(s.lines().any(|l| l.starts_with('=') && l.len() == 5), "a CRC line: {s}");
        let bin = {
            let mut r = openpgp::armor::Reader::from_bytes(&armored, None);
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut v).unwrap();
            v
        };
        // The SKESK, byte for byte: old or new format tag 3, then version
        // 4, AES-128 (7), S2K type 3 (iterated+salted), SHA-1 (2), 8 bytes
        // of salt, count byte 96; no encrypted session key.
        let (tag, body) = match bin[0] {
            0x8c => (3, &bin[2..2 + bin[1] as usize]),
            0xc3 => (3, &bin[2..2 + bin[1] as usize]),
            b => panic!("first packet header {b:#x}"),
        };
        assert_eq!(tag, 3);
        assert_eq!(body.len(), 13, "{body:?}");
        assert_eq!(&body[..4], &[4, 7, 3, 2]);
        assert_eq!(body[12], 96);
        // Then SEIPD v1 (tag 18, version 1), nothing else outside it.
        let mut ppr = PacketParser::from_bytes(&bin).unwrap();
        let mut tags = Vec::new();
        let mut literal = None;
        let key = {
            let salt: [u8; 8] = body[4..12].try_into().unwrap();
            S2K::Iterated { hash: HashAlgorithm::SHA1, salt, hash_bytes: 65536 }
                .derive_key(&Password::from("k1"), 16)
                .unwrap()
        };
        while let PacketParserResult::Some(mut pp) = ppr {
            tags.push((pp.recursion_depth(), pp.packet.tag()));
            if let Packet::SEIP(seip) = &pp.packet {
                assert_eq!(seip.version(), 1);
                pp.decrypt(SymmetricAlgorithm::AES128, &key).unwrap();
            }
            if let Packet::Literal(_) = &pp.packet {
                pp.buffer_unread_content().unwrap();
                if let Packet::Literal(l) = &pp.packet {
                    literal =
                        Some((l.format(), l.filename().map(|f| f.to_vec()), l.date(), l.body().to_vec()));
                }
            }
            ppr = pp.recurse().unwrap().1;
        }
        use openpgp::packet::Tag;
        assert_eq!(
            tags,
            vec![(0, Tag::SKESK), (0, Tag::SEIP), (1, Tag::Literal), (1, Tag::MDC)],
            "no compression, an MDC"
        );
        let (format, name, date, data) = literal.unwrap();
        #[allow(deprecated)]
        let text = DataFormat::Text;
        assert_eq!(format, text);
        assert!(name.is_none_or(|n| n.is_empty()));
        assert!(date.is_none_or(|d| d == std::time::UNIX_EPOCH), "{date:?}");
        assert_eq!(data, b"hello\nworld\n");
    }

    #[test]
    fn encrypt_key_salts_differ_each_time() {
        assert_ne!(encrypt_key("k", b"x").unwrap(), encrypt_key("k", b"x").unwrap());
    }

    #[test]
    fn a_layer_for_the_server_key_opens_and_others_do_not() {
        use crate::openpgp::holder;
        use crate::openpgp::testkit::{nym, server};
        let mut key = server();
        let to = key.cert.clone();
        let armored = holder::encrypt(b"::\nAnon-To: a@b.test\n\nx\n", &[&to], None).unwrap();
        assert_eq!(
            decrypt_layer(&mut key, armored.as_bytes(), 1 << 20).unwrap(),
            b"::\nAnon-To: a@b.test\n\nx\n"
        );
        let other = nym("bob@nym.example");
        let armored = holder::encrypt(b"x", &[&other], None).unwrap();
        assert!(matches!(decrypt_layer(&mut key, armored.as_bytes(), 1 << 20), Err(DecryptError::NotForUs)));
        // A passphrase-only message (what Encrypt-Key writes) is not a
        // layer for us either.
        let ek = encrypt_key("k", b"x").unwrap();
        assert!(decrypt_layer(&mut key, &ek, 1 << 20).is_err());
        assert!(decrypt_layer(&mut key, b"junk", 1 << 20).is_err());
    }
}
