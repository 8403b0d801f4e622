//! A synthetic day of traffic, replayed through the server's own rules, and
//! what an observer of the MTA and the newsgroup can pair up.
//!
//! `scripts/traffic-replay` runs it (`cargo bench --bench traffic`). The
//! article sizes are real: every mail is signed and encrypted by the
//! server's own code (`channel::aam::article_for`, padded or not) to one of
//! 200 Cv25519 nym keys, and every dummy is made as `flush` makes it. The
//! times come from the server's own pool rule (`pool::choose`,
//! `pool::round_due`) and cover rule (`cover::due`), ticked once a minute as
//! the flush timer does, on a simulated clock.
//!
//! The observer sees each incoming mail (arrival second, size) and each
//! article (posting second, size), knows the settings, and for every mail
//! lists the articles it could have become: by size (unpadded: within 8
//! bytes of what that mail's size gives; padded: the same size), by time
//! (posted within 2 s of arrival without the pool, within `max_hold +
//! interval` with it), or both. A mail with one candidate is linked; the
//! mean of 1/candidates is the observer's expected rate of right guesses.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use nymgate::config::{Config, Cover, Pool};
use nymgate::handle::Wrapping;
use nymgate::openpgp::{generate_server_key, tsk_armored, PgpCert, ServerKey};

const NYMS: usize = 200;
const DAY: i64 = 86400;
const TICK: i64 = 60;

struct Mail {
    at: i64,
    size: usize,
    nym: usize,
}

#[derive(Clone, Copy)]
struct Posted {
    at: i64,
    size: usize,
    /// The mail it carries; `None` for a dummy.
    mail: Option<usize>,
}

struct Setup {
    name: &'static str,
    pool: bool,
    padding: bool,
    cover: u32,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("traffic: run with `cargo bench --bench traffic` (scripts/traffic-replay)");
        return;
    }
    let seed: u64 = std::env::var("TRAFFIC_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mails_n: usize =
        std::env::var("TRAFFIC_MAILS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000).max(10);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nymgate.toml");
    std::fs::write(&path, Config::template(dir.path(), &["nym.example".to_string()])).expect("config");
    let mut cfg = Config::load(&path).expect("config");
    let uids: Vec<String> =
        ["config", "send", "url"].iter().map(|s| format!("nymgate <{s}@nym.example>")).collect();
    let server_cert = generate_server_key(&uids, None).expect("server key");
    let mut server = ServerKey::from_tsk(&tsk_armored(&server_cert).expect("tsk")).expect("server key");
    let nyms: Vec<PgpCert> = (0..NYMS)
        .map(|i| {
            nymgate::openpgp::holder::generate(&format!("n{i}@nym.example"), None, false, None).expect("nym")
        })
        .collect();

    let mails = synthetic_day(&mut rng, mails_n);
    let sizes: Vec<usize> = mails.iter().map(|m| m.size).collect();
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    println!(
        "synthetic day: {mails_n} mails to {NYMS} nyms (seed {seed}); sizes p50 {} B, p90 {} B, p99 {} B, max {} B",
        sorted[mails_n / 2],
        sorted[mails_n * 9 / 10],
        sorted[mails_n * 99 / 100],
        sorted[mails_n - 1]
    );

    // Article sizes, real, once per padding setting.
    let mut article_size = |cfg: &mut Config, padding: bool, payload: &[u8], nym: &PgpCert| -> usize {
        cfg.news.padding = padding;
        let item = nymgate::channel::aam::article_for(
            cfg,
            &mut server,
            nym,
            &Wrapping::default(),
            &mut &payload[..],
            payload.len(),
            None,
        )
        .expect("article");
        item.body.len()
    };
    let mut sized = [Vec::new(), Vec::new()];
    for (p, padding) in [false, true].into_iter().enumerate() {
        for m in &mails {
            let payload = vec![b'm'; m.size];
            sized[p].push(article_size(&mut cfg, padding, &payload, &nyms[m.nym]));
        }
    }

    let setups = [
        Setup { name: "nothing (pool off, padding off, no cover)", pool: false, padding: false, cover: 0 },
        Setup { name: "padding only", pool: false, padding: true, cover: 0 },
        Setup { name: "pool only", pool: true, padding: false, cover: 0 },
        Setup { name: "pool + padding", pool: true, padding: true, cover: 0 },
        Setup { name: "pool + padding + cover (the defaults)", pool: true, padding: true, cover: 48 },
        Setup { name: "pool + padding + cover 480/day", pool: true, padding: true, cover: 480 },
    ];
    let pool_cfg = Pool::default();
    println!(
        "pool: interval {} s, min_pool {}, rate {} %, max_hold {} s; flush every {TICK} s",
        pool_cfg.interval, pool_cfg.min_pool, pool_cfg.rate, pool_cfg.max_hold
    );
    println!();
    println!(
        "{:<44} {:>9} | {:>17} | {:>17} | {:>17}",
        "setting", "articles", "by size", "by time", "by size and time"
    );
    println!(
        "{:<44} {:>9} | {:>17} | {:>17} | {:>17}",
        "", "", "linked  guess", "linked  guess", "linked  guess"
    );
    for s in &setups {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let p = usize::from(s.padding);
        let mut posts = replay(&mails, &sized[p], s, &pool_cfg, &mut rng);
        if s.cover > 0 {
            // Dummies are made as flush makes them; their times come from
            // the replay, their sizes from the real code.
            for post in posts.iter_mut().filter(|x| x.mail.is_none()) {
                let n = nymgate::cover::payload_len(&mut rng);
                let payload: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                let cert = nymgate::openpgp::throwaway_cert().expect("throwaway key");
                post.size = article_size(&mut cfg, s.padding, &payload, &cert);
            }
        }
        let window = if s.pool { (pool_cfg.max_hold + pool_cfg.interval) as i64 + TICK } else { 2 };
        let tolerance = if s.padding { 0 } else { 8 };
        let score =
            |use_size: bool, use_time: bool| observe(&mails, &posts, window, tolerance, use_size, use_time);
        let (a, b, c) = (score(true, false), score(false, true), score(true, true));
        println!(
            "{:<44} {:>9} | {:>6} {:>9.4} | {:>6} {:>9.4} | {:>6} {:>9.4}",
            s.name,
            posts.len(),
            a.0,
            a.1,
            b.0,
            b.1,
            c.0,
            c.1
        );
    }
    println!();
    println!("linked: mails with exactly one candidate article (of {mails_n}); guess: mean of 1/candidates,");
    println!("the share of mails an observer pairs right by picking a candidate at random.");
    println!("({:.1} s)", started.elapsed().as_secs_f64());
}

/// `n` arrivals over a day (2,000 by default), busier in the afternoon than at night, and
/// sizes drawn log-normally around 3.5 KB (most mail is short; a few carry
/// attachments), capped at 4 MB.
fn synthetic_day(rng: &mut StdRng, n: usize) -> Vec<Mail> {
    let mut mails = Vec::with_capacity(n);
    while mails.len() < n {
        let at = rng.gen_range(0..DAY);
        let phase = (at as f64 / DAY as f64 - 0.25) * std::f64::consts::TAU;
        if rng.gen::<f64>() * 1.6 > 1.0 + 0.6 * phase.sin() {
            continue;
        }
        // Box-Muller for a standard normal.
        let (u1, u2): (f64, f64) = (rng.gen::<f64>().max(1e-12), rng.gen());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let size = (3500f64.ln() + 1.1 * z).exp().clamp(300.0, 4e6) as usize;
        mails.push(Mail { at, size, nym: rng.gen_range(0..NYMS) });
    }
    mails.sort_by_key(|m| m.at);
    mails
}

/// The postings of one day under `s`: mail and (with cover) dummy slots,
/// the dummies' sizes filled in by the caller.
fn replay(mails: &[Mail], sizes: &[usize], s: &Setup, pool: &Pool, rng: &mut StdRng) -> Vec<Posted> {
    let mut posts = Vec::new();
    // (queued at, what): what = Some(mail) or None for a dummy.
    let mut waiting: Vec<(i64, Option<usize>)> = Vec::new();
    let mut next_mail = 0;
    let cover = Cover { rate: s.cover };
    let mut last_cover = None;
    let mut last_round = None;
    let end = DAY + pool.max_hold as i64 + pool.interval as i64 + 2 * TICK;
    let mut t = 0;
    while t <= end {
        // Mail arriving before this tick.
        while next_mail < mails.len() && mails[next_mail].at < t {
            let m = &mails[next_mail];
            if s.pool {
                waiting.push((m.at, Some(next_mail)));
            } else {
                // deliver hands it off at once.
                posts.push(Posted { at: m.at, size: sizes[next_mail], mail: Some(next_mail) });
            }
            next_mail += 1;
        }
        if t <= DAY + TICK {
            let n = nymgate::cover::due(last_cover, t, &cover, rng);
            last_cover = Some(t);
            for _ in 0..n {
                if s.pool {
                    waiting.push((t, None));
                } else {
                    posts.push(Posted { at: t, size: 0, mail: None });
                }
            }
        }
        if s.pool && nymgate::pool::round_due(last_round, t, pool) {
            last_round = Some(t);
            let ids: Vec<(i64, i64)> = waiting.iter().enumerate().map(|(i, w)| (i as i64, w.0)).collect();
            let chosen = nymgate::pool::choose(&ids, t, pool, rng);
            let mut gone = vec![false; waiting.len()];
            for (k, id) in chosen.iter().enumerate() {
                let (_, what) = waiting[*id as usize];
                gone[*id as usize] = true;
                // Hand-offs within a round follow each other by a fraction of a second.
                let at = t + k as i64 / 8;
                let size = what.map(|m| sizes[m]).unwrap_or(0);
                posts.push(Posted { at, size, mail: what });
            }
            let mut i = 0;
            waiting.retain(|_| {
                i += 1;
                !gone[i - 1]
            });
        }
        t += TICK;
    }
    posts
}

/// (linked, mean 1/candidates) over all mails.
fn observe(
    mails: &[Mail],
    posts: &[Posted],
    window: i64,
    tolerance: usize,
    use_size: bool,
    use_time: bool,
) -> (usize, f64) {
    let mut article_of = vec![0usize; mails.len()];
    for p in posts {
        if let Some(m) = p.mail {
            article_of[m] = p.size;
        }
    }
    let (mut linked, mut guess) = (0, 0.0);
    for (i, m) in mails.iter().enumerate() {
        let own = article_of[i];
        let candidates = posts
            .iter()
            .filter(|p| p.at >= m.at)
            .filter(|p| !use_time || p.at - m.at <= window)
            .filter(|p| !use_size || p.size.abs_diff(own) <= tolerance)
            .count()
            .max(1);
        if candidates == 1 {
            linked += 1;
        }
        guess += 1.0 / candidates as f64;
    }
    (linked, guess / mails.len() as f64)
}
