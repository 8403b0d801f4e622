//! The outbox after commit: which process hands an item off and when, the
//! back-off after a failed hand-off, and `flush`, run by the timer.

use anyhow::Result;
use rand::Rng;

use crate::admin::open_store;
use crate::channel;
use crate::config::Config;
use crate::handle::notice_to;
use crate::logging::event;
use crate::openpgp::ServerKey;
use crate::protocol::address::Service;
use crate::store::{self, Delayed, Kind, OutItem, Store, Tx};
use crate::transport;

/// Queue `item` in `tx`. Without latency and pool the item is reserved for
/// this process (`mine`), which hands it off right after commit; otherwise
/// it waits for `flush`.
pub fn queue(cfg: &Config, tx: &Tx, now: i64, item: OutItem, mine: &mut Vec<(i64, OutItem)>) -> Result<()> {
    queue_after(cfg, tx, now, Delayed::from(item), mine)
}

/// Queue an item due `q.delay` seconds (never less than 0) after `now`,
/// plus the uniform `[delivery]` latency: a Type I remailer's output waits
/// for its Latent-Time and then for the same random hold as everything
/// else (REPLY-BLOCKS.md 10.10). Only an item with no wait at all, and no
/// pool, is reserved for this process.
pub fn queue_after(
    cfg: &Config,
    tx: &Tx,
    now: i64,
    q: Delayed,
    mine: &mut Vec<(i64, OutItem)>,
) -> Result<()> {
    let d = &cfg.delivery;
    let wait = q.delay.max(0);
    if wait == 0 && d.latency_max == 0 && !cfg.pool.enabled {
        let id = store::enqueue(tx, &q.item, now, now + d.claim_timeout as i64)?;
        mine.push((id, q.item));
    } else {
        let latency = rand::thread_rng().gen_range(d.latency_min..=d.latency_max) as i64;
        store::enqueue(tx, &q.item, now.saturating_add(wait).saturating_add(latency), 0)?;
    }
    Ok(())
}

/// Hand off the items this process committed and reserved.
pub fn hand_off_mine(cfg: &Config, store: &mut Store, mine: Vec<(i64, OutItem)>) {
    let mut teller = Teller::default();
    for (id, item) in mine {
        hand_off_one(cfg, store, id, &item, &mut teller);
    }
}

/// Seconds to wait before the next attempt after `attempts` failures.
pub fn backoff(attempts: i64) -> i64 {
    (60i64 << attempts.clamp(0, 6)).min(3600)
}

/// Why an item is given up, if it is: refused for good too often, or
/// queued for longer than `max_age`.
pub fn give_up_reason(cfg: &Config, now: i64, created: i64, refusals: i64) -> Option<&'static str> {
    let d = &cfg.delivery;
    if refusals >= d.max_permanent_failures.max(1) as i64 {
        Some("refused_for_good")
    } else if now - created > d.max_age as i64 {
        Some("too_old")
    } else {
        None
    }
}

/// Tells a nym that something it sent was given up. The server key is
/// loaded only when a notice is needed.
#[derive(Default)]
struct Teller {
    key: Option<ServerKey>,
}

impl Teller {
    fn key(&mut self, cfg: &Config) -> Result<&mut ServerKey> {
        if self.key.is_none() {
            crate::admin::check_private(&cfg.key_path())?;
            self.key = Some(ServerKey::from_file(&cfg.key_path())?);
        }
        self.key.as_mut().ok_or_else(|| anyhow::anyhow!("no server key"))
    }

    fn notice(
        &mut self,
        cfg: &Config,
        store: &Store,
        nym_id: i64,
        item: &OutItem,
    ) -> Result<Option<(Vec<Delayed>, channel::blocks::Runs)>> {
        let Some(n) = store::nym_by_id(store, nym_id)? else { return Ok(None) };
        if self.key.is_none() {
            crate::admin::check_private(&cfg.key_path())?;
            self.key = Some(ServerKey::from_file(&cfg.key_path())?);
        }
        let Some(key) = self.key.as_mut() else { return Ok(None) };
        let what = match item.kind {
            Kind::Mail => format!("Your message {} to {} recipient(s)", item.msgid, item.env_to.len()),
            Kind::News => format!("Your news post {}", item.msgid),
        };
        let text = format!(
            "{what} could not be handed on and was given up: the mail or news system refused it \
             for good, or kept failing for {} days.\nNothing more will be tried for it.\n",
            cfg.delivery.max_age / 86400
        );
        let post = notice_to(&n, Service::Send, "Message given up", text);
        // Through the nym's channel: its blocks, if it has confirmed ones.
        let r = crate::notices::items(cfg, key, store, vec![post]).map_err(|f| anyhow::anyhow!("{f}"))?;
        Ok(Some(r))
    }
}

/// Hand off one claimed item and record the result. A failure leaves it
/// queued with a back-off; the next flush tries again, until the give-up
/// rule says otherwise.
fn hand_off_one(cfg: &Config, store: &mut Store, id: i64, item: &OutItem, teller: &mut Teller) -> bool {
    match transport::hand_off(cfg, item) {
        Ok(()) => {
            if let Err(e) = store::done(store, id) {
                // The item went out but stays queued; spool and INN ignore
                // the repeat, sendmail would not. Say so loudly.
                log::error!("event=handoff outcome=sent_but_not_recorded error={e}");
            }
            event("handoff", "sent");
            true
        }
        Err(e) => {
            let (reason, permanent) = (e.reason.as_str(), e.permanent);
            let now = store::now();
            let attempts = store::attempts(store, id).unwrap_or(0);
            let _ = store::failed(store, id, reason, now + backoff(attempts), permanent);
            log::warn!("event=handoff outcome=failed reason={reason}");
            let (created, refusals) = store::age_and_refusals(store, id).unwrap_or((now, 0));
            if let Some(why) = give_up_reason(cfg, now, created, refusals) {
                give_up(cfg, store, id, item, why, teller);
            }
            false
        }
    }
}

fn give_up(cfg: &Config, store: &mut Store, id: i64, item: &OutItem, why: &'static str, teller: &mut Teller) {
    let now = store::now();
    let notice = match item.nym {
        Some(nym) => teller.notice(cfg, store, nym, item).unwrap_or(None),
        None => None,
    };
    let mut mine = Vec::new();
    let res = (|| -> Result<()> {
        let tx = store.write()?;
        store::give_up(&tx, id, item.kind, why, now)?;
        if let Some((items, _)) = &notice {
            for q in items {
                queue_after(cfg, &tx, now, q.clone(), &mut mine)?;
            }
        }
        tx.commit()
    })();
    match res {
        Ok(()) => {
            log::warn!("event=handoff outcome=given_up reason={why}");
            if let Some((_, runs)) = &notice {
                channel::blocks::committed(runs);
            }
        }
        Err(_) => event("handoff", "give_up_deferred"),
    }
    for (nid, n) in mine {
        hand_off_one(cfg, store, nid, &n, teller);
    }
}

/// Fetch and post every waiting url@ request. A request is answered once:
/// it is marked done in the transaction that queues its reply, and a
/// reply that cannot be built (bad key text) is dropped with a log line.
fn answer_url_requests(cfg: &Config, store: &mut Store) {
    loop {
        let (id, request) = match store::url_next(store) {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(_) => return event("url", "queue_unreadable"),
        };
        let reply = crate::handle::url::read_queued(&request).map(|q| channel::url::reply(cfg, &q));
        let mut mine = Vec::new();
        let result = (|| -> Result<&'static str> {
            let tx = store.write()?;
            let outcome = match reply {
                Some(Ok((item, outcome))) => {
                    queue(cfg, &tx, store::now(), item, &mut mine)?;
                    outcome.as_str()
                }
                Some(Err(_)) | None => "unanswerable",
            };
            store::url_done(&tx, id)?;
            tx.commit()?;
            Ok(outcome)
        })();
        match result {
            Ok(outcome) => event("url", outcome),
            // The request stays; the next flush tries again.
            Err(_) => return event("url", "deferred"),
        }
        hand_off_mine(cfg, store, mine);
    }
}

/// One pool round, when one is due: choose which waiting items leave
/// (crate::pool) and hand them off, claiming a few at a time so that
/// memory stays bounded by their bodies. Counts (sent, failed).
fn pool_round(cfg: &Config, store: &mut Store, lease: i64, teller: &mut Teller) -> Result<(usize, usize)> {
    let now = store::now();
    if !crate::pool::round_due(store::meta_get(store, "last_pool_round")?, now, &cfg.pool) {
        return Ok((0, 0));
    }
    let chosen = {
        let tx = store.unchecked()?;
        let waiting = store::pool_waiting(&tx, now)?;
        store::meta_set(&tx, "last_pool_round", now)?;
        tx.commit()?;
        crate::pool::choose(&waiting, now, &cfg.pool, &mut rand::thread_rng())
    };
    let (mut sent, mut failed) = (0, 0);
    for ids in chosen.chunks(16) {
        let batch = {
            let tx = store.unchecked()?;
            let b = store::claim_ids(&tx, ids, store::now(), lease)?;
            tx.commit()?;
            b
        };
        for (id, item) in &batch {
            if hand_off_one(cfg, store, *id, item, teller) {
                sent += 1
            } else {
                failed += 1
            }
        }
    }
    log::info!("event=pool outcome=round sent={sent} failed={failed}");
    Ok((sent, failed))
}

/// Queue the dummy articles due since the last check ([`crate::cover`]),
/// each in its own transaction so that memory holds one at a time.
fn add_cover(cfg: &Config, store: &mut Store) -> Result<u32> {
    let now = store::now();
    let mut rng = rand::thread_rng();
    let n = {
        let tx = store.unchecked()?;
        let n = crate::cover::due(store::meta_get(&tx, "last_cover")?, now, &cfg.cover, &mut rng);
        store::meta_set(&tx, "last_cover", now)?;
        tx.commit()?;
        n
    };
    if n == 0 {
        return Ok(0);
    }
    crate::admin::check_private(&cfg.key_path())?;
    let mut key = ServerKey::from_file(&cfg.key_path())?;
    let d = &cfg.delivery;
    for _ in 0..n {
        let mut payload = vec![0u8; crate::cover::payload_len(&mut rng)];
        rng.fill(payload.as_mut_slice());
        let cert = crate::openpgp::throwaway_cert()?;
        let wrap = crate::handle::Wrapping::default();
        let item =
            channel::aam::article_for(cfg, &mut key, &cert, &wrap, &mut &payload[..], payload.len(), None)
                .map_err(|_| anyhow::anyhow!("dummy article could not be made"))?;
        let delay = rng.gen_range(d.latency_min..=d.latency_max) as i64;
        let tx = store.unchecked()?;
        store::enqueue(&tx, &item, now + delay, 0)?;
        tx.commit()?;
    }
    Ok(n)
}

pub struct FlushReport {
    pub sent: usize,
    pub failed: usize,
    pub left: i64,
}

/// `flush`: hand off every due item. Items are claimed in short
/// transactions so that deliveries and other flushes keep going.
/// Drop the pending sets older than `confirm_timeout`, telling each nym
/// (and erasing `Config:` nyms that never had a confirmed set). Returns
/// how many.
fn expire_pending_sets(cfg: &Config, store: &mut Store, teller: &mut Teller) -> Result<usize> {
    let now = store::now();
    let ids = store::expired_pending(store, now - cfg.reply_blocks.confirm_timeout as i64)?;
    let mut done = 0;
    for id in ids {
        let Some(n) = store::nym_by_id(store, id)? else { continue };
        let active = store::active_blocks(store, id)?;
        let d = crate::handle::confirm::expiry(&n, &active);
        let key = teller.key(cfg)?;
        let (items, blocks) = crate::notices::items(cfg, key, &*store, d.effects.posts.clone())
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        match crate::record::apply(store, cfg, now, None, &d.effects, items)
            .map_err(|f| anyhow::anyhow!("{f}"))?
        {
            crate::record::Applied::Committed(c) if c.outcome.is_none() => {
                channel::blocks::committed(&blocks);
                hand_off_mine(cfg, store, c.mine);
                done += 1;
            }
            _ => {}
        }
    }
    Ok(done)
}

pub fn flush(cfg: &Config) -> Result<FlushReport> {
    let mut store = open_store(cfg)?;
    // The life of a nym: expired (and, if the operator wants it, inactive)
    // nyms are erased with the same erase as a delete; nyms whose key
    // expires soon, or that have been silent, are warned.
    // A failure here (a busy database) must not stop the hand-offs below:
    // the next flush does it.
    if crate::lifecycle::run(cfg, &mut store).is_err() {
        log::warn!("event=lifecycle outcome=deferred");
    }
    // Pending reply-block sets past confirm_timeout (REPLY-BLOCKS.md 6.3).
    let mut teller = Teller::default();
    let dropped = expire_pending_sets(cfg, &mut store, &mut teller)?;
    if dropped > 0 {
        log::info!("event=confirm_expiry outcome=dropped count={dropped}");
    }
    // A recipient table that a failed rewrite left stale (or that was
    // moved) is repaired here, so a new nym is never refused for long.
    if !crate::recipients::is_current(cfg, &store).unwrap_or(false) {
        crate::recipients::rewrite_or_log(cfg, &mut store);
    }
    let lease = cfg.delivery.transport_timeout as i64 + 60;
    let (mut sent, mut failed) = (0, 0);
    // Housekeeping that needs no key: holds and caches past their time.
    {
        let now = store::now();
        let tx = store.unchecked()?;
        store::expire_holds(&tx, now)?;
        store::replay_prune(&tx, now - cfg.send.replay_window as i64 - cfg.send.future_skew as i64)?;
        store::received_prune(&tx, now - 14 * 86400)?;
        store::url_prune(&tx, now - 3600)?;
        tx.commit()?;
    }
    // url@ requests wait for the timer: fetching never holds the MTA.
    answer_url_requests(cfg, &mut store);
    // Dummies join the outbox before the pool round, to leave with mail.
    match add_cover(cfg, &mut store) {
        Ok(0) => {}
        Ok(n) => log::info!("event=cover outcome=queued count={n}"),
        // The error names no nym (dummies belong to none); it is about the
        // server key or the database.
        Err(e) => log::warn!(
            "event=cover outcome=failed reason={}",
            e.to_string().replace(char::is_whitespace, "_")
        ),
    }
    if cfg.pool.enabled {
        let (s, f) = pool_round(cfg, &mut store, lease, &mut teller)?;
        sent += s;
        failed += f;
    }
    loop {
        let batch = {
            let tx = store.unchecked()?;
            let b = store::claim_due(&tx, store::now(), lease, 64, cfg.pool.enabled)?;
            tx.commit()?;
            b
        };
        if batch.is_empty() {
            break;
        }
        for (id, item) in &batch {
            if hand_off_one(cfg, &mut store, *id, item, &mut teller) {
                sent += 1
            } else {
                failed += 1
            }
        }
    }
    let (left, _) = store::outbox_counts(&store, store::now())?;
    {
        let tx = store.unchecked()?;
        store::meta_set(&tx, "last_flush", store::now())?;
        tx.commit()?;
    }
    // Fold the WAL into the database and empty it, so that pages of items
    // already handed off do not linger there. Busy is fine: next time.
    let _ = store.scrub_wal();
    Ok(FlushReport { sent, failed, left })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_given_up_after_repeated_refusals_or_old_age() {
        let cfg = Config::for_tests(&["nym.example"]);
        let now = 10_000_000;
        assert_eq!(give_up_reason(&cfg, now, now - 10, 0), None);
        assert_eq!(give_up_reason(&cfg, now, now - 10, 2), None);
        assert_eq!(give_up_reason(&cfg, now, now - 10, 3), Some("refused_for_good"));
        assert_eq!(give_up_reason(&cfg, now, now - 5 * 86400, 0), None);
        assert_eq!(give_up_reason(&cfg, now, now - 5 * 86400 - 1, 0), Some("too_old"));
    }

    fn item(id: &str) -> OutItem {
        OutItem {
            kind: Kind::Mail,
            env_from: "nobody@nym.example".into(),
            env_to: vec!["a@b.example".into()],
            msgid: id.into(),
            body: b"x".to_vec(),
            nym: None,
        }
    }

    /// REPLY-BLOCKS.md 10.10: due at arrival + Latent-Time + the uniform
    /// [delivery] latency; only an item without any wait is this
    /// process's to hand off at once.
    #[test]
    fn latent_time_and_latency_add_up_and_only_no_wait_is_mine() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db"), std::time::Duration::from_secs(1)).unwrap();
        let mut cfg = Config::for_tests(&["nym.example"]);
        cfg.pool.enabled = false;
        let now = 1_000_000;
        let mut mine = Vec::new();
        let tx = s.write().unwrap();
        queue_after(&cfg, &tx, now, Delayed { item: item("<a@x>"), delay: 0 }, &mut mine).unwrap();
        queue_after(&cfg, &tx, now, Delayed { item: item("<b@x>"), delay: 600 }, &mut mine).unwrap();
        queue_after(&cfg, &tx, now, Delayed { item: item("<c@x>"), delay: -5 }, &mut mine).unwrap();
        cfg.delivery.latency_min = 10;
        cfg.delivery.latency_max = 20;
        queue_after(&cfg, &tx, now, Delayed { item: item("<d@x>"), delay: 600 }, &mut mine).unwrap();
        tx.commit().unwrap();
        let ids: Vec<&str> = mine.iter().map(|(_, i)| i.msgid.as_str()).collect();
        assert_eq!(ids, ["<a@x>", "<c@x>"], "a negative delay is none");
        let waits: Vec<i64> = store::queue_list(&s).unwrap().into_iter().map(|q| q.due - now).collect();
        assert_eq!(waits.len(), 4);
        assert_eq!(&waits[..3], &[0, 0, 600]);
        assert!((610..=620).contains(&waits[3]), "{waits:?}");
    }

    #[test]
    fn backoff_doubles_from_a_minute_up_to_an_hour() {
        assert_eq!(backoff(0), 60);
        assert_eq!(backoff(1), 120);
        assert_eq!(backoff(5), 1920);
        assert_eq!(backoff(6), 3600);
        assert_eq!(backoff(60), 3600);
        assert_eq!(backoff(-3), 60);
    }
}
