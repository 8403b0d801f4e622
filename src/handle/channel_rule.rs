//! The channel rule for the server's notices (REPLY-BLOCKS.md section 2,
//! 7.1, 8.2, 8.4): a nym with at least one active (confirmed) reply block
//! receives everything through its blocks, every other nym through
//! alt.anonymous.messages.
//!
//! Handlers write their notices to a nym with [`super::notice_to`], as
//! for alt.anonymous.messages; the shell (`crate::notices`) reads the
//! nym's active blocks and passes each such notice through [`apply`]
//! before it is rendered, so that no handler and no timer can forget the
//! rule. Notices that already name their blocks ([`Post::ViaBlocks`]:
//! the cookie notice through a pending set, the one reply to an
//! unauthorized request) and notices to a key that is no nym are left as
//! they are.

use super::{Addressee, Blocks, Post};
use crate::protocol::nym_commands::flag;
use crate::store::StoredBlock;

/// The nym a notice should reach through its blocks, if any: only a
/// [`Post::Notice`] to a nym whose row counts an active block. Its id is
/// what the shell reads the blocks of.
pub fn wants_blocks(post: &Post) -> Option<i64> {
    match post {
        Post::Notice { to: Addressee::Nym(n), .. } if n.via_blocks() => Some(n.id),
        _ => None,
    }
}

/// `post` through the nym's channel, given its `active` blocks as stored
/// now: a [`Post::Notice`] to a nym with at least one becomes a
/// [`Post::ViaBlocks`] through that set (the 6.2 selection), from the same
/// service address, signed and encrypted exactly when the nym set
/// `cryptrecv`. Without active blocks (none, only a pending set, or
/// dropped meanwhile) it stays on alt.anonymous.messages; any other post
/// is returned unchanged.
pub fn apply(post: Post, active: &[StoredBlock]) -> Post {
    match post {
        Post::Notice { to: Addressee::Nym(n), from, address, subject, text } if !active.is_empty() => {
            let encrypt = n.has(flag::CRYPTRECV);
            Post::ViaBlocks {
                to: Addressee::Nym(n),
                blocks: Blocks::Set(active.to_vec()),
                encrypt,
                from,
                address,
                subject,
                text,
                reply_to: None,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::super::{notice_to, Wrapping};
    use super::*;
    use crate::protocol::address::Service;

    fn block(to: &str) -> StoredBlock {
        StoredBlock { set: None, text: format!("::\nAnon-To: {to}\n\n") }
    }

    #[test]
    fn channel_rule_notice_to_a_nym_with_active_blocks_goes_through_them() {
        let k = Kit::new();
        let mut n = k.nym("quill");
        n.active_blocks = 2;
        n.flags |= flag::CRYPTRECV;
        let active = [block("a@x.example"), block("b@x.example")];
        let post = notice_to(&n, Service::Send, "Message sent", "Sent.\n".into());
        assert_eq!(wants_blocks(&post), Some(n.id));
        match apply(post, &active) {
            Post::ViaBlocks { to, blocks, encrypt, from, address, subject, text, reply_to } => {
                assert!(matches!(to, Addressee::Nym(t) if t.id == n.id));
                assert_eq!(blocks, Blocks::Set(active.to_vec()), "the whole set, for the 6.2 selection");
                assert!(encrypt, "cryptrecv");
                assert_eq!(from, "send@nym.example", "the same service address");
                assert_eq!(address, "quill@nym.example");
                assert_eq!((subject.as_str(), text.as_str()), ("Message sent", "Sent.\n"));
                assert_eq!(reply_to, None);
            }
            other => panic!("not through the blocks: {other:?}"),
        }
    }

    #[test]
    fn channel_rule_without_cryptrecv_the_notice_goes_in_clear() {
        let k = Kit::new();
        let mut n = k.nym("quill");
        n.active_blocks = 1;
        n.flags &= !flag::CRYPTRECV;
        let post = notice_to(&n, Service::Config, "Nym inactive", "x\n".into());
        assert!(matches!(apply(post, &[block("a@x.example")]), Post::ViaBlocks { encrypt: false, .. }));
    }

    #[test]
    fn channel_rule_nym_without_active_blocks_stays_on_aam() {
        let k = Kit::new();
        let mut n = k.nym("zax");
        // Only a pending set: alt.anonymous.messages until it is confirmed.
        n.pending_blocks = 1;
        let post = notice_to(&n, Service::Send, "Message not sent", "x\n".into());
        assert_eq!(wants_blocks(&post), None);
        assert!(matches!(apply(post, &[]), Post::Notice { .. }));
    }

    #[test]
    fn channel_rule_blocks_dropped_meanwhile_leave_the_notice_on_aam() {
        let k = Kit::new();
        let mut n = k.nym("quill");
        n.active_blocks = 1;
        let post = notice_to(&n, Service::Config, "Nym key expires soon", "x\n".into());
        assert_eq!(wants_blocks(&post), Some(n.id));
        assert!(matches!(apply(post, &[]), Post::Notice { .. }), "no blocks in the store any more");
    }

    #[test]
    fn channel_rule_leaves_other_posts_alone() {
        let k = Kit::new();
        let cert = Box::new(k.cert.clone());
        let to_key = Post::Notice {
            to: Addressee::Key { cert, wrap: Wrapping::default() },
            from: "config@nym.example".into(),
            address: "new@nym.example".into(),
            subject: "Nym not created".into(),
            text: "x\n".into(),
        };
        assert_eq!(wants_blocks(&to_key), None, "a key that is no nym has no channel yet");
        assert!(matches!(apply(to_key, &[block("a@x.example")]), Post::Notice { .. }));
        let pending = Post::ViaBlocks {
            to: Addressee::Nym(Box::new(k.nym("quill"))),
            blocks: Blocks::One(block("p@x.example")),
            encrypt: true,
            from: "config@nym.example".into(),
            address: "quill@nym.example".into(),
            subject: "s".into(),
            text: "t".into(),
            reply_to: Some("confirm+00@nym.example".into()),
        };
        assert_eq!(wants_blocks(&pending), None);
        match apply(pending, &[block("a@x.example")]) {
            Post::ViaBlocks { blocks, reply_to, .. } => {
                assert_eq!(blocks, Blocks::One(block("p@x.example")), "its own blocks kept");
                assert!(reply_to.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
}
