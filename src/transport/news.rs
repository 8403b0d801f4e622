//! Posting through `inews`. INN's replies quote the newsgroup and other
//! details: only the three-digit status code reaches the log, with a fixed
//! reason, and the code decides whether trying again can help.

use std::time::Duration;

use super::process::{run, Failed};
use super::HandOffError;

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

/// The first NNTP status code in what inews printed.
fn status_code(output: &str) -> Option<u16> {
    output.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 3).and_then(|w| w.parse().ok())
}

/// What a failed inews run means.
pub fn classify(output: &str) -> Result<(), HandOffError> {
    let code = status_code(output);
    let lower = output.to_ascii_lowercase();
    // INN already has this Message-ID: an earlier hand-off succeeded but
    // we died before recording it.
    let codes = || output.split(|c: char| !c.is_ascii_digit()).filter(|w| w.len() == 3);
    if lower.contains("duplicate") || codes().any(|w| w == "435") {
        return Ok(());
    }
    match code {
        // Posting refused: the same article will be refused again.
        Some(c @ (441 | 437 | 435)) => Err(HandOffError::permanent(format!("inews refused ({c})"))),
        // Throttled, no permission right now, server trouble: later.
        Some(c) => Err(HandOffError::transient(format!("inews failed ({c})"))),
        None => Err(HandOffError::transient("inews failed")),
    }
}

pub fn post(inews: &[String], dates: &[u8], body: &[u8], timeout: Duration) -> Result<(), HandOffError> {
    let article = for_inews(&[dates, body].concat());
    match run(inews, &[&article], timeout) {
        Ok(_) => Ok(()),
        Err(Failed::Start { .. }) => Err(HandOffError::transient("inews could not be started")),
        Err(Failed::Timeout) => Err(HandOffError::transient("inews timed out")),
        Err(Failed::Exit { output, .. }) => classify(&output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inews_gets_no_injection_headers() {
        let a = b"Path: x!not-for-mail\nInjection-Date: d\nSubject: s\nInjection-Info: h;\n c=1\nFrom: f\n\nPath: body\n";
        assert_eq!(for_inews(a), b"Subject: s\nFrom: f\n\nPath: body\n");
    }

    #[test]
    fn a_refusal_is_permanent_and_its_text_never_logged() {
        let e = classify("inews: 441 Newsgroup alt.secret.group does not exist\n").unwrap_err();
        assert!(e.permanent);
        assert_eq!(e.reason, "inews refused (441)");
        assert!(!e.reason.contains("alt.secret"));
    }

    #[test]
    fn a_duplicate_counts_as_posted() {
        assert!(classify("435 Duplicate\n").is_ok());
        assert!(classify("inews: 441 437 Duplicate article\n").is_ok());
    }

    #[test]
    fn throttling_and_silence_are_temporary() {
        let e = classify("400 Throttled -- out of space\n").unwrap_err();
        assert!(!e.permanent);
        assert_eq!(e.reason, "inews failed (400)");
        assert!(!classify("inews: cannot connect to server\n").unwrap_err().permanent);
    }
}
