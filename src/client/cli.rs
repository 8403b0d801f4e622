//! The `nym` command line: every subcommand, its options and its manual text.
//!
//! The man page and the shell completions are generated from these same
//! definitions (`nym manpage`, `nym completions`), so this file is the one
//! place where the user-facing documentation of the client lives.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "The nym holder's client for Zax-type nym servers";

pub use super::cli_chain::{ChainArgs, ConfirmArgs};
pub use super::cli_read::{FetchArgs, ReadArgs};
use super::manual::LONG_ABOUT;

#[derive(Debug, Parser)]
#[command(name = "nym", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The client's store (keys, options, Maildir, high-water marks).
    #[arg(long, global = true, env = "NYM_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Read the passphrase that protects nym secret keys from this file
    /// (first line). Without it, $NYM_PASSPHRASE is used, else you are asked
    /// on the terminal.
    #[arg(long, global = true, env = "NYM_PASSPHRASE_FILE", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Make every NNTP and SMTP connection through this SOCKS5 proxy,
    /// e.g. Tor's `socks5h://127.0.0.1:9050`. Names (also .onion) are
    /// resolved by the proxy; each nym gets its own SOCKS credentials, so
    /// Tor keeps the nyms on separate circuits; when the proxy cannot be
    /// reached nothing goes direct (exit 75). Default: `proxy` in
    /// config.toml; `none` overrides it.
    #[arg(long, global = true, env = "NYM_PROXY", value_name = "URL")]
    pub proxy: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    New(NewArgs),
    Import(ImportArgs),
    Send(SendArgs),
    Config(ConfigArgs),
    Confirm(ConfirmArgs),
    Delete(DeleteArgs),
    Renew(RenewArgs),
    Rotate(RotateArgs),
    Url(UrlArgs),
    Fetch(FetchArgs),
    Read(ReadArgs),
    /// List the nyms in the store, their options and unread counts.
    List,
    Export(ExportArgs),
    Server(ServerArgs),
    Manpage(ManpageArgs),
    Completions(CompletionsArgs),
}

/// How a finished request mail is handed off.
#[derive(Debug, Args, Clone, Default)]
pub struct Handoff {
    /// Hand-off method: `stdout`, `file:DIR` (one .eml file per mail in DIR,
    /// created mode 0700 when missing), `mbox:FILE` (appended to one mbox
    /// with `From ` separators), `sendmail` or `sendmail:COMMAND`
    /// (the recipient is appended to COMMAND, or replaces `{rcpt}`; a server
    /// on this machine: `sendmail:nymgate deliver --recipient={rcpt}`),
    /// `smtp://HOST:PORT`, `smtp+starttls://HOST:PORT` or `smtps://HOST:PORT`;
    /// `smtp+starttls://USER:PASS@HOST:587` logs in (AUTH PLAIN or LOGIN,
    /// only over TLS; %-escapes decoded; or `smtp_user`/`smtp_password` in
    /// config.toml).
    /// Default: `via` in config.toml, else stdout. Read "HOW REQUESTS LEAVE
    /// YOUR MACHINE" in `nym --help` before using anything but a file.
    #[arg(long, env = "NYM_VIA", value_name = "METHOD")]
    pub via: Option<String>,

    /// The From: of the carrier mail and the SMTP envelope sender. Never your
    /// real address unless you accept the link (see `nym --help`). Default:
    /// `from` in config.toml, else none (sendmail fills it in, SMTP uses <>).
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,

    /// Hand the same request off this many times (create requests only
    /// benefit; the server drops repeated copies of a send@ request).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub copies: u32,

    /// Trust these extra CA certificates (PEM) for SMTP over TLS.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Options every nym can set (PROTOCOL section 3). `none` unsets one.
#[derive(Debug, Args, Clone, Default)]
pub struct NymOptions {
    /// hSub passphrase: the server marks your articles with a hashed Subject
    /// that only this passphrase recognises. Recommended. `none` unsets it.
    #[arg(long, value_name = "PASS")]
    pub hsub: Option<String>,

    /// A fixed plain Subject instead of an hSub. Anyone can then link all
    /// your articles; prefer --hsub. `none` unsets it.
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,

    /// Passphrase for an extra symmetric encryption layer around every
    /// article. `none` unsets it.
    #[arg(long, value_name = "PASS")]
    pub symmetric: Option<String>,

    /// Ask the server to confirm every message you send (`yes` or `no`).
    #[arg(long, value_name = "yes|no")]
    pub acksend: Option<String>,
}

/// Create a nym: make its key, record the server key, send the create request.
///
/// The nym key is generated in the client's store (Curve25519 by default,
/// RSA-4096 with --rsa4096), with the expiry you choose: the server deletes
/// the nym when the key expires. The create request (your options and the
/// public key, encrypted to config@DOMAIN) is the only request that is not
/// signed. Send it twice through different paths if your path is lossy.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The nym's address, e.g. alice@nym.example.
    pub address: String,

    /// The server's public key (armored or binary). Check its fingerprint
    /// out of band before you trust it!
    #[arg(long, value_name = "FILE", required_unless_present = "resend")]
    pub server_key: Option<PathBuf>,

    #[command(flatten)]
    pub options: NymOptions,

    /// The nym is already in the store: build its create request again
    /// (with the options recorded) and hand it off, e.g. as the second copy
    /// through another path, or after a failed hand-off.
    #[arg(long, conflicts_with_all = ["server_key", "from_gpg", "rsa4096", "protect"])]
    pub resend: bool,

    /// Key lifetime: e.g. 6m, 1y, 30d, 2w, or `never`. The nym lives as long.
    #[arg(long, default_value = "1y", value_name = "TIME")]
    pub expire: String,

    /// Make an RSA-4096 key instead of Curve25519.
    #[arg(long)]
    pub rsa4096: bool,

    /// Take the nym key from your GnuPG keyring (`gpg --export-secret-keys
    /// ADDRESS`) instead of generating one.
    #[arg(long)]
    pub from_gpg: bool,

    /// Protect the new secret key with a passphrase (asked, or from
    /// --passphrase-file / $NYM_PASSPHRASE).
    #[arg(long)]
    pub protect: bool,

    /// Also import the new key into your GnuPG keyring.
    #[arg(long)]
    pub export_to_gpg: bool,

    /// Only set up the nym locally; do not build the create request.
    #[arg(long)]
    pub no_request: bool,

    #[command(flatten)]
    pub chain: ChainArgs,

    #[command(flatten)]
    pub handoff: Handoff,
}

/// Adopt an existing nym (e.g. one made by hand with gpg); sends nothing.
///
/// For a nym created by hand as in the classic guide: records its secret
/// key (from GnuPG or a file), the server key and the options the nym has
/// on the server, so that fetch, read, send and config work with it.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The nym's address.
    pub address: String,

    /// The server's public key.
    #[arg(long, value_name = "FILE")]
    pub server_key: PathBuf,

    /// Take the secret key from the GnuPG keyring.
    #[arg(long, conflicts_with = "secret_key")]
    pub from_gpg: bool,

    /// Take the secret key from this file (armored or binary).
    #[arg(long, value_name = "FILE", required_unless_present = "from_gpg")]
    pub secret_key: Option<PathBuf>,

    /// The options the nym already has on the server, so that fetch and
    /// read recognise its articles.
    #[command(flatten)]
    pub options: NymOptions,
}

/// Send a mail (or a Usenet post) as the nym.
///
/// The body comes from standard input. The message is signed with the nym
/// key and encrypted to send@DOMAIN; the server rewrites From: to the nym and
/// removes nothing you wrote except identifying headers. With
/// --encrypt-to-cert the body is first encrypted end-to-end to your
/// correspondent, so that the server never sees it either.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The nym that sends.
    pub address: String,

    /// Recipient (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,

    /// Copy recipient (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub cc: Vec<String>,

    /// Blind copy recipient (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub bcc: Vec<String>,

    /// Post to these newsgroups (comma separated) as the nym.
    #[arg(long, value_name = "GROUPS")]
    pub newsgroups: Option<String>,

    /// Subject (the server uses "No Subject" when missing).
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,

    /// Display name shown with the nym's address.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Extra header line `Name: value` (repeatable), e.g. In-Reply-To.
    #[arg(long, value_name = "LINE")]
    pub header: Vec<String>,

    /// Standard input is already a whole RFC 5322 message (headers, blank
    /// line, body); the header options are not used.
    #[arg(long)]
    pub raw: bool,

    /// Encrypt the body end-to-end to this OpenPGP certificate first
    /// (repeatable).
    #[arg(long, value_name = "FILE")]
    pub encrypt_to_cert: Vec<PathBuf>,

    #[command(flatten)]
    pub handoff: Handoff,
}

/// Change the nym's options on the server (a signed request to config@).
///
/// Without any option this is a status request: the server answers with
/// the current options. The client records the new options at once and
/// keeps recognising articles marked with the old ones.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The nym.
    pub address: String,

    #[command(flatten)]
    pub options: NymOptions,

    /// Also recognise articles by this eSub subject text (the older
    /// scheme of Type I remailers' Encrypt-Subject:, Blowfish); needs
    /// --esub-key. Stored locally only: nothing is sent for it, because
    /// the server never makes eSubs.
    #[arg(long, value_name = "TEXT", requires = "esub_key")]
    pub esub_text: Option<String>,

    /// The eSub key that goes with --esub-text.
    #[arg(long, value_name = "KEY", requires = "esub_text")]
    pub esub_key: Option<String>,

    /// Forget all eSub secrets of this nym (locally).
    #[arg(long, conflicts_with = "esub_text")]
    pub no_esub: bool,

    /// With --reply-block: send the nym's current blocks again beside the
    /// new one (the blocks of a request replace all others once
    /// confirmed).
    #[arg(long, requires = "reply_block")]
    pub keep_blocks: bool,

    /// Remove every reply block on the server (active and pending); the
    /// nym goes back to alt.anonymous.messages.
    #[arg(long, conflicts_with = "reply_block")]
    pub drop_reply_blocks: bool,

    #[command(flatten)]
    pub chain: ChainArgs,

    #[command(flatten)]
    pub handoff: Handoff,
}

/// Delete the nym on the server (a signed `delete: yes` to config@).
///
/// The local keys stay, so that you can read the server's last
/// confirmation; remove them afterwards with --forget.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The nym.
    pub address: String,

    /// Really delete (required).
    #[arg(long)]
    pub yes: bool,

    /// Only erase the local copy of the nym (keys and options); send nothing.
    #[arg(long)]
    pub forget: bool,

    #[command(flatten)]
    pub handoff: Handoff,
}

/// Extend the nym's life: a new key expiry, sent to the server.
///
/// The nym key gets new self-signatures with the new expiry (counted from
/// now); the public key is sent again to config@DOMAIN, which the server
/// takes as a refresh of the nym's key. `nym list` shows
/// `key-refresh=requested` until the server's "Nym key refreshed" notice
/// is read. Renew before the key expires: the server deletes a nym whose
/// key has expired.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The nym.
    pub address: String,

    /// New key lifetime from now: e.g. 6m, 1y, 30d, or `never`.
    #[arg(long, default_value = "1y", value_name = "TIME")]
    pub expire: String,

    #[command(flatten)]
    pub handoff: Handoff,
}

/// Rotate the nym's encryption subkey, for forward secrecy.
///
/// A new encryption subkey is added to the nym key (valid as long as the
/// key) and the public key is sent to config@DOMAIN as a key refresh. The
/// server encrypts to the newest encryption subkey only, so from the
/// refresh on, articles are written to the new one. The secret of the old
/// subkey is erased when the server's "Nym key refreshed" notice is read
/// (`nym fetch`, `nym read`): from then on nobody who gets hold of this
/// store can read what was encrypted to the old subkey, and neither can
/// you. Read (and save) the messages you want to keep first. `nym list`
/// shows `rotation=pending` until then.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The nym.
    pub address: String,

    #[command(flatten)]
    pub handoff: Handoff,
}

/// Have the server fetch web pages for you (a request to url@).
///
/// The pages come back on alt.anonymous.messages, encrypted with --key only
/// and marked with the hSub of --hsub (default: the key). The request is
/// not signed, so it is not linked to the nym; the nym only names the server.
#[derive(Debug, Args)]
pub struct UrlArgs {
    /// The nym whose server is used.
    pub address: String,

    /// The addresses to fetch.
    #[arg(required = true)]
    pub urls: Vec<String>,

    /// Passphrase the server encrypts the answer with.
    #[arg(long, value_name = "PASS")]
    pub key: String,

    /// hSub passphrase for the answer (default: the key).
    #[arg(long, value_name = "PASS")]
    pub hsub: Option<String>,

    #[command(flatten)]
    pub handoff: Handoff,
}

/// Print a nym's public key, or its secret key, or put it into GnuPG.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The nym.
    pub address: String,

    /// The secret key (armored) instead of the public key.
    #[arg(long)]
    pub secret: bool,

    /// Import the secret key and the server key into GnuPG instead of
    /// printing.
    #[arg(long)]
    pub to_gpg: bool,
}

/// Remember news servers for `nym fetch` (`servers` in config.toml).
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub action: ServerAction,
}

#[derive(Debug, Subcommand)]
pub enum ServerAction {
    /// Add a news source: nntp://HOST[:PORT], nntps://HOST[:PORT],
    /// nntp+starttls://HOST[:PORT] or spool:DIR.
    Add { url: String },
    /// Forget a news source.
    Remove { url: String },
    /// Show the remembered news sources.
    List,
}

/// Write the man pages (nym.1 and one per subcommand).
#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Directory for the pages; without it, nym.1 goes to standard output.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Print a shell completion script.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}
