//! The nyms: key, options, state and the index of their key IDs.

use rusqlite::{params, OptionalExtension};

use super::{now, Db};
use crate::openpgp as pgp;
use anyhow::Result;

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
    /// The flag word (REPLY-BLOCKS.md section 2; acksend is bit 0x100).
    pub flags: u32,
    /// The holder's lock (`nymgate nym disable`), apart from the `disable`
    /// flag the holder sets.
    pub disabled: bool,
    pub send_day: i64,
    pub send_count: i64,
    pub limit_told: bool,
    /// The display name of `name="..."`.
    pub name: Option<String>,
    /// The reply-block unit counter: its UTC day (days since the epoch)
    /// and the units spent that day.
    pub unit_day: i64,
    pub unit_count: i64,
    /// The nym has had a confirmed reply block set, or was not made by a
    /// `Config:` request.
    pub had_active: bool,
    /// Active (confirmed) and pending reply blocks (read-only counts).
    pub active_blocks: i64,
    pub pending_blocks: i64,
}

impl Nym {
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
    pub fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
    pub fn has(&self, bit: u32) -> bool {
        self.flags & bit != 0
    }
    pub fn acksend(&self) -> bool {
        self.has(crate::protocol::nym_commands::flag::ACKSEND)
    }
    pub fn set_flag(&mut self, bit: u32, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }
    /// The channel rule: a nym with an active block receives through its
    /// blocks, any other through alt.anonymous.messages.
    pub fn via_blocks(&self) -> bool {
        self.active_blocks > 0
    }
}

const NYM_COLS: &str = "id, local, domain, fingerprint, cert, expires, created, hsub, subject, symmetric, \
     flags, disabled, send_day, send_count, limit_told, name, unit_day, unit_count, had_active, \
     (SELECT COUNT(*) FROM reply_blocks b WHERE b.nym_id = nyms.id AND b.pending = 0), \
     (SELECT COUNT(*) FROM reply_blocks b WHERE b.nym_id = nyms.id AND b.pending = 1)";

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
        flags: r.get::<_, i64>(10)? as u32,
        disabled: r.get(11)?,
        send_day: r.get(12)?,
        send_count: r.get(13)?,
        limit_told: r.get(14)?,
        name: r.get(15)?,
        unit_day: r.get(16)?,
        unit_count: r.get(17)?,
        had_active: r.get(18)?,
        active_blocks: r.get(19)?,
        pending_blocks: r.get(20)?,
    })
}

pub fn nym_by_address(c: &impl Db, local: &str, domain: &str) -> Result<Option<Nym>> {
    Ok(c.conn()
        .query_row(
            &format!("SELECT {NYM_COLS} FROM nyms WHERE local = ?1 AND domain = ?2"),
            params![local, domain],
            row_to_nym,
        )
        .optional()?)
}

pub fn nym_by_fingerprint(c: &impl Db, fpr: &str) -> Result<Option<Nym>> {
    Ok(c.conn()
        .query_row(&format!("SELECT {NYM_COLS} FROM nyms WHERE fingerprint = ?1"), params![fpr], row_to_nym)
        .optional()?)
}

/// Under the write lock: does nym `id` still hold key `fpr`, and is it
/// enabled? (`None`: gone or re-keyed.) Cheaper than loading the nym again,
/// which would parse its certificate a second time.
pub fn nym_enabled(c: &impl Db, id: i64, fpr: &str) -> Result<Option<bool>> {
    Ok(c.conn()
        .query_row("SELECT disabled FROM nyms WHERE id = ?1 AND fingerprint = ?2", params![id, fpr], |r| {
            r.get::<_, bool>(0)
        })
        .optional()?
        .map(|disabled| !disabled))
}

pub fn all_nyms(c: &impl Db) -> Result<Vec<Nym>> {
    let mut st = c.conn().prepare(&format!("SELECT {NYM_COLS} FROM nyms ORDER BY domain, local"))?;
    let v = st.query_map([], row_to_nym)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Certificates of nyms holding any of these key IDs (for signature checks).
pub fn certs_by_keyids(c: &impl Db, keyids: &[String]) -> Result<Vec<pgp::PgpCert>> {
    let mut out = Vec::new();
    let mut st = c
        .conn()
        .prepare_cached("SELECT n.cert FROM nym_keys k JOIN nyms n ON n.id = k.nym_id WHERE k.keyid = ?1")?;
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
    pub flags: u32,
    pub name: Option<&'a str>,
    pub had_active: bool,
}

pub fn insert_nym(c: &impl Db, n: &NewNym) -> Result<i64> {
    c.conn().execute(
        "INSERT INTO nyms(local, domain, fingerprint, cert, expires, created, hsub, subject, symmetric, flags,
                          name, had_active)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
            i64::from(n.flags),
            n.name,
            n.had_active
        ],
    )?;
    let id = c.conn().last_insert_rowid();
    index_keys(c, id, n.cert)?;
    Ok(id)
}

pub(super) fn reindex_keys(c: &impl Db, id: i64, cert: &pgp::PgpCert) -> Result<()> {
    index_keys(c, id, cert)
}

fn index_keys(c: &impl Db, id: i64, cert: &pgp::PgpCert) -> Result<()> {
    c.conn().execute("DELETE FROM nym_keys WHERE nym_id = ?1", [id])?;
    let mut st = c.conn().prepare_cached("INSERT OR IGNORE INTO nym_keys(keyid, nym_id) VALUES (?1, ?2)")?;
    for k in pgp::key_ids(cert) {
        st.execute(params![k, id])?;
    }
    Ok(())
}

/// Replace the stored certificate (key refresh).
pub fn update_cert(c: &impl Db, id: i64, cert: &pgp::PgpCert, expires: Option<i64>) -> Result<()> {
    c.conn().execute(
        "UPDATE nyms SET cert = ?2, expires = ?3 WHERE id = ?1",
        params![id, pgp::cert_bytes(cert)?, expires],
    )?;
    index_keys(c, id, cert)
}

/// Store the options of the nym row: the Zax ones, the flag word and the
/// display name.
pub fn update_options(c: &impl Db, n: &Nym) -> Result<()> {
    c.conn().execute(
        "UPDATE nyms SET hsub = ?2, subject = ?3, symmetric = ?4, flags = ?5, name = ?6 WHERE id = ?1",
        params![n.id, n.hsub, n.subject, n.symmetric, i64::from(n.flags), n.name],
    )?;
    Ok(())
}

/// Set the unit counter of a nym (day, units spent that day).
pub fn set_units(c: &impl Db, id: i64, day: i64, count: i64) -> Result<()> {
    c.conn()
        .execute("UPDATE nyms SET unit_day = ?2, unit_count = ?3 WHERE id = ?1", params![id, day, count])?;
    Ok(())
}

pub fn set_disabled(c: &impl Db, id: i64, disabled: bool) -> Result<()> {
    c.conn().execute("UPDATE nyms SET disabled = ?2 WHERE id = ?1", params![id, disabled])?;
    Ok(())
}

pub fn update_send_count(c: &impl Db, n: &Nym) -> Result<()> {
    c.conn().execute(
        "UPDATE nyms SET send_day = ?2, send_count = ?3, limit_told = ?4 WHERE id = ?1",
        params![n.id, n.send_day, n.send_count, n.limit_told],
    )?;
    Ok(())
}

/// Erase a nym with its key index, reply blocks and cookie (the store
/// runs with `secure_delete`, so the rows are overwritten).
pub fn delete_nym(c: &impl Db, id: i64) -> Result<()> {
    c.conn().execute("DELETE FROM nym_keys WHERE nym_id = ?1", [id])?;
    c.conn().execute("DELETE FROM reply_blocks WHERE nym_id = ?1", [id])?;
    c.conn().execute("DELETE FROM pending_sets WHERE nym_id = ?1", [id])?;
    c.conn().execute("DELETE FROM nyms WHERE id = ?1", [id])?;
    Ok(())
}

/// Under the write lock: the send counters (day, count, told) of the nym
/// holding `fpr`, without loading its certificate.
pub fn send_counters(c: &impl Db, fpr: &str) -> Result<Option<(i64, i64, bool)>> {
    Ok(c.conn()
        .query_row(
            "SELECT send_day, send_count, limit_told FROM nyms WHERE fingerprint = ?1",
            params![fpr],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

/// The address (local, domain) of every nym that takes mail (not
/// disabled), without loading certificates.
pub fn all_addresses(c: &impl Db) -> Result<Vec<(String, String)>> {
    let mut st =
        c.conn().prepare("SELECT local, domain FROM nyms WHERE disabled = 0 ORDER BY domain, local")?;
    let v = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Nyms whose key expired at or before `cutoff`: (id).
pub fn expired_ids(c: &impl Db, cutoff: i64) -> Result<Vec<i64>> {
    let mut st = c.conn().prepare("SELECT id FROM nyms WHERE expires IS NOT NULL AND expires <= ?1")?;
    let v = st.query_map([cutoff], |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// What the expiry warnings need of a nym, without its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryState {
    pub id: i64,
    pub expires: i64,
    /// The expiry date the warnings sent so far were about.
    pub warned_for: Option<i64>,
    /// The fewest days before expiry of the warnings sent for it.
    pub warned_days: Option<i64>,
}

/// Nyms whose key expires after `now` and at or before `until`.
pub fn expiring(c: &impl Db, now: i64, until: i64) -> Result<Vec<ExpiryState>> {
    let mut st = c.conn().prepare(
        "SELECT id, expires, expiry_warned_for, expiry_warned_days FROM nyms
         WHERE expires IS NOT NULL AND expires > ?1 AND expires <= ?2 AND disabled = 0",
    )?;
    let v = st
        .query_map([now, until], |r| {
            Ok(ExpiryState {
                id: r.get(0)?,
                expires: r.get(1)?,
                warned_for: r.get(2)?,
                warned_days: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// Record that the warning `days` before `expires` went out; false (and
/// nothing changed) if the nym is gone or its expiry moved meanwhile.
pub fn set_expiry_warned(c: &impl Db, id: i64, expires: i64, days: i64) -> Result<bool> {
    let n = c.conn().execute(
        "UPDATE nyms SET expiry_warned_for = ?2, expiry_warned_days = ?3 WHERE id = ?1 AND expires = ?2",
        params![id, expires, days],
    )?;
    Ok(n == 1)
}

/// A signed request from nym `id` on UTC day `day`.
pub fn set_active_day(c: &impl Db, id: i64, day: i64) -> Result<()> {
    c.conn().execute("UPDATE nyms SET active_day = ?2 WHERE id = ?1", params![id, day])?;
    Ok(())
}

/// The inactivity rule was switched on: nyms without a known day start
/// counting from `day`.
pub fn start_activity(c: &impl Db, day: i64) -> Result<usize> {
    Ok(c.conn().execute("UPDATE nyms SET active_day = ?1 WHERE active_day = 0", [day])?)
}

/// The inactivity rule is off: forget every activity day.
pub fn forget_activity(c: &impl Db) -> Result<usize> {
    Ok(c.conn().execute(
        "UPDATE nyms SET active_day = 0, inactive_warned = 0 WHERE active_day != 0 OR inactive_warned != 0",
        [],
    )?)
}

/// Enabled nyms last active on or before `day` (known days only): (id,
/// active day, the active day an inactivity warning was sent for). A
/// disabled nym cannot act; what becomes of it is the operator's call.
pub fn inactive_since(c: &impl Db, day: i64) -> Result<Vec<(i64, i64, i64)>> {
    let mut st = c.conn().prepare(
        "SELECT id, active_day, inactive_warned FROM nyms
         WHERE active_day > 0 AND active_day <= ?1 AND disabled = 0",
    )?;
    let v = st
        .query_map([day], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// The ids of [`inactive_since`], for the erase under the write lock.
pub fn inactive_ids(c: &impl Db, day: i64) -> Result<Vec<i64>> {
    Ok(inactive_since(c, day)?.into_iter().map(|(id, _, _)| id).collect())
}

/// Record the inactivity warning for the nym's current active day; false
/// if it was active meanwhile (or is gone).
pub fn set_inactive_warned(c: &impl Db, id: i64, active_day: i64) -> Result<bool> {
    let n = c.conn().execute(
        "UPDATE nyms SET inactive_warned = ?2 WHERE id = ?1 AND active_day = ?2",
        params![id, active_day],
    )?;
    Ok(n == 1)
}

pub fn nym_by_id(c: &impl Db, id: i64) -> Result<Option<Nym>> {
    Ok(c.conn()
        .query_row(&format!("SELECT {NYM_COLS} FROM nyms WHERE id = ?1"), [id], row_to_nym)
        .optional()?)
}
