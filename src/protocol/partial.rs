//! The parts of a `fixedsize` delivery (REPLY-BLOCKS.md 7.4): RFC 2046
//! `message/partial` messages of exactly [`PART_BYTES`] bytes each,
//! padded with an `X-Padding:` field of random filler, so that every part
//! of every message has one length before it is encrypted.
//!
//! The entity cut into parts is `E` = `Content-Type: text/plain;
//! charset=us-ascii`, a blank line, then `S` (the payload signed by the
//! server, armored). `E` is cut at line ends into chunks of at most
//! [`CHUNK_BYTES`]; armor lines are short, so every chunk ends a line.

use rand::RngCore;

/// The length of every part, before encryption.
pub const PART_BYTES: usize = 10240;
/// The most of `E` one part carries.
pub const CHUNK_BYTES: usize = 9216;
/// The longest line of the folded `X-Padding:` field (without its LF).
pub const PAD_LINE: usize = 78;
/// The filler alphabet: `-0-9A-Z_a-z`, 64 characters.
const FILLER: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// What `E` starts with; `S` follows.
pub const ENTITY_HEAD: &[u8] = b"Content-Type: text/plain; charset=us-ascii\n\n";

/// `S` again: what follows the entity's header.
pub fn entity_body(e: &[u8]) -> Option<&[u8]> {
    e.strip_prefix(ENTITY_HEAD)
}

/// Cut `e` at line ends into chunks of at most [`CHUNK_BYTES`]; a line
/// longer than that (never in armor) is cut where the chunk is full.
pub fn chunks(e: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(e.len() / CHUNK_BYTES + 1);
    let mut rest = e;
    while !rest.is_empty() {
        if rest.len() <= CHUNK_BYTES {
            out.push(rest);
            break;
        }
        let window = &rest[..CHUNK_BYTES];
        let cut = window.iter().rposition(|b| *b == b'\n').map_or(CHUNK_BYTES, |i| i + 1);
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if out.is_empty() {
        out.push(e);
    }
    out
}

/// A message id for one delivery's parts: 32 random hex digits `@domain`.
pub fn new_id(domain: &str, rng: &mut dyn RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    format!("{}@{domain}", hex::encode(b))
}

/// Part `n` of `total`, carrying `chunk`: exactly [`PART_BYTES`] bytes
/// (given a chunk of at most [`CHUNK_BYTES`] and an id of at most 300
/// bytes, which hosted domains are).
pub fn part(id: &str, n: usize, total: usize, chunk: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
    let mut p = Vec::with_capacity(PART_BYTES);
    p.extend_from_slice(
        format!("Content-Type: message/partial; id=\"{id}\"; number={n}; total={total}\nMIME-Version: 1.0\n")
            .as_bytes(),
    );
    // What the X-Padding field (with its last LF) must fill.
    let budget = PART_BYTES.saturating_sub(p.len() + 1 + chunk.len());
    padding_field(&mut p, budget, rng);
    p.push(b'\n');
    p.extend_from_slice(chunk);
    p
}

/// Append an `X-Padding:` field of exactly `budget` bytes (at least 13),
/// folded into lines of at most [`PAD_LINE`] bytes, of CSPRNG filler.
fn padding_field(p: &mut Vec<u8>, budget: usize, rng: &mut dyn RngCore) {
    let mut left = budget.max(13);
    let mut first = true;
    while left > 0 {
        let lead: &[u8] = if first { b"X-Padding: " } else { b" " };
        first = false;
        let most = PAD_LINE - lead.len();
        let room = left - lead.len() - 1;
        let mut take = room.min(most);
        // A folded line needs at least " x\n": never leave 1 or 2 bytes.
        let after = room - take;
        if after > 0 && after < 3 {
            take -= 3 - after;
        }
        p.extend_from_slice(lead);
        let mut buf = [0u8; 4];
        for i in 0..take {
            if i % 4 == 0 {
                rng.fill_bytes(&mut buf);
            }
            // 64 divides 256: every character equally likely.
            p.push(FILLER[(buf[i % 4] & 63) as usize]);
        }
        p.push(b'\n');
        left -= lead.len() + take + 1;
    }
}

/// Reassemble decrypted parts, in any order, into `E` (RFC 2046 section
/// 5.2.2): every part must carry the same id, numbers 1 to `total` once
/// each. `None` if they do not.
pub fn reassemble(parts: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut got: Vec<(usize, &[u8])> = Vec::with_capacity(parts.len());
    let mut id_total: Option<(String, usize)> = None;
    for p in parts {
        let at = p.windows(2).position(|w| w == b"\n\n")?;
        let head = std::str::from_utf8(&p[..at]).ok()?;
        let ct =
            head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-type: message/partial"))?;
        let param = |name: &str| {
            ct.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(name)).map(|v| v.trim_matches('"'))
        };
        let id = param("id=")?.to_string();
        let number: usize = param("number=")?.parse().ok()?;
        let total: usize = param("total=")?.parse().ok()?;
        match &id_total {
            None => id_total = Some((id, total)),
            Some((i, t)) if *i == id && *t == total => {}
            Some(_) => return None,
        }
        got.push((number, &p[at + 2..]));
    }
    let (_, total) = id_total?;
    got.sort_by_key(|(n, _)| *n);
    if got.len() != total || got.iter().enumerate().any(|(i, (n, _))| *n != i + 1) {
        return None;
    }
    Some(got.into_iter().flat_map(|(_, b)| b.iter().copied()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn entity(signed: &[u8]) -> Vec<u8> {
        [ENTITY_HEAD, signed].concat()
    }

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    /// An armor-like `S` of `lines` lines of 64 characters.
    fn signed(lines: usize) -> Vec<u8> {
        let mut s = b"-----BEGIN PGP MESSAGE-----\n\n".to_vec();
        for i in 0..lines {
            s.extend_from_slice(format!("{:064}\n", i).as_bytes());
        }
        s.extend_from_slice(b"-----END PGP MESSAGE-----\n");
        s
    }

    fn parts_of(s: &[u8], domain: &str) -> Vec<Vec<u8>> {
        let mut r = rng();
        let e = entity(s);
        let c = chunks(&e);
        let id = new_id(domain, &mut r);
        c.iter().enumerate().map(|(i, ch)| part(&id, i + 1, c.len(), ch, &mut r)).collect()
    }

    #[test]
    fn fixedsize_part_lengths_all_equal_10240() {
        for lines in [0, 1, 100, 141, 142, 143, 500, 2000] {
            for domain in ["nym.example", &"d".repeat(253)] {
                let parts = parts_of(&signed(lines), domain);
                assert!(parts.iter().all(|p| p.len() == PART_BYTES), "{lines} lines: {:?}", {
                    parts.iter().map(Vec::len).collect::<Vec<_>>()
                });
            }
        }
    }

    #[test]
    fn fixedsize_parts_reassemble_to_the_entity_in_any_order() {
        let s = signed(700);
        let mut parts = parts_of(&s, "nym.example");
        assert!(parts.len() > 3);
        parts.reverse();
        parts.swap(0, 2);
        let e = reassemble(&parts).unwrap();
        assert_eq!(entity_body(&e).unwrap(), &s[..]);
        // A missing or foreign part is refused.
        assert_eq!(reassemble(&parts[1..]), None);
        let mut other = parts.clone();
        other[0] = parts_of(&s, "nym.example").remove(0);
        other[0] = String::from_utf8_lossy(&other[0]).replace("number=1;", "number=9;").into_bytes();
        assert_eq!(reassemble(&other), None);
    }

    #[test]
    fn fixedsize_one_part_message_is_total_1() {
        let parts = parts_of(b"short\n", "nym.example");
        assert_eq!(parts.len(), 1);
        assert!(String::from_utf8_lossy(&parts[0]).contains("number=1; total=1\n"));
    }

    #[test]
    fn fixedsize_chunks_end_at_line_ends_and_stay_within_9216() {
        let e = entity(&signed(1000));
        let c = chunks(&e);
        assert!(c.iter().all(|ch| ch.len() <= CHUNK_BYTES && ch.ends_with(b"\n")));
        assert_eq!(c.concat(), e);
    }

    #[test]
    fn fixedsize_padding_is_folded_filler_from_the_alphabet() {
        let parts = parts_of(&signed(50), "nym.example");
        let text = String::from_utf8(parts[0].clone()).unwrap();
        let head = &text[..text.find("\n\n").unwrap()];
        let mut pad = head.lines().skip_while(|l| !l.starts_with("X-Padding: ")).peekable();
        let first = pad.next().unwrap();
        let lines: Vec<&str> = std::iter::once(first).chain(pad).collect();
        assert!(lines.len() > 5);
        assert!(lines.iter().all(|l| l.len() <= PAD_LINE), "{lines:?}");
        assert!(lines[1..].iter().all(|l| l.starts_with(' ') && l.len() >= 2));
        let filler: String = lines.iter().map(|l| l.trim_start_matches("X-Padding: ").trim_start()).collect();
        assert!(filler.bytes().all(|b| FILLER.contains(&b)));
        // Drawn from the generator: another draw, another filler.
        let mut other = rand::rngs::StdRng::seed_from_u64(8);
        let again = part("x@nym.example", 1, 1, b"chunk\n", &mut other);
        let once = part("x@nym.example", 1, 1, b"chunk\n", &mut rng());
        assert_eq!(again.len(), once.len());
        assert_ne!(again, once);
    }

    #[test]
    fn fixedsize_padding_field_hits_every_budget_exactly() {
        let mut r = rng();
        for budget in 13..400 {
            let mut p = Vec::new();
            padding_field(&mut p, budget, &mut r);
            assert_eq!(p.len(), budget, "budget {budget}");
            assert!(p.split(|b| *b == b'\n').all(|l| l.len() <= PAD_LINE));
            assert!(!p.windows(2).any(|w| w == b"\n\n"), "no blank line inside the field");
        }
    }
}
