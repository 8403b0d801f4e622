//! Handing finished items to the outside: the news spool or `inews` for
//! articles, `sendmail` (or a mail spool for demos) for mail.
//!
//! Each hand-off is made as idempotent as the transport allows: spool
//! files are named after the Message-ID and never overwritten, and INN
//! refuses an article whose Message-ID it already has, which we count as
//! success. Only sendmail has no such guard, so the window between its
//! exit and our `DELETE` is kept as short as we can.
//!
//! This module is the only place the server starts other programs
//! ([`process`]). A failure says whether trying again can help: the
//! outbox gives up what can never succeed instead of retrying forever.

mod news;
mod nntp;
pub use nntp::greets as nntp_greets;
mod process;
mod sendmail;
mod spool;

pub use spool::spool_name;

use std::time::Duration;

use crate::config::{Config, MailTransport, NewsTransport};
use crate::store::{Kind, OutItem};

/// RFC 5322 date for `t` (UTC).
pub fn rfc5322_date(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    let wd = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MO: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", WD[wd as usize], d, MO[(mo - 1) as usize], y, h, m, s)
}

/// Does the header section of `msg` have a header called `name`?
pub fn has_header(msg: &[u8], name: &str) -> bool {
    for line in msg.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        if line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return true;
        }
    }
    false
}

/// What goes in front of an item as it leaves: Date (and Injection-Date
/// for news) are set now, at hand-off, so that queueing and batching do
/// not leak receipt times. The body itself is written after it unchanged,
/// never copied into a second buffer.
pub fn date_headers(item: &OutItem) -> Vec<u8> {
    let date = rfc5322_date(std::time::SystemTime::now());
    let mut out = Vec::with_capacity(100);
    if !has_header(&item.body, "Date") {
        out.extend_from_slice(format!("Date: {date}\n").as_bytes());
    }
    if item.kind == Kind::News && !has_header(&item.body, "Injection-Date") {
        out.extend_from_slice(format!("Injection-Date: {date}\n").as_bytes());
    }
    out
}

/// Why a hand-off failed: a fixed reason (a status code at most, never
/// content or addresses) and whether trying again can ever help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOffError {
    pub reason: String,
    pub permanent: bool,
}

impl HandOffError {
    pub fn transient(reason: impl Into<String>) -> Self {
        HandOffError { reason: reason.into(), permanent: false }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        HandOffError { reason: reason.into(), permanent: true }
    }
}

/// Hand one item to its transport.
pub fn hand_off(cfg: &Config, item: &OutItem) -> Result<(), HandOffError> {
    let timeout = Duration::from_secs(cfg.delivery.transport_timeout.max(1));
    let dates = date_headers(item);
    match item.kind {
        Kind::News => match cfg.news.transport {
            NewsTransport::Spool => {
                spool::write(&cfg.news.spool, &spool_name(&item.msgid, "art"), &[&dates, &item.body])
            }
            NewsTransport::Inews => news::post(&cfg.news.inews, &dates, &item.body, timeout),
            NewsTransport::Nntp => {
                nntp::post(&cfg.news.nntp_server, &item.msgid, &dates, &item.body, timeout)
            }
        },
        Kind::Mail => {
            if item.env_to.is_empty() {
                return Err(HandOffError::permanent("mail item without recipients"));
            }
            match cfg.mail.transport {
                MailTransport::Spool => {
                    let envelope = format!(
                        "X-Nymgate-Envelope-From: {}\nX-Nymgate-Envelope-To: {}\n",
                        item.env_from,
                        item.env_to.join(", ")
                    );
                    spool::write(
                        &cfg.mail.spool,
                        &spool_name(&item.msgid, "eml"),
                        &[envelope.as_bytes(), &dates, &item.body],
                    )
                }
                MailTransport::Sendmail => sendmail::send(&cfg.mail.sendmail, item, &dates, timeout),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(0);
        assert_eq!(rfc5322_date(t), "Thu, 01 Jan 1970 00:00:00 +0000");
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc5322_date(t), "Wed, 18 Nov 2026 11:06:40 +0000");
        let t = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400); // leap day 2000
        assert_eq!(rfc5322_date(t), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn header_detection_stops_at_body() {
        assert!(has_header(b"Subject: x\ndate: y\n\nbody", "Date"));
        assert!(!has_header(b"Subject: x\n\nDate: in body\n", "Date"));
        assert!(!has_header(b"Dated: x\n\n", "Date"));
    }
}
