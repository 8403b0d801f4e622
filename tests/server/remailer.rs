//! The Type I remailer at `remailer@D` (REPLY-BLOCKS.md section 10)
//! through the real binary: messages made by hand with real GnuPG, what
//! leaves in the mail spool, the exit policy, the Subject requests, a
//! reply block's local run, and hostile input (each a silent drop, exit 0,
//! with its log word, and bounded).

use crate::util::chain::split_envelope;
use crate::util::*;
use std::fs;

pub(crate) const D: &str = "nym.example";
pub(crate) const R: &str = "remailer@nym.example";

/// A server with the remailer on, mail to the spool, and a GnuPG that
/// knows its key.
pub(crate) fn remailer() -> (Server, Gpg) {
    let s = Server::new(&[D]);
    s.set("mail", "transport", "\"spool\"");
    s.set("remailer", "enabled", "true");
    let g = Gpg::new();
    g.import(&s.key_export());
    (s, g)
}

/// Open middleman and pgp_only (an exit that takes clear messages).
fn open(s: &Server) {
    s.set("remailer", "middleman", "false");
    s.set("remailer", "pgp_only", "false");
}

/// `::` + `Encrypted: PGP` + `plain` encrypted by gpg to the server key.
pub(crate) fn layer(g: &Gpg, plain: &str) -> String {
    // By the remailer's own User ID, as a Type I client finds the key.
    let armored = g.encrypt(R, plain.as_bytes());
    format!("::\nEncrypted: PGP\n\n{}", String::from_utf8(armored).unwrap())
}

/// A mail from outside to remailer@ with this body (and a header that
/// must not survive).
pub(crate) fn mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Received: from secret-host.outside.example by mx\nFrom: Sender <sender@outside.example>\nTo: {R}\nSubject: {subject}\nMessage-ID: <{}@outside.example>\n\n{body}",
        rand_hex()
    )
    .into_bytes()
}

/// The spooled mails: (envelope from, envelope to, mail).
pub(crate) fn sent(s: &Server) -> Vec<(String, Vec<String>, String)> {
    s.take_mails().iter().map(|m| split_envelope(m)).collect()
}

fn header_names(mail: &str) -> Vec<String> {
    let (h, _) = mail.split_once("\n\n").unwrap();
    h.lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

pub(crate) fn field<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let (h, _) = mail.split_once("\n\n")?;
    h.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

pub(crate) fn db(s: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        s.home.join("nymgate.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

fn outbox_rows(s: &Server) -> i64 {
    db(s).query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The armored message after a `**` line, decrypted with a passphrase.
fn peel(g: &Gpg, text: &str, pass: &str) -> String {
    let at = text.find("**\n-----BEGIN PGP MESSAGE-----").unwrap_or_else(|| panic!("no ** layer: {text}"));
    let o = g.decrypt_pass(&text.as_bytes()[at + 3..], pass);
    assert!(o.ok, "{}", o.stderr);
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_message_made_by_hand_with_gpg_leaves_with_the_type1_header() {
    let (s, g) = remailer();
    s.set("remailer", "middleman", "false");
    let second = layer(&g, "::\nAnon-To: other@box.test\n\nsegment two\n");
    let inner = format!(
        "::\nAnon-To: quill@box.test\nLatent-Time: +0:00\nEncrypt-Key: k1\nCutmarks: --cut--\n\n\
         ##\nSubject: tag-7f3a\nReply-To: quill@nym.example\nFrom: me@home.example\nTo: else@x.example\n\
         Received: from home.example\n\nclear part\n**\nsecret part\n--cut--\n{second}"
    );
    let (code, log) = s.deliver_logged(R, &mail("anything", &layer(&g, &inner)));
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("event=remailer outcome=remailed"), "{log}");
    assert!(log.contains("event=remailer_segment outcome=remailed count=1"), "{log}");
    let mut out = sent(&s);
    out.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(out.len(), 2, "{out:?}");
    let (from, to, m) = &out[1];
    assert_eq!((from.as_str(), to.clone()), ("nobody@nym.example", vec!["quill@box.test".to_string()]));
    // The header of 10.8, Date set at hand-off, the accepted ## field.
    assert_eq!(
        header_names(m),
        ["Date", "From", "To", "Subject", "Comments", "Message-ID", "Reply-To"],
        "{m}"
    );
    assert_eq!(field(m, "From"), Some("Anonymous <nobody@nym.example>"));
    assert_eq!(field(m, "To"), Some("quill@box.test"));
    assert_eq!(field(m, "Subject"), Some("tag-7f3a"));
    assert_eq!(field(m, "Reply-To"), Some("quill@nym.example"));
    assert_eq!(
        field(m, "Comments"),
        Some("This message was remailed anonymously. Report abuse to abuse@nym.example")
    );
    let id = field(m, "Message-ID").unwrap();
    let hexpart = id.strip_prefix('<').unwrap().strip_suffix("@nym.example>").unwrap();
    assert!(hexpart.len() == 32 && hexpart.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    for gone in ["secret-host", "sender@outside", "me@home", "else@x", "Received", "outside.example"] {
        assert!(!m.contains(gone), "{gone} survived: {m}");
    }
    // Encrypt-Key: clear before **, the rest for the passphrase only.
    let body = body_of(m);
    assert!(body.starts_with("clear part\n**\n-----BEGIN PGP MESSAGE-----\n"), "{body}");
    assert!(!body.contains("secret part"));
    assert_eq!(peel(&g, &body, "k1"), "secret part\n");
    assert!(!g.decrypt_pass(&body.as_bytes()[body.find("-----BEGIN").unwrap()..], "wrong").ok);
    // The cut segment was a message of its own, with its own layer.
    let (_, to2, m2) = &out[0];
    assert_eq!(to2, &vec!["other@box.test".to_string()]);
    assert_eq!(body_of(m2), "segment two\n");
    assert_ne!(field(m2, "Message-ID"), field(m, "Message-ID"));
}

/// sq 0.27 reads passwords from the terminal only, so sq is asked for
/// the packets (the form Mixmaster's S2K code knows, 10.5) and gpg, in
/// the test above, for the plaintext.
#[test]
fn the_encrypt_key_layer_is_the_packet_form_of_10_5_for_sq() {
    let (s, g) = remailer();
    s.set("remailer", "middleman", "false");
    let m = mail("x", &layer(&g, "::\nAnon-To: q@box.test\nEncrypt-Key: pass phrase\n\nhidden\n"));
    assert_eq!(s.deliver_raw(R, &m), 0);
    let (_, _, m) = sent(&s).remove(0);
    let body = body_of(&m);
    let armor = &body[body.find("-----BEGIN").unwrap()..];
    let out = run(std::process::Command::new("sq").args(["packet", "dump"]), Some(armor.as_bytes()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8_lossy(&out.stdout).into_owned();
    let skesk = dump.split("Sym. Encrypted and Integrity Protected Data Packet").collect::<Vec<_>>();
    assert_eq!(skesk.len(), 2, "one SKESK, one SEIPD: {dump}");
    for want in [
        "Symmetric-Key Encrypted Session Key Packet",
        "Version: 4",
        "Symmetric algo: AES-128",
        "S2K: Iterated",
        "Hash: SHA1",
        "Hash bytes: 65536",
    ] {
        assert!(skesk[0].contains(want), "{want}: {dump}");
    }
    assert!(skesk[1].contains("Version: 1"), "SEIPD v1: {dump}");
    assert_eq!(peel(&g, &body, "pass phrase"), "hidden\n");
}

#[test]
fn during_a_key_rotation_layers_for_the_previous_key_still_open() {
    let (s, g) = remailer();
    s.set("remailer", "middleman", "false");
    // g holds the key from before the rotation.
    let out = ok(s.cmd().args(["key", "rotate"]), None);
    assert!(out.contains("new key "), "{out}");
    let (code, log) = s.deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-To: q@box.test\n\nold key\n")));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=remailed"), "{log}");
    assert_eq!(body_of(&sent(&s)[0].2), "old key\n");
}

#[test]
fn middleman_refuses_unknown_destinations_and_allows_known_ones() {
    let (s, g) = remailer();
    let known = s.dir.path().join("known");
    fs::write(&known, "# next hops\nremailer@r2.test\n$remailer{\"r3\"} = \"<mix@r3.test> cpunk pgp\";\n")
        .unwrap();
    s.set("remailer", "known_remailers", &format!("{:?}", known.display().to_string()));
    s.set("remailer", "post", "true");
    let (code, log) = s.deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-To: quill@box.test\n\nhi\n")));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=middleman_refused"), "{log}");
    let (_, log) = s.deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-Post-To: alt.test\n\nhi\n")));
    assert!(log.contains("outcome=middleman_refused"), "{log}");
    assert!(sent(&s).is_empty() && s.articles().is_empty());
    for to in ["remailer@r2.test", "mix@r3.test", "remailer@nym.example"] {
        let (code, log) = s.deliver_logged(R, &mail("x", &layer(&g, &format!("::\nAnon-To: {to}\n\nhi\n"))));
        assert_eq!(code, 0);
        assert!(log.contains("outcome=remailed"), "{to}: {log}");
        let out = sent(&s);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, vec![to.to_string()]);
    }
    // Of a mixed list, only the known recipient gets it.
    let (_, _) =
        s.deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-To: quill@box.test, remailer@r2.test\n\nhi\n")));
    assert_eq!(sent(&s)[0].1, vec!["remailer@r2.test".to_string()]);
}

#[test]
fn posts_go_to_the_news_transport_only_with_post_on() {
    let (s, g) = remailer();
    s.set("remailer", "middleman", "false");
    s.set("remailer", "blocked_groups", "[\"alt.binaries.*\"]");
    let (_, log) = s.deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-Post-To: alt.test\n\nhi\n")));
    assert!(log.contains("outcome=posting_off"), "{log}");
    s.set("remailer", "post", "true");
    let (_, log) = s.deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-Post-To: alt.binaries.x\n\nhi\n")));
    assert!(log.contains("outcome=group_blocked"), "{log}");
    assert!(s.articles().is_empty());
    let (_, log) = s.deliver_logged(
        R,
        &mail("x", &layer(&g, "::\nAnon-Post-To: alt.test\n\n##\nSubject: news\n\nposted\n")),
    );
    assert!(log.contains("outcome=remailer_posted"), "{log}");
    let a = s.articles();
    assert_eq!(a.len(), 1);
    assert!(a[0].headers.contains("Newsgroups: alt.test\n") && a[0].subject == "news", "{}", a[0].headers);
    assert!(a[0].headers.contains("From: Anonymous <nobody@nym.example>"), "{}", a[0].headers);
    assert!(!a[0].headers.contains("outside.example"));
    assert_eq!(a[0].body, "posted\n");
}

#[test]
fn pgp_only_drops_plaintext_and_without_it_clear_directives_count() {
    let (s, _g) = remailer();
    s.set("remailer", "middleman", "false");
    let (code, log) = s.deliver_logged(R, &mail("x", "::\nAnon-To: quill@box.test\n\nclear\n"));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=pgp_only_dropped"), "{log}");
    // Directives in the real header never count under pgp_only.
    let mut m = b"Anon-To: quill@box.test\n".to_vec();
    m.extend(mail("x", "clear\n"));
    let (_, log) = s.deliver_logged(R, &m);
    assert!(log.contains("outcome=pgp_only_dropped"), "{log}");
    assert!(sent(&s).is_empty());
    s.set("remailer", "pgp_only", "false");
    let (_, log) = s.deliver_logged(R, &mail("x", "::\nAnon-To: quill@box.test\n\nclear\n"));
    assert!(log.contains("outcome=remailed"), "{log}");
    let (_, log) = s.deliver_logged(R, &m);
    assert!(log.contains("outcome=remailed"), "{log}");
    let out = sent(&s);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(_, to, _)| to == &vec!["quill@box.test".to_string()]));
}

#[test]
fn remailer_off_is_67_and_absent_from_the_recipient_table() {
    let s = Server::new(&[D]);
    s.set("mail", "transport", "\"spool\"");
    assert_eq!(s.deliver_raw(R, &mail("x", "::\nAnon-To: a@box.test\n\nx\n")), 67);
    s.flush();
    let table = fs::read_to_string(s.home.join("recipients")).unwrap();
    assert!(!table.contains("remailer@nym.example "), "{table}");
    s.set("remailer", "enabled", "true");
    s.flush();
    let table = fs::read_to_string(s.home.join("recipients")).unwrap();
    assert!(table.contains("remailer@nym.example remailer@nym.example\n"), "{table}");
    // The key made by init has the remailer's User ID, and check asks for
    // it now that the remailer is served.
    let check = String::from_utf8_lossy(&s.admin(&["check"]).stdout).into_owned();
    assert!(check.contains("ok   the server key has a User ID for remailer@nym.example"), "{check}");
    assert!(s.take_mails().is_empty());
}

#[test]
fn subject_requests_are_answered_forwarded_or_dropped() {
    let (s, _g) = remailer();
    let (code, log) = s.deliver_logged(R, &mail("Remailer-Help", "please\n"));
    assert_eq!(code, 0);
    assert!(log.contains("event=help outcome=answered"), "{log}");
    let (_, to, m) = sent(&s).remove(0);
    assert_eq!(to, vec!["sender@outside.example".to_string()]);
    assert!(m.contains("Auto-Submitted: auto-replied") && m.contains("config@nym.example"), "{m}");
    let (_, log) = s.deliver_logged(R, &mail(" remailer-key ", "please\n"));
    assert!(log.contains("event=remailer_key outcome=answered"), "{log}");
    let (_, _, m) = sent(&s).remove(0);
    assert!(m.contains("$remailer{\"nym\"} = \"<remailer@nym.example> cpunk middle pgp pgponly"), "{m}");
    assert!(m.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----"), "{m}");
    // Loop protection applies as at help@.
    let mut looped = b"X-Loop: nym.example\n".to_vec();
    looped.extend(mail("remailer-conf", "x\n"));
    let (_, log) = s.deliver_logged(R, &looped);
    assert!(log.contains("outcome=reply_suppressed"), "{log}");
    assert!(sent(&s).is_empty());
    // destination-block: to the operator, as it came; nothing is blocked.
    let (_, log) = s.deliver_logged(R, &mail("destination-block", "block me@victim.example\n"));
    assert!(log.contains("event=remailer outcome=forwarded"), "{log}");
    let (_, to, m) = sent(&s).remove(0);
    assert_eq!(to, vec!["root@localhost".to_string()]);
    assert!(m.contains("block me@victim.example"), "{m}");
    // Other remailer-* requests: dropped.
    let (code, log) = s.deliver_logged(R, &mail("remailer-stats", "x\n"));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=remailer_request_dropped"), "{log}");
    assert!(sent(&s).is_empty());
}

// ---------------------------------------------------------------- hostile

#[test]
fn latent_time_far_in_the_future_is_clamped_to_max_latency() {
    let (s, g) = remailer();
    s.set("remailer", "middleman", "false");
    let before = now();
    let (code, log) = s
        .deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-To: q@box.test\nLatent-Time: +99:00\n\nlater\n")));
    let after = now();
    assert_eq!(code, 0);
    assert!(log.contains("outcome=remailed"), "{log}");
    s.flush();
    assert!(sent(&s).is_empty(), "left before its time");
    let due: i64 = db(&s).query_row("SELECT due FROM outbox", [], |r| r.get(0)).unwrap();
    assert!(due >= before + 86400 && due <= after + 86400, "due {due} not clamped to 24 h");
    // A smaller max_latency clamps harder; 0 sends at once.
    s.set("remailer", "max_latency", "0");
    let (_, _) =
        s.deliver_logged(R, &mail("x", &layer(&g, "::\nAnon-To: q@box.test\nLatent-Time: +99:00\n\nnow\n")));
    let out = sent(&s);
    assert_eq!(out.len(), 1);
    assert_eq!(body_of(&out[0].2), "now\n");
    assert_eq!(outbox_rows(&s), 1);
}

#[test]
fn a_cutmarks_flood_makes_at_most_max_cut_segments_messages() {
    let (s, _g) = remailer();
    open(&s);
    let seg = "::\nAnon-To: q@box.test\nCutmarks: --\n\nx\n--\n";
    let body = format!("::\nAnon-To: q@box.test\nCutmarks: --\n\nfirst\n--\n{}", seg.repeat(500));
    let (code, log) = s.deliver_logged(R, &mail("x", &body));
    assert_eq!(code, 0);
    assert!(log.contains("event=remailer_segment outcome=over_max_cut_segments"), "{log}");
    assert_eq!(sent(&s).len(), 4);
    s.set("remailer", "max_cut_segments", "2");
    let (_, _) = s.deliver_logged(R, &mail("x", &body));
    assert_eq!(sent(&s).len(), 2);
}

#[test]
fn layers_nested_deeper_than_max_layers_are_dropped() {
    let (s, g) = remailer();
    s.set("remailer", "middleman", "false");
    s.set("remailer", "max_layers", "3");
    let nest = |n: usize| {
        let mut t = "::\nAnon-To: q@box.test\n\ncore\n".to_string();
        for _ in 0..n {
            t = layer(&g, &t);
        }
        t
    };
    let (_, log) = s.deliver_logged(R, &mail("x", &nest(3)));
    assert!(log.contains("outcome=remailed"), "{log}");
    assert_eq!(body_of(&sent(&s)[0].2), "core\n");
    let (code, log) = s.deliver_logged(R, &mail("x", &nest(4)));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=too_many_layers"), "{log}");
    assert!(sent(&s).is_empty());
}

#[test]
fn a_message_over_the_size_limit_is_dropped_silently() {
    let (s, _g) = remailer();
    open(&s);
    s.set("limits", "max_message_size", "65536");
    let body = format!("::\nAnon-To: q@box.test\n\n{}", "x".repeat(70_000));
    let (code, log) = s.deliver_logged(R, &mail("x", &body));
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("event=remailer outcome=message_too_large"), "{log}");
    assert!(sent(&s).is_empty());
    assert_eq!(outbox_rows(&s), 0);
}

#[test]
fn garbage_pgp_and_layers_not_for_us_are_dropped() {
    let (s, g) = remailer();
    s.set("remailer", "middleman", "false");
    let bad = "::\nEncrypted: PGP\n\n-----BEGIN PGP MESSAGE-----\n\nhQEMA////garbage\x01\x02==\n-----END PGP MESSAGE-----\n";
    let (code, log) = s.deliver_logged(R, &mail("x", bad));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=layer_undecryptable"), "{log}");
    // A passphrase-only layer (what Encrypt-Key writes) is not for us.
    let sym = g.ok(&["--armor", "--symmetric", "--passphrase", "p"], b"::\nAnon-To: q@box.test\n\nx\n");
    let (_, log) = s
        .deliver_logged(R, &mail("x", &format!("::\nEncrypted: PGP\n\n{}", String::from_utf8(sym).unwrap())));
    assert!(log.contains("outcome=layer_undecryptable"), "{log}");
    let (_, log) = s.deliver_logged(R, &mail("x", "::\nEncrypted: PGP\n\nno armor at all\n"));
    assert!(log.contains("outcome=layer_without_message"), "{log}");
    let mut binary = b"::\nEncrypted: PGP\n\n".to_vec();
    binary.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let (code, _) = s.deliver_logged(R, &mail_bytes(&binary));
    assert_eq!(code, 0);
    assert!(sent(&s).is_empty());
}

fn mail_bytes(body: &[u8]) -> Vec<u8> {
    let mut m = mail("x", "");
    m.extend_from_slice(body);
    m
}

#[test]
fn pasted_fields_on_the_deny_list_never_leave() {
    let (s, _g) = remailer();
    open(&s);
    let denied = [
        "From: forged@victim.example",
        "Sender: s@victim.example",
        "To: t@victim.example",
        "Cc: c@victim.example",
        "Received: from victim.example",
        "Message-ID: <chosen@victim.example>",
        "Date: Mon, 1 Jan 2001 00:00:00 +0000",
        "Resent-From: r@victim.example",
        "Path: victim.example!x",
        "Return-Path: <rp@victim.example>",
        "DKIM-Signature: v=1; d=victim.example",
        "Errors-To: e@victim.example",
    ];
    let body = format!(
        "::\nAnon-To: q@box.test\n\n##\nSubject: kept\nX-Custom: kept too\n{}\n\nbody\n",
        denied.join("\n")
    );
    let (_, log) = s.deliver_logged(R, &mail("x", &body));
    assert!(log.contains("outcome=remailed"), "{log}");
    let (_, _, m) = sent(&s).remove(0);
    assert!(!m.contains("victim.example"), "{m}");
    assert_eq!(field(&m, "Subject"), Some("kept"));
    assert_eq!(field(&m, "X-Custom"), Some("kept too"));
    assert_eq!(header_names(&m).iter().filter(|n| n.as_str() == "From").count(), 1, "{m}");
    // A pasted Control: drops the whole message.
    let (code, log) =
        s.deliver_logged(R, &mail("x", "::\nAnon-To: q@box.test\n\n##\nControl: cancel <a@b>\n\nx\n"));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=pasted_field_dropped"), "{log}");
    assert!(sent(&s).is_empty());
}
