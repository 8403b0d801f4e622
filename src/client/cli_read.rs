//! The options of `nym fetch` and `nym read`, the two commands that read
//! the newsgroup (part of the `nym` command line in [`super::cli`]).

use std::path::PathBuf;

use clap::Args;

/// Read alt.anonymous.messages and keep the articles meant for your nyms.
///
/// Each source is read from where the last fetch stopped (a high-water mark
/// per server and group), so no article is examined twice and none is
/// skipped, even when the connection drops. Articles are recognised by hSub
/// or fixed subject; nyms with neither are found by trying to decrypt every
/// article. Matches go, still encrypted, into $NYM_HOME/Maildir.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Only look for this nym (default: all nyms in the store).
    pub address: Option<String>,

    /// News source (repeatable): `nntp://HOST[:PORT]`, `nntps://HOST[:PORT]`
    /// (TLS), `nntp+starttls://HOST[:PORT]` (STARTTLS, required), or `spool:DIR` (a directory of article files, as the nymgate demo
    /// writes). Default: `servers` in config.toml.
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,

    /// Newsgroup.
    #[arg(long, default_value = "alt.anonymous.messages")]
    pub group: String,

    /// Try to decrypt every article, for nyms without hsub or subject.
    /// Also done automatically when such a nym is in the store.
    #[arg(long)]
    pub try_all: bool,

    /// On the first fetch from a source, look at no more than the newest N
    /// articles.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,

    /// Reconnect this many times when a server drops the connection.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub retries: u32,

    /// Trust these extra CA certificates (PEM) for nntps and nntp+starttls.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// NNTP user name (AUTHINFO USER); the password comes from
    /// $NYM_NNTP_PASSWORD. Only over nntps:// or nntp+starttls://.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Decrypt and show the fetched articles, then mark them read.
///
/// Peels the symmetric layer (if the nym set one), decrypts with the nym key
/// and checks that the server key signed it. A message whose signature does
/// not check out is shown with a warning and the command fails.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Only this nym's messages.
    pub address: Option<String>,

    /// Also show messages already read.
    #[arg(long)]
    pub all: bool,

    /// Do not mark the messages read.
    #[arg(long)]
    pub keep: bool,

    /// Only list the messages (no decryption).
    #[arg(long)]
    pub list: bool,

    /// Show the decrypted message as it is, without MIME decoding.
    #[arg(long)]
    pub raw: bool,

    /// Save the attachments of trusted messages in DIR (created mode 0700;
    /// files 0600, never overwritten).
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,

    /// Read mail that arrived through a reply block instead of the
    /// fetched articles: FILE holds one mail or an mbox (`-`: standard
    /// input). The Encrypt-Key layers of the nym's remailers come off
    /// first, then the nym key's layer; a "Configuration completed"
    /// notice's confirm+ address is remembered for `nym confirm`. The
    /// file is left as it is.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["all", "keep", "list"])]
    pub mail: Option<PathBuf>,

    /// Also deliver each trusted message, decrypted, to the Maildir DIR
    /// (created mode 0700), for any mail reader. The messages then lie
    /// on the disk unencrypted.
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
}
