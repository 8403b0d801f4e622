//! The requests the client sends (PROTOCOL sections 2, 3, 6, 8) and the
//! carrier mail around them. The request texts are written by the same
//! module that parses them on the server (`crate::protocol`); this file
//! only adapts their errors and adds the carrier.

use anyhow::{anyhow, Result};

pub use crate::protocol::send_request::{encode_word, Draft as Outgoing};
use crate::protocol::{options, send_request, url_request};

/// Check an option value the way the server reads it.
pub fn check_value(name: &str, value: &str) -> Result<()> {
    options::check_value(name, value).map_err(|e| anyhow!(e))
}

/// `name: value` lines, in the given order.
pub fn option_lines(opts: &[(&str, String)]) -> Result<String> {
    options::write_lines(opts).map_err(|e| anyhow!(e))
}

/// Create request plaintext: option lines, then the armored public key.
pub fn create_plaintext(opts: &[(&str, String)], armored_public_key: &str) -> Result<String> {
    options::write_create(opts, armored_public_key).map_err(|e| anyhow!(e))
}

/// url@ request plaintext.
pub fn url_plaintext(urls: &[String], key: &str, hsub: Option<&str>) -> Result<String> {
    url_request::write_request(urls, key, hsub).map_err(|e| anyhow!(e))
}

/// The RFC 5322 message for send@ (no Date, no Message-ID: the server adds
/// them, and ours would give away the time zone and host).
pub fn send_message(m: &Outgoing) -> Result<String> {
    send_request::write_message(m).map_err(|e| anyhow!(e))
}

/// The mail that carries an encrypted request to `to` (config@, send@,
/// url@). Deliberately bare: no Date, no Message-ID, no User-Agent, so it
/// says nothing about the machine it was made on.
pub fn carrier(to: &str, from: Option<&str>, armored: &str) -> String {
    let mut s = String::new();
    if let Some(f) = from {
        s.push_str(&format!("From: {f}\n"));
    }
    s.push_str(&format!("To: {to}\n"));
    s.push_str("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n");
    s.push_str(armored);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_is_bare() {
        let c = carrier("config@d", None, "-----BEGIN PGP MESSAGE-----\nx\n-----END PGP MESSAGE-----");
        assert!(c.starts_with("To: config@d\nMIME-Version: 1.0\n"));
        assert!(!c.contains("Date:") && !c.contains("Message-ID") && !c.contains("User-Agent"));
        assert!(c.ends_with("-----END PGP MESSAGE-----\n"));
    }

    #[test]
    fn writer_errors_become_client_errors() {
        assert!(option_lines(&[("hsub", "".into())]).is_err());
        assert!(url_plaintext(&["a b".into()], "k", None).is_err());
    }
}
