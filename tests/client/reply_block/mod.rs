//! A reply-block nym made by `nym` (REPLY-BLOCKS.md sections 4, 6, 7.1,
//! 10 and 13): `nym new --reply-block` through two Type I remailers whose
//! keys the test makes, the real `nymgate` accepting the `Config:`
//! request, the server's pure Type I engine standing in for the hops
//! (`Entry::ReplyBlock` at the nym server, `Entry::Remailer` at r1 and
//! r2), `nym read --mail` peeling the Encrypt-Key layers, and `nym
//! confirm` travelling the chain forward to `confirm+COOKIE@`. Plain gpg
//! opens every layer, which shows the block is the standard format.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nymgate::client::reply_block::{self as rb, Destination, HopSpec};
use nymgate::config::Config;
use nymgate::handle::remailer::{self, Entry, Env, Funcs, Policy};
use nymgate::openpgp::{holder, PgpCert};

use crate::util::*;

mod more;

/// A Type I remailer of the test: its key pair and how it is run.
pub(super) struct Remailer {
    domain: &'static str,
    cert: PgpCert,
    policy: Policy,
    known: Vec<String>,
}

impl Remailer {
    fn new(domain: &'static str, middleman: bool, known: &[&str]) -> Remailer {
        let cert = holder::generate(&format!("remailer@{domain}"), None, false, None).unwrap();
        let policy = Policy { middleman, ..Policy::default() };
        Remailer { domain, cert, policy, known: known.iter().map(|s| s.to_string()).collect() }
    }

    fn address(&self) -> String {
        format!("remailer@{}", self.domain)
    }

    fn key_file(&self, dir: &Path) -> PathBuf {
        let p = dir.join(format!("{}.asc", self.domain));
        fs::write(&p, holder::armored_public(&self.cert).unwrap()).unwrap();
        p
    }
}

/// One mail that left a hop.
#[derive(Debug, Clone)]
pub(super) struct Hop {
    /// Latent-Time, seconds.
    delay: i64,
    to: Vec<String>,
    from: String,
    text: String,
}

impl Hop {
    fn body(&self) -> &str {
        self.text.split_once("\n\n").map(|(_, b)| b).unwrap_or("")
    }
}

/// Run the engine once: `decrypt_with` is the hop's key (None at the nym
/// server, whose first level is clear). Exactly one mail must leave.
pub(super) fn engine(cfg: &Config, r: Option<&Remailer>, entry: Entry, domain: &str, body: &str) -> Hop {
    let default = Policy::default();
    let (policy, known) = match r {
        Some(r) => (&r.policy, r.known.clone()),
        None => (&default, Vec::new()),
    };
    let env = Env { cfg, policy, domain, now: 1_800_000_000, blocklist: &[], known: &known };
    let secret = r.map(|r| r.cert.clone());
    let mut crypto = Funcs(
        |armored: &str| {
            let c = secret.clone()?;
            let o = holder::open(armored.as_bytes(), &[c], &[], &[]).ok()?;
            String::from_utf8(o.plaintext).ok()
        },
        |key: &str, text: &str| {
            String::from_utf8(nymgate::openpgp::encrypt_key(key, text.as_bytes()).ok()?).ok()
        },
    );
    let run = remailer::run(&env, entry, &[], body, &mut crypto, &mut rand::thread_rng());
    assert_eq!(run.outputs.len(), 1, "{:?}", run.outcomes);
    let item = &run.outputs[0].item;
    Hop {
        delay: run.outputs[0].delay,
        to: item.env_to.clone(),
        from: item.env_from.clone(),
        text: String::from_utf8(item.body.clone()).unwrap(),
    }
}

/// The first armored message of `s` (gpg would go on to the next).
pub(super) fn first_armor(s: &str) -> &[u8] {
    let at = s.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = s[at..].find("-----END PGP MESSAGE-----").unwrap() + at + "-----END PGP MESSAGE-----".len();
    &s.as_bytes()[at..end]
}

/// The chain nym.example -> r1.test -> r2.test -> quill@box.test.
pub(super) struct World {
    _t: tempfile::TempDir,
    srv: Server,
    cfg: Config,
    home: PathBuf,
    g: PathBuf,
    dir: PathBuf,
    spool: PathBuf,
    r1: Remailer,
    r2: Remailer,
}

impl World {
    fn new() -> World {
        let t = tempfile::tempdir().unwrap();
        let srv = Server::for_client("nym.example");
        let cfg = Config::load(&srv.config).unwrap();
        let dir = t.path().to_path_buf();
        let spool = dir.join("blocks");
        fs::create_dir_all(&spool).unwrap();
        let r1 = Remailer::new("r1.test", true, &["remailer@r2.test"]);
        let r2 = Remailer::new("r2.test", false, &[]);
        World { home: dir.join("home"), g: gnupg_home(&dir), srv, cfg, dir, spool, r1, r2, _t: t }
    }

    fn nym(&self) -> Command {
        let mut c = nym(&self.home, &self.g);
        c.env("NYMGATE_BLOCK_SPOOL_FOR_TEST", &self.spool).env("NYMGATE_LOG_STDERR", "1");
        c
    }

    fn hop_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        for r in [&self.r1, &self.r2] {
            v.push("--hop".into());
            v.push(format!("{}={}", r.address(), r.key_file(&self.dir).display()));
        }
        v.extend(["--deliver-to".into(), "quill@box.test".into()]);
        v
    }

    /// `nym new --reply-block`, delivered to the server; returns nym's stderr.
    fn create(&self) -> String {
        let out = run(
            self.nym()
                .args([
                    "new",
                    "quill@nym.example",
                    "--reply-block",
                    "--name",
                    "Quill Pen",
                    "--via",
                    &self.srv.via(),
                ])
                .args(self.hop_args())
                .arg("--server-key")
                .arg(self.srv.key_file()),
            None,
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        err
    }

    /// The engine inputs the server wrote, oldest first, removed.
    fn take_inputs(&self) -> Vec<String> {
        let mut v: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&self.spool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (fs::metadata(&p).unwrap().modified().unwrap(), p))
            .collect();
        v.sort();
        v.into_iter()
            .map(|(_, p)| {
                let s = fs::read_to_string(&p).unwrap();
                fs::remove_file(p).unwrap();
                s
            })
            .collect()
    }

    /// One engine input through the nym server's local run, r1 and r2.
    fn route(&self, input: &str) -> Vec<Hop> {
        let n = engine(&self.cfg, None, Entry::ReplyBlock, "nym.example", input);
        assert_eq!(n.to, vec![self.r1.address()]);
        let h1 = engine(&self.cfg, Some(&self.r1), Entry::Remailer, "r1.test", n.body());
        assert_eq!(h1.to, vec![self.r2.address()]);
        let h2 = engine(&self.cfg, Some(&self.r2), Entry::Remailer, "r2.test", h1.body());
        assert_eq!(h2.to, vec!["quill@box.test"]);
        vec![n, h1, h2]
    }

    fn read_mail(&self, mail: &str) -> (i32, String) {
        let p = self.dir.join(format!("in-{}.eml", rand_hex()));
        fs::write(&p, mail).unwrap();
        let out = run(self.nym().args(["read", "--mail"]).arg(&p), None);
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains("panicked"), "{text}");
        (out.status.code().unwrap_or(-1), text)
    }

    fn deliver(&self, rcpt: &str, sender: &str, raw: &[u8]) -> (i32, String) {
        let mut c = self.srv.cmd();
        c.env("NYMGATE_LOG_STDERR", "1").env("NYMGATE_BLOCK_SPOOL_FOR_TEST", &self.spool);
        c.args(["deliver", "--recipient", rcpt, "--sender", sender]);
        let out = run(&mut c, Some(raw));
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[test]
fn a_block_built_by_nym_routes_through_a_pure_engine_chain_and_peels() {
    let w = World::new();
    let hops = [
        HopSpec { address: w.r1.address(), cert: w.r1.cert.clone() },
        HopSpec { address: w.r2.address(), cert: w.r2.cert.clone() },
    ];
    let keys = vec![rb::new_passphrase(), rb::new_passphrase()];
    let block = rb::build(
        &hops,
        &Destination::Mail("quill@box.test".into()),
        &keys,
        rb::Extras { subject: Some("tag-7f3a"), latent_time: Some("+0:30") },
    )
    .unwrap();
    assert!(block
        .starts_with("::\nAnon-To: remailer@r1.test\n\n::\nEncrypted: PGP\n\n-----BEGIN PGP MESSAGE-----\n"));
    assert!(block.ends_with("-----END PGP MESSAGE-----\n**\n"), "{block}");
    assert!(!block.contains("r2.test") && !block.contains("box.test") && !block.contains(&keys[0]));
    let payload = "-----BEGIN PGP MESSAGE-----\n(stands for the nym layer)\n-----END PGP MESSAGE-----\n";
    let input = format!("{block}\n{payload}");
    let hops = w.route(&input);
    // Each hop's output differs and names only the next hop.
    assert!(!hops[1].text.contains("box.test") && !hops[1].text.contains("stands for"));
    assert!(hops[2].from.ends_with("@r2.test"));
    // Latent-Time at each remailer, not at the nym server's clear level.
    assert_eq!([hops[0].delay, hops[1].delay, hops[2].delay], [0, 1800, 1800]);
    assert!(hops[2].text.contains("\nSubject: tag-7f3a\n"), "{}", hops[2].text);
    assert!(!hops[1].text.contains("tag-7f3a"));
    let last = hops[2].body();
    assert!(last.starts_with("**\n-----BEGIN PGP MESSAGE-----"), "{last}");
    assert!(!last.contains("stands for"));
    // Peeled in reverse hop order: k2, then k1, then the payload.
    let p = rb::peel(last.as_bytes(), &[keys[1].clone(), keys[0].clone()]);
    assert_eq!(p.layers, 2);
    let text = String::from_utf8(p.text).unwrap();
    assert!(text.contains(payload), "{text}");
    // One passphrase short: one layer only, and no payload.
    let p = rb::peel(last.as_bytes(), &[keys[1].clone()]);
    assert_eq!(p.layers, 1);
    assert!(!String::from_utf8_lossy(&p.text).contains("stands for"));
}

#[test]
fn a_reply_block_nym_is_created_confirmed_and_reached_through_two_remailers() {
    let w = World::new();
    let err = w.create();
    assert!(err.contains("outcome=created"), "the server took the Config: request: {err}");
    assert!(err.contains("nym read --mail"), "{err}");
    // The store keeps the passphrases 0600 and nothing printed them.
    let toml = fs::read_to_string(w.home.join("nyms/quill@nym.example/nym.toml")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(w.home.join("nyms/quill@nym.example/nym.toml")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key_line = toml.lines().find(|l| l.starts_with("encrypt_key")).unwrap();
    let k = key_line.split('"').nth(1).unwrap();
    assert!(!err.contains(k));

    // "Configuration completed" travels the chain.
    let inputs = w.take_inputs();
    assert_eq!(inputs.len(), 1);
    let hops = w.route(&inputs[0]);
    for h in &hops[..2] {
        assert!(!h.text.contains("quill@box.test"), "a middle hop learns the mailbox: {}", h.text);
    }
    assert_ne!(hops[1].body(), hops[2].body());
    let (code, out) = w.read_mail(&hops[2].text);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reply-block layers removed: 2"), "{out}");
    assert!(out.contains("Configuration completed"), "{out}");
    assert!(out.contains("notice from the server (config@); server signature: good"), "{out}");
    assert!(out.contains("nym confirm quill@nym.example"), "{out}");
    let cookie_addr = out
        .split_whitespace()
        .find(|w| w.starts_with("confirm+") && w.ends_with("@nym.example"))
        .unwrap()
        .to_string();

    // nym confirm: the chain carries the confirmation forward.
    let out_dir = w.dir.join("out");
    ok(
        w.nym().args(["confirm", "quill@nym.example", "--via"]).arg(format!("file:{}", out_dir.display())),
        None,
    );
    let files = files(&out_dir, "eml");
    assert_eq!(files.len(), 1);
    let mail = fs::read_to_string(&files[0]).unwrap();
    assert!(mail.contains("To: remailer@r1.test\n"), "{mail}");
    assert!(!mail.contains("confirm+"), "the first hop sees the cookie: {mail}");
    let body = mail.split_once("\n\n").unwrap().1;
    let h1 = engine(&w.cfg, Some(&w.r1), Entry::Remailer, "r1.test", body);
    assert_eq!(h1.to, vec![w.r2.address()]);
    let h2 = engine(&w.cfg, Some(&w.r2), Entry::Remailer, "r2.test", h1.body());
    assert_eq!(h2.to, vec![cookie_addr.clone()]);
    let (code, log) = w.deliver(&cookie_addr, &h2.from, h2.text.as_bytes());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=confirmed"), "{log}");

    // "Reply block confirmed" arrives; read from one mbox together with
    // the first notice again.
    let inputs = w.take_inputs();
    assert_eq!(inputs.len(), 1, "{log}");
    let mut mbox = String::new();
    for m in [&hops[2].text, &w.route(&inputs[0])[2].text] {
        mbox.push_str("From MAILER Thu Jan  1 00:00:00 1970\n");
        mbox.push_str(m);
        mbox.push('\n');
    }
    let (code, out) = w.read_mail(&mbox);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("==> mail 1 for quill@nym.example"), "{out}");
    assert!(out.contains("==> mail 2 for quill@nym.example"), "{out}");
    assert!(out.contains("Reply block confirmed"), "{out}");
    assert!(out.contains("the reply block is confirmed and in use"), "{out}");
    // The first notice read once more brings no used cookie back.
    let (code, out) = w.read_mail(&hops[2].text);
    assert_eq!(code, 0);
    assert!(!out.contains("waits for confirmation"), "{out}");
    let list = ok(w.nym().arg("list"), None);
    assert!(list.contains("state=active") && list.contains("blocks-active=1 blocks-pending=0"), "{list}");
    // Nothing waits for confirmation any more.
    let o = run(w.nym().args(["confirm", "quill@nym.example", "--direct"]), None);
    assert_eq!(o.status.code(), Some(65));

    // Mail from outside now goes through the block, and `nym read --mail`
    // opens what the last hop delivers.
    let outside = b"From: sam@source.test\nTo: quill@nym.example\nSubject: hello\n\nfor quill's eyes\n";
    let (code, log) = w.deliver("quill@nym.example", "sam@source.test", outside);
    assert_eq!(code, 0, "{log}");
    let inputs = w.take_inputs();
    assert_eq!(inputs.len(), 1, "{log}");
    let hops = w.route(&inputs[0]);
    assert!(!hops[2].text.contains("for quill's eyes"), "{}", hops[2].text);
    let (code, out) = w.read_mail(&hops[2].text);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("mail relayed to you by the server; server signature: good"), "{out}");
    assert!(out.contains("for quill's eyes") && out.contains("To: quill@nym.example"), "{out}");
}

#[test]
fn every_layer_of_a_nym_block_opens_with_plain_gpg() {
    let w = World::new();
    w.create();
    let input = w.take_inputs().remove(0);
    let g = Gpg::new();
    for r in [&w.r1, &w.r2] {
        g.import(holder::armored_secret(&r.cert).unwrap().as_bytes());
    }
    // r1's layer, as gpg opens it: the next hop and k1.
    let o = g.decrypt(first_armor(&input));
    assert!(o.ok, "{}", o.stderr);
    let p1 = String::from_utf8(o.stdout).unwrap();
    assert!(p1.starts_with("::\nAnon-To: remailer@r2.test\nEncrypt-Key: "), "{p1}");
    let k1 = p1.lines().nth(2).unwrap().trim_start_matches("Encrypt-Key: ").to_string();
    // r2's layer inside it: the mailbox and k2.
    let o = g.decrypt(first_armor(&p1));
    assert!(o.ok, "{}", o.stderr);
    let p2 = String::from_utf8(o.stdout).unwrap();
    assert!(p2.starts_with("::\nAnon-To: quill@box.test\nEncrypt-Key: "), "{p2}");
    let k2 = p2.lines().nth(2).unwrap().trim_start_matches("Encrypt-Key: ").to_string();
    assert_ne!(k1, k2);
    // What the holder gets: gpg --passphrase k2, then k1, then the nym key.
    let last = w.route(&input)[2].body().to_string();
    let o = g.decrypt_pass(last.as_bytes(), &k2);
    assert!(o.ok, "{}", o.stderr);
    let o = g.decrypt_pass(&o.stdout, &k1);
    assert!(o.ok, "{}", o.stderr);
    let under = String::from_utf8(o.stdout).unwrap();
    assert!(under.contains("**\n"), "{under}");
    // A keyring with only the nym's key (gpg's exit code counts the
    // remailer keys it tried on the hidden recipient as errors).
    let g = Gpg::new();
    let secret = ok(w.nym().args(["export", "quill@nym.example", "--secret"]), None);
    g.import(secret.as_bytes());
    g.import(&w.srv.key_export());
    let o = g.decrypt(first_armor(&under));
    assert!(o.ok, "{}\n{under}", o.stderr);
    assert!(o.stderr.contains("Good signature"), "{}", o.stderr);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Configuration completed"));
}
