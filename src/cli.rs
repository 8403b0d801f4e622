//! Command-line definitions (clap derive). Help text is the manual.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "nymgate",
    version,
    about = "A pseudonymous remailer (Zax-type nym server) for Postfix and Exim",
    long_about = "nymgate gives people email addresses that nobody, not even the operator, can link to them.\n\n\
        The MTA runs `nymgate deliver` once per message for config@, send@, url@ and every nym of the \
        hosted domains. Mail to a nym is signed by the server, encrypted to the nym's key and posted \
        to alt.anonymous.messages. Run `nymgate flush` from a timer to hand off queued items.\n\n\
        Exit codes of `deliver` follow sysexits.h: 0 committed (or junk deliberately dropped), \
        65 unusable message, 67 no such nym, 75 temporary failure (the MTA retries)."
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "NYMGATE_CONFIG", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new server home: configuration, database and server key.
    Init(InitArgs),
    /// The server's key.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Process one message from the MTA (message on standard input).
    Deliver(DeliverArgs),
    /// Hand every due queued article and mail to its transport.
    Flush,
    /// Operator commands on nyms.
    #[command(subcommand)]
    Nym(NymCmd),
    /// The state of the server at a glance: nyms, queue, held messages,
    /// files (in the style of `postqueue -p` and `mailq`).
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The outbox: list items, retry one now, or drop one.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// Check the installation: file modes, the server key's User IDs, the
    /// transports, the recipient table, the news group. Exit 0 when all is
    /// well, 78 otherwise.
    Check,
    /// Write the man pages (nymgate.8 and one per command) into a directory.
    Manpage {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// Every queued item: id, kind, age, attempts, size, last error (no
    /// content and no addresses).
    List,
    /// Make an item due now; the next flush hands it off.
    Retry { id: i64 },
    /// Remove an item from the queue for good.
    Drop { id: i64 },
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Directory to create (mode 0700); it must not exist yet.
    #[arg(long)]
    pub home: PathBuf,
    /// A hosted domain; repeat for more. The first is the default.
    #[arg(long = "domain", required = true)]
    pub domains: Vec<String>,
    /// Make an RSA server key of this size (2048, 3072 or 4096) instead of
    /// Ed25519/Cv25519.
    #[arg(long, value_name = "BITS")]
    pub rsa: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Print the server's armored public key (publish it as key.asc).
    Export,
    /// Add the service User IDs (config@, send@, url@) of a domain hosted
    /// since `init` to the server key, certified by the same primary key.
    /// Publish the key again afterwards (`key export`).
    AddDomain { domain: String },
    /// Replace the server key: a new key with the same User IDs, certified
    /// by the old one; requests to the old key are accepted for the grace
    /// period, then `flush` revokes it as superseded and erases its secret.
    /// Every nym gets a notice carrying the new key. Publish the key again
    /// afterwards (`key export` shows both keys).
    Rotate {
        /// Days during which requests encrypted to the old key still work.
        #[arg(long, default_value_t = crate::rotation::DEFAULT_GRACE_DAYS)]
        grace_days: u32,
        /// No new key: queue the notice of the rotation under way to every
        /// nym again (after a rotation interrupted while it queued them).
        #[arg(long, conflicts_with = "grace_days")]
        notify_again: bool,
    },
}

#[derive(Args, Debug)]
pub struct DeliverArgs {
    /// Envelope recipient (Postfix: ${recipient}; Exim: $local_part@$domain).
    /// Bytes that are not UTF-8 name no nym: exit 67.
    #[arg(long)]
    pub recipient: std::ffi::OsString,
    /// Envelope sender (empty: the null sender): read only by mail to
    /// confirm+COOKIE@ and by the autoresponders (no answer to a null or
    /// MAILER-DAEMON sender), never logged or stored; any bytes are
    /// accepted (8-bit senders exist).
    #[arg(long)]
    pub sender: Option<std::ffi::OsString>,
}

#[derive(Subcommand, Debug)]
pub enum NymCmd {
    /// List every nym with its state, key and expiry.
    List,
    /// Show one nym (passphrases are never shown).
    Show { address: String },
    /// Stop a nym from sending and receiving.
    Disable { address: String },
    /// Undo `disable`.
    Enable { address: String },
    /// Delete a nym, its key and options, leaving nothing recoverable.
    Delete { address: String },
    /// Delete every nym whose key has expired (more than `[lifecycle] expire_grace` days ago).
    Expire,
}
