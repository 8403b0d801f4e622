//! The TOML configuration file, read and validated once at start.

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

/// The Type I remailer at `remailer@D` (REPLY-BLOCKS.md section 10).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Remailer {
    /// Off: mail to remailer@ exits 67. Reply-block runs need no switch.
    pub enabled: bool,
    /// Only messages with at least one layer encrypted to the server key.
    pub pgp_only: bool,
    /// Mail only to known remailers, and no posts (remailer@ traffic only).
    pub middleman: bool,
    /// One address a line, or Mixmaster `$remailer{"name"} = "<addr> flags";`.
    pub known_remailers: Option<PathBuf>,
    /// Allow `Anon-Post-To` (news through the news transport).
    pub post: bool,
    /// Groups (or `prefix.*`) never posted to.
    pub blocked_groups: Vec<String>,
    pub max_layers: usize,
    pub max_cut_segments: usize,
    /// Latent-Time is clamped to this many seconds.
    pub max_latency: u64,
    pub max_recipients: usize,
    /// Capability-line name; empty: the first label of each domain.
    pub name: String,
    /// From: of remailed mail; empty: `Anonymous <nobody@D>`.
    pub from: String,
    /// Comments: of remailed mail; empty: the default abuse notice.
    pub comments: String,
    /// Appended to the capability line.
    pub extra_flags: String,
}

impl Default for Remailer {
    fn default() -> Self {
        Remailer {
            enabled: false,
            pgp_only: true,
            middleman: true,
            known_remailers: None,
            post: false,
            blocked_groups: Vec::new(),
            max_layers: 8,
            max_cut_segments: 4,
            max_latency: 86400,
            max_recipients: 5,
            name: String::new(),
            from: String::new(),
            comments: String::new(),
            extra_flags: String::new(),
        }
    }
}

/// help@, remailer-key@, list@, used@ (REPLY-BLOCKS.md section 11).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Autoresponders {
    /// The text help@ sends; absent: the built-in text.
    pub help_file: Option<PathBuf>,
    /// list@ and used@ answer (they reveal the user base); off: exit 67.
    pub list: bool,
    /// Replies to one address per 24 hours.
    pub per_address_daily: u32,
    /// Replies in all per hour.
    pub hourly_total: u32,
}

impl Default for Autoresponders {
    fn default() -> Self {
        Autoresponders { help_file: None, list: false, per_address_daily: 3, hourly_total: 60 }
    }
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct News {
    pub transport: NewsTransport,
    /// One file per article, for the embedded default.
    pub spool: PathBuf,
    /// Command that reads one article on stdin.
    pub inews: Vec<String>,
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

/// The outgoing pool (docs/traffic-analysis.md): items leave in random
/// batches, Mixmaster-style, instead of one by one as they arrive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pool {
    /// Off: every item is handed off as soon as it is due (by `deliver`
    /// itself when there is no latency).
    pub enabled: bool,
    /// Seconds between two pool rounds; `flush` runs more often (for
    /// retries and url@) and does a round only when one is due.
    pub interval: u64,
    /// A round sends nothing unless at least this many items wait.
    pub min_pool: u32,
    /// Percentage of the waiting items that a round sends, chosen at
    /// random (rounded up).
    pub rate: u32,
    /// Seconds after which a waiting item leaves at the next round,
    /// whatever the pool's size.
    pub max_hold: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Pool { enabled: true, interval: 900, min_pool: 5, rate: 65, max_hold: 6 * 3600 }
    }
}

/// Cover traffic (docs/traffic-analysis.md): dummy articles, posted at
/// random times, that only a nym's key could tell from mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cover {
    /// Dummy articles per day on average (a Poisson process); 0 = none.
    pub rate: u32,
}

impl Default for Cover {
    fn default() -> Self {
        Cover { rate: 48 }
    }
}

/// The life of a nym after its creation (docs/operators.md, "The life of
/// a nym"): warnings before its key expires, erasure after, and the
/// optional inactivity rule. All of it runs in `flush`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    /// Days before the key's expiry at which the nym is warned, once each
    /// per expiry date (a refresh with a new expiry re-arms them).
    pub warn_days: Vec<u32>,
    /// Days after the key's expiry before the nym is erased.
    pub expire_grace: u32,
    /// Days without a signed request after which the nym is warned; 0: off.
    pub inactive_warn_days: u32,
    /// Days without a signed request after which the nym is erased; 0: off.
    pub inactive_delete_days: u32,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle { warn_days: vec![14, 2], expire_grace: 0, inactive_warn_days: 0, inactive_delete_days: 0 }
    }
}

impl Lifecycle {
    /// Is the inactivity rule on (and so the last-activity day kept)?
    pub fn tracks_activity(&self) -> bool {
        self.inactive_warn_days > 0 || self.inactive_delete_days > 0
    }
}

/// Longest period the lifecycle settings take, in days (100 years).
const MAX_DAYS: u32 = 36_500;

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

    /// The configuration `init` writes: every key with its default, commented.
    pub fn template(home: &Path, domains: &[String]) -> String {
        let doms = domains.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(", ");
        let d0 = &domains[0];
        let h = home.display();
        format!(
            r#"# nymgate configuration. Every key below is shown with its default.

# State directory: the SQLite database and the server's secret key (mode 0600).
home = "{h}"
# Hosted domains; the first is the default.
domains = [{doms}]
# Local parts that can never become nyms, besides the built-in list
# (abuse admin config help list postmaster root send this url webmaster nobody ...).
reserved = []

[limits]
# Largest message accepted by `deliver`, in bytes (bigger: exit 65).
max_message_size = 20971520
# hSub length in hex characters, 48 to 80. 48 is what every client expects.
hsub_length = 48
# Seconds to wait for the database lock before deferring (exit 75).
busy_timeout = 30

[news]
# "spool" writes one file per article into `spool`; "inews" pipes each
# article into the `inews` command.
transport = "spool"
spool = "{h}/news"
inews = ["/usr/bin/inews", "-h"]
newsgroup = "alt.anonymous.messages"
path = "{d0}!not-for-mail"
from = "Nobody <nobody@{d0}>"
injection_host = "{d0}"
complaints_to = "abuse@{d0}"
# Every article is padded, inside its encryption, to one of a few sizes
# (16, 64, 256, 704 KiB, then whole MiB), so that its size does not tell
# which incoming mail it carries. GnuPG, sq and nym read padded articles as
# any other. Off only to save bandwidth, at that cost.
padding = true

[mail]
# "sendmail" runs the command below with `-f SENDER -- RCPT...` appended;
# "spool" writes one file per mail into `spool` (for trying things out).
transport = "sendmail"
sendmail = ["/usr/sbin/sendmail", "-i"]
spool = "{h}/mail"
# Envelope sender of mail sent by nyms; empty means the nym's own address.
bounce_address = ""

[delivery]
# Hold every outgoing item a random number of seconds in this range; items
# that are not yet due are handed off by `nymgate flush` (run it from the timer).
latency_min = 0
latency_max = 0
# On top of the pool below, if both are non-zero.
# Seconds before a hanging sendmail or inews is killed (the item stays queued).
transport_timeout = 60
# Seconds after which an item claimed by a process that died is retried.
claim_timeout = 300
# An item not handed off after this many seconds is given up and counted in
# `nymgate status` (5 days, like Postfix's maximal_queue_lifetime); one that
# the news server or sendmail refuses for good is given up after this many
# refusals. The nym is told when a mail it sent is given up.
max_age = 432000
max_permanent_failures = 3

[pool]
# Outgoing articles and mails wait in a pool and leave in random batches,
# so that an observer of the MTA and the newsgroup cannot pair an incoming
# mail with the article it causes by timing (docs/traffic-analysis.md).
# Every `interval` seconds (a `flush` run does the round when one is due),
# if at least `min_pool` items wait, `rate` percent of them (chosen at
# random, not oldest first) leave; an item waiting `max_hold` seconds
# leaves at the next round whatever the pool's size. Off: items leave as
# soon as they are due, which links each article to its mail by time.
enabled = true
interval = 900
min_pool = 5
rate = 65
max_hold = 21600

[cover]
# Dummy articles posted to the newsgroup, on average `rate` a day at
# Poisson-random times (checked at each `flush`), through the pool: same
# headers, hSub-like subject, padded sizes, signed and encrypted to a key
# made for each and thrown away. A quiet server then does not show as a
# quiet group, and an article cannot be assumed to be mail. 0 = none.
rate = 48
[lifecycle]
# Days before a nym's key expires at which it is told how to renew (a key
# refresh with a new expiry, or `nym renew`), once each per expiry date.
warn_days = [14, 2]
# Days after the key expired before `flush` erases the nym, with its key
# and options, as a delete does.
expire_grace = 0
# Optional inactivity rule, 0 = off: days without a signed request to
# config@, send@ or url@ after which the nym is warned, and erased.
# nym.alias.net used 90 and 120. While it is on, the server keeps each
# nym's last day of activity (a UTC day, nothing finer); while off, none.
inactive_warn_days = 0
inactive_delete_days = 0

[send]
# Recipients a nym may send to per UTC day (every recipient of a message
# counts, and so does a news post).
daily_limit = 50
# Recipients one message may have; more and it is refused whole.
max_recipients = 20
# Held messages from keys not known yet: per key, in all, and bytes in all.
max_held_per_key = 8
max_held = 1000
max_held_bytes = 67108864
# Signatures older than this (seconds) are refused as replays.
replay_window = 604800
# Signatures dated further ahead than this (seconds) are refused.
future_skew = 86400
# Signed messages from a key we do not know yet are held this long (seconds).
hold_time = 86400
# File of addresses and @domains that must never receive nym mail.
# blocklist = "/etc/nymgate/blocklist"

[url]
# Allow fetching loopback, private and link-local addresses (never in production).
allow_private = false
max_page_bytes = 2097152
# Seconds per page, and for a whole request.
timeout = 30
request_timeout = 90
max_urls = 10
# Bytes of page content per reply (the armored article stays under INN's
# default 1,000,000-byte limit), and requests accepted per hour.
max_reply_bytes = 409600
max_per_hour = 60

[log]
# error, warn, info or debug. No level ever logs nym names or content.
level = "info"
# Copy log lines to stderr (always done when stderr is a terminal).
stderr = false
# Syslog facility: mail, daemon, user or local0 .. local7.
facility = "mail"

[mta]
# The table of deliverable addresses for the MTA's RCPT-time check
# (Postfix texthash:, Exim lsearch), rewritten on every create, delete and
# expiry. Default: recipients in the home directory.
# recipient_table = "{h}/recipients"

[operator]
# Mail to postmaster@ and abuse@ of every hosted domain is forwarded here.
address = "root@localhost"

[remailer]
# The Type I ("cypherpunk") remailer at remailer@ of every hosted domain
# (REPLY-BLOCKS.md section 10). Off: mail to remailer@ is refused (exit 67).
# Reply blocks of nyms run through the same engine whatever this says.
# In this version the engine is built and tested but not yet served:
# remailer@ is refused (67) whatever `enabled` says, until it is wired in.
enabled = false
# Only messages with at least one layer encrypted to the server key.
pgp_only = true
# Middleman: mail goes only to known remailers, and nothing is posted.
middleman = true
# File of known remailers: one address a line, or Mixmaster lines
# $remailer{{"name"}} = "<addr> flags"; (our own remailer@ always counts).
# known_remailers = "/etc/nymgate/known-remailers"
# Anon-Post-To: allowed only with post = true, never to blocked_groups
# (group names, or prefixes ending in *).
post = false
blocked_groups = []
# Most decryptions per message, most messages per incoming one (Cutmarks),
# most seconds of Latent-Time, most recipients per message.
max_layers = 8
max_cut_segments = 4
max_latency = 86400
max_recipients = 5
# Capability-line name (empty: the first label of the domain); From: and
# Comments: of what leaves (empty: Anonymous <nobody@D>, an abuse notice);
# extra words for the capability line.
name = ""
from = ""
comments = ""
extra_flags = ""

[autoresponders]
# Read by the coming help@, list@ and used@ responders (not served yet in
# this version: those addresses are refused, exit 67).
# help@ sends this file; without it a built-in text.
# help_file = "/etc/nymgate/help.txt"
# list@ and used@ answer with the nyms of the domain (they reveal the user
# base); off: refused (exit 67).
list = false
# Replies per address per 24 hours (kept as keyed hashes), and in all per hour.
per_address_daily = 3
hourly_total = 60
"#
        )
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
