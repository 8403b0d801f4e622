//! The life of a nym, run by `flush` (docs/operators.md, "The life of a
//! nym"): retire the previous server key once a rotation's grace period
//! is over ([`crate::rotation::retire_due`]); erase nyms whose key expired (after `[lifecycle] expire_grace`
//! days) and, with the inactivity rule on, nyms silent for
//! `inactive_delete_days`, with the same erase as a delete
//! ([`crate::admin::erase_in`]); warn nyms whose key expires within one of
//! `warn_days`, once each per expiry date, and nyms silent for
//! `inactive_warn_days`. The rules are in [`crate::handle::lifecycle`];
//! this is the shell that reads the state, renders the notices and records
//! what was sent in the same transaction that queues them. Logs carry
//! counts only.

use anyhow::Result;

use crate::channel;
use crate::config::Config;
use crate::handle::lifecycle as rules;
use crate::handle::{Post, View};
use crate::logging::event;
use crate::openpgp::ServerKey;
use crate::store::{self, Store};
use crate::{notices, outbox};

/// What one run did: nyms erased (expired, inactive) and notices queued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub expired: usize,
    pub inactive: usize,
    pub warned: usize,
}

/// The server key, read the first time a notice needs it.
#[derive(Default)]
struct Key(Option<ServerKey>);

impl Key {
    fn get(&mut self, cfg: &Config) -> Result<&mut ServerKey> {
        if self.0.is_none() {
            crate::admin::check_private(&cfg.key_path())?;
            self.0 = Some(ServerKey::from_file(&cfg.key_path())?);
        }
        self.0.as_mut().ok_or_else(|| anyhow::anyhow!("server key not loaded"))
    }
}

/// One run of the lifecycle, as `flush` does it.
pub fn run(cfg: &Config, store: &mut Store) -> Result<Report> {
    let now = store::now();
    let view = View { cfg, now, blocklist: &[] };
    let mut r = Report::default();
    // A server key rotation whose grace period is over: the old key is
    // revoked as superseded and its secret erased (crate::rotation).
    if crate::rotation::retire_due(cfg, now).is_err() {
        log::warn!("event=rotation outcome=retire_deferred");
    }
    // The activity days exist only while the rule is on: switched on, the
    // count starts today for every nym; switched off, they are forgotten.
    {
        let tx = store.write()?;
        if cfg.lifecycle.tracks_activity() {
            store::start_activity(&tx, now.div_euclid(86400))?;
        } else {
            store::forget_activity(&tx)?;
        }
        tx.commit()?;
    }
    r.expired = crate::admin::expire_in(cfg, store)?;
    if r.expired > 0 {
        log::info!("event=expire outcome=erased count={}", r.expired);
    }
    if let Some(cutoff) = rules::inactive_cutoff(&view, false) {
        r.inactive = crate::admin::erase_in(cfg, store, |tx| store::inactive_ids(tx, cutoff))?;
        if r.inactive > 0 {
            log::info!("event=inactive outcome=erased count={}", r.inactive);
        }
    }
    let mut key = Key::default();
    r.warned += expiry_warnings(&view, store, &mut key)?;
    r.warned += inactivity_warnings(&view, store, &mut key)?;
    Ok(r)
}

fn expiry_warnings(v: &View, store: &mut Store, key: &mut Key) -> Result<usize> {
    let warn = &v.cfg.lifecycle.warn_days;
    let Some(max) = warn.iter().max() else { return Ok(0) };
    let mut sent = 0;
    for s in store::expiring(store, v.now, v.now + *max as i64 * 86400)? {
        let Some(days) = rules::expiry_warning_due(warn, v.now, &s) else { continue };
        let Some(n) = store::nym_by_id(store, s.id)? else { continue };
        let post = rules::expiry_notice(v, &n, s.expires);
        if tell(v.cfg, store, key, post, |tx| store::set_expiry_warned(tx, s.id, s.expires, days as i64))? {
            sent += 1;
        }
    }
    if sent > 0 {
        log::info!("event=lifecycle outcome=expiry_warned count={sent}");
    }
    Ok(sent)
}

fn inactivity_warnings(v: &View, store: &mut Store, key: &mut Key) -> Result<usize> {
    let Some(cutoff) = rules::inactive_cutoff(v, true) else { return Ok(0) };
    let mut sent = 0;
    for (id, day, warned) in store::inactive_since(store, cutoff)? {
        if rules::inactivity(v, day, warned) != rules::Inactivity::Warn {
            continue;
        }
        let Some(n) = store::nym_by_id(store, id)? else { continue };
        if n.disabled {
            continue;
        }
        let post = rules::inactivity_notice(v, &n);
        if tell(v.cfg, store, key, post, |tx| store::set_inactive_warned(tx, id, day))? {
            sent += 1;
        }
    }
    if sent > 0 {
        log::info!("event=lifecycle outcome=inactive_warned count={sent}");
    }
    Ok(sent)
}

/// Render `post` and queue it in the transaction where `mark` records it
/// as sent; nothing is queued when `mark` finds the nym changed (gone,
/// refreshed, active again). A notice that cannot be rendered (a key the
/// server cannot encrypt to any more) is marked as sent all the same, so
/// that it is not tried again at every flush. Returns whether it went.
fn tell(
    cfg: &Config,
    store: &mut Store,
    key: &mut Key,
    post: Post,
    mark: impl FnOnce(&store::Tx) -> Result<bool>,
) -> Result<bool> {
    // Through the nym's channel: its blocks, if it has confirmed ones. A
    // store that cannot be read defers the notice to the next flush.
    let posts = notices::route(&*store, vec![post]).map_err(|f| anyhow::anyhow!("{f}"))?;
    let (items, runs) = match notices::items(cfg, key.get(cfg)?, &*store, posts) {
        Ok(r) => r,
        Err(_) => {
            event("lifecycle", "notice_unrenderable");
            (Vec::new(), Default::default())
        }
    };
    let mut mine = Vec::new();
    let went = {
        let tx = store.write()?;
        if !mark(&tx)? {
            return Ok(false);
        }
        let went = !items.is_empty();
        let now = store::now();
        for item in items {
            outbox::queue_after(cfg, &tx, now, item, &mut mine)?;
        }
        tx.commit()?;
        went
    };
    channel::blocks::committed(&runs);
    outbox::hand_off_mine(cfg, store, mine);
    Ok(went)
}
