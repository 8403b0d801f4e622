//! Reading the incoming message, and building what we post.

use std::io::Read;

use rand::RngCore;

use crate::config::Config;
use crate::store::{Kind, Nym, OutItem};

/// The message from the MTA read as a stream, for mail to a nym: an mbox
/// `From ` line is dropped, the size limit is enforced, and what passes is
/// hashed (the delivery digest, see [`crate::handler::delivery_digest`]),
/// so that a 20 MiB message is never held in memory next to its
/// encryption.
pub struct MessageReader<R: Read> {
    inner: std::io::BufReader<R>,
    hasher: sha2::Sha256,
    seen: u64,
    max: u64,
    over: bool,
    nonblank: bool,
    started: bool,
}

impl<R: Read> MessageReader<R> {
    pub fn new(input: R, recipient: &str, max: u64) -> Self {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(recipient.to_ascii_lowercase().as_bytes());
        hasher.update([0u8]);
        MessageReader {
            inner: std::io::BufReader::with_capacity(64 * 1024, input),
            hasher,
            seen: 0,
            max,
            over: false,
            nonblank: false,
            started: false,
        }
    }

    /// More than the size limit arrived; reading stopped there.
    pub fn over_limit(&self) -> bool {
        self.over
    }

    /// Nothing but white space (or nothing at all) arrived.
    pub fn blank(&self) -> bool {
        !self.nonblank
    }

    /// Read and forget whatever is left, so the MTA never sees a broken pipe.
    pub fn drain(&mut self) {
        let _ = std::io::copy(&mut self.inner, &mut std::io::sink());
    }

    pub fn digest(&self) -> Vec<u8> {
        use sha2::Digest;
        self.hasher.clone().finalize().to_vec()
    }
}

impl<R: Read> Read for MessageReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        if !self.started {
            self.started = true;
            if self.inner.fill_buf()?.starts_with(b"From ") {
                let mut line = Vec::new();
                self.inner.read_until(b'\n', &mut line)?;
            }
        }
        if self.over {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if self.seen + n as u64 > self.max {
            self.over = true;
            self.drain();
            return Ok(0);
        }
        self.seen += n as u64;
        use sha2::Digest;
        self.hasher.update(&buf[..n]);
        if !self.nonblank && buf[..n].iter().any(|b| !b.is_ascii_whitespace()) {
            self.nonblank = true;
        }
        Ok(n)
    }
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
            if let Some(a) = crate::openpgp::find_armor(part.contents(), "MESSAGE") {
                return Some(a.to_vec());
            }
        }
    }
    crate::openpgp::find_armor(raw, "MESSAGE").map(<[u8]>::to_vec)
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
    let (msgid, mut out) = article_head(cfg, subject, body.len());
    out.extend_from_slice(body);
    article_finish(msgid, out)
}

/// The headers of a new article, in a buffer with room for `body_len`
/// more bytes, so that the body can be written straight after them.
pub fn article_head(cfg: &Config, subject: &str, body_len: usize) -> (String, Vec<u8>) {
    let msgid = new_msgid(cfg);
    let n = &cfg.news;
    let head = format!(
        "Path: {}\nFrom: {}\nSubject: {}\nNewsgroups: {}\nMessage-ID: {}\nInjection-Info: {}; mail-complaints-to=\"{}\"\n\n",
        n.path, n.from, subject, n.newsgroup, msgid, n.injection_host, n.complaints_to
    );
    let mut out = Vec::with_capacity(head.len() + body_len + 1);
    out.extend_from_slice(head.as_bytes());
    (msgid, out)
}

/// Close an article begun with [`article_head`].
pub fn article_finish(msgid: String, mut out: Vec<u8>) -> OutItem {
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
    fn message_reader_matches_the_buffered_path() {
        let raw = b"From a@b Mon Jan 1\nSubject: x\n\nbody\n";
        let mut r = MessageReader::new(&raw[..], "Nym@D", 1000);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, strip_from_line(raw));
        assert_eq!(r.digest(), crate::handler::delivery_digest("nym@d", strip_from_line(raw)));
        assert!(!r.over_limit() && !r.blank());
        let mut r = MessageReader::new(&b"0123456789"[..], "x", 5);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(r.over_limit());
        let mut r = MessageReader::new(&b" \n\t\n"[..], "x", 5);
        r.read_to_end(&mut Vec::new()).unwrap();
        assert!(r.blank());
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
