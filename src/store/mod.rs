//! The SQLite state: nyms, the outbox, the replay cache and held messages.
//! This module is the only one that knows SQL; its connection never leaves
//! it. Every function takes a [`Db`]: the [`Store`] itself for reads, or a
//! [`Tx`] for work that must commit together.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction, so concurrent
//! deliveries queue on the database lock (for at most `busy_timeout`)
//! instead of failing half-way. Outgoing items are rows written in the same
//! transaction as the state change that caused them (transactional outbox).

use anyhow::{Context, Result};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

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
    // 2: url@ requests wait here for the flush timer, off the MTA's path;
    // done rows stay (without the request) for the hourly cap.
    r#"
    CREATE TABLE url_requests(
        id       INTEGER PRIMARY KEY,
        received INTEGER NOT NULL,
        done     INTEGER NOT NULL DEFAULT 0,
        request  BLOB
    );
    CREATE INDEX url_requests_by_received ON url_requests(received);
    "#,
    // 3: what the give-up rule and `nymgate status` need. A side table,
    // because the outbox body must stay its table's last column.
    r#"
    CREATE TABLE outbox_info(
        id       INTEGER PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
        created  INTEGER NOT NULL,
        nym_id   INTEGER,
        refusals INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE given_up(
        id     INTEGER PRIMARY KEY,
        kind   TEXT NOT NULL,
        reason TEXT NOT NULL,
        at     INTEGER NOT NULL
    );
    CREATE TABLE meta(
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 4: the life of a nym (crate::lifecycle). Which expiry warnings were
    // sent, for which expiry date (a refresh with a new date re-arms them);
    // the last UTC day of a signed request, kept only while the inactivity
    // rule is on (0: not kept); and which day an inactivity warning was
    // sent for.
    r#"
    ALTER TABLE nyms ADD COLUMN expiry_warned_for INTEGER;
    ALTER TABLE nyms ADD COLUMN expiry_warned_days INTEGER;
    ALTER TABLE nyms ADD COLUMN active_day INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE nyms ADD COLUMN inactive_warned INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: the nym.alias.net half (REPLY-BLOCKS.md section 2). The flag
    // word takes over acksend as bit 0x100 (0xfd: the bits 0x4-0x80 that
    // nym.alias.net always set); a display name; the per-UTC-day unit
    // counter; whether the nym ever had a confirmed block (a Config:
    // creation that never had one is erased when its set expires). Blocks
    // are active (pending = 0) or the one pending set, whose cookie is kept
    // only as its SHA-256.
    r#"
    ALTER TABLE nyms ADD COLUMN flags INTEGER NOT NULL DEFAULT 253;
    UPDATE nyms SET flags = 253 | (CASE WHEN acksend <> 0 THEN 256 ELSE 0 END);
    ALTER TABLE nyms DROP COLUMN acksend;
    ALTER TABLE nyms ADD COLUMN name TEXT;
    ALTER TABLE nyms ADD COLUMN unit_day INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE nyms ADD COLUMN unit_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE nyms ADD COLUMN had_active INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE reply_blocks(
        id       INTEGER PRIMARY KEY,
        nym_id   INTEGER NOT NULL REFERENCES nyms(id) ON DELETE CASCADE,
        pending  INTEGER NOT NULL,
        position INTEGER NOT NULL,
        set_name TEXT,
        weight   INTEGER,
        body     BLOB NOT NULL
    );
    CREATE INDEX reply_blocks_by_nym ON reply_blocks(nym_id, pending, position);
    CREATE TABLE pending_sets(
        nym_id      INTEGER PRIMARY KEY REFERENCES nyms(id) ON DELETE CASCADE,
        cookie_hash BLOB NOT NULL UNIQUE,
        created     INTEGER NOT NULL
    );
    "#,
    // 6: answers of the autoresponders, for their caps: a keyed hash of
    // the address answered and when, kept for 24 hours.
    r#"
    CREATE TABLE autoreplies(
        key BLOB NOT NULL,
        at  INTEGER NOT NULL
    );
    CREATE INDEX autoreplies_by_key ON autoreplies(key, at);
    CREATE INDEX autoreplies_by_at ON autoreplies(at);
    "#,
];

/// Seconds since the epoch: the server's clock.
///
/// Test hook: in debug builds only (what `cargo test` builds), the
/// environment variable `NYMGATE_TEST_NOW` (seconds since the epoch)
/// replaces the system clock, so that the integration tests can run
/// `flush` weeks ahead (key expiry, inactivity). A release build ignores
/// it.
pub fn now() -> i64 {
    #[cfg(debug_assertions)]
    if let Some(t) = std::env::var("NYMGATE_TEST_NOW").ok().and_then(|v| v.trim().parse::<i64>().ok()) {
        return t;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct Store {
    conn: Connection,
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
    pub fn write(&mut self) -> Result<Tx<'_>> {
        Ok(Tx { tx: self.conn.transaction_with_behavior(TransactionBehavior::Immediate)? })
    }

    /// A short transaction for bookkeeping that may share the connection
    /// with readers (flush, housekeeping).
    pub fn unchecked(&self) -> Result<Tx<'_>> {
        Ok(Tx { tx: self.conn.unchecked_transaction()? })
    }

    /// Make deleted data unrecoverable from the write-ahead log too.
    pub fn scrub_wal(&self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// An open write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx<'a> {
    tx: Transaction<'a>,
}

impl Tx<'_> {
    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

mod sealed {
    /// Access to the connection, for this module's functions only.
    pub trait HasConn {
        fn conn(&self) -> &rusqlite::Connection;
    }
}

/// Something the store's functions can run on: the store or a transaction.
pub trait Db: sealed::HasConn {}

impl sealed::HasConn for Store {
    fn conn(&self) -> &Connection {
        &self.conn
    }
}
impl Db for Store {}
impl sealed::HasConn for Tx<'_> {
    fn conn(&self) -> &Connection {
        &self.tx
    }
}
impl Db for Tx<'_> {}

/// Whether a store error is worth retrying as it is: the database was
/// busy or locked, or the disk failed. Anything else (a corrupt file, a
/// schema from a newer version) needs the operator.
pub fn is_transient(e: &anyhow::Error) -> bool {
    use rusqlite::ffi::ErrorCode as C;
    match e.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(f, _)) => matches!(
            f.code,
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::SystemIoFailure
                | C::DiskFull
                | C::CannotOpen
                | C::OutOfMemory
        ),
        Some(_) => false,
        None => e.downcast_ref::<std::io::Error>().is_some(),
    }
}

pub use autoreply::*;
pub use caches::*;
pub use nyms::*;
pub use outbox::*;
pub use reply_blocks::*;

mod autoreply;
mod caches;
mod nyms;
mod outbox;
mod reply_blocks;

#[cfg(test)]
mod tests;
