//! Cover traffic: how many dummy articles a flush adds, and what they look
//! like before encryption. Pure (the caller brings clock and random
//! generator); `outbox::flush` makes the articles.
//!
//! Dummies arrive as a Poisson process of `[cover] rate` per day: a flush
//! that runs `dt` seconds after the previous cover check adds a
//! Poisson(`rate * dt / 86400`) number of them, so that their times carry
//! no pattern of their own. Each is an ordinary article to
//! alt.anonymous.messages (same headers, a subject of the form of an
//! hSub, signed by the server, encrypted with a hidden recipient to a key
//! made for it and thrown away, padded to a size class) that joins the
//! pool like any other item: only a nym's own key tells a dummy from mail.

use rand::Rng;

use crate::config::Cover;
use crate::protocol::padding::CLASSES;

/// The share (in thousandths) of dummies in each padding class: most real
/// mail fits the smallest class, and the dummies follow that shape.
pub const CLASS_MIX: [(u64, u32); 4] =
    [(CLASSES[0], 800), (CLASSES[1], 140), (CLASSES[2], 50), (CLASSES[3], 10)];

/// The longest quiet period that is made up for: a server that was down
/// for a week does not post a week of dummies at once.
pub const MAX_GAP: i64 = 86400;

/// Most dummies one flush adds, whatever the rate.
pub const MAX_PER_FLUSH: u32 = 256;

/// How many dummies a flush at `now` adds, given the last cover check
/// (`None` on the first run, which only starts the clock).
pub fn due(last: Option<i64>, now: i64, c: &Cover, rng: &mut impl Rng) -> u32 {
    let Some(last) = last else { return 0 };
    if c.rate == 0 || now <= last {
        return 0;
    }
    let dt = (now - last).min(MAX_GAP) as f64;
    poisson(c.rate as f64 * dt / 86400.0, rng).min(MAX_PER_FLUSH)
}

/// A Poisson draw with mean `lambda`, by counting exponential gaps (exact,
/// and cheap for the small means a flush sees; large means are split so
/// that `exp(-lambda)` never underflows).
pub fn poisson(lambda: f64, rng: &mut impl Rng) -> u32 {
    let mut left = lambda.max(0.0);
    let mut k = 0u32;
    while left > 0.0 && k < u32::MAX / 2 {
        let step = left.min(30.0);
        left -= step;
        let limit = (-step).exp();
        let mut p: f64 = rng.gen();
        while p > limit {
            k += 1;
            p *= rng.gen::<f64>();
        }
    }
    k
}

/// How many payload bytes a dummy carries: a size class chosen by
/// [`CLASS_MIX`], then a length inside it (padding makes every length of a
/// class one article size, so the length only has to land in the class).
pub fn payload_len(rng: &mut impl Rng) -> usize {
    let mut pick = rng.gen_range(0..1000u32);
    let mut class = CLASSES[0];
    for (c, share) in CLASS_MIX {
        if pick < share {
            class = c;
            break;
        }
        pick -= share;
    }
    // Room for the signature and the literal packet's framing.
    let top = class as usize - 2048;
    let bottom = CLASSES.iter().rev().find(|&&c| c < class).map(|&c| c as usize).unwrap_or(256);
    rng.gen_range(bottom.min(top)..=top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::padding::target;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn cover(rate: u32) -> Cover {
        Cover { rate }
    }

    #[test]
    fn the_first_flush_only_starts_the_clock() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(due(None, 1_000_000, &cover(1_000_000), &mut rng), 0);
    }

    #[test]
    fn rate_zero_means_no_cover_traffic() {
        let mut rng = StdRng::seed_from_u64(2);
        for dt in [60, 3600, 86400] {
            assert_eq!(due(Some(0), dt, &cover(0), &mut rng), 0);
        }
    }

    #[test]
    fn a_clock_that_went_back_adds_nothing() {
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(due(Some(2000), 1000, &cover(86400), &mut rng), 0);
    }

    #[test]
    fn dummies_follow_the_rate_over_many_flushes() {
        // 48 a day, flushed every minute for 100 days: 4,800 expected.
        let mut rng = StdRng::seed_from_u64(4);
        let total: u32 = (0..100 * 1440).map(|i| due(Some(i * 60), i * 60 + 60, &cover(48), &mut rng)).sum();
        // Poisson(4800) has a standard deviation of 69; 5 of them either way.
        assert!((4455..=5145).contains(&total), "{total}");
    }

    #[test]
    fn poisson_draws_have_the_right_mean_and_variance() {
        let mut rng = StdRng::seed_from_u64(5);
        for lambda in [0.05f64, 1.0, 7.5, 80.0] {
            let n = 20_000;
            let draws: Vec<f64> = (0..n).map(|_| poisson(lambda, &mut rng) as f64).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
            let se = (lambda / n as f64).sqrt();
            assert!((mean - lambda).abs() < 5.0 * se, "lambda {lambda}: mean {mean}");
            assert!((var - lambda).abs() < 0.1 * lambda + 0.01, "lambda {lambda}: variance {var}");
        }
    }

    #[test]
    fn a_long_outage_is_made_up_for_one_day_at_most() {
        let mut rng = StdRng::seed_from_u64(6);
        let week = due(Some(0), 7 * 86400, &cover(100), &mut rng);
        assert!(week <= 160, "{week}");
        assert!(due(Some(0), 86400 * 365, &cover(1_000_000), &mut rng) <= MAX_PER_FLUSH);
    }

    #[test]
    fn dummy_sizes_land_in_the_classes_of_the_mix() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut per_class = [0u32; 4];
        for _ in 0..10_000 {
            // The signed message adds well under 2 KiB to the payload.
            let n = payload_len(&mut rng) as u64;
            let class = target(n + 600);
            let i = CLASSES.iter().position(|&c| c == class).expect("a class of the mix");
            per_class[i] += 1;
        }
        for (i, (_, share)) in CLASS_MIX.iter().enumerate() {
            let expect = *share as f64 * 10.0;
            let sd = (expect * (1.0 - *share as f64 / 1000.0)).sqrt();
            assert!((per_class[i] as f64 - expect).abs() < 5.0 * sd + 1.0, "class {i}: {per_class:?}");
        }
    }
}
