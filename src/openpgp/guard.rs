//! sequoia on hostile input, for the server and the holder's client alike.
//!
//! Anyone can mail the server a request and anyone can post an article to
//! the newsgroup the client reads, so both sides open messages from
//! strangers. Everything that does goes through [`open`], which promises:
//!
//! - **No panic escapes.** sequoia has panicked on such input before (an
//!   unwrap in its parser, an integer overflow in ECDH). A panic in there
//!   means "this input is junk", never "retry later" or "stop reading the
//!   newsgroup".
//! - **Bounded memory.** The plaintext is read in chunks against a running
//!   cap; sequoia's own read-ahead (25 MiB by default, which it asks its
//!   decompressor for twice over) is bounded by [`BUFFER`]; everything
//!   else a message carries (packets other than the literal data, after
//!   decompression) is capped in count and bytes. A compression bomb ends
//!   as [`Refusal::TooLarge`] once the cap is reached.
//! - **Only what was encrypted counts.** The message must have been
//!   decrypted with one of our keys or passphrases; a message signed but
//!   not encrypted (for instance the server-signed inner layer of someone
//!   else's article, posted again in clear) is refused before its content
//!   is read.
//! - **Bounded work.** At most [`MAX_ESKS`] session-key packets ([`MAX_SKESKS`]
//!   with a passphrase) are looked
//!   at, and passphrase-derived keys (S2K) must be affordable.

use std::cell::Cell;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::crypto::{SessionKey, S2K};
use openpgp::packet::{Tag, PKESK, SKESK};
use openpgp::parse::stream::{DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper};
use openpgp::parse::{PacketParser, Parse};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle};

use super::policy;

/// sequoia's read-ahead: how much plaintext it holds back (and asks its
/// decompressor for twice over) before handing it out. Its default is
/// 25 MiB; ours costs about a MiB whatever the message.
pub(crate) const BUFFER: usize = 256 << 10;

/// How much plaintext is read from sequoia at a time.
const CHUNK: usize = 64 << 10;

/// Most packets a message may have, all layers and signatures included.
/// A real message has a few recipients, a few signatures and some
/// framing; thousands of packets are only there to make us work.
pub(crate) const MAX_PACKETS: usize = 1024;

/// Most bytes of packets other than the literal data (session keys,
/// signatures, padding...), counted after decompression.
pub(crate) const MAX_OVERHEAD: u64 = 1 << 20;

/// Most bytes of padding (Marker and Padding packets, headers included)
/// a message may carry: what the server's own size classes need
/// ([`crate::protocol::padding::MAX_FILL`]) and a little more. Padding is
/// not held in memory; this bounds only the time spent skipping it.
pub(crate) const MAX_PADDING: u64 = crate::protocol::padding::MAX_FILL + (64 << 10);

/// Most session-key packets (PKESK and SKESK) that are tried.
pub(crate) const MAX_ESKS: usize = 64;

/// Most SKESKs that are tried: each costs a key derivation per passphrase
/// (0.35 s for the largest iteration count, which sequoia uses by
/// default), and a real message has one.
pub(crate) const MAX_SKESKS: usize = 4;

/// Most memory (KiB, as a power of two) an Argon2 S2K may ask for: 2^16
/// KiB = 64 MiB, RFC 9580's second recommended setting.
const MAX_ARGON2_M: u8 = 16;

/// Most Argon2 passes.
const MAX_ARGON2_T: u8 = 4;

/// Run `f` on untrusted input; a panic inside becomes `None`.
///
/// `AssertUnwindSafe` is sound here because every caller either owns what
/// `f` touches or only lends it state that a half-done operation does not
/// corrupt (the unlocked key pairs do not change while decrypting).
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Why [`open`] gave nothing back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The plaintext, or what the message carries besides it, is over the
    /// cap (a compression bomb, a flood of packets).
    TooLarge,
    /// None of our keys or passphrases opens it, or it is not encrypted.
    NotForUs,
    /// Not an OpenPGP message, or a broken one (sequoia panicked on it).
    Malformed(String),
}

/// What the guard saw while sequoia worked. It lives outside the decryptor
/// because a refusal while building one drops the helper.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    packets: usize,
    overhead: u64,
    /// Bytes of Marker and Padding packets, counted apart from `packets`:
    /// the server pads articles with thousands of them.
    padding: u64,
    /// A session key was found by the helper and accepted by sequoia.
    decrypted: bool,
    /// The helper looked at the session-key packets and none opened.
    refused: bool,
    /// A packet outside any encryption other than session keys.
    in_clear: bool,
    exceeded: bool,
}

/// A helper wrapped in the guard's checks.
struct Guarded<'t, H> {
    inner: H,
    tally: &'t Cell<Tally>,
}

impl<H> Guarded<'_, H> {
    fn update(&self, f: impl FnOnce(&mut Tally)) {
        let mut t = self.tally.get();
        f(&mut t);
        self.tally.set(t);
    }
}

impl<H: VerificationHelper> VerificationHelper for Guarded<'_, H> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        self.inner.get_certs(ids)
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        self.inner.check(structure)
    }

    fn inspect(&mut self, pp: &PacketParser) -> openpgp::Result<()> {
        let tag = pp.packet.tag();
        let container = matches!(tag, Tag::Literal | Tag::CompressedData | Tag::SEIP | Tag::SED | Tag::AED);
        let size = match pp.header().length() {
            openpgp::packet::header::BodyLength::Full(n) if !container => u64::from(*n),
            _ => 0,
        };
        // Outside the encryption there may only be session keys, the
        // encrypted container, and packets that carry nothing (Marker,
        // Padding).
        let clear = pp.recursion_depth() == 0
            && !matches!(
                tag,
                Tag::PKESK | Tag::SKESK | Tag::Marker | Tag::Padding | Tag::SEIP | Tag::SED | Tag::AED
            );
        let filler = matches!(tag, Tag::Marker | Tag::Padding);
        let mut over = false;
        self.update(|t| {
            if filler {
                // The body and the shortest header (2 bytes): what the
                // server's fill costs, and a floor for anyone else's.
                t.padding += size + 2;
            } else {
                t.packets += 1;
                t.overhead += size;
            }
            t.in_clear |= clear;
            over = t.packets > MAX_PACKETS || t.overhead > MAX_OVERHEAD || t.padding > MAX_PADDING;
            t.exceeded |= over;
        });
        if clear {
            return Err(anyhow::anyhow!("the message is not encrypted"));
        }
        if over {
            return Err(anyhow::anyhow!("the message carries too many or too large packets"));
        }
        self.inner.inspect(pp)
    }
}

impl<H: DecryptionHelper> DecryptionHelper for Guarded<'_, H> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let pkesks = &pkesks[..pkesks.len().min(MAX_ESKS)];
        let skesks = &skesks[..skesks.len().min(MAX_SKESKS).min(MAX_ESKS - pkesks.len())];
        let mut ok = false;
        let r = self.inner.decrypt(pkesks, skesks, sym_algo, &mut |algo, sk| {
            let good = decrypt(algo, sk);
            ok |= good;
            good
        });
        self.update(|t| {
            t.decrypted |= ok;
            t.refused |= !ok;
        });
        r
    }
}

/// Can a passphrase be tried on this SKESK at a bearable cost? Argon2 can
/// be told to use gigabytes of memory, which an attacker will ask for.
pub(crate) fn s2k_affordable(skesk: &SKESK) -> bool {
    let s2k = match skesk {
        SKESK::V4(s) => s.s2k(),
        SKESK::V6(s) => s.s2k(),
        #[allow(unreachable_patterns)]
        _ => return false,
    };
    #[allow(deprecated)]
    match s2k {
        S2K::Argon2 { t, m, .. } => *m <= MAX_ARGON2_M && *t <= MAX_ARGON2_T,
        // Under the fuzzer (instrumented, 20 times slower) a full
        // iteration count takes seconds and ends as a timeout; the seeds
        // use small counts.
        #[allow(unexpected_cfgs)]
        S2K::Iterated { hash_bytes, .. } if cfg!(fuzzing) => *hash_bytes <= 1 << 16,
        _ => true,
    }
}

/// Decrypt and verify `message` (armored or binary) with `helper`, reading
/// at most `max` bytes of plaintext. Returns the plaintext and the helper,
/// which kept what it learnt (signatures, which key opened the message).
///
/// The helper's `decrypt` should return an error when none of its keys or
/// passphrases opens the message; `open` also refuses a message that was
/// never decrypted at all.
pub(crate) fn open<H>(
    message: &[u8],
    max: usize,
    time: Option<SystemTime>,
    helper: H,
) -> Result<(Vec<u8>, H), Refusal>
where
    H: VerificationHelper + DecryptionHelper,
{
    let tally = Cell::new(Tally::default());
    let r = guarded(|| open_inner(message, max, time, Guarded { inner: helper, tally: &tally }));
    let t = tally.get();
    match r {
        None => Err(Refusal::Malformed("the OpenPGP parser panicked".into())),
        Some(Ok((plaintext, helper))) => {
            if t.decrypted && !t.in_clear {
                Ok((plaintext, helper))
            } else {
                Err(Refusal::NotForUs)
            }
        }
        Some(Err(e)) => Err(if t.exceeded {
            Refusal::TooLarge
        } else if t.in_clear || (t.refused && !t.decrypted) {
            Refusal::NotForUs
        } else {
            e
        }),
    }
}

fn open_inner<H>(
    message: &[u8],
    max: usize,
    time: Option<SystemTime>,
    helper: Guarded<'_, H>,
) -> Result<(Vec<u8>, H), Refusal>
where
    H: VerificationHelper + DecryptionHelper,
{
    let malformed = |e: &dyn std::fmt::Display| Refusal::Malformed(e.to_string());
    let mut d = DecryptorBuilder::from_bytes(message)
        .map_err(|e| malformed(&e))?
        .buffer_size(BUFFER.min(max.saturating_add(1)))
        .with_policy(policy(), time, helper)
        .map_err(|e| malformed(&e))?;
    let mut plaintext = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match d.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(malformed(&e)),
        };
        if plaintext.len() + n > max {
            return Err(Refusal::TooLarge);
        }
        if plaintext.capacity() - plaintext.len() < n {
            // Grow by a quarter, not the double Vec would take: the
            // plaintext is the one big allocation, up to the cap.
            let more = (plaintext.len() / 4).max(CHUNK).min(max - plaintext.len());
            plaintext.reserve_exact(more.max(n));
        }
        plaintext.extend_from_slice(&chunk[..n]);
    }
    if !d.message_processed() {
        // Signatures are checked once the whole message was read.
        return Err(Refusal::Malformed("message did not end properly".into()));
    }
    Ok((plaintext, d.into_helper().inner))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::testkit::{bomb, encrypt_raw, peak_alloc, server, signed_only};
    use super::super::{decrypt, DecryptError};
    use super::*;

    #[test]
    fn a_panic_inside_becomes_none() {
        let r: Option<()> = guarded(|| panic!("sequoia had a bad day"));
        assert!(r.is_none());
        assert_eq!(guarded(|| 7), Some(7));
    }

    #[test]
    fn a_compression_bomb_is_too_large_and_memory_stays_near_the_cap() {
        let mut key = server();
        let cert = key.cert.clone();
        // 16 MiB of zeros in a few dozen KiB. sequoia's default read-ahead
        // (25 MiB, asked of the decompressor twice over) would hold all of
        // it before our cap is even looked at.
        let msg = bomb(&cert, 16 << 20);
        assert!(msg.len() < 256 << 10, "{}", msg.len());
        for cap in [1usize << 20, 4 << 20] {
            let (r, peak) = peak_alloc(|| decrypt(&mut key, &msg, cap, |_| vec![]));
            assert!(matches!(r, Err(DecryptError::TooLarge)), "{r:?}");
            // The plaintext up to the cap (grown by a quarter at a time),
            // the read-ahead, the decompressor's state (measured: 2.6 MiB
            // for a 1 MiB cap, 6.8 MiB for 4 MiB).
            assert!(peak < cap + cap / 4 + (3 << 20), "cap {cap}: peak {peak}");
        }
    }

    #[test]
    fn a_flood_of_packets_is_too_large() {
        let mut key = server();
        let cert = key.cert.clone();
        let msg = encrypt_raw(&cert, |mut m| {
            let ops = [0xC4, 13, 3, 0, 8, 22, 1, 2, 3, 4, 5, 6, 7, 8, 0];
            for _ in 0..5000 {
                m.write_all(&ops)?;
            }
            m.write_all(&[0xCB, 7, b'b', 0, 0, 0, 0, 0, b'x'])?;
            m.finalize()
        });
        let r = decrypt(&mut key, &msg, 1 << 20, |_| vec![]);
        assert!(matches!(r, Err(DecryptError::TooLarge)), "{r:?}");
    }

    #[test]
    fn the_servers_padding_is_read_but_a_flood_of_markers_is_too_large() {
        let mut key = server();
        let cert = key.cert.clone();
        let with_markers = |n: usize| {
            encrypt_raw(&cert, |mut m| {
                m.write_all(&[0xCB, 7, b'b', 0, 0, 0, 0, 0, b'x'])?;
                for _ in 0..n {
                    m.write_all(&[0xCA, 0x03, b'P', b'G', b'P'])?;
                }
                m.finalize()
            })
        };
        // The most padding the server ever writes.
        let fill = (crate::protocol::padding::MAX_FILL / 5) as usize;
        let r = decrypt(&mut key, &with_markers(fill), 1 << 20, |_| vec![]);
        assert_eq!(r.expect("padded message").plaintext, b"x");
        let r = decrypt(&mut key, &with_markers(2 * fill), 1 << 20, |_| vec![]);
        assert!(matches!(r, Err(DecryptError::TooLarge)), "{r:?}");
    }

    #[test]
    fn a_signed_message_in_clear_is_not_for_us() {
        let mut key = server();
        let cert = key.cert.clone();
        let msg = signed_only(&key, b"subject: hello\n");
        let r = decrypt(&mut key, &msg, 1 << 20, |_| vec![cert.clone()]);
        assert!(matches!(r, Err(DecryptError::NotForUs)), "{r:?}");
    }

    #[test]
    fn argon2_that_asks_for_gigabytes_is_not_tried() {
        use openpgp::packet::skesk::SKESK4;
        let skesk = |s2k| SKESK::from(SKESK4::new(SymmetricAlgorithm::AES256, s2k, None).unwrap());
        #[allow(deprecated)]
        let argon = |t, m| S2K::Argon2 { salt: [7; 16], t, p: 1, m };
        assert!(!s2k_affordable(&skesk(argon(1, 22))), "4 GiB");
        assert!(!s2k_affordable(&skesk(argon(200, 10))), "200 passes");
        assert!(s2k_affordable(&skesk(argon(3, 16))), "RFC 9580's second choice");
        assert!(s2k_affordable(&skesk(S2K::default())));
    }
}
