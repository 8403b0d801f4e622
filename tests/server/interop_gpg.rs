//! The seed guide's steps, done with real GnuPG (and once with sq) against
//! the real `nymgate` binary. Each test is one rule of PROTOCOL.md.

use crate::util::*;
use std::process::Command;

fn decrypt_article_ok(g: &Gpg, a: &Article) -> String {
    let o = g.decrypt(a.body.as_bytes());
    assert!(o.ok, "gpg --decrypt failed: {}", o.stderr);
    assert!(o.stderr.contains("Good signature from"), "no good signature: {}", o.stderr);
    assert!(o.stderr.contains("config@nym.example"), "signer is not the server: {}", o.stderr);
    String::from_utf8(o.stdout).unwrap()
}

fn only(mut v: Vec<Article>) -> Article {
    assert_eq!(v.len(), 1, "expected exactly one matching article");
    v.pop().unwrap()
}

#[test]
fn creation_as_in_the_seed_guide_confirms_on_aam_by_hsub() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    // Step 1: import the server key.
    g.import(&s.key_export());
    // Step 2: key pair, export, prepend options, encrypt to config@.
    g.gen_modern("alice@nym.example");
    let mut pubkey = b"hsub: panda\n".to_vec();
    pubkey.extend_from_slice(&g.export("alice@nym.example"));
    let req = g.encrypt("config@nym.example", &pubkey);
    // Step 3: send it.
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    // Step 4: find our article by hSub.
    let a = only(s.articles_for_hsub("panda"));
    for h in [
        "Newsgroups: alt.anonymous.messages",
        "Path: ",
        "From: ",
        "Message-ID: <",
        "Date: ",
        "Injection-Date: ",
    ] {
        assert!(a.headers.contains(h), "missing {h} in\n{}", a.headers);
    }
    assert!(a.headers.contains("Injection-Info: nym.example; mail-complaints-to=\"abuse@nym.example\""));
    assert_eq!(a.subject.len(), 48);
    // Step 5: decrypt it; the recipient is hidden.
    let o = g.decrypt(a.body.as_bytes());
    assert!(o.stderr.contains("anonymous recipient"), "recipient not hidden: {}", o.stderr);
    let text = decrypt_article_ok(&g, &a);
    assert!(text.contains("alice@nym.example was created"), "{text}");
    assert!(text.contains("hsub:       \"panda\""), "{text}");
    // The operator sees the nym.
    let list = String::from_utf8(s.admin(&["nym", "list"]).stdout).unwrap();
    assert!(list.contains("alice@nym.example\tactive"), "{list}");
}

#[test]
fn rsa4096_nym_key_as_the_guide_makes() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_key("John Doe <nym@nym.example>", "rsa4096", "6m");
    let req = g.creation_request("nym@nym.example", "nym.example", "hsub: rsa-pass\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let a = only(s.articles_for_hsub("rsa-pass"));
    assert!(decrypt_article_ok(&g, &a).contains("nym@nym.example was created"));
    // Mail to it arrives too.
    assert_eq!(s.deliver_raw("nym@nym.example", b"From: bob@example.org\nSubject: hi\n\nhello rsa\n"), 0);
    let arts = s.articles_for_hsub("rsa-pass");
    assert_eq!(arts.len(), 2);
}

#[test]
fn mail_to_the_nym_is_the_whole_message_signed_and_encrypted() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let mail =
        b"From: Bob <bob@example.org>\nTo: alice@nym.example\nSubject: secret plans\n\nMeet at noon.\n";
    assert_eq!(s.deliver_raw("Alice@NYM.example", mail), 0);
    let arts = s.articles_for_hsub("panda");
    assert_eq!(arts.len(), 2);
    let texts: Vec<String> = arts.iter().map(|a| decrypt_article_ok(&g, a)).collect();
    assert!(texts.iter().any(|t| t.as_bytes() == mail), "payload not the message as received: {texts:?}");
    // The subject of the mail never shows on the article.
    assert!(arts.iter().all(|a| !a.headers.contains("secret plans")));
}

#[test]
fn symmetric_option_needs_passphrase_then_key() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let req = g.sign_encrypt("config@nym.example", "alice@nym.example", b"symmetric: sesame\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nbody two\n"), 0);
    let arts = s.articles_for_hsub("panda");
    assert_eq!(arts.len(), 3);
    let mut layered = 0;
    for a in &arts {
        let outer = g.decrypt_pass(a.body.as_bytes(), "sesame");
        assert!(outer.ok, "{}", outer.stderr);
        let inner = String::from_utf8(outer.stdout).unwrap();
        if inner.contains("was created") {
            continue; // the creation confirmation, from before the change: one layer
        }
        layered += 1;
        assert!(inner.starts_with("-----BEGIN PGP MESSAGE-----"), "{inner}");
        // Without the passphrase the outer layer does not open.
        assert!(!g.decrypt_pass(a.body.as_bytes(), "wrong").ok);
        let o = g.decrypt(inner.as_bytes());
        assert!(o.ok && o.stderr.contains("Good signature"), "{}", o.stderr);
    }
    assert_eq!(layered, 2, "the confirmation of the change and the mail must both be layered");
}

#[test]
fn subject_option_gives_a_plain_subject() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let req =
        g.sign_encrypt("config@nym.example", "alice@nym.example", b"hsub: none\nsubject: my-fixed-subject\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 0);
    let plain: Vec<_> = s.articles().into_iter().filter(|a| a.subject == "my-fixed-subject").collect();
    assert_eq!(plain.len(), 2, "change confirmation and the mail");
    for a in &plain {
        decrypt_article_ok(&g, a);
    }
}

#[test]
fn no_subject_option_gives_random_hsub_lookalike() {
    let (s, g) = server_with_nym("alice", "");
    let a = only(s.articles());
    assert_eq!(a.subject.len(), 48);
    assert!(a.subject.bytes().all(|b| b.is_ascii_hexdigit()));
    decrypt_article_ok(&g, &a);
}

#[test]
fn status_request_lists_options() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let req = g.sign_encrypt("config@nym.example", "alice@nym.example", b"");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let arts = s.articles_for_hsub("panda");
    let texts: Vec<String> = arts.iter().map(|a| decrypt_article_ok(&g, a)).collect();
    let status = texts.iter().find(|t| t.contains("Subject: Nym status")).expect("status reply");
    assert!(status.contains("acksend:    no"), "{status}");
}

#[test]
fn delete_confirms_then_erases_everything() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let fpr = g.fingerprint("alice@nym.example");
    let req = g.sign_encrypt("config@nym.example", "alice@nym.example", b"delete: yes\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let texts: Vec<String> = s.articles_for_hsub("panda").iter().map(|a| decrypt_article_ok(&g, a)).collect();
    assert!(texts.iter().any(|t| t.contains("is deleted")), "{texts:?}");
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 67);
    let list = s.admin(&["nym", "list"]);
    assert!(list.stdout.is_empty());
    // Nothing recoverable: neither the name nor the key's fingerprint is
    // left anywhere in the database files.
    for f in ["nymgate.db", "nymgate.db-wal"] {
        let Ok(bytes) = std::fs::read(s.home.join(f)) else { continue };
        let hay = String::from_utf8_lossy(&bytes).to_string();
        assert!(!hay.contains("alice@nym.example"), "{f} still holds the nym name");
        assert!(!hay.contains(&fpr), "{f} still holds the fingerprint");
    }
}

#[test]
fn taken_name_is_refused_with_notice_to_the_new_key() {
    let (s, _alice) = server_with_nym("alice", "hsub: panda\n");
    let before = s.db_snapshot();
    let intruder = Gpg::new();
    intruder.import(&s.key_export());
    intruder.gen_modern("alice@nym.example");
    let req = intruder.creation_request("alice@nym.example", "nym.example", "hsub: grabber\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let a = only(s.articles_for_hsub("grabber"));
    let o = intruder.decrypt(a.body.as_bytes());
    assert!(o.ok, "{}", o.stderr);
    assert!(String::from_utf8_lossy(&o.stdout).contains("already taken"));
    // The state is unchanged apart from the queued notice (already handed off).
    assert_eq!(before, s.db_snapshot());
}

#[test]
fn reserved_name_is_refused_with_notice() {
    let s = Server::new(&["nym.example"]);
    let before = s.db_snapshot();
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("postmaster@nym.example");
    let req = g.creation_request("postmaster@nym.example", "nym.example", "hsub: pm\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let a = only(s.articles_for_hsub("pm"));
    let o = g.decrypt(a.body.as_bytes());
    assert!(String::from_utf8_lossy(&o.stdout).contains("is reserved"));
    assert_eq!(before, s.db_snapshot());
    // Reserved names other than the operator's role addresses get no mail.
    assert_eq!(s.deliver_raw("admin@nym.example", b"Subject: x\n\nx\n"), 67);
}

#[test]
fn extra_copies_of_a_creation_make_one_nym_and_no_error() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("alice@nym.example");
    // Two copies, encrypted separately as two remailer paths would carry them.
    let c1 = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    let c2 = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &c1), 0);
    assert_eq!(s.deliver_pgp("config@nym.example", &c2), 0);
    assert_eq!(s.articles_for_hsub("panda").len(), 1);
    let list = String::from_utf8(s.admin(&["nym", "list"]).stdout).unwrap();
    assert_eq!(list.lines().count(), 1);
}

#[test]
fn same_key_with_new_expiry_is_a_refresh() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let fpr = g.fingerprint("alice@nym.example");
    g.ok(&["--passphrase", "", "--quick-set-expire", &fpr, "2y"], b"");
    let req = g.creation_request("alice@nym.example", "nym.example", "hsub: ignored-on-refresh\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let texts: Vec<String> = s.articles_for_hsub("panda").iter().map(|a| decrypt_article_ok(&g, a)).collect();
    assert!(texts.iter().any(|t| t.contains("key was refreshed")), "{texts:?}");
    let show = String::from_utf8(s.admin(&["nym", "show", "alice@nym.example"]).stdout).unwrap();
    let year_now: i32 = 1970 + (nymgate::store::now() / 31_557_600) as i32;
    assert!(show.contains(&format!("{}", year_now + 2)), "expiry not extended: {show}");
}

#[test]
fn creation_with_sq_as_the_client() {
    let s = Server::new(&["nym.example"]);
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f);
    std::fs::write(p("server.pgp"), s.key_export()).unwrap();
    let sq = |args: &[&str]| {
        let o = Command::new("sq").args(args).output().unwrap();
        assert!(o.status.success(), "sq {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    sq(&["key", "generate", "--userid", "<carol@nym.example>", "--export", p("carol.tsk").to_str().unwrap()]);
    let cert = sq(&["key", "extract-cert", p("carol.tsk").to_str().unwrap()]);
    let mut req = b"hsub: sq-pass\n".to_vec();
    req.extend_from_slice(&cert);
    std::fs::write(p("req.txt"), &req).unwrap();
    let enc = sq(&[
        "encrypt",
        "--recipient-cert",
        p("server.pgp").to_str().unwrap(),
        p("req.txt").to_str().unwrap(),
    ]);
    assert_eq!(s.deliver_pgp("config@nym.example", &enc), 0);
    let a = only(s.articles_for_hsub("sq-pass"));
    std::fs::write(p("art.asc"), &a.body).unwrap();
    let o = Command::new("sq")
        .args(["decrypt", "--recipient-key", p("carol.tsk").to_str().unwrap()])
        .args(["--signer-cert", p("server.pgp").to_str().unwrap(), p("art.asc").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "sq decrypt: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("carol@nym.example was created"));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Good signature"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn gpg_shows_the_notice_mark_on_server_notices_only() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    // A forged "notice": plain mail that claims to come from config@.
    let forged = b"From: config@nym.example\nSubject: Nym deleted\n\nRe-create it with the attached key.\n";
    assert_eq!(s.deliver_raw("alice@nym.example", forged), 0);
    let mut marked = 0;
    for a in s.articles_for_hsub("panda") {
        let o = g.run(&["--verify-options", "show-notations", "--decrypt"], a.body.as_bytes());
        assert!(o.ok && o.stderr.contains("Good signature"), "{}", o.stderr);
        let text = String::from_utf8_lossy(&o.stdout);
        let is_notice = o.stderr.contains("notice@nymgate.invalid=config");
        if text.contains("Re-create it") {
            assert!(!is_notice, "relayed mail carries the notice mark:\n{}", o.stderr);
        } else {
            assert!(text.contains("Subject: Nym created"), "{text}");
            assert!(is_notice, "the creation notice lacks the mark:\n{}", o.stderr);
            marked += 1;
        }
    }
    assert_eq!(marked, 1);
}

/// A mail of `n` bytes whose body does not compress or repeat.
fn mail_of(n: usize, tag: &str) -> Vec<u8> {
    let mut m =
        format!("From: Bob <bob@example.org>\nTo: alice@nym.example\nSubject: {tag}\n\n").into_bytes();
    while m.len() < n {
        m.extend_from_slice(rand_hex().as_bytes());
        m.push(if m.len() % 70 < 16 { b'\n' } else { b' ' });
    }
    m.truncate(n - 1);
    m.push(b'\n');
    m
}

#[test]
fn articles_of_every_size_class_read_in_gpg_and_sq_as_if_unpadded() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f);
    std::fs::write(p("server.pgp"), s.key_export()).unwrap();
    std::fs::write(p("alice.tsk"), g.ok(&["--export-secret-keys", "alice@nym.example"], b"")).unwrap();
    // Two sizes in each class (16, 64, 256, 704 KiB, then whole MiB).
    let sizes: [(usize, usize); 6] = [
        (300, 12_000),
        (17_000, 60_000),
        (70_000, 250_000),
        (300_000, 700_000),
        (730_000, 1_000_000),
        (1_100_000, 2_000_000),
    ];
    let mut seen = s.articles_for_hsub("panda").len();
    let mut last_class_len = 0;
    for (i, &(small, large)) in sizes.iter().enumerate() {
        let mut lens = Vec::new();
        for n in [small, large] {
            let mail = mail_of(n, &format!("class-{i}-{n}"));
            assert_eq!(s.deliver_raw("alice@nym.example", &mail), 0);
            let arts = s.articles_for_hsub("panda");
            assert_eq!(arts.len(), seen + 1);
            seen += 1;
            let a = arts
                .into_iter()
                .find(|a| decrypt_article_ok(&g, a).as_bytes() == mail)
                .expect("the new article");
            // GnuPG says nothing about the padding.
            let o = g.decrypt(a.body.as_bytes());
            assert!(o.ok);
            for word in ["marker", "packet", "invalid", "padding", "warning: message", "decryption failed"] {
                assert!(!o.stderr.to_lowercase().contains(word), "gpg on {n} bytes: {}", o.stderr);
            }
            // sq reads it too, with the server's signature.
            std::fs::write(p("art.asc"), &a.body).unwrap();
            let o = Command::new("sq")
                .args(["decrypt", "--recipient-key", p("alice.tsk").to_str().unwrap()])
                .args(["--signer-cert", p("server.pgp").to_str().unwrap(), p("art.asc").to_str().unwrap()])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "sq decrypt of {n} bytes: {err}");
            assert!(err.contains("Good signature"), "{err}");
            assert_eq!(o.stdout, mail, "sq plaintext of {n} bytes");
            lens.push(a.body.len());
        }
        assert_eq!(lens[0], lens[1], "class {i}: a {small}-byte and a {large}-byte mail differ in size");
        assert!(lens[0] > last_class_len, "class {i} is not larger than the one below");
        last_class_len = lens[0];
    }
}

/// The fingerprints of the encryption subkeys of `uid`, oldest first.
fn encryption_subkeys(g: &Gpg, uid: &str) -> Vec<String> {
    let out = String::from_utf8(g.ok(&["--with-colons", "--list-keys", uid], b"")).unwrap();
    let mut v = Vec::new();
    let mut enc = false;
    for l in out.lines() {
        let f: Vec<&str> = l.split(':').collect();
        match f.first() {
            Some(&"sub") => enc = f.get(11).is_some_and(|c| c.contains('e')),
            Some(&"pub") => enc = false,
            Some(&"fpr") if enc => {
                v.push(f.get(9).unwrap_or(&"").to_string());
                enc = false;
            }
            _ => {}
        }
    }
    v
}

#[test]
fn a_gpg_holder_who_rotates_the_encryption_subkey_is_read_through_the_new_one_only() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let fpr = g.fingerprint("alice@nym.example");
    let old = encryption_subkeys(&g, "alice@nym.example");
    assert_eq!(old.len(), 1);
    // Creation times are in seconds: the new subkey must be visibly newer.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    g.ok(&["--passphrase", "", "--quick-add-key", &fpr, "cv25519", "encr", "1y"], b"");
    let both = encryption_subkeys(&g, "alice@nym.example");
    assert_eq!(both.len(), 2);
    let new = both.iter().find(|f| **f != old[0]).unwrap().clone();
    // The refresh: the whole public key again, to config@.
    let req = g.creation_request("alice@nym.example", "nym.example", "");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    // While it holds both secrets, gpg tries each on a hidden recipient
    // and complains about the one that does not fit (exit 2), but shows
    // the text.
    let texts: Vec<String> = s
        .articles_for_hsub("panda")
        .iter()
        .map(|a| String::from_utf8_lossy(&g.decrypt(a.body.as_bytes()).stdout).into_owned())
        .collect();
    assert!(texts.iter().any(|t| t.contains("key was refreshed")), "{texts:?}");
    // Someone who later gets hold of the old secret subkey (kept here in
    // a home of its own) must not read what comes after the rotation.
    let thief = Gpg::new();
    thief.import(
        &g.ok(&["--passphrase", "", "--armor", "--export-secret-subkeys", &format!("{}!", old[0])], b""),
    );
    // The holder destroys the old secret subkey.
    g.ok(&["--passphrase", "", "--delete-secret-keys", &format!("{}!", old[0])], b"");
    let listed = String::from_utf8(g.ok(&["--with-colons", "--list-secret-keys"], b"")).unwrap();
    assert!(listed.contains(&new), "{listed}");
    let before = s.articles_for_hsub("panda").len();
    assert_eq!(
        s.deliver_raw("alice@nym.example", b"From: bob@example.org\nSubject: hi\n\nafter the rotation\n"),
        0
    );
    let arts = s.articles_for_hsub("panda");
    assert_eq!(arts.len(), before + 1);
    let mail = arts
        .iter()
        .find(|a| {
            String::from_utf8_lossy(&g.decrypt(a.body.as_bytes()).stdout).contains("after the rotation")
        })
        .expect("the holder reads the new posting with the new subkey alone");
    decrypt_article_ok(&g, mail);
    // One encrypted session key only (recipient hidden), and the old
    // subkey does not open it.
    let packets = g.run(&["--list-packets"], mail.body.as_bytes());
    let pkesk = String::from_utf8_lossy(&packets.stdout).matches(":pubkey enc packet:").count();
    assert_eq!(pkesk, 1, "{}", String::from_utf8_lossy(&packets.stdout));
    let o = thief.decrypt(mail.body.as_bytes());
    assert!(!o.ok, "the old subkey still reads the new posting");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("after the rotation"));
}
