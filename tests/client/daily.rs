//! The client for daily use (issue 15), against the real `nym` and the
//! real `nymgate`: decoded MIME, server notices in `nym list`, hand-off
//! to directories and mboxes, renewal, eSub, remembered servers.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

struct Holder {
    t: tempfile::TempDir,
    srv: Server,
    home: PathBuf,
    g: PathBuf,
}

impl Holder {
    /// A holder with alice@nym.test created and its confirmation fetched.
    fn new() -> Holder {
        let h = Holder::bare();
        h.create("alice");
        h
    }

    fn bare() -> Holder {
        let t = tempfile::tempdir().unwrap();
        let srv = Server::for_client("nym.test");
        Holder { home: t.path().join("home"), g: gnupg_home(t.path()), srv, t }
    }

    fn create(&self, name: &str) -> String {
        let via = self.srv.via();
        let out = run(
            self.nym()
                .args([
                    "new",
                    &format!("{name}@nym.test"),
                    "--hsub",
                    &format!("{name}-hsub"),
                    "--expire",
                    "6m",
                ])
                .args(["--via", &via])
                .arg("--server-key")
                .arg(self.srv.key_file()),
            None,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.fetch()
    }

    fn nym(&self) -> Command {
        nym(&self.home, &self.g)
    }

    fn spool(&self) -> String {
        format!("spool:{}", self.srv.news_spool().display())
    }

    fn fetch(&self) -> String {
        self.srv.flush();
        ok(self.nym().args(["fetch", "--server", &self.spool()]), None)
    }

    fn list(&self) -> String {
        ok(self.nym().arg("list"), None)
    }
}

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const MULTIPART: &[u8] = b"From: Bob <bob@example.org>\r
To: alice@nym.test\r
Subject: =?ISO-8859-1?Q?Gr=FC=DFe_und_ein_Bild?=\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary=\"b1\"\r
\r
--b1\r
Content-Type: text/plain; charset=iso-8859-1\r
Content-Transfer-Encoding: quoted-printable\r
\r
Sch=F6ne Gr=FC=DFe, hier ist die Datei.\r
--b1\r
Content-Type: application/octet-stream; name=\"../../report.bin\"\r
Content-Disposition: attachment; filename=\"../../report.bin\"\r
Content-Transfer-Encoding: base64\r
\r
AAECAwRub24tdGV4dP8=\r
--b1--\r
";

#[test]
fn read_decodes_mime_saves_attachments_and_fills_a_maildir() {
    let h = Holder::new();
    ok(h.nym().arg("read"), None);
    assert_eq!(h.srv.deliver_raw("alice@nym.test", MULTIPART), 0);
    assert_eq!(kept(&h.fetch()), 1);
    let save = h.t.path().join("attachments");
    let md = h.t.path().join("Mail");
    let out = ok(
        h.nym().arg("read").arg("--save").arg(&save).arg("--maildir").arg(&md).env("NYM_FORCE_TTY", "1"),
        None,
    );
    // Charset and transfer encodings applied, the attachment listed.
    assert!(out.contains("Subject: Grüße und ein Bild"), "{out}");
    assert!(out.contains("Schöne Grüße, hier ist die Datei."), "{out}");
    assert!(out.contains("[attachment 1: ../../report.bin (application/octet-stream, 14 bytes)]"), "{out}");
    assert!(!out.contains("AAECAwRub24"), "base64 is not shown: {out}");
    // Saved inside the directory, under a cleaned name, 0600 in a 0700 dir.
    let saved = save.join("report.bin");
    assert_eq!(fs::read(&saved).unwrap(), b"\x00\x01\x02\x03\x04non-text\xff");
    assert_eq!(mode(&save), 0o700);
    assert_eq!(mode(&saved), 0o600);
    assert!(!h.t.path().join("report.bin").exists());
    // The Maildir holds the decrypted message, readable by any mail reader.
    assert_eq!(mode(&md), 0o700);
    let delivered: Vec<_> = fs::read_dir(md.join("new")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(delivered.len(), 1);
    let text = fs::read_to_string(&delivered[0]).unwrap();
    assert!(text.starts_with("X-Nym-For: alice@nym.test\r\nX-Nym-Verdict: mail relayed"), "{text}");
    assert!(text.contains("Content-Transfer-Encoding: base64") && !text.contains("BEGIN PGP"), "{text}");
    assert_eq!(mode(&delivered[0]), 0o600);
    // The verdict line still comes last.
    let verdict = out.rfind("mail relayed to you by the server; server signature: good").unwrap();
    assert!(verdict > out.find("[saved").unwrap(), "{out}");
    // --raw shows the message as it came.
    let raw = ok(h.nym().args(["read", "--all", "--raw"]), None);
    assert!(raw.contains("AAECAwRub24tdGV4dP8="), "{raw}");
}

#[test]
fn server_notices_change_the_state_and_bad_names_are_refused_before_sending() {
    let h = Holder::new();
    assert!(h.list().contains("state=requested"), "{}", h.list());
    let r = ok(h.nym().arg("read"), None);
    assert!(r.contains("alice@nym.test: state now active"), "{r}");
    assert!(h.list().contains("state=active"), "{}", h.list());

    // Relayed mail that claims to be a notice changes nothing.
    let forged = b"From: config@nym.test\nSubject: Nym deleted\n\nbye\n";
    assert_eq!(h.srv.deliver_raw("alice@nym.test", forged), 0);
    h.fetch();
    let r = ok(h.nym().arg("read"), None);
    assert!(!r.contains("state now"), "{r}");
    assert!(h.list().contains("state=active"), "{}", h.list());

    // Another holder asks for the same name: the server refuses, and that
    // holder's list says so.
    let home2 = h.t.path().join("home2");
    let via = h.srv.via();
    ok(
        nym(&home2, &h.g)
            .args(["new", "alice@nym.test", "--hsub", "other", "--via", &via])
            .arg("--server-key")
            .arg(h.srv.key_file()),
        None,
    );
    h.srv.flush();
    ok(nym(&home2, &h.g).args(["fetch", "--server", &h.spool()]), None);
    let r = ok(nym(&home2, &h.g).arg("read"), None);
    assert!(r.contains("state now refused: name taken"), "{r}");
    let l2 = ok(nym(&home2, &h.g).arg("list"), None);
    assert!(l2.contains("state=refused: name taken"), "{l2}");

    // Reserved and malformed names never leave the machine.
    for (name, why) in [
        ("admin", "reserved"),
        ("config", "reserved"),
        ("x-", "cannot be a nym name"),
        ("a", "cannot be a nym name"),
    ] {
        let out = run(
            h.nym()
                .args(["new", &format!("{name}@nym.test"), "--via", &via])
                .arg("--server-key")
                .arg(h.srv.key_file()),
            None,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{name}: {err}");
        assert!(err.contains(why), "{name}: {err}");
    }
    assert!(!h.list().contains("admin"));

    // Delete: requested, then confirmed by the server's notice.
    ok(h.nym().args(["delete", "alice@nym.test", "--yes", "--via", &via]), None);
    assert!(h.list().contains("DELETED (requested)"), "{}", h.list());
    h.fetch();
    let r = ok(h.nym().arg("read"), None);
    assert!(r.contains("state now deleted"), "{r}");
    assert!(h.list().contains("DELETED (the server confirmed)"), "{}", h.list());
}

#[test]
fn file_hand_off_is_a_directory_mbox_is_one_file_and_a_local_server_is_one_line() {
    let h = Holder::bare();
    let key = h.srv.key_file();
    // file:DIR with a missing DIR: created 0700, one file per request.
    let out = h.t.path().join("outgoing");
    let via = format!("file:{}", out.display());
    ok(
        h.nym().args(["new", "alice@nym.test", "--hsub", "a", "--via", &via]).arg("--server-key").arg(&key),
        None,
    );
    ok(h.nym().args(["new", "alice@nym.test", "--resend", "--via", &via]), None);
    assert_eq!(mode(&out), 0o700);
    let eml = files(&out, "eml");
    assert_eq!(eml.len(), 2, "{eml:?}");
    for f in &eml {
        assert_eq!(mode(f), 0o600);
        assert_eq!(fs::read_to_string(f).unwrap().matches("BEGIN PGP MESSAGE").count(), 1);
    }
    // file: on an existing plain file is refused (nothing appended).
    let plain = h.t.path().join("plain");
    fs::write(&plain, "x").unwrap();
    let r = run(
        h.nym().args(["new", "alice@nym.test", "--resend", "--via", &format!("file:{}", plain.display())]),
        None,
    );
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("mbox:FILE"));
    assert_eq!(fs::read_to_string(&plain).unwrap(), "x");

    // mbox:FILE: every request behind its own `From ` line; the server
    // accepts each one split out of it.
    let mbox = h.t.path().join("requests.mbox");
    let via = format!("mbox:{}", mbox.display());
    ok(h.nym().args(["new", "alice@nym.test", "--resend", "--via", &via]), None);
    ok(h.nym().args(["new", "alice@nym.test", "--resend", "--via", &via]), None);
    let text = fs::read_to_string(&mbox).unwrap();
    assert_eq!(mode(&mbox), 0o600);
    let parts: Vec<&str> = text.split("From nym@localhost Thu Jan  1 00:00:00 1970\n").skip(1).collect();
    assert_eq!(parts.len(), 2, "{text}");
    assert!(text.starts_with("From "));
    for p in &parts {
        assert_eq!(p.matches("BEGIN PGP MESSAGE").count(), 1);
        assert_eq!(h.srv.deliver_raw("config@nym.test", p.as_bytes()), 0);
    }
    assert_eq!(kept(&h.fetch()), 1, "one creation, the copy ignored");

    // The local-server one-liner of the docs.
    let one_liner =
        format!("sendmail:{NYMGATE} --config {} deliver --recipient={{rcpt}}", h.srv.config.display());
    ok(h.nym().args(["config", "alice@nym.test", "--hsub", "b", "--via", &one_liner]), None);
    assert_eq!(kept(&h.fetch()), 1, "the config answer");
}

/// Seconds from now until the primary key of `nym export` expires.
fn key_expiry_from_now(h: &Holder) -> i64 {
    let public = ok(h.nym().args(["export", "alice@nym.test"]), None);
    let g = gnupg_home(&h.t.path().join("check"));
    ok(gpg(&g).arg("--import"), Some(public.as_bytes()));
    let cols = ok(gpg(&g).args(["--with-colons", "--list-keys", "alice@nym.test"]), None);
    let pub_line = cols.lines().find(|l| l.starts_with("pub:")).unwrap().to_string();
    let exp: i64 = pub_line.split(':').nth(6).unwrap().parse().unwrap();
    fs::remove_dir_all(&g).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    exp - now
}

#[test]
fn renew_extends_the_key_and_the_server_confirms_the_refresh() {
    let h = Holder::new();
    ok(h.nym().arg("read"), None);
    let day = 86_400;
    let before = key_expiry_from_now(&h);
    assert!(before < 200 * day, "6m key: {before}");
    let via = h.srv.via();
    ok(h.nym().args(["renew", "alice@nym.test", "--expire", "2y", "--via", &via]), None);
    let after = key_expiry_from_now(&h);
    assert!(after > 700 * day && after < 740 * day, "2y key: {after}");
    assert!(h.list().contains("key-refresh=requested"), "{}", h.list());
    assert_eq!(kept(&h.fetch()), 1);
    let r = ok(h.nym().arg("read"), None);
    assert!(r.contains("Nym key refreshed"), "{r}");
    assert!(r.contains("alice@nym.test: the server confirmed the key refresh"), "{r}");
    let l = h.list();
    assert!(!l.contains("key-refresh") && l.contains("state=active"), "{l}");
    // The renewed key still signs: a send goes through.
    ok(h.nym().args(["send", "alice@nym.test", "--to", "bob@example.org", "--via", &via]), Some(b"hi\n"));
    h.srv.flush();
    assert_eq!(h.srv.take_mails().len(), 1);
}

#[test]
fn esub_subjects_are_recognised_when_configured() {
    let h = Holder::new();
    // The server's confirmation, re-posted under eSub subjects (PROTOCOL.md
    // section 4 vectors: text `panda`, key `secret`; and a wrong key).
    let orig = fs::read_to_string(&files(&h.srv.news_spool(), "art")[0]).unwrap();
    let spool = h.t.path().join("old-spool");
    fs::create_dir(&spool).unwrap();
    let mine = "000102030405060795ac647fcb0d53bd3188dbf7af12bbd6";
    let other = "0001020304050607b1d02545a7b23f470c0de1461647ab4a"; // text/key
    for (i, subject) in [mine, other].iter().enumerate() {
        let art: String = orig
            .lines()
            .map(|l| {
                if l.starts_with("Subject: ") {
                    format!("Subject: {subject}\n")
                } else if l.starts_with("Message-ID: ") {
                    format!("Message-ID: <esub{i}@test>\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        fs::write(spool.join(format!("{i}.art")), art).unwrap();
    }
    let src = format!("spool:{}", spool.display());
    let f = ok(h.nym().args(["fetch", "--server", &src]), None);
    assert_eq!(kept(&f), 0, "no eSub configured: {f}");

    // Stored locally, nothing sent (no --via needed, nothing on stdout).
    let out =
        ok(h.nym().args(["config", "alice@nym.test", "--esub-text", "panda", "--esub-key", "secret"]), None);
    assert!(out.is_empty(), "{out}");
    assert!(h.list().contains("esub=1"), "{}", h.list());
    // Forget that this spool was examined, so that fetch looks again.
    for e in fs::read_dir(h.t.path().join("home/state")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("spool-") {
            fs::remove_file(p).unwrap();
        }
    }
    let f = ok(h.nym().args(["fetch", "--server", &src]), None);
    assert_eq!(kept(&f), 1, "only the eSub of panda/secret: {f}");
    let r = ok(h.nym().arg("read"), None);
    assert!(r.contains("server signature: good"), "{r}");
}

#[test]
fn servers_are_remembered_fetches_are_serialised_and_recipients_checked() {
    let h = Holder::bare();
    let via = h.srv.via();
    ok(
        h.nym()
            .args(["new", "alice@nym.test", "--hsub", "a", "--via", &via])
            .arg("--server-key")
            .arg(h.srv.key_file()),
        None,
    );
    h.srv.flush();
    let out = run(h.nym().arg("fetch"), None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nym server add"));
    ok(h.nym().args(["server", "add", &h.spool()]), None);
    ok(h.nym().args(["server", "add", &h.spool()]), None);
    assert_eq!(ok(h.nym().args(["server", "list"]), None).trim(), h.spool());
    assert!(run(h.nym().args(["server", "add", "gopher://x"]), None).status.code() == Some(65));

    // A second fetch waits for the one holding the lock.
    let lock = h.home.join("state/fetch.lock");
    fs::write(&lock, "").unwrap();
    let mut holder = Command::new("flock").arg(&lock).args(["sleep", "2"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    let out = run(h.nym().arg("fetch"), None);
    let waited = t0.elapsed();
    holder.wait().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another nym fetch is running"));
    assert!(waited >= std::time::Duration::from_millis(1200), "{waited:?}");
    assert_eq!(kept(&String::from_utf8_lossy(&out.stdout)), 1);

    // Recipients are checked before anything is built.
    for bad in [
        "bob@example.org, eve@example.org",
        "Bob <bob@example.org>",
        "bob",
        "bob@localhost",
        "bob@exa\nmple.org",
    ] {
        let out = run(h.nym().args(["send", "alice@nym.test", "--to", bad, "--via", &via]), Some(b"x\n"));
        assert_eq!(out.status.code(), Some(65), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a plain mail address"), "{bad}");
    }
    let mut many = h.nym();
    many.args(["send", "alice@nym.test", "--via", &via]);
    for i in 0..21 {
        many.args(["--to", &format!("r{i}@example.org")]);
    }
    let out = run(&mut many, Some(b"x\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than 20"));
    h.srv.flush();
    assert!(h.srv.take_mails().is_empty());
}
