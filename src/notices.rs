//! The one door every post takes to be rendered: the channel rule
//! ([`crate::handle::channel_rule`]) applied against the store, then
//! [`channel::render`]. Every shell that renders posts (deliveries, the
//! Type I remailer, the outbox's give-up notices, the lifecycle and
//! rotation notices, the expiry of pending sets) calls [`render`] or
//! [`items`] here, never `channel::render` itself, so that a notice to a
//! nym with confirmed reply blocks goes through them wherever it was
//! decided.
//!
//! Notices through blocks are outside the unit quota
//! (docs/reply-blocks.md, "The daily limit"): they are neither counted
//! nor dropped.

use crate::channel::{self, blocks::Runs, Rendered};
use crate::config::Config;
use crate::exit::Failure;
use crate::handle::{channel_rule, Post};
use crate::openpgp::ServerKey;
use crate::store::{self, Db, Delayed};

/// Each notice to a nym whose row counts active blocks, through the
/// blocks stored now (read once per nym of the batch); the other posts as
/// they are.
pub fn route(db: &impl Db, posts: Vec<Post>) -> Result<Vec<Post>, Failure> {
    let mut read: Vec<(i64, Vec<store::StoredBlock>)> = Vec::new();
    let mut out = Vec::with_capacity(posts.len());
    for p in posts {
        let Some(id) = channel_rule::wants_blocks(&p) else {
            out.push(p);
            continue;
        };
        if !read.iter().any(|(i, _)| *i == id) {
            read.push((id, store::active_blocks(db, id)?));
        }
        let active = read.iter().find(|(i, _)| *i == id).map(|(_, b)| &b[..]).unwrap_or_default();
        out.push(channel_rule::apply(p, active));
    }
    Ok(out)
}

/// [`route`], then [`channel::render`].
pub fn render(
    cfg: &Config,
    server: &mut ServerKey,
    db: &impl Db,
    posts: Vec<Post>,
) -> Result<Rendered, Failure> {
    channel::render(cfg, server, route(db, posts)?)
}

/// [`render`], then the Type I engine's runs for the posts through
/// blocks: everything for the outbox (each item with its wait) and the
/// runs, for [`channel::blocks::committed`] once the items committed.
pub fn items(
    cfg: &Config,
    server: &mut ServerKey,
    db: &impl Db,
    posts: Vec<Post>,
) -> Result<(Vec<Delayed>, Runs), Failure> {
    render(cfg, server, db, posts)?.into_items(cfg)
}
