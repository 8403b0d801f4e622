//! Shared test harness: a server home made by the real `nymgate init`, and a
//! nym user driving real GnuPG in a private GNUPGHOME.
#![allow(dead_code)]

pub mod client;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_nymgate");

pub fn run_with_input(mut cmd: Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    w.join().unwrap();
    out
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
    pub domain: String,
}

pub struct Article {
    pub path: PathBuf,
    pub headers: String,
    pub subject: String,
    pub body: String,
}

impl Server {
    pub fn new(domains: &[&str]) -> Server {
        Self::with_args(domains, &[])
    }

    pub fn with_args(domains: &[&str], extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("ng").tempdir_in("/tmp").unwrap();
        let home = dir.path().join("home");
        let mut cmd = Command::new(BIN);
        cmd.arg("init").arg("--home").arg(&home);
        for d in domains {
            cmd.arg("--domain").arg(d);
        }
        cmd.args(extra);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let config = home.join("nymgate.toml");
        Server { dir, home, config, domain: domains[0].to_string() }
    }

    /// Edit the configuration file text.
    pub fn edit_config(&self, f: impl FnOnce(String) -> String) {
        let t = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, f(t)).unwrap();
    }

    /// Set `key = value` inside `[section]` (the key must exist in the template).
    pub fn set(&self, section: &str, key: &str, value: &str) {
        self.edit_config(|t| {
            let mut out = String::new();
            let mut cur = String::new();
            let mut done = false;
            for line in t.lines() {
                let l = line.trim();
                if l.starts_with('[') {
                    cur = l.trim_matches(|c| c == '[' || c == ']').to_string();
                }
                let is_key = l.starts_with(&format!("{key} =")) || l.starts_with(&format!("# {key} ="));
                if !done && cur == section && is_key {
                    out.push_str(&format!("{key} = {value}\n"));
                    done = true;
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            assert!(done, "no key {key} in [{section}]");
            out
        });
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&self.config);
        c.env_remove("NYMGATE_CONFIG");
        c
    }

    pub fn admin(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        out
    }

    pub fn key_export(&self) -> Vec<u8> {
        let out = self.admin(&["key", "export"]);
        assert!(out.status.success());
        out.stdout
    }

    /// Pipe a raw message to `deliver`; returns the exit code.
    pub fn deliver_raw(&self, recipient: &str, raw: &[u8]) -> i32 {
        self.deliver_logged(recipient, raw).0
    }

    /// Like `deliver_raw`, also returning the log lines (stderr).
    pub fn deliver_logged(&self, recipient: &str, raw: &[u8]) -> (i32, String) {
        let mut c = self.cmd();
        c.env("NYMGATE_LOG_STDERR", "1");
        c.args(["deliver", "--recipient", recipient, "--sender", "someone@outside.example"]);
        let out = run_with_input(c, raw);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("panicked"), "deliver panicked: {stderr}");
        (out.status.code().unwrap_or(-1), stderr)
    }

    /// Wrap an armored PGP message in a mail to `recipient` and deliver it.
    pub fn deliver_pgp(&self, recipient: &str, armored: &[u8]) -> i32 {
        let mut mail = format!(
            "From: anon@remailer.example\nTo: {recipient}\nSubject: request\nMessage-ID: <{}@test>\n\n",
            rand_hex()
        )
        .into_bytes();
        mail.extend_from_slice(armored);
        self.deliver_raw(recipient, &mail)
    }

    pub fn spool(&self) -> PathBuf {
        self.home.join("news")
    }

    pub fn mail_spool(&self) -> PathBuf {
        self.home.join("mail")
    }

    pub fn articles(&self) -> Vec<Article> {
        read_articles(&self.spool())
    }

    /// Articles whose Subject is the hSub of `pass`.
    pub fn articles_for_hsub(&self, pass: &str) -> Vec<Article> {
        self.articles().into_iter().filter(|a| nymgate::hsub::matches(&a.subject, pass.as_bytes())).collect()
    }

    pub fn mails(&self) -> Vec<String> {
        let mut v: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(self.mail_spool())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| {
                        (
                            e.metadata().unwrap().modified().unwrap(),
                            std::fs::read_to_string(e.path()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|x| x.0);
        v.into_iter().map(|x| x.1).collect()
    }

    /// Every row of the state tables, to prove a refused message changed
    /// nothing.
    pub fn db_snapshot(&self) -> String {
        let conn = rusqlite::Connection::open_with_flags(
            self.home.join("nymgate.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut out = String::new();
        for q in [
            "SELECT 'nym', id, local, domain, fingerprint, hex(cert), expires, coalesce(hsub,''), coalesce(subject,''), coalesce(symmetric,''), acksend, disabled, send_count FROM nyms ORDER BY id",
            "SELECT 'key', keyid, nym_id, '', '', '', '', '', '', '', '', '', '' FROM nym_keys ORDER BY keyid",
            "SELECT 'out', id, kind, msgid, hex(body), '', '', '', '', '', '', '', '' FROM outbox ORDER BY id",
            "SELECT 'replay', hex(digest), '', '', '', '', '', '', '', '', '', '', '' FROM replay ORDER BY 2",
            "SELECT 'held', id, recipient, '', '', '', '', '', '', '', '', '', '' FROM held ORDER BY id",
        ] {
            let mut st = conn.prepare(q).unwrap();
            let rows = st
                .query_map([], |r| {
                    let mut line = String::new();
                    for i in 0..13 {
                        let v: rusqlite::types::Value = r.get(i)?;
                        line.push_str(&format!("{v:?}|"));
                    }
                    Ok(line)
                })
                .unwrap();
            for r in rows {
                out.push_str(&r.unwrap());
                out.push('\n');
            }
        }
        out
    }
}

pub fn read_articles(dir: &Path) -> Vec<Article> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return v };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || !name.ends_with(".art") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let (headers, body) = text.split_once("\n\n").unwrap();
        let subject = headers.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").to_string();
        v.push(Article { path: e.path(), headers: headers.to_string(), subject, body: body.to_string() });
    }
    v
}

pub fn rand_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A nym user's GnuPG, as in the seed guide.
pub struct Gpg {
    pub dir: tempfile::TempDir,
}

pub struct GpgOut {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Gpg {
    pub fn new() -> Gpg {
        let dir = tempfile::Builder::new().prefix("g").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Gpg { dir }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(&self, args: &[&str], input: &[u8]) -> GpgOut {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.dir.path())
            .args(["--batch", "--yes", "--no-tty", "--trust-model", "always", "--pinentry-mode", "loopback"])
            .args(args);
        let out = run_with_input(c, input);
        GpgOut {
            ok: out.status.success(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    pub fn ok(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let o = self.run(args, input);
        assert!(o.ok, "gpg {args:?} failed: {}", o.stderr);
        o.stdout
    }

    pub fn import(&self, key: &[u8]) {
        self.ok(&["--import"], key);
    }

    /// What `gpg --gen-key` makes when asked for "RSA and RSA" (or another
    /// algorithm): a signing primary key plus an encryption subkey.
    pub fn gen_key(&self, uid: &str, algo: &str, expire: &str) {
        self.ok(&["--passphrase", "", "--quick-gen-key", uid, algo, "sign", expire], b"");
        let fpr = self.fingerprint(uid);
        self.ok(&["--passphrase", "", "--quick-add-key", &fpr, algo, "encr", expire], b"");
    }

    /// A primary key only, without an encryption subkey.
    pub fn gen_sign_only(&self, uid: &str) {
        self.ok(&["--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "1y"], b"");
    }

    /// A modern key: Ed25519 primary with a Cv25519 encryption subkey.
    pub fn gen_modern(&self, uid: &str) {
        self.ok(&["--passphrase", "", "--quick-gen-key", uid, "future-default", "default", "1y"], b"");
    }

    pub fn export(&self, uid: &str) -> Vec<u8> {
        self.ok(&["--armor", "--export", uid], b"")
    }

    pub fn fingerprint(&self, uid: &str) -> String {
        let out = String::from_utf8(self.ok(&["--with-colons", "--list-keys", uid], b"")).unwrap();
        out.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string()
    }

    /// `gpg --armor --encrypt --recipient R` (unsigned), as for creation.
    pub fn encrypt(&self, recipient: &str, plaintext: &[u8]) -> Vec<u8> {
        self.ok(&["--armor", "--encrypt", "--recipient", recipient], plaintext)
    }

    /// `gpg --armor --sign --encrypt --recipient R --local-user U`.
    pub fn sign_encrypt(&self, recipient: &str, signer: &str, plaintext: &[u8]) -> Vec<u8> {
        self.ok(
            &[
                "--passphrase",
                "",
                "--armor",
                "--sign",
                "--encrypt",
                "--recipient",
                recipient,
                "--local-user",
                signer,
            ],
            plaintext,
        )
    }

    pub fn decrypt(&self, data: &[u8]) -> GpgOut {
        self.run(&["--decrypt"], data)
    }

    pub fn decrypt_pass(&self, data: &[u8], pass: &str) -> GpgOut {
        self.run(&["--passphrase", pass, "--decrypt"], data)
    }

    /// The creation request of the seed guide: option lines, then the key,
    /// encrypted to config@.
    pub fn creation_request(&self, nym: &str, domain: &str, options: &str) -> Vec<u8> {
        let mut text = options.as_bytes().to_vec();
        text.extend_from_slice(&self.export(nym));
        self.encrypt(&format!("config@{domain}"), &text)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", self.dir.path()).args(["--kill", "all"]).output();
    }
}

/// A server with one nym `name` created through the seed guide's steps.
pub fn server_with_nym(name: &str, options: &str) -> (Server, Gpg) {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    let addr = format!("{name}@nym.example");
    g.gen_modern(&addr);
    let req = g.creation_request(&addr, "nym.example", options);
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    (s, g)
}
