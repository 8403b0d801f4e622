//! The configuration file `init` writes: every key with its default and
//! a comment saying what it does. Kept apart from the definitions because
//! it is mostly text.

use std::path::Path;

use super::Config;

impl Config {
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
# article into the `inews` command; "nntp" offers each one by IHAVE to
# `nntp_server` as a peer (INN on loopback lists 127.0.0.1 as a peer by
# default; much cheaper than inews, see docs/performance.md).
transport = "spool"
spool = "{h}/news"
inews = ["/usr/bin/inews", "-h"]
nntp_server = "127.0.0.1:119"
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

[reply_blocks]
# nym.alias.net reply blocks (REPLY-BLOCKS.md): at most this many blocks per
# request and active per nym, each at most max_block_bytes.
max_per_nym = 4
max_block_bytes = 32768
# Seconds a new block set waits for mail to its confirm+COOKIE address.
confirm_timeout = 604800
# Units a nym may spend per UTC day through its blocks (one per copy and
# 32 KiB); beyond it the nym is disabled until it sends -disable.
daily_units = 512

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
# Empty: nobody reads it, and such mail is refused (exit 67, bounced).
address = "root@localhost"

[remailer]
# The Type I ("cypherpunk") remailer at remailer@ of every hosted domain
# (REPLY-BLOCKS.md section 10). Off: mail to remailer@ is refused (exit 67).
# Reply blocks of nyms run through the same engine whatever this says.
# On, this server relays anonymous mail for anyone: read "The Type I
# remailer" in docs/operators.md first.
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
# help@, remailer-key@, list@ and used@ of every hosted domain answer by
# mail (through the outbox); nobody@ accepts and discards. No answer goes
# to a null sender, MAILER-DAEMON, mailing-list or bulk mail, another
# auto-reply, or an address of a hosted domain.
# help@ sends this file (plain UTF-8 text, read on every request: edit it
# at any time); without it, or if it cannot be read, the built-in text.
# help_file = "/etc/nymgate/help.txt"
# list@ and used@ answer with the reserved names and every nym of the
# domain: this shows anyone who uses the server. Off: refused (exit 67),
# and left out of the MTA's recipient table.
list = false
# Replies per address per 24 hours (kept as keyed hashes), and in all per hour.
per_address_daily = 3
hourly_total = 60
"#
        )
    }
}
