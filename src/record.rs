//! Applying a decision: one write transaction holds the delivery mark, the
//! replay mark, the guards, every state change and every outbox row. This
//! is the only code that commits a delivery, so a delivery is either whole
//! or absent, and an MTA retry after a crash finds it done.

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::{Change, Effects, Guard, NymRef, OnFail, Outcome};
use crate::logging::event;
use crate::outbox;
use crate::store::{self, NewNym, OutItem, Store, Tx};

/// What a committed decision left for after the commit.
#[derive(Default)]
pub struct Committed {
    /// Set when the record step ended the delivery another way (duplicate,
    /// replay, a guard).
    pub outcome: Option<Outcome>,
    /// Items reserved for this process's own hand-off.
    pub mine: Vec<(i64, OutItem)>,
    /// Messages held for a nym that was just created: (id, recipient, raw).
    pub held: Vec<(i64, String, Vec<u8>)>,
}

pub enum Applied {
    Committed(Committed),
    /// A guard asked for a fresh decision.
    Retry,
}

/// Apply `effects` with the rendered `items`. `digest` identifies this
/// MTA delivery (None for held messages run again).
pub fn apply(
    store: &mut Store,
    cfg: &Config,
    now: i64,
    digest: Option<&[u8]>,
    effects: &Effects,
    items: Vec<OutItem>,
) -> Result<Applied, Failure> {
    if !effects.commit && items.is_empty() {
        return Ok(Applied::Committed(Committed::default()));
    }
    let mut done = Committed::default();
    let tx = store.write()?;
    if let Some(d) = digest {
        if !store::received_insert(&tx, d, now)? {
            // The MTA retried a delivery we already committed.
            done.outcome = Some(Outcome::DuplicateDelivery);
            return Ok(Applied::Committed(done));
        }
    }
    if let Some(r) = &effects.replay_mark {
        if !store::replay_insert(&tx, r, now)? {
            tx.commit()?;
            done.outcome = Some(Outcome::ReplayedSignature);
            return Ok(Applied::Committed(done));
        }
    }
    for (g, on_fail) in &effects.guards {
        if !holds(&tx, g)? {
            match on_fail {
                OnFail::End(o) => {
                    tx.commit()?;
                    done.outcome = Some(*o);
                    return Ok(Applied::Committed(done));
                }
                OnFail::NoUser => return Err(Failure::NoUser),
                OnFail::Retry => return Ok(Applied::Retry),
            }
        }
    }
    let mut deleted = false;
    let mut roster_changed = false;
    // The id of a nym this decision inserted, for changes that follow.
    let mut inserted: Option<i64> = None;
    for c in &effects.changes {
        match c {
            Change::InsertNym { nym, keyids } => {
                let id = store::insert_nym(
                    &tx,
                    &NewNym {
                        local: &nym.local,
                        domain: &nym.domain,
                        cert: &nym.cert,
                        expires: nym.expires,
                        hsub: nym.hsub.as_deref(),
                        subject: nym.subject.as_deref(),
                        symmetric: nym.symmetric.as_deref(),
                        flags: nym.flags,
                        name: nym.name.as_deref(),
                        had_active: nym.had_active,
                    },
                )?;
                if cfg.lifecycle.tracks_activity() {
                    store::set_active_day(&tx, id, now.div_euclid(86400))?;
                }
                inserted = Some(id);
                done.held.extend(store::held_for(&tx, keyids, now)?);
                roster_changed = true;
            }
            Change::UpdateCert { id, cert, expires } => {
                store::update_cert(&tx, *id, cert, *expires)?;
                // Only the holder can make new self-signatures: a refresh
                // is a sign of life.
                if cfg.lifecycle.tracks_activity() {
                    store::set_active_day(&tx, *id, now.div_euclid(86400))?;
                }
            }
            // The day only, and only while the inactivity rule wants it.
            Change::Active { id } => {
                if cfg.lifecycle.tracks_activity() {
                    store::set_active_day(&tx, *id, now.div_euclid(86400))?;
                }
            }
            Change::UpdateOptions(n) => store::update_options(&tx, n)?,
            Change::DeleteNym { id } => {
                store::delete_nym(&tx, *id)?;
                deleted = true;
                roster_changed = true;
            }
            Change::SendCount(n) => store::update_send_count(&tx, n)?,
            Change::PendingSet { nym, blocks, cookie_hash } => {
                let id = match nym {
                    NymRef::Id(id) => *id,
                    NymRef::Inserted => {
                        inserted.ok_or_else(|| anyhow::anyhow!("pending set before its nym"))?
                    }
                };
                store::replace_pending(&tx, id, blocks, cookie_hash, now)?;
            }
            Change::ActivatePending { id } => {
                store::activate_pending(&tx, *id)?;
                deleted = true;
            }
            Change::ExpirePending { id } => {
                store::expire_pending(&tx, *id)?;
                deleted = true;
            }
            Change::DropReplyBlocks { id } => {
                store::drop_reply_blocks(&tx, *id)?;
                deleted = true;
            }
            Change::ReplaceKey { id, cert, expires, keyids } => {
                store::replace_key(&tx, *id, cert, *expires)?;
                done.held.extend(store::held_for(&tx, keyids, now)?);
            }
            Change::Units { id, day, count } => store::set_units(&tx, *id, *day, *count)?,
            Change::AddFlags { id, bits } => store::add_flags(&tx, *id, *bits)?,
            Change::AutoReplied { key } => store::autoreply_insert(&tx, key, now)?,
            Change::QueueUrl { request } => {
                store::url_enqueue(&tx, request, now)?;
            }
            Change::Hold { recipient, raw, keyids, until } => {
                store::expire_holds(&tx, now)?;
                // Anyone can have signed messages held: caps per key and in
                // all keep that from filling the disk.
                let s = &cfg.send;
                let (per_key, count, bytes) = store::held_counts(&tx, keyids)?;
                if per_key >= s.max_held_per_key as i64
                    || count >= s.max_held as i64
                    || bytes.saturating_add(raw.len() as i64) > s.max_held_bytes as i64
                {
                    done.outcome = Some(Outcome::HoldFull);
                } else {
                    store::hold(&tx, recipient, raw, keyids, now, *until)?;
                }
            }
        }
    }
    for item in items {
        outbox::queue(cfg, &tx, now, item, &mut done.mine)?;
    }
    tx.commit()?;
    if roster_changed {
        crate::recipients::rewrite_or_log(cfg, store);
    }
    if deleted && store.scrub_wal().is_err() {
        // Push the erased pages out of the WAL too; failure here is not a
        // reason to redeliver (the delete is committed), so only log it.
        event("config", "wal_scrub_deferred");
    }
    Ok(Applied::Committed(done))
}

fn holds(tx: &Tx, g: &Guard) -> Result<bool, Failure> {
    Ok(match g {
        Guard::NymEnabled { id, fingerprint } => store::nym_enabled(tx, *id, fingerprint)? == Some(true),
        Guard::NymPresent { id, fingerprint } => store::nym_enabled(tx, *id, fingerprint)?.is_some(),
        Guard::AddressFree { local, domain } => store::nym_by_address(tx, local, domain)?.is_none(),
        Guard::SendCounters { id: _, fingerprint, day, count, told } => {
            store::send_counters(tx, fingerprint)? == Some((*day, *count, *told))
        }
        Guard::UrlQuota { since, max } => store::url_count_since(tx, *since)? < *max as i64,
        Guard::Units { id, day, count, flags } => {
            store::units_and_flags(tx, *id)? == Some((*day, *count, *flags))
        }
        Guard::PendingCookie { hash } => store::pending_by_cookie(tx, hash)?.is_some(),
        Guard::AutoReplyQuota { key, since_day, since_hour, per_address, total } => {
            let (to_key, all) = store::autoreply_counts(tx, key, *since_day, *since_hour)?;
            to_key < *per_address as i64 && all < *total as i64
        }
    })
}
