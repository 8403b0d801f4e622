//! The entry points behind the CLI: init, deliver, flush and the admin
//! commands. main.rs only parses arguments and maps results to exit codes.

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::error::Failure;
use crate::handler::{self, Ctx, Done};
use crate::logging::event;
use crate::openpgp::{self as pgp, ServerKey};
use crate::store::{self, OutItem, Store};
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
    let domains: Vec<String> = domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect();
    if home.exists() {
        bail!("{} already exists; init never touches an existing home", home.display());
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
    let cert = pgp::generate_server_key(&domains, rsa)?;
    write_private(&cfg.key_path(), &pgp::tsk_armored(&cert)?)?;
    // Create the database file ourselves so it is 0600 from the start.
    write_private(&cfg.db_path(), b"")?;
    Store::open(&cfg.db_path(), Duration::from_secs(cfg.limits.busy_timeout))?;
    for dir in [&cfg.news.spool, &cfg.mail.spool] {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    Ok(InitReport { config_path, fingerprint: cert.fingerprint().to_hex() })
}

/// Open the state of a configured server, refusing unsafe permissions.
pub fn open_state(cfg: &Config) -> Result<(Store, ServerKey)> {
    check_private(&cfg.db_path())?;
    check_private(&cfg.key_path())?;
    let store = Store::open(&cfg.db_path(), Duration::from_secs(cfg.limits.busy_timeout))?;
    let key = ServerKey::from_tsk(&fs::read(cfg.key_path())?)?;
    Ok((store, key))
}

pub fn open_store(cfg: &Config) -> Result<Store> {
    check_private(&cfg.db_path())?;
    Store::open(&cfg.db_path(), Duration::from_secs(cfg.limits.busy_timeout))
}

/// Split an address into (local part, domain), lowercased.
pub fn split_address(addr: &str) -> Option<(String, String)> {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>');
    let (l, d) = a.rsplit_once('@')?;
    if l.is_empty() || d.is_empty() {
        return None;
    }
    Some((l.to_ascii_lowercase(), d.to_ascii_lowercase()))
}

/// `deliver`: one message from the MTA.
pub fn deliver(
    cfg: &Config,
    recipient: &str,
    _sender: Option<&str>,
    input: impl std::io::Read,
) -> Result<Done, Failure> {
    // Debug builds only: lets the tests prove that a panic defers (75).
    #[cfg(debug_assertions)]
    if std::env::var_os("NYMGATE_PANIC_FOR_TEST").is_some() {
        panic!("panic requested by NYMGATE_PANIC_FOR_TEST");
    }
    let max = cfg.limits.max_message_size;
    let mut input = crate::message::MessageReader::new(input, recipient, max);
    let Some((local, domain)) = split_address(recipient) else {
        input.drain();
        return Err(Failure::NoUser);
    };
    let service = matches!(local.as_str(), "config" | "send" | "url");
    if !cfg.hosts(&domain) || (cfg.is_reserved(&local) && !service) {
        input.drain();
        return Err(Failure::NoUser);
    }
    if !service {
        // Mail to a nym, the bulk of the traffic: encrypted while it is
        // read, so memory stays near the size of the article alone.
        let (store, server) = open_state(cfg).map_err(Failure::Temp)?;
        let mut ctx = Ctx { cfg, store, server, now: store::now(), mine: Vec::new(), replays: Vec::new() };
        let result = handler::inbound_stream(&mut ctx, &local, &domain, &mut input, true);
        hand_off_mine(&mut ctx);
        return result;
    }
    // Requests to config@, send@ and url@ are decrypted whole.
    let mut raw = Vec::new();
    input.read_to_end(&mut raw).map_err(|e| Failure::Temp(e.into()))?;
    if input.over_limit() {
        return Err(Failure::Data("message larger than the size limit"));
    }
    let (store, server) = open_state(cfg).map_err(Failure::Temp)?;
    let mut ctx = Ctx { cfg, store, server, now: store::now(), mine: Vec::new(), replays: Vec::new() };
    let digest = input.digest();
    let result = route(&mut ctx, &local, &domain, &raw, Some(&digest));
    // Whatever was committed is handed off, even when a later step failed.
    let mut replays = std::mem::take(&mut ctx.replays);
    while let Some((held_id, rcpt, msg)) = replays.pop() {
        // Held messages whose nym now exists run again; the replay cache
        // keeps a crash here from doing anything twice.
        if let Some((l, d)) = split_address(&rcpt) {
            let r = route(&mut ctx, &l, &d, &msg, None);
            match &r {
                Ok(done) => log::info!("event=held_{} outcome={}", done.event, done.outcome),
                Err(e) => log::warn!("event=held outcome=failed reason={}", failure_kind(e)),
            }
            if r.is_ok() {
                if let Ok(tx) = ctx.store.write() {
                    let _ = store::unhold(&tx, held_id).and_then(|_| Ok(tx.commit()?));
                }
            }
            replays.append(&mut ctx.replays);
        }
    }
    // The message itself is no longer needed: free it before the hand-off.
    drop(raw);
    hand_off_mine(&mut ctx);
    result
}

fn failure_kind(f: &Failure) -> &'static str {
    match f {
        Failure::Temp(_) => "temporary",
        Failure::NoUser => "no_such_nym",
        Failure::Data(_) => "unusable",
    }
}

/// Send one message to its handler by recipient.
pub fn route(
    ctx: &mut Ctx,
    local: &str,
    domain: &str,
    raw: &[u8],
    digest: Option<&[u8]>,
) -> Result<Done, Failure> {
    let recipient = format!("{local}@{domain}");
    match local {
        "config" => handler::config(ctx, &recipient, raw, digest),
        "send" => crate::send::send(ctx, &recipient, raw, digest),
        "url" => crate::url::url(ctx, raw, digest),
        l if ctx.cfg.is_reserved(l) => Err(Failure::NoUser),
        l => handler::inbound(ctx, l, domain, raw, digest),
    }
}

/// Hand off the items this process committed and reserved.
fn hand_off_mine(ctx: &mut Ctx) {
    let items = std::mem::take(&mut ctx.mine);
    for (id, item) in items {
        hand_off_one(ctx.cfg, &ctx.store, id, &item);
    }
}

/// Hand off one claimed item and record the result. A failure leaves it
/// queued with a back-off; the next flush tries again.
fn hand_off_one(cfg: &Config, store: &Store, id: i64, item: &OutItem) -> bool {
    match transport::hand_off(cfg, item) {
        Ok(()) => {
            if let Err(e) = store::done(&store.conn, id) {
                // The item went out but stays queued; spool and INN ignore
                // the repeat, sendmail would not. Say so loudly.
                log::error!("event=handoff outcome=sent_but_not_recorded error={e}");
            }
            event("handoff", "sent");
            true
        }
        Err(reason) => {
            let attempts = store::attempts(&store.conn, id).unwrap_or(0);
            let backoff = (60i64 << attempts.min(6)).min(3600);
            let _ = store::failed(&store.conn, id, &reason, store::now() + backoff);
            log::warn!("event=handoff outcome=failed reason={reason}");
            false
        }
    }
}

pub struct FlushReport {
    pub sent: usize,
    pub failed: usize,
    pub left: i64,
}

/// `flush`: hand off every due item. Items are claimed in short
/// transactions so that deliveries and other flushes keep going.
pub fn flush(cfg: &Config) -> Result<FlushReport> {
    let store = open_store(cfg)?;
    let lease = cfg.delivery.transport_timeout as i64 + 60;
    let (mut sent, mut failed) = (0, 0);
    // Housekeeping that needs no key: holds and caches past their time.
    {
        let now = store::now();
        let tx = store.conn.unchecked_transaction()?;
        store::expire_holds(&tx, now)?;
        store::replay_prune(&tx, now - cfg.send.replay_window as i64 - cfg.send.future_skew as i64)?;
        store::received_prune(&tx, now - 14 * 86400)?;
        tx.commit()?;
    }
    loop {
        let batch = {
            let tx = store.conn.unchecked_transaction()?;
            let b = store::claim_due(&tx, store::now(), lease, 64)?;
            tx.commit()?;
            b
        };
        if batch.is_empty() {
            break;
        }
        for (id, item) in &batch {
            if hand_off_one(cfg, &store, *id, item) {
                sent += 1
            } else {
                failed += 1
            }
        }
    }
    let (left, _) = store::outbox_counts(&store.conn, store::now())?;
    // Fold the WAL into the database and empty it, so that pages of items
    // already handed off do not linger there. Busy is fine: next time.
    let _ = store.scrub_wal();
    Ok(FlushReport { sent, failed, left })
}

/// `key export`.
pub fn export_key(cfg: &Config) -> Result<Vec<u8>> {
    check_private(&cfg.key_path())?;
    let key = ServerKey::from_tsk_checked(&fs::read(cfg.key_path())?)?;
    key.public_armored()
}

fn find_nym(store: &Store, addr: &str) -> Result<store::Nym> {
    let (l, d) = split_address(addr).ok_or_else(|| anyhow!("not an address: {addr}"))?;
    store::nym_by_address(&store.conn, &l, &d)?.ok_or_else(|| anyhow!("no such nym: {addr}"))
}

fn fmt_time(t: Option<i64>) -> String {
    match t {
        Some(t) => transport::rfc5322_date(std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)),
        None => "never".into(),
    }
}

pub fn nym_list(cfg: &Config, out: &mut impl Write) -> Result<()> {
    let store = open_store(cfg)?;
    for n in store::all_nyms(&store.conn)? {
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
    writeln!(out, "acksend:     {}", if n.acksend { "yes" } else { "no" })?;
    writeln!(out, "sent today:  {}", if n.send_day == store::now() / 86400 { n.send_count } else { 0 })?;
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

fn find_nym_tx(c: &rusqlite::Connection, addr: &str) -> Result<store::Nym> {
    let (l, d) = split_address(addr).ok_or_else(|| anyhow!("not an address: {addr}"))?;
    store::nym_by_address(c, &l, &d)?.ok_or_else(|| anyhow!("no such nym: {addr}"))
}

pub fn nym_delete(cfg: &Config, addr: &str) -> Result<()> {
    let mut store = open_store(cfg)?;
    let tx = store.write()?;
    let n = find_nym_tx(&tx, addr)?;
    store::delete_nym(&tx, n.id)?;
    tx.commit()?;
    store.scrub_wal()?;
    Ok(())
}

/// `nym expire`: remove nyms whose key has expired. Returns how many.
pub fn nym_expire(cfg: &Config) -> Result<usize> {
    let mut store = open_store(cfg)?;
    let now = store::now();
    let tx = store.write()?;
    let ids: Vec<i64> = store::all_nyms(&tx)?.into_iter().filter(|n| n.expired(now)).map(|n| n.id).collect();
    for id in &ids {
        store::delete_nym(&tx, *id)?;
    }
    tx.commit()?;
    if !ids.is_empty() {
        store.scrub_wal()?;
    }
    Ok(ids.len())
}
