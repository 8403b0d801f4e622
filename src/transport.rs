//! Handing finished items to the outside: the news spool or `inews` for
//! articles, `sendmail` (or a mail spool for demos) for mail.
//!
//! Each hand-off is made as idempotent as the transport allows: spool
//! files are named after the Message-ID and never overwritten, and INN
//! refuses an article whose Message-ID it already has, which we count as
//! success. Only sendmail has no such guard, so the window between its
//! exit and our `DELETE` is kept as short as we can.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Headers a news server sets itself when it accepts a posting: INN's
/// nnrpd refuses an article that carries them ("441 Can't set system
/// Injection-Info header field") and writes its own from inn.conf.
const INJECTION_HEADERS: &[&str] = &["Injection-Info", "Injection-Date", "Path", "Xref"];

/// The article as `inews` must get it: our injection headers removed.
pub fn for_inews(article: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(article.len());
    let mut in_headers = true;
    let mut skipping = false;
    for line in article.split_inclusive(|&b| b == b'\n') {
        if in_headers {
            let bare = line.strip_suffix(b"\n").unwrap_or(line);
            let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
            if bare.is_empty() {
                in_headers = false;
            } else if bare[0] == b' ' || bare[0] == b'\t' {
                if skipping {
                    continue;
                }
            } else {
                skipping = INJECTION_HEADERS.iter().any(|h| {
                    bare.len() > h.len()
                        && bare[h.len()] == b':'
                        && bare[..h.len()].eq_ignore_ascii_case(h.as_bytes())
                });
                if skipping {
                    continue;
                }
            }
        }
        out.extend_from_slice(line);
    }
    out
}

/// File name for an item in a spool: derived from the Message-ID so that
/// a repeated hand-off finds the file already there.
pub fn spool_name(msgid: &str, ext: &str) -> String {
    let clean: String = msgid
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' })
        .collect();
    format!("{clean}.{ext}")
}

fn write_spool(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("spool directory: {e}"))?;
    let target = dir.join(name);
    if target.exists() {
        return Ok(()); // handed off before; a crash kept the row
    }
    let tmp: PathBuf = dir.join(format!(".{}.{}.tmp", name, std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, &target)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(format!("spool write: {e}"));
    }
    Ok(())
}

/// Run `argv` with `parts` on stdin, one after the other; Ok(output) when
/// it exits 0 in time. On failure, the second string is its output.
fn run(argv: &[String], parts: &[&[u8]], timeout: Duration) -> Result<String, (String, String)> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("cannot start {}: {e}", argv[0]), String::new()))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    std::thread::scope(|scope| {
        // Write from a thread: a child that never reads must not block us
        // past the timeout (killing it breaks the pipe and ends the thread).
        scope.spawn(move || {
            for p in parts {
                if stdin.write_all(p).is_err() {
                    break;
                }
            }
        });
        let reader = scope.spawn(move || {
            use std::io::Read;
            let mut s = Vec::new();
            let _ = out_pipe.read_to_end(&mut s);
            let mut e = Vec::new();
            let _ = err_pipe.read_to_end(&mut e);
            s.extend_from_slice(&e);
            String::from_utf8_lossy(&s).into_owned()
        });
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if start.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err((
                        format!("{} timed out after {}s", argv[0], timeout.as_secs()),
                        String::new(),
                    ));
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err((format!("waiting for {}: {e}", argv[0]), String::new()));
                }
            }
        };
        let output = reader.join().unwrap_or_default();
        if status.success() {
            Ok(output)
        } else {
            Err((format!("{} failed ({status})", argv[0]), output))
        }
    })
}

/// The first line a failing command printed, for the log: INN's and the
/// MTA's replies name the problem ("441 ...", "400 throttled") and never
/// carry message content.
fn first_line(out: &str) -> String {
    let line = out.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    line.chars().take(200).collect()
}

/// Hand one item to its transport. Err carries a reason fit for the log
/// (no addresses, no content).
/// Why a hand-off failed: a fixed reason (no content) and whether trying
/// again can ever help.
#[derive(Debug)]
pub struct HandOffError {
    pub reason: String,
    pub permanent: bool,
}

pub fn hand_off(cfg: &Config, item: &OutItem) -> Result<(), HandOffError> {
    hand_off_inner(cfg, item).map_err(|reason| HandOffError { reason, permanent: false })
}

fn hand_off_inner(cfg: &Config, item: &OutItem) -> Result<(), String> {
    let timeout = Duration::from_secs(cfg.delivery.transport_timeout.max(1));
    let dates = date_headers(item);
    match item.kind {
        Kind::News => match cfg.news.transport {
            NewsTransport::Spool => {
                write_spool(&cfg.news.spool, &spool_name(&item.msgid, "art"), &[&dates, &item.body])
            }
            NewsTransport::Inews => {
                let article = for_inews(&[dates.as_slice(), &item.body].concat());
                match run(&cfg.news.inews, &[&article], timeout) {
                    Ok(_) => Ok(()),
                    // INN already has this Message-ID: an earlier hand-off
                    // succeeded but we died before recording it.
                    Err((_, out))
                        if out.contains("435")
                            || out.contains("437 Duplicate")
                            || out.to_ascii_lowercase().contains("duplicate") =>
                    {
                        Ok(())
                    }
                    Err((e, out)) => Err(format!("{e}: {}", first_line(&out))),
                }
            }
        },
        Kind::Mail => {
            if item.env_to.is_empty() {
                return Err("mail item without recipients".into());
            }
            match cfg.mail.transport {
                MailTransport::Spool => {
                    let envelope = format!(
                        "X-Nymgate-Envelope-From: {}\nX-Nymgate-Envelope-To: {}\n",
                        item.env_from,
                        item.env_to.join(", ")
                    );
                    write_spool(
                        &cfg.mail.spool,
                        &spool_name(&item.msgid, "eml"),
                        &[envelope.as_bytes(), &dates, &item.body],
                    )
                }
                MailTransport::Sendmail => {
                    let mut argv = cfg.mail.sendmail.clone();
                    argv.push("-f".into());
                    argv.push(item.env_from.clone());
                    argv.push("--".into());
                    argv.extend(item.env_to.iter().cloned());
                    // sendmail's complaints can name recipients: not logged.
                    run(&argv, &[&dates, &item.body], timeout).map(|_| ()).map_err(|(e, _)| e)
                }
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

    #[test]
    fn inews_gets_no_injection_headers() {
        let a = b"Path: x!not-for-mail\nInjection-Date: d\nSubject: s\nInjection-Info: h;\n c=1\nFrom: f\n\nPath: body\n";
        assert_eq!(for_inews(a), b"Subject: s\nFrom: f\n\nPath: body\n");
    }

    #[test]
    fn spool_names_are_safe() {
        assert_eq!(spool_name("<ab/../c@d.example>", "art"), "ab_.._c_d.example.art");
    }
}
