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
    /// The nym that sent it, told if it is given up (mail a nym sent).
    pub nym: Option<i64>,
}

/// An item on its way into the outbox, with the seconds it waits before
/// the `[delivery]` latency is added: a Type I remailer's Latent-Time
/// (REPLY-BLOCKS.md 10.10), 0 for everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delayed {
    pub item: OutItem,
    pub delay: i64,
}

impl From<OutItem> for Delayed {
    fn from(item: OutItem) -> Delayed {
        Delayed { item, delay: 0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    News,
    Mail,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
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
    c.conn().execute(
        "INSERT INTO outbox_info(id, created, nym_id) VALUES (?1, ?2, ?3)",
        params![id, super::now(), item.nym],
    )?;
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
            nym: r.get(6)?,
        },
    ))
}

/// Claim up to `limit` due items that nobody holds, for `lease` seconds.
/// With `retries_only`, only items that were tried before: the others
/// wait in the pool for [`claim_ids`].
pub fn claim_due(
    c: &impl Db,
    now: i64,
    lease: i64,
    limit: usize,
    retries_only: bool,
) -> Result<Vec<(i64, OutItem)>> {
    let mut st = c.conn().prepare(
        "SELECT o.id, o.kind, o.env_from, o.env_to, o.msgid, o.body, i.nym_id
         FROM outbox o LEFT JOIN outbox_info i ON i.id = o.id
         WHERE o.due <= ?1 AND o.claimed_until <= ?1 AND (o.attempts > 0 OR NOT ?3)
         ORDER BY o.due, o.id LIMIT ?2",
    )?;
    let items = st
        .query_map(params![now, limit as i64, retries_only], row_to_item)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    claim(c, &items, now, lease)?;
    Ok(items)
}

/// The pool: due items never tried and held by nobody, with the time each
/// was queued.
pub fn pool_waiting(c: &impl Db, now: i64) -> Result<Vec<(i64, i64)>> {
    let mut st = c.conn().prepare(
        "SELECT o.id, coalesce(i.created, o.due) FROM outbox o LEFT JOIN outbox_info i ON i.id = o.id
         WHERE o.due <= ?1 AND o.claimed_until <= ?1 AND o.attempts = 0 ORDER BY o.id",
    )?;
    let rows = st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Claim the items `ids` (those still unclaimed) for `lease` seconds.
pub fn claim_ids(c: &impl Db, ids: &[i64], now: i64, lease: i64) -> Result<Vec<(i64, OutItem)>> {
    let mut st = c.conn().prepare_cached(
        "SELECT o.id, o.kind, o.env_from, o.env_to, o.msgid, o.body, i.nym_id
         FROM outbox o LEFT JOIN outbox_info i ON i.id = o.id
         WHERE o.id = ?1 AND o.claimed_until <= ?2",
    )?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(item) = st.query_row(params![id, now], row_to_item).optional()? {
            items.push(item);
        }
    }
    claim(c, &items, now, lease)?;
    Ok(items)
}

fn claim(c: &impl Db, items: &[(i64, OutItem)], now: i64, lease: i64) -> Result<()> {
    let mut up = c.conn().prepare_cached("UPDATE outbox SET claimed_until = ?2 WHERE id = ?1")?;
    for (id, _) in items {
        up.execute(params![id, now + lease])?;
    }
    Ok(())
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

/// The hand-off failed: release the claim and retry after `retry_at`. A
/// refusal for good (`permanent`) is counted apart, for the give-up rule.
pub fn failed(c: &impl Db, id: i64, error: &str, retry_at: i64, permanent: bool) -> Result<()> {
    c.conn().execute(
        "UPDATE outbox SET claimed_until = 0, attempts = attempts + 1, last_error = ?2, due = ?3 WHERE id = ?1",
        params![id, error, retry_at],
    )?;
    if permanent {
        c.conn().execute(
            "INSERT INTO outbox_info(id, created, refusals) SELECT id, due, 1 FROM outbox WHERE id = ?1
             ON CONFLICT(id) DO UPDATE SET refusals = refusals + 1",
            [id],
        )?;
    }
    Ok(())
}

/// When the item was queued and how often it was refused for good.
pub fn age_and_refusals(c: &impl Db, id: i64) -> Result<(i64, i64)> {
    Ok(c.conn()
        .query_row(
            "SELECT coalesce(i.created, o.due), coalesce(i.refusals, 0)
             FROM outbox o LEFT JOIN outbox_info i ON i.id = o.id WHERE o.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, 0)))
}

/// Give an item up: it leaves the queue, and a row without content (kind,
/// fixed reason, time) stays for `nymgate status`.
pub fn give_up(c: &impl Db, id: i64, kind: Kind, reason: &str, now: i64) -> Result<()> {
    c.conn().execute(
        "INSERT INTO given_up(kind, reason, at) VALUES (?1, ?2, ?3)",
        params![kind.as_str(), reason, now],
    )?;
    c.conn().execute("DELETE FROM outbox WHERE id = ?1", [id])?;
    Ok(())
}

/// One queued item as the operator sees it (no content, no addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub kind: String,
    pub created: i64,
    pub due: i64,
    pub attempts: i64,
    pub size: i64,
    pub last_error: Option<String>,
}

pub fn queue_list(c: &impl Db) -> Result<Vec<Queued>> {
    let mut st = c.conn().prepare(
        "SELECT o.id, o.kind, coalesce(i.created, o.due), o.due, o.attempts, length(o.body), o.last_error
         FROM outbox o LEFT JOIN outbox_info i ON i.id = o.id ORDER BY o.due, o.id",
    )?;
    let v = st
        .query_map([], |r| {
            Ok(Queued {
                id: r.get(0)?,
                kind: r.get(1)?,
                created: r.get(2)?,
                due: r.get(3)?,
                attempts: r.get(4)?,
                size: r.get(5)?,
                last_error: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Make an item due now (`nymgate queue retry`). False if there is none.
pub fn queue_retry(c: &impl Db, id: i64, now: i64) -> Result<bool> {
    Ok(c.conn().execute("UPDATE outbox SET due = ?2, claimed_until = 0 WHERE id = ?1", params![id, now])?
        == 1)
}

/// Remove an item (`nymgate queue drop`). False if there is none.
pub fn queue_drop(c: &impl Db, id: i64) -> Result<bool> {
    Ok(c.conn().execute("DELETE FROM outbox WHERE id = ?1", [id])? == 1)
}

/// Items given up, by kind and reason: (kind, reason, count).
pub fn given_up_counts(c: &impl Db) -> Result<Vec<(String, String, i64)>> {
    let mut st = c
        .conn()
        .prepare("SELECT kind, reason, count(*) FROM given_up GROUP BY kind, reason ORDER BY kind, reason")?;
    let v =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Per kind: (kind, queued, due now, oldest due time, items with `n` or
/// more attempts).
pub type KindSummary = (String, i64, i64, Option<i64>, i64);

pub fn queue_summary(c: &impl Db, now: i64, n: i64) -> Result<Vec<KindSummary>> {
    let mut st = c.conn().prepare(
        "SELECT kind, count(*), coalesce(sum(due <= ?1), 0), min(CASE WHEN due <= ?1 THEN due END),
                coalesce(sum(attempts >= ?2), 0)
         FROM outbox GROUP BY kind ORDER BY kind",
    )?;
    let v = st
        .query_map(params![now, n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

pub fn meta_set(c: &impl Db, key: &str, value: i64) -> Result<()> {
    c.conn().execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}

pub fn meta_get(c: &impl Db, key: &str) -> Result<Option<i64>> {
    Ok(c.conn().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
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
