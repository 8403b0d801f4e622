//! What each kind of incoming message does: config@ (create, reconfigure,
//! delete), mail to a nym, and the shared machinery (decryption against the
//! store, posting to a nym, queueing, holding).

use rand::Rng;
use rusqlite::{Connection, Transaction};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::Failure;
use crate::logging::event;
use crate::message::{self, describe_options, notice};
use crate::openpgp::{self as pgp, DecryptError, Decrypted, PgpCert, ServerKey, SigInfo};
use crate::options::{self, Change, Opt};
use crate::store::{self, Nym, OutItem, Store};

/// Everything a handler needs.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub store: Store,
    pub server: ServerKey,
    pub now: i64,
    /// Items committed by this process and reserved for its own hand-off.
    pub mine: Vec<(i64, OutItem)>,
    /// Held messages to run again after this one committed (a nym appeared).
    pub replays: Vec<(i64, String, Vec<u8>)>,
}

/// How a delivery ended, for the log line and the exit code (always 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub event: &'static str,
    pub outcome: &'static str,
}

pub fn done(event: &'static str, outcome: &'static str) -> Result<Done, Failure> {
    Ok(Done { event, outcome })
}

/// Digest identifying one MTA delivery of one message to one recipient.
pub fn delivery_digest(recipient: &str, raw: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(recipient.to_ascii_lowercase().as_bytes());
    h.update([0u8]);
    h.update(raw);
    h.finalize().to_vec()
}

/// Start the write transaction of a delivery. `None` when this very
/// delivery was already committed (the MTA retried after we died between
/// commit and exit): the caller then ends with success. A free function,
/// so that the server key and the queue stay usable while it is open.
pub fn begin<'s>(
    store: &'s mut Store,
    now: i64,
    digest: Option<&[u8]>,
) -> Result<Option<Transaction<'s>>, Failure> {
    let tx = store.write()?;
    if let Some(d) = digest {
        if !store::received_insert(&tx, d, now)? {
            return Ok(None);
        }
    }
    Ok(Some(tx))
}

impl Ctx<'_> {
    /// Decrypt with the server key, checking signatures against stored
    /// nym keys.
    pub fn decrypt(&mut self, armored: &[u8]) -> Result<Decrypted, DecryptError> {
        let first = self.decrypt_at(armored, None)?;
        if first.good().is_some() {
            return Ok(first);
        }
        // A signature dated ahead of our clock does not verify "now". Check
        // it at its own date: if a nym made it, the age rule refuses it and
        // the nym is told, instead of a silent drop.
        let now = std::time::SystemTime::now();
        let ahead = first.signatures.iter().filter(|s| s.bad).filter_map(|s| s.created).find(|t| *t > now);
        if let Some(t) = ahead {
            if let Ok(d) = self.decrypt_at(armored, Some(t)) {
                if d.good().is_some() {
                    return Ok(d);
                }
            }
        }
        Ok(first)
    }

    fn decrypt_at(
        &mut self,
        armored: &[u8],
        time: Option<std::time::SystemTime>,
    ) -> Result<Decrypted, DecryptError> {
        let conn: &Connection = &self.store.conn;
        let max = self.cfg.limits.max_message_size as usize;
        pgp::decrypt_at(&mut self.server, armored, max, time, |ids| {
            store::certs_by_keyids(conn, ids).unwrap_or_default()
        })
    }
}

/// Queue `item` in `tx`. Without latency the item is reserved for this
/// process (`mine`), which hands it off right after commit.
pub fn queue(
    cfg: &Config,
    tx: &Connection,
    now: i64,
    item: OutItem,
    mine: &mut Vec<(i64, OutItem)>,
) -> Result<(), Failure> {
    let d = &cfg.delivery;
    if d.latency_max == 0 {
        let id = store::enqueue(tx, &item, now, now + d.claim_timeout as i64)?;
        mine.push((id, item));
    } else {
        let delay = rand::thread_rng().gen_range(d.latency_min..=d.latency_max) as i64;
        store::enqueue(tx, &item, now + delay, 0)?;
    }
    Ok(())
}

/// Build the article that carries `payload` to the holder of `cert`:
/// signed by us, encrypted to the key (hidden recipient unless a symmetric
/// layer follows), then the symmetric layer if set.
/// How a nym wants its articles: the subject options and the symmetric
/// layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wrapping<'a> {
    pub hsub: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub symmetric: Option<&'a str>,
}

impl<'a> Wrapping<'a> {
    pub fn of(n: &'a Nym) -> Self {
        Wrapping { hsub: n.hsub.as_deref(), subject: n.subject.as_deref(), symmetric: n.symmetric.as_deref() }
    }
}

pub fn article_for(
    cfg: &Config,
    server: &mut ServerKey,
    cert: &PgpCert,
    wrap: Wrapping,
    payload: &mut dyn std::io::Read,
    size_hint: usize,
) -> Result<OutItem, Failure> {
    // The encryption is written straight after the headers: a 20 MiB
    // message must not be copied again once it is armored.
    let symmetric = wrap.symmetric;
    let subject = message::subject_for(cfg, wrap.hsub, wrap.subject);
    let size = pgp::armored_size(size_hint);
    match symmetric {
        None => {
            let (msgid, mut out) = message::article_head(cfg, &subject, size);
            pgp::sign_encrypt_into(&mut out, server, cert, payload, true)?;
            Ok(message::article_finish(msgid, out))
        }
        Some(pass) => {
            let mut inner = Vec::with_capacity(size);
            pgp::sign_encrypt_into(&mut inner, server, cert, payload, false)?;
            let (msgid, mut out) = message::article_head(cfg, &subject, pgp::armored_size(inner.len()));
            pgp::encrypt_symmetric_into(&mut out, &inner, pass)?;
            Ok(message::article_finish(msgid, out))
        }
    }
}

pub fn article_for_nym(
    cfg: &Config,
    server: &mut ServerKey,
    n: &Nym,
    payload: &[u8],
) -> Result<OutItem, Failure> {
    article_for(cfg, server, &n.cert, Wrapping::of(n), &mut &payload[..], payload.len())
}

/// A notice from config@ to the nym.
pub fn config_notice(
    cfg: &Config,
    server: &mut ServerKey,
    n: &Nym,
    subject: &str,
    text: &str,
) -> Result<OutItem, Failure> {
    let from = format!("config@{}", n.domain);
    article_for_nym(cfg, server, n, &notice(&from, &n.address(), subject, text))
}

fn decrypt_outcome(e: &DecryptError) -> &'static str {
    match e {
        DecryptError::NoMessage => "no_pgp_message",
        DecryptError::NotForUs => "not_for_server_key",
        DecryptError::Malformed(_) => "malformed_pgp",
        DecryptError::TooLarge => "plaintext_too_large",
    }
}

/// Hold a signed message from a key we do not know yet (PROTOCOL.md
/// section 7): it runs again if a nym with that key is created in time.
pub fn hold(
    ctx: &mut Ctx,
    ev: &'static str,
    recipient: &str,
    raw: &[u8],
    sigs: &[SigInfo],
    digest: Option<&[u8]>,
) -> Result<Done, Failure> {
    let keyids: Vec<String> = sigs.iter().flat_map(|s| s.issuers.iter().cloned()).collect();
    if keyids.is_empty() || ctx.cfg.send.hold_time == 0 {
        return done(ev, "unknown_signer_dropped");
    }
    let (now, hold_time) = (ctx.now, ctx.cfg.send.hold_time as i64);
    let Some(tx) = begin(&mut ctx.store, now, digest)? else { return done(ev, "duplicate_delivery") };
    store::expire_holds(&tx, now)?;
    store::hold(&tx, recipient, raw, &keyids, now, now + hold_time)?;
    tx.commit()?;
    done(ev, "held_unknown_signer")
}

/// Refuse a signature outside the accepted time window; tells the nym.
/// Returns the outcome name when refused.
fn check_signature_age(ctx: &Ctx, sig: &SigInfo) -> Option<&'static str> {
    let created =
        sig.created.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64);
    let Some(created) = created else { return Some("signature_undated") };
    if created < ctx.now - ctx.cfg.send.replay_window as i64 {
        return Some("signature_too_old");
    }
    if created > ctx.now + ctx.cfg.send.future_skew as i64 {
        return Some("signature_from_future");
    }
    None
}

/// Shared first steps of signed requests (config@ and send@): replay and
/// age checks. `Ok(Err(done))` means the request ends here.
pub fn signed_request_gate(
    ctx: &mut Ctx,
    ev: &'static str,
    n: &Nym,
    sig: &SigInfo,
    digest: Option<&[u8]>,
) -> Result<Result<(), Done>, Failure> {
    if n.disabled || n.expired(ctx.now) {
        return Ok(Err(Done { event: ev, outcome: "nym_disabled_or_expired" }));
    }
    if store::replay_seen(&ctx.store.conn, &sig.digest)? {
        return Ok(Err(Done { event: ev, outcome: "replayed_signature" }));
    }
    if let Some(why) = check_signature_age(ctx, sig) {
        let text = format!(
            "Your message to {ev}@{} was refused: its signature is {}.\n\
             Signatures must be dated within the last {} days and not in the future.\n\
             Nothing was done. Sign the request again and resend it.\n",
            n.domain,
            match why {
                "signature_too_old" => "too old",
                "signature_from_future" => "dated in the future",
                _ => "undated",
            },
            ctx.cfg.send.replay_window / 86400
        );
        let item = config_notice(ctx.cfg, &mut ctx.server, n, "Request refused: signature date", &text)?;
        if let Some(tx) = begin(&mut ctx.store, ctx.now, digest)? {
            queue(ctx.cfg, &tx, ctx.now, item, &mut ctx.mine)?;
            tx.commit()?;
        }
        return Ok(Err(Done { event: ev, outcome: why }));
    }
    Ok(Ok(()))
}

// ---------------------------------------------------------------- config@

/// A message to config@: creation (contains a key block), reconfiguration
/// or deletion (signed by a nym), or junk (dropped with 0).
pub fn config(ctx: &mut Ctx, recipient: &str, raw: &[u8], digest: Option<&[u8]>) -> Result<Done, Failure> {
    const EV: &str = "config";
    let Some(armored) = message::extract_pgp_message(raw) else { return done(EV, "no_pgp_message") };
    let dec = match ctx.decrypt(&armored) {
        Ok(d) => d,
        Err(e) => return done(EV, decrypt_outcome(&e)),
    };
    if let Some(block) = pgp::find_armor(&dec.plaintext, "PUBLIC KEY BLOCK") {
        let block = block.to_vec();
        return create(ctx, &dec, &block, digest);
    }
    match dec.good().cloned() {
        Some(sig) => {
            let fpr = sig.good_signer.clone().unwrap_or_default();
            match store::nym_by_fingerprint(&ctx.store.conn, &fpr)? {
                Some(n) => reconfigure(ctx, n, &dec, &sig, digest),
                None => done(EV, "signer_not_a_nym"),
            }
        }
        None if dec.signatures.iter().any(|s| !s.bad) => {
            hold(ctx, EV, recipient, raw, &dec.signatures, digest)
        }
        None if dec.signatures.is_empty() => done(EV, "unsigned_without_key"),
        None => done(EV, "bad_signature"),
    }
}

fn text_of(dec: &Decrypted) -> String {
    String::from_utf8_lossy(&dec.plaintext).into_owned()
}

fn set_value(c: Option<&Change>) -> Option<String> {
    match c {
        Some(Change::Set(_, v)) => Some(v.clone()),
        _ => None,
    }
}

fn rejected_text(p: &options::Parsed) -> String {
    let mut s = String::new();
    for r in &p.rejected {
        s.push_str(&format!("Ignored an \"{}\" line: {}.\n", r.opt, r.reason));
    }
    s
}

fn create(ctx: &mut Ctx, dec: &Decrypted, block: &[u8], digest: Option<&[u8]>) -> Result<Done, Failure> {
    const EV: &str = "create";
    let certs = match pgp::parse_certs(block) {
        Ok(c) => c,
        Err(_) => return done(EV, "malformed_key_block"),
    };
    if certs.len() != 1 {
        return done(EV, if certs.is_empty() { "no_key_in_block" } else { "more_than_one_key" });
    }
    let cert = certs.into_iter().next().expect("one cert");
    let cfg = ctx.cfg;
    let key = match pgp::check_nym_cert(&cert, |d| cfg.hosts(d)) {
        Ok(k) => k,
        Err(p) => {
            return done(
                EV,
                match p {
                    pgp::KeyProblem::Invalid => "key_invalid",
                    pgp::KeyProblem::Revoked => "key_revoked",
                    pgp::KeyProblem::Expired => "key_expired",
                    pgp::KeyProblem::NoEncryption => "key_cannot_encrypt",
                    pgp::KeyProblem::NoSigning => "key_cannot_sign",
                    pgp::KeyProblem::NoAddress => "no_hosted_user_id",
                    pgp::KeyProblem::TwoAddresses => "two_hosted_user_ids",
                },
            )
        }
    };
    let text = text_of(dec);
    let opts = options::parse(&text);
    let hsub = set_value(opts.get(Opt::Hsub));
    let subject = set_value(opts.get(Opt::Subject));
    let symmetric = set_value(opts.get(Opt::Symmetric));
    let acksend = !matches!(opts.get(Opt::Acksend), Some(Change::Off(_)));
    let expires =
        key.expires.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64);
    let address = format!("{}@{}", key.local, key.domain);
    let from = format!("config@{}", key.domain);

    // A refusal goes to the key that asked, under the subject it asked for.
    let refusal = |ctx: &mut Ctx, subject_line: &str, text: String| -> Result<OutItem, Failure> {
        let payload = notice(&from, &address, subject_line, &text);
        let wrap =
            Wrapping { hsub: hsub.as_deref(), subject: subject.as_deref(), symmetric: symmetric.as_deref() };
        article_for(ctx.cfg, &mut ctx.server, &cert, wrap, &mut &payload[..], payload.len())
    };

    if cfg.is_reserved(&key.local) {
        let item = refusal(
            ctx,
            "Nym refused: reserved name",
            format!("The name {address} is reserved and cannot be a nym.\nYour key was not stored.\n"),
        )?;
        return commit_items(ctx, EV, "refused_reserved", vec![item], digest);
    }

    let existing = store::nym_by_address(&ctx.store.conn, &key.local, &key.domain)?;
    match existing {
        Some(n) if n.fingerprint == key.fingerprint => {
            // A refresh, or simply the second copy of the creation.
            let merged = pgp::merge(n.cert.clone(), cert.clone())?;
            if pgp::cert_bytes(&merged)? == pgp::cert_bytes(&n.cert)? && expires == n.expires {
                // Identical copy: nothing changes; mark it received anyway.
                return commit_items(ctx, EV, "duplicate_copy", vec![], digest);
            }
            let merged_expires = pgp::check_nym_cert(&merged, |d| cfg.hosts(d))
                .ok()
                .and_then(|k| k.expires)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .or(expires);
            let mut updated = n.clone();
            updated.cert = merged.clone();
            updated.expires = merged_expires;
            let item = config_notice(
                cfg,
                &mut ctx.server,
                &updated,
                "Nym key refreshed",
                &format!(
                    "Your nym's key was refreshed. Options are unchanged.\n\n{}",
                    describe_options(&updated)
                ),
            )?;
            let Some(tx) = begin(&mut ctx.store, ctx.now, digest)? else {
                return done(EV, "duplicate_delivery");
            };
            store::update_cert(&tx, n.id, &merged, merged_expires)?;
            queue(cfg, &tx, ctx.now, item, &mut ctx.mine)?;
            tx.commit()?;
            done(EV, "key_refreshed")
        }
        Some(_) => {
            let item = refusal(
                ctx,
                "Nym refused: name taken",
                format!("The name {address} is already taken by another key.\nYour key was not stored.\n"),
            )?;
            commit_items(ctx, EV, "refused_taken", vec![item], digest)
        }
        None => {
            if store::nym_by_fingerprint(&ctx.store.conn, &key.fingerprint)?.is_some() {
                return done(EV, "key_already_used");
            }
            // Build the nym as it will be stored, to write its confirmation.
            let mut n = Nym {
                id: 0,
                local: key.local.clone(),
                domain: key.domain.clone(),
                fingerprint: key.fingerprint.clone(),
                cert: cert.clone(),
                expires,
                created: ctx.now,
                hsub: hsub.clone(),
                subject: subject.clone(),
                symmetric: symmetric.clone(),
                acksend,
                disabled: false,
                send_day: 0,
                send_count: 0,
                limit_told: false,
            };
            let text = format!(
                "Your nym {} was created.\n\n{}\n{}\nFrom now on, sign every message to config@{d} and send@{d} with this key.\n",
                n.address(),
                describe_options(&n),
                rejected_text(&opts),
                d = n.domain
            );
            let item = config_notice(cfg, &mut ctx.server, &n, "Nym created", &text)?;
            let keyids = pgp::key_ids(&cert);
            let now = ctx.now;
            let Some(tx) = begin(&mut ctx.store, now, digest)? else { return done(EV, "duplicate_delivery") };
            // Re-check under the lock: a concurrent copy may have won.
            if store::nym_by_address(&tx, &n.local, &n.domain)?.is_some() {
                tx.commit()?;
                return done(EV, "duplicate_copy");
            }
            n.id = store::insert_nym(
                &tx,
                &store::NewNym {
                    local: &n.local,
                    domain: &n.domain,
                    cert: &n.cert,
                    expires: n.expires,
                    hsub: n.hsub.as_deref(),
                    subject: n.subject.as_deref(),
                    symmetric: n.symmetric.as_deref(),
                    acksend: n.acksend,
                },
            )?;
            queue(cfg, &tx, now, item, &mut ctx.mine)?;
            let held = store::held_for(&tx, &keyids, now)?;
            tx.commit()?;
            ctx.replays.extend(held);
            done(EV, "created")
        }
    }
}

/// Commit `items` (maybe none) as the whole effect of this delivery.
fn commit_items(
    ctx: &mut Ctx,
    ev: &'static str,
    outcome: &'static str,
    items: Vec<OutItem>,
    digest: Option<&[u8]>,
) -> Result<Done, Failure> {
    let Some(tx) = begin(&mut ctx.store, ctx.now, digest)? else { return done(ev, "duplicate_delivery") };
    for item in items {
        queue(ctx.cfg, &tx, ctx.now, item, &mut ctx.mine)?;
    }
    tx.commit()?;
    done(ev, outcome)
}

fn reconfigure(
    ctx: &mut Ctx,
    n: Nym,
    dec: &Decrypted,
    sig: &SigInfo,
    digest: Option<&[u8]>,
) -> Result<Done, Failure> {
    const EV: &str = "config";
    if let Err(d) = signed_request_gate(ctx, EV, &n, sig, digest)? {
        return Ok(d);
    }
    let cfg = ctx.cfg;
    let opts = options::parse(&text_of(dec));
    let mut updated = n.clone();
    let (outcome, item, delete) = if matches!(opts.get(Opt::Delete), Some(Change::On(_))) {
        let text = format!(
            "Your nym {} is deleted, with its key and options.\nThis is the last message you get for it.\n",
            n.address()
        );
        ("deleted", config_notice(cfg, &mut ctx.server, &n, "Nym deleted", &text)?, true)
    } else if opts.is_empty() {
        let text = format!("Status of your nym:\n\n{}\n{}", describe_options(&n), rejected_text(&opts));
        ("status", config_notice(cfg, &mut ctx.server, &n, "Nym status", &text)?, false)
    } else {
        for c in &opts.changes {
            match c {
                Change::Set(Opt::Hsub, v) => updated.hsub = Some(v.clone()),
                Change::Set(Opt::Subject, v) => updated.subject = Some(v.clone()),
                Change::Set(Opt::Symmetric, v) => updated.symmetric = Some(v.clone()),
                Change::Off(Opt::Hsub) => updated.hsub = None,
                Change::Off(Opt::Subject) => updated.subject = None,
                Change::Off(Opt::Symmetric) => updated.symmetric = None,
                Change::On(Opt::Acksend) => updated.acksend = true,
                Change::Off(Opt::Acksend) => updated.acksend = false,
                _ => {}
            }
        }
        let text = format!(
            "Your nym's options were changed.\n\n{}\n{}",
            describe_options(&updated),
            rejected_text(&opts)
        );
        // The confirmation already follows the new options: the holder
        // asked for them.
        ("changed", config_notice(cfg, &mut ctx.server, &updated, "Nym options changed", &text)?, false)
    };
    let now = ctx.now;
    let Some(tx) = begin(&mut ctx.store, now, digest)? else { return done(EV, "duplicate_delivery") };
    if !store::replay_insert(&tx, &sig.digest, now)? {
        tx.commit()?;
        return done(EV, "replayed_signature");
    }
    // The nym may have changed or gone since we read it.
    if store::nym_enabled(&tx, n.id, &n.fingerprint)?.is_none() {
        tx.commit()?;
        return done(EV, "nym_gone");
    }
    if delete {
        store::delete_nym(&tx, n.id)?;
    } else if outcome == "changed" {
        store::update_options(&tx, &updated)?;
    }
    queue(cfg, &tx, now, item, &mut ctx.mine)?;
    tx.commit()?;
    if delete {
        // Push the erased pages out of the WAL too; failure here is not a
        // reason to redeliver (the delete is committed), so only log it.
        if ctx.store.scrub_wal().is_err() {
            event("config", "wal_scrub_deferred");
        }
    }
    done(EV, outcome)
}

// ------------------------------------------------------------ mail to nym

/// Mail from anyone to NAME@D: the whole message, as received, goes to the
/// nym in an article. (`route` uses this for a message already in memory;
/// `deliver` streams straight from the MTA with [`inbound_stream`].)
pub fn inbound(
    ctx: &mut Ctx,
    local: &str,
    domain: &str,
    raw: &[u8],
    digest: Option<&[u8]>,
) -> Result<Done, Failure> {
    let recipient = format!("{local}@{domain}");
    let mut input = message::MessageReader::new(raw, &recipient, u64::MAX);
    inbound_stream(ctx, local, domain, &mut input, digest.is_some())
}

/// Mail to a nym, encrypted as it is read: the message is never held in
/// memory beside its encryption. `dedup` records the delivery digest so
/// that an MTA retry after a crash posts nothing twice.
pub fn inbound_stream<R: std::io::Read>(
    ctx: &mut Ctx,
    local: &str,
    domain: &str,
    input: &mut message::MessageReader<R>,
    dedup: bool,
) -> Result<Done, Failure> {
    const EV: &str = "inbound";
    let Some(n) = store::nym_by_address(&ctx.store.conn, local, domain)? else {
        input.drain();
        return Err(Failure::NoUser);
    };
    if n.disabled || n.expired(ctx.now) {
        input.drain();
        return Err(Failure::NoUser);
    }
    let item = article_for(ctx.cfg, &mut ctx.server, &n.cert, Wrapping::of(&n), input, 64 * 1024)?;
    if input.over_limit() {
        return Err(Failure::Data("message larger than the size limit"));
    }
    if input.blank() {
        return Err(Failure::Data("empty message"));
    }
    let digest = input.digest();
    let Some(tx) = begin(&mut ctx.store, ctx.now, dedup.then_some(&digest[..]))? else {
        return done(EV, "duplicate_delivery");
    };
    if store::nym_enabled(&tx, n.id, &n.fingerprint)? != Some(true) {
        return Err(Failure::NoUser);
    }
    queue(ctx.cfg, &tx, ctx.now, item, &mut ctx.mine)?;
    tx.commit()?;
    done(EV, "posted")
}
