//! The server key file split into its public packets and its secret key
//! packets, so that a delivery parses only the secret it uses
//! ([`super::server_key::ServerKey`]).

use anyhow::{anyhow, Context, Result};
use sequoia_openpgp as openpgp;

use openpgp::crypto::mem::Protected;
use openpgp::crypto::KeyPair;
use openpgp::parse::Parse;
use openpgp::Fingerprint;

/// A secret key packet of the server key file, kept as it was read (and
/// erased when dropped) until an operation needs it: parsing a secret key
/// makes sequoia seal it in encrypted memory, which costs more than the
/// rest of a delivery's OpenPGP work, so only the key an operation uses is
/// parsed (a mail to a nym signs and never decrypts).
pub(super) struct SecretSlot {
    pub(super) fingerprint: Fingerprint,
    pub(super) sign: bool,
    pub(super) encrypt: bool,
    /// The whole packet, header and body, as it stands in the file.
    pub(super) packet: Protected,
}

impl SecretSlot {
    pub(super) fn keypair(&self) -> Result<KeyPair> {
        use openpgp::packet::Packet;
        let key = match Packet::from_bytes(&self.packet[..]).context("server key: secret key packet")? {
            Packet::SecretKey(k) => k.role_into_unspecified(),
            Packet::SecretSubkey(k) => k.role_into_unspecified(),
            _ => return Err(anyhow!("server key: not a secret key packet")),
        };
        // The public part was taken from the same bytes; a mismatch means
        // the split below misjudged the packet, never a usable key.
        if key.fingerprint() != self.fingerprint || !key.has_unencrypted_secret() {
            return Err(anyhow!("server key: secret key packet does not match its public key"));
        }
        key.into_keypair()
    }
}

/// The packet at the start of `b`: (tag, header length, body length).
/// Only definite lengths: a key file has no partial-length packets.
fn frame(b: &[u8]) -> Option<(u8, usize, usize)> {
    let ctb = *b.first()?;
    if ctb & 0x80 == 0 {
        return None;
    }
    let be = |r: std::ops::Range<usize>| -> Option<usize> {
        Some(b.get(r)?.iter().fold(0usize, |n, &x| (n << 8) | x as usize))
    };
    let (tag, hl, len): (u8, usize, usize) = if ctb & 0x40 != 0 {
        let l0 = *b.get(1)? as usize;
        match l0 {
            0..=191 => (ctb & 0x3f, 2, l0),
            192..=223 => (ctb & 0x3f, 3, ((l0 - 192) << 8) + *b.get(2)? as usize + 192),
            255 => (ctb & 0x3f, 6, be(2..6)?),
            _ => return None,
        }
    } else {
        let tag = (ctb >> 2) & 0x0f;
        match ctb & 3 {
            0 => (tag, 2, be(1..2)?),
            1 => (tag, 3, be(1..3)?),
            2 => (tag, 5, be(1..5)?),
            _ => return None,
        }
    };
    (hl.checked_add(len)? <= b.len()).then_some((tag, hl, len))
}

/// How many bytes at the start of a secret key packet's body are its
/// public key (version 4 or 6).
fn public_len(body: &[u8]) -> Option<usize> {
    use openpgp::crypto::mpi;
    use openpgp::serialize::MarshalInto;
    match *body.first()? {
        4 => {
            let algo = openpgp::types::PublicKeyAlgorithm::from(*body.get(5)?);
            let mpis = mpi::PublicKey::parse(algo, body.get(6..)?).ok()?;
            let n = 6 + mpis.serialized_len();
            (n < body.len()).then_some(n)
        }
        6 => {
            let n = 10usize.checked_add(u32::from_be_bytes(body.get(6..10)?.try_into().ok()?) as usize)?;
            (n < body.len()).then_some(n)
        }
        _ => None,
    }
}

/// Split the binary key file into a public-only packet stream and, for
/// each key packet in order, its secret packet (`None` for a public one).
/// `None` when the file has a shape this does not know (the caller then
/// parses it whole).
pub(super) fn split(bin: &[u8]) -> Option<(Vec<u8>, Vec<Option<Protected>>)> {
    let mut public = Vec::with_capacity(bin.len());
    let mut keys = Vec::new();
    let mut rest = bin;
    while !rest.is_empty() {
        let (tag, hl, len) = frame(rest)?;
        let (packet, tail) = rest.split_at(hl + len);
        match tag {
            5 | 7 => {
                let body = &packet[hl..];
                let n = public_len(body)?;
                public.push(if tag == 5 { 0xc6 } else { 0xce });
                public.push(0xff);
                public.extend_from_slice(&u32::try_from(n).ok()?.to_be_bytes());
                public.extend_from_slice(&body[..n]);
                keys.push(Some(Protected::from(packet)));
            }
            6 | 14 => {
                public.extend_from_slice(packet);
                keys.push(None);
            }
            _ => public.extend_from_slice(packet),
        }
        rest = tail;
    }
    Some((public, keys))
}

/// The key file's bytes without armor, in memory that is erased on drop.
pub(super) fn dearmor(bytes: &[u8]) -> Result<Protected> {
    use std::io::Read;
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Ok(Protected::from(bytes));
    }
    let mut r = openpgp::armor::Reader::from_bytes(
        bytes,
        openpgp::armor::ReaderMode::Tolerant(Some(openpgp::armor::Kind::SecretKey)),
    );
    // Binary is shorter than its armor: one buffer, never reallocated.
    let mut buf = Protected::new(bytes.len());
    let mut n = 0;
    loop {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!(e).context("server key file is not an OpenPGP key")),
        }
        if n == buf.len() {
            return Err(anyhow!("server key file: armor decodes to more than its size"));
        }
    }
    Ok(Protected::from(&buf[..n]))
}
