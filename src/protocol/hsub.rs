//! hSub: the hashed Subject that lets a nym recognise its own articles on
//! alt.anonymous.messages without anyone else being able to link them.
//!
//! `hsub = hex(iv || SHA-256(iv || passphrase))`, truncated to the wanted
//! length (48 hex characters by default, at most 80). The first 16 hex
//! characters are the 8-byte IV, so a reader can recompute and compare.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Shortest and longest hSub we produce or accept, in hex characters.
pub const MIN_LEN: usize = 48;
pub const MAX_LEN: usize = 80;
pub const DEFAULT_LEN: usize = 48;

/// hSub for a given IV; `len` is clamped to [`MIN_LEN`, `MAX_LEN`].
pub fn hsub_with_iv(passphrase: &[u8], iv: &[u8; 8], len: usize) -> String {
    let len = len.clamp(MIN_LEN, MAX_LEN);
    let mut h = Sha256::new();
    h.update(iv);
    h.update(passphrase);
    let digest = h.finalize();
    let mut out = hex::encode(iv);
    out.push_str(&hex::encode(digest));
    out.truncate(len);
    out
}

/// A fresh hSub with a random IV.
pub fn hsub(passphrase: &[u8], len: usize) -> String {
    let mut iv = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut iv);
    hsub_with_iv(passphrase, &iv, len)
}

/// Does `subject` carry the hSub of `passphrase`? Whitespace around the
/// subject is ignored; hex case is not significant.
pub fn matches(subject: &str, passphrase: &[u8]) -> bool {
    let s = subject.trim().to_ascii_lowercase();
    if s.len() < MIN_LEN || s.len() > MAX_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let mut iv = [0u8; 8];
    if hex::decode_to_slice(&s[..16], &mut iv).is_err() {
        return false;
    }
    hsub_with_iv(passphrase, &iv, s.len()) == s
}

/// A random hex string of the same length as an hSub, for nyms without
/// any subject option, so that their articles blend in.
pub fn random_subject(len: usize) -> String {
    let len = len.clamp(MIN_LEN, MAX_LEN);
    let mut bytes = vec![0u8; len.div_ceil(2)];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut s = hex::encode(bytes);
    s.truncate(len);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(h: &str) -> [u8; 8] {
        let mut iv = [0u8; 8];
        hex::decode_to_slice(h, &mut iv).unwrap();
        iv
    }

    // The vectors of PROTOCOL.md section 4.
    #[test]
    fn protocol_vectors() {
        let v = [
            ("panda", "0001020304050607", 48, "0001020304050607a43edcc6bc109227e04cc5151d620be3"),
            (
                "panda",
                "0001020304050607",
                80,
                "0001020304050607a43edcc6bc109227e04cc5151d620be39698dd4635816e214b5663874d32d57f",
            ),
            ("passphrase", "a1b2c3d4e5f60718", 48, "a1b2c3d4e5f60718712ab14fae091d88b180360149462da6"),
            ("Correct Horse", "ffffffffffffffff", 48, "ffffffffffffffff96364d9dc704458ee6b925f843d18a35"),
        ];
        for (pass, ivh, len, want) in v {
            assert_eq!(hsub_with_iv(pass.as_bytes(), &iv(ivh), len), want);
            assert!(matches(want, pass.as_bytes()));
            assert!(matches(&want.to_uppercase(), pass.as_bytes()));
        }
    }

    #[test]
    fn wrong_passphrase_does_not_match() {
        let s = hsub(b"panda", 48);
        assert!(matches(&s, b"panda"));
        assert!(!matches(&s, b"Panda"));
        assert!(!matches(&s[..47], b"panda"));
        assert!(!matches("not an hsub at all, not an hsub at all, not hex!", b"panda"));
    }

    #[test]
    fn random_subject_looks_like_hsub() {
        for len in [48, 63, 80] {
            let s = random_subject(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(random_subject(48), random_subject(48));
    }

    #[test]
    fn length_is_clamped() {
        assert_eq!(hsub(b"x", 10).len(), 48);
        assert_eq!(hsub(b"x", 500).len(), 80);
    }
}
