//! Handing mail to the MTA's `sendmail`. Its exit code follows
//! sysexits.h, and that decides whether a retry can help: data errors,
//! unknown or unroutable addresses and permission refusals are for good,
//! "try again later" and crashes are not. Its complaints can name
//! recipients: they are never logged.

use std::time::Duration;

use super::process::{run, Failed};
use super::HandOffError;
use crate::store::OutItem;

/// Exit codes after which the same hand-off can never succeed: EX_USAGE,
/// EX_DATAERR, EX_NOUSER, EX_NOHOST, EX_NOPERM.
const PERMANENT: &[i32] = &[64, 65, 67, 68, 77];

pub fn classify_exit(code: Option<i32>) -> HandOffError {
    match code {
        Some(c) if PERMANENT.contains(&c) => HandOffError::permanent(format!("sendmail refused (exit {c})")),
        Some(c) => HandOffError::transient(format!("sendmail failed (exit {c})")),
        None => HandOffError::transient("sendmail killed by a signal"),
    }
}

pub fn send(
    sendmail: &[String],
    item: &OutItem,
    dates: &[u8],
    timeout: Duration,
) -> Result<(), HandOffError> {
    let mut argv = sendmail.to_vec();
    argv.push("-f".into());
    argv.push(item.env_from.clone());
    // Recipients after "--": none can be read as an option.
    argv.push("--".into());
    argv.extend(item.env_to.iter().cloned());
    match run(&argv, &[dates, &item.body], timeout) {
        Ok(_) => Ok(()),
        Err(Failed::Start { too_big: true }) => {
            Err(HandOffError::permanent("sendmail argument list too long"))
        }
        Err(Failed::Start { too_big: false }) => {
            Err(HandOffError::transient("sendmail could not be started"))
        }
        Err(Failed::Timeout) => Err(HandOffError::transient("sendmail timed out")),
        Err(Failed::Exit { status, .. }) => Err(classify_exit(status.code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysexits_decide_permanence() {
        for c in [64, 65, 67, 68, 77] {
            assert!(classify_exit(Some(c)).permanent, "{c}");
        }
        for c in [1, 69, 70, 71, 74, 75] {
            assert!(!classify_exit(Some(c)).permanent, "{c}");
        }
        assert!(!classify_exit(None).permanent);
        assert_eq!(classify_exit(Some(67)).reason, "sendmail refused (exit 67)");
    }
}
