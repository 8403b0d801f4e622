//! eSub, the older subject scheme of Type I remailers (`Encrypt-Subject:`)
//! that aam2mail and QuickSilver still read: PROTOCOL.md section 4.
//!
//! ```text
//! K = MD5(key), T = MD5(subject_text), iv = 8 random bytes
//! C1 = T[0..8] xor E_K(iv), C2 = T[8..16] xor E_K(C1)   (64-bit CFB)
//! esub = lowercase_hex(iv || C1 || C2)                   48 characters
//! ```
//!
//! E is Blowfish with the 16-byte key. The server never makes eSubs; the
//! client only recognises them.

use blowfish::cipher::{BlockEncrypt, KeyInit};
use blowfish::Blowfish;
use md5::{Digest, Md5};

/// The eSub of `text` under `key` with this `iv`.
pub fn esub_with_iv(text: &str, key: &str, iv: [u8; 8]) -> String {
    let k = Md5::digest(key.as_bytes());
    let t = Md5::digest(text.as_bytes());
    let bf: Blowfish = Blowfish::new_from_slice(&k).expect("16 bytes is a valid Blowfish key");
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&iv);
    let mut feedback = iv;
    for half in t.chunks(8) {
        let mut block = feedback.into();
        bf.encrypt_block(&mut block);
        let mut c = [0u8; 8];
        for i in 0..8 {
            c[i] = half[i] ^ block[i];
        }
        out.extend_from_slice(&c);
        feedback = c;
    }
    hex::encode(out)
}

/// Does `subject` carry the eSub of `text` under `key`?
pub fn matches(subject: &str, text: &str, key: &str) -> bool {
    let s = subject.trim();
    if s.len() != 48 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let Ok(iv) = hex::decode(&s[..16]) else { return false };
    let iv: [u8; 8] = iv.try_into().expect("8 bytes");
    esub_with_iv(text, key, iv).eq_ignore_ascii_case(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(h: &str) -> [u8; 8] {
        hex::decode(h).unwrap().try_into().unwrap()
    }

    #[test]
    fn protocol_vectors() {
        // PROTOCOL.md section 4, Blowfish rows.
        for (text, key, esub) in [
            ("text", "key", "0001020304050607b1d02545a7b23f470c0de1461647ab4a"),
            ("text", "key", "14857375e7174ae1dd83b80612f8a148e2777c7ae78c4c7d"),
            ("panda", "secret", "000102030405060795ac647fcb0d53bd3188dbf7af12bbd6"),
            ("nym@example.org", "Correct Horse", "ffffffffffffffffd093f8746b8ea56c4391abfa10fd49e7"),
        ] {
            assert_eq!(esub_with_iv(text, key, iv(&esub[..16])), esub, "{text}/{key}");
            assert!(matches(esub, text, key));
            assert!(matches(&esub.to_uppercase(), text, key));
            assert!(!matches(esub, text, "other"));
        }
        assert!(!matches("0001020304050607b1d02545a7b23f470c0de1461647ab", "text", "key"));
    }
}
