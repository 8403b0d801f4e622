//! A chain of Type I hops on one machine (REPLY-BLOCKS.md section 13):
//! `R1` (`r1.test`: middleman, pgp_only, known_remailers naming
//! `remailer@r2.test`) and `R2` (`r2.test`: neither), each its own
//! nymgate instance with its own key, joined by the router of
//! tests/util/chain.rs, ending at a capture for `box.test`. The onion is
//! built inside out with real gpg, an `Encrypt-Key` per hop.

use crate::util::chain::{Chain, Hop};
use crate::util::Gpg;
use std::fs;

const PAYLOAD: &str = "the payload: only quill reads this\n";

/// R1 and R2 as section 13 sets them up, and a GnuPG with both keys.
fn chain() -> (Chain, Gpg) {
    let mut c = Chain::new();
    let r1 = c.add("r1.test", true);
    let known = r1.dir.path().join("known-remailers");
    fs::write(&known, "remailer@r2.test\n").unwrap();
    r1.set("remailer", "known_remailers", &format!("{:?}", known.display().to_string()));
    let r2 = c.add("r2.test", true);
    r2.set("remailer", "middleman", "false");
    r2.set("remailer", "pgp_only", "false");
    let g = Gpg::new();
    g.import(&c.server("r1.test").key_export());
    g.import(&c.server("r2.test").key_export());
    (c, g)
}

fn pgp(g: &Gpg, domain: &str, plain: &str) -> String {
    String::from_utf8(g.encrypt(&format!("remailer@{domain}"), plain.as_bytes())).unwrap()
}

/// R1's layer of section 13, encrypted to R1: on to R2 with `k1`, and
/// inside it R2's layer, to the box with `k2` and the `##` Subject.
fn r1_layer(g: &Gpg) -> String {
    let p2 = "::\nAnon-To: quill@box.test\nEncrypt-Key: k2\n\n##\nSubject: tag-7f3a\n\n";
    let p1 = format!(
        "::\nAnon-To: remailer@r2.test\nEncrypt-Key: k1\n\n::\nEncrypted: PGP\n\n{}\n**\n",
        pgp(g, "r2.test", p2)
    );
    pgp(g, "r1.test", &p1)
}

/// The two-hop onion of section 13, entered at R1, with the payload.
fn onion(g: &Gpg) -> String {
    format!("::\nEncrypted: PGP\n\n{}\n**\n{PAYLOAD}", r1_layer(g))
}

/// Decrypt the armored message after the first `**` line with `pass`.
fn peel(g: &Gpg, text: &str, pass: &str) -> String {
    let at = text.find("**\n-----BEGIN PGP MESSAGE-----").unwrap_or_else(|| panic!("no ** layer in {text}"));
    let o = g.decrypt_pass(&text.as_bytes()[at + 3..], pass);
    assert!(o.ok, "{}", o.stderr);
    String::from_utf8(o.stdout).unwrap()
}

/// What is left after `**` lines (and the blank lines around them).
fn skip_stars(text: &str) -> String {
    let mut t = text;
    loop {
        let trimmed = t.trim_start_matches('\n');
        match trimmed.strip_prefix("**\n") {
            Some(rest) => t = rest,
            None => return trimmed.to_string(),
        }
    }
}

#[test]
fn a_gpg_onion_travels_r1_and_r2_to_the_box_changing_at_each_hop() {
    let (mut c, g) = chain();
    let msg = format!(
        "Received: from sender-host.outside.test\nFrom: Sender <sender@outside.test>\nTo: remailer@r1.test\nSubject: hello\nMessage-ID: <first@outside.test>\n\n{}",
        onion(&g)
    );
    let (code, log) = c.inject("remailer@r1.test", "sender@outside.test", msg.as_bytes());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("event=remailer outcome=remailed"), "{log}");
    let hops = c.route(0);
    // R1 -> R2, then R2 -> the box: nothing else moved.
    let path: Vec<(&str, &str)> =
        hops.iter().map(|h| (h.from_instance.as_str(), h.env_to.as_str())).collect();
    assert_eq!(path, [("r1.test", "remailer@r2.test"), ("r2.test", "quill@box.test")], "{hops:#?}");
    assert!(hops[0].log.contains("event=remailer outcome=remailed"), "{}", hops[0].log);
    let (mid, last): (&Hop, &Hop) = (&hops[0], &hops[1]);
    assert_eq!(c.captured().len(), 1);
    // Each hop sends from its own nobody@ and names only itself.
    assert_eq!(mid.env_from, "nobody@r1.test");
    assert_eq!(last.env_from, "nobody@r2.test");
    assert_eq!(last.field("From").as_deref(), Some("Anonymous <nobody@r2.test>"));
    assert_eq!(last.field("Subject").as_deref(), Some("tag-7f3a"));
    let id = last.field("Message-ID").unwrap();
    let hexpart =
        id.strip_prefix('<').and_then(|i| i.strip_suffix("@r2.test>")).unwrap_or_else(|| panic!("{id}"));
    assert!(hexpart.len() == 32 && hexpart.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_ne!(mid.field("Message-ID"), last.field("Message-ID"));
    assert_ne!(mid.field("Message-ID").as_deref(), Some("<first@outside.test>"));
    for h in [mid, last] {
        assert!(!h.mail.contains("Received:"), "a Received trail: {}", h.mail);
        for earlier in ["outside.test", "sender-host", "hello"] {
            assert!(!h.mail.contains(earlier), "{earlier} in {}", h.mail);
        }
    }
    assert!(!last.mail.contains("r1.test"), "R1 named at the end: {}", last.mail);
    // The payload bytes differ at each hop, and only the end holder's
    // passphrases open them.
    let bodies = [c.hops[0].body(), mid.body(), last.body()];
    assert!(bodies[0] != bodies[1] && bodies[1] != bodies[2] && bodies[0] != bodies[2]);
    assert!(!mid.body().contains(PAYLOAD.trim()) && !last.body().contains(PAYLOAD.trim()));
    assert!(!mid.body().contains(&bodies[0][bodies[0].len() - 200..]));
    let after_k2 = skip_stars(&peel(&g, last.body(), "k2"));
    let after_k1 = peel(&g, &format!("**\n{after_k2}"), "k1");
    assert_eq!(skip_stars(&after_k1), PAYLOAD);
}

#[test]
fn r1_as_middleman_passes_only_to_known_remailers_and_only_encrypted_mail() {
    let (mut c, g) = chain();
    // A layer for R1 that names the box directly: a middleman does not exit.
    let direct =
        format!("::\nEncrypted: PGP\n\n{}", pgp(&g, "r1.test", "::\nAnon-To: quill@box.test\n\nx\n"));
    let (code, log) =
        c.inject("remailer@r1.test", "s@outside.test", format!("Subject: x\n\n{direct}").as_bytes());
    assert_eq!(code, 0);
    assert!(log.contains("outcome=middleman_refused"), "{log}");
    // A clear message to R1 (pgp_only): dropped; the same to R2 goes on.
    let clear = "Subject: x\n\n::\nAnon-To: quill@box.test\n\nclear\n";
    let (_, log) = c.inject("remailer@r1.test", "s@outside.test", clear.as_bytes());
    assert!(log.contains("outcome=pgp_only_dropped"), "{log}");
    assert!(c.route(0).is_empty());
    let (_, log) = c.inject("remailer@r2.test", "s@outside.test", clear.as_bytes());
    assert!(log.contains("outcome=remailed"), "{log}");
    let hops = c.route(0);
    assert_eq!(hops.len(), 1);
    assert_eq!(hops[0].body(), "clear\n");
}

/// The reply block of section 13, built inside out with gpg: N runs its
/// first level locally, R1 and R2 each open their layer, and each adds an
/// `Encrypt-Key` layer of its own over what follows.
fn reply_block(g: &Gpg) -> String {
    format!("::\nAnon-To: remailer@r1.test\n\n::\nEncrypted: PGP\n\n{}\n**\n", r1_layer(g))
}

/// What the box got, opened as the holder does: k2, k1, then the nym key
/// (the server's signature must be good).
fn open_at_the_box(g: &Gpg, hop: &Hop) -> String {
    let after_k2 = skip_stars(&peel(g, hop.body(), "k2"));
    let after_k1 = skip_stars(&peel(g, &format!("**\n{after_k2}"), "k1"));
    let o = g.decrypt(after_k1.as_bytes());
    assert!(o.ok && o.stderr.contains("Good signature"), "{}", o.stderr);
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_nym_created_with_a_reply_block_is_told_through_n_r1_r2_and_confirms() {
    let (mut c, g) = chain();
    c.add("nym.test", false);
    g.import(&c.server("nym.test").key_export());
    g.gen_modern("quill@nym.test");
    let key = String::from_utf8(g.export("quill@nym.test")).unwrap();
    let text = format!(
        "Config:\nFrom: quill\nNym-Commands: create +acksend\nPublic-Key:\n{key}Reply-Block:\n{}",
        reply_block(&g)
    );
    let armored =
        String::from_utf8(g.sign_encrypt("config@nym.test", "quill@nym.test", text.as_bytes())).unwrap();
    let req = format!("From: someone@outside.test\nTo: config@nym.test\nSubject: new\n\n{armored}");
    let (code, log) = c.inject("config@nym.test", "someone@outside.test", req.as_bytes());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("event=reply_block outcome=remailed count=1"), "{log}");
    let hops = c.route(0);
    let path: Vec<(&str, &str)> =
        hops.iter().map(|h| (h.from_instance.as_str(), h.env_to.as_str())).collect();
    assert_eq!(
        path,
        [("nym.test", "remailer@r1.test"), ("r1.test", "remailer@r2.test"), ("r2.test", "quill@box.test")],
        "{hops:#?}"
    );
    // The payload bytes differ at each hop; no hop names the nym, and the
    // end names neither N nor R1.
    let bodies: Vec<&str> = hops.iter().map(|h| h.body()).collect();
    assert!(bodies[0] != bodies[1] && bodies[1] != bodies[2] && bodies[0] != bodies[2]);
    for h in &hops {
        assert!(!h.mail.contains("quill@nym.test") && !h.mail.contains("Received:"), "{}", h.mail);
    }
    let end = &hops[2];
    assert!(!end.mail.contains("nym.test") && !end.mail.contains("r1.test"), "{}", end.mail);
    assert_eq!(end.field("From").as_deref(), Some("Anonymous <nobody@r2.test>"));
    assert_eq!(end.field("Subject").as_deref(), Some("tag-7f3a"));
    let notice = open_at_the_box(&g, end);
    let cookie = notice
        .lines()
        .find_map(|l| l.strip_prefix("Reply-To: confirm+"))
        .and_then(|l| l.strip_suffix("@nym.test"))
        .unwrap_or_else(|| panic!("no confirm+ address: {notice}"))
        .to_string();
    assert!(cookie.len() == 32 && cookie.bytes().all(|b| b.is_ascii_hexdigit()), "{cookie}");
    // The holder confirms by mail to the cookie address; the block is
    // active and says so through the chain.
    let rcpt = format!("confirm+{cookie}@nym.test");
    let (code, log) = c.inject(&rcpt, "anyone@outside.test", b"Subject: yes\n\nconfirm\n");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=confirmed"), "{log}");
    let hops = c.route(0);
    assert_eq!(hops.len(), 3, "{hops:#?}");
    assert_eq!(hops[2].env_to, "quill@box.test");
    assert!(open_at_the_box(&g, &hops[2]).contains("Reply block confirmed"));
    // The Message-IDs of the two notices at the box differ.
    assert_ne!(hops[2].field("Message-ID"), end.field("Message-ID"));
}

#[test]
fn a_badly_signed_config_with_four_chained_blocks_gets_one_reply_at_the_box() {
    let (mut c, g) = chain();
    c.add("nym.test", false);
    g.import(&c.server("nym.test").key_export());
    g.gen_modern("quill@nym.test");
    g.gen_modern("mallory@nym.test");
    let key = String::from_utf8(g.export("quill@nym.test")).unwrap();
    let blocks: String = (0..4).map(|_| format!("Reply-Block:\n{}", reply_block(&g))).collect();
    let text = format!("Config:\nFrom: quill\nNym-Commands: create\nPublic-Key:\n{key}{blocks}");
    // Signed by another key than the one it brings.
    let armored =
        String::from_utf8(g.sign_encrypt("config@nym.test", "mallory@nym.test", text.as_bytes())).unwrap();
    let req = format!("From: someone@outside.test\nTo: config@nym.test\nSubject: new\n\n{armored}");
    let (code, log) = c.inject("config@nym.test", "someone@outside.test", req.as_bytes());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=refused"), "{log}");
    c.route(0);
    let boxed = c.captured();
    assert_eq!(boxed.len(), 1, "one reply, through the first block only");
    assert!(open_at_the_box(&g, boxed[0]).contains("[bad-signature]"));
}

#[test]
fn a_last_hop_to_a_missing_nym_is_refused_there_and_the_router_records_it() {
    let (mut c, _g) = chain();
    c.add("nym.test", false);
    let clear = "Subject: x\n\n::\nAnon-To: nobody-here@nym.test\n\nx\n";
    let (code, _) = c.inject("remailer@r2.test", "s@outside.test", clear.as_bytes());
    assert_eq!(code, 0);
    let hops = c.route_any();
    assert_eq!(hops.len(), 1, "{hops:#?}");
    assert_eq!((hops[0].env_to.as_str(), hops[0].exit), ("nobody-here@nym.test", Some(67)));
    assert!(c.captured().is_empty());
}

/// Create quill at N with the section 13 block and confirm it through the
/// chain; the hops of the creation and confirmation are left in `c`.
fn confirmed_nym(c: &mut Chain, g: &Gpg) {
    c.add("nym.test", false);
    g.import(&c.server("nym.test").key_export());
    g.gen_modern("quill@nym.test");
    let key = String::from_utf8(g.export("quill@nym.test")).unwrap();
    let text = format!(
        "Config:\nFrom: quill\nNym-Commands: create +acksend\nPublic-Key:\n{key}Reply-Block:\n{}",
        reply_block(g)
    );
    let armored =
        String::from_utf8(g.sign_encrypt("config@nym.test", "quill@nym.test", text.as_bytes())).unwrap();
    let req = format!("From: someone@outside.test\nTo: config@nym.test\nSubject: new\n\n{armored}");
    assert_eq!(c.inject("config@nym.test", "someone@outside.test", req.as_bytes()).0, 0);
    let hops = c.route(0);
    let notice = open_at_the_box(g, hops.last().expect("the creation notice"));
    let cookie = notice
        .lines()
        .find_map(|l| l.strip_prefix("Reply-To: "))
        .unwrap_or_else(|| panic!("no Reply-To: {notice}"))
        .to_string();
    let (code, log) = c.inject(&cookie, "anyone@outside.test", b"Subject: yes\n\nconfirm\n");
    assert_eq!(code, 0, "{log}");
    c.route(0);
}

#[test]
fn mail_to_a_confirmed_nym_reaches_the_box_through_the_chain_signed_by_n_with_the_trailer() {
    let (mut c, g) = chain();
    confirmed_nym(&mut c, &g);
    let secret = "The minutes of the meeting, for quill only.";
    // As N's MTA hands it over: with the Received line naming N's host.
    let mail = format!(
        "Received: from mx.source.test by host7.n-operator.internal\n\
         From: Sam Source <sam@source.test>\nTo: quill@nym.test\nSubject: minutes\n\
         Message-ID: <m1@source.test>\n\n{secret}\n"
    );
    let (code, log) = c.inject("quill@nym.test", "sam@source.test", mail.as_bytes());
    assert_eq!(code, 0, "{log}");
    // The log says how it went, never to whom.
    assert!(log.contains("event=reply_block outcome=remailed count=1"), "{log}");
    assert!(!log.contains("quill") && !log.contains("sam@"), "{log}");
    let hops = c.route(0);
    let path: Vec<(&str, &str)> =
        hops.iter().map(|h| (h.from_instance.as_str(), h.env_to.as_str())).collect();
    assert_eq!(
        path,
        [("nym.test", "remailer@r1.test"), ("r1.test", "remailer@r2.test"), ("r2.test", "quill@box.test")],
        "{hops:#?}"
    );
    // Nothing on the way names the nym, the correspondent or the text,
    // and the payload changes at every hop.
    for h in &hops {
        for leak in ["quill@nym.test", "sam@source.test", "minutes", secret, "Received:", "n-operator"] {
            assert!(!h.mail.contains(leak), "{leak} at {}: {}", h.from_instance, h.mail);
        }
    }
    let bodies: Vec<&str> = hops.iter().map(|h| h.body()).collect();
    assert!(bodies[0] != bodies[1] && bodies[1] != bodies[2]);
    // Only N's articles on a.a.m. would have been the other way: none.
    assert!(c.server("nym.test").articles().is_empty());
    // At the box: k2, k1, then the nym key with N's good signature; the
    // message as received, then the 7.1 trailer.
    let end = hops.last().unwrap();
    assert!(!end.mail.contains("nym.test") && !end.mail.contains("r1.test"), "{}", end.mail);
    let opened = open_at_the_box(&g, end);
    assert!(opened.contains("From: Sam Source <sam@source.test>\n"), "{opened}");
    assert!(
        opened.contains("by host7.n-operator.internal\n"),
        "as received, inside the encryption: {opened}"
    );
    assert!(opened.contains(&format!("\n{secret}\n")), "{opened}");
    let trailer = opened.split("\n~~~\n").nth(1).unwrap_or_else(|| panic!("no trailer: {opened}"));
    assert!(trailer.contains("\nTo: quill@nym.test\n") && trailer.contains("\nDate: "), "{trailer}");
}

#[test]
fn the_daily_limit_stops_mail_before_it_leaves_and_one_disabled_notice_travels_the_chain() {
    let (mut c, g) = chain();
    confirmed_nym(&mut c, &g);
    c.server("nym.test").set("reply_blocks", "daily_units", "3");
    let mut sent = 0;
    let mut code = 0;
    for i in 0..6 {
        let mail = format!("From: a@source.test\nTo: quill@nym.test\nSubject: n{i}\n\nmessage {i}\n");
        code = c.inject("quill@nym.test", "a@source.test", mail.as_bytes()).0;
        if code != 0 {
            break;
        }
        sent += 1;
    }
    // The creation and confirmation notices cost nothing (7.3): three
    // messages of one unit each go, the fourth is refused with 69.
    assert_eq!((sent, code), (3, 69));
    let hops = c.route(0);
    let boxed: Vec<&Hop> = hops.iter().filter(|h| h.env_to == "quill@box.test").collect();
    assert_eq!(boxed.len(), 4, "three messages and one notice: {hops:#?}");
    let texts: Vec<String> = boxed.iter().map(|h| open_at_the_box(&g, h)).collect();
    let notices = texts.iter().filter(|t| t.contains("daily limit")).count();
    assert_eq!(notices, 1, "{texts:#?}");
    // Disabled now: the next mail is refused at once, and no second
    // notice follows.
    let again = c.inject("quill@nym.test", "a@source.test", b"Subject: more\n\nmore\n").0;
    assert_eq!(again, 69);
    assert!(c.route(0).is_empty());
}

#[test]
fn a_hidden_loop_through_r2_back_to_the_nym_is_stopped_by_the_daily_limit() {
    let (mut c, g) = chain();
    c.add("nym.test", false);
    g.import(&c.server("nym.test").key_export());
    c.server("nym.test").set("reply_blocks", "daily_units", "3");
    g.gen_modern("quill@nym.test");
    let key = String::from_utf8(g.export("quill@nym.test")).unwrap();
    // N sees only "to remailer@r2.test"; inside R2's layer the block
    // points back at the nym itself, which N cannot see (6.1 passes it).
    let hidden = pgp(&g, "r2.test", "::\nAnon-To: quill@nym.test\n\n");
    let block = format!("::\nAnon-To: remailer@r2.test\n\n::\nEncrypted: PGP\n\n{hidden}\n**\n");
    let text = format!("Config:\nFrom: quill\nNym-Commands: create\nPublic-Key:\n{key}Reply-Block:\n{block}");
    let armored =
        String::from_utf8(g.sign_encrypt("config@nym.test", "quill@nym.test", text.as_bytes())).unwrap();
    let req = format!("From: someone@outside.test\nTo: config@nym.test\nSubject: new\n\n{armored}");
    let (code, log) = c.inject("config@nym.test", "someone@outside.test", req.as_bytes());
    assert_eq!(code, 0, "{log}");
    // The creation notice comes back to the nym while the block is still
    // pending, so N posts it to alt.anonymous.messages: the holder reads
    // the cookie there (the relayed mail, then the notice inside it).
    let first = c.route(0);
    let arts = c.server("nym.test").articles();
    assert_eq!(arts.len(), 1, "{log} {first:#?}");
    let relayed = g.decrypt(arts[0].body.as_bytes());
    assert!(relayed.ok, "{}", relayed.stderr);
    let relayed = String::from_utf8(relayed.stdout).unwrap();
    let at = relayed.find("-----BEGIN PGP MESSAGE-----").expect("the notice inside");
    let notice = g.decrypt(&relayed.as_bytes()[at..]);
    let notice = String::from_utf8(notice.stdout).unwrap();
    let cookie =
        notice.lines().find_map(|l| l.strip_prefix("Reply-To: ")).expect("confirm address").to_string();
    // Confirming starts the loop: "Reply block confirmed" goes through the
    // block, comes back as mail to the nym, goes through the block again...
    assert_eq!(c.inject(&cookie, "anyone@outside.test", b"Subject: yes\n\nyes\n").0, 0);
    let hops = c.route_any();
    let at_n: Vec<Option<i32>> =
        hops.iter().filter(|h| h.env_to == "quill@nym.test").map(|h| h.exit).collect();
    // Three units go round (1 each), the fourth copy disables the nym
    // (69) and its one notice comes round once more to a disabled nym
    // (69 again); then nothing moves.
    assert_eq!(at_n, [Some(0), Some(0), Some(0), Some(69), Some(69)], "{hops:#?}");
    let show = crate::util::ok(c.server("nym.test").cmd().args(["nym", "show", "quill@nym.test"]), None);
    assert!(show.contains("+disable"), "{show}");
}
