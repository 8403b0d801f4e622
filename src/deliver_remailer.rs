//! The shell of mail to `remailer@D`, the Type I remailer (REPLY-BLOCKS.md
//! section 10): read the message, answer the Subject requests of 10.11,
//! else run the engine ([`crate::channel::type1`]) and queue what it made
//! in one transaction with the delivery mark, then hand off.
//!
//! Every failure of the message itself is a silent drop: exit 0 with its
//! outcome in the log (10.2), the size limit included, since a bounce
//! would go back along the chain toward the sender. Only transient trouble
//! (the database, an unreadable list) defers with 75.

use std::io::Read;

use crate::channel::type1::{self, Lists, ServerCrypto};
use crate::config::Config;
use crate::deliver::{finish, Ctx, Done};
use crate::deliver_autoresp::autoresponder;
use crate::exit::Failure;
use crate::handle::remailer::Entry;
use crate::handle::{self, Decision, Effects, Outcome, View};
use crate::ingest::MessageReader;
use crate::notices;
use crate::outbox;
use crate::protocol::address::Responder;
use crate::protocol::send_request::split_message;
use crate::protocol::type1::{request_of, RemailerRequest};
use crate::record::Applied;
use crate::store;

/// The event word of the log lines.
const EV: &str = "remailer";

/// Mail to `remailer@domain` (the route exists only when the remailer is
/// enabled).
pub fn deliver<R: Read>(
    cfg: &Config,
    domain: &str,
    sender: Option<&[u8]>,
    input: &mut MessageReader<R>,
) -> Result<Done, Failure> {
    let mut raw = Vec::new();
    input.read_to_end(&mut raw).map_err(|e| Failure::Temp(e.into()))?;
    if input.over_limit() {
        // Reading stopped at the limit (memory stays bounded) and the rest
        // was drained; nothing of it is used.
        return Ok(Done { event: EV, outcome: Outcome::MessageTooLarge });
    }
    let digest = input.digest();
    let mut ctx = Ctx::open(cfg)?;
    let result = remail(&mut ctx, domain, sender, &raw, &digest);
    outbox::hand_off_mine(cfg, &mut ctx.store, std::mem::take(&mut ctx.mine));
    result
}

fn remail(
    ctx: &mut Ctx,
    domain: &str,
    sender: Option<&[u8]>,
    raw: &[u8],
    digest: &[u8],
) -> Result<Done, Failure> {
    let (headers, body) = split_message(raw);
    // Requests by Subject (10.11), before anything else: they are clear.
    let subject = headers.iter().find(|h| h.is("subject")).map(|h| h.value().to_string());
    let sender_text = sender.map(|s| std::str::from_utf8(s).unwrap_or("?"));
    match subject.as_deref().and_then(request_of) {
        // Answered as help@ and remailer-key@ are, with their loop and
        // backscatter rules and caps.
        Some(RemailerRequest::Help) => {
            return autoresponder(ctx, Responder::Help, domain, sender_text, raw, digest)
        }
        Some(RemailerRequest::Key) => {
            return autoresponder(ctx, Responder::RemailerKey, domain, sender_text, raw, digest)
        }
        // Passed to the operator as it came; nothing is blocked by it.
        Some(RemailerRequest::DestinationBlock) => return forward(ctx, domain, raw, digest),
        Some(RemailerRequest::Other) => {
            return Ok(Done { event: EV, outcome: Outcome::RemailerRequestDropped })
        }
        None => {}
    }
    let header: Vec<(String, String)> =
        headers.iter().map(|h| (h.name.clone(), h.value().to_string())).collect();
    drop(headers);
    let body = String::from_utf8_lossy(&body).into_owned();
    let cfg = ctx.cfg;
    let lists = Lists { blocklist: ctx.blocklist()?.to_vec(), known: type1::known_remailers(cfg)? };
    let (items, run) = {
        let mut crypto = ServerCrypto::new(cfg, Some(&mut ctx.server));
        type1::run(cfg, Entry::Remailer, domain, &header, &body, &lists, &mut crypto)
    };
    drop(body);
    log_segments(&run);
    let outcome = run.outcome();
    if items.is_empty() {
        // A silent drop: nothing to record (a retry of it drops again).
        return Ok(Done { event: EV, outcome });
    }
    ctx.now = store::now();
    let d = Decision::new(EV, outcome, Effects::mark());
    match ctx.record(Some(digest), &d, items)? {
        Applied::Committed(c) => Ok(finish(ctx, &d, c)),
        Applied::Retry => Err(Failure::Temp(anyhow::anyhow!("remailer record asked to retry"))),
    }
}

/// `Subject: destination-block` goes to the operator, who decides; without
/// an operator address it is dropped.
fn forward(ctx: &mut Ctx, domain: &str, raw: &[u8], digest: &[u8]) -> Result<Done, Failure> {
    if ctx.cfg.operator.address.trim().is_empty() {
        return Ok(Done { event: EV, outcome: Outcome::RemailerRequestDropped });
    }
    let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
    let mut d = handle::forward::decide(&view, domain, raw)?;
    d.event = EV;
    let rendered = notices::render(ctx.cfg, &mut ctx.server, &ctx.store, d.effects.posts.clone())?;
    match ctx.record(Some(digest), &d, rendered.items)? {
        Applied::Committed(c) => Ok(finish(ctx, &d, c)),
        Applied::Retry => Err(Failure::Temp(anyhow::anyhow!("forward guard asked to retry"))),
    }
}

/// The cut segments of one message (10.7), counted by outcome; the
/// message's own outcome is the delivery's log line.
fn log_segments(run: &handle::remailer::Run) {
    let mut seen: Vec<(Outcome, usize)> = Vec::new();
    for o in run.outcomes.iter().skip(1) {
        match seen.iter_mut().find(|(s, _)| s == o) {
            Some((_, n)) => *n += 1,
            None => seen.push((*o, 1)),
        }
    }
    for (o, n) in seen {
        log::info!("event=remailer_segment outcome={o} count={n}");
    }
    if run.segments_dropped > 0 {
        log::info!("event=remailer_segment outcome=over_max_cut_segments count={}", run.segments_dropped);
    }
}
