//! The TOML configuration file, read and validated once at start.

mod remailer;
mod template;
mod traffic;

pub use remailer::{Autoresponders, Remailer};
pub use traffic::{Cover, Lifecycle, Pool};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Default location; `--config` or `NYMGATE_CONFIG` override it.
pub const DEFAULT_PATH: &str = "/etc/nymgate/nymgate.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// State directory: database and server secret key live here.
    pub home: PathBuf,
    /// Hosted domains; the first is the default.
    pub domains: Vec<String>,
    /// Local parts that can never be nyms, on top of the built-in list.
    #[serde(default)]
    pub reserved: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub news: News,
    #[serde(default)]
    pub mail: Mail,
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub pool: Pool,
    #[serde(default)]
    pub cover: Cover,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub send: Send,
    #[serde(default)]
    pub reply_blocks: ReplyBlocks,
    #[serde(default)]
    pub url: Url,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub mta: Mta,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default)]
    pub remailer: Remailer,
    #[serde(default)]
    pub autoresponders: Autoresponders,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Mta {
    /// The table of deliverable addresses the MTA checks at RCPT time
    /// (default `<home>/recipients`), rewritten on every create, delete
    /// and expiry. Lines are `address address`, readable by Postfix's
    /// `texthash:` and Exim's `lsearch`.
    pub recipient_table: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Operator {
    /// Where mail to postmaster@ and abuse@ of every hosted domain goes.
    pub address: String,
}

impl Default for Operator {
    fn default() -> Self {
        Operator { address: "root@localhost".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message `deliver` accepts, in bytes.
    pub max_message_size: u64,
    /// hSub length in hex characters (48 to 80).
    pub hsub_length: usize,
    /// Seconds to wait for the database lock before giving up with 75.
    pub busy_timeout: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message_size: 20 * 1024 * 1024, hsub_length: 48, busy_timeout: 30 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NewsTransport {
    Spool,
    Inews,
    /// IHAVE to `nntp_server` as a peer (src/transport/nntp.rs).
    Nntp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct News {
    pub transport: NewsTransport,
    /// One file per article, for the embedded default.
    pub spool: PathBuf,
    /// Command that reads one article on stdin.
    pub inews: Vec<String>,
    /// `host:port` of the news server that takes IHAVE from us.
    pub nntp_server: String,
    pub newsgroup: String,
    /// Path header; empty means "<first domain>!not-for-mail".
    pub path: String,
    /// From header; empty means "Nobody <nobody@<first domain>>".
    pub from: String,
    /// Host named in Injection-Info; empty means the first domain.
    pub injection_host: String,
    /// mail-complaints-to address; empty means abuse@<first domain>.
    pub complaints_to: String,
    /// Pad every article to a size class (docs/traffic-analysis.md).
    pub padding: bool,
}

impl Default for News {
    fn default() -> Self {
        News {
            transport: NewsTransport::Spool,
            spool: PathBuf::from("/var/lib/nymgate/news"),
            inews: vec!["/usr/bin/inews".into(), "-h".into()],
            nntp_server: "127.0.0.1:119".into(),
            newsgroup: "alt.anonymous.messages".into(),
            path: String::new(),
            from: String::new(),
            injection_host: String::new(),
            complaints_to: String::new(),
            padding: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Sendmail,
    Spool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    pub transport: MailTransport,
    /// nymgate appends `-f SENDER -- RCPT...`; the message goes on stdin.
    pub sendmail: Vec<String>,
    /// With transport = "spool": one file per outgoing mail (for the demo).
    pub spool: PathBuf,
    /// Envelope sender for mail from nyms; empty means the nym's address.
    pub bounce_address: String,
}

impl Default for Mail {
    fn default() -> Self {
        Mail {
            transport: MailTransport::Sendmail,
            sendmail: vec!["/usr/sbin/sendmail".into(), "-i".into()],
            spool: PathBuf::from("/var/lib/nymgate/mail"),
            bounce_address: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Random hold before hand-off, in seconds (0 and 0: hand off at once).
    pub latency_min: u64,
    pub latency_max: u64,
    /// An item that could not be handed off for this many seconds is given
    /// up (as Postfix's maximal_queue_lifetime); so is one refused for good
    /// (an inews 441, sendmail saying the data is bad) after
    /// `max_permanent_failures` attempts.
    pub max_age: u64,
    pub max_permanent_failures: u32,
    /// A sendmail or inews run that takes longer is killed and retried later.
    pub transport_timeout: u64,
    /// A queued item whose hand-off was claimed but not finished is retried
    /// after this many seconds (the claimer probably died).
    pub claim_timeout: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            latency_min: 0,
            latency_max: 0,
            max_age: 5 * 86400,
            max_permanent_failures: 3,
            transport_timeout: 60,
            claim_timeout: 300,
        }
    }
}

/// Longest period the lifecycle settings take, in days (100 years).
const MAX_DAYS: u32 = 36_500;

/// Reply blocks (REPLY-BLOCKS.md sections 6 and 7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyBlocks {
    /// Most blocks per request (and active per nym).
    pub max_per_nym: usize,
    /// Largest block, in bytes.
    pub max_block_bytes: usize,
    /// Seconds a pending set waits for mail to its cookie address.
    pub confirm_timeout: u64,
    /// Units a nym may spend per UTC day through its blocks.
    pub daily_units: u64,
}

impl Default for ReplyBlocks {
    fn default() -> Self {
        ReplyBlocks { max_per_nym: 4, max_block_bytes: 32768, confirm_timeout: 7 * 86400, daily_units: 512 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Send {
    /// Recipients a nym may send to per UTC day (each recipient of a
    /// message counts, and so does a news post).
    pub daily_limit: u32,
    /// Recipients (To, Cc and Bcc together) one message may have; a
    /// message with more is refused whole and the nym told.
    pub max_recipients: usize,
    /// Held messages (from keys not known yet) kept per signing key, in
    /// all, and their total size in bytes; beyond, new ones are dropped.
    pub max_held_per_key: u32,
    pub max_held: u32,
    pub max_held_bytes: u64,
    /// Signatures older than this many seconds are refused.
    pub replay_window: u64,
    /// Signatures dated further ahead than this many seconds are refused.
    pub future_skew: u64,
    /// Signed messages from unknown keys are held this many seconds.
    pub hold_time: u64,
    /// Addresses and domains that asked never to receive nym mail.
    pub blocklist: Option<PathBuf>,
}

impl Default for Send {
    fn default() -> Self {
        Send {
            daily_limit: 50,
            max_recipients: 20,
            max_held_per_key: 8,
            max_held: 1000,
            max_held_bytes: 64 * 1024 * 1024,
            replay_window: 7 * 86400,
            future_skew: 86400,
            hold_time: 86400,
            blocklist: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Url {
    /// Allow loopback, private and other non-public addresses (tests only).
    pub allow_private: bool,
    pub max_page_bytes: u64,
    /// Seconds for one page.
    pub timeout: u64,
    pub max_urls: usize,
    /// Seconds for a whole request, every page together.
    pub request_timeout: u64,
    /// Bytes of page content in one reply; pages beyond are cut with a
    /// note. The default keeps the armored article well below INN's
    /// default 1,000,000-byte article limit.
    pub max_reply_bytes: u64,
    /// url@ requests accepted per hour (they need no signature).
    pub max_per_hour: u32,
}

impl Default for Url {
    fn default() -> Self {
        Url {
            allow_private: false,
            max_page_bytes: 2 * 1024 * 1024,
            timeout: 30,
            max_urls: 10,
            request_timeout: 90,
            max_reply_bytes: 400 * 1024,
            max_per_hour: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// error, warn, info or debug. No level logs names or content.
    pub level: String,
    /// Also write to stderr (always done when stderr is a terminal).
    pub stderr: bool,
    /// Syslog facility: mail, daemon, user or local0 to local7.
    pub facility: String,
}

impl Default for Log {
    fn default() -> Self {
        Log { level: "info".into(), stderr: false, facility: "mail".into() }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        let mut cfg: Config =
            toml::from_str(&text).with_context(|| format!("invalid configuration {}", path.display()))?;
        cfg.normalise()?;
        Ok(cfg)
    }

    fn normalise(&mut self) -> Result<()> {
        if self.domains.is_empty() {
            bail!("configuration names no domain");
        }
        for d in &mut self.domains {
            *d = d.trim().to_ascii_lowercase();
            if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
                bail!("invalid domain {d:?}");
            }
        }
        for r in &mut self.reserved {
            *r = r.trim().to_ascii_lowercase();
        }
        if !(crate::protocol::hsub::MIN_LEN..=crate::protocol::hsub::MAX_LEN)
            .contains(&self.limits.hsub_length)
        {
            bail!("limits.hsub_length must be between 48 and 80");
        }
        if self.delivery.latency_max < self.delivery.latency_min {
            bail!("delivery.latency_max is below delivery.latency_min");
        }
        if !(1..=100).contains(&self.pool.rate) {
            bail!("pool.rate must be a percentage between 1 and 100");
        }
        if self.pool.max_hold == 0 {
            bail!("pool.max_hold must be at least 1 second");
        }
        let l = &mut self.lifecycle;
        if l.warn_days.len() > 8 || l.warn_days.iter().any(|d| !(1..=MAX_DAYS).contains(d)) {
            bail!("lifecycle.warn_days takes at most 8 numbers of days, each from 1 to {MAX_DAYS}");
        }
        l.warn_days.sort_unstable_by(|a, b| b.cmp(a));
        l.warn_days.dedup();
        if [l.expire_grace, l.inactive_warn_days, l.inactive_delete_days].iter().any(|d| *d > MAX_DAYS) {
            bail!("lifecycle periods are at most {MAX_DAYS} days");
        }
        if l.inactive_warn_days > 0
            && l.inactive_delete_days > 0
            && l.inactive_warn_days >= l.inactive_delete_days
        {
            bail!("lifecycle.inactive_warn_days must be below lifecycle.inactive_delete_days");
        }
        if self.news.transport == NewsTransport::Inews && self.news.inews.is_empty() {
            bail!("news.inews is empty");
        }
        if self.news.transport == NewsTransport::Nntp && self.news.nntp_server.trim().is_empty() {
            bail!("news.nntp_server is empty");
        }
        if self.mail.transport == MailTransport::Sendmail && self.mail.sendmail.is_empty() {
            bail!("mail.sendmail is empty");
        }
        let d0 = self.domains[0].clone();
        if self.news.path.is_empty() {
            self.news.path = format!("{d0}!not-for-mail");
        }
        if self.news.from.is_empty() {
            self.news.from = format!("Nobody <nobody@{d0}>");
        }
        if self.news.injection_host.is_empty() {
            self.news.injection_host = d0.clone();
        }
        if crate::logging::facility(&self.log.facility).is_none() {
            bail!(
                "log.facility {:?} is not a syslog facility (mail, daemon, user, local0..local7)",
                self.log.facility
            );
        }
        if self.news.complaints_to.is_empty() {
            self.news.complaints_to = format!("abuse@{d0}");
        }
        let r = &self.remailer;
        if !(1..=64).contains(&r.max_layers) {
            bail!("remailer.max_layers must be between 1 and 64");
        }
        if !(1..=64).contains(&r.max_cut_segments) {
            bail!("remailer.max_cut_segments must be between 1 and 64");
        }
        if !(1..=100).contains(&r.max_recipients) {
            bail!("remailer.max_recipients must be between 1 and 100");
        }
        if r.max_latency > 30 * 86400 {
            bail!("remailer.max_latency must be at most 30 days (2592000 s)");
        }
        for f in [&r.name, &r.from, &r.comments, &r.extra_flags] {
            if f.chars().any(|c| c.is_control()) {
                bail!("remailer.name, from, comments and extra_flags must be one line each");
            }
        }
        if r.name.contains(['"', '\\']) || r.extra_flags.contains(['"', '\\']) {
            bail!("remailer.name and extra_flags must not hold quotes or backslashes");
        }
        for g in &mut self.remailer.blocked_groups {
            *g = g.trim().to_ascii_lowercase();
        }
        Ok(())
    }

    pub fn default_domain(&self) -> &str {
        &self.domains[0]
    }

    pub fn hosts(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.domains.contains(&d)
    }

    pub fn db_path(&self) -> PathBuf {
        self.home.join("nymgate.db")
    }

    pub fn key_path(&self) -> PathBuf {
        self.home.join("server.key")
    }

    pub fn recipient_table(&self) -> PathBuf {
        self.mta.recipient_table.clone().unwrap_or_else(|| self.home.join("recipients"))
    }

    /// Reserved local parts: the protocol's and the operator's.
    pub fn is_reserved(&self, local: &str) -> bool {
        crate::protocol::address::is_reserved(local, &self.reserved)
    }

    /// A configuration with every default, for unit tests.
    #[cfg(test)]
    pub fn for_tests(domains: &[&str]) -> Config {
        let d: Vec<String> = domains.iter().map(|s| s.to_string()).collect();
        let mut c: Config = toml::from_str(&Config::template(Path::new("/nonexistent"), &d)).unwrap();
        c.normalise().unwrap();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_round_trips() {
        let t = Config::template(Path::new("/tmp/x"), &["Nym.Example".into(), "b.example".into()]);
        let mut c: Config = toml::from_str(&t).unwrap();
        c.normalise().unwrap();
        assert_eq!(c.domains, vec!["nym.example", "b.example"]);
        assert_eq!(c.news.transport, NewsTransport::Spool);
        assert_eq!(c.news.spool, Path::new("/tmp/x/news"));
        assert!(c.hosts("NYM.example"));
        assert!(c.is_reserved("Postmaster"));
        assert!(!c.is_reserved("alice"));
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let mut c: Config = toml::from_str("home = \"/h\"\ndomains = [\"d.example\"]\n").unwrap();
        c.normalise().unwrap();
        assert_eq!(c.news.from, "Nobody <nobody@d.example>");
        assert_eq!(c.send.daily_limit, 50);
        assert_eq!(c.limits.hsub_length, 48);
    }

    #[test]
    fn lifecycle_defaults_warn_at_14_and_2_days_and_keep_no_activity() {
        let c = Config::for_tests(&["nym.example"]);
        assert_eq!(c.lifecycle.warn_days, vec![14, 2]);
        assert_eq!(c.lifecycle.expire_grace, 0);
        assert!(!c.lifecycle.tracks_activity());
    }

    #[test]
    fn lifecycle_values_are_checked_and_warn_days_sorted() {
        let load = |l: &str| -> Result<Config> {
            let mut c: Config =
                toml::from_str(&format!("home = \"/h\"\ndomains = [\"d.example\"]\n[lifecycle]\n{l}\n"))?;
            c.normalise()?;
            Ok(c)
        };
        let c = load("warn_days = [2, 30, 2, 7]").unwrap();
        assert_eq!(c.lifecycle.warn_days, vec![30, 7, 2]);
        assert!(load("warn_days = [0]").is_err());
        assert!(load("warn_days = [1,2,3,4,5,6,7,8,9]").is_err());
        assert!(load("inactive_warn_days = 120\ninactive_delete_days = 90").is_err());
        assert!(load("inactive_warn_days = 90\ninactive_delete_days = 90").is_err());
        assert!(load("expire_grace = 40000").is_err());
        let c = load("inactive_warn_days = 90\ninactive_delete_days = 120").unwrap();
        assert!(c.lifecycle.tracks_activity());
        assert!(load("inactive_delete_days = 120").unwrap().lifecycle.tracks_activity());
        assert!(load("warn_days = []").unwrap().lifecycle.warn_days.is_empty());
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c: Config = toml::from_str("home = \"/h\"\ndomains = []\n").unwrap();
        assert!(c.normalise().is_err());
        assert!(toml::from_str::<Config>("home = \"/h\"\ndomains = [\"d\"]\nbogus = 1\n").is_err());
    }
}
