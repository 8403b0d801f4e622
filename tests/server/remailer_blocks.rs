//! Reply blocks through the Type I engine (REPLY-BLOCKS.md 6.1 and 7.2)
//! through the real binary: the local run of a nym's block at creation,
//! a first level encrypted to our own key, and the 6.1 checks of supplied
//! blocks before anything applies.

use super::remailer::{db, field, layer, sent, D};
use crate::util::*;
use std::fs;

/// A nym created by a `Config:` request with `block` as its reply block;
/// the server, its holder's GnuPG, and deliver's log.
fn created_with_block(block: impl FnOnce(&Gpg) -> String) -> (Server, Gpg, String) {
    let s = Server::new(&[D]);
    s.set("mail", "transport", "\"spool\"");
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("quill@nym.example");
    let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
    let text = format!(
        "Config:\nFrom: quill\nNym-Commands: create +acksend\nPublic-Key:\n{key}Reply-Block:\n{}",
        block(&g)
    );
    let armored = g.sign_encrypt("config@nym.example", "quill@nym.example", text.as_bytes());
    let mut req = b"From: a@outside.example\nTo: config@nym.example\nSubject: r\n\n".to_vec();
    req.extend(armored);
    let (code, log) = s.deliver_logged("config@nym.example", &req);
    assert_eq!(code, 0, "{log}");
    (s, g, log)
}

/// The confirmation as the first hop got it: the nym's payload, opened.
fn first_hop_payload(g: &Gpg, m: &str) -> String {
    let body = body_of(m);
    let at = body.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let o = g.decrypt(&body.as_bytes()[at..]);
    assert!(o.ok && o.stderr.contains("Good signature"), "{}", o.stderr);
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_reply_block_run_sends_the_confirmation_to_the_first_hop() {
    // The block's first level is run here (7.2): pgp_only and middleman
    // do not apply, and the remailer need not be enabled.
    let (s, g, log) =
        created_with_block(|_| "::\nAnon-To: hop1@box.test\n\n##\nSubject: tag-block\n\n".into());
    assert!(log.contains("event=reply_block outcome=remailed count=1"), "{log}");
    assert!(log.contains("event=reply_block outcome=queued count=1"), "{log}");
    let out = sent(&s);
    assert_eq!(out.len(), 1, "{out:?}");
    let (from, to, m) = &out[0];
    assert_eq!((from.as_str(), to.clone()), ("nobody@nym.example", vec!["hop1@box.test".to_string()]));
    assert_eq!(field(m, "Subject"), Some("tag-block"));
    assert_eq!(field(m, "From"), Some("Anonymous <nobody@nym.example>"));
    assert!(!m.contains("quill"), "the first hop learns nothing of the nym: {m}");
    assert!(first_hop_payload(&g, m).contains("Reply-To: confirm+"));
    assert!(s.articles().is_empty());
}

#[test]
fn a_reply_block_layer_for_our_own_key_is_opened_in_the_local_run() {
    // The first level itself encrypted to this server (the key is read
    // from the home for it): what it names is the destination.
    let (s, g, log) = created_with_block(|g| format!("{}\n", layer(g, "::\nAnon-To: hop2@box.test\n\n")));
    assert!(log.contains("event=reply_block outcome=remailed count=1"), "{log}");
    let out = sent(&s);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].1, vec!["hop2@box.test".to_string()]);
    assert!(first_hop_payload(&g, &out[0].2).contains("Reply-To: confirm+"));
}

fn nyms(s: &Server) -> i64 {
    db(s).query_row("SELECT COUNT(*) FROM nyms", [], |r| r.get(0)).unwrap()
}

#[test]
fn supplied_blocks_are_checked_by_the_engine_before_anything_applies() {
    // A clear exit back at the nym itself: refused, and no nym made.
    let (s, g, log) = created_with_block(|_| "::\nAnon-To: quill@nym.example\n\n".into());
    assert!(log.contains("event=config outcome=refused"), "{log}");
    assert_eq!(nyms(&s), 0);
    // The refusal goes (only) through that first supplied block, so to the
    // nym's address, which does not exist: the MTA refuses it there.
    let out = sent(&s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, vec!["quill@nym.example".to_string()]);
    assert!(first_hop_payload(&g, &out[0].2).contains("[reply-block-loop]"));
    // No destination at all; an undecryptable layer.
    let (s, _, log) = created_with_block(|_| "nothing here\n\n".into());
    assert!(log.contains("outcome=refused"), "{log}");
    assert_eq!((nyms(&s), sent(&s).len()), (0, 0), "an invalid block carries no reply");
    // A destination on the block list: refused, and the reply is not
    // sent there either.
    let (s, _, log) = created_with_block(|_| "::\nAnon-To: alice@box.test\n\n".into());
    assert!(log.contains("outcome=created"), "{log}");
    assert_eq!(sent(&s).len(), 1);
    let list = s.dir.path().join("blocklist");
    fs::write(&list, "@quiet.test\n").unwrap();
    s.set("send", "blocklist", &format!("{:?}", list.display().to_string()));
    let g2 = Gpg::new();
    g2.import(&s.key_export());
    g2.gen_modern("pen@nym.example");
    let key = String::from_utf8(g2.export("pen@nym.example")).unwrap();
    let text = format!("Config:\nFrom: pen\nNym-Commands: create\nPublic-Key:\n{key}Reply-Block:\n::\nAnon-To: x@quiet.test\n\n");
    let mut req = b"From: a@outside.example\nTo: config@nym.example\nSubject: r\n\n".to_vec();
    req.extend(g2.sign_encrypt("config@nym.example", "pen@nym.example", text.as_bytes()));
    let (code, log) = s.deliver_logged("config@nym.example", &req);
    assert_eq!(code, 0);
    assert!(
        log.contains("outcome=refused") && log.contains("event=reply_block outcome=destination_blocked"),
        "{log}"
    );
    assert_eq!((nyms(&s), sent(&s).len()), (1, 0));
}
