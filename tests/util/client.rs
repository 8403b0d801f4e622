//! Helpers shared by the client tests.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const NYM: &str = env!("CARGO_BIN_EXE_nym");

/// Run a program with optional stdin; return its output.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            i.write_all(data).unwrap();
        }
    }
    child.wait_with_output().unwrap()
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

/// A `nym` command using the store `home` and a private GnuPG home.
pub fn nym(home: &Path, gnupghome: &Path) -> Command {
    let mut c = Command::new(NYM);
    c.arg("--home").arg(home).env("GNUPGHOME", gnupghome).env_remove("NYM_VIA").env_remove("NYM_PASSPHRASE");
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

pub const NYMGATE: &str = env!("CARGO_BIN_EXE_nymgate");

pub struct Server {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub key: PathBuf,
}

impl Server {
    /// `nymgate init` in `dir`, with mail going to the spool too.
    pub fn new(dir: &Path, domain: &str) -> Server {
        let config = dir.join("s/nymgate.toml");
        ok(
            Command::new(NYMGATE)
                .arg("--config")
                .arg(&config)
                .args(["init", "--domain", domain, "--rsa", "2048", "--home"])
                .arg(dir.join("s")),
            None,
        );
        let text = fs::read_to_string(&config).unwrap();
        let text = text.replacen("transport = \"sendmail\"", "transport = \"spool\"", 1);
        fs::write(&config, text).unwrap();
        let key = dir.join("server.asc");
        fs::write(&key, ok(Command::new(NYMGATE).arg("--config").arg(&config).args(["key", "export"]), None))
            .unwrap();
        Server { dir: dir.join("s"), config, key }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(NYMGATE);
        c.arg("--config").arg(&self.config);
        c
    }

    /// The hand-off method that delivers client requests straight into
    /// this server, as an MTA would.
    pub fn via(&self) -> String {
        format!("sendmail:{NYMGATE} --config {} deliver --recipient", self.config.display())
    }

    pub fn flush(&self) {
        ok(self.cmd().arg("flush"), None);
    }

    pub fn news(&self) -> PathBuf {
        self.dir.join("news")
    }

    /// Outgoing mails in the mail spool, removed once taken.
    pub fn take_mails(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in files(&self.dir.join("mail"), "eml") {
            v.push(fs::read_to_string(&p).unwrap());
            fs::remove_file(p).unwrap();
        }
        v
    }
}

#[test]
fn helpers_find_bodies() {
    assert_eq!(body_of("A: b\r\n\r\nbody\r\n"), "body\n");
}
