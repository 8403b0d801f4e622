//! Reading the incoming message, and building what we post.

use std::io::Read;

use rand::RngCore;

use crate::config::Config;
use crate::error::Failure;
use crate::store::{Kind, Nym, OutItem};

/// Read stdin up to `max` bytes. A bigger message is refused whole (65)
/// rather than cut, since a cut message cannot be signed or decrypted.
pub fn read_limited(mut input: impl Read, max: u64) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    (&mut input).take(max + 1).read_to_end(&mut buf).map_err(|e| Failure::Temp(e.into()))?;
    if buf.len() as u64 > max {
        // Drain the rest so the MTA does not see a broken pipe and retry.
        let _ = std::io::copy(&mut input, &mut std::io::sink());
        return Err(Failure::Data("message larger than the size limit"));
    }
    Ok(buf)
}

/// Drop an mbox `From ` line that some MTA configurations prepend.
pub fn strip_from_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match raw.iter().position(|&b| b == b'\n') {
            Some(i) => &raw[i + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

/// The first armored OpenPGP message in the mail: in any decoded MIME part
/// (quoted-printable, base64, PGP/MIME), else in the raw bytes.
pub fn extract_pgp_message(raw: &[u8]) -> Option<Vec<u8>> {
    if let Some(msg) = mail_parser::MessageParser::default().parse(raw) {
        for part in msg.parts.iter() {
            if let Some(a) = crate::pgp::find_armor(part.contents(), "MESSAGE") {
                return Some(a.to_vec());
            }
        }
    }
    crate::pgp::find_armor(raw, "MESSAGE").map(<[u8]>::to_vec)
}

/// A Message-ID in our default domain.
pub fn new_msgid(cfg: &Config) -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    format!("<{}@{}>", hex::encode(b), cfg.default_domain())
}

/// Subject for an article to `nym` (PROTOCOL.md section 4).
pub fn subject_for(cfg: &Config, hsub: Option<&str>, subject: Option<&str>) -> String {
    match (hsub, subject) {
        (Some(h), _) => crate::hsub::hsub(h.as_bytes(), cfg.limits.hsub_length),
        (None, Some(s)) => sanitize_header(s),
        (None, None) => crate::hsub::random_subject(cfg.limits.hsub_length),
    }
}

/// Header values we write must stay on one line.
pub fn sanitize_header(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// An article for alt.anonymous.messages carrying `body` (armored).
/// Date and Injection-Date are added at hand-off.
pub fn article(cfg: &Config, subject: &str, body: &[u8]) -> OutItem {
    let msgid = new_msgid(cfg);
    let n = &cfg.news;
    let mut out = format!(
        "Path: {}\nFrom: {}\nSubject: {}\nNewsgroups: {}\nMessage-ID: {}\nInjection-Info: {}; mail-complaints-to=\"{}\"\n\n",
        n.path, n.from, subject, n.newsgroup, msgid, n.injection_host, n.complaints_to
    )
    .into_bytes();
    out.extend_from_slice(body);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    OutItem { kind: Kind::News, env_from: String::new(), env_to: Vec::new(), msgid, body: out }
}

/// The plaintext of a notice from the server to a nym: a small mail, so
/// that the nym's reader shows it like any other message.
pub fn notice(from: &str, to: &str, subject: &str, text: &str) -> Vec<u8> {
    let date = crate::transport::rfc5322_date(std::time::SystemTime::now());
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nDate: {date}\nContent-Type: text/plain; charset=utf-8\n\n{text}"
    )
    .into_bytes()
}

/// A human-readable list of a nym's options, for confirmations.
pub fn describe_options(n: &Nym) -> String {
    let show =
        |v: &Option<String>| v.as_deref().map(|s| format!("\"{s}\"")).unwrap_or_else(|| "(not set)".into());
    let expires = match n.expires {
        Some(e) => crate::transport::rfc5322_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.max(0) as u64),
        ),
        None => "never".into(),
    };
    format!(
        "Nym:        {}\nKey:        {}\nExpires:    {}\nhsub:       {}\nsubject:    {}\nsymmetric:  {}\nacksend:    {}\n",
        n.address(),
        n.fingerprint,
        expires,
        show(&n.hsub),
        show(&n.subject),
        show(&n.symmetric),
        if n.acksend { "yes" } else { "no" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_limit() {
        assert_eq!(read_limited(&b"12345"[..], 5).unwrap(), b"12345");
        assert!(matches!(read_limited(&b"123456"[..], 5), Err(Failure::Data(_))));
    }

    #[test]
    fn from_line() {
        assert_eq!(strip_from_line(b"From a@b Mon\nX: y\n"), b"X: y\n");
        assert_eq!(strip_from_line(b"From: a@b\n"), b"From: a@b\n");
    }

    #[test]
    fn pgp_in_quoted_printable_part() {
        let mail = b"To: config@d\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n\
-----BEGIN PGP MESSAGE-----\n\nhQEMA=3D=3D\n-----END PGP MESSAGE-----\n";
        let m = extract_pgp_message(mail).unwrap();
        assert!(String::from_utf8(m).unwrap().contains("hQEMA=="));
        assert!(extract_pgp_message(b"Subject: hi\n\nno armor here\n").is_none());
    }
}
