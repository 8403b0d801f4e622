//! The SQLite state: nyms, the outbox, the replay cache and held messages.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so concurrent
//! deliveries queue on the database lock (for at most `busy_timeout`)
//! instead of failing half-way. Outgoing items are rows written in the same
//! transaction as the state change that caused them (transactional outbox).

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

use crate::openpgp as pgp;

/// Schema versions, applied in order; `PRAGMA user_version` records how
/// many ran. Never edit a step that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE nyms(
        id          INTEGER PRIMARY KEY,
        local       TEXT NOT NULL,
        domain      TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        cert        BLOB NOT NULL,
        expires     INTEGER,
        created     INTEGER NOT NULL,
        hsub        TEXT,
        subject     TEXT,
        symmetric   TEXT,
        acksend     INTEGER NOT NULL DEFAULT 1,
        disabled    INTEGER NOT NULL DEFAULT 0,
        send_day    INTEGER NOT NULL DEFAULT 0,
        send_count  INTEGER NOT NULL DEFAULT 0,
        limit_told  INTEGER NOT NULL DEFAULT 0,
        UNIQUE(local, domain)
    );
    CREATE TABLE nym_keys(
        keyid  TEXT NOT NULL,
        nym_id INTEGER NOT NULL REFERENCES nyms(id) ON DELETE CASCADE,
        PRIMARY KEY(keyid, nym_id)
    ) WITHOUT ROWID;
    CREATE INDEX nym_keys_by_nym ON nym_keys(nym_id);
    CREATE TABLE outbox(
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL CHECK (kind IN ('news', 'mail')),
        env_from      TEXT NOT NULL DEFAULT '',
        env_to        TEXT NOT NULL DEFAULT '',
        msgid         TEXT NOT NULL,
        due           INTEGER NOT NULL,
        claimed_until INTEGER NOT NULL DEFAULT 0,
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        -- Last, so that zeroblob() reserves it without building it in
        -- memory (see enqueue).
        body          BLOB NOT NULL
    );
    CREATE INDEX outbox_by_due ON outbox(due);
    CREATE TABLE replay(
        digest BLOB PRIMARY KEY,
        seen   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE received(
        digest BLOB PRIMARY KEY,
        seen   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE held(
        id        INTEGER PRIMARY KEY,
        recipient TEXT NOT NULL,
        received  INTEGER NOT NULL,
        expires   INTEGER NOT NULL,
        message   BLOB NOT NULL
    );
    CREATE TABLE held_keys(
        keyid   TEXT NOT NULL,
        held_id INTEGER NOT NULL REFERENCES held(id) ON DELETE CASCADE,
        PRIMARY KEY(keyid, held_id)
    ) WITHOUT ROWID;
    CREATE INDEX held_keys_by_held ON held_keys(held_id);
    "#,
];

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Store {
    pub conn: Connection,
}

impl Store {
    /// Open (and if needed migrate) the database.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store> {
        let conn =
            Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(busy_timeout)?;
        // WAL lets readers and one writer work together; FULL makes a
        // commit durable before we exit 0; secure_delete overwrites what a
        // deleted nym leaves behind.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Each delivery is its own short process. Without this, the last
        // connection to close checkpoints and deletes the WAL every time:
        // two more fsyncs per message. `flush` (run by the timer)
        // checkpoints and truncates instead, and the limit keeps a WAL
        // that once held a large message from staying large.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)?;
        let mut s = Store { conn };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<()> {
        let current: usize = self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current >= MIGRATIONS.len() {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the lock: another process may have migrated.
        let current: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(current) {
            tx.execute_batch(step).with_context(|| format!("schema migration {}", i + 1))?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A write transaction that holds the database lock from its start.
    pub fn write(&mut self) -> Result<Transaction<'_>> {
        Ok(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// Make deleted data unrecoverable from the write-ahead log too.
    pub fn scrub_wal(&self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Nym {
    pub id: i64,
    pub local: String,
    pub domain: String,
    pub fingerprint: String,
    pub cert: pgp::PgpCert,
    pub expires: Option<i64>,
    pub created: i64,
    pub hsub: Option<String>,
    pub subject: Option<String>,
    pub symmetric: Option<String>,
    pub acksend: bool,
    pub disabled: bool,
    pub send_day: i64,
    pub send_count: i64,
    pub limit_told: bool,
}

impl Nym {
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
    pub fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

const NYM_COLS: &str = "id, local, domain, fingerprint, cert, expires, created, hsub, subject, symmetric, \
     acksend, disabled, send_day, send_count, limit_told";

fn row_to_nym(r: &rusqlite::Row) -> rusqlite::Result<Nym> {
    let cert_bytes: Vec<u8> = r.get(4)?;
    let cert = pgp::cert_from_bytes(&cert_bytes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Blob, e.into()))?;
    Ok(Nym {
        id: r.get(0)?,
        local: r.get(1)?,
        domain: r.get(2)?,
        fingerprint: r.get(3)?,
        cert,
        expires: r.get(5)?,
        created: r.get(6)?,
        hsub: r.get(7)?,
        subject: r.get(8)?,
        symmetric: r.get(9)?,
        acksend: r.get(10)?,
        disabled: r.get(11)?,
        send_day: r.get(12)?,
        send_count: r.get(13)?,
        limit_told: r.get(14)?,
    })
}

pub fn nym_by_address(c: &Connection, local: &str, domain: &str) -> Result<Option<Nym>> {
    Ok(c.query_row(
        &format!("SELECT {NYM_COLS} FROM nyms WHERE local = ?1 AND domain = ?2"),
        params![local, domain],
        row_to_nym,
    )
    .optional()?)
}

pub fn nym_by_fingerprint(c: &Connection, fpr: &str) -> Result<Option<Nym>> {
    Ok(c.query_row(&format!("SELECT {NYM_COLS} FROM nyms WHERE fingerprint = ?1"), params![fpr], row_to_nym)
        .optional()?)
}

/// Under the write lock: does nym `id` still hold key `fpr`, and is it
/// enabled? (`None`: gone or re-keyed.) Cheaper than loading the nym again,
/// which would parse its certificate a second time.
pub fn nym_enabled(c: &Connection, id: i64, fpr: &str) -> Result<Option<bool>> {
    Ok(c.query_row("SELECT disabled FROM nyms WHERE id = ?1 AND fingerprint = ?2", params![id, fpr], |r| {
        r.get::<_, bool>(0)
    })
    .optional()?
    .map(|disabled| !disabled))
}

pub fn all_nyms(c: &Connection) -> Result<Vec<Nym>> {
    let mut st = c.prepare(&format!("SELECT {NYM_COLS} FROM nyms ORDER BY domain, local"))?;
    let v = st.query_map([], row_to_nym)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Certificates of nyms holding any of these key IDs (for signature checks).
pub fn certs_by_keyids(c: &Connection, keyids: &[String]) -> Result<Vec<pgp::PgpCert>> {
    let mut out = Vec::new();
    let mut st =
        c.prepare_cached("SELECT n.cert FROM nym_keys k JOIN nyms n ON n.id = k.nym_id WHERE k.keyid = ?1")?;
    for id in keyids {
        let rows = st.query_map([id], |r| r.get::<_, Vec<u8>>(0))?;
        for b in rows {
            if let Ok(cert) = pgp::cert_from_bytes(&b?) {
                if !out.iter().any(|c: &pgp::PgpCert| c.fingerprint() == cert.fingerprint()) {
                    out.push(cert);
                }
            }
        }
    }
    Ok(out)
}

pub struct NewNym<'a> {
    pub local: &'a str,
    pub domain: &'a str,
    pub cert: &'a pgp::PgpCert,
    pub expires: Option<i64>,
    pub hsub: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub symmetric: Option<&'a str>,
    pub acksend: bool,
}

pub fn insert_nym(c: &Connection, n: &NewNym) -> Result<i64> {
    c.execute(
        "INSERT INTO nyms(local, domain, fingerprint, cert, expires, created, hsub, subject, symmetric, acksend)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            n.local,
            n.domain,
            n.cert.fingerprint().to_hex(),
            pgp::cert_bytes(n.cert)?,
            n.expires,
            now(),
            n.hsub,
            n.subject,
            n.symmetric,
            n.acksend
        ],
    )?;
    let id = c.last_insert_rowid();
    index_keys(c, id, n.cert)?;
    Ok(id)
}

fn index_keys(c: &Connection, id: i64, cert: &pgp::PgpCert) -> Result<()> {
    c.execute("DELETE FROM nym_keys WHERE nym_id = ?1", [id])?;
    let mut st = c.prepare_cached("INSERT OR IGNORE INTO nym_keys(keyid, nym_id) VALUES (?1, ?2)")?;
    for k in pgp::key_ids(cert) {
        st.execute(params![k, id])?;
    }
    Ok(())
}

/// Replace the stored certificate (key refresh).
pub fn update_cert(c: &Connection, id: i64, cert: &pgp::PgpCert, expires: Option<i64>) -> Result<()> {
    c.execute(
        "UPDATE nyms SET cert = ?2, expires = ?3 WHERE id = ?1",
        params![id, pgp::cert_bytes(cert)?, expires],
    )?;
    index_keys(c, id, cert)
}

pub fn update_options(c: &Connection, n: &Nym) -> Result<()> {
    c.execute(
        "UPDATE nyms SET hsub = ?2, subject = ?3, symmetric = ?4, acksend = ?5 WHERE id = ?1",
        params![n.id, n.hsub, n.subject, n.symmetric, n.acksend],
    )?;
    Ok(())
}

pub fn set_disabled(c: &Connection, id: i64, disabled: bool) -> Result<()> {
    c.execute("UPDATE nyms SET disabled = ?2 WHERE id = ?1", params![id, disabled])?;
    Ok(())
}

pub fn update_send_count(c: &Connection, n: &Nym) -> Result<()> {
    c.execute(
        "UPDATE nyms SET send_day = ?2, send_count = ?3, limit_told = ?4 WHERE id = ?1",
        params![n.id, n.send_day, n.send_count, n.limit_told],
    )?;
    Ok(())
}

pub fn delete_nym(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM nym_keys WHERE nym_id = ?1", [id])?;
    c.execute("DELETE FROM nyms WHERE id = ?1", [id])?;
    Ok(())
}

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
pub fn enqueue(c: &Connection, item: &OutItem, due: i64, claimed_until: i64) -> Result<i64> {
    // Reserve the body, then write it through the blob API: binding it as
    // a parameter would make SQLite copy the whole (possibly 27 MiB) body,
    // and zeroblob() is only free when it is the row's last column.
    c.execute(
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
    let id = c.last_insert_rowid();
    let mut blob = c.blob_open(rusqlite::DatabaseName::Main, "outbox", "body", id, false)?;
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
pub fn claim_due(c: &Connection, now: i64, lease: i64, limit: usize) -> Result<Vec<(i64, OutItem)>> {
    let mut st = c.prepare(
        "SELECT id, kind, env_from, env_to, msgid, body FROM outbox
         WHERE due <= ?1 AND claimed_until <= ?1 ORDER BY due, id LIMIT ?2",
    )?;
    let items =
        st.query_map(params![now, limit as i64], row_to_item)?.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut up = c.prepare_cached("UPDATE outbox SET claimed_until = ?2 WHERE id = ?1")?;
    for (id, _) in &items {
        up.execute(params![id, now + lease])?;
    }
    Ok(items)
}

/// The item was handed off: forget it. This commit is not fsynced: if a
/// power cut undoes it, the item is handed off again, which the spool and
/// INN ignore (same Message-ID). It saves a disk flush per item while the
/// write lock is held, which is what bounds concurrent throughput.
pub fn done(c: &Connection, id: i64) -> Result<()> {
    c.pragma_update(None, "synchronous", "NORMAL")?;
    let r = c.execute("DELETE FROM outbox WHERE id = ?1", [id]);
    c.pragma_update(None, "synchronous", "FULL")?;
    r?;
    Ok(())
}

/// The hand-off failed: release the claim and retry after `retry_at`.
pub fn failed(c: &Connection, id: i64, error: &str, retry_at: i64) -> Result<()> {
    c.execute(
        "UPDATE outbox SET claimed_until = 0, attempts = attempts + 1, last_error = ?2, due = ?3 WHERE id = ?1",
        params![id, error, retry_at],
    )?;
    Ok(())
}

pub fn attempts(c: &Connection, id: i64) -> Result<i64> {
    Ok(c.query_row("SELECT attempts FROM outbox WHERE id = ?1", [id], |r| r.get(0)).optional()?.unwrap_or(0))
}

/// (items queued, items due now)
pub fn outbox_counts(c: &Connection, now: i64) -> Result<(i64, i64)> {
    Ok(c.query_row("SELECT count(*), coalesce(sum(due <= ?1), 0) FROM outbox", [now], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?)
}

/// Record a signature digest; false when it was seen before (a replay).
pub fn replay_insert(c: &Connection, digest: &[u8], now: i64) -> Result<bool> {
    let n = c.execute("INSERT OR IGNORE INTO replay(digest, seen) VALUES (?1, ?2)", params![digest, now])?;
    Ok(n == 1)
}

pub fn replay_seen(c: &Connection, digest: &[u8]) -> Result<bool> {
    Ok(c.query_row("SELECT 1 FROM replay WHERE digest = ?1", [digest], |_| Ok(())).optional()?.is_some())
}

/// Forget digests older than the window: such signatures are refused by
/// age anyway.
pub fn replay_prune(c: &Connection, before: i64) -> Result<usize> {
    Ok(c.execute("DELETE FROM replay WHERE seen < ?1", [before])?)
}

/// Remember that the MTA handed us this exact message for this recipient,
/// so that a retry after a crash (the MTA saw no exit status) is not
/// processed twice. False when it was already recorded.
pub fn received_insert(c: &Connection, digest: &[u8], now: i64) -> Result<bool> {
    let n =
        c.execute("INSERT OR IGNORE INTO received(digest, seen) VALUES (?1, ?2)", params![digest, now])?;
    Ok(n == 1)
}

pub fn received_prune(c: &Connection, before: i64) -> Result<usize> {
    Ok(c.execute("DELETE FROM received WHERE seen < ?1", [before])?)
}

/// Hold a signed message from an unknown key.
pub fn hold(
    c: &Connection,
    recipient: &str,
    message: &[u8],
    keyids: &[String],
    now: i64,
    expires: i64,
) -> Result<i64> {
    c.execute(
        "INSERT INTO held(recipient, received, expires, message) VALUES (?1, ?2, ?3, ?4)",
        params![recipient, now, expires, message],
    )?;
    let id = c.last_insert_rowid();
    let mut st = c.prepare_cached("INSERT OR IGNORE INTO held_keys(keyid, held_id) VALUES (?1, ?2)")?;
    for k in keyids {
        st.execute(params![k, id])?;
    }
    Ok(id)
}

/// Held messages signed by any of these key IDs, oldest first.
pub fn held_for(c: &Connection, keyids: &[String], now: i64) -> Result<Vec<(i64, String, Vec<u8>)>> {
    let mut out: Vec<(i64, String, Vec<u8>)> = Vec::new();
    let mut st = c.prepare_cached(
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

pub fn unhold(c: &Connection, id: i64) -> Result<()> {
    c.execute("DELETE FROM held_keys WHERE held_id = ?1", [id])?;
    c.execute("DELETE FROM held WHERE id = ?1", [id])?;
    Ok(())
}

/// Erase holds past their time.
pub fn expire_holds(c: &Connection, now: i64) -> Result<usize> {
    c.execute("DELETE FROM held_keys WHERE held_id IN (SELECT id FROM held WHERE expires <= ?1)", [now])?;
    Ok(c.execute("DELETE FROM held WHERE expires <= ?1", [now])?)
}
