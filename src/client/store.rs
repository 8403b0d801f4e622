//! The client's store: one directory (default `~/.nym`) that owns the nym
//! keys, the server keys, the options, the Maildir and the fetch state.
//!
//! Layout:
//!
//! ```text
//! config.toml              defaults: via, from, servers, proxy, SMTP login
//! nyms/ADDR/nym.toml       options (hsub, symmetric, ...), mode 0600
//! nyms/ADDR/key.asc        the nym's secret key, mode 0600
//! nyms/ADDR/server.asc     the server's public key
//! Maildir/{tmp,new,cur}    fetched articles, still encrypted
//! state/hwm.toml           high-water mark per "source group"
//! state/seen               Message-IDs already stored (duplicate guard)
//! state/socks-secret       makes each nym's SOCKS credentials (isolation)
//! ```
//!
//! Everything is written to a temporary file and renamed, so a crash never
//! leaves half a key or half a state file behind.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use super::reply_block::{Chain, Hop};

/// Client-wide defaults, from `config.toml`. Every field can also be given
/// on the command line.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Default hand-off method (see `--via`).
    pub via: Option<String>,
    /// Default From: of carrier mails.
    pub from: Option<String>,
    /// Default news sources for `nym fetch`.
    #[serde(default)]
    pub servers: Vec<String>,
    /// SOCKS5 proxy for every NNTP and SMTP connection (`socks5h://...`).
    pub proxy: Option<String>,
    /// SMTP login for `smtp+starttls://` and `smtps://` when the URL has none.
    pub smtp_user: Option<String>,
    pub smtp_password: Option<String>,
    /// The default `--deliver-to` of a reply block.
    pub deliver_to: Option<String>,
    /// The default remailer chain of `--reply-block` (`[[chain]]`
    /// tables, first hop first).
    #[serde(default)]
    pub chain: Vec<ChainHop>,
}

/// A `[[chain]]` entry of config.toml: a remailer and its key file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHop {
    pub address: String,
    pub key: PathBuf,
}

/// What the client knows about one nym.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct NymRecord {
    pub address: String,
    /// Current options, as last requested by this client.
    pub hsub: Option<String>,
    pub subject: Option<String>,
    pub symmetric: Option<String>,
    pub acksend: Option<bool>,
    /// Earlier values, still used to recognise and open older articles.
    #[serde(default)]
    pub old_hsubs: Vec<String>,
    #[serde(default)]
    pub old_subjects: Vec<String>,
    #[serde(default)]
    pub old_symmetric: Vec<String>,
    /// Passphrases of url@ requests: (key, hsub) pairs.
    #[serde(default)]
    pub url_keys: Vec<UrlKey>,
    /// eSub secrets (subject text, key) that mark this nym's articles;
    /// kept here only, the server never makes eSubs.
    #[serde(default)]
    pub esubs: Vec<EsubSecret>,
    /// Set once a delete request was made.
    #[serde(default)]
    pub deleted: bool,
    /// What the server last said about the nym, from its own notices only
    /// (see [`notice_state`]): `requested`, `active`, `refused: ...`,
    /// `deleted`. `None` for nyms from before this field.
    #[serde(default)]
    pub state: Option<String>,
    /// A key refresh was sent and the server has not confirmed it yet.
    #[serde(default)]
    pub refresh_pending: bool,
    /// `nym rotate`: fingerprints of the old encryption subkeys whose
    /// secrets are erased once the server confirms the refresh.
    #[serde(default)]
    pub rotation_pending: Vec<String>,
    /// Made by a nym.alias.net `Config:` creation (`nym new
    /// --reply-block`): the server answers only through reply blocks.
    #[serde(default)]
    pub reply_block_nym: bool,
    /// The reply blocks this client built for the nym, newest last, with
    /// the per-hop Encrypt-Key passphrases that open what arrives
    /// through them. Kept after they are replaced, for mail on its way.
    #[serde(default)]
    pub chains: Vec<Chain>,
    /// `confirm+COOKIE@D` from the server's last "Configuration
    /// completed" notice, until "Reply block confirmed" arrives.
    #[serde(default)]
    pub confirm_to: Option<String>,
}

/// The state a server notice puts a nym in, by the notice's Subject
/// (`None`: a notice that changes nothing, such as a status answer).
/// Only ever applied to real notices: the server's signature carries the
/// notice notation, which relayed mail cannot.
pub fn notice_state(subject: &str) -> Option<&'static str> {
    Some(match subject.trim() {
        "Nym created" => "active",
        "Nym key refreshed" => "active",
        "Nym refused: name taken" => "refused: name taken",
        "Nym refused: reserved name" => "refused: reserved name",
        "Nym refused: invalid name" => "refused: invalid name",
        "Nym refused: key too large" => "refused: key too large",
        "Nym deleted" => "deleted",
        _ => return None,
    })
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct EsubSecret {
    pub text: String,
    pub key: String,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct UrlKey {
    pub key: String,
    pub hsub: String,
}

impl NymRecord {
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// All hSub passphrases that may mark an article for this nym.
    pub fn all_hsubs(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.hsub.iter().map(String::as_str).collect();
        v.extend(self.old_hsubs.iter().map(String::as_str));
        v.extend(self.url_keys.iter().map(|u| u.hsub.as_str()));
        v
    }

    pub fn all_subjects(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.subject.iter().map(String::as_str).collect();
        v.extend(self.old_subjects.iter().map(String::as_str));
        v
    }

    /// All passphrases that may open a symmetric layer for this nym.
    pub fn all_passwords(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.symmetric.iter().map(String::as_str).collect();
        v.extend(self.old_symmetric.iter().map(String::as_str));
        v.extend(self.url_keys.iter().map(|u| u.key.as_str()));
        v
    }

    /// Without hsub or subject the server picks random subjects, so the only
    /// way to find this nym's articles is to try to decrypt all of them.
    pub fn needs_try_all(&self) -> bool {
        // A nym with a confirmed block gets nothing on the newsgroup; one
        // whose blocks still wait does (REPLY-BLOCKS.md section 2).
        !self.deleted
            && !self.chains.iter().any(|c| c.state == "active")
            && self.hsub.is_none()
            && self.subject.is_none()
            && self.esubs.is_empty()
    }

    /// Every Encrypt-Key passphrase of every chain, last hops first.
    pub fn chain_passphrases(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for c in self.chains.iter().rev() {
            for p in c.passphrases() {
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
        v
    }
}

/// Check and normalise a nym address: local parts are case-insensitive,
/// and so are domains, so the store uses lower case throughout.
pub fn normalize_address(addr: &str) -> Result<String> {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase();
    let Some((local, domain)) = a.split_once('@') else {
        bail!("`{addr}` is not a nym address; write it as NAME@SERVER-DOMAIN");
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !local.chars().all(ok_char)
        || !domain.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
    {
        bail!("`{addr}` is not a usable nym address");
    }
    Ok(a)
}

/// Refuse, before anything is sent, a nym name the server would refuse:
/// the server's rules (`crate::protocol::address`), with its built-in
/// reserved names (an operator may reserve more).
pub fn check_nym_name(addr: &str) -> Result<()> {
    use crate::protocol::address::{is_reserved, is_valid_nym_name, NAME_MAX, NAME_MIN};
    let local = addr.split('@').next().unwrap_or("");
    if is_reserved(local, &[]) {
        bail!("`{local}` is a reserved name (a service or an administrative address); choose another");
    }
    if !is_valid_nym_name(local) {
        bail!(
            "`{local}` cannot be a nym name: {NAME_MIN} to {NAME_MAX} characters of a-z, 0-9, and - _ . \
             between them, starting and ending with a letter or digit"
        );
    }
    Ok(())
}

pub struct Store {
    pub root: PathBuf,
}

impl Store {
    /// Open (and create if needed) the store at `home`, or `~/.nym`.
    pub fn open(home: Option<&Path>) -> Result<Store> {
        let root = match home {
            Some(h) => h.to_path_buf(),
            None => {
                let h = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set; use --home"))?;
                PathBuf::from(h).join(".nym")
            }
        };
        let store = Store { root };
        for d in ["", "nyms", "state", "Maildir", "Maildir/tmp", "Maildir/new", "Maildir/cur"] {
            private_dir(&store.root.join(d))?;
        }
        Ok(store)
    }

    pub fn config(&self) -> Result<ClientConfig> {
        let p = self.root.join("config.toml");
        match fs::read_to_string(&p) {
            Ok(s) => toml::from_str(&s).with_context(|| format!("reading {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    pub fn save_config(&self, cfg: &ClientConfig) -> Result<()> {
        write_private(&self.root.join("config.toml"), toml::to_string(cfg)?.as_bytes())
    }

    /// Hold the fetch lock (state/fetch.lock) until the file is dropped, so
    /// that two `nym fetch` runs never interleave their high-water marks.
    /// Waits for a running fetch to finish.
    pub fn fetch_lock(&self) -> Result<File> {
        use std::os::fd::AsRawFd;
        let p = self.root.join("state/fetch.lock");
        let f = OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&p)?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            eprintln!("nym: another nym fetch is running; waiting for it");
            // SAFETY: as above.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error()).context("locking the fetch state");
            }
        }
        Ok(f)
    }

    /// The secret the nyms' SOCKS credentials are made from
    /// (state/socks-secret, 0600), created on first use.
    pub fn isolation_secret(&self) -> Result<Vec<u8>> {
        let p = self.root.join("state/socks-secret");
        match fs::read_to_string(&p) {
            Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        }
        let mut r = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut r);
        let s = hex::encode(r);
        write_private(&p, s.as_bytes())?;
        Ok(s.into_bytes())
    }

    pub fn maildir(&self) -> PathBuf {
        self.root.join("Maildir")
    }

    fn nym_dir(&self, addr: &str) -> PathBuf {
        self.root.join("nyms").join(addr)
    }

    pub fn has_nym(&self, addr: &str) -> bool {
        self.nym_dir(addr).join("nym.toml").exists()
    }

    pub fn load_nym(&self, addr: &str) -> Result<NymRecord> {
        let addr = normalize_address(addr)?;
        let p = self.nym_dir(&addr).join("nym.toml");
        let s = fs::read_to_string(&p).map_err(|_| {
            anyhow!(
                "no nym {addr} in {}; create it with `nym new` or adopt it with `nym import`",
                self.root.display()
            )
        })?;
        toml::from_str(&s).with_context(|| format!("reading {}", p.display()))
    }

    pub fn save_nym(&self, rec: &NymRecord) -> Result<()> {
        let dir = self.nym_dir(&rec.address);
        private_dir(&dir)?;
        write_private(&dir.join("nym.toml"), toml::to_string(rec)?.as_bytes())
    }

    pub fn list_nyms(&self) -> Result<Vec<NymRecord>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("nyms"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().join("nym.toml").exists() {
                out.push(self.load_nym(&name)?);
            }
        }
        out.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(out)
    }

    pub fn save_key(&self, addr: &str, armored_secret: &[u8]) -> Result<()> {
        let dir = self.nym_dir(addr);
        private_dir(&dir)?;
        write_private(&dir.join("key.asc"), armored_secret)
    }

    pub fn key_bytes(&self, addr: &str) -> Result<Vec<u8>> {
        let p = self.nym_dir(addr).join("key.asc");
        fs::read(&p).with_context(|| format!("reading the nym key {}", p.display()))
    }

    pub fn save_server_key(&self, addr: &str, armored: &[u8]) -> Result<()> {
        let dir = self.nym_dir(addr);
        private_dir(&dir)?;
        write_private(&dir.join("server.asc"), armored)
    }

    pub fn server_key_bytes(&self, addr: &str) -> Result<Vec<u8>> {
        let p = self.nym_dir(addr).join("server.asc");
        fs::read(&p).with_context(|| format!("reading the server key {}", p.display()))
    }

    pub fn forget_nym(&self, addr: &str) -> Result<()> {
        let dir = self.nym_dir(addr);
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
    }

    pub fn hwms(&self) -> Result<BTreeMap<String, u64>> {
        let p = self.root.join("state/hwm.toml");
        match fs::read_to_string(&p) {
            Ok(s) => toml::from_str(&s).with_context(|| format!("reading {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn set_hwm(&self, key: &str, value: u64) -> Result<()> {
        let mut all = self.hwms()?;
        all.insert(key.to_string(), value);
        write_private(&self.root.join("state/hwm.toml"), toml::to_string(&all)?.as_bytes())
    }

    /// Lines of a state list (Message-IDs stored, spool files examined).
    pub fn state_list(&self, name: &str) -> Result<std::collections::HashSet<String>> {
        let p = self.root.join("state").join(name);
        match fs::read_to_string(&p) {
            Ok(s) => Ok(s.lines().map(str::to_string).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Append one line to a state list, durably.
    pub fn state_append(&self, name: &str, line: &str) -> Result<()> {
        self.state_append_with(name, line, true)
    }

    /// Append one line; `sync` false when losing the line in a crash only
    /// means looking at something once more (the Message-ID list still
    /// keeps it out of the Maildir).
    pub fn state_append_with(&self, name: &str, line: &str, sync: bool) -> Result<()> {
        let p = self.root.join("state").join(name);
        let mut f = OpenOptions::new().create(true).append(true).mode(0o600).open(&p)?;
        writeln!(f, "{line}")?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// Create `dir` if needed and make it 0700.
pub fn private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting mode 0700 on {}", dir.display()))
}

/// Write a file atomically with mode 0600.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(normalize_address(" Alice@Nym.Example ").unwrap(), "alice@nym.example");
        assert_eq!(normalize_address("<bob@x.org>").unwrap(), "bob@x.org");
        for bad in ["alice", "@x", "a@", "a/b@x", "a@b@c", "../x@y"] {
            assert!(normalize_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn store_is_private() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(Some(&t.path().join("h"))).unwrap();
        let mode = fs::metadata(&s.root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        s.save_key("a@b.c", b"secret").unwrap();
        let m = fs::metadata(s.root.join("nyms/a@b.c/key.asc")).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o600);
    }
}
