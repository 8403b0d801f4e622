//! The part of `nymgate deliver` for the nym.alias.net side of config@
//! (REPLY-BLOCKS.md 4-6): mail to `confirm[+COOKIE]@D`, what a `Config:`
//! request needs from the store and the key it supplies.

use crate::deliver::{finish, secs, Ctx, Done};
use crate::exit::Failure;
use crate::handle::{self, Sig, Signer, View};
use crate::openpgp as pgp;
use crate::record::Applied;
use crate::store;
use crate::{channel, notices};

/// Mail to `confirm[+COOKIE]@D` (REPLY-BLOCKS.md 6.3).
pub(crate) fn confirm(
    ctx: &mut Ctx,
    ext: Option<&str>,
    sender: Option<&[u8]>,
    raw: &[u8],
    digest: &[u8],
) -> Result<Done, Failure> {
    let auto_submitted = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.header("Auto-Submitted").and_then(|v| v.as_text().map(str::to_string)));
    let automatic = handle::confirm::is_automatic(sender, auto_submitted.as_deref());
    let found = match ext.and_then(crate::protocol::reply_block::parse_cookie) {
        None => None,
        Some(c) => {
            let hash = crate::protocol::reply_block::cookie_hash(&c);
            match store::pending_by_cookie(&ctx.store, &hash)? {
                None => None,
                Some(set) => match store::nym_by_id(&ctx.store, set.nym_id)? {
                    None => None,
                    Some(nym) => {
                        let blocks = store::pending_blocks(&ctx.store, nym.id)?;
                        Some(handle::confirm::Found { set, nym, blocks })
                    }
                },
            }
        }
    };
    let view = View { cfg: ctx.cfg, now: ctx.now, blocklist: &[] };
    let d = handle::confirm::decide(&view, ext, automatic, found)?;
    let rendered = notices::render(ctx.cfg, &mut ctx.server, &ctx.store, d.effects.posts.clone())?;
    match ctx.record_rendered(Some(digest), &d, rendered)? {
        Applied::Committed(c) => Ok(finish(ctx, &d, c)),
        Applied::Retry => Err(Failure::Temp(anyhow::anyhow!("confirm guard asked to retry"))),
    }
}

/// What a `Config:` request needs from the store and the key layer.
pub(crate) fn config_input(
    ctx: &mut Ctx,
    recipient: &str,
    armored: &[u8],
    plaintext: &[u8],
    signer: &Signer,
) -> Result<handle::nym_commands::ConfigInput, Failure> {
    use crate::protocol::config_request;
    let cfg = ctx.cfg;
    let domain = crate::protocol::address::split_address(recipient).map(|(_, d)| d).unwrap_or_default();
    let hosted = |d: &str| cfg.hosts(d);
    let request = config_request::parse(&String::from_utf8_lossy(plaintext), &hosted);
    let name = request.from.as_ref().map(|f| f.name.to_ascii_lowercase());
    let nym_domain = request.from.as_ref().and_then(|f| f.domain.clone()).unwrap_or_else(|| domain.clone());
    let named = match &name {
        Some(n) => store::nym_by_address(&ctx.store, n, &nym_domain)?,
        None => None,
    };
    let active = match &named {
        Some(n) => store::active_blocks(&ctx.store, n.id)?,
        None => Vec::new(),
    };
    let key = match &request.public_key {
        Some(block) => Some(supplied_key(ctx, block.as_bytes())?),
        None => None,
    };
    // A creation is signed by the key it brings, which the store does not
    // know yet: check the signature again with that key.
    let by_named = matches!((signer, &named), (Signer::Nym(s, _), Some(n)) if s.id == n.id);
    let mut key_sig = None;
    if let (Some(handle::nym_commands::SuppliedKey::Usable(k)), false) = (&key, by_named) {
        let store = &ctx.store;
        let max = cfg.limits.max_message_size as usize;
        let extra = k.cert.clone();
        if let Ok(dec) = pgp::decrypt_at(&mut ctx.server, armored, max, None, |ids| {
            let mut v = store::certs_by_keyids(store, ids).unwrap_or_default();
            v.push(extra.clone());
            v
        }) {
            let server_fpr = ctx.server.fingerprint_hex();
            if let Some(s) =
                dec.signatures.iter().find(|s| s.good_signer.as_deref() == Some(k.fingerprint.as_str()))
            {
                key_sig = Some(Sig {
                    digest: s.digest.to_vec(),
                    created: secs(s.created),
                    seen: store::replay_seen(&ctx.store, &s.digest)?,
                    meant_for_others: !s.intended.is_empty()
                        && !s.intended.iter().any(|f| f.eq_ignore_ascii_case(&server_fpr)),
                });
            }
        }
    }
    let nym = format!("{}@{nym_domain}", name.as_deref().unwrap_or_default());
    let block_checks =
        channel::type1::check_blocks(cfg, &mut ctx.server, &nym_domain, &request.blocks, &nym)?;
    let cookie = crate::protocol::reply_block::new_cookie(&mut rand::thread_rng());
    Ok(handle::nym_commands::ConfigInput {
        request,
        domain,
        named,
        active,
        key,
        key_sig,
        block_checks,
        cookie,
    })
}

/// Check a `Public-Key:` block by the rules of a creation key.
fn supplied_key(ctx: &Ctx, block: &[u8]) -> Result<handle::nym_commands::SuppliedKey, Failure> {
    use crate::handle::nym_commands::{keys, Supplied, SuppliedKey};
    use crate::openpgp::KeyProblem;
    use crate::protocol::nym_commands::Problem;
    let cfg = ctx.cfg;
    let hosts = |d: &str| cfg.hosts(d);
    let refused = |k: &'static str, why: &str| Ok(SuppliedKey::Refused(Problem::new(k, why)));
    let Ok(certs) = pgp::read_key_block(block, &hosts) else {
        return refused(keys::KEY_INVALID, "The Public-Key: block cannot be read");
    };
    let cert = match <[_; 1]>::try_from(certs) {
        Ok([c]) => c,
        Err(_) => return refused(keys::PUBLIC_KEY_COUNT, "Public-Key: must hold exactly one key"),
    };
    let key = match pgp::check_nym_cert(&cert, hosts) {
        Ok(k) => k,
        Err(KeyProblem::NoAddress | KeyProblem::TwoAddresses) => {
            return refused(keys::KEY_UID_MISMATCH, "The key needs exactly one User ID in a hosted domain")
        }
        Err(_) => {
            return refused(
                keys::KEY_INVALID,
                "The key in Public-Key: is not usable (revoked, expired, or cannot sign and encrypt)",
            )
        }
    };
    let address = format!("{}@{}", key.local, key.domain);
    let Ok(cert) = pgp::strip_to_nym(&cert, &address) else {
        return refused(keys::KEY_INVALID, "The key in Public-Key: cannot be read");
    };
    if !pgp::within_bounds(&cert) {
        return refused(keys::KEY_INVALID, "The key in Public-Key: is too large");
    }
    let server_ids = pgp::key_ids(&ctx.server.cert);
    let keyids = pgp::key_ids(&cert);
    let is_server_key = keyids.iter().any(|k| server_ids.contains(k));
    let bound_to = store::nym_by_fingerprint(&ctx.store, &key.fingerprint)?.map(|n| n.id);
    Ok(SuppliedKey::Usable(Box::new(Supplied {
        expires: secs(key.expires),
        fingerprint: key.fingerprint,
        local: key.local,
        domain: key.domain,
        keyids,
        cert,
        bound_to,
        is_server_key,
    })))
}
