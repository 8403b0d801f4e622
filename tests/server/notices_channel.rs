//! The channel rule for the server's own notices (REPLY-BLOCKS.md 2, 7.1,
//! 8.2, 8.4), against the real binary and real GnuPG: a nym with a
//! confirmed reply block gets send@ acknowledgements and refusals, answers
//! to Zax-format config@ requests and the timer's lifecycle notices
//! through its block (an engine input, and the engine's mail to the
//! block's first hop in the mail spool), and nothing of them on
//! alt.anonymous.messages; a nym without active blocks (a Zax nym, or one
//! whose only set is pending) gets all of them on alt.anonymous.messages.

use super::inblocks::{files_in, Nym, BLOCK};
use crate::util::*;
use std::fs;

const DAY: i64 = 86400;

/// The mails in the spool addressed (envelope) to `to`.
fn mails_to(s: &Server, to: &str) -> Vec<String> {
    let line = format!("X-Nymgate-Envelope-To: {to}\n");
    s.mails().into_iter().filter(|m| m.contains(&line)).collect()
}

/// `text` signed by the holder and encrypted to `service@nym.example`,
/// as a mail from a remailer.
fn signed_mail(g: &Gpg, signer: &str, service: &str, text: &str) -> Vec<u8> {
    let armored = g.sign_encrypt(&format!("{service}@nym.example"), signer, text.as_bytes());
    let mut m = format!(
        "From: anon@remailer.example\nTo: {service}@nym.example\nSubject: r\nMessage-ID: <{}@t>\n\n",
        rand_hex()
    )
    .into_bytes();
    m.extend_from_slice(&armored);
    m
}

/// `flush` at `t` with the engine-input spool; its log.
fn flush_at(s: &Server, spool: &std::path::Path, t: i64) -> String {
    let mut c = s.cmd();
    c.arg("flush")
        .env("NYMGATE_TEST_NOW", t.to_string())
        .env("NYMGATE_LOG_STDERR", "1")
        .env("NYMGATE_BLOCK_SPOOL_FOR_TEST", spool);
    let out = run(&mut c, None);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "flush failed: {log}");
    log
}

fn expires(n: &Nym) -> i64 {
    n.db("SELECT expires FROM nyms")
}

/// The one notice that went through the block since the last `clear`:
/// the engine input starts with the block, its payload is signed by the
/// server and encrypted to the nym (cryptrecv), and the engine mailed it
/// to the block's first hop. Returns the decrypted notice.
fn one_notice_through_the_block(n: &Nym, hop_mails_before: usize) -> String {
    let inputs = n.inputs();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert!(inputs[0].starts_with(BLOCK), "{}", inputs[0]);
    assert!(inputs[0][BLOCK.len()..].starts_with("-----BEGIN PGP MESSAGE-----"), "{}", inputs[0]);
    let hop = mails_to(&n.s, "quill@box.example");
    assert_eq!(hop.len(), hop_mails_before + 1, "the engine mailed the first hop");
    assert!(hop.last().unwrap().contains("-----BEGIN PGP MESSAGE-----"));
    n.open_or_plain(&inputs[0])
}

#[test]
fn send_acknowledgements_and_refusals_go_through_a_confirmed_block() {
    let n = Nym::new("+acksend", &format!("Reply-Block:\n{BLOCK}"), |_| {});
    let arts = n.s.articles().len();
    let units = n.db::<i64>("SELECT unit_count FROM nyms");
    let hop = mails_to(&n.s, "quill@box.example").len();

    // (a) A nym.alias.net-format send@ with acksend: the message leaves,
    // the acknowledgement comes through the block.
    let msg = "From: quill\nTo: bob@example.org\nSubject: tag-s1\n\nhello bob\n";
    let (code, log) = n.deliver(
        "send@nym.example",
        "anon@remailer.example",
        &signed_mail(&n.g, "quill@nym.example", "send", msg),
    );
    assert_eq!(code, 0, "{log}");
    let out = mails_to(&n.s, "bob@example.org");
    assert_eq!(out.len(), 1, "the message itself");
    assert!(out[0].contains("hello bob"));
    let ack = one_notice_through_the_block(&n, hop);
    assert!(ack.contains("From: send@nym.example"), "{ack}");
    assert!(ack.contains("Subject: Message sent") && ack.contains("tag-s1"), "{ack}");
    assert!(ack.contains("bob@example.org"), "{ack}");
    assert_eq!(n.s.articles().len(), arts, "nothing new on alt.anonymous.messages");
    assert!(log.contains("event=reply_block outcome=queued count=1"), "{log}");

    // A request that is not sent (a Config: request to send@): the
    // refusal comes the same way.
    n.clear();
    let (code, log) = n.deliver(
        "send@nym.example",
        "anon@remailer.example",
        &signed_mail(&n.g, "quill@nym.example", "send", "Config:\nFrom: quill\n"),
    );
    assert_eq!(code, 0, "{log}");
    let refusal = one_notice_through_the_block(&n, hop + 1);
    assert!(refusal.contains("Subject: Message not sent") && refusal.contains("config@nym.example"));
    assert_eq!(mails_to(&n.s, "bob@example.org").len(), 1, "nothing more sent");
    assert_eq!(n.s.articles().len(), arts, "nothing new on alt.anonymous.messages");
    // The server's own notices are outside the unit quota.
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), units);
}

#[test]
fn zax_format_config_replies_go_through_a_confirmed_block() {
    let n = Nym::new("", &format!("Reply-Block:\n{BLOCK}"), |_| {});
    let arts = n.s.articles().len();
    let hop = mails_to(&n.s, "quill@box.example").len();

    // (b) A Zax-format option change, signed by the nym.
    let (code, log) = n.deliver(
        "config@nym.example",
        "anon@remailer.example",
        &signed_mail(&n.g, "quill@nym.example", "config", "subject: from the paper\n"),
    );
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=changed"), "{log}");
    let p = one_notice_through_the_block(&n, hop);
    assert!(p.contains("From: config@nym.example") && p.contains("Subject: Nym options changed"), "{p}");
    assert_eq!(n.s.articles().len(), arts, "nothing new on alt.anonymous.messages");

    // A Zax key refresh of the existing nym (the key with a new expiry
    // date, unsigned): "Nym key refreshed" through the block as well.
    n.clear();
    let fpr = n.g.fingerprint("quill@nym.example");
    n.g.ok(&["--passphrase", "", "--quick-set-expire", &fpr, "2y"], b"");
    n.g.ok(&["--passphrase", "", "--quick-set-expire", &fpr, "2y", "*"], b"");
    let req = n.g.creation_request("quill@nym.example", "nym.example", "");
    let mut m = b"From: anon@remailer.example\nTo: config@nym.example\nSubject: k\n\n".to_vec();
    m.extend_from_slice(&req);
    let (code, log) = n.deliver("config@nym.example", "anon@remailer.example", &m);
    assert_eq!(code, 0, "{log}");
    let p = one_notice_through_the_block(&n, hop + 1);
    assert!(p.contains("From: config@nym.example") && p.contains("Subject: Nym key refreshed"), "{p}");
    assert_eq!(n.s.articles().len(), arts, "nothing new on alt.anonymous.messages");
}

#[test]
fn lifecycle_notices_of_the_timer_go_through_a_confirmed_block() {
    let n = Nym::new("", &format!("Reply-Block:\n{BLOCK}"), |_| {});
    let arts = n.s.articles().len();
    let hop = mails_to(&n.s, "quill@box.example").len();
    let now = nymgate::store::now();

    // (c) The key expiry warning of the timer (`flush`).
    let log = flush_at(&n.s, &n.spool, expires(&n) - 13 * DAY);
    assert!(log.contains("outcome=expiry_warned count=1"), "{log}");
    let p = one_notice_through_the_block(&n, hop);
    assert!(p.contains("From: config@nym.example") && p.contains("Subject: Nym key expires soon"), "{p}");
    assert!(p.contains("quill@nym.example expires on"), "{p}");
    assert!(log.contains("event=reply_block outcome=queued count=1"), "{log}");

    // The inactivity warning: the rule starts counting at the first flush
    // that sees it on (10 days ago here).
    n.clear();
    n.s.set("lifecycle", "inactive_warn_days", "90");
    n.s.set("lifecycle", "inactive_delete_days", "120");
    flush_at(&n.s, &n.spool, now - 10 * DAY);
    assert!(n.inputs().is_empty(), "nothing due yet");
    let log = flush_at(&n.s, &n.spool, now + 80 * DAY);
    assert!(log.contains("outcome=inactive_warned count=1"), "{log}");
    let p = one_notice_through_the_block(&n, hop + 1);
    assert!(p.contains("From: config@nym.example") && p.contains("Subject: Nym inactive"), "{p}");
    assert_eq!(n.s.articles().len(), arts, "nothing new on alt.anonymous.messages");
}

#[test]
fn a_nym_without_active_blocks_gets_every_notice_on_aam() {
    // (d) A Zax nym: the acknowledgement, the config@ reply and the
    // expiry warning are articles, and nothing goes to the engine.
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let spool = s.dir.path().join("blocks");
    fs::create_dir_all(&spool).unwrap();
    let deliver = |rcpt: &str, raw: &[u8]| {
        let mut c = s.cmd();
        c.env("NYMGATE_BLOCK_SPOOL_FOR_TEST", &spool).args(["deliver", "--recipient", rcpt]);
        run(&mut c, Some(raw)).status.code()
    };
    let texts = || -> Vec<String> {
        s.articles_for_hsub("panda")
            .iter()
            .map(|a| String::from_utf8_lossy(&g.decrypt(a.body.as_bytes()).stdout).into_owned())
            .collect()
    };
    assert_eq!(texts().len(), 1, "the creation notice");
    let msg = "To: bob@example.org\nSubject: tag-z1\n\nhello\n";
    assert_eq!(deliver("send@nym.example", &signed_mail(&g, "alice@nym.example", "send", msg)), Some(0));
    assert!(texts().iter().any(|t| t.contains("Subject: Message sent") && t.contains("tag-z1")));
    assert_eq!(
        deliver("config@nym.example", &signed_mail(&g, "alice@nym.example", "config", "subject: x\n")),
        Some(0)
    );
    assert!(texts().iter().any(|t| t.contains("Subject: Nym options changed")));
    let e: i64 = {
        let c = rusqlite::Connection::open(s.home.join("nymgate.db")).unwrap();
        c.query_row("SELECT expires FROM nyms", [], |r| r.get(0)).unwrap()
    };
    flush_at(&s, &spool, e - 13 * DAY);
    assert!(texts().iter().any(|t| t.contains("Subject: Nym key expires soon")));
    assert_eq!(texts().len(), 4);
    assert!(files_in(&spool).is_empty(), "nothing through the engine");

    // A Config: nym whose only set is still pending may send; its
    // acknowledgement follows the channel rule: alt.anonymous.messages.
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    let spool = s.dir.path().join("blocks");
    fs::create_dir_all(&spool).unwrap();
    g.import(&s.key_export());
    g.gen_modern("quill@nym.example");
    let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
    let n = Nym { s, g, spool };
    n.config(&format!(
        "Config:\nFrom: quill\nNym-Commands: create +acksend\nPublic-Key:\n{key}Reply-Block:\n{BLOCK}"
    ));
    n.clear();
    let arts = n.s.articles().len();
    let hop = mails_to(&n.s, "quill@box.example").len();
    let msg = "From: quill\nTo: bob@example.org\nSubject: tag-p1\n\nhello\n";
    let (code, log) = n.deliver(
        "send@nym.example",
        "anon@remailer.example",
        &signed_mail(&n.g, "quill@nym.example", "send", msg),
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(mails_to(&n.s, "bob@example.org").len(), 1, "a pending nym may send");
    assert!(n.inputs().is_empty(), "a pending set carries nothing but its confirmation");
    assert_eq!(mails_to(&n.s, "quill@box.example").len(), hop);
    let arts_now = n.s.articles();
    assert_eq!(arts_now.len(), arts + 1, "the acknowledgement on alt.anonymous.messages");
    let o = n.g.decrypt(arts_now.last().unwrap().body.as_bytes());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Subject: Message sent"), "{}", o.stderr);
}
