//! Fixed-size articles: the sizes every article posted to
//! alt.anonymous.messages is padded to, and the padding itself.
//!
//! The padding sits inside the encryption, after the server's signature,
//! as OpenPGP Marker packets (tag 10, body `PGP`). Every reader ignores a
//! Marker wherever it stands: GnuPG 2.2 and 2.4, `sq` (sequoia 1.x and
//! 2.x) and our own client decrypt a padded article exactly as an unpadded
//! one, with no warning. RFC 9580's Padding packet (tag 21) would be the
//! modern choice, but the `sq` of Debian 12 refuses a message holding one
//! ("Unknown(21) packet not expected"), and GnuPG 2.2 only stays quiet by
//! luck, so it is not used. The reasoning behind the sizes is in
//! `docs/traffic-analysis.md`.
//!
//! What is padded is the signed message (one-pass signature, literal data,
//! signature): the packet stream the encryption then wraps. The encrypted
//! article therefore has one length per size class and per nym key type
//! and options (an RSA-4096 session-key packet is longer than a Cv25519
//! one, a symmetric layer adds its own fixed framing), whatever the mail.

use std::io::{self, Write};

/// The size classes, in bytes of the signed message: most mail, with its
/// headers, fits the first. The last, 704 KiB, is the largest whose
/// article stays below INN's default `localmaxartsize` (1,000,000 bytes:
/// about 978,000 with the armor) while holding the largest mail the shipped
/// Postfix service accepts (`size=700000`). Above it, sizes round up to
/// whole multiples of [`STEP_ABOVE`] (for news servers that take more).
pub const CLASSES: [u64; 4] = [16 << 10, 64 << 10, 256 << 10, 704 << 10];

/// The granularity above the largest class. Mail this large is rare
/// enough to stand out anyway; a whole MiB hides its exact size while
/// keeping the padding (and what a reader must skip) under a MiB.
pub const STEP_ABOVE: u64 = 1 << 20;

/// The new-format Marker packet: tag 10, one-octet length 3, `PGP`.
const MARKER5: [u8; 5] = [0xCA, 0x03, b'P', b'G', b'P'];
/// The same packet with an old-format header and a two-octet length:
/// one byte longer, so that every fill of 20 bytes or more can be made.
const MARKER6: [u8; 6] = [0xA9, 0x00, 0x03, b'P', b'G', b'P'];

/// The most padding [`target`] ever asks for: just under one step above
/// the largest class, plus a step when the gap could not be filled
/// (at most 19 bytes more). Readers bound the padding they accept by it.
pub const MAX_FILL: u64 = STEP_ABOVE + 19;

/// Whether exactly `k` bytes of Marker packets can be written (sums of 5
/// and 6).
pub fn fillable(k: u64) -> bool {
    k == 0 || k >= 20 || matches!(k, 5 | 6 | 10 | 11 | 12 | 15 | 16 | 17 | 18)
}

/// The size a signed message of `n` bytes is padded to: the smallest
/// class (or multiple of [`STEP_ABOVE`]) at least `n` whose gap can be
/// filled exactly.
pub fn target(n: u64) -> u64 {
    let mut candidate =
        CLASSES.iter().copied().find(|&c| c >= n).unwrap_or_else(|| n.div_ceil(STEP_ABOVE) * STEP_ABOVE);
    loop {
        if fillable(candidate - n) {
            return candidate;
        }
        // A gap of 1-4, 7-9, 13, 14 or 19 bytes: the next size up.
        candidate = CLASSES.iter().copied().find(|&c| c > candidate).unwrap_or(candidate + STEP_ABOVE);
    }
}

/// How many 5-byte and 6-byte markers make `k` bytes (`k` fillable).
fn split(k: u64) -> (u64, u64) {
    for sixes in 0..5 {
        if k >= 6 * sixes && (k - 6 * sixes).is_multiple_of(5) {
            return ((k - 6 * sixes) / 5, sixes);
        }
    }
    (0, 0)
}

/// Write exactly `k` bytes of Marker packets; `k` must be [`fillable`].
pub fn write_fill(w: &mut dyn Write, k: u64) -> io::Result<()> {
    if !fillable(k) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "padding gap cannot be filled"));
    }
    let (fives, sixes) = split(k);
    // Written in chunks: one write per marker would cost a trip through
    // every layer of the encryption stack for each 5 bytes.
    const PER_CHUNK: u64 = 1638;
    let chunk: Vec<u8> = MARKER5.iter().copied().cycle().take(5 * PER_CHUNK as usize).collect();
    let mut left = fives;
    while left > 0 {
        let now = left.min(PER_CHUNK);
        w.write_all(&chunk[..5 * now as usize])?;
        left -= now;
    }
    for _ in 0..sixes {
        w.write_all(&MARKER6)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_mail_is_padded_to_the_first_class() {
        assert_eq!(target(0), 16 << 10);
        assert_eq!(target(1), 16 << 10);
        assert_eq!(target(4000), 16 << 10);
        assert_eq!(target(16 << 10), 16 << 10);
    }

    #[test]
    fn each_class_takes_what_the_one_below_cannot() {
        assert_eq!(target((16 << 10) + 1), 64 << 10);
        assert_eq!(target(64 << 10), 64 << 10);
        assert_eq!(target((64 << 10) + 1), 256 << 10);
        assert_eq!(target((256 << 10) + 1), 704 << 10);
        assert_eq!(target(704 << 10), 704 << 10);
    }

    #[test]
    fn above_the_last_class_sizes_round_up_to_whole_mebibytes() {
        assert_eq!(target((704 << 10) + 1), 1 << 20);
        assert_eq!(target(1 << 20), 1 << 20);
        assert_eq!(target((1 << 20) + 1), 2 << 20);
        assert_eq!(target((5 << 20) + 12345), 6 << 20);
        assert_eq!(target(20 << 20), 20 << 20);
    }

    #[test]
    fn a_gap_that_markers_cannot_fill_moves_to_the_next_size() {
        for gap in [1u64, 2, 3, 4, 7, 8, 9, 13, 14, 19] {
            assert!(!fillable(gap), "{gap}");
            assert_eq!(target((16 << 10) - gap), 64 << 10, "gap {gap}");
            assert_eq!(target((3 << 20) - gap), 4 << 20, "gap {gap}");
        }
        for gap in [0u64, 5, 6, 10, 11, 12, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 1000] {
            assert!(fillable(gap), "{gap}");
            assert_eq!(target((16 << 10) - gap), 16 << 10, "gap {gap}");
        }
    }

    #[test]
    fn the_fill_is_exactly_the_gap_and_only_marker_packets() {
        for k in (0..200).chain([MAX_FILL, 8190, 8191, 40_000]).filter(|&k| fillable(k)) {
            let mut out = Vec::new();
            write_fill(&mut out, k).unwrap();
            assert_eq!(out.len() as u64, k);
            // Walk the packets: each one a Marker with body PGP.
            let mut rest = &out[..];
            while !rest.is_empty() {
                let len = if rest.starts_with(&MARKER5) { 5 } else { 6 };
                assert!(rest.starts_with(&MARKER5) || rest.starts_with(&MARKER6), "k {k}");
                rest = &rest[len..];
            }
        }
        assert!(write_fill(&mut Vec::new(), 7).is_err());
    }

    #[test]
    fn no_target_needs_more_fill_than_readers_accept() {
        for n in
            [0u64, 1, 16 << 10, (16 << 10) + 1, (256 << 10) + 1, (1 << 20) - 3, (1 << 20) + 1, (7 << 20) - 19]
        {
            assert!(target(n) - n <= MAX_FILL, "n {n}");
        }
    }
}
