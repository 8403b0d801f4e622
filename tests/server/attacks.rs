//! Regression tests for the defects an attacker found (issue 10), each
//! sending the hostile input to the real binary and checking the safe
//! outcome. The send@ header cases live in `send.rs`.

use crate::util::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

#[test]
fn look_alike_and_invisible_names_get_no_nym() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    // Cyrillic o, fullwidth letters, a zero-width space, a right-to-left
    // override, and reserved names with an extension.
    for name in [
        "c\u{43e}nfig",
        "\u{ff53}\u{ff45}\u{ff4e}\u{ff44}",
        "al\u{200b}ice",
        "\u{202e}ecila",
        "postmaster+x",
        "config+x",
    ] {
        let addr = format!("{name}@nym.example");
        g.gen_modern(&addr);
        let req = g.creation_request(&addr, "nym.example", "hsub: look\n");
        let (code, log) =
            s.deliver_logged("config@nym.example", &[b"Subject: x\n\n".as_slice(), &req].concat());
        assert_eq!(code, 0, "{name:?}: {log}");
        assert!(log.contains("refused_invalid_name"), "{name:?}: {log}");
    }
    let list = s.admin(&["nym", "list"]);
    assert!(list.stdout.is_empty(), "a nym was created: {}", String::from_utf8_lossy(&list.stdout));
    // Each refusal went to the key that asked.
    let refusals = s.articles_for_hsub("look");
    assert_eq!(refusals.len(), 6);
    let text = String::from_utf8(g.decrypt(refusals[0].body.as_bytes()).stdout).unwrap();
    assert!(text.contains("Nym refused: invalid name"), "{text}");
}

#[test]
fn mail_to_an_extension_reaches_the_nym() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    assert_eq!(s.deliver_raw("alice+lists@nym.example", b"Subject: x\n\nhello\n"), 0);
    assert_eq!(s.articles_for_hsub("panda").len(), 2, "creation notice and the mail");
    // A reserved name with an extension is no nym either.
    assert_eq!(s.deliver_raw("admin+x@nym.example", b"Subject: x\n\nhello\n"), 67);
}

#[test]
fn recipient_that_is_not_utf8_is_no_user_and_an_8bit_sender_is_fine() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    let mut c = s.cmd();
    c.arg("deliver").arg("--recipient").arg(std::ffi::OsStr::from_bytes(b"al\xffice@nym.example"));
    let out = run(&mut c, Some(b"Subject: x\n\nhi\n"));
    assert_eq!(out.status.code(), Some(67), "{}", String::from_utf8_lossy(&out.stderr));
    let mut c = s.cmd();
    c.args(["deliver", "--recipient", "alice@nym.example", "--sender"]);
    c.arg(std::ffi::OsStr::from_bytes(b"j\xf6rg@example.org"));
    let out = run(&mut c, Some(b"Subject: x\n\nhi\n"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn readable_write_ahead_log_is_refused() {
    let (s, _g) = server_with_nym("alice", "");
    let wal = s.home.join("nymgate.db-wal");
    assert!(wal.exists(), "deliveries keep the WAL between processes");
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 75);
    let out = s.admin(&["nym", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nymgate.db-wal"));
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 0);
}

#[test]
fn held_messages_are_capped_per_key() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("stranger@nym.example");
    let mut held = 0;
    for i in 0..12 {
        let enc = g.sign_encrypt(
            "send@nym.example",
            "stranger@nym.example",
            format!("To: a@b.example\n\n{i}\n").as_bytes(),
        );
        let (code, log) =
            s.deliver_logged("send@nym.example", &[b"Subject: x\n\n".as_slice(), &enc].concat());
        assert_eq!(code, 0);
        if log.contains("held_unknown_signer") {
            held += 1;
        } else {
            assert!(log.contains("hold_full_dropped"), "{log}");
        }
    }
    assert_eq!(held, 8, "default max_held_per_key");
}

#[test]
fn postmaster_and_abuse_reach_the_operator() {
    let s = Server::new(&["nym.example"]);
    s.set("mail", "transport", "\"spool\"");
    s.set("operator", "address", "\"ops@example.org\"");
    for rcpt in ["postmaster@nym.example", "Abuse@nym.example"] {
        let (code, log) = s.deliver_logged(rcpt, format!("Subject: for {rcpt}\n\ncomplaint\n").as_bytes());
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("outcome=forwarded"), "{log}");
    }
    let mails = s.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().all(|m| m.contains("ops@example.org") && m.contains("complaint")), "{mails:?}");
}

#[test]
fn recipient_table_follows_create_and_delete() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let table = std::fs::read_to_string(s.home.join("recipients")).unwrap();
    assert!(table.contains("alice@nym.example alice@nym.example\n"), "{table}");
    assert!(table.contains("postmaster@nym.example postmaster@nym.example\n"));
    assert!(table.contains("config@nym.example config@nym.example\n"));
    let mode = std::fs::metadata(s.home.join("recipients")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let del = g.sign_encrypt("config@nym.example", "alice@nym.example", b"delete: yes\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &del), 0);
    let table = std::fs::read_to_string(s.home.join("recipients")).unwrap();
    assert!(!table.contains("alice@"), "{table}");
}

/// An executable script in the server's scratch room.
fn script(s: &Server, name: &str, body: &str) -> std::path::PathBuf {
    let p = s.dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Make every queued item due now, so that a flush tries it again.
fn all_due(s: &Server) {
    let list = String::from_utf8(s.admin(&["queue", "list"]).stdout).unwrap();
    for id in list.lines().skip(1).filter_map(|l| l.split('\t').next()) {
        assert!(s.admin(&["queue", "retry", id]).status.success());
    }
}

#[test]
fn inews_refusals_are_logged_as_a_code_and_given_up() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    let inews =
        script(&s, "inews", "cat >/dev/null; echo 'inews: 441 Newsgroup alt.secret.place not here'; exit 1");
    s.set("news", "transport", "\"inews\"");
    s.set("news", "inews", &format!("[\"{}\"]", inews.display()));
    let (code, log) = s.deliver_logged("alice@nym.example", b"Subject: x\n\nhello\n");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("reason=inews refused (441)"), "{log}");
    assert!(!log.contains("alt.secret"), "INN's reply text reached the log: {log}");
    for _ in 0..3 {
        all_due(&s);
        let out = s.cmd().env("NYMGATE_LOG_STDERR", "1").arg("flush").output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("alt.secret"));
    }
    let status = String::from_utf8(s.admin(&["status"]).stdout).unwrap();
    assert!(status.contains("given up:    news: 1 (refused_for_good)"), "{status}");
    assert!(status.contains("outbox:      empty"), "{status}");
}

#[test]
fn sendmail_that_refuses_for_good_gives_the_item_up_and_tells_the_nym() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let sendmail = script(&s, "sendmail", "cat >/dev/null; echo 'bob@example.org... User unknown'; exit 67");
    s.set("mail", "transport", "\"sendmail\"");
    s.set("mail", "sendmail", &format!("[\"{}\"]", sendmail.display()));
    let enc =
        g.sign_encrypt("send@nym.example", "alice@nym.example", b"To: bob@example.org\nSubject: s\n\nx\n");
    let (code, log) = s.deliver_logged("send@nym.example", &[b"Subject: x\n\n".as_slice(), &enc].concat());
    assert_eq!(code, 0);
    assert!(log.contains("reason=sendmail refused (exit 67)"), "{log}");
    assert!(!log.contains("bob@"), "{log}");
    for _ in 0..3 {
        all_due(&s);
        s.flush();
    }
    let status = String::from_utf8(s.admin(&["status"]).stdout).unwrap();
    assert!(status.contains("given up:    mail: 1 (refused_for_good)"), "{status}");
    let told: Vec<String> = s
        .articles_for_hsub("panda")
        .iter()
        .map(|a| String::from_utf8_lossy(&g.decrypt(a.body.as_bytes()).stdout).into_owned())
        .collect();
    assert!(told.iter().any(|t| t.contains("Subject: Message given up")), "{told:?}");
}

#[test]
fn a_planted_symlink_in_the_spool_is_not_followed() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let spool = s.news_spool();
    let victim = s.dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    // The old temporary name was .<Message-ID>.<pid>.tmp, and a nym picks
    // the Message-ID of its news posts: plant a link for every pid.
    for pid in 1..=32768u32 {
        std::os::unix::fs::symlink(&victim, spool.join(format!(".planted_nym.example.art.{pid}.tmp")))
            .unwrap();
    }
    let post = b"Newsgroups: alt.test\nSubject: s\nMessage-ID: <planted@nym.example>\n\nhello\n";
    let enc = g.sign_encrypt("send@nym.example", "alice@nym.example", post);
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(spool.join("planted_nym.example.art").is_file());
}
