//! The outbox: items written in the transaction that caused them, handed
//! off after commit, retried with a back-off.

use rusqlite::{params, OptionalExtension};

use super::Db;
use anyhow::Result;

/// One outgoing article or mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutItem {
    pub kind: Kind,
    /// Envelope sender and recipients (mail only).
    pub env_from: String,
    pub env_to: Vec<String>,
    /// The Message-ID, also the spool file name and INN's duplicate key.
    pub msgid: String,
    /// Headers and body, without Date (added at hand-off).
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    News,
    Mail,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::News => "news",
            Kind::Mail => "mail",
        }
    }
}

/// Queue an item. `claimed_until` > now reserves it for the caller, which
/// hands it off right after commit; flush leaves it alone until then.
pub fn enqueue(c: &impl Db, item: &OutItem, due: i64, claimed_until: i64) -> Result<i64> {
    // Reserve the body, then write it through the blob API: binding it as
    // a parameter would make SQLite copy the whole (possibly 27 MiB) body,
    // and zeroblob() is only free when it is the row's last column.
    c.conn().execute(
        "INSERT INTO outbox(kind, env_from, env_to, msgid, body, due, claimed_until)
         VALUES (?1, ?2, ?3, ?4, zeroblob(?5), ?6, ?7)",
        params![
            item.kind.as_str(),
            item.env_from,
            item.env_to.join("\n"),
            item.msgid,
            item.body.len() as i64,
            due,
            claimed_until
        ],
    )?;
    let id = c.conn().last_insert_rowid();
    let mut blob = c.conn().blob_open(rusqlite::DatabaseName::Main, "outbox", "body", id, false)?;
    std::io::Write::write_all(&mut blob, &item.body)?;
    blob.close()?;
    Ok(id)
}

fn row_to_item(r: &rusqlite::Row) -> rusqlite::Result<(i64, OutItem)> {
    let kind: String = r.get(1)?;
    let to: String = r.get(3)?;
    Ok((
        r.get(0)?,
        OutItem {
            kind: if kind == "mail" { Kind::Mail } else { Kind::News },
            env_from: r.get(2)?,
            env_to: to.lines().map(str::to_string).filter(|s| !s.is_empty()).collect(),
            msgid: r.get(4)?,
            body: r.get(5)?,
        },
    ))
}

/// Claim up to `limit` due items that nobody holds, for `lease` seconds.
pub fn claim_due(c: &impl Db, now: i64, lease: i64, limit: usize) -> Result<Vec<(i64, OutItem)>> {
    let mut st = c.conn().prepare(
        "SELECT id, kind, env_from, env_to, msgid, body FROM outbox
         WHERE due <= ?1 AND claimed_until <= ?1 ORDER BY due, id LIMIT ?2",
    )?;
    let items =
        st.query_map(params![now, limit as i64], row_to_item)?.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut up = c.conn().prepare_cached("UPDATE outbox SET claimed_until = ?2 WHERE id = ?1")?;
    for (id, _) in &items {
        up.execute(params![id, now + lease])?;
    }
    Ok(items)
}

/// The item was handed off: forget it. This commit is not fsynced: if a
/// power cut undoes it, the item is handed off again, which the spool and
/// INN ignore (same Message-ID). It saves a disk flush per item while the
/// write lock is held, which is what bounds concurrent throughput.
pub fn done(c: &impl Db, id: i64) -> Result<()> {
    c.conn().pragma_update(None, "synchronous", "NORMAL")?;
    let r = c.conn().execute("DELETE FROM outbox WHERE id = ?1", [id]);
    c.conn().pragma_update(None, "synchronous", "FULL")?;
    r?;
    Ok(())
}

/// The hand-off failed: release the claim and retry after `retry_at`.
pub fn failed(c: &impl Db, id: i64, error: &str, retry_at: i64) -> Result<()> {
    c.conn().execute(
        "UPDATE outbox SET claimed_until = 0, attempts = attempts + 1, last_error = ?2, due = ?3 WHERE id = ?1",
        params![id, error, retry_at],
    )?;
    Ok(())
}

pub fn attempts(c: &impl Db, id: i64) -> Result<i64> {
    Ok(c.conn()
        .query_row("SELECT attempts FROM outbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// (items queued, items due now)
pub fn outbox_counts(c: &impl Db, now: i64) -> Result<(i64, i64)> {
    Ok(c.conn().query_row("SELECT count(*), coalesce(sum(due <= ?1), 0) FROM outbox", [now], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?)
}
