//! The shell of `nymgate deliver`: ingest -> route -> prepare the view ->
//! handle -> render -> record -> hand off. Everything here is I/O around
//! the decisions in `handle`.

use std::io::Read;
use std::time::SystemTime;

use crate::admin::open_state_rotating;
use crate::config::Config;
use crate::exit::Failure;
use crate::handle::create::{KeyOffer, Offered, Refresh};
use crate::handle::{self, Decision, Outcome, Request, Sig, Signer, Undecryptable, View, Wrapping};
use crate::ingest::{self, MessageReader};
use crate::openpgp::{self as pgp, DecryptError, Decrypted, ServerKey};
use crate::outbox;
use crate::protocol::address::Service;
use crate::record::{self, Applied};
use crate::route::{route, Route};
use crate::store::{self, OutItem, Store};
use crate::{channel, notices};

/// How a delivery ended, for the log line (exit code 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub event: &'static str,
    pub outcome: Outcome,
}

/// The state one delivery works with.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub store: Store,
    pub server: ServerKey,
    /// During a key rotation's grace period, the previous key's
    /// fingerprint (hex): a request's Intended Recipient may name it.
    pub previous_fpr: Option<String>,
    pub now: i64,
    /// Items committed by this process and reserved for its own hand-off.
    pub mine: Vec<(i64, OutItem)>,
    /// Held messages to run again after this one committed (a nym appeared).
    pub replays: Vec<(i64, String, Vec<u8>)>,
    blocklist: Option<Vec<String>>,
}

/// How often a decision is taken again when a guard saw it race.
pub(crate) const MAX_RETRIES: usize = 8;

/// `deliver`: one message from the MTA, sender unknown.
pub fn deliver(cfg: &Config, recipient: &str, input: impl std::io::Read) -> Result<Done, Failure> {
    deliver_from(cfg, recipient, None, input)
}

/// `deliver` with the envelope sender as the MTA gave it (`Some(b"")`:
/// the null sender). The sender is only looked at by `confirm+COOKIE@`
/// (mail from a null or MAILER-DAEMON sender confirms nothing) and by the
/// autoresponders (silent to bounces; their last choice of address); it
/// is never logged or stored.
pub fn deliver_from(
    cfg: &Config,
    recipient: &str,
    sender: Option<&[u8]>,
    input: impl std::io::Read,
) -> Result<Done, Failure> {
    // Debug builds only: lets the tests prove that a panic defers (75).
    #[cfg(debug_assertions)]
    if std::env::var_os("NYMGATE_PANIC_FOR_TEST").is_some() {
        panic!("panic requested by NYMGATE_PANIC_FOR_TEST");
    }
    no_backtraces();
    let mut input = MessageReader::new(input, recipient, cfg.limits.max_message_size);
    let service = match route(cfg, recipient) {
        Route::Nowhere => {
            input.drain();
            return Err(Failure::NoUser);
        }
        Route::Nym { local, domain } => {
            // Mail to a nym, the bulk of the traffic: encrypted while it is
            // read, so memory stays near the size of the article alone.
            let mut ctx = Ctx::open(cfg)?;
            let ext = crate::protocol::address::split_address(recipient)
                .and_then(|(l, _)| l.split_once('+').map(|(_, e)| e.to_string()));
            let result = inbound(&mut ctx, &local, &domain, ext.as_deref(), &mut input, true);
            outbox::hand_off_mine(cfg, &mut ctx.store, std::mem::take(&mut ctx.mine));
            return result;
        }
        Route::Confirm { ext, .. } => {
            let mut raw = Vec::new();
            input.read_to_end(&mut raw).map_err(|e| Failure::Temp(e.into()))?;
            if input.over_limit() {
                return Err(Failure::Data("message larger than the size limit"));
            }
            let mut ctx = Ctx::open(cfg)?;
            let result =
                crate::deliver_nymcmd::confirm(&mut ctx, ext.as_deref(), sender, &raw, &input.digest());
            outbox::hand_off_mine(cfg, &mut ctx.store, std::mem::take(&mut ctx.mine));
            return result;
        }
        Route::Forward { domain } => {
            let mut raw = Vec::new();
            input.read_to_end(&mut raw).map_err(|e| Failure::Temp(e.into()))?;
            if input.over_limit() {
                return Err(Failure::Data("message larger than the size limit"));
            }
            let mut ctx = Ctx::open(cfg)?;
            let view = View { cfg, now: ctx.now, blocklist: &[] };
            let d = handle::forward::decide(&view, &domain, &raw)?;
            let digest = input.digest();
            let rendered = notices::render(cfg, &mut ctx.server, &ctx.store, d.effects.posts.clone())?;
            let result = match ctx.record_rendered(Some(&digest), &d, rendered)? {
                Applied::Committed(c) => Ok(finish(&mut ctx, &d, c)),
                Applied::Retry => Err(Failure::Temp(anyhow::anyhow!("forward guard asked to retry"))),
            };
            outbox::hand_off_mine(cfg, &mut ctx.store, std::mem::take(&mut ctx.mine));
            return result;
        }
        Route::Responder { responder, domain } => {
            let mut raw = Vec::new();
            input.read_to_end(&mut raw).map_err(|e| Failure::Temp(e.into()))?;
            if input.over_limit() {
                return Err(Failure::Data("message larger than the size limit"));
            }
            let mut ctx = Ctx::open(cfg)?;
            let result = crate::deliver_autoresp::autoresponder(
                &mut ctx,
                responder,
                &domain,
                sender.map(|s| std::str::from_utf8(s).unwrap_or("?")),
                &raw,
                &input.digest(),
            );
            outbox::hand_off_mine(cfg, &mut ctx.store, std::mem::take(&mut ctx.mine));
            return result;
        }
        Route::Remailer { domain } => {
            return crate::deliver_remailer::deliver(cfg, &domain, sender, &mut input)
        }
        Route::Service { service, .. } => service,
    };
    // Requests to the services are decrypted whole.
    let mut raw = Vec::new();
    input.read_to_end(&mut raw).map_err(|e| Failure::Temp(e.into()))?;
    if input.over_limit() {
        return Err(Failure::Data("message larger than the size limit"));
    }
    let mut ctx = Ctx::open(cfg)?;
    let digest = input.digest();
    let result = request(&mut ctx, service, recipient, &raw, Some(&digest));
    // Whatever was committed is handed off, even when a later step failed.
    let mut replays = std::mem::take(&mut ctx.replays);
    while let Some((held_id, rcpt, msg)) = replays.pop() {
        // Held messages whose nym now exists run again; the replay cache
        // keeps a crash here from doing anything twice.
        if let Route::Service { service, .. } = route(cfg, &rcpt) {
            let r = request(&mut ctx, service, &rcpt, &msg, None);
            match &r {
                Ok(done) => log::info!("event=held_{} outcome={}", done.event, done.outcome),
                Err(e) => log::warn!("event=held outcome=failed reason={}", e.log_word()),
            }
            if r.is_ok() {
                if let Ok(tx) = ctx.store.write() {
                    let _ = store::unhold(&tx, held_id).and_then(|_| tx.commit());
                }
            }
            replays.append(&mut ctx.replays);
        }
    }
    // The message itself is no longer needed: free it before the hand-off.
    drop(raw);
    outbox::hand_off_mine(cfg, &mut ctx.store, std::mem::take(&mut ctx.mine));
    result
}

/// Internal errors are values here (most become an exit code and one log
/// word), but anyhow captures a backtrace with each one when
/// `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` is set, which a developer's
/// shell often does: measurable on a path this short. The standard
/// library decides once per process whether captures are on, so this
/// turns them off for the process and puts the environment back as it was
/// for the programs we start (sendmail, inews). Panic messages still follow
/// `RUST_BACKTRACE`: they read it separately.
fn no_backtraces() {
    const VAR: &str = "RUST_LIB_BACKTRACE";
    let old = std::env::var_os(VAR);
    // Single-threaded here: deliver starts no thread before this point.
    std::env::set_var(VAR, "0");
    let _ = std::backtrace::Backtrace::capture();
    match old {
        Some(v) => std::env::set_var(VAR, v),
        None => std::env::remove_var(VAR),
    }
}

impl<'a> Ctx<'a> {
    pub fn open(cfg: &'a Config) -> Result<Ctx<'a>, Failure> {
        let (store, server, previous_fpr) = open_state_rotating(cfg).map_err(Failure::Temp)?;
        Ok(Ctx {
            cfg,
            store,
            server,
            previous_fpr,
            now: store::now(),
            mine: Vec::new(),
            replays: Vec::new(),
            blocklist: None,
        })
    }

    /// Apply a decision whose posts are already rendered.
    pub(crate) fn record<I: Into<store::Delayed>>(
        &mut self,
        digest: Option<&[u8]>,
        d: &Decision,
        items: Vec<I>,
    ) -> Result<Applied, Failure> {
        record::apply(&mut self.store, self.cfg, self.now, digest, &d.effects, items)
    }

    /// Apply a decision with its rendered posts; what went to the Type I
    /// engine is noted once the decision committed.
    pub(crate) fn record_rendered(
        &mut self,
        digest: Option<&[u8]>,
        d: &Decision,
        rendered: channel::Rendered,
    ) -> Result<Applied, Failure> {
        let (items, blocks) = rendered.into_items(self.cfg)?;
        let applied = self.record(digest, d, items)?;
        if let Applied::Committed(c) = &applied {
            if c.outcome.is_none() {
                channel::blocks::committed(&blocks);
            }
        }
        Ok(applied)
    }

    /// The operator's block list; an unreadable one defers (it must not
    /// let mail through to people who asked to be left alone).
    pub(crate) fn blocklist(&mut self) -> Result<&[String], Failure> {
        if self.blocklist.is_none() {
            self.blocklist = Some(channel::type1::blocklist(self.cfg)?);
        }
        Ok(self.blocklist.as_deref().unwrap_or_default())
    }

    /// Decrypt with the server key, checking signatures against stored nym
    /// keys. A signature dated ahead of our clock does not verify "now":
    /// check it at its own date, so that the age rule refuses it and the
    /// nym is told, instead of a silent drop.
    fn decrypt(&mut self, armored: &[u8]) -> Result<Decrypted, DecryptError> {
        let first = self.decrypt_at(armored, None)?;
        if first.good().is_some() {
            return Ok(first);
        }
        let now = SystemTime::now();
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

    fn decrypt_at(&mut self, armored: &[u8], time: Option<SystemTime>) -> Result<Decrypted, DecryptError> {
        let store = &self.store;
        let max = self.cfg.limits.max_message_size as usize;
        pgp::decrypt_at(&mut self.server, armored, max, time, |ids| {
            store::certs_by_keyids(store, ids).unwrap_or_default()
        })
    }
}

pub(crate) fn secs(t: Option<SystemTime>) -> Option<i64> {
    t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64)
}

/// Mail to a nym, encrypted as it is read (through its reply blocks:
/// [`crate::deliver_blocks`]). `dedup` records the delivery digest so
/// that an MTA retry after a crash posts nothing twice.
fn inbound<R: Read>(
    ctx: &mut Ctx,
    local: &str,
    domain: &str,
    ext: Option<&str>,
    input: &mut MessageReader<R>,
    dedup: bool,
) -> Result<Done, Failure> {
    let nym = store::nym_by_address(&ctx.store, local, domain)?;
    let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
    if let Some(d) = nym.as_ref().and_then(|n| handle::inblocks::refusal(&view, n)) {
        input.drain();
        return Err(crate::deliver_blocks::charge_refusal(ctx, local, domain, d));
    }
    let d = match handle::inbound::decide(&view, nym) {
        Ok(d) => d,
        Err(f) => {
            input.drain();
            return Err(f);
        }
    };
    let Some(handle::Post::Inbound(n)) = d.effects.posts.first() else {
        return Err(Failure::Temp(anyhow::anyhow!("inbound decision without a post")));
    };
    // nobcc (REPLY-BLOCKS.md 7.5): the header is read first, then the
    // message is read on from where it stopped.
    let mut header = Vec::new();
    if handle::inbound::needs_recipients(n, ext.is_some()) {
        crate::deliver_blocks::read_header(input, &mut header)?;
        if !handle::inbound::names_recipient(&header, &n.address()) {
            input.drain();
            return Err(Failure::NoBcc);
        }
    }
    if n.via_blocks() {
        let n = (**n).clone();
        return crate::deliver_blocks::inbound(ctx, n, ext, header, input, dedup);
    }
    let mut input_rest = std::io::Read::chain(&header[..], &mut *input);
    // Relayed mail: signed without the notice mark.
    let item = channel::aam::article_for(
        ctx.cfg,
        &mut ctx.server,
        &n.cert,
        &Wrapping::of(n),
        &mut input_rest,
        64 * 1024,
        None,
    )?;
    if input.over_limit() {
        return Err(Failure::Data("message larger than the size limit"));
    }
    if input.blank() {
        return Err(Failure::Data("empty message"));
    }
    let digest = input.digest();
    match ctx.record(dedup.then_some(&digest[..]), &d, vec![item])? {
        Applied::Committed(c) => Ok(finish(ctx, &d, c)),
        // Mail to a nym has no retrying guard.
        Applied::Retry => Err(Failure::Temp(anyhow::anyhow!("inbound guard asked to retry"))),
    }
}

pub(crate) fn finish(ctx: &mut Ctx, d: &Decision, c: record::Committed) -> Done {
    ctx.mine.extend(c.mine);
    ctx.replays.extend(c.held);
    Done { event: d.event, outcome: c.outcome.unwrap_or(d.outcome) }
}

/// A request to a service: decrypt, prepare what the handler needs,
/// decide, render, record.
pub fn request(
    ctx: &mut Ctx,
    service: Service,
    recipient: &str,
    raw: &[u8],
    digest: Option<&[u8]>,
) -> Result<Done, Failure> {
    let ev = service.event();
    let Some(armored) = ingest::extract_pgp_message(raw) else {
        return Ok(Done { event: ev, outcome: Outcome::NoPgpMessage });
    };
    let dec = match ctx.decrypt(&armored) {
        Ok(d) => d,
        Err(e) => {
            let u = match e {
                DecryptError::NoMessage => Undecryptable::NoMessage,
                DecryptError::NotForUs => Undecryptable::NotForUs,
                DecryptError::Malformed(_) => Undecryptable::Malformed,
                DecryptError::TooLarge => Undecryptable::TooLarge,
            };
            return Ok(Done { event: ev, outcome: u.into() });
        }
    };
    for _ in 0..MAX_RETRIES {
        ctx.now = store::now();
        let ours = [Some(ctx.server.fingerprint_hex()), ctx.previous_fpr.clone()];
        let signer = signer_of(&ctx.store, &ours, &dec)?;
        if service == Service::Config
            && crate::protocol::config_request::is_config_request(&String::from_utf8_lossy(&dec.plaintext))
        {
            // The nym.alias.net format (REPLY-BLOCKS.md section 3).
            let input =
                crate::deliver_nymcmd::config_input(ctx, recipient, &armored, &dec.plaintext, &signer)?;
            let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
            let req = Request { recipient, raw, plaintext: &dec.plaintext, signer };
            let d = handle::nym_commands::decide(&view, &req, input);
            let rendered = notices::render(ctx.cfg, &mut ctx.server, &ctx.store, d.effects.posts.clone())?;
            match ctx.record_rendered(digest, &d, rendered)? {
                Applied::Committed(c) => return Ok(finish(ctx, &d, c)),
                Applied::Retry => continue,
            }
        }
        let key = match (service, pgp::find_armor(&dec.plaintext, "PUBLIC KEY BLOCK")) {
            (Service::Config, Some(block)) => Some(key_offer(ctx, block)?),
            _ => None,
        };
        let blocklist = if service == Service::Send { ctx.blocklist()?.to_vec() } else { Vec::new() };
        let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &blocklist };
        let req = Request { recipient, raw, plaintext: &dec.plaintext, signer };
        let mut d = handle::dispatch(&view, service, &req, key);
        if let Some(c) = handle::lifecycle::activity(&view, &req, &d.effects) {
            d.effects.changes.push(c);
        }
        let rendered = notices::render(ctx.cfg, &mut ctx.server, &ctx.store, d.effects.posts.clone())?;
        match ctx.record_rendered(digest, &d, rendered)? {
            Applied::Committed(c) => return Ok(finish(ctx, &d, c)),
            Applied::Retry => continue,
        }
    }
    Err(Failure::Temp(anyhow::anyhow!("state kept changing under the request")))
}

/// What the signatures of a decrypted request say, against the store.
fn signer_of(store: &Store, server_fprs: &[Option<String>], dec: &Decrypted) -> Result<Signer, Failure> {
    if let Some(sig) = dec.good() {
        let fpr = sig.good_signer.clone().unwrap_or_default();
        return Ok(match store::nym_by_fingerprint(store, &fpr)? {
            Some(n) => Signer::Nym(
                Box::new(n),
                Sig {
                    digest: sig.digest.to_vec(),
                    created: secs(sig.created),
                    seen: store::replay_seen(store, &sig.digest)?,
                    meant_for_others: !sig.intended.is_empty()
                        && !sig
                            .intended
                            .iter()
                            .any(|f| server_fprs.iter().flatten().any(|s| f.eq_ignore_ascii_case(s))),
                },
            ),
            None => Signer::NotANym,
        });
    }
    if dec.signatures.iter().any(|s| !s.bad) {
        return Ok(Signer::Unknown(dec.signatures.iter().flat_map(|s| s.issuers.iter().cloned()).collect()));
    }
    Ok(if dec.signatures.is_empty() { Signer::None } else { Signer::Bad })
}

/// Read the key block of a creation request within bounds, keep of the
/// key only what the nym made, and look up what the store knows about its
/// address and key.
fn key_offer(ctx: &Ctx, block: &[u8]) -> Result<KeyOffer, Failure> {
    let cfg = ctx.cfg;
    let hosts = |d: &str| cfg.hosts(d);
    let Ok(certs) = pgp::read_key_block(block, &hosts) else { return Ok(KeyOffer::Malformed) };
    let cert = match <[_; 1]>::try_from(certs) {
        Ok([c]) => c,
        Err(v) if v.is_empty() => return Ok(KeyOffer::NoKey),
        Err(_) => return Ok(KeyOffer::MoreThanOne),
    };
    let key = match pgp::check_nym_cert(&cert, hosts) {
        Ok(k) => k,
        Err(p) => return Ok(KeyOffer::Problem(p)),
    };
    let address = format!("{}@{}", key.local, key.domain);
    let Ok(cert) = pgp::strip_to_nym(&cert, &address) else { return Ok(KeyOffer::Malformed) };
    let expires = secs(key.expires);
    let existing = store::nym_by_address(&ctx.store, &key.local, &key.domain)?;
    let mut too_large = !pgp::within_bounds(&cert);
    let refresh = match &existing {
        Some(n) if n.fingerprint == key.fingerprint && !too_large => {
            // Only the nym's own signatures are merged, and the result is
            // stripped again: a refresh can never make the key grow
            // without bound.
            let merged = pgp::strip_to_nym(&pgp::merge(n.cert.clone(), cert.clone())?, &address)?;
            too_large = !pgp::within_bounds(&merged);
            let unchanged = pgp::cert_bytes(&merged)? == pgp::cert_bytes(&n.cert)?;
            let merged_expires =
                pgp::check_nym_cert(&merged, hosts).ok().and_then(|k| secs(k.expires)).or(expires);
            Some(Refresh { cert: merged, unchanged, expires: merged_expires })
        }
        _ => None,
    };
    let key_in_use = existing.is_none() && store::nym_by_fingerprint(&ctx.store, &key.fingerprint)?.is_some();
    let offered = Box::new(Offered {
        local: key.local,
        domain: key.domain,
        fingerprint: key.fingerprint,
        expires,
        keyids: pgp::key_ids(&cert),
        cert,
        existing,
        key_in_use,
        refresh,
    });
    Ok(if too_large { KeyOffer::TooLarge(offered) } else { KeyOffer::Valid(offered) })
}
