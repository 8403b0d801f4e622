//! Running the Type I engine ([`crate::handle::remailer`]) for its two
//! entries (REPLY-BLOCKS.md 10.1): mail to `remailer@D` and the local
//! runs of reply blocks (7.2). What the pure engine asks for is brought
//! here: the server key as its [`Crypto`] (the rotation's previous key
//! too, during its grace period), the operator's lists, the clock and a
//! CSPRNG; its outputs become outbox items with their Latent-Time.

use std::path::Path;

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::nym_commands::block_problem;
use crate::handle::remailer::{self, Crypto, Entry, Env, Policy, Run};
use crate::openpgp::{self as pgp, ServerKey};
use crate::protocol::config_request::BlockSection;
use crate::protocol::nym_commands::Problem;
use crate::store::Delayed;

/// The server key for the engine. Given (deliver has it open already) or
/// loaded from the home on the first decryption a reply block asks for,
/// with the previous key of a rotation during its grace period. A key
/// that cannot be loaded is transient trouble, not a silent drop: see
/// [`ServerCrypto::failed`].
pub struct ServerCrypto<'a> {
    cfg: &'a Config,
    given: Option<&'a mut ServerKey>,
    loaded: Option<ServerKey>,
    failed: bool,
}

impl<'a> ServerCrypto<'a> {
    pub fn new(cfg: &'a Config, given: Option<&'a mut ServerKey>) -> Self {
        ServerCrypto { cfg, given, loaded: None, failed: false }
    }

    /// Whether a decryption was asked for and the key could not be read.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn key(&mut self) -> Option<&mut ServerKey> {
        if self.given.is_none() && self.loaded.is_none() && !self.failed {
            match load_key(self.cfg) {
                Ok(k) => self.loaded = Some(k),
                Err(_) => self.failed = true,
            }
        }
        match &mut self.given {
            Some(k) => Some(&mut **k),
            None => self.loaded.as_mut(),
        }
    }
}

fn load_key(cfg: &Config) -> anyhow::Result<ServerKey> {
    crate::admin::check_private(&cfg.key_path())?;
    let mut key = ServerKey::from_tsk(&std::fs::read(cfg.key_path())?)?;
    crate::rotation::accept_previous(cfg, &mut key, crate::store::now())?;
    Ok(key)
}

impl Crypto for ServerCrypto<'_> {
    fn decrypt(&mut self, armored: &str) -> Option<String> {
        let max = self.cfg.limits.max_message_size as usize;
        let key = self.key()?;
        // Integrity protection required: decrypt_layer refuses SED packets
        // and a SEIPD whose MDC does not match.
        let plain = pgp::decrypt_layer(key, armored.as_bytes(), max).ok()?;
        Some(String::from_utf8_lossy(&plain).into_owned())
    }

    fn encrypt_key(&mut self, key: &str, text: &str) -> Option<String> {
        let armored = pgp::encrypt_key(key, text.as_bytes()).ok()?;
        String::from_utf8(armored).ok()
    }
}

/// Read an operator's list: one entry a line, `#` starts a comment,
/// lowercased. No path or a missing file: empty. Any other read error
/// defers (75): a list that keeps mail from people must not be skipped.
pub fn read_list(path: Option<&Path>) -> Result<Vec<String>, Failure> {
    Ok(read_text(path)?
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty())
        .collect())
}

fn read_text(path: Option<&Path>) -> Result<String, Failure> {
    // The operator's own file, read whole: cutting a block list short
    // would let mail through to the addresses after the cut.
    let Some(path) = path else { return Ok(String::new()) };
    match std::fs::read(path) {
        Ok(buf) => Ok(String::from_utf8_lossy(&buf).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Failure::Temp(e.into())),
    }
}

/// The `[send] blocklist` entries (the exit policy shares them, 10.9).
pub fn blocklist(cfg: &Config) -> Result<Vec<String>, Failure> {
    read_list(cfg.send.blocklist.as_deref())
}

/// The known remailers of `middleman` (10.9): the operator's file, bare
/// addresses or Mixmaster `$remailer{...}` lines. Our own `remailer@D`
/// addresses count as known without being listed (the engine adds them).
pub fn known_remailers(cfg: &Config) -> Result<Vec<String>, Failure> {
    let text = read_text(cfg.remailer.known_remailers.as_deref())?;
    Ok(crate::protocol::type1::parse_known_remailers(&text))
}

/// What the engine needs besides the message and the key.
pub struct Lists {
    pub blocklist: Vec<String>,
    pub known: Vec<String>,
}

/// One run of the engine at `domain`; the outputs as outbox items, each
/// with its Latent-Time, and the [`Run`] for the log line.
pub fn run(
    cfg: &Config,
    entry: Entry,
    domain: &str,
    header: &[(String, String)],
    body: &str,
    lists: &Lists,
    crypto: &mut dyn Crypto,
) -> (Vec<Delayed>, Run) {
    let policy = Policy::of(cfg);
    let env = Env {
        cfg,
        policy: &policy,
        domain,
        now: crate::store::now(),
        blocklist: &lists.blocklist,
        known: &lists.known,
    };
    let mut rng = rand::rngs::OsRng;
    let mut r = remailer::run(&env, entry, header, body, crypto, &mut rng);
    let items = std::mem::take(&mut r.outputs)
        .into_iter()
        .map(|o| Delayed { item: o.item, delay: o.delay })
        .collect();
    (items, r)
}

/// The 6.1 check of each supplied block of a `Config:` request, as the
/// problems its reply lists: the engine with an empty payload, the server
/// key for a layer of ours, the block list; nothing is sent or stored.
/// Only blocks that can be valid at all are run (the first `max_per_nym`,
/// each within `max_block_bytes`): the others are refused anyway.
pub fn check_blocks(
    cfg: &Config,
    server: &mut ServerKey,
    domain: &str,
    blocks: &[BlockSection],
    nym: &str,
) -> Result<Vec<Option<Problem>>, Failure> {
    let rb = &cfg.reply_blocks;
    let texts: Vec<&str> = blocks
        .iter()
        .take(rb.max_per_nym)
        .map(|b| b.text.as_str())
        .filter(|t| t.len() <= rb.max_block_bytes)
        .collect();
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let policy = Policy::of(cfg);
    let blocklist = blocklist(cfg)?;
    let env =
        Env { cfg, policy: &policy, domain, now: crate::store::now(), blocklist: &blocklist, known: &[] };
    let mut crypto = ServerCrypto::new(cfg, Some(server));
    let mut rng = rand::rngs::OsRng;
    Ok(texts
        .iter()
        .map(|b| block_problem(remailer::check_block(&env, b, nym, &mut crypto, &mut rng)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_drop_comments_and_blank_lines_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, "# ours\nA@B.test  # note\n\n@quiet.test\n").unwrap();
        assert_eq!(read_list(Some(&p)).unwrap(), vec!["a@b.test", "@quiet.test"]);
        assert!(read_list(Some(&dir.path().join("none"))).unwrap().is_empty());
        assert!(read_list(None).unwrap().is_empty());
        // A directory cannot be read: that defers, it is not an empty list.
        assert!(matches!(read_list(Some(dir.path())), Err(Failure::Temp(_))));
    }

    #[test]
    fn the_server_key_opens_a_layer_and_encrypt_key_writes_armor() {
        let cfg = Config::for_tests(&["r1.test"]);
        let mut key = ServerKey::from_tsk(include_bytes!("../../fuzz/keys/server.key")).unwrap();
        let cert = key.cert.clone();
        let armored = pgp::holder::encrypt(b"::\nAnon-To: a@b.test\n\nx\n", &[&cert], None).unwrap();
        let mut c = ServerCrypto::new(&cfg, Some(&mut key));
        assert_eq!(c.decrypt(&armored).as_deref(), Some("::\nAnon-To: a@b.test\n\nx\n"));
        assert!(c.decrypt("-----BEGIN PGP MESSAGE-----\n\nx\n-----END PGP MESSAGE-----\n").is_none());
        assert!(c.encrypt_key("k", "x\n").unwrap().starts_with("-----BEGIN PGP MESSAGE-----"));
        assert!(!c.failed());
    }

    #[test]
    fn a_missing_key_file_is_a_failure_not_a_drop() {
        let mut cfg = Config::for_tests(&["r1.test"]);
        let dir = tempfile::tempdir().unwrap();
        cfg.home = dir.path().to_path_buf();
        let mut c = ServerCrypto::new(&cfg, None);
        assert!(c.decrypt("-----BEGIN PGP MESSAGE-----\n\nx\n-----END PGP MESSAGE-----\n").is_none());
        assert!(c.failed());
    }
}
