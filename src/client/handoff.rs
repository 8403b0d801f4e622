//! Handing a finished request mail to the world: standard output, a file
//! or directory, a sendmail-compatible command, or an SMTP server.
//!
//! Which one is safe depends on the user's setup (see the manual text in
//! `cli.rs`); this module only moves bytes and reports failures clearly.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use rand::RngCore;

use super::net::Dialer;
use super::smtp::{self, Login};

/// A parsed `--via` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Stdout,
    /// A directory (created 0700 when missing): one file per request.
    File(PathBuf),
    /// One mbox file: requests appended with `From ` separator lines.
    Mbox(PathBuf),
    Sendmail(String),
    Smtp {
        host: String,
        port: u16,
        tls: SmtpTls,
        /// From `USER:PASS@` in the URL (percent-decoded).
        login: Option<Login>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Implicit,
}

pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail -oi";

impl Via {
    pub fn parse(s: &str) -> Result<Via> {
        let s = s.trim();
        if s == "stdout" || s == "-" {
            return Ok(Via::Stdout);
        }
        if let Some(p) = s.strip_prefix("file:") {
            if p.is_empty() {
                bail!("`file:` needs a directory");
            }
            return Ok(Via::File(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("mbox:") {
            if p.is_empty() {
                bail!("`mbox:` needs a file");
            }
            return Ok(Via::Mbox(PathBuf::from(p)));
        }
        if s == "sendmail" {
            return Ok(Via::Sendmail(DEFAULT_SENDMAIL.into()));
        }
        if let Some(c) = s.strip_prefix("sendmail:") {
            if c.trim().is_empty() {
                bail!("`sendmail:` needs a command");
            }
            return Ok(Via::Sendmail(c.to_string()));
        }
        for (prefix, tls, port) in [
            ("smtp://", SmtpTls::None, 25),
            ("smtp+starttls://", SmtpTls::StartTls, 587),
            ("smtps://", SmtpTls::Implicit, 465),
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                let rest = rest.trim_end_matches('/');
                // The password never appears in an error message.
                let (login, hostport) = match rest.rsplit_once('@') {
                    Some((userinfo, hp)) => {
                        let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                        let user = smtp::percent_decode(u)?;
                        if user.is_empty() {
                            bail!("an empty SMTP user name in the {prefix} address");
                        }
                        (Some(Login { user, pass: smtp::percent_decode(p)? }), hp)
                    }
                    None => (None, rest),
                };
                let (host, port) = split_host_port(hostport, port)?;
                return Ok(Via::Smtp { host, port, tls, login });
            }
        }
        // Whatever precedes an `@` after `://` may be a password.
        let shown = match (s.split_once("://"), s.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://...@{host}"),
            _ => s.to_string(),
        };
        bail!("unknown hand-off method `{shown}`; use stdout, file:DIR, mbox:FILE, sendmail[:COMMAND], smtp://HOST:PORT, smtp+starttls://HOST:PORT or smtps://HOST:PORT")
    }
}

/// `host[:port]`, with `[v6]:port` allowed.
pub fn split_host_port(s: &str, default: u16) -> Result<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or_else(|| anyhow!("bad address `{s}`"))?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| anyhow!("bad port in `{s}`"))?,
            None => default,
        };
        return Ok((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().map_err(|_| anyhow!("bad port in `{s}`"))?)),
        None if !s.is_empty() => Ok((s.to_string(), default)),
        None => bail!("missing host"),
    }
}

/// One mail to hand off.
pub struct Mail<'a> {
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub text: &'a str,
}

/// Hand off `mail`; returns a short description of where it went.
pub fn deliver(via: &Via, mail: &Mail, ca_file: Option<&Path>, dialer: &Dialer) -> Result<String> {
    match via {
        Via::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(mail.text.as_bytes())?;
            out.flush()?;
            Ok("standard output".into())
        }
        Via::File(p) => to_dir(p, mail),
        Via::Mbox(p) => to_mbox(p, mail),
        Via::Sendmail(cmd) => sendmail(cmd, mail),
        Via::Smtp { host, port, tls, login } => {
            let t = smtp::Target { host, port: *port, mode: *tls, login: login.as_ref(), ca_file };
            smtp::submit(dialer, &t, mail).with_context(|| format!("SMTP to {host}:{port}"))?;
            Ok(format!("SMTP server {host}:{port}"))
        }
    }
}

fn to_dir(p: &Path, mail: &Mail) -> Result<String> {
    if p.exists() && !p.is_dir() {
        bail!(
            "{} is not a directory; `file:` writes one file per request into a directory \
             (for one file use mbox:FILE)",
            p.display()
        );
    }
    if !p.exists() {
        super::store::private_dir(p)?;
    }
    let mut r = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut r);
    let name = format!("{}-{}.eml", mail.to.split('@').next().unwrap_or("mail"), hex::encode(r));
    let path = p.join(name);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(mail.text.as_bytes())?;
    f.sync_all()?;
    Ok(path.display().to_string())
}

/// Append to an mbox (mboxrd): a `From ` line before each mail, body
/// lines that start with `From ` (after any `>`) quoted with one more `>`,
/// and a blank line after each mail. The date is fixed: the time of the
/// request would be one more clue for whoever reads the file.
fn to_mbox(p: &Path, mail: &Mail) -> Result<String> {
    if p.is_dir() {
        bail!("{} is a directory; use file:{} for one file per request", p.display(), p.display());
    }
    let mut text = String::from("From nym@localhost Thu Jan  1 00:00:00 1970\n");
    for line in mail.text.lines() {
        if line.trim_start_matches('>').starts_with("From ") {
            text.push('>');
        }
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("opening {}", p.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(p.display().to_string())
}

fn sendmail(cmd: &str, mail: &Mail) -> Result<String> {
    let mut words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    if words.iter().any(|w| w.contains("{rcpt}")) {
        for w in &mut words {
            *w = w.replace("{rcpt}", mail.to);
        }
    } else {
        words.push(mail.to.to_string());
    }
    let program = words.remove(0);
    let mut child = Command::new(&program)
        .args(&words)
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{program}`"))?;
    child.stdin.take().expect("piped").write_all(mail.text.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("`{cmd}` failed ({status}); the request was not sent");
    }
    Ok(format!("`{program}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_parsing() {
        assert_eq!(Via::parse("stdout").unwrap(), Via::Stdout);
        assert_eq!(Via::parse("file:/tmp/x").unwrap(), Via::File("/tmp/x".into()));
        assert_eq!(Via::parse("mbox:/tmp/x").unwrap(), Via::Mbox("/tmp/x".into()));
        assert_eq!(Via::parse("sendmail").unwrap(), Via::Sendmail(DEFAULT_SENDMAIL.into()));
        assert_eq!(
            Via::parse("smtp+starttls://mail.example:2525").unwrap(),
            Via::Smtp { host: "mail.example".into(), port: 2525, tls: SmtpTls::StartTls, login: None }
        );
        assert_eq!(
            Via::parse("smtps://[::1]").unwrap(),
            Via::Smtp { host: "::1".into(), port: 465, tls: SmtpTls::Implicit, login: None }
        );
        let login = Login { user: "us@er".into(), pass: "p:ss@w".into() };
        assert_eq!(
            Via::parse("smtp+starttls://us%40er:p%3Ass@w@mail.example").unwrap(),
            Via::Smtp { host: "mail.example".into(), port: 587, tls: SmtpTls::StartTls, login: Some(login) }
        );
        for bad in ["smtps://me:secret@h:port", "smtp+tls://me:secret@h"] {
            let e = Via::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
        assert!(Via::parse("carrier-pigeon").is_err());
        assert!(Via::parse("smtp://h:notaport").is_err());
    }
}
