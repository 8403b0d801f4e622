//! A small NNTP reader (RFC 3977): just what fetching a group needs.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::net::Dialer;
use super::tls::{self, Stream};

/// How an NNTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NntpTls {
    /// Plain text (`nntp://`).
    None,
    /// Plain, then STARTTLS (RFC 4642) before anything else (`nntp+starttls://`).
    StartTls,
    /// TLS from the first byte (`nntps://`).
    Implicit,
}

pub struct Nntp {
    r: BufReader<Box<dyn Stream>>,
    over: bool,
}

/// The answer to GROUP.
#[derive(Debug, Clone, Copy)]
pub struct GroupInfo {
    pub first: u64,
    pub last: u64,
}

/// One overview line: article number and Subject.
#[derive(Debug, Clone)]
pub struct Overview {
    pub number: u64,
    pub subject: String,
}

/// An NNTP error reply; 4xx/5xx codes the caller may want to act on.
#[derive(Debug, thiserror::Error)]
#[error("the news server answered {code} {text}")]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Nntp {
    pub fn connect(
        dialer: &Dialer,
        host: &str,
        port: u16,
        mode: NntpTls,
        ca_file: Option<&Path>,
    ) -> Result<Nntp> {
        let tcp = dialer.connect(host, port)?;
        tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
        let stream: Box<dyn Stream> = match mode {
            NntpTls::Implicit => tls::wrap(tcp.try_clone()?, host, ca_file)?,
            _ => Box::new(tcp.try_clone()?),
        };
        let mut n = Nntp { r: BufReader::new(stream), over: true };
        let (code, text) = n.status()?;
        if code != 200 && code != 201 {
            bail!("{host} refused the connection: {code} {text}");
        }
        if mode == NntpTls::StartTls {
            let mut caps = n.capabilities()?;
            if !caps.iter().any(|c| c == "STARTTLS") && caps.iter().any(|c| c == "MODE-READER") {
                // A transit server may offer STARTTLS only in reader mode.
                n.cmd("MODE READER")?;
                caps = n.capabilities()?;
            }
            if !caps.iter().any(|c| c == "STARTTLS") {
                bail!("{host} does not offer STARTTLS; nothing was sent in the clear");
            }
            let (code, text) = n.cmd("STARTTLS").context("STARTTLS")?;
            if code != 382 {
                bail!("{host} answered STARTTLS with {code} {text}");
            }
            n = Nntp { r: BufReader::new(tls::wrap(tcp, host, ca_file)?), over: true };
            // RFC 4642: what the server said before TLS is forgotten.
            n.capabilities()?;
        }
        // INN answers with the transit server unless asked for the reader;
        // servers that are readers already may refuse, which is fine.
        let _ = n.cmd("MODE READER");
        Ok(n)
    }

    /// The CAPABILITIES list (RFC 3977 5.2), upper-cased first words.
    fn capabilities(&mut self) -> Result<Vec<String>> {
        let (code, text) = self.cmd("CAPABILITIES").context("CAPABILITIES")?;
        if code != 101 {
            bail!("unexpected answer to CAPABILITIES: {code} {text}");
        }
        let block = self.block_max(64 * 1024)?;
        Ok(String::from_utf8_lossy(&block)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|w| w.to_ascii_uppercase())
            .collect())
    }

    fn status(&mut self) -> Result<(u16, String)> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            bail!("the news server closed the connection");
        }
        let code = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("unexpected answer from the news server: `{}`", line.trim_end()))?;
        Ok((code, line.get(4..).unwrap_or("").trim_end().to_string()))
    }

    fn send(&mut self, line: &str) -> Result<()> {
        let w = self.r.get_mut();
        w.write_all(line.as_bytes())?;
        w.write_all(b"\r\n")?;
        w.flush()?;
        Ok(())
    }

    /// Send a command; return the status line, or a [`Reply`] error for
    /// 4xx and 5xx.
    fn cmd(&mut self, line: &str) -> Result<(u16, String)> {
        self.send(line)?;
        let (code, text) = self.status()?;
        if code >= 400 {
            return Err(Reply { code, text }.into());
        }
        Ok((code, text))
    }

    /// Read a dot-terminated multi-line block, undoing dot-stuffing.
    /// Returns raw bytes with LF line ends. A connection that ends before
    /// the final dot is an error: the caller must not keep half an article.
    fn block(&mut self) -> Result<Vec<u8>> {
        self.block_max(usize::MAX)
    }

    /// [`Nntp::block`], failing once the block passes `max` bytes.
    fn block_max(&mut self, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            if out.len() > max {
                bail!("the news server's answer is too long");
            }
            let mut line = Vec::new();
            if self.r.read_until(b'\n', &mut line)? == 0 || !line.ends_with(b"\n") {
                bail!("the news server closed the connection in the middle of a reply");
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if line == b"." {
                return Ok(out);
            }
            let l = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
            out.extend_from_slice(l);
            out.push(b'\n');
        }
    }

    pub fn authinfo(&mut self, user: &str, pass: &str) -> Result<()> {
        self.send(&format!("AUTHINFO USER {user}"))?;
        let (code, text) = self.status()?;
        if code == 381 {
            self.cmd(&format!("AUTHINFO PASS {pass}")).context("news server login")?;
        } else if code >= 400 {
            bail!("news server login refused: {code} {text}");
        }
        Ok(())
    }

    pub fn group(&mut self, group: &str) -> Result<GroupInfo> {
        let (_, text) = self.cmd(&format!("GROUP {group}"))?;
        let f: Vec<&str> = text.split_whitespace().collect();
        let num = |i: usize| -> Result<u64> {
            f.get(i).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow!("bad GROUP answer `{text}`"))
        };
        let (count, first, last) = (num(0)?, num(1)?, num(2)?);
        if count == 0 || last < first {
            // An empty group; RFC 3977 lets `last` be anything then.
            return Ok(GroupInfo { first: last + 1, last });
        }
        Ok(GroupInfo { first, last })
    }

    /// Subjects of the articles `from..=to`, from the overview database
    /// (OVER, else XOVER, else one HEAD per article).
    pub fn subjects(&mut self, from: u64, to: u64) -> Result<Vec<Overview>> {
        if self.over {
            for verb in ["OVER", "XOVER"] {
                match self.cmd(&format!("{verb} {from}-{to}")) {
                    Ok(_) => {
                        let data = self.block()?;
                        let mut v = Vec::new();
                        for line in String::from_utf8_lossy(&data).lines() {
                            let mut f = line.split('\t');
                            let (Some(n), Some(s)) = (f.next(), f.next()) else { continue };
                            if let Ok(number) = n.trim().parse() {
                                v.push(Overview { number, subject: s.to_string() });
                            }
                        }
                        return Ok(v);
                    }
                    // 423: no articles in that range.
                    Err(e) if e.downcast_ref::<Reply>().is_some_and(|r| r.code == 423) => {
                        return Ok(Vec::new())
                    }
                    Err(e) if e.downcast_ref::<Reply>().is_some_and(|r| r.code >= 500) => continue,
                    Err(e) => return Err(e),
                }
            }
            self.over = false;
        }
        let mut v = Vec::new();
        for n in from..=to {
            match self.cmd(&format!("HEAD {n}")) {
                Ok(_) => {
                    let head = self.block()?;
                    let subject = header(&head, "subject").unwrap_or_default();
                    v.push(Overview { number: n, subject });
                }
                Err(e) if e.downcast_ref::<Reply>().is_some_and(|r| r.code == 423 || r.code == 430) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(v)
    }

    /// The whole article, or None if the server no longer has it.
    pub fn article(&mut self, n: u64) -> Result<Option<Vec<u8>>> {
        match self.cmd(&format!("ARTICLE {n}")) {
            Ok(_) => Ok(Some(self.block()?)),
            Err(e) if e.downcast_ref::<Reply>().is_some_and(|r| r.code == 423 || r.code == 430) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn quit(mut self) {
        let _ = self.cmd("QUIT");
    }
}

/// The (unfolded, trimmed) value of the first header `name` in an article
/// or header block.
pub fn header(article: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(article);
    let mut found: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(v) = found.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case(name) {
                found = Some(v.trim().to_string());
            }
        }
    }
    found
}

/// The body of an article (after the first blank line).
pub fn body(article: &[u8]) -> String {
    let text = String::from_utf8_lossy(article);
    let t = text.replace("\r\n", "\n");
    match t.split_once("\n\n") {
        Some((_, b)) => b.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_and_unfolded() {
        let a = b"Path: x\nSubject: abc\n def\nFrom: n\n\nSubject: no\n";
        assert_eq!(header(a, "subject").as_deref(), Some("abc def"));
        assert_eq!(header(a, "message-id"), None);
        assert_eq!(body(a), "Subject: no\n");
    }
}
