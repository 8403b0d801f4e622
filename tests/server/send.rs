//! send@ (PROTOCOL.md section 6) and the defences of section 7, with real
//! GnuPG as the nym and a capture script as sendmail.

use crate::util::*;
use std::path::PathBuf;

struct Capture {
    dir: PathBuf,
}

struct Sent {
    args: Vec<String>,
    msg: String,
}

impl Capture {
    /// Point the server's sendmail at a script that records its argv and stdin.
    fn install(s: &Server) -> Capture {
        let dir = s.dir.path().join("captured");
        std::fs::create_dir_all(&dir).unwrap();
        let script = s.dir.path().join("capture-sendmail");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nn=$(date +%s%N)-$$\nprintf '%s\\n' \"$@\" > {d}/$n.args\ncat > {d}/$n.msg\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        s.set("mail", "transport", "\"sendmail\"");
        s.set("mail", "sendmail", &format!("[\"{}\"]", script.display()));
        Capture { dir }
    }

    fn sent(&self) -> Vec<Sent> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".args"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|n| {
                let base = n.trim_end_matches(".args");
                Sent {
                    args: std::fs::read_to_string(self.dir.join(n))
                        .unwrap()
                        .lines()
                        .map(String::from)
                        .collect(),
                    msg: std::fs::read_to_string(self.dir.join(format!("{base}.msg"))).unwrap(),
                }
            })
            .collect()
    }
}

fn send_as(s: &Server, g: &Gpg, nym: &str, message: &str) -> i32 {
    let enc = g.sign_encrypt("send@nym.example", nym, message.as_bytes());
    s.deliver_pgp("send@nym.example", &enc)
}

fn notices(s: &Server, g: &Gpg, hsub: &str) -> Vec<String> {
    s.articles_for_hsub(hsub)
        .iter()
        .map(|a| {
            let o = g.decrypt(a.body.as_bytes());
            assert!(o.ok && o.stderr.contains("Good signature"), "{}", o.stderr);
            String::from_utf8(o.stdout).unwrap()
        })
        .collect()
}

fn header_block(msg: &str) -> &str {
    msg.split_once("\n\n").map(|x| x.0).unwrap_or(msg)
}

#[test]
fn normal_send_rewrites_from_strips_headers_and_acknowledges() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let cap = Capture::install(&s);
    let msg = "From: Alice Display <alice@nym.example>\nTo: Bob <bob@example.org>\nCc: carol@example.org\n\
               Bcc: dave@example.org\nSubject: Example\nX-Mailer: LeakyMail 1.0\nUser-Agent: Thunderbird\n\
               Received: from my-laptop.home (192.168.1.7)\nX-Originating-IP: 192.168.1.7\nSender: real@person.example\n\
               Return-Path: <real@person.example>\n\nThis is an example\n";
    assert_eq!(send_as(&s, &g, "alice@nym.example", msg), 0);
    let sent = cap.sent();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    // Envelope: -f nym -- recipients (Bcc included).
    let args = m.args.join(" ");
    assert!(
        args.ends_with("-f alice@nym.example -- bob@example.org carol@example.org dave@example.org"),
        "{args}"
    );
    let h = header_block(&m.msg);
    assert!(h.contains("From: \"Alice Display\" <alice@nym.example>"), "{h}");
    assert!(h.contains("To: Bob <bob@example.org>") && h.contains("Cc: carol@example.org"), "{h}");
    assert!(h.contains("Subject: Example"));
    for gone in ["Bcc", "X-Mailer", "User-Agent", "Received", "X-Originating-IP", "Sender", "Return-Path"] {
        assert!(
            !h.lines()
                .any(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", gone.to_ascii_lowercase()))),
            "{gone} left in\n{h}"
        );
    }
    assert!(!m.msg.contains("dave@example.org"), "Bcc recipient visible");
    assert!(!m.msg.contains("192.168.1.7") && !m.msg.contains("real@person"));
    let msgid = h.lines().find_map(|l| l.strip_prefix("Message-ID: ")).expect("Message-ID");
    assert!(msgid.ends_with("@nym.example>"), "{msgid}");
    assert!(h.lines().any(|l| l.starts_with("Date: ")), "Date not set");
    assert!(m.msg.ends_with("This is an example\n"));
    // acksend: the nym is told recipients, Subject and Message-ID.
    let ack =
        notices(&s, &g, "panda").into_iter().find(|t| t.contains("Subject: Message sent")).expect("ack");
    assert!(ack.contains("bob@example.org") && ack.contains("Example") && ack.contains(msgid), "{ack}");
}

#[test]
fn forged_from_leaves_with_the_signers_nym() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let cap = Capture::install(&s);
    // Zax format (a From: with a display name): the address is ignored.
    let msg = "From: Someone <someoneelse@nym.example>\nTo: bob@example.org\nSubject: forged\n\nhi\n";
    assert_eq!(send_as(&s, &g, "alice@nym.example", msg), 0);
    let sent = cap.sent();
    assert_eq!(sent.len(), 1);
    assert!(header_block(&sent[0].msg).contains("From: \"Someone\" <alice@nym.example>"), "{}", sent[0].msg);
    assert!(!sent[0].msg.contains("someoneelse"));
    // acksend off: no confirmation beyond the creation one.
    assert_eq!(s.articles_for_hsub("panda").len(), 1);
    // A bare hosted address is the nym.alias.net format (REPLY-BLOCKS.md
    // 8.1), whose From: must name the signer: not sent, the nym told.
    let msg = "From: someoneelse@nym.example\nTo: bob@example.org\nSubject: forged\n\nhi\n";
    assert_eq!(send_as(&s, &g, "alice@nym.example", msg), 0);
    assert_eq!(cap.sent().len(), 1);
    assert_eq!(s.articles_for_hsub("panda").len(), 2);
}

#[test]
fn unsigned_unknown_signer_and_deleted_nym_send_nothing() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let cap = Capture::install(&s);
    let msg = b"To: bob@example.org\nSubject: x\n\nhi\n";
    // Unsigned.
    let enc = g.encrypt("send@nym.example", msg);
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    // Signed by a key that is no nym.
    g.gen_modern("mallory@nym.example");
    let enc = g.sign_encrypt("send@nym.example", "mallory@nym.example", msg);
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    // Signed by a nym that was deleted.
    let del = g.sign_encrypt("config@nym.example", "alice@nym.example", b"delete: yes\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &del), 0);
    let enc = g.sign_encrypt("send@nym.example", "alice@nym.example", msg);
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    assert!(cap.sent().is_empty());
}

#[test]
fn same_ciphertext_twice_sends_once() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let cap = Capture::install(&s);
    let enc = g.sign_encrypt(
        "send@nym.example",
        "alice@nym.example",
        b"To: bob@example.org\nSubject: once\n\nhi\n",
    );
    // Two copies through different paths: different mail headers, same ciphertext.
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    assert_eq!(cap.sent().len(), 1);
}

#[test]
fn too_old_and_future_signatures_are_refused_and_the_nym_is_told() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let cap = Capture::install(&s);
    let sign_at = |when: Option<&str>, subject: &str| {
        let mut args = vec!["--passphrase", "", "--armor", "--sign", "--encrypt"];
        if let Some(w) = when {
            args.extend(["--ignore-time-conflict", "--faked-system-time", w]);
        }
        args.extend(["--recipient", "send@nym.example", "--local-user", "alice@nym.example"]);
        g.ok(&args, format!("To: bob@example.org\nSubject: {subject}\n\nhi\n").as_bytes())
    };
    // Dated three days ahead: refused.
    let enc = sign_at(Some(&chrono_like_ago(-3 * 86400)), "future");
    let (code, log) = s.deliver_logged("send@nym.example", &[b"Subject: x\n\n".as_slice(), &enc].concat());
    assert_eq!(code, 0);
    assert!(log.contains("signature_from_future"), "{log}");
    // Older than the window (shortened to 2 s here; 7 days by default): refused.
    s.set("send", "replay_window", "2");
    let enc = sign_at(None, "old");
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let (code, log) = s.deliver_logged("send@nym.example", &[b"Subject: x\n\n".as_slice(), &enc].concat());
    assert_eq!(code, 0);
    assert!(log.contains("signature_too_old"), "{log}");
    assert!(cap.sent().is_empty());
    let texts = notices(&s, &g, "panda");
    assert!(texts.iter().any(|t| t.contains("signature is too old")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("dated in the future")), "{texts:?}");
    // Fresh: sent.
    let enc = sign_at(None, "fresh");
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    assert_eq!(cap.sent().len(), 1);
}

/// `--faked-system-time` value for `secs` ago (negative: ahead).
fn chrono_like_ago(secs: i64) -> String {
    let t = nymgate::store::now() - secs;
    format!("{t}!")
}

#[test]
fn send_that_arrives_before_creation_is_sent_once_the_nym_exists() {
    let s = Server::new(&["nym.example"]);
    let cap = Capture::install(&s);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("early@nym.example");
    let enc = g.sign_encrypt(
        "send@nym.example",
        "early@nym.example",
        b"To: bob@example.org\nSubject: early\n\nhi\n",
    );
    let (code, log) = s.deliver_logged("send@nym.example", &[b"Subject: x\n\n".as_slice(), &enc].concat());
    assert_eq!(code, 0);
    assert!(log.contains("held_unknown_signer"), "{log}");
    assert!(cap.sent().is_empty());
    let req = g.creation_request("early@nym.example", "nym.example", "hsub: early\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let sent = cap.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].msg.contains("From: early@nym.example"));
    // The hold is gone: a later creation copy does not send it again.
    let req2 = g.creation_request("early@nym.example", "nym.example", "hsub: early\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req2), 0);
    assert_eq!(cap.sent().len(), 1);
    assert!(s.db_snapshot().lines().all(|l| !l.starts_with("Text(\"held\")")));
}

#[test]
fn expired_holds_are_erased() {
    let s = Server::new(&["nym.example"]);
    s.set("send", "hold_time", "1");
    let cap = Capture::install(&s);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("late@nym.example");
    let enc =
        g.sign_encrypt("send@nym.example", "late@nym.example", b"To: bob@example.org\nSubject: x\n\nhi\n");
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    assert!(s.db_snapshot().contains("held"));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(s.admin(&["flush"]).status.success());
    assert!(!s.db_snapshot().contains("held"), "expired hold not erased");
    let req = g.creation_request("late@nym.example", "nym.example", "");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    assert!(cap.sent().is_empty());
}

#[test]
fn daily_limit_refuses_and_tells_once() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    s.set("send", "daily_limit", "2");
    let cap = Capture::install(&s);
    for i in 0..4 {
        let m = format!("To: bob@example.org\nSubject: n{i}\n\nhi\n");
        assert_eq!(send_as(&s, &g, "alice@nym.example", &m), 0);
    }
    assert_eq!(cap.sent().len(), 2);
    let texts = notices(&s, &g, "panda");
    assert_eq!(texts.iter().filter(|t| t.contains("Daily send limit reached")).count(), 1, "{texts:?}");
}

#[test]
fn block_list_refuses_those_recipients_and_tells_the_nym() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let list = s.dir.path().join("blocklist");
    std::fs::write(&list, "# asked never to hear from nyms\nbob@example.org\n@quiet.example\n").unwrap();
    s.set("send", "blocklist", &format!("\"{}\"", list.display()));
    let cap = Capture::install(&s);
    let m = "To: bob@example.org, carol@example.org\nCc: x@quiet.example\nSubject: hello\n\nhi\n";
    assert_eq!(send_as(&s, &g, "alice@nym.example", m), 0);
    let sent = cap.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].args.iter().skip_while(|a| *a != "--").skip(1).cloned().collect::<Vec<_>>(),
        vec!["carol@example.org"]
    );
    let texts = notices(&s, &g, "panda");
    assert!(texts.iter().any(|t| t.contains("block list") && t.contains("bob@example.org")), "{texts:?}");
    // Only blocked recipients: nothing sent, nym told.
    assert_eq!(send_as(&s, &g, "alice@nym.example", "To: bob@example.org\nSubject: again\n\nhi\n"), 0);
    assert_eq!(cap.sent().len(), 1);
}

#[test]
fn no_recipient_gets_an_error_notice() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let cap = Capture::install(&s);
    assert_eq!(send_as(&s, &g, "alice@nym.example", "Subject: to nobody\n\nhi\n"), 0);
    assert!(cap.sent().is_empty());
    let texts = notices(&s, &g, "panda");
    assert!(texts.iter().any(|t| t.contains("names no recipient")), "{texts:?}");
}

#[test]
fn newsgroups_posts_to_usenet_as_the_nym() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let cap = Capture::install(&s);
    let m = "From: forged@example.org\nNewsgroups: alt.test\nTo: bob@example.org\nSubject: hello usenet\nUser-Agent: X\n\
             Approved: moderator@example.org\nControl: cancel <victim@example.org>\nSupersedes: <victim@example.org>\n\nposted\n";
    assert_eq!(send_as(&s, &g, "alice@nym.example", m), 0);
    assert_eq!(cap.sent().len(), 1, "both mail and news happen");
    let post = s.articles().into_iter().find(|a| a.subject == "hello usenet").expect("news post in spool");
    assert!(post.headers.contains("From: alice@nym.example"), "{}", post.headers);
    assert!(post.headers.contains("Newsgroups: alt.test"));
    assert!(post.headers.contains("Injection-Date: "));
    assert!(
        !post.headers.contains("forged@")
            && !post.headers.contains("User-Agent")
            && !post.headers.contains("To: ")
    );
    assert!(!post.headers.contains("victim") && !post.headers.contains("Approved"), "{}", post.headers);
    assert_eq!(post.body, "posted\n");
}

#[test]
fn disable_stops_sending_and_receiving_enable_restores() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let cap = Capture::install(&s);
    assert!(s.admin(&["nym", "disable", "alice@nym.example"]).status.success());
    assert_eq!(send_as(&s, &g, "alice@nym.example", "To: bob@example.org\nSubject: a\n\nhi\n"), 0);
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 67);
    assert!(cap.sent().is_empty());
    assert!(s.admin(&["nym", "enable", "alice@nym.example"]).status.success());
    assert_eq!(send_as(&s, &g, "alice@nym.example", "To: bob@example.org\nSubject: b\n\nhi\n"), 0);
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 0);
    assert_eq!(cap.sent().len(), 1);
}

#[test]
fn failing_sendmail_keeps_the_mail_queued_until_flush() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    s.set("mail", "transport", "\"sendmail\"");
    s.set("mail", "sendmail", "[\"/bin/false\"]");
    assert_eq!(send_as(&s, &g, "alice@nym.example", "To: bob@example.org\nSubject: q\n\nhi\n"), 0);
    assert!(s.db_snapshot().contains("Text(\"mail\")"), "mail not queued");
    let cap = Capture::install(&s);
    // The failed item backs off; make it due now for the test.
    let conn = rusqlite::Connection::open(s.home.join("nymgate.db")).unwrap();
    conn.execute("UPDATE outbox SET due = 0", []).unwrap();
    drop(conn);
    assert!(s.admin(&["flush"]).status.success());
    assert!(s.admin(&["flush"]).status.success());
    assert_eq!(cap.sent().len(), 1);
    assert!(!s.db_snapshot().contains("Text(\"mail\")"));
}

#[test]
fn bare_cr_and_nul_cannot_smuggle_headers() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let cap = Capture::install(&s);
    let msg = "To: bob@example.org\nSubject: hi\rFrom: ceo@bank.example\rBcc: spy@evil.example\nFrom\0: ceo@bank.example\n\nbody\n";
    assert_eq!(send_as(&s, &g, "alice@nym.example", msg), 0);
    let sent = cap.sent();
    assert_eq!(sent.len(), 1);
    let h = header_block(&sent[0].msg);
    assert!(!sent[0].msg.contains('\r') && !sent[0].msg.contains('\0'), "{h:?}");
    assert_eq!(h.lines().filter(|l| l.starts_with("From:")).count(), 1, "{h}");
    assert!(h.lines().any(|l| l == "From: alice@nym.example"), "{h}");
    assert!(!sent[0].args.iter().any(|a| a.contains("spy@")), "{:?}", sent[0].args);
}

#[test]
fn addresses_in_display_names_and_resent_headers_do_not_leave() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let cap = Capture::install(&s);
    for from in [
        "\"ceo@bank.example\" <alice@nym.example>",
        "=?UTF-8?B?Y2VvQGJhbmsuZXhhbXBsZQ==?= <alice@nym.example>",
    ] {
        let msg = format!(
            "From: {from}\nTo: bob@example.org\nResent-From: ceo@bank.example\nResent-Sender: ceo@bank.example\n\nx\n"
        );
        assert_eq!(send_as(&s, &g, "alice@nym.example", &msg), 0);
    }
    for m in cap.sent() {
        assert!(!m.msg.contains("ceo@bank"), "{}", m.msg);
        assert!(header_block(&m.msg).lines().any(|l| l == "From: alice@nym.example"), "{}", m.msg);
    }
}

#[test]
fn every_shown_to_and_cc_address_gets_the_mail() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let cap = Capture::install(&s);
    let msg = "To: a@example.org\nTo: b@example.org\nCc: c@example.org\nCc: d@example.org\n\nx\n";
    assert_eq!(send_as(&s, &g, "alice@nym.example", msg), 0);
    let args = cap.sent()[0].args.join(" ");
    assert!(args.ends_with("-- a@example.org b@example.org c@example.org d@example.org"), "{args}");
}

#[test]
fn eight_bit_body_leaves_byte_for_byte() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let body: &[u8] = b"caf\xe9 cr\xe8me \xff\n";
    let mut msg = b"To: bob@example.org\nContent-Type: text/plain; charset=iso-8859-1\n\n".to_vec();
    msg.extend_from_slice(body);
    let cap = Capture::install(&s);
    let enc = g.sign_encrypt("send@nym.example", "alice@nym.example", &msg);
    assert_eq!(s.deliver_pgp("send@nym.example", &enc), 0);
    let mails = files(&cap.dir, "msg");
    assert_eq!(mails.len(), 1);
    let bytes = std::fs::read(&mails[0]).unwrap();
    assert!(bytes.ends_with(body), "{:?}", String::from_utf8_lossy(&bytes));
}

#[test]
fn too_many_recipients_are_refused_and_the_nym_told() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let cap = Capture::install(&s);
    let many: Vec<String> = (0..1000).map(|i| format!("r{i}@example.org")).collect();
    let msg = format!("To: {}\nSubject: blast\n\nx\n", many.join(", "));
    assert_eq!(send_as(&s, &g, "alice@nym.example", &msg), 0);
    assert!(cap.sent().is_empty());
    let told = notices(&s, &g, "panda");
    assert!(told.iter().any(|t| t.contains("1000 recipients") && t.contains("at most 20")), "{told:?}");
}
