//! The nym.alias.net request side (REPLY-BLOCKS.md sections 4 to 7.5)
//! against the real binary and real GnuPG: `Config:` requests made by
//! hand as the nym.alias.net help describes them, confirmation by mail to
//! `confirm+COOKIE@`, and the refusals on arrival. Until the Type I engine
//! is connected, what would go through a reply block is read from the
//! engine-input spool of debug builds (`NYMGATE_BLOCK_SPOOL_FOR_TEST`).

use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};

/// The engine inputs written so far, oldest first.
fn block_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "block"))
        .map(|p| (fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| fs::read_to_string(p).unwrap()).collect()
}

/// `deliver` with an envelope sender and the block spool; exit code and log.
fn deliver(s: &Server, spool: &Path, rcpt: &str, sender: &str, raw: &[u8]) -> (i32, String) {
    let mut c = s.cmd();
    c.env("NYMGATE_LOG_STDERR", "1").env("NYMGATE_BLOCK_SPOOL_FOR_TEST", spool);
    c.args(["deliver", "--recipient", rcpt, "--sender", sender]);
    let out = run(&mut c, Some(raw));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().unwrap_or(-1), err)
}

fn mail_around(rcpt: &str, armored: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: anon@remailer.example\nTo: {rcpt}\nSubject: request\nMessage-ID: <{}@t>\n\n",
        rand_hex()
    )
    .into_bytes();
    m.extend_from_slice(armored);
    m
}

fn db(s: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        s.home.join("nymgate.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

fn count(s: &Server, sql: &str) -> i64 {
    db(s).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn spool(s: &Server) -> PathBuf {
    // What the Type I engine makes of a block is mail: keep it in the
    // home's spool, never the machine's sendmail.
    s.set("mail", "transport", "\"spool\"");
    let p = s.dir.path().join("blocks");
    fs::create_dir_all(&p).unwrap();
    p
}

/// The payload of an engine input: the text after the block, decrypted.
fn open_payload(g: &Gpg, input: &str) -> String {
    let at = input.find("-----BEGIN PGP MESSAGE-----").expect("the payload is encrypted");
    let o = g.decrypt(&input.as_bytes()[at..]);
    assert!(o.ok, "{}", o.stderr);
    assert!(o.stderr.contains("Good signature"), "{}", o.stderr);
    String::from_utf8(o.stdout).unwrap()
}

fn cookie_of(payload: &str) -> String {
    let line = payload.lines().find(|l| l.starts_with("Reply-To: confirm+")).expect("Reply-To: confirm+");
    let c = line.trim_start_matches("Reply-To: confirm+").trim_end_matches("@nym.example");
    assert_eq!(c.len(), 32, "{line}");
    assert!(c.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{line}");
    c.to_string()
}

const BLOCK: &str = "::\nAnon-To: quill@box.example\n\n";

/// A creation as the nym.alias.net help describes it: the Config: text
/// with the key, signed by that key and encrypted to config@.
fn creation(s: &Server, g: &Gpg, extra_blocks: &str) -> Vec<u8> {
    g.import(&s.key_export());
    g.gen_modern("quill@nym.example");
    let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
    let text = format!(
        "Config:\nFrom: quill\nNym-Commands: create +acksend +nobcc name=\"Quill Pen\"\nPublic-Key:\n{key}Reply-Block:\n{BLOCK}{extra_blocks}"
    );
    mail_around(
        "config@nym.example",
        &g.sign_encrypt("config@nym.example", "quill@nym.example", text.as_bytes()),
    )
}

#[test]
fn config_creation_by_hand_makes_the_nym_with_its_flags_and_a_pending_block() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    let sp = spool(&s);
    let req = creation(&s, &g, "");
    let (code, log) = deliver(&s, &sp, "config@nym.example", "someone@outside.example", &req);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=created"), "{log}");
    let (flags, name): (i64, String) = db(&s)
        .query_row("SELECT flags, name FROM nyms WHERE local = 'quill'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(flags, 0xfd | 0x100 | 0x1000);
    assert_eq!(name, "Quill Pen");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks WHERE pending = 1"), 1);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks WHERE pending = 0"), 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM pending_sets"), 1);
    let show = String::from_utf8(s.admin(&["nym", "show", "quill@nym.example"]).stdout).unwrap();
    assert!(
        show.contains("flags:       +cryptrecv -signsend +acksend -disable -fixedsize -fingerkey +nobcc"),
        "{show}"
    );
    assert!(show.contains("blocks:      0 active, 1 pending"), "{show}");
    // The reply goes through the pending block: block text, then the
    // payload signed by the server and encrypted to the nym.
    let inputs = block_files(&sp);
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].starts_with(BLOCK), "{}", inputs[0]);
    let payload = open_payload(&g, &inputs[0]);
    assert!(payload.contains("Configuration completed"), "{payload}");
    assert!(
        payload.contains("+cryptrecv -signsend +acksend -disable -fixedsize -fingerkey +nobcc"),
        "{payload}"
    );
    let cookie = cookie_of(&payload);
    // The cookie is stored only as its hash.
    assert_eq!(
        count(&s, &format!("SELECT COUNT(*) FROM pending_sets WHERE hex(cookie_hash) LIKE '%{cookie}%'")),
        0
    );
    // Nothing on alt.anonymous.messages, and a second copy is a silent replay.
    assert!(s.articles().is_empty());
    let (code, log) = deliver(&s, &sp, "config@nym.example", "someone@outside.example", &req);
    assert_eq!(code, 0);
    assert!(log.contains("replayed_signature") || log.contains("duplicate_delivery"), "{log}");
    assert_eq!(block_files(&sp).len(), 1);
}

#[test]
fn confirm_cookie_activates_the_pending_block() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    let sp = spool(&s);
    assert_eq!(deliver(&s, &sp, "config@nym.example", "a@b.example", &creation(&s, &g, "")).0, 0);
    let cookie = cookie_of(&open_payload(&g, &block_files(&sp)[0]));
    let mail =
        |extra: &str| format!("From: quill@box.example\nTo: x\n{extra}Subject: ok\n\nyes\n").into_bytes();
    // Without a cookie: no such address.
    assert_eq!(deliver(&s, &sp, "confirm@nym.example", "a@b.example", &mail("")).0, 67);
    // An autoresponder confirms nothing and leaves the cookie.
    let rcpt = format!("confirm+{}@nym.example", cookie.to_ascii_uppercase());
    assert_eq!(deliver(&s, &sp, &rcpt, "", &mail("")).0, 0);
    assert_eq!(deliver(&s, &sp, &rcpt, "MAILER-DAEMON@mx.example", &mail("")).0, 0);
    assert_eq!(deliver(&s, &sp, &rcpt, "a@b.example", &mail("Auto-Submitted: auto-replied\n")).0, 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks WHERE pending = 1"), 1);
    // Any other mail there activates the set (the cookie in any case).
    let (code, log) = deliver(&s, &sp, &rcpt, "a@b.example", &mail(""));
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=confirmed"), "{log}");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks WHERE pending = 0"), 1);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM pending_sets"), 0);
    let inputs = block_files(&sp);
    assert_eq!(inputs.len(), 2);
    assert!(open_payload(&g, &inputs[1]).contains("Reply block confirmed"));
    // Single use: the same cookie again does nothing, exit 0.
    let (code, log) = deliver(&s, &sp, &rcpt, "a@b.example", &mail("X-Again: 1\n"));
    assert_eq!(code, 0);
    assert!(log.contains("confirm_unknown"), "{log}");
    assert_eq!(block_files(&sp).len(), 2);
    // An unknown cookie: exit 0, no effect.
    assert_eq!(
        deliver(&s, &sp, "confirm+00000000000000000000000000000000@nym.example", "a@b.example", &mail("")).0,
        0
    );
}

#[test]
fn zax_nym_adds_a_block_by_a_signed_config_modification() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let sp = spool(&s);
    let text = "Config:\nFrom: alice\nNym-Commands: +signsend\nReply-Block: a=0.5\n::\nAnon-To: alice@box.example\n\n";
    let req = mail_around(
        "config@nym.example",
        &g.sign_encrypt("config@nym.example", "alice@nym.example", text.as_bytes()),
    );
    let (code, log) = deliver(&s, &sp, "config@nym.example", "a@b.example", &req);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=changed"), "{log}");
    let flags: i64 =
        db(&s).query_row("SELECT flags FROM nyms WHERE local = 'alice'", [], |r| r.get(0)).unwrap();
    assert_eq!(flags, 0x1fd | 0x2, "a Zax nym starts from 0x1fd");
    let (set, weight): (String, i64) = db(&s)
        .query_row("SELECT set_name, weight FROM reply_blocks WHERE pending = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((set.as_str(), weight), ("a", 500_000_000));
    // Through the pending block, with the cookie; whether it fires is the
    // set's draw (a=0.5), so at most one input.
    let inputs = block_files(&sp);
    assert!(inputs.len() <= 1);
    if let Some(i) = inputs.first() {
        cookie_of(&open_payload(&g, i));
    }
    // The cookie-free notice goes through the current channel: a.a.m.
    let arts = s.articles_for_hsub("panda");
    assert_eq!(arts.len(), 2, "creation notice and the cookie-free notice");
    let texts: Vec<String> = arts
        .iter()
        .map(|a| String::from_utf8_lossy(&g.decrypt(a.body.as_bytes()).stdout).to_string())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| t.contains("Subject: Reply blocks submitted")).count(),
        1,
        "{texts:?}"
    );
    assert!(texts.iter().all(|t| !t.contains("confirm+")), "{texts:?}");
}

#[test]
fn nobcc_exits_77_and_disable_69() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let sp = spool(&s);
    let set = |cmds: &str| {
        let text = format!("Config:\nFrom: alice\nNym-Commands: {cmds}\n");
        let req = mail_around(
            "config@nym.example",
            &g.sign_encrypt("config@nym.example", "alice@nym.example", text.as_bytes()),
        );
        let (code, log) = deliver(&s, &sp, "config@nym.example", "a@b.example", &req);
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("outcome=changed"), "{log}");
    };
    set("+nobcc");
    let to = |to: &str| format!("From: bob@example.org\nTo: {to}\nSubject: hi\n\nhello\n").into_bytes();
    let (code, err) = deliver(&s, &sp, "alice@nym.example", "bob@example.org", &to("list@lists.example"));
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("5.7.0 This nym does not accept blind copies"), "{err}");
    assert_eq!(
        deliver(&s, &sp, "alice@nym.example", "bob@example.org", &to("Alice <ALICE@nym.example>")).0,
        0
    );
    // With +ext the address need not be named.
    assert_eq!(deliver(&s, &sp, "alice+news@nym.example", "bob@example.org", &to("list@lists.example")).0, 0);
    set("+disable");
    let (code, err) = deliver(&s, &sp, "alice@nym.example", "bob@example.org", &to("alice@nym.example"));
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("5.3.0 This nym is disabled."), "{err}");
    set("-disable -nobcc");
    assert_eq!(deliver(&s, &sp, "alice@nym.example", "bob@example.org", &to("list@lists.example")).0, 0);
}

#[test]
fn badly_signed_config_with_four_blocks_gets_at_most_one_reply() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    let sp = spool(&s);
    g.import(&s.key_export());
    g.gen_modern("quill@nym.example");
    g.gen_modern("mallory@nym.example");
    let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
    let blocks: String =
        (0..4).map(|i| format!("Reply-Block:\n::\nAnon-To: victim{i}@target.example\n\n")).collect();
    let text = format!("Config:\nFrom: quill\nNym-Commands: create\nPublic-Key:\n{key}{blocks}");
    // Signed by another key than the one it brings.
    let req = mail_around(
        "config@nym.example",
        &g.sign_encrypt("config@nym.example", "mallory@nym.example", text.as_bytes()),
    );
    let (code, log) = deliver(&s, &sp, "config@nym.example", "a@b.example", &req);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=refused"), "{log}");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM nyms"), 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks"), 0);
    let inputs = block_files(&sp);
    assert_eq!(inputs.len(), 1, "one reply, through the first block only");
    assert!(inputs[0].contains("victim0@target.example") && !inputs[0].contains("victim1"));
    let payload = open_payload(&g, &inputs[0]);
    assert!(payload.contains("[bad-signature]"), "{payload}");
    // Without a usable key: no reply at all.
    let text = format!("Config:\nFrom: quill\nNym-Commands: create\n{blocks}");
    let req = mail_around(
        "config@nym.example",
        &g.sign_encrypt("config@nym.example", "mallory@nym.example", text.as_bytes()),
    );
    assert_eq!(deliver(&s, &sp, "config@nym.example", "a@b.example", &req).0, 0);
    assert_eq!(block_files(&sp).len(), 1);
    assert!(s.articles().is_empty(), "never a plaintext or a.a.m reply");
}

#[test]
fn pending_sets_expire_at_flush_erasing_never_confirmed_config_nyms() {
    let s = Server::new(&["nym.example"]);
    s.set("reply_blocks", "confirm_timeout", "1");
    let g = Gpg::new();
    let sp = spool(&s);
    assert_eq!(deliver(&s, &sp, "config@nym.example", "a@b.example", &creation(&s, &g, "")).0, 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM nyms"), 1);
    let cookie = cookie_of(&open_payload(&g, &block_files(&sp)[0]));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // Past the timeout the cookie no longer confirms.
    let rcpt = format!("confirm+{cookie}@nym.example");
    let (code, log) = deliver(&s, &sp, &rcpt, "a@b.example", b"Subject: x\n\ny\n");
    assert_eq!(code, 0);
    assert!(log.contains("confirm_expired"), "{log}");
    s.flush();
    assert_eq!(count(&s, "SELECT COUNT(*) FROM nyms"), 0, "the name is free again");
    assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks"), 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM pending_sets"), 0);
    // Told once, through alt.anonymous.messages.
    let arts = s.articles();
    assert_eq!(arts.len(), 1);
    let o = g.decrypt(arts[0].body.as_bytes());
    assert!(String::from_utf8_lossy(&o.stdout).contains("never confirmed"));
    s.flush();
    assert_eq!(s.articles().len(), 1);
}

#[test]
fn an_expired_pending_set_of_a_zax_nym_leaves_the_nym() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    s.set("reply_blocks", "confirm_timeout", "1");
    let sp = spool(&s);
    let text = "Config:\nFrom: alice\nReply-Block:\n::\nAnon-To: alice@box.example\n\n";
    let req = mail_around(
        "config@nym.example",
        &g.sign_encrypt("config@nym.example", "alice@nym.example", text.as_bytes()),
    );
    assert_eq!(deliver(&s, &sp, "config@nym.example", "a@b.example", &req).0, 0);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM pending_sets"), 1);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    s.flush();
    assert_eq!(count(&s, "SELECT COUNT(*) FROM nyms"), 1);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks"), 0);
    let texts: Vec<String> = s
        .articles_for_hsub("panda")
        .iter()
        .map(|a| String::from_utf8_lossy(&g.decrypt(a.body.as_bytes()).stdout).to_string())
        .collect();
    assert_eq!(texts.iter().filter(|t| t.contains("Subject: Reply blocks expired")).count(), 1, "{texts:?}");
}

/// Amplification attempts (issue 13, hostile input): a request that names
/// many blocks, a huge block, or comes unsigned gets at most one reply,
/// through its first block only, and changes nothing.
#[test]
fn many_blocks_a_huge_block_or_no_signature_get_at_most_one_reply_and_change_nothing() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    let sp = spool(&s);
    g.import(&s.key_export());
    g.gen_modern("quill@nym.example");
    let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
    let many: String =
        (0..200).map(|i| format!("Reply-Block:\n::\nAnon-To: victim{i}@target.example\n\n")).collect();
    let huge = format!("Reply-Block:\n::\nAnon-To: victim@target.example\n\n{}\n", "x".repeat(40 * 1024));
    let cases = [
        ("many", format!("Config:\nFrom: quill\nNym-Commands: create\nPublic-Key:\n{key}{many}"), true),
        ("huge", format!("Config:\nFrom: quill\nNym-Commands: create\nPublic-Key:\n{key}{huge}"), true),
        ("unsigned", format!("Config:\nFrom: quill\nNym-Commands: create\nPublic-Key:\n{key}{many}"), false),
    ];
    for (what, text, signed) in cases {
        let armored = if signed {
            g.sign_encrypt("config@nym.example", "quill@nym.example", text.as_bytes())
        } else {
            g.encrypt("config@nym.example", text.as_bytes())
        };
        let before = block_files(&sp).len();
        let (code, log) = deliver(
            &s,
            &sp,
            "config@nym.example",
            "a@b.example",
            &mail_around("config@nym.example", &armored),
        );
        assert_eq!(code, 0, "{what}: {log}");
        assert!(log.contains("outcome=refused"), "{what}: {log}");
        let inputs = block_files(&sp);
        assert!(inputs.len() - before <= 1, "{what}: {} replies", inputs.len() - before);
        for i in &inputs[before..] {
            assert!(!i.contains("victim1@"), "{what}: a reply through a later block");
        }
        assert_eq!(count(&s, "SELECT COUNT(*) FROM nyms"), 0, "{what}");
        assert_eq!(count(&s, "SELECT COUNT(*) FROM reply_blocks"), 0, "{what}");
        assert!(s.articles().is_empty(), "{what}: never a plaintext or a.a.m reply");
    }
    // What left by mail: no more than the replies counted above.
    assert!(s.mails().len() <= 3);
}
