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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::{notice_to, Blocks};
    use crate::protocol::address::Service;
    use crate::store::{NewNym, Store, StoredBlock};
    use std::time::Duration;

    fn block(text: &str) -> StoredBlock {
        StoredBlock { set: None, text: text.into() }
    }

    #[test]
    fn route_reads_the_nyms_blocks_and_leaves_a_pending_only_nym_on_aam() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db"), Duration::from_secs(1)).unwrap();
        let cert = crate::openpgp::parse_certs(include_bytes!("../fuzz/seeds/openpgp/nym-key.asc"))
            .unwrap()
            .remove(0);
        let tx = s.write().unwrap();
        let id = store::insert_nym(
            &tx,
            &NewNym {
                local: "quill",
                domain: "nym.example",
                cert: &cert,
                expires: None,
                hsub: None,
                subject: None,
                symmetric: None,
                flags: 0xfd,
                name: None,
                had_active: false,
            },
        )
        .unwrap();
        let blocks = [block("::\nAnon-To: a@x.example\n\n"), block("::\nAnon-To: b@x.example\n\n")];
        store::replace_pending(&tx, id, &blocks, &[1u8; 32], 100).unwrap();
        tx.commit().unwrap();
        let notice = |s: &Store| {
            let n = store::nym_by_id(s, id).unwrap().unwrap();
            notice_to(&n, Service::Send, "Message sent", "x\n".into())
        };

        // Only a pending set: alt.anonymous.messages.
        let out = route(&s, vec![notice(&s)]).unwrap();
        assert!(matches!(out[..], [Post::Notice { .. }]), "{out:?}");

        // Confirmed: every notice to the nym through the stored set, in
        // order; other posts untouched.
        let tx = s.write().unwrap();
        store::activate_pending(&tx, id).unwrap();
        tx.commit().unwrap();
        let item = Post::Item(crate::store::OutItem {
            kind: crate::store::Kind::Mail,
            env_from: "quill@nym.example".into(),
            env_to: vec!["bob@example.org".into()],
            msgid: "<m@nym.example>".into(),
            body: b"x".to_vec(),
            nym: Some(id),
        });
        let out = route(&s, vec![notice(&s), item, notice(&s)]).unwrap();
        assert_eq!(out.len(), 3);
        for p in [&out[0], &out[2]] {
            match p {
                Post::ViaBlocks { blocks: b, encrypt, from, .. } => {
                    assert_eq!(*b, Blocks::Set(blocks.to_vec()));
                    assert!(*encrypt, "0xfd has cryptrecv");
                    assert_eq!(from, "send@nym.example");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(out[1], Post::Item(_)));
    }
}
