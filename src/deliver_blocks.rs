//! The shell of mail to a nym that has confirmed reply blocks
//! (REPLY-BLOCKS.md 7): read the message (bounded by the size limit),
//! render it in the nym's form through the 6.2 selection, let
//! `handle::inblocks` check the unit quota against what was rendered, and
//! record the counter with the engine's items in one transaction. Also the
//! unit that the refusal of a disabled nym costs (7.5), for both channels,
//! and the header read ahead for `nobcc`.
//!
//! Unlike the alt.anonymous.messages path, which encrypts while it reads,
//! the message is held in memory: its copies are rendered before the
//! quota can price them. Memory is bounded by `[limits] max_message_size`:
//! the message until it is encrypted, then its encryption once per copy
//! handed to the Type I engine. A racing delivery (the counter guard)
//! makes the quota decide again over the same copies.

use std::io::Read;

use crate::channel::{self, blocks};
use crate::deliver::{finish, Ctx, Done, MAX_RETRIES};
use crate::exit::Failure;
use crate::handle::{self, inblocks, Decision, Outcome, Post, View, Wrapping};
use crate::ingest::MessageReader;
use crate::notices;
use crate::protocol::nym_commands::flag;
use crate::record::Applied;
use crate::store::{self, Nym, StoredBlock};

/// Mail to the nym `first` (read by the caller, refusals passed), whose
/// row says it has active blocks. `head` is what the caller read of the
/// message already (the header, for `nobcc`); `ext` the recipient's
/// `+ext`.
pub(crate) fn inbound<R: Read>(
    ctx: &mut Ctx,
    first: Nym,
    ext: Option<&str>,
    head: Vec<u8>,
    input: &mut MessageReader<R>,
    dedup: bool,
) -> Result<Done, Failure> {
    let mut raw = head;
    input.read_to_end(&mut raw).map_err(|e| Failure::Temp(e.into()))?;
    if input.over_limit() {
        return Err(Failure::Data("message larger than the size limit"));
    }
    if input.blank() {
        return Err(Failure::Data("empty message"));
    }
    let digest = input.digest();
    let digest = dedup.then_some(&digest[..]);
    let received = std::time::SystemTime::now();
    let mut n = first;
    let active = store::active_blocks(&ctx.store, n.id)?;
    if active.is_empty() {
        // The blocks were dropped meanwhile: alt.anonymous.messages.
        return via_aam(ctx, n, &raw, digest);
    }
    let form = inblocks::form(&n);
    if form == inblocks::Form::Plain {
        // Every remailer on the way reads it: not the MTA's trace fields
        // that name this host.
        raw = crate::protocol::trace::strip(&raw);
    }
    let trailer = match form {
        inblocks::Form::Plain => Vec::new(),
        _ => blocks::trailer(raw.ends_with(b"\n"), received, &inblocks::received_for(&n, ext)),
    };
    let wrap = Wrapping::of(&n);
    let target = blocks::Target {
        server: &mut ctx.server,
        cert: &n.cert,
        wrap: &wrap,
        domain: &n.domain,
        notice: None,
    };
    // The message is moved in and freed once encrypted.
    let blocks::Copies { mut msgs, costs } =
        blocks::through(target, form, raw, &trailer, &active, false, &mut rand::thread_rng())?;
    for _ in 0..MAX_RETRIES {
        ctx.now = store::now();
        let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
        let d = inblocks::decide(&view, &n, &active, &costs);
        if d.outcome == Outcome::DisabledByQuota {
            // Nothing of the message goes; the one notice does, outside
            // the quota. No delivery mark: a retry by the MTA after a
            // crash finds the nym disabled and gets 69 again.
            let rendered = notices::render(ctx.cfg, &mut ctx.server, &ctx.store, d.effects.posts.clone())?;
            if let Applied::Committed(c) = ctx.record_rendered(None, &d, rendered)? {
                let done = finish(ctx, &d, c);
                crate::logging::event(done.event, done.outcome.as_str());
                return Err(Failure::NymDisabled);
            }
        } else {
            // The engine's items are queued with the counter; on a retry
            // the same copies are offered again.
            let (items, runs) = channel::Rendered { items: Vec::new(), blocks: msgs }.into_items(ctx.cfg)?;
            if let Applied::Committed(c) = ctx.record(digest, &d, items)? {
                if c.outcome.is_none() {
                    blocks::committed(&runs);
                }
                return Ok(finish(ctx, &d, c));
            }
            msgs = runs.msgs;
        }
        n = again(ctx, &n, &active)?;
    }
    Err(Failure::Temp(anyhow::anyhow!("the nym's counter kept changing under the delivery")))
}

/// The nym again, after a racing delivery or request changed its row: the
/// refusals once more, and the copies stay valid only if nothing that
/// shaped them changed (key, form, `symmetric`, blocks); else 75, and the
/// MTA's retry starts afresh.
fn again(ctx: &mut Ctx, prev: &Nym, active: &[StoredBlock]) -> Result<Nym, Failure> {
    let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
    let Some(n) = store::nym_by_id(&ctx.store, prev.id)? else { return Err(Failure::NoUser) };
    if let Some(d) = inblocks::refusal(&view, &n) {
        let (local, domain) = (n.local.clone(), n.domain.clone());
        return Err(charge_refusal(ctx, &local, &domain, d));
    }
    let d = handle::inbound::decide(&view, Some(n))?;
    let Some(Post::Inbound(n)) = d.effects.posts.into_iter().next() else {
        return Err(Failure::Temp(anyhow::anyhow!("inbound decision without a post")));
    };
    let shaping = flag::CRYPTRECV | flag::FIXEDSIZE | flag::NOBCC;
    let same = n.fingerprint == prev.fingerprint
        && n.flags & shaping == prev.flags & shaping
        && n.symmetric == prev.symmetric
        && store::active_blocks(&ctx.store, n.id)? == active;
    if !same {
        return Err(Failure::Temp(anyhow::anyhow!("the nym changed under the delivery")));
    }
    Ok(*n)
}

/// The blocks went away while the message was read: the nym is back on
/// alt.anonymous.messages, which is always encrypted.
fn via_aam(ctx: &mut Ctx, n: Nym, raw: &[u8], digest: Option<&[u8]>) -> Result<Done, Failure> {
    let item = channel::aam::article_for(
        ctx.cfg,
        &mut ctx.server,
        &n.cert,
        &Wrapping::of(&n),
        &mut &raw[..],
        raw.len(),
        None,
    )?;
    let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
    let d = handle::inbound::decide(&view, Some(n))?;
    match ctx.record(digest, &d, vec![item])? {
        Applied::Committed(c) => Ok(finish(ctx, &d, c)),
        Applied::Retry => Err(Failure::Temp(anyhow::anyhow!("inbound guard asked to retry"))),
    }
}

/// Mail to a nym with `disable` (7.5): the unit it costs is recorded,
/// then 69 (what this returns). A racing delivery makes it count again on
/// the fresh row; trouble recording the unit is transient (75).
pub(crate) fn charge_refusal(ctx: &mut Ctx, local: &str, domain: &str, first: Decision) -> Failure {
    let mut d = first;
    for _ in 0..MAX_RETRIES {
        match ctx.record(None, &d, Vec::<store::Delayed>::new()) {
            Err(f) => return f,
            Ok(Applied::Committed(_)) => {
                crate::logging::event(d.event, d.outcome.as_str());
                return Failure::NymDisabled;
            }
            Ok(Applied::Retry) => {
                ctx.now = store::now();
                let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
                match store::nym_by_address(&ctx.store, local, domain) {
                    Err(e) => return e.into(),
                    Ok(n) => match n.as_ref().and_then(|n| inblocks::refusal(&view, n)) {
                        Some(again) => d = again,
                        // No longer disabled (or gone): refused all the
                        // same, as decided; nothing to count.
                        None => return Failure::NymDisabled,
                    },
                }
            }
        }
    }
    Failure::Temp(anyhow::anyhow!("the nym's counter kept changing under the refusal"))
}

/// Most header bytes read ahead for the `nobcc` check.
const MAX_HEADER: usize = 256 * 1024;

/// Read the message header (up to its blank line, at most
/// [`MAX_HEADER`] bytes) into `out`; what was read stays part of the
/// message (the caller chains it in front of the rest).
pub(crate) fn read_header<R: Read>(input: &mut MessageReader<R>, out: &mut Vec<u8>) -> Result<(), Failure> {
    let mut buf = [0u8; 4096];
    while out.len() < MAX_HEADER {
        let n = input.read(&mut buf).map_err(|e| Failure::Temp(e.into()))?;
        if n == 0 {
            break;
        }
        let from = out.len().saturating_sub(3);
        out.extend_from_slice(&buf[..n]);
        let tail = &out[from..];
        if tail.windows(2).any(|w| w == b"\n\n") || tail.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    Ok(())
}
