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
}

#[derive(Args, Debug)]
pub struct DeliverArgs {
    /// Envelope recipient (Postfix: ${recipient}; Exim: $local_part@$domain).
    /// Bytes that are not UTF-8 name no nym: exit 67.
    #[arg(long)]
    pub recipient: std::ffi::OsString,
    /// Envelope sender: never used, logged or stored, and any bytes are
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
    /// Delete every nym whose key has expired.
    Expire,
}
