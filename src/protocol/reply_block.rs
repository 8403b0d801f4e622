//! Reply blocks (REPLY-BLOCKS.md sections 6.2 and 6.3): which blocks a
//! message goes through, and the confirmation cookie. Pure: the random
//! draws come from the caller.

use sha2::{Digest, Sha256};

use super::nym_commands::Problem;

/// The error key of an over-full set.
pub const PROBABILITY_SUM: &str = "probability-sum";

/// A weight of 1, in the units weights are kept in (10^-9).
pub const ONE: u64 = 1_000_000_000;

/// Sets whose weights add up to more than 1, in the order they first
/// appear: one `probability-sum` problem each.
pub fn check_sums(sets: &[Option<(char, u32)>]) -> Vec<Problem> {
    let mut sums: Vec<(char, u64)> = Vec::new();
    for (c, w) in sets.iter().flatten() {
        match sums.iter_mut().find(|(s, _)| s == c) {
            Some((_, t)) => *t += u64::from(*w),
            None => sums.push((*c, u64::from(*w))),
        }
    }
    sums.into_iter()
        .filter(|(_, t)| *t > ONE)
        .map(|(c, _)| Problem::new(PROBABILITY_SUM, format!("The weights of set {c} add up to more than 1")))
        .collect()
}

/// The indexes of the blocks one message (or one fixedsize part) goes
/// through. `draw` is asked for one CSPRNG `u16` per set, when the set is
/// first met. A block without a set always fires; in a set, block `i`
/// fires when `acc * 65536 < (k + 1) * 10^9 <= (acc + w) * 65536`, `acc`
/// being the weight of the set's earlier blocks.
pub fn select(sets: &[Option<(char, u32)>], draw: &mut dyn FnMut() -> u16) -> Vec<usize> {
    // (set, k, acc)
    let mut seen: Vec<(char, u64, u64)> = Vec::new();
    let mut out = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        let Some((c, w)) = s else {
            out.push(i);
            continue;
        };
        let pos = match seen.iter().position(|(x, _, _)| x == c) {
            Some(p) => p,
            None => {
                seen.push((*c, u64::from(draw()), 0));
                seen.len() - 1
            }
        };
        let (_, k, acc) = &mut seen[pos];
        let r = (*k + 1) * ONE;
        let w = u64::from(*w);
        // At most 4 blocks of weight < 1 each: far inside u64.
        if *acc * 65536 < r && r <= (*acc + w) * 65536 {
            out.push(i);
        }
        *acc += w;
    }
    out
}

/// A fresh confirmation cookie: 128 random bits as 32 lowercase hex.
pub fn new_cookie(rng: &mut dyn rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    hex::encode(b)
}

/// The cookie of a `confirm+COOKIE` extension, lowercased, if it is one
/// (32 hex digits in any case).
pub fn parse_cookie(ext: &str) -> Option<String> {
    (ext.len() == 32 && ext.bytes().all(|b| b.is_ascii_hexdigit())).then(|| ext.to_ascii_lowercase())
}

/// What the store keeps of a cookie: SHA-256 of its lowercase hex, so
/// that the comparison ignores case and the database never holds the
/// cookie itself.
pub fn cookie_hash(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.to_ascii_lowercase().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: [Option<(char, u32)>; 4] =
        [Some(('a', 700_000_000)), Some(('a', 300_000_000)), None, Some(('b', 500_000_000))];

    fn with(draws: &[u16]) -> Vec<usize> {
        let mut it = draws.iter().copied();
        select(&SPEC, &mut || it.next().expect("one draw per set"))
    }

    #[test]
    fn probability_sets_spec_vectors() {
        // (k_a, k_b) -> blocks used, numbered from 1 as in the spec.
        for (ka, kb, want) in [
            (0, 0, vec![1, 3, 4]),
            (45874, 32767, vec![1, 3, 4]),
            (45875, 32768, vec![2, 3]),
            (65535, 65535, vec![2, 3]),
        ] {
            let got: Vec<usize> = with(&[ka, kb]).into_iter().map(|i| i + 1).collect();
            assert_eq!(got, want, "k_a={ka} k_b={kb}");
        }
    }

    #[test]
    fn probability_sets_draw_once_per_set_in_order_of_appearance() {
        let mut n = 0;
        let v = select(&SPEC, &mut || {
            n += 1;
            if n == 1 {
                0
            } else {
                65535
            }
        });
        assert_eq!(n, 2);
        assert_eq!(v, vec![0, 2]);
    }

    #[test]
    fn probability_sets_a_full_set_always_fires_exactly_one() {
        let sets = [Some(('x', 500_000_000)), Some(('x', 500_000_000))];
        for k in [0u16, 1, 32767, 32768, 65534, 65535] {
            assert_eq!(select(&sets, &mut || k).len(), 1, "k={k}");
        }
    }

    #[test]
    fn probability_sets_below_one_may_fire_nothing() {
        let sets = [Some(('x', 250_000_000))];
        assert_eq!(select(&sets, &mut || 0), vec![0]);
        assert!(select(&sets, &mut || 65535).is_empty());
    }

    #[test]
    fn probability_sets_letters_keep_their_case() {
        let sets = [Some(('a', 999_999_999)), Some(('A', 999_999_999))];
        let mut draws = 0;
        assert_eq!(
            select(&sets, &mut || {
                draws += 1;
                0
            }),
            vec![0, 1]
        );
        assert_eq!(draws, 2);
    }

    #[test]
    fn probability_sum_above_one_is_refused_per_set() {
        assert!(check_sums(&SPEC).is_empty());
        let p =
            check_sums(&[Some(('a', 700_000_000)), Some(('a', 300_000_001)), Some(('b', 999_999_999)), None]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, PROBABILITY_SUM);
        assert!(p[0].detail.contains("set a"));
        assert!(check_sums(&[Some(('a', 500_000_000)), Some(('A', 600_000_000))]).is_empty());
    }

    #[test]
    fn cookie_is_128_bits_of_lowercase_hex() {
        let mut rng = rand::rngs::mock::StepRng::new(0xABCD_EF01_2345_6789, 1);
        let c = new_cookie(&mut rng);
        assert_eq!(c.len(), 32);
        assert!(c.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{c}");
        assert_ne!(new_cookie(&mut rand::thread_rng()), new_cookie(&mut rand::thread_rng()));
    }

    #[test]
    fn cookie_compares_without_case() {
        let c = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_cookie("0123456789ABCDEF0123456789abcdef").as_deref(), Some(c));
        assert_eq!(cookie_hash(c), cookie_hash(&c.to_ascii_uppercase()));
        assert_ne!(cookie_hash(c), cookie_hash("0123456789abcdef0123456789abcdee"));
    }

    #[test]
    fn cookie_stored_only_as_sha256() {
        let c = "0123456789abcdef0123456789abcdef";
        let h = cookie_hash(c);
        assert_eq!(h.to_vec(), Sha256::digest(c.as_bytes()).to_vec());
        assert!(!hex::encode(h).contains(c));
    }

    #[test]
    fn cookie_extension_must_be_32_hex_digits() {
        for bad in [
            "",
            "0123",
            &"g".repeat(32),
            &"a".repeat(31),
            &"a".repeat(33),
            "0123456789abcdef0123456789abcde\u{e9}",
        ] {
            assert_eq!(parse_cookie(bad), None, "{bad:?}");
        }
    }
}
