//! `[remailer]` and `[autoresponders]`: the nym.alias.net side's services.

use serde::Deserialize;
use std::path::PathBuf;

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

impl Autoresponders {
    /// Whether mail to this responder is accepted: list@ and used@ only
    /// when switched on, the others always.
    pub fn serves(&self, r: crate::protocol::address::Responder) -> bool {
        use crate::protocol::address::Responder as R;
        match r {
            R::List | R::Used => self.list,
            R::Help | R::RemailerKey | R::Nobody => true,
        }
    }
}
