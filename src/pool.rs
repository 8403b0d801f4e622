//! The pool round: which waiting items leave now. Pure (the caller brings
//! the random generator), so that the rule is tested without a database.
//!
//! The rule is Mixmaster's "dynamic pool" in the form the traffic-analysis
//! design states it: with fewer than `min_pool` items waiting nothing
//! leaves, except items that have waited `max_hold`; with `min_pool` or
//! more, `rate` percent of them (rounded up) leave, chosen uniformly at
//! random, so that an observer cannot tell which arrival an output
//! belongs to by its order.

use rand::seq::index::sample;
use rand::Rng;

use crate::config::Pool;

/// `waiting` holds `(id, queued_at)`; the ids to send this round, in
/// random order.
pub fn choose(waiting: &[(i64, i64)], now: i64, p: &Pool, rng: &mut impl Rng) -> Vec<i64> {
    let n = waiting.len();
    let mut send = vec![false; n];
    if n >= p.min_pool.max(1) as usize {
        let k = (n * p.rate.clamp(1, 100) as usize).div_ceil(100).min(n);
        for i in sample(rng, n, k) {
            send[i] = true;
        }
    }
    let max_hold = p.max_hold.min(i64::MAX as u64) as i64;
    for (i, (_, queued)) in waiting.iter().enumerate() {
        if now.saturating_sub(*queued) >= max_hold {
            send[i] = true;
        }
    }
    let mut out: Vec<i64> = waiting.iter().zip(&send).filter(|(_, s)| **s).map(|((id, _), _)| *id).collect();
    // Hand-off order must not mirror arrival order either.
    rand::seq::SliceRandom::shuffle(out.as_mut_slice(), rng);
    out
}

/// Whether a pool round is due: `interval` seconds after the last one.
pub fn round_due(last_round: Option<i64>, now: i64, p: &Pool) -> bool {
    match last_round {
        None => true,
        Some(t) => now.saturating_sub(t) >= p.interval as i64 || t > now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn pool(min_pool: u32, rate: u32, max_hold: u64) -> Pool {
        Pool { enabled: true, interval: 900, min_pool, rate, max_hold }
    }

    fn waiting(n: i64, queued: i64) -> Vec<(i64, i64)> {
        (1..=n).map(|id| (id, queued)).collect()
    }

    #[test]
    fn below_min_pool_nothing_leaves() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(choose(&waiting(4, 1000), 1100, &pool(5, 65, 3600), &mut rng).is_empty());
        assert!(choose(&[], 1100, &pool(5, 65, 3600), &mut rng).is_empty());
    }

    #[test]
    fn at_min_pool_rate_percent_rounded_up_leaves_and_the_rest_stays() {
        let mut rng = StdRng::seed_from_u64(2);
        let p = pool(5, 65, 3600);
        // 5 * 65% = 3.25, rounded up: 4 leave, 1 stays.
        let out = choose(&waiting(5, 1000), 1100, &p, &mut rng);
        assert_eq!(out.len(), 4);
        let mut sorted = out.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "an item chosen twice: {out:?}");
        assert_eq!(choose(&waiting(100, 1000), 1100, &p, &mut rng).len(), 65);
        assert_eq!(choose(&waiting(7, 1000), 1100, &pool(5, 100, 3600), &mut rng).len(), 7);
    }

    #[test]
    fn an_item_held_max_hold_leaves_whatever_the_pool_size() {
        let mut rng = StdRng::seed_from_u64(3);
        let p = pool(5, 65, 3600);
        let w = vec![(1, 1000), (2, 4000), (3, 4599)];
        // now - 1000 = 3600: item 1 reached max_hold; 2 and 3 did not.
        assert_eq!(choose(&w, 4600, &p, &mut rng), vec![1]);
        let mut all = choose(&w, 8199, &p, &mut rng);
        all.sort();
        assert_eq!(all, vec![1, 2, 3]);
    }

    #[test]
    fn the_choice_is_not_oldest_first() {
        // Over many rounds of 10 items sending 5, the newest item leaves
        // about half the time and the oldest does not always leave.
        let mut rng = StdRng::seed_from_u64(4);
        let p = pool(5, 50, 1 << 40);
        let w: Vec<(i64, i64)> = (1..=10).map(|id| (id, 1000 + id)).collect();
        let (mut newest, mut oldest) = (0, 0);
        let mut first_is_oldest = 0;
        for _ in 0..1000 {
            let out = choose(&w, 2000, &p, &mut rng);
            assert_eq!(out.len(), 5);
            newest += out.contains(&10) as u32;
            oldest += out.contains(&1) as u32;
            first_is_oldest += (out[0] == 1) as u32;
        }
        assert!((400..600).contains(&newest), "newest left {newest} times in 1000");
        assert!((400..600).contains(&oldest), "oldest left {oldest} times in 1000");
        // The hand-off order is shuffled too: 1 is first about 1 in 10.
        assert!(first_is_oldest < 200, "oldest handed off first {first_is_oldest} times");
    }

    #[test]
    fn a_round_is_due_after_the_interval_or_when_the_clock_went_back() {
        let p = pool(5, 65, 3600);
        assert!(round_due(None, 100, &p));
        assert!(!round_due(Some(100), 999, &p));
        assert!(round_due(Some(100), 1000, &p));
        assert!(round_due(Some(5000), 1000, &p));
    }
}
