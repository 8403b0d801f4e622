//! Interop with plain GnuPG, so that the client is never the only witness
//! of its own correctness: gpg plays the nym server here.
//!
//! - requests made by `nym` decrypt (and verify) with gpg on the server key;
//! - articles made by gpg the way the server makes them are fetched and
//!   read by `nym`, including the symmetric layer and hidden recipients;
//! - a nym created by hand with gpg, as in the classic guide, is adopted
//!   with `nym import --from-gpg` and can send.

use std::fs;
use std::path::Path;

use crate::util::*;

const DOMAIN: &str = "nym.test";

struct Env {
    _t: tempfile::TempDir,
    home: std::path::PathBuf,
    /// The "server operator's" GnuPG home, holding the server secret key.
    server_g: std::path::PathBuf,
    /// The nym user's GnuPG home (for --from-gpg).
    user_g: std::path::PathBuf,
    server_asc: std::path::PathBuf,
    out: std::path::PathBuf,
}

fn env() -> Env {
    let t = tempfile::tempdir().unwrap();
    let server_g = gnupg_home(&t.path().join("server"));
    let user_g = gnupg_home(&t.path().join("user"));
    let server_asc = t.path().join("key.asc");
    fs::write(&server_asc, gpg_server_key(&server_g, DOMAIN)).unwrap();
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    Env { home: t.path().join("home"), server_g, user_g, server_asc, out, _t: t }
}

impl Env {
    fn nym(&self) -> std::process::Command {
        nym(&self.home, &self.user_g)
    }

    fn via(&self) -> String {
        format!("file:{}", self.out.display())
    }

    /// Take the single carrier mail the last command wrote, check its
    /// recipient, and decrypt its body with gpg as the server.
    fn take_request(&self, to: &str) -> (String, String) {
        let mails = files(&self.out, "eml");
        assert_eq!(mails.len(), 1, "one request mail expected");
        let text = fs::read_to_string(&mails[0]).unwrap();
        fs::remove_file(&mails[0]).unwrap();
        assert!(text.lines().any(|l| l == format!("To: {to}")), "carrier not addressed to {to}:\n{text}");
        let body = body_of(&text);
        let out = run(gpg(&self.server_g).args(["--status-fd", "2", "--decrypt"]), Some(body.as_bytes()));
        // gpg fails the run when it cannot check a signature (no public
        // key), so judge the decryption by its status line.
        let status = String::from_utf8_lossy(&out.stderr);
        assert!(status.contains("[GNUPG:] DECRYPTION_OKAY"), "gpg could not decrypt: {status}");
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// An article as the server would post it, made by gpg: signed by the
    /// server key, encrypted to the nym with a hidden recipient, optionally
    /// wrapped in a symmetric layer.
    fn gpg_article(
        &self,
        nym_pub: &Path,
        subject: &str,
        id: &str,
        text: &str,
        symmetric: Option<&str>,
    ) -> String {
        let g = &self.server_g;
        ok(gpg(g).arg("--import").arg(nym_pub), None);
        let mut armored = ok(
            gpg(g).args([
                "--armor",
                "--sign",
                "--encrypt",
                "--throw-keyids",
                "--local-user",
                &format!("config@{DOMAIN}"),
                "--recipient",
                &format!("alice@{DOMAIN}"),
            ]),
            Some(text.as_bytes()),
        );
        if let Some(pass) = symmetric {
            armored = ok(
                gpg(g).args(["--armor", "--symmetric", "--pinentry-mode", "loopback", "--passphrase", pass]),
                Some(armored.as_bytes()),
            );
        }
        format!(
            "Path: nym.test!not-for-mail\nFrom: Nobody <nobody@{DOMAIN}>\nSubject: {subject}\n\
             Newsgroups: alt.anonymous.messages\nMessage-ID: <{id}@{DOMAIN}>\n\
             Date: Mon, 01 Jan 2024 00:00:00 +0000\n\n{armored}"
        )
    }
}

#[test]
fn requests_made_by_the_client_decrypt_with_gpg() {
    let e = env();
    ok(
        e.nym()
            .args(["new", "alice@nym.test", "--hsub", "panda", "--symmetric", "open sesame", "--server-key"])
            .arg(&e.server_asc)
            .args(["--via", &e.via()]),
        None,
    );
    // Create: option lines, then exactly the nym's public key; not signed.
    let (plain, status) = e.take_request("config@nym.test");
    assert!(
        plain.starts_with("hsub: panda\nsymmetric: open sesame\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n"),
        "{plain}"
    );
    assert!(!status.contains("GOODSIG"));
    let keyfile = e.out.join("alice.pub");
    fs::write(&keyfile, &plain).unwrap();
    ok(gpg(&e.server_g).arg("--import").arg(&keyfile), None);
    let listing = ok(gpg(&e.server_g).args(["--with-colons", "--list-keys", "alice@nym.test"]), None);
    assert_eq!(listing.lines().filter(|l| l.starts_with("uid:")).count(), 1);
    assert!(listing.contains("<alice@nym.test>"));

    // Config: signed by the nym, encrypted to config@.
    ok(
        e.nym().args(["config", "alice@nym.test", "--hsub", "koala", "--acksend", "no", "--via", &e.via()]),
        None,
    );
    let (plain, status) = e.take_request("config@nym.test");
    assert_eq!(plain, "hsub: koala\nacksend: no\n");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");

    // Status request: signed, no options.
    ok(e.nym().args(["config", "alice@nym.test", "--via", &e.via()]), None);
    let (plain, status) = e.take_request("config@nym.test");
    assert_eq!(plain, "");
    assert!(status.contains("[GNUPG:] GOODSIG"));

    // Send: a signed RFC 5322 message to send@.
    ok(
        e.nym()
            .args(["send", "alice@nym.test", "--to", "bob@example.org", "--cc", "carol@example.org"])
            .args(["--subject", "Example", "--via", &e.via()]),
        Some(b"This is an example\n"),
    );
    let (plain, status) = e.take_request("send@nym.test");
    assert!(plain.contains("To: bob@example.org\n") && plain.contains("Cc: carol@example.org\n"), "{plain}");
    assert!(plain.contains("Subject: Example\n"));
    assert!(plain.ends_with("\n\nThis is an example\n"));
    assert!(status.contains("[GNUPG:] GOODSIG"));

    // Send with end-to-end encryption to bob: the server sees only ciphertext.
    let bob_g = gnupg_home(&e.out.join("bob"));
    ok(
        gpg(&bob_g).args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "bob@example.org",
            "future-default",
            "default",
            "never",
        ]),
        None,
    );
    let bob_pub = e.out.join("bob.asc");
    fs::write(&bob_pub, ok(gpg(&bob_g).args(["--armor", "--export", "bob@example.org"]), None)).unwrap();
    ok(
        e.nym()
            .args(["send", "alice@nym.test", "--to", "bob@example.org", "--encrypt-to-cert"])
            .arg(&bob_pub)
            .args(["--via", &e.via()]),
        Some(b"for bob only\n"),
    );
    let (plain, _) = e.take_request("send@nym.test");
    assert!(!plain.contains("for bob only"));
    let inner = body_of(&plain);
    assert_eq!(ok(gpg(&bob_g).arg("--decrypt"), Some(inner.as_bytes())), "for bob only\n");

    // url@: not signed, key and hsub lines.
    ok(
        e.nym().args([
            "url",
            "alice@nym.test",
            "example.org/a",
            "--key",
            "k1",
            "--hsub",
            "h1",
            "--via",
            &e.via(),
        ]),
        None,
    );
    let (plain, status) = e.take_request("url@nym.test");
    assert_eq!(plain, "url: example.org/a\nkey: k1\nhsub: h1\n");
    assert!(!status.contains("GOODSIG"));

    // Delete: signed `delete: yes`.
    ok(e.nym().args(["delete", "alice@nym.test", "--yes", "--via", &e.via()]), None);
    let (plain, status) = e.take_request("config@nym.test");
    assert_eq!(plain, "delete: yes\n");
    assert!(status.contains("[GNUPG:] GOODSIG"));
}

#[test]
fn articles_made_by_gpg_are_fetched_and_read() {
    let e = env();
    ok(
        e.nym()
            .args(["new", "alice@nym.test", "--hsub", "panda", "--symmetric", "sesame", "--no-request"])
            .arg("--server-key")
            .arg(&e.server_asc),
        None,
    );
    let nym_pub = e.out.join("alice.asc");
    fs::write(&nym_pub, ok(e.nym().args(["export", "alice@nym.test"]), None)).unwrap();

    let spool = e.out.join("spool");
    fs::create_dir_all(&spool).unwrap();
    let mine = nymgate::protocol::hsub::hsub(b"panda", 48);
    let plain = e.gpg_article(&nym_pub, &mine, "a1", "From: bob@example.org\nSubject: one\n\nfirst\n", None);
    fs::write(spool.join("1.art"), plain).unwrap();
    let sym = e.gpg_article(
        &nym_pub,
        &nymgate::protocol::hsub::hsub(b"panda", 48),
        "a2",
        "Subject: two\n\nsecond\n",
        Some("sesame"),
    );
    fs::write(spool.join("2.art"), sym).unwrap();
    let other =
        e.gpg_article(&nym_pub, &nymgate::protocol::hsub::hsub(b"koala", 48), "a3", "not mine\n", None);
    fs::write(spool.join("3.art"), other).unwrap();
    // A file still being written by the server is skipped.
    fs::write(spool.join(".4.art.tmp"), "half").unwrap();

    let src = format!("spool:{}", spool.display());
    let out = ok(e.nym().args(["fetch", "--server", &src]), None);
    assert!(out.contains("3 examined, 2 kept"), "{out}");
    let out = ok(e.nym().args(["fetch", "--server", &src]), None);
    assert!(out.contains("0 examined, 0 kept"), "{out}");

    let out = ok(e.nym().arg("read"), None);
    assert_eq!(out.matches("server signature: good").count(), 2, "{out}");
    assert!(out.contains("first\n") && out.contains("second\n") && !out.contains("not mine"));
    assert!(out.contains("symmetric layer: removed"));
    assert_eq!(maildir(&e.home, "new").len(), 0);
    assert_eq!(maildir(&e.home, "cur").len(), 2);
    // Already read: nothing more, unless asked.
    let out = ok(e.nym().arg("read"), None);
    assert!(!out.contains("==>"));
    let out = ok(e.nym().args(["read", "--all", "--keep"]), None);
    assert_eq!(out.matches("==>").count(), 2);
}

#[test]
fn a_forged_article_is_flagged() {
    let e = env();
    ok(
        e.nym()
            .args(["new", "alice@nym.test", "--hsub", "panda", "--no-request", "--server-key"])
            .arg(&e.server_asc),
        None,
    );
    let nym_pub = e.out.join("alice.asc");
    fs::write(&nym_pub, ok(e.nym().args(["export", "alice@nym.test"]), None)).unwrap();
    // Someone else (not the server) encrypts to the nym and signs.
    let forger = gnupg_home(&e.out.join("forger"));
    ok(
        gpg(&forger).args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "config@nym.test",
            "ed25519",
            "default",
            "never",
        ]),
        None,
    );
    ok(gpg(&forger).arg("--import").arg(&nym_pub), None);
    let armored = ok(
        gpg(&forger).args(["--armor", "--sign", "--encrypt", "--throw-keyids", "-r", "alice@nym.test"]),
        Some(b"send me your password"),
    );
    let spool = e.out.join("spool");
    fs::create_dir_all(&spool).unwrap();
    let art =
        format!("Subject: {}\nMessage-ID: <f@x>\n\n{armored}", nymgate::protocol::hsub::hsub(b"panda", 48));
    fs::write(spool.join("f.art"), art).unwrap();
    ok(e.nym().args(["fetch", "--server", &format!("spool:{}", spool.display())]), None);
    let out = run(e.nym().arg("read"), None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("WARNING: not signed by the server key"));
    // Not marked read: the user should look at it again.
    assert_eq!(maildir(&e.home, "new").len(), 1);
}

#[test]
fn a_nym_made_with_gpg_as_in_the_guide_is_usable() {
    let e = env();
    // The guide's steps 2 and 3: gpg --gen-key (RSA), export, prepend
    // options, encrypt to config@.
    let params = "Key-Type: RSA\nKey-Length: 2048\nSubkey-Type: RSA\nSubkey-Length: 2048\n\
                  Name-Real: bob@nym.test\nName-Email: bob@nym.test\nExpire-Date: 6m\n%no-protection\n%commit\n";
    ok(gpg(&e.user_g).args(["--gen-key"]), Some(params.as_bytes()));
    ok(gpg(&e.user_g).arg("--import").arg(&e.server_asc), None);
    let pubkey = ok(gpg(&e.user_g).args(["--armor", "--export", "bob@nym.test"]), None);
    let request = ok(
        gpg(&e.user_g).args(["--armor", "--encrypt", "--recipient", "config@nym.test"]),
        Some(format!("hsub: panda\n{pubkey}").as_bytes()),
    );
    let plain = ok(gpg(&e.server_g).arg("--decrypt"), Some(request.as_bytes()));
    assert!(plain.starts_with("hsub: panda\n-----BEGIN PGP PUBLIC KEY BLOCK-----"));

    // Adopt it in the client and use it.
    ok(
        e.nym()
            .args(["import", "bob@nym.test", "--from-gpg", "--hsub", "panda", "--server-key"])
            .arg(&e.server_asc),
        None,
    );
    let out = ok(e.nym().arg("list"), None);
    assert!(out.contains("bob@nym.test") && out.contains("hsub"), "{out}");
    ok(
        e.nym().args([
            "send",
            "bob@nym.test",
            "--to",
            "carol@example.org",
            "--subject",
            "hi",
            "--via",
            &e.via(),
        ]),
        Some(b"hello from bob\n"),
    );
    ok(gpg(&e.server_g).arg("--import"), Some(pubkey.as_bytes()));
    let (plain, status) = e.take_request("send@nym.test");
    assert!(plain.contains("From: bob@nym.test\n") && plain.contains("hello from bob"));
    let bob_fpr = fingerprint(&e.user_g, "bob@nym.test");
    assert!(status.contains("[GNUPG:] VALIDSIG"), "{status}");
    assert!(status.contains(&bob_fpr), "signature not by bob's key: {status}");
}

#[test]
fn a_wrong_server_key_is_refused() {
    let e = env();
    let g = gnupg_home(&e.out.join("other"));
    let other = e.out.join("other.asc");
    fs::write(&other, gpg_server_key(&g, "elsewhere.test")).unwrap();
    let out = run(e.nym().args(["new", "alice@nym.test", "--no-request", "--server-key"]).arg(&other), None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no User ID config@nym.test"));
}

#[test]
fn protected_keys_need_the_passphrase() {
    let e = env();
    ok(
        e.nym()
            .args(["new", "alice@nym.test", "--protect", "--no-request", "--server-key"])
            .arg(&e.server_asc)
            .env("NYM_PASSPHRASE", "correct horse"),
        None,
    );
    let key = fs::read_to_string(e.home.join("nyms/alice@nym.test/key.asc")).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    let out = run(e.nym().args(["config", "alice@nym.test", "--via", &e.via()]), None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("passphrase"));
    let out = run(
        e.nym().args(["config", "alice@nym.test", "--via", &e.via()]).env("NYM_PASSPHRASE", "wrong"),
        None,
    );
    assert!(!out.status.success());
    ok(
        e.nym().args(["config", "alice@nym.test", "--via", &e.via()]).env("NYM_PASSPHRASE", "correct horse"),
        None,
    );
    e.take_request("config@nym.test");
}

#[test]
fn store_modes() {
    use std::os::unix::fs::PermissionsExt;
    let e = env();
    ok(e.nym().args(["new", "alice@nym.test", "--no-request", "--server-key"]).arg(&e.server_asc), None);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&e.home), 0o700);
    assert_eq!(mode(&e.home.join("nyms/alice@nym.test")), 0o700);
    assert_eq!(mode(&e.home.join("nyms/alice@nym.test/key.asc")), 0o600);
    assert_eq!(mode(&e.home.join("nyms/alice@nym.test/nym.toml")), 0o600);
}

#[test]
fn manpage_and_completions() {
    let t = tempfile::tempdir().unwrap();
    let man = ok(std::process::Command::new(NYM).arg("manpage"), None);
    assert!(man.contains(".TH nym") && man.contains("HOW REQUESTS LEAVE YOUR MACHINE"));
    ok(std::process::Command::new(NYM).args(["manpage", "--out"]).arg(t.path()), None);
    assert!(t.path().join("nym-fetch.1").exists());
    // Each command's page lists the global options, --proxy among them.
    for page in ["nym-fetch.1", "nym-send.1", "nym-new.1"] {
        let text = fs::read_to_string(t.path().join(page)).unwrap();
        assert!(
            text.contains(r"\fB\-\-proxy\fR") && text.contains("socks5h") && text.contains(r"\fB\-\-home\fR"),
            "{page}"
        );
    }
    assert!(!t.path().join("nym-help.1").exists());
    let bash = ok(std::process::Command::new(NYM).args(["completions", "bash"]), None);
    assert!(bash.contains("_nym()") || bash.contains("_nym "));
}
