//! The whole life of a nym, with the real `nym` client against the real
//! `nymgate` server, news and mail going through the server's spools:
//! new, fetch the confirmation, mail in, send out, config, symmetric
//! layer, delete. Along the way plain gpg reads the same articles.

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

struct Life {
    _t: tempfile::TempDir,
    srv: Server,
    home: PathBuf,
    g: PathBuf,
}

impl Life {
    fn nym(&self) -> Command {
        nym(&self.home, &self.g)
    }

    fn fetch(&self) -> String {
        self.srv.flush();
        ok(
            self.nym().args(["fetch", "--server", &format!("spool:{}", self.srv.news_spool().display())]),
            None,
        )
    }

    fn read(&self) -> String {
        ok(self.nym().arg("read"), None)
    }
}

#[test]
fn the_whole_life_of_a_nym() {
    let t = tempfile::tempdir().unwrap();
    let srv = Server::for_client("nym.test");
    let l = Life { home: t.path().join("home"), g: gnupg_home(t.path()), srv, _t: t };
    let via = l.srv.via();

    // new: the server confirms on the newsgroup.
    ok(
        l.nym()
            .args(["new", "alice@nym.test", "--hsub", "panda", "--expire", "6m", "--via", &via])
            .arg("--server-key")
            .arg(l.srv.key_file()),
        None,
    );
    let f = l.fetch();
    assert_eq!(kept(&f), 1, "{f}");
    let r = l.read();
    assert!(r.contains("server signature: good"), "{r}");
    assert!(r.contains("alice@nym.test was created") || r.contains("created"), "{r}");
    assert!(r.contains("panda"), "confirmation lists the options: {r}");

    // Plain gpg reads the same article (hidden recipient, server signature).
    let article = maildir(&l.home, "cur").pop().unwrap();
    ok(gpg(&l.g).arg("--import").arg(l.srv.key_file()), None);
    let secret = ok(l.nym().args(["export", "alice@nym.test", "--secret"]), None);
    ok(gpg(&l.g).arg("--import"), Some(secret.as_bytes()));
    let out = run(gpg(&l.g).args(["--status-fd", "2", "--decrypt"]).arg(&article), None);
    let status = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{status}");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(status.contains("ENC_TO 0000000000000000"), "recipient should be hidden: {status}");

    // A second fetch reads nothing twice.
    let f = l.fetch();
    assert!(f.contains("0 examined, 0 kept"), "{f}");

    // Mail in: bob writes to the nym.
    let mail = "From: bob@example.org\nTo: alice@nym.test\nSubject: hello alice\nMessage-ID: <b1@example.org>\n\nHi Alice, bob here.\n";
    ok(
        l.srv.cmd().args(["deliver", "--recipient", "alice@nym.test", "--sender", "bob@example.org"]),
        Some(mail.as_bytes()),
    );
    assert_eq!(kept(&l.fetch()), 1);
    let r = l.read();
    assert!(r.contains("Hi Alice, bob here.") && r.contains("Subject: hello alice"), "{r}");
    assert!(r.contains("server signature: good"));

    // Send out: the server mails bob as the nym, and acknowledges.
    ok(
        l.nym().args([
            "send",
            "alice@nym.test",
            "--to",
            "bob@example.org",
            "--subject",
            "re: hello",
            "--via",
            &via,
        ]),
        Some(b"Hello Bob, from the nym.\n"),
    );
    l.srv.flush();
    let mails = l.srv.take_mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert!(m.contains("X-Nymgate-Envelope-To: bob@example.org"), "{m}");
    assert!(m.lines().any(|x| x.starts_with("From:") && x.contains("alice@nym.test")), "{m}");
    assert!(m.contains("Hello Bob, from the nym."));
    let f = l.fetch();
    assert_eq!(kept(&f), 1, "acksend confirmation expected: {f}");
    assert!(l.read().contains("bob@example.org"));

    // Config: a new hSub; the confirmation already carries it.
    ok(l.nym().args(["config", "alice@nym.test", "--hsub", "koala", "--via", &via]), None);
    assert_eq!(kept(&l.fetch()), 1);
    let r = l.read();
    assert!(r.contains("koala"), "{r}");
    ok(
        l.srv.cmd().args(["deliver", "--recipient", "alice@nym.test"]),
        Some(b"From: x@y.z\nSubject: s\n\nafter koala\n"),
    );
    assert_eq!(kept(&l.fetch()), 1);
    assert!(l.read().contains("after koala"));

    // Symmetric layer on: the client peels it.
    ok(l.nym().args(["config", "alice@nym.test", "--symmetric", "open sesame", "--via", &via]), None);
    assert_eq!(kept(&l.fetch()), 1);
    ok(
        l.srv.cmd().args(["deliver", "--recipient", "alice@nym.test"]),
        Some(b"From: x@y.z\nSubject: s\n\nwrapped twice\n"),
    );
    assert_eq!(kept(&l.fetch()), 1);
    let r = l.read();
    assert!(r.contains("wrapped twice") && r.contains("symmetric layer: removed"), "{r}");
    assert_eq!(r.matches("server signature: good").count(), 2, "{r}");

    // Delete: the last confirmation arrives, then the nym is gone.
    ok(l.nym().args(["delete", "alice@nym.test", "--yes", "--via", &via]), None);
    assert_eq!(kept(&l.fetch()), 1);
    assert!(l.read().contains("server signature: good"));
    let out =
        run(l.srv.cmd().args(["deliver", "--recipient", "alice@nym.test"]), Some(b"Subject: s\n\nlate\n"));
    assert_eq!(out.status.code(), Some(67), "mail to a deleted nym bounces");
    ok(l.nym().args(["delete", "alice@nym.test", "--forget"]), None);
    assert!(!ok(l.nym().arg("list"), None).contains("alice"));
}

#[test]
fn a_nym_without_subject_is_found_by_decryption() {
    let t = tempfile::tempdir().unwrap();
    let srv = Server::for_client("nym.test");
    let l = Life { home: t.path().join("home"), g: gnupg_home(t.path()), srv, _t: t };
    let via = l.srv.via();
    ok(l.nym().args(["new", "carol@nym.test", "--via", &via, "--server-key"]).arg(l.srv.key_file()), None);
    // Another nym's article must not be taken.
    let other_home = l._t.path().join("other");
    ok(
        nym(&other_home, &l.g)
            .args(["new", "dave@nym.test", "--via", &via, "--server-key"])
            .arg(l.srv.key_file()),
        None,
    );
    let f = l.fetch();
    assert!(f.contains("2 examined, 1 kept"), "{f}");
    let r = l.read();
    assert!(r.contains("carol@nym.test") && !r.contains("dave@nym.test"), "{r}");
}

#[test]
fn url_answers_are_fetched_and_read() {
    let t = tempfile::tempdir().unwrap();
    let srv = Server::for_client("nym.test");
    let cfg = std::fs::read_to_string(&srv.config)
        .unwrap()
        .replace("allow_private = false", "allow_private = true");
    std::fs::write(&srv.config, cfg).unwrap();
    let l = Life { home: t.path().join("home"), g: gnupg_home(t.path()), srv, _t: t };
    let via = l.srv.via();
    ok(
        l.nym()
            .args(["new", "erin@nym.test", "--hsub", "panda", "--via", &via, "--server-key"])
            .arg(l.srv.key_file()),
        None,
    );
    assert_eq!(kept(&l.fetch()), 1);
    l.read();
    let port = http_page("<html><body>a page for the nym</body></html>");
    ok(
        l.nym()
            .args(["url", "erin@nym.test", &format!("http://127.0.0.1:{port}/p"), "--key", "pagekey"])
            .args(["--via", &via]),
        None,
    );
    let f = l.fetch();
    assert_eq!(kept(&f), 1, "{f}");
    let r = l.read();
    assert!(r.contains("a page for the nym"), "{r}");
    assert!(r.contains("server signature: none"), "{r}");
}

#[test]
fn a_nym_created_by_plain_gpg_as_in_the_guide_is_usable_by_the_client() {
    let t = tempfile::tempdir().unwrap();
    let srv = Server::for_client("nym.test");
    let l = Life { home: t.path().join("home"), g: gnupg_home(t.path()), srv, _t: t };
    let g = &l.g;
    // The guide, step by step: import the server key, gpg --gen-key,
    // export, prepend an option line, encrypt to config@, mail it.
    ok(gpg(g).arg("--import").arg(l.srv.key_file()), None);
    let params = "Key-Type: RSA\nKey-Length: 2048\nSubkey-Type: RSA\nSubkey-Length: 2048\n\
                  Name-Real: frank\nName-Email: frank@nym.test\nExpire-Date: 6m\n%no-protection\n%commit\n";
    ok(gpg(g).arg("--gen-key"), Some(params.as_bytes()));
    let pubkey = ok(gpg(g).args(["--armor", "--export", "frank@nym.test"]), None);
    let request = ok(
        gpg(g).args(["--armor", "--encrypt", "--recipient", "config@nym.test"]),
        Some(format!("hsub: panda\n{pubkey}").as_bytes()),
    );
    let mail = format!("To: config@nym.test\n\n{request}");
    ok(l.srv.cmd().args(["deliver", "--recipient", "config@nym.test"]), Some(mail.as_bytes()));

    // The client adopts the nym and takes over.
    ok(
        l.nym()
            .args(["import", "frank@nym.test", "--from-gpg", "--hsub", "panda", "--server-key"])
            .arg(l.srv.key_file()),
        None,
    );
    assert_eq!(kept(&l.fetch()), 1);
    let r = l.read();
    assert!(r.contains("server signature: good") && r.contains("frank@nym.test"), "{r}");
    ok(
        l.nym().args(["send", "frank@nym.test", "--to", "bob@example.org", "--via", &l.srv.via()]),
        Some(b"sent by the client for a gpg-made nym\n"),
    );
    l.srv.flush();
    let mails = l.srv.take_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("sent by the client for a gpg-made nym"));
    assert!(mails[0].lines().any(|x| x.starts_with("From:") && x.contains("frank@nym.test")));
}

#[test]
fn sq_reads_client_requests_and_server_articles() {
    let t = tempfile::tempdir().unwrap();
    let srv = Server::for_client("nym.test");
    let l = Life { home: t.path().join("home"), g: gnupg_home(t.path()), srv, _t: t };
    let dir = l._t.path();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    ok(
        l.nym()
            .args(["new", "gina@nym.test", "--hsub", "panda", "--via", &l.srv.via(), "--server-key"])
            .arg(l.srv.key_file()),
        None,
    );
    std::fs::write(dir.join("gina.pub"), ok(l.nym().args(["export", "gina@nym.test"]), None)).unwrap();
    std::fs::write(dir.join("gina.sec"), ok(l.nym().args(["export", "gina@nym.test", "--secret"]), None))
        .unwrap();

    // A signed request from the client, opened by sq with the server's key.
    ok(
        l.nym().args([
            "send",
            "gina@nym.test",
            "--to",
            "bob@example.org",
            "--via",
            &format!("file:{}", out.display()),
        ]),
        Some(b"checked by sq\n"),
    );
    let mail = std::fs::read_to_string(&files(&out, "eml")[0]).unwrap();
    let o = run(
        Command::new("sq")
            .args(["decrypt", "--recipient-key"])
            .arg(l.srv.home.join("server.key"))
            .arg("--signer-cert")
            .arg(dir.join("gina.pub")),
        Some(body_of(&mail).as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("checked by sq"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 good signature"));

    // The server's confirmation article, opened by sq with the nym's key.
    assert_eq!(kept(&l.fetch()), 1);
    let art = std::fs::read_to_string(&maildir(&l.home, "new")[0]).unwrap();
    let o = run(
        Command::new("sq")
            .args(["decrypt", "--recipient-key"])
            .arg(dir.join("gina.sec"))
            .arg("--signer-cert")
            .arg(l.srv.key_file()),
        Some(body_of(&art).as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 good signature"));
}
