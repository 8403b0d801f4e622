//! Reply blocks (REPLY-BLOCKS.md section 6): a nym's active blocks and its
//! one pending set, whose cookie is kept only as a SHA-256 hash.

use rusqlite::{params, OptionalExtension};

use super::Db;
use crate::openpgp as pgp;
use anyhow::Result;

/// One stored block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    /// The probability set and weight (units of 10^-9), if any.
    pub set: Option<(char, u32)>,
    /// The block text, opaque.
    pub text: String,
}

/// The pending set of a nym, as the cookie finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSet {
    pub nym_id: i64,
    pub created: i64,
}

fn read_blocks(c: &impl Db, nym_id: i64, pending: bool) -> Result<Vec<StoredBlock>> {
    let mut st = c.conn().prepare_cached(
        "SELECT set_name, weight, body FROM reply_blocks WHERE nym_id = ?1 AND pending = ?2 ORDER BY position",
    )?;
    let rows = st.query_map(params![nym_id, pending], |r| {
        let set: Option<String> = r.get(0)?;
        let weight: Option<i64> = r.get(1)?;
        let body: Vec<u8> = r.get(2)?;
        Ok((set, weight, body))
    })?;
    let mut v = Vec::new();
    for row in rows {
        let (set, weight, body) = row?;
        let set = match (set.and_then(|s| s.chars().next()), weight) {
            (Some(c), Some(w)) => Some((c, w.clamp(0, i64::from(u32::MAX)) as u32)),
            _ => None,
        };
        v.push(StoredBlock { set, text: String::from_utf8_lossy(&body).into_owned() });
    }
    Ok(v)
}

/// The nym's confirmed blocks, in their order.
pub fn active_blocks(c: &impl Db, nym_id: i64) -> Result<Vec<StoredBlock>> {
    read_blocks(c, nym_id, false)
}

/// The blocks of the nym's pending set, in their order.
pub fn pending_blocks(c: &impl Db, nym_id: i64) -> Result<Vec<StoredBlock>> {
    read_blocks(c, nym_id, true)
}

/// The nym's pending set, if it has one.
pub fn pending_set(c: &impl Db, nym_id: i64) -> Result<Option<PendingSet>> {
    Ok(c.conn()
        .query_row("SELECT nym_id, created FROM pending_sets WHERE nym_id = ?1", [nym_id], |r| {
            Ok(PendingSet { nym_id: r.get(0)?, created: r.get(1)? })
        })
        .optional()?)
}

/// The pending set a cookie hash belongs to.
pub fn pending_by_cookie(c: &impl Db, hash: &[u8]) -> Result<Option<PendingSet>> {
    Ok(c.conn()
        .query_row("SELECT nym_id, created FROM pending_sets WHERE cookie_hash = ?1", [hash], |r| {
            Ok(PendingSet { nym_id: r.get(0)?, created: r.get(1)? })
        })
        .optional()?)
}

fn drop_pending(c: &impl Db, nym_id: i64) -> Result<()> {
    c.conn().execute("DELETE FROM reply_blocks WHERE nym_id = ?1 AND pending = 1", [nym_id])?;
    c.conn().execute("DELETE FROM pending_sets WHERE nym_id = ?1", [nym_id])?;
    Ok(())
}

/// Make `blocks` the nym's pending set under `cookie_hash`, replacing an
/// older pending set and its cookie. Active blocks stay.
pub fn replace_pending(
    c: &impl Db,
    nym_id: i64,
    blocks: &[StoredBlock],
    cookie_hash: &[u8],
    now: i64,
) -> Result<()> {
    drop_pending(c, nym_id)?;
    c.conn().execute(
        "INSERT INTO pending_sets(nym_id, cookie_hash, created) VALUES (?1, ?2, ?3)",
        params![nym_id, cookie_hash, now],
    )?;
    let mut st = c.conn().prepare_cached(
        "INSERT INTO reply_blocks(nym_id, pending, position, set_name, weight, body) VALUES (?1, 1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, b) in blocks.iter().enumerate() {
        st.execute(params![
            nym_id,
            i as i64,
            b.set.map(|(s, _)| s.to_string()),
            b.set.map(|(_, w)| i64::from(w)),
            b.text.as_bytes()
        ])?;
    }
    Ok(())
}

/// Confirm the pending set: the old active blocks are erased, the
/// pending ones become active, the cookie is gone (single use).
pub fn activate_pending(c: &impl Db, nym_id: i64) -> Result<()> {
    c.conn().execute("DELETE FROM reply_blocks WHERE nym_id = ?1 AND pending = 0", [nym_id])?;
    c.conn().execute("UPDATE reply_blocks SET pending = 0 WHERE nym_id = ?1", [nym_id])?;
    c.conn().execute("DELETE FROM pending_sets WHERE nym_id = ?1", [nym_id])?;
    c.conn().execute("UPDATE nyms SET had_active = 1 WHERE id = ?1", [nym_id])?;
    Ok(())
}

/// `drop-reply-blocks`: active and pending blocks and the cookie erased;
/// the nym is back on alt.anonymous.messages.
pub fn drop_reply_blocks(c: &impl Db, nym_id: i64) -> Result<()> {
    c.conn().execute("DELETE FROM reply_blocks WHERE nym_id = ?1", [nym_id])?;
    c.conn().execute("DELETE FROM pending_sets WHERE nym_id = ?1", [nym_id])?;
    Ok(())
}

/// Pending sets made at or before `before` (they expired): nym ids.
pub fn expired_pending(c: &impl Db, before: i64) -> Result<Vec<i64>> {
    let mut st = c.conn().prepare("SELECT nym_id FROM pending_sets WHERE created <= ?1 ORDER BY nym_id")?;
    let v = st.query_map([before], |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Drop an expired pending set (its blocks and cookie).
pub fn expire_pending(c: &impl Db, nym_id: i64) -> Result<()> {
    drop_pending(c, nym_id)
}

/// The unit counter (day, units) and the flag word of a nym, read under
/// the write lock for the quota's guard (REPLY-BLOCKS.md 7.3).
pub fn units_and_flags(c: &impl Db, nym_id: i64) -> Result<Option<(i64, i64, u32)>> {
    Ok(c.conn()
        .query_row("SELECT unit_day, unit_count, flags FROM nyms WHERE id = ?1", [nym_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u32))
        })
        .optional()?)
}

/// Set `bits` in the nym's flag word, leaving the others as stored.
pub fn add_flags(c: &impl Db, nym_id: i64, bits: u32) -> Result<()> {
    c.conn().execute("UPDATE nyms SET flags = flags | ?2 WHERE id = ?1", params![nym_id, i64::from(bits)])?;
    Ok(())
}

/// Key rollover: the nym's key is replaced by another (new fingerprint).
pub fn replace_key(c: &impl Db, id: i64, cert: &pgp::PgpCert, expires: Option<i64>) -> Result<()> {
    c.conn().execute(
        "UPDATE nyms SET fingerprint = ?2, cert = ?3, expires = ?4 WHERE id = ?1",
        params![id, cert.fingerprint().to_hex(), pgp::cert_bytes(cert)?, expires],
    )?;
    super::nyms::reindex_keys(c, id, cert)
}
