//! The shared harness of the integration tests: the real binaries, a
//! server home made by the real `nymgate init`, a nym user driving real
//! GnuPG in a private GNUPGHOME (`Gpg`, for the server tests), and the
//! helpers the client tests use around `nym` (`nym`, `gpg`, spools,
//! Maildir).

pub mod chain;
pub mod mail;
pub mod news;
pub mod socks;
pub mod tls;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const NYMGATE: &str = env!("CARGO_BIN_EXE_nymgate");
pub const NYM: &str = env!("CARGO_BIN_EXE_nym");

/// Run a program with optional stdin; return its output. The input is
/// written from a thread, so a child that answers before it has read all
/// of a big input cannot deadlock with us.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let input = child.stdin.take().unwrap();
    let writer = stdin.map(|data| {
        let data = data.to_vec();
        let mut input = input;
        std::thread::spawn(move || {
            let _ = input.write_all(&data);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(w) = writer {
        w.join().unwrap();
    }
    out
}

/// Run and require success; returns stdout as text.
pub fn ok(cmd: &mut Command, stdin: Option<&[u8]>) -> String {
    let dbg = format!("{cmd:?}");
    let out = run(cmd, stdin);
    assert!(
        out.status.success(),
        "{dbg} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server home made by the real `nymgate init`.
pub struct Server {
    /// Scratch room beside the home (fake transports, key files); removed
    /// with the server.
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
}

pub struct Article {
    pub headers: String,
    pub subject: String,
    pub body: String,
}

impl Server {
    pub fn new(domains: &[&str]) -> Server {
        Self::with_args(domains, &[])
    }

    /// `nymgate init` with extra arguments (e.g. `--rsa 3072`).
    pub fn with_args(domains: &[&str], extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("ng").tempdir_in("/tmp").unwrap();
        let home = dir.path().join("home");
        Self::init(dir, home, domains, extra)
    }

    /// `nymgate init` with the home at `home`, which may lie outside `dir`
    /// (on a small file system, say).
    pub fn init(dir: tempfile::TempDir, home: PathBuf, domains: &[&str], extra: &[&str]) -> Server {
        let mut cmd = Command::new(NYMGATE);
        cmd.arg("init").arg("--home").arg(&home);
        for d in domains {
            cmd.arg("--domain").arg(d);
        }
        cmd.args(extra);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let config = home.join("nymgate.toml");
        let s = Server { dir, home, config };
        // Most tests follow one message at a time; tests/server/outbox.rs
        // turns the pool and cover traffic (on by default) back on where
        // they are tested.
        s.set("pool", "enabled", "false");
        s.set("cover", "rate", "0");
        // Outgoing mail goes to the home's spool, never to this machine's
        // sendmail; tests of the sendmail transport switch it back.
        s.set("mail", "transport", "\"spool\"");
        s
    }

    /// The server the client tests talk to: an RSA key where the build
    /// allows one (a RustCrypto build refuses RSA server keys, see
    /// `nymgate::openpgp::backend`), and outgoing mail written to the mail
    /// spool instead of handed to sendmail.
    pub fn for_client(domain: &str) -> Server {
        let rsa: &[&str] =
            if nymgate::openpgp::backend::REFUSES_RSA_SECRETS { &[] } else { &["--rsa", "2048"] };
        let s = Self::with_args(&[domain], rsa);
        s.set("mail", "transport", "\"spool\"");
        s
    }

    /// Edit the configuration file text.
    pub fn edit_config(&self, f: impl FnOnce(String) -> String) {
        let t = fs::read_to_string(&self.config).unwrap();
        fs::write(&self.config, f(t)).unwrap();
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
        let mut c = Command::new(NYMGATE);
        c.arg("--config").arg(&self.config);
        c.env_remove("NYMGATE_CONFIG");
        c
    }

    pub fn admin(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `flush`, which must succeed; returns its report.
    pub fn flush(&self) -> String {
        ok(self.cmd().arg("flush"), None)
    }

    pub fn key_export(&self) -> Vec<u8> {
        let out = self.admin(&["key", "export"]);
        assert!(out.status.success());
        out.stdout
    }

    /// The public key exported to a file (`server.asc` in `dir`), for
    /// `--server-key` and `gpg --import`.
    pub fn key_file(&self) -> PathBuf {
        let p = self.dir.path().join("server.asc");
        if !p.exists() {
            fs::write(&p, self.key_export()).unwrap();
        }
        p
    }

    /// The hand-off method that delivers client requests straight into
    /// this server, as an MTA would.
    pub fn via(&self) -> String {
        format!("sendmail:{NYMGATE} --config {} deliver --recipient", self.config.display())
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
        let out = run(&mut c, Some(raw));
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

    pub fn news_spool(&self) -> PathBuf {
        self.home.join("news")
    }

    pub fn mail_spool(&self) -> PathBuf {
        self.home.join("mail")
    }

    pub fn articles(&self) -> Vec<Article> {
        read_articles(&self.news_spool())
    }

    /// Articles whose Subject is the hSub of `pass`.
    pub fn articles_for_hsub(&self, pass: &str) -> Vec<Article> {
        self.articles()
            .into_iter()
            .filter(|a| nymgate::protocol::hsub::matches(&a.subject, pass.as_bytes()))
            .collect()
    }

    pub fn mails(&self) -> Vec<String> {
        let mut v: Vec<(std::time::SystemTime, String)> = fs::read_dir(self.mail_spool())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| {
                        (e.metadata().unwrap().modified().unwrap(), fs::read_to_string(e.path()).unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|x| x.0);
        v.into_iter().map(|x| x.1).collect()
    }

    /// The mails of the mail spool, removed once taken.
    pub fn take_mails(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in files(&self.mail_spool(), "eml") {
            v.push(fs::read_to_string(&p).unwrap());
            fs::remove_file(p).unwrap();
        }
        v
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
            "SELECT 'nym', id, local, domain, fingerprint, hex(cert), expires, coalesce(hsub,''), coalesce(subject,''), coalesce(symmetric,''), flags, disabled, send_count FROM nyms ORDER BY id",
            "SELECT 'block', id, nym_id, pending, position, coalesce(set_name,''), coalesce(weight,''), hex(body), '', '', '', '', '' FROM reply_blocks ORDER BY id",
            "SELECT 'pending', nym_id, hex(cookie_hash), created, '', '', '', '', '', '', '', '', '' FROM pending_sets ORDER BY nym_id",
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
    let Ok(rd) = fs::read_dir(dir) else { return v };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || !name.ends_with(".art") {
            continue;
        }
        let text = fs::read_to_string(e.path()).unwrap();
        let (headers, body) = text.split_once("\n\n").unwrap();
        let subject = headers.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").to_string();
        v.push(Article { headers: headers.to_string(), subject, body: body.to_string() });
    }
    v
}

pub fn rand_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A nym user's GnuPG, as in the seed guide, in a home of its own that is
/// removed (and its agent stopped) when dropped. The client tests use the
/// path-based `gpg` below instead, with the home inside their own tempdir.
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
        fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
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
        let out = run(&mut c, Some(input));
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
        fingerprint(self.home(), uid)
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

// ------------------------------------- nym, plain gpg, spools and Maildir

/// A `nym` command using the store `home` and a private GnuPG home.
pub fn nym(home: &Path, gnupghome: &Path) -> Command {
    let mut c = Command::new(NYM);
    c.arg("--home").arg(home).env("GNUPGHOME", gnupghome).env_remove("NYM_VIA").env_remove("NYM_PASSPHRASE");
    c.env_remove("NYM_PROXY").env_remove("NYM_SMTP_PASSWORD");
    c
}

pub fn gpg(gnupghome: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", gnupghome).args([
        "--batch",
        "--yes",
        "--no-tty",
        "--trust-model",
        "always",
        "--quiet",
    ]);
    c
}

/// A fresh GnuPG home (mode 0700).
pub fn gnupg_home(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let g = dir.join("gnupg");
    fs::create_dir_all(&g).unwrap();
    fs::set_permissions(&g, fs::Permissions::from_mode(0o700)).unwrap();
    g
}

/// Make a nym server key with plain gpg, the way an operator of a classic
/// server would: User IDs config@, send@, url@ the domain. Returns the
/// armored public key.
pub fn gpg_server_key(g: &Path, domain: &str) -> String {
    let cfg = format!("config@{domain}");
    ok(gpg(g).args(["--passphrase", "", "--quick-gen-key", &cfg, "ed25519", "cert,sign", "never"]), None);
    let fpr = fingerprint(g, &cfg);
    for u in ["send", "url"] {
        ok(gpg(g).args(["--passphrase", "", "--quick-add-uid", &fpr, &format!("{u}@{domain}")]), None);
    }
    ok(gpg(g).args(["--passphrase", "", "--quick-add-key", &fpr, "cv25519", "encr", "never"]), None);
    ok(gpg(g).args(["--armor", "--export", &fpr]), None)
}

pub fn fingerprint(g: &Path, who: &str) -> String {
    let out = ok(gpg(g).args(["--with-colons", "--list-keys", who]), None);
    out.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string()
}

/// The body of a mail or article file (after the first blank line).
pub fn body_of(text: &str) -> String {
    let t = text.replace("\r\n", "\n");
    t.split_once("\n\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// Files in `dir` with the given extension, sorted.
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(r) => r.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Messages in a Maildir subfolder (new or cur).
pub fn maildir(home: &Path, sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(home.join("Maildir").join(sub)).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// How many articles a `nym fetch` kept, from its summary line.
pub fn kept(fetch_out: &str) -> u64 {
    let (_, rest) = fetch_out.rsplit_once(" examined, ").expect("fetch summary");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// An HTTP server on 127.0.0.1 answering every request with the HTML
/// `page`; returns its port.
pub fn http_page(page: &'static str) -> u16 {
    use std::io::{BufRead, BufReader};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let mut w = c;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

#[test]
fn helpers_find_bodies() {
    assert_eq!(body_of("A: b\r\n\r\nbody\r\n"), "body\n");
}

/// Base64 of a string (what an AUTH exchange would carry), to check that
/// no output shows it.
pub fn smtp_base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}
