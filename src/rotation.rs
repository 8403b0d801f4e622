//! Server key rotation, the operator's side (docs/operators.md, "Rotating
//! the server key"; the notice's format is in docs/key-rotation.md).
//!
//! `nymgate key rotate` keeps the old secret key beside the new one for a
//! grace period, in files next to `server.key` (all 0600):
//!
//! - `server.key`: the new key, which signs everything from now on;
//! - `server.key.previous`: the old secret key, which still decrypts
//!   requests until the grace period ends;
//! - `server.key.grace`: the end of the grace period (Unix seconds);
//! - `server.key.retired`: after the grace period, the old public key with
//!   its revocation (reason "key superseded"), kept for `key export`.
//!
//! The first `flush` after the grace period revokes the old key, writes
//! `server.key.retired` and erases `server.key.previous` (overwritten,
//! synced, unlinked). From the end of the grace period on, a request
//! encrypted to the old key has the outcome `not_for_server_key`, whether
//! or not that flush has run yet.

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::admin::{check_private, replace_private};
use crate::config::Config;
use crate::handle::notice_to;
use crate::openpgp::{self as pgp, ServerKey};
use crate::protocol::address::Service;
use crate::store::{self, Store};
use crate::{notices, outbox};

/// Days during which requests to the old key are still accepted, unless
/// `key rotate --grace-days` says otherwise.
pub const DEFAULT_GRACE_DAYS: u32 = 30;

/// Notices rendered and queued per transaction: the write lock is held
/// for one batch, never for the whole rotation, and memory stays bounded.
const BATCH: usize = 500;

fn sibling(cfg: &Config, ext: &str) -> PathBuf {
    let mut p = cfg.key_path().into_os_string();
    p.push(ext);
    PathBuf::from(p)
}

pub fn previous_path(cfg: &Config) -> PathBuf {
    sibling(cfg, ".previous")
}
pub fn grace_path(cfg: &Config) -> PathBuf {
    sibling(cfg, ".grace")
}
pub fn retired_path(cfg: &Config) -> PathBuf {
    sibling(cfg, ".retired")
}

/// The rotation under way: the old secret key and the end of its grace.
pub struct Previous {
    pub tsk: Vec<u8>,
    pub until: i64,
}

/// The rotation under way, if any. A `server.key.previous` that holds the
/// current key is the trace of a rotation interrupted before the new key
/// was written, and means none.
pub fn previous(cfg: &Config) -> Result<Option<Previous>> {
    let p = previous_path(cfg);
    if !p.exists() {
        return Ok(None);
    }
    check_private(&p)?;
    let tsk = fs::read(&p)?;
    let current = pgp::fingerprint_of(&fs::read(cfg.key_path())?)?;
    if pgp::fingerprint_of(&tsk)? == current {
        return Ok(None);
    }
    let text = fs::read_to_string(grace_path(cfg)).context("the rotation's grace file is missing")?;
    let until = text.trim().parse::<i64>().map_err(|_| anyhow!("the rotation's grace file is not a time"))?;
    Ok(Some(Previous { tsk, until }))
}

/// For deliveries: during the grace period, `key` also decrypts with the
/// old key. Returns the old key's fingerprint (hex), which a request's
/// Intended Recipient may name, or `None` outside a grace period.
pub fn accept_previous(cfg: &Config, key: &mut ServerKey, now: i64) -> Result<Option<String>> {
    let Some(prev) = previous(cfg)? else { return Ok(None) };
    if now >= prev.until {
        return Ok(None);
    }
    let old = ServerKey::from_tsk(&prev.tsk)?;
    let fpr = old.fingerprint_hex();
    key.accept_previous(old)?;
    Ok(Some(fpr))
}

/// What `key rotate` did.
#[derive(Debug)]
pub struct Rotated {
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    pub until: i64,
    /// Nyms told; `unreachable` could not be written to (an unusable key).
    pub told: usize,
    pub unreachable: usize,
}

/// `key rotate`: a new key with the old User IDs, certified by the old
/// key; the old one kept for `grace_days`; a notice to every nym.
pub fn rotate(cfg: &Config, grace_days: u32) -> Result<Rotated> {
    check_private(&cfg.key_path())?;
    if let Some(p) = previous(cfg)? {
        bail!(
            "a rotation is under way: the previous key is kept until {}; a new rotation can start once \
             `nymgate flush` has retired it",
            crate::transport::rfc5322_date(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(p.until.max(0) as u64)
            )
        );
    }
    let old = fs::read(cfg.key_path())?;
    let old_fingerprint = ServerKey::from_tsk_checked(&old)?.fingerprint_hex();
    let new = pgp::rotated_server_key(&old)?;
    let mut key = ServerKey::from_tsk_checked(&new)?;
    let until = store::now() + grace_days as i64 * 86400;
    // The old key and the grace first, the new key last: interrupted
    // before the last step, the server still runs on the old key and
    // `previous` sees no rotation.
    for p in [previous_path(cfg), retired_path(cfg)] {
        if p.exists() {
            shred(&p)?;
        }
    }
    replace_private(cfg, &previous_path(cfg), &old)?;
    replace_private(cfg, &grace_path(cfg), format!("{until}\n").as_bytes())?;
    replace_private(cfg, &cfg.key_path(), &new)?;
    crate::logging::event("rotation", "rotated");
    let mut store = crate::admin::open_store(cfg)?;
    let public = String::from_utf8(pgp::public_keyring(&[&new])?)?;
    let (told, unreachable) = tell_all(cfg, &mut store, &mut key, &old_fingerprint, until, &public)?;
    Ok(Rotated { old_fingerprint, new_fingerprint: key.fingerprint_hex(), until, told, unreachable })
}

/// `key rotate --notify-again`: during the grace period, queue the
/// rotation notice to every nym once more (after a rotation interrupted
/// while it queued them). Returns (told, unreachable).
pub fn notify_again(cfg: &Config) -> Result<Rotated> {
    check_private(&cfg.key_path())?;
    let prev = previous(cfg)?.ok_or_else(|| anyhow!("no rotation is under way"))?;
    let current = fs::read(cfg.key_path())?;
    let mut key = ServerKey::from_tsk_checked(&current)?;
    let old_fingerprint = pgp::fingerprint_of(&prev.tsk)?;
    let public = String::from_utf8(pgp::public_keyring(&[&current])?)?;
    let mut store = crate::admin::open_store(cfg)?;
    let (told, unreachable) = tell_all(cfg, &mut store, &mut key, &old_fingerprint, prev.until, &public)?;
    Ok(Rotated {
        old_fingerprint,
        new_fingerprint: key.fingerprint_hex(),
        until: prev.until,
        told,
        unreachable,
    })
}

/// The text of the rotation notice (docs/key-rotation.md).
pub fn notice_text(old_fpr: &str, new_fpr: &str, until: i64, domain: &str, public: &str) -> String {
    let date = crate::transport::rfc5322_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(until.max(0) as u64),
    );
    format!(
        "The server key of {domain} has been replaced.\n\n\
         Old-Key: {old_fpr}\n\
         New-Key: {new_fpr}\n\
         Grace-Until: {date}\n\n\
         Requests encrypted to the old key are accepted until then; after that only\n\
         the new key works, and the old key is revoked as superseded. Everything the\n\
         server sends from now on is signed by the new key.\n\n\
         The new key's User IDs are certified by the old key. The nym client checks\n\
         that certification and adopts the new key when it reads this notice. With\n\
         GnuPG, import the key below and check it by hand:\n\
         gpg --import; gpg --check-sigs {new_fpr}\n\
         must show a good certification (sig!) by {old_fpr}.\n\n\
         {public}"
    )
}

/// One notice per nym, rendered with the new key and queued `BATCH` per
/// transaction. Returns (told, unreachable).
fn tell_all(
    cfg: &Config,
    store: &mut Store,
    key: &mut ServerKey,
    old_fpr: &str,
    until: i64,
    public: &str,
) -> Result<(usize, usize)> {
    let new_fpr = key.fingerprint_hex();
    let nyms = store::all_nyms(store)?;
    let (mut told, mut unreachable) = (0, 0);
    for chunk in nyms.chunks(BATCH) {
        let mut told_here = Vec::with_capacity(chunk.len());
        let mut runs = Vec::new();
        for n in chunk {
            let text = notice_text(old_fpr, &new_fpr, until, &n.domain, public);
            // Through the nym's channel: its blocks, if it has confirmed ones.
            let post =
                notices::route(&*store, vec![notice_to(n, Service::Config, pgp::ROTATION_SUBJECT, text)])
                    .map_err(|f| anyhow::anyhow!("{f}"))?;
            match notices::items(cfg, key, &*store, post) {
                Ok((items, r)) => {
                    told_here.push(items);
                    runs.push(r);
                }
                Err(_) => unreachable += 1,
            }
        }
        let mut mine = Vec::new();
        let tx = store.write()?;
        let now = store::now();
        for items in told_here {
            for item in items {
                outbox::queue_after(cfg, &tx, now, item, &mut mine)?;
            }
            told += 1;
        }
        tx.commit()?;
        for r in &runs {
            crate::channel::blocks::committed(r);
        }
        outbox::hand_off_mine(cfg, store, mine);
    }
    if unreachable > 0 {
        crate::logging::event("rotation", "notice_unrenderable");
    }
    Ok((told, unreachable))
}

/// Run by `flush`: once the grace period is over, revoke the old key as
/// superseded, keep its public part for `key export`, erase its secret.
/// Returns whether it did.
pub fn retire_due(cfg: &Config, now: i64) -> Result<bool> {
    let Some(prev) = previous(cfg)? else { return Ok(false) };
    if now < prev.until {
        return Ok(false);
    }
    let new_fpr = pgp::fingerprint_of(&fs::read(cfg.key_path())?)?;
    let revoked = pgp::revoke_superseded(&prev.tsk, &new_fpr)?;
    replace_private(cfg, &retired_path(cfg), &revoked)?;
    shred(&previous_path(cfg))?;
    let _ = fs::remove_file(grace_path(cfg));
    fs::File::open(&cfg.home)?.sync_all()?;
    crate::logging::event("rotation", "retired");
    Ok(true)
}

/// `key export`: the current public key; during a rotation the previous
/// one too, and after it the revoked previous one. One armored block.
pub fn export(cfg: &Config) -> Result<Vec<u8>> {
    check_private(&cfg.key_path())?;
    let current = fs::read(cfg.key_path())?;
    ServerKey::from_tsk_checked(&current)?;
    let mut keys = vec![current];
    if let Some(p) = previous(cfg)? {
        keys.push(p.tsk);
    } else if retired_path(cfg).exists() {
        let r = fs::read(retired_path(cfg))?;
        if pgp::fingerprint_of(&r)? != pgp::fingerprint_of(&keys[0])? {
            keys.push(r);
        }
    }
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    pgp::public_keyring(&refs)
}

/// Overwrite a file with zeros, sync it, then unlink it and sync the
/// directory: no copy of a secret key stays in the file's blocks through
/// the file system (short of the medium's own remapping).
pub fn shred(path: &Path) -> Result<()> {
    let len = fs::metadata(path)?.len();
    {
        let mut f = fs::OpenOptions::new().write(true).open(path)?;
        let zeros = vec![0u8; 4096];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
    }
    fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
