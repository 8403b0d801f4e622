//! The one table that turns a failure kind into an exit code.
//!
//! Postfix's `pipe(8)` and Exim's pipe transport act on `sysexits.h`
//! codes, and Postfix also reads an RFC 3463 enhanced status code from the
//! first line of standard error. Every place that ends a process (the
//! server's `main`, the client's `main`, the admin commands) looks its code
//! up here, so that the meaning of a code is written down once: what it
//! says to the MTA, whether the MTA should retry, and the two-part message
//! a person reads (what happened; what to do next).

use std::fmt;

/// sysexits.h values.
pub const EX_OK: i32 = 0;
pub const EX_USAGE: i32 = 64;
pub const EX_DATAERR: i32 = 65;
pub const EX_NOUSER: i32 = 67;
pub const EX_UNAVAILABLE: i32 = 69;
pub const EX_SOFTWARE: i32 = 70;
pub const EX_TEMPFAIL: i32 = 75;
pub const EX_NOPERM: i32 = 77;
pub const EX_CONFIG: i32 = 78;

/// Every way a process of ours can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Done, or deliberately dropped (junk to config@ is not an error).
    Ok,
    /// The command line was wrong.
    Usage,
    /// The message can never be used: the MTA bounces it.
    Data,
    /// No such nym or address: the MTA bounces it.
    NoUser,
    /// Something we need is missing for good (client: server refused).
    Unavailable,
    /// A bug or an unexpected state: nothing was changed.
    Software,
    /// Try again later: the MTA keeps the message.
    Temp,
    /// The configuration is missing or wrong.
    Config,
    /// Not permitted: a `nobcc` nym not named in To/Cc (REPLY-BLOCKS.md
    /// 7.5): the MTA bounces it.
    NoPerm,
}

/// One row of the table.
#[derive(Debug)]
pub struct Entry {
    pub kind: Kind,
    pub code: i32,
    /// Whether the MTA (or the holder) should try again unchanged.
    pub retry: bool,
    /// RFC 3463 enhanced status code, for `pipe(8)`.
    pub status: &'static str,
    /// What happened.
    pub what: &'static str,
    /// What to do next.
    pub todo: &'static str,
}

/// The table itself: one entry per [`Kind`], in declaration order.
pub const TABLE: &[Entry] = &[
    Entry { kind: Kind::Ok, code: EX_OK, retry: false, status: "2.0.0", what: "done", todo: "nothing" },
    Entry {
        kind: Kind::Usage,
        code: EX_USAGE,
        retry: false,
        status: "5.3.0",
        what: "the command line is wrong",
        todo: "see --help",
    },
    Entry {
        kind: Kind::Data,
        code: EX_DATAERR,
        retry: false,
        status: "5.6.0",
        what: "the message cannot be used",
        todo: "the sender must fix the message; it is returned",
    },
    Entry {
        kind: Kind::NoUser,
        code: EX_NOUSER,
        retry: false,
        status: "5.1.1",
        what: "no such nym",
        todo: "check the address",
    },
    Entry {
        kind: Kind::Unavailable,
        code: EX_UNAVAILABLE,
        retry: false,
        status: "5.5.0",
        what: "the service refused the request",
        todo: "read the reason and change the request",
    },
    Entry {
        kind: Kind::Software,
        code: EX_SOFTWARE,
        retry: false,
        status: "5.3.0",
        what: "internal error, nothing was changed",
        todo: "report it to the operator with the log line",
    },
    Entry {
        kind: Kind::Temp,
        code: EX_TEMPFAIL,
        retry: true,
        status: "4.3.0",
        what: "temporary failure",
        todo: "the message stays queued and is tried again later",
    },
    Entry {
        kind: Kind::Config,
        code: EX_CONFIG,
        retry: true,
        status: "4.3.5",
        what: "configuration missing or invalid",
        todo: "the operator must fix the configuration (nymgate check)",
    },
    Entry {
        kind: Kind::NoPerm,
        code: EX_NOPERM,
        retry: false,
        status: "5.7.0",
        what: "permission denied",
        todo: "the sender must change the message",
    },
];

impl Kind {
    pub fn entry(self) -> &'static Entry {
        // The table is in declaration order; the test below keeps it so.
        &TABLE[self as usize]
    }
    pub fn code(self) -> i32 {
        self.entry().code
    }
    /// The kind an exit code stands for (the client reads codes back).
    pub fn from_code(code: i32) -> Option<Kind> {
        TABLE.iter().find(|e| e.code == code).map(|e| e.kind)
    }
}

/// Why a delivery did not end in "committed".
#[derive(Debug)]
pub enum Failure {
    /// Try again later: the message stays with the MTA (75).
    Temp(anyhow::Error),
    /// No such nym (67): the MTA bounces.
    NoUser,
    /// The message can never be used (65): the MTA bounces.
    Data(&'static str),
    /// The nym set `disable` (itself or by the daily limit): 69, bounced.
    NymDisabled,
    /// A `nobcc` nym not named in To/Cc: 77, bounced.
    NoBcc,
}

impl Failure {
    pub fn kind(&self) -> Kind {
        match self {
            Failure::Temp(_) => Kind::Temp,
            Failure::NoUser => Kind::NoUser,
            Failure::Data(_) => Kind::Data,
            Failure::NymDisabled => Kind::Unavailable,
            Failure::NoBcc => Kind::NoPerm,
        }
    }
    pub fn exit_code(&self) -> i32 {
        self.kind().code()
    }
    /// A fixed word for logs.
    pub fn log_word(&self) -> &'static str {
        match self {
            Failure::Temp(_) => "temporary",
            Failure::NoUser => "no_such_nym",
            Failure::Data(_) => "unusable",
            Failure::NymDisabled => "nym_disabled",
            Failure::NoBcc => "nobcc",
        }
    }
    /// The line the MTA puts into its bounce or deferral reason: the
    /// enhanced status code first (pipe(8) reads it), then what happened
    /// and what to do. Never the detail of a temporary error (it may name
    /// files), never content.
    pub fn mta_line(&self) -> String {
        let e = self.kind().entry();
        match self {
            Failure::Data(why) => format!("{} {}: {why}; {}", e.status, e.what, e.todo),
            // The bounce texts of REPLY-BLOCKS.md section 12, with the
            // status Postfix gives these codes.
            Failure::NymDisabled => "5.3.0 This nym is disabled.".to_string(),
            Failure::NoBcc => "5.7.0 This nym does not accept blind copies: name it in To or Cc.".to_string(),
            _ => format!("{} {}; {}", e.status, e.what, e.todo),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Temp(e) => write!(f, "temporary failure: {e:#}"),
            Failure::NoUser => f.write_str("no such nym"),
            Failure::Data(why) => write!(f, "unusable message: {why}"),
            Failure::NymDisabled => f.write_str("nym disabled"),
            Failure::NoBcc => f.write_str("blind copy refused"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_kind_order() {
        for (i, e) in TABLE.iter().enumerate() {
            assert_eq!(e.kind as usize, i, "{:?} out of place", e.kind);
        }
    }

    #[test]
    fn only_temporary_kinds_are_retried() {
        assert!(Kind::Temp.entry().retry);
        for k in [Kind::Data, Kind::NoUser, Kind::Usage, Kind::Software, Kind::Unavailable] {
            assert!(!k.entry().retry, "{k:?}");
        }
    }

    #[test]
    fn codes_follow_sysexits() {
        assert_eq!(Failure::NoUser.exit_code(), 67);
        assert_eq!(Failure::Data("x").exit_code(), 65);
        assert_eq!(Failure::Temp(anyhow::anyhow!("x")).exit_code(), 75);
        assert_eq!(Kind::from_code(75), Some(Kind::Temp));
        assert_eq!(Kind::from_code(1), None);
        assert_eq!(Failure::NymDisabled.exit_code(), 69);
        assert_eq!(Failure::NoBcc.exit_code(), 77);
    }

    #[test]
    fn refusals_on_arrival_bounce_with_the_spec_texts() {
        assert_eq!(Failure::NymDisabled.mta_line(), "5.3.0 This nym is disabled.");
        assert!(Failure::NoBcc.mta_line().starts_with("5.7.0 This nym does not accept blind copies"));
    }

    #[test]
    fn status_class_matches_retry() {
        for e in TABLE {
            let class = e.status.as_bytes()[0];
            if e.kind == Kind::Ok {
                assert_eq!(class, b'2');
            } else if e.retry {
                assert_eq!(class, b'4', "{:?}", e.kind);
            } else {
                assert_eq!(class, b'5', "{:?}", e.kind);
            }
        }
    }

    #[test]
    fn mta_line_of_a_temporary_failure_hides_its_detail() {
        let f = Failure::Temp(anyhow::anyhow!("/var/lib/nymgate/nymgate.db: locked"));
        let line = f.mta_line();
        assert!(line.starts_with("4.3.0 "));
        assert!(!line.contains("nymgate.db"));
    }
}
