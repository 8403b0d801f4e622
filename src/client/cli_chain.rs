//! The options of reply blocks (`nym new --reply-block`, `nym config
//! --reply-block`) and of `nym confirm` (part of the `nym` command line
//! in [`super::cli`]).

use clap::Args;

use super::cli::Handoff;

/// The remailer chain of a reply block and what the nym.alias.net
/// `Config:` request says besides.
#[derive(Debug, Args, Clone, Default)]
pub struct ChainArgs {
    /// Send a nym.alias.net `Config:` request with a reply block instead
    /// of a Zax request: the server then mails everything for the nym
    /// through this chain of Type I remailers, and nothing goes to
    /// alt.anonymous.messages once the block is confirmed.
    #[arg(long)]
    pub reply_block: bool,

    /// A remailer of the chain, first hop first (repeatable):
    /// `remailer@r1.example=r1-key.asc`. Each hop gets its own random
    /// Encrypt-Key passphrase, kept in the store. Default: the
    /// `[[chain]]` tables of config.toml.
    #[arg(long = "hop", value_name = "ADDRESS=KEYFILE", requires = "reply_block")]
    pub hops: Vec<String>,

    /// Where the last remailer delivers: your mailbox, or
    /// `post:alt.anonymous.messages` (the last hop must allow posting).
    /// Default: `deliver_to` in config.toml.
    #[arg(long, value_name = "ADDR", requires = "reply_block")]
    pub deliver_to: Option<String>,

    /// Have the last remailer put this Subject on what the block brings
    /// (the same on every mail: a tag for your mailbox's filters, which
    /// also tells the mailbox provider which mails are the nym's).
    #[arg(long, value_name = "TEXT", requires = "reply_block")]
    pub subject_tag: Option<String>,

    /// Ask every remailer of the chain to hold each message this long
    /// before sending it on (`Latent-Time:`): `+0:30` (30 minutes),
    /// `+2:00r` (up to two hours, at random), `18:00` (until 18:00 UTC).
    /// Each remailer clamps it to its own maximum.
    #[arg(long, value_name = "TIME", requires = "reply_block")]
    pub latent_time: Option<String>,

    /// Put the block in a probability set (`a=0.5`): of the blocks of one
    /// set, the server picks one per message by these weights.
    #[arg(long, value_name = "SET", requires = "reply_block")]
    pub block_set: Option<String>,

    /// The display name the server puts with the nym's address
    /// (`name="..."`).
    #[arg(long, value_name = "TEXT", requires = "reply_block")]
    pub name: Option<String>,

    /// Switch a flag (repeatable): `+signsend`, `-acksend`, `+nobcc`,
    /// `+disable`, `-disable`. `cryptrecv` stays on (without it the first
    /// remailer reads your mail) and `fixedsize` is refused (nym read does
    /// not reassemble its parts).
    #[arg(long = "flag", value_name = "+FLAG|-FLAG", allow_hyphen_values = true, requires = "reply_block")]
    pub flags: Vec<String>,
}

/// Confirm a new reply block: mail the server's `confirm+COOKIE@` address.
///
/// The address comes from the server's "Configuration completed"
/// notice, which `nym read --mail` recognised. By default the mail goes
/// through the nym's own chain of remailers (the first hop gets it,
/// encrypted, and the last mails the server), so that the confirmation
/// does not come from your own address; with --direct it is handed off as
/// a plain mail. The server ignores a confirmation with an empty envelope
/// sender.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The nym.
    pub address: String,

    /// Hand the confirmation off directly to the confirm+ address instead
    /// of through the chain. The server then sees where it came from.
    #[arg(long)]
    pub direct: bool,

    #[command(flatten)]
    pub handoff: Handoff,
}
