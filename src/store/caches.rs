//! Short-lived memories: the replay cache of accepted signatures, the
//! record of deliveries already committed, and held messages.

use rusqlite::{params, OptionalExtension};

use super::Db;
use anyhow::Result;

/// Record a signature digest; false when it was seen before (a replay).
pub fn replay_insert(c: &impl Db, digest: &[u8], now: i64) -> Result<bool> {
    let n = c
        .conn()
        .execute("INSERT OR IGNORE INTO replay(digest, seen) VALUES (?1, ?2)", params![digest, now])?;
    Ok(n == 1)
}

pub fn replay_seen(c: &impl Db, digest: &[u8]) -> Result<bool> {
    Ok(c.conn()
        .query_row("SELECT 1 FROM replay WHERE digest = ?1", [digest], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Forget digests older than the window: such signatures are refused by
/// age anyway.
pub fn replay_prune(c: &impl Db, before: i64) -> Result<usize> {
    Ok(c.conn().execute("DELETE FROM replay WHERE seen < ?1", [before])?)
}

/// Remember that the MTA handed us this exact message for this recipient,
/// so that a retry after a crash (the MTA saw no exit status) is not
/// processed twice. False when it was already recorded.
pub fn received_insert(c: &impl Db, digest: &[u8], now: i64) -> Result<bool> {
    let n = c
        .conn()
        .execute("INSERT OR IGNORE INTO received(digest, seen) VALUES (?1, ?2)", params![digest, now])?;
    Ok(n == 1)
}

pub fn received_prune(c: &impl Db, before: i64) -> Result<usize> {
    Ok(c.conn().execute("DELETE FROM received WHERE seen < ?1", [before])?)
}

/// Hold a signed message from an unknown key.
pub fn hold(
    c: &impl Db,
    recipient: &str,
    message: &[u8],
    keyids: &[String],
    now: i64,
    expires: i64,
) -> Result<i64> {
    c.conn().execute(
        "INSERT INTO held(recipient, received, expires, message) VALUES (?1, ?2, ?3, ?4)",
        params![recipient, now, expires, message],
    )?;
    let id = c.conn().last_insert_rowid();
    let mut st =
        c.conn().prepare_cached("INSERT OR IGNORE INTO held_keys(keyid, held_id) VALUES (?1, ?2)")?;
    for k in keyids {
        st.execute(params![k, id])?;
    }
    Ok(id)
}

/// Held messages signed by any of these key IDs, oldest first.
pub fn held_for(c: &impl Db, keyids: &[String], now: i64) -> Result<Vec<(i64, String, Vec<u8>)>> {
    let mut out: Vec<(i64, String, Vec<u8>)> = Vec::new();
    let mut st = c.conn().prepare_cached(
        "SELECT h.id, h.recipient, h.message FROM held_keys k JOIN held h ON h.id = k.held_id
         WHERE k.keyid = ?1 AND h.expires > ?2",
    )?;
    for k in keyids {
        for r in st.query_map(params![k, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
            let r = r?;
            if !out.iter().any(|o| o.0 == r.0) {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| r.0);
    Ok(out)
}

pub fn unhold(c: &impl Db, id: i64) -> Result<()> {
    c.conn().execute("DELETE FROM held_keys WHERE held_id = ?1", [id])?;
    c.conn().execute("DELETE FROM held WHERE id = ?1", [id])?;
    Ok(())
}

/// Erase holds past their time.
pub fn expire_holds(c: &impl Db, now: i64) -> Result<usize> {
    c.conn()
        .execute("DELETE FROM held_keys WHERE held_id IN (SELECT id FROM held WHERE expires <= ?1)", [now])?;
    Ok(c.conn().execute("DELETE FROM held WHERE expires <= ?1", [now])?)
}

/// For the hold caps: the most messages held for any one of `keyids`, and
/// the number and total size of all held messages.
pub fn held_counts(c: &impl Db, keyids: &[String]) -> Result<(i64, i64, i64)> {
    let mut per_key = 0i64;
    let mut st = c.conn().prepare_cached("SELECT count(*) FROM held_keys WHERE keyid = ?1")?;
    for k in keyids {
        per_key = per_key.max(st.query_row([k], |r| r.get(0))?);
    }
    let (count, bytes) =
        c.conn().query_row("SELECT count(*), coalesce(sum(length(message)), 0) FROM held", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok((per_key, count, bytes))
}

/// Queue a url@ request (its plaintext) for the flush timer.
pub fn url_enqueue(c: &impl Db, request: &[u8], now: i64) -> Result<i64> {
    c.conn().execute("INSERT INTO url_requests(received, request) VALUES (?1, ?2)", params![now, request])?;
    Ok(c.conn().last_insert_rowid())
}

/// url@ requests accepted since `since` (done or not).
pub fn url_count_since(c: &impl Db, since: i64) -> Result<i64> {
    Ok(c.conn().query_row("SELECT count(*) FROM url_requests WHERE received >= ?1", [since], |r| r.get(0))?)
}

/// The oldest url@ request still waiting.
pub fn url_next(c: &impl Db) -> Result<Option<(i64, Vec<u8>)>> {
    Ok(c.conn()
        .query_row("SELECT id, request FROM url_requests WHERE done = 0 ORDER BY id LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default()))
        })
        .optional()?)
}

/// The request was answered: forget its text (it holds the key).
pub fn url_done(c: &impl Db, id: i64) -> Result<()> {
    c.conn().execute("UPDATE url_requests SET done = 1, request = NULL WHERE id = ?1", [id])?;
    Ok(())
}

/// Forget answered requests older than `before`.
pub fn url_prune(c: &impl Db, before: i64) -> Result<usize> {
    Ok(c.conn().execute("DELETE FROM url_requests WHERE done = 1 AND received < ?1", [before])?)
}
