//! The operator's commands: `init`, `key export`, `nym list/show/...`, and
//! opening the state files safely for every other command.

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::openpgp::{self as pgp, ServerKey};
use crate::protocol::address::{server_user_ids, split_address};
use crate::store::{self, Store};
use crate::transport;

/// Refuse state files that others can read: the database holds every nym
/// key and option, the key file the server's secret.
pub fn check_private(path: &Path) -> Result<()> {
    let md = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mode = md.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "refusing to run: {} has mode {:o}; it must not be readable by group or others (chmod 600)",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

pub struct InitReport {
    pub config_path: PathBuf,
    pub fingerprint: String,
}

/// `init`: a new home with configuration, database and server key.
pub fn init(home: &Path, domains: &[String], rsa: Option<u32>) -> Result<InitReport> {
    if domains.is_empty() {
        bail!("give at least one --domain");
    }
    // Before anything is written: a build that refuses RSA server keys
    // leaves no half-made home behind.
    pgp::backend::check_rsa_generation(rsa)?;
    let domains: Vec<String> = domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect();
    // An empty directory is accepted (the Debian package makes
    // /var/lib/nymgate, owned by nymgate, before anyone runs init); one
    // with anything in it is an existing home, never touched.
    if home.exists() {
        let empty = home.is_dir() && fs::read_dir(home)?.next().is_none();
        if !empty {
            bail!("{} already exists and is not empty; init never touches an existing home", home.display());
        }
    }
    let home = if home.is_absolute() { home.to_path_buf() } else { std::env::current_dir()?.join(home) };
    fs::DirBuilder::new().recursive(true).mode(0o700).create(&home)?;
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700))?;
    let config_path = home.join("nymgate.toml");
    let text = Config::template(&home, &domains);
    let cfg: Config = {
        write_private(&config_path, text.as_bytes())?;
        fs::set_permissions(&config_path, fs::Permissions::from_mode(0o640))?;
        Config::load(&config_path)?
    };
    let cert = pgp::generate_server_key(&server_user_ids(&domains), rsa)?;
    write_private(&cfg.key_path(), &pgp::tsk_armored(&cert)?)?;
    // Create the database file ourselves so it is 0600 from the start.
    write_private(&cfg.db_path(), b"")?;
    let mut store = Store::open(&cfg.db_path(), Duration::from_secs(cfg.limits.busy_timeout))?;
    crate::recipients::rewrite(&cfg, &mut store)?;
    for dir in [&cfg.news.spool, &cfg.mail.spool] {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    Ok(InitReport { config_path, fingerprint: cert.fingerprint().to_hex() })
}

/// The database and the files SQLite keeps beside it: the write-ahead log
/// holds recent pages (keys, passphrases) as much as the database does.
fn check_db_private(cfg: &Config) -> Result<()> {
    let db = cfg.db_path();
    check_private(&db)?;
    for ext in ["-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(ext);
        let p = PathBuf::from(p);
        if p.exists() {
            check_private(&p)?;
        }
    }
    Ok(())
}

/// Open the state of a configured server, refusing unsafe permissions.
pub fn open_state(cfg: &Config) -> Result<(Store, ServerKey)> {
    let (store, key, _) = open_state_rotating(cfg)?;
    Ok((store, key))
}

/// [`open_state`], and during a key rotation's grace period the previous
/// key too ([`crate::rotation::accept_previous`]): its fingerprint is
/// returned, as a request's Intended Recipient may name it.
pub fn open_state_rotating(cfg: &Config) -> Result<(Store, ServerKey, Option<String>)> {
    check_db_private(cfg)?;
    check_private(&cfg.key_path())?;
    let store = Store::open(&cfg.db_path(), Duration::from_secs(cfg.limits.busy_timeout))?;
    let mut key = ServerKey::from_file(&cfg.key_path())?;
    let previous = crate::rotation::accept_previous(cfg, &mut key, store::now())?;
    Ok((store, key, previous))
}

pub fn open_store(cfg: &Config) -> Result<Store> {
    check_db_private(cfg)?;
    Store::open(&cfg.db_path(), Duration::from_secs(cfg.limits.busy_timeout))
}

/// `key add-domain D`: the server key gets User IDs for the services of
/// `domain`. The key file is replaced atomically and stays 0600. Returns
/// whether the configuration already names the domain.
pub fn key_add_domain(cfg: &Config, domain: &str) -> Result<bool> {
    let domain = domain.trim().to_ascii_lowercase();
    if domain.is_empty() || domain.contains('@') || domain.contains(char::is_whitespace) {
        bail!("{domain:?} is not a domain");
    }
    check_private(&cfg.key_path())?;
    let old = fs::read(cfg.key_path())?;
    let mut new = pgp::add_user_ids(&old, &server_user_ids(std::slice::from_ref(&domain)))?;
    // During a rotation's grace period the previous key certifies the new
    // User IDs too, as it certified the others: the chain a holder's
    // client checks covers every User ID.
    if let Some(prev) = crate::rotation::previous(cfg)? {
        new = pgp::certify_user_ids(&prev.tsk, &new)?;
    }
    replace_private(cfg, &cfg.key_path(), &new)?;
    Ok(cfg.hosts(&domain))
}

/// Replace a private file in the home atomically (a 0600 temporary file,
/// synced, renamed over it, the directory synced): how the server key and
/// the files of a rotation are written (`key add-domain`, `key rotate`).
pub fn replace_private(cfg: &Config, path: &Path, data: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = cfg.home.join(format!(".{name}.new"));
    let _ = fs::remove_file(&tmp);
    write_private(&tmp, data)?;
    fs::rename(&tmp, path)?;
    fs::File::open(&cfg.home)?.sync_all()?;
    Ok(())
}

/// The User IDs of the server key (for `check`).
pub fn key_user_ids(cfg: &Config) -> Result<Vec<String>> {
    pgp::user_ids(&fs::read(cfg.key_path())?)
}

/// `key export`.
/// `key export`: the server's public key, and during and after a
/// rotation the previous one as well ([`crate::rotation::export`]).
pub fn export_key(cfg: &Config) -> Result<Vec<u8>> {
    crate::rotation::export(cfg)
}

fn find_nym(store: &Store, addr: &str) -> Result<store::Nym> {
    let (l, d) = split_address(addr).ok_or_else(|| anyhow!("not an address: {addr}"))?;
    store::nym_by_address(store, &l, &d)?.ok_or_else(|| anyhow!("no such nym: {addr}"))
}

fn fmt_time(t: Option<i64>) -> String {
    match t {
        Some(t) => transport::rfc5322_date(std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)),
        None => "never".into(),
    }
}

pub fn nym_list(cfg: &Config, out: &mut impl Write) -> Result<()> {
    let store = open_store(cfg)?;
    for n in store::all_nyms(&store)? {
        let state = if n.disabled {
            "disabled"
        } else if n.expired(store::now()) {
            "expired"
        } else {
            "active"
        };
        writeln!(out, "{}\t{}\t{}\texpires {}", n.address(), state, n.fingerprint, fmt_time(n.expires))?;
    }
    Ok(())
}

pub fn nym_show(cfg: &Config, addr: &str, out: &mut impl Write) -> Result<()> {
    let store = open_store(cfg)?;
    let n = find_nym(&store, addr)?;
    let set = |v: &Option<String>| if v.is_some() { "set" } else { "not set" };
    writeln!(out, "address:     {}", n.address())?;
    writeln!(out, "fingerprint: {}", n.fingerprint)?;
    writeln!(out, "created:     {}", fmt_time(Some(n.created)))?;
    writeln!(out, "expires:     {}", fmt_time(n.expires))?;
    writeln!(out, "state:       {}", if n.disabled { "disabled" } else { "active" })?;
    // Passphrases are the nym's secrets, not the operator's business.
    writeln!(out, "hsub:        {}", set(&n.hsub))?;
    writeln!(out, "subject:     {}", set(&n.subject))?;
    writeln!(out, "symmetric:   {}", set(&n.symmetric))?;
    writeln!(out, "acksend:     {}", if n.acksend() { "yes" } else { "no" })?;
    writeln!(out, "sent today:  {}", if n.send_day == store::now() / 86400 { n.send_count } else { 0 })?;
    writeln!(out, "flags:       {}", crate::protocol::nym_commands::describe(n.flags))?;
    writeln!(out, "name:        {}", set(&n.name))?;
    writeln!(out, "blocks:      {} active, {} pending", n.active_blocks, n.pending_blocks)?;
    writeln!(out, "units today: {}", if n.unit_day == store::now() / 86400 { n.unit_count } else { 0 })?;
    Ok(())
}

pub fn nym_set_disabled(cfg: &Config, addr: &str, disabled: bool) -> Result<()> {
    let mut store = open_store(cfg)?;
    let tx = store.write()?;
    let n = find_nym_tx(&tx, addr)?;
    store::set_disabled(&tx, n.id, disabled)?;
    tx.commit()?;
    Ok(())
}

fn find_nym_tx(c: &store::Tx, addr: &str) -> Result<store::Nym> {
    let (l, d) = split_address(addr).ok_or_else(|| anyhow!("not an address: {addr}"))?;
    store::nym_by_address(c, &l, &d)?.ok_or_else(|| anyhow!("no such nym: {addr}"))
}

pub fn nym_delete(cfg: &Config, addr: &str) -> Result<()> {
    let mut store = open_store(cfg)?;
    erase_in(cfg, &mut store, |tx| Ok(vec![find_nym_tx(tx, addr)?.id]))?;
    Ok(())
}

/// `nym expire` (and every flush): erase nyms whose key has expired (more
/// than `[lifecycle] expire_grace` days ago), as a delete does, and take
/// them out of the recipient table. Returns how many.
pub fn nym_expire(cfg: &Config) -> Result<usize> {
    let mut store = open_store(cfg)?;
    expire_in(cfg, &mut store)
}

pub fn expire_in(cfg: &Config, store: &mut Store) -> Result<usize> {
    let cutoff = store::now() - cfg.lifecycle.expire_grace as i64 * 86400;
    erase_in(cfg, store, |tx| store::expired_ids(tx, cutoff))
}

/// The one erase of nyms, for a delete by the operator, expiry and the
/// inactivity rule: the nyms `select` names under the write lock are
/// deleted with their key index (the database overwrites freed pages:
/// `secure_delete`), the recipient table is rewritten without them, and
/// the write-ahead log is folded in and emptied so that no copy of their
/// pages stays there. Returns how many were erased.
pub fn erase_in(
    cfg: &Config,
    store: &mut Store,
    select: impl FnOnce(&store::Tx) -> Result<Vec<i64>>,
) -> Result<usize> {
    let tx = store.write()?;
    let ids = select(&tx)?;
    for id in &ids {
        store::delete_nym(&tx, *id)?;
    }
    tx.commit()?;
    if !ids.is_empty() {
        crate::recipients::rewrite_or_log(cfg, store);
        store.scrub_wal()?;
    }
    Ok(ids.len())
}
