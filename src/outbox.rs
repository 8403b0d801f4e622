//! The outbox after commit: which process hands an item off and when, the
//! back-off after a failed hand-off, and `flush`, run by the timer.

use anyhow::Result;
use rand::Rng;

use crate::admin::open_store;
use crate::config::Config;
use crate::logging::event;
use crate::store::{self, OutItem, Store, Tx};
use crate::transport;

/// Queue `item` in `tx`. Without latency the item is reserved for this
/// process (`mine`), which hands it off right after commit.
pub fn queue(cfg: &Config, tx: &Tx, now: i64, item: OutItem, mine: &mut Vec<(i64, OutItem)>) -> Result<()> {
    let d = &cfg.delivery;
    if d.latency_max == 0 {
        let id = store::enqueue(tx, &item, now, now + d.claim_timeout as i64)?;
        mine.push((id, item));
    } else {
        let delay = rand::thread_rng().gen_range(d.latency_min..=d.latency_max) as i64;
        store::enqueue(tx, &item, now + delay, 0)?;
    }
    Ok(())
}

/// Hand off the items this process committed and reserved.
pub fn hand_off_mine(cfg: &Config, store: &Store, mine: Vec<(i64, OutItem)>) {
    for (id, item) in mine {
        hand_off_one(cfg, store, id, &item);
    }
}

/// Seconds to wait before the next attempt after `attempts` failures.
pub fn backoff(attempts: i64) -> i64 {
    (60i64 << attempts.clamp(0, 6)).min(3600)
}

/// Hand off one claimed item and record the result. A failure leaves it
/// queued with a back-off; the next flush tries again.
fn hand_off_one(cfg: &Config, store: &Store, id: i64, item: &OutItem) -> bool {
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
        Err(reason) => {
            let attempts = store::attempts(store, id).unwrap_or(0);
            let _ = store::failed(store, id, &reason, store::now() + backoff(attempts));
            log::warn!("event=handoff outcome=failed reason={reason}");
            false
        }
    }
}

/// Fetch and post every waiting url@ request. A request is answered once:
/// it is marked done in the transaction that queues its reply, and a
/// reply that cannot be built (bad key text) is dropped with a log line.
fn answer_url_requests(cfg: &Config, store: &Store) {
    loop {
        let next = match store::url_next(store) {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(_) => return event("url", "queue_unreadable"),
        };
        let (id, request) = next;
        let reply = crate::handle::url::read_queued(&request).map(|q| crate::channel::url::reply(cfg, &q));
        let mut mine = Vec::new();
        let result = (|| -> Result<&'static str> {
            let tx = store.unchecked()?;
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

pub struct FlushReport {
    pub sent: usize,
    pub failed: usize,
    pub left: i64,
}

/// `flush`: hand off every due item. Items are claimed in short
/// transactions so that deliveries and other flushes keep going.
pub fn flush(cfg: &Config) -> Result<FlushReport> {
    let mut store = open_store(cfg)?;
    // Expired nyms are erased by the timer, with the same erase as a delete.
    let expired = crate::admin::expire_in(cfg, &mut store)?;
    if expired > 0 {
        log::info!("event=expire outcome=erased count={expired}");
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
    answer_url_requests(cfg, &store);
    loop {
        let batch = {
            let tx = store.unchecked()?;
            let b = store::claim_due(&tx, store::now(), lease, 64)?;
            tx.commit()?;
            b
        };
        if batch.is_empty() {
            break;
        }
        for (id, item) in &batch {
            if hand_off_one(cfg, &store, *id, item) {
                sent += 1
            } else {
                failed += 1
            }
        }
    }
    let (left, _) = store::outbox_counts(&store, store::now())?;
    // Fold the WAL into the database and empty it, so that pages of items
    // already handed off do not linger there. Busy is fine: next time.
    let _ = store.scrub_wal();
    Ok(FlushReport { sent, failed, left })
}

#[cfg(test)]
mod tests {
    use super::*;

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
