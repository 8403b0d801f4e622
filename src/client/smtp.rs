//! Handing a request to an SMTP server: plain, STARTTLS or implicit TLS,
//! with AUTH PLAIN or LOGIN only once the connection is encrypted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::handoff::{Mail, SmtpTls};
use super::net::{Dialer, NetError};
use super::tls::{self, Stream};

/// An SMTP user name and password; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Login(..)")
    }
}

/// Where and how to submit.
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub mode: SmtpTls,
    pub login: Option<&'a Login>,
    pub ca_file: Option<&'a Path>,
}

struct Smtp {
    r: BufReader<Box<dyn Stream>>,
}

impl Smtp {
    fn reply(&mut self) -> Result<(u16, String)> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                bail!("the server closed the connection");
            }
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| anyhow!("bad reply `{}`", line.trim_end().escape_debug()))?;
            text.push_str(line.get(4..).unwrap_or("").trim_end());
            text.push('\n');
            if line.as_bytes().get(3) != Some(&b'-') || text.len() > 64 * 1024 {
                return Ok((code, text));
            }
        }
    }

    fn write_line(&mut self, line: &str) -> Result<()> {
        let w = self.r.get_mut();
        w.write_all(line.as_bytes())?;
        w.write_all(b"\r\n")?;
        w.flush()?;
        Ok(())
    }

    /// Send `line`, expect a reply of the class of `want`. Errors name the
    /// command by its first word (or up to a colon) only.
    fn cmd(&mut self, line: &str, want: u16) -> Result<String> {
        self.write_line(line)?;
        let (code, text) = self.reply()?;
        if code / 100 != want / 100 {
            bail!("`{}` was answered {code} {}", line.split(':').next().unwrap_or(line), text.trim_end());
        }
        Ok(text)
    }

    /// Send a line that carries a secret; errors name `label` instead.
    fn secret(&mut self, line: &str, want: u16, label: &str) -> Result<String> {
        self.write_line(line)?;
        let (code, text) = self.reply()?;
        if code != want {
            bail!("{label} was answered {code} {}", text.trim_end());
        }
        Ok(text)
    }
}

/// The mechanisms of the EHLO answer's AUTH line (`AUTH PLAIN LOGIN`, or
/// the old `AUTH=PLAIN`).
fn auth_mechanisms(ehlo: &str) -> Vec<String> {
    let mut v = Vec::new();
    for l in ehlo.lines() {
        let up = l.to_ascii_uppercase();
        if let Some(rest) = up.strip_prefix("AUTH ").or_else(|| up.strip_prefix("AUTH=")) {
            v.extend(rest.split_whitespace().map(str::to_string));
        }
    }
    v
}

fn login(s: &mut Smtp, ehlo: &str, l: &Login) -> Result<()> {
    let mechs = auth_mechanisms(ehlo);
    if mechs.iter().any(|m| m == "PLAIN") {
        let token = base64(format!("\0{}\0{}", l.user, l.pass).as_bytes());
        s.secret(&format!("AUTH PLAIN {token}"), 235, "the login (AUTH PLAIN)")?;
    } else if mechs.iter().any(|m| m == "LOGIN") {
        s.secret("AUTH LOGIN", 334, "AUTH LOGIN")?;
        s.secret(&base64(l.user.as_bytes()), 334, "the user name (AUTH LOGIN)")?;
        s.secret(&base64(l.pass.as_bytes()), 235, "the login (AUTH LOGIN)")?;
    } else {
        bail!("the server offers neither AUTH PLAIN nor AUTH LOGIN; the request was not sent");
    }
    Ok(())
}

pub fn submit(dialer: &Dialer, t: &Target, mail: &Mail) -> Result<()> {
    // Decided before connecting: a password never travels in the clear.
    if t.login.is_some() && t.mode == SmtpTls::None {
        return Err(NetError::CleartextLogin { what: "SMTP", host: t.host.to_string() }.into());
    }
    let tcp = dialer.connect(t.host, t.port)?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
    let stream: Box<dyn Stream> = match t.mode {
        SmtpTls::Implicit => tls::wrap(tcp.try_clone()?, t.host, t.ca_file)?,
        _ => Box::new(tcp.try_clone()?),
    };
    let mut s = Smtp { r: BufReader::new(stream) };
    let (code, text) = s.reply()?;
    if code != 220 {
        bail!("greeting {code} {}", text.trim_end());
    }
    // A neutral EHLO name: the real host name would identify the machine.
    let mut ehlo = s.cmd("EHLO localhost", 250)?;
    if t.mode == SmtpTls::StartTls {
        if !ehlo.lines().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
            bail!("the server does not offer STARTTLS");
        }
        s.cmd("STARTTLS", 220)?;
        drop(s);
        s = Smtp { r: BufReader::new(tls::wrap(tcp, t.host, t.ca_file)?) };
        // What the server said before TLS may have been forged: ask again.
        ehlo = s.cmd("EHLO localhost", 250)?;
    }
    if let Some(l) = t.login {
        login(&mut s, &ehlo, l)?;
    }
    s.cmd(&format!("MAIL FROM:<{}>", mail.from.unwrap_or("")), 250)?;
    s.cmd(&format!("RCPT TO:<{}>", mail.to), 250)?;
    s.cmd("DATA", 354)?;
    let mut data = String::new();
    for line in mail.text.lines() {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push('.');
    s.cmd(&data, 250)?;
    let _ = s.cmd("QUIT", 221);
    Ok(())
}

/// Standard base64 with padding (RFC 4648), for AUTH.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `%XX` escapes undone (URL user names and passwords).
pub fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| anyhow!("a `%` in the SMTP login is not followed by two hex digits"))?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .map_err(|_| anyhow!("a `%` in the SMTP login is not followed by two hex digits"))?,
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow!("the SMTP login is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_follows_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"\0user\0pass"), "AHVzZXIAcGFzcw==");
    }

    #[test]
    fn logins_in_urls_are_percent_decoded() {
        assert_eq!(percent_decode("us%40er").unwrap(), "us@er");
        assert_eq!(percent_decode("p%3As%2Fs%25").unwrap(), "p:s/s%");
        assert!(percent_decode("bad%4").is_err() && percent_decode("bad%zz").is_err());
    }

    #[test]
    fn auth_mechanisms_are_read_from_ehlo() {
        assert_eq!(auth_mechanisms("fake\nAUTH PLAIN LOGIN\n8BITMIME\n"), ["PLAIN", "LOGIN"]);
        assert_eq!(auth_mechanisms("fake\nauth=login\n"), ["LOGIN"]);
        assert!(auth_mechanisms("fake\nSTARTTLS\n").is_empty());
    }
}
