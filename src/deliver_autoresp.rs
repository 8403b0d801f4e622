//! The part of `nymgate deliver` for the autoresponders (help@,
//! remailer-key@, list@, used@; REPLY-BLOCKS.md 11): screen the request,
//! prepare what the answer needs, let `handle::autoresp` decide, record.

use std::io::Read;

use crate::config::Config;
use crate::deliver::{finish, Ctx, Done};
use crate::exit::Failure;
use crate::handle::autoresp;
use crate::handle::View;
use crate::notices;
use crate::protocol::address::Responder;
use crate::protocol::remailer_info::{capability_line, Capabilities};
use crate::protocol::send_request::split_message;
use crate::record::Applied;
use crate::store;

/// Mail to an autoresponder: screen, prepare what the answer needs,
/// decide, record (the caps are checked again under the lock).
pub(crate) fn autoresponder(
    ctx: &mut Ctx,
    responder: Responder,
    domain: &str,
    sender: Option<&str>,
    raw: &[u8],
    digest: &[u8],
) -> Result<Done, Failure> {
    let (headers, _) = split_message(raw);
    // Without the MTA's word, the Return-Path it put on top (Postfix R,
    // Exim return_path_add).
    let return_path = headers.iter().find(|h| h.is("return-path")).map(|h| h.value().to_string());
    let sender = sender.or(return_path.as_deref());
    let asked = autoresp::Asked { responder, domain, sender, headers: &headers };
    let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
    let to = match autoresp::screen(&view, &asked)? {
        autoresp::Screen::Silent(outcome) => return Ok(Done { event: responder.event(), outcome }),
        autoresp::Screen::Answer(to) => to,
    };
    let help_text = match responder {
        Responder::Help => help_text(ctx.cfg),
        _ => String::new(),
    };
    let (server_key, capability) = match responder {
        Responder::RemailerKey => {
            let key = ctx.server.public_armored().map_err(Failure::Temp)?;
            (
                String::from_utf8_lossy(&key).into_owned(),
                ctx.cfg.remailer.enabled.then(|| capability(ctx.cfg, domain)),
            )
        }
        _ => (String::new(), None),
    };
    let names: Vec<String> = match responder {
        Responder::List | Responder::Used => store::all_addresses(&ctx.store)?
            .into_iter()
            .filter(|(_, d)| d == domain)
            .map(|(l, _)| l)
            .collect(),
        _ => Vec::new(),
    };
    ctx.now = store::now();
    let key = {
        let tx = ctx.store.write()?;
        let k = store::autoreply_key(&tx, &to)?;
        tx.commit()?;
        k
    };
    let (a, t) = store::autoreply_counts(&ctx.store, &key, ctx.now - 86400, ctx.now - 3600)?;
    let facts = autoresp::Facts {
        help_text: &help_text,
        server_key: &server_key,
        capability: capability.as_deref(),
        names: &names,
        key,
        sent_to_address: a.clamp(0, u32::MAX as i64) as u32,
        sent_hour: t.clamp(0, u32::MAX as i64) as u32,
    };
    let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
    let d = autoresp::decide(&view, &asked, &to, &facts);
    let rendered = notices::render(ctx.cfg, &mut ctx.server, &ctx.store, d.effects.posts.clone())?;
    match ctx.record(Some(digest), &d, rendered.items)? {
        Applied::Committed(c) => Ok(finish(ctx, &d, c)),
        Applied::Retry => Err(Failure::Temp(anyhow::anyhow!("autoresponder guard asked to retry"))),
    }
}

/// The most of the operator's help file that is sent.
const HELP_MAX: u64 = 64 * 1024;

/// The operator's help text, read on every request (so an edit needs no
/// restart); missing or unreadable: the built-in text, and a log line.
fn help_text(cfg: &Config) -> String {
    let Some(path) = &cfg.autoresponders.help_file else { return autoresp::BUILTIN_HELP.to_string() };
    let mut buf = Vec::new();
    match std::fs::File::open(path).and_then(|f| f.take(HELP_MAX).read_to_end(&mut buf)) {
        Ok(_) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => {
            crate::logging::event("help", "help_file_unreadable");
            autoresp::BUILTIN_HELP.to_string()
        }
    }
}

/// The remailer's capability line for `domain` (REPLY-BLOCKS.md 10.11).
fn capability(cfg: &Config, domain: &str) -> String {
    let r = &cfg.remailer;
    let first_label = domain.split('.').next().unwrap_or(domain);
    let name = if r.name.is_empty() { first_label } else { r.name.as_str() };
    let address = format!("remailer@{domain}");
    capability_line(&Capabilities {
        name,
        address: &address,
        middleman: r.middleman,
        pgp_only: r.pgp_only,
        post: r.post,
        max_message_size: cfg.limits.max_message_size,
        extra: &r.extra_flags,
    })
}
