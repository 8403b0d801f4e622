//! The one place where failures become exit codes (PROTOCOL.md section 9).

use std::fmt;

/// sysexits.h values the MTA acts on.
pub const EX_OK: i32 = 0;
pub const EX_USAGE: i32 = 64;
pub const EX_DATAERR: i32 = 65;
pub const EX_NOUSER: i32 = 67;
pub const EX_SOFTWARE: i32 = 70;
pub const EX_TEMPFAIL: i32 = 75;
pub const EX_CONFIG: i32 = 78;

/// Why a delivery did not end in "committed".
#[derive(Debug)]
pub enum Failure {
    /// Try again later: the message stays with the MTA (75).
    Temp(anyhow::Error),
    /// No such nym (67): the MTA bounces.
    NoUser,
    /// The message can never be used (65): the MTA bounces.
    Data(&'static str),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Temp(_) => EX_TEMPFAIL,
            Failure::NoUser => EX_NOUSER,
            Failure::Data(_) => EX_DATAERR,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Temp(e) => write!(f, "temporary failure: {e:#}"),
            Failure::NoUser => f.write_str("no such nym"),
            Failure::Data(why) => write!(f, "unusable message: {why}"),
        }
    }
}

/// Anything unexpected (database, disk, key file) is transient: keeping
/// the message is always safe, losing it never is.
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Temp(e.into())
    }
}
