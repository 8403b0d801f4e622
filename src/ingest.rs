//! Reading the message the MTA hands us: the mbox `From ` line, the size
//! limit, the delivery digest (so that an MTA retry after a crash does
//! nothing twice), and finding the armored OpenPGP message in it.

use std::io::Read;

/// The message from the MTA read as a stream, for mail to a nym: an mbox
/// `From ` line is dropped, the size limit is enforced, and what passes is
/// hashed with the recipient (the delivery digest),
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

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn message_reader_matches_the_buffered_path() {
        let raw = b"From a@b Mon Jan 1\nSubject: x\n\nbody\n";
        let mut r = MessageReader::new(&raw[..], "Nym@D", 1000);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, strip_from_line(raw));
        let mut h = sha2::Sha256::new();
        h.update(b"nym@d\0");
        h.update(strip_from_line(raw));
        assert_eq!(r.digest(), h.finalize().to_vec());
        assert!(!r.over_limit() && !r.blank());
    }

    #[test]
    fn size_limit_stops_reading() {
        let mut r = MessageReader::new(&b"0123456789"[..], "x", 5);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(r.over_limit());
        assert!(got.len() <= 5);
    }

    #[test]
    fn white_space_only_is_blank() {
        let mut r = MessageReader::new(&b" \n\t\n"[..], "x", 5);
        r.read_to_end(&mut Vec::new()).unwrap();
        assert!(r.blank());
    }

    #[test]
    fn same_message_to_another_recipient_has_another_digest() {
        let d = |rcpt: &str| {
            let mut r = MessageReader::new(&b"X: y\n\nz\n"[..], rcpt, 100);
            r.read_to_end(&mut Vec::new()).unwrap();
            r.digest()
        };
        assert_ne!(d("a@d"), d("b@d"));
        assert_eq!(d("A@D"), d("a@d"));
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
