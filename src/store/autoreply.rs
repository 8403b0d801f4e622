//! The autoresponders' memory: which addresses were answered when, as
//! hashes keyed with a random secret. The secret sits in the same
//! database, so the keying only keeps the table alone (a log, a dump of
//! one table) from being checked against guessed addresses; what bounds
//! the harm of a stolen database is that rows live 24 hours.

use rusqlite::params;
use sha2::{Digest, Sha256};

use super::{meta_get, Db};
use anyhow::Result;

const SECRET: &str = "autoreply_secret";

/// The keyed hash of an address (lowercased). The secret is made on first
/// use; `c` should be a write transaction then.
pub fn autoreply_key(c: &impl Db, address: &str) -> Result<Vec<u8>> {
    let secret = match meta_get(c, SECRET)? {
        Some(s) => s,
        None => {
            let mut b = [0u8; 8];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
            // The first process to make one wins; the others read it.
            c.conn().execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
                params![SECRET, i64::from_le_bytes(b)],
            )?;
            meta_get(c, SECRET)?.unwrap_or_default()
        }
    };
    let mut h = Sha256::new();
    h.update(b"nymgate autoreply\0");
    h.update(secret.to_le_bytes());
    h.update(address.to_ascii_lowercase().as_bytes());
    Ok(h.finalize().to_vec())
}

/// (answers to `key` since `since_key`, answers in all since `since_all`).
pub fn autoreply_counts(c: &impl Db, key: &[u8], since_key: i64, since_all: i64) -> Result<(i64, i64)> {
    let to_key = c.conn().query_row(
        "SELECT count(*) FROM autoreplies WHERE key = ?1 AND at >= ?2",
        params![key, since_key],
        |r| r.get(0),
    )?;
    let all =
        c.conn().query_row("SELECT count(*) FROM autoreplies WHERE at >= ?1", [since_all], |r| r.get(0))?;
    Ok((to_key, all))
}

/// Count one answer, and forget those older than a day.
pub fn autoreply_insert(c: &impl Db, key: &[u8], now: i64) -> Result<()> {
    c.conn().execute("DELETE FROM autoreplies WHERE at < ?1", [now - 86400])?;
    c.conn().execute("INSERT INTO autoreplies(key, at) VALUES (?1, ?2)", params![key, now])?;
    Ok(())
}
