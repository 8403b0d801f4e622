//! `nym fetch`: read alt.anonymous.messages from NNTP servers or a local
//! spool, recognise the articles meant for our nyms, and keep them in the
//! Maildir.
//!
//! Nothing may be lost and nothing read twice. The rules that give this:
//! an article is stored (and synced) before the high-water mark moves past
//! it; the mark is saved only for articles fully examined; and the
//! Message-ID list catches the one case where an article was stored but
//! the mark could not be saved before a crash or a dropped connection.

use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::openpgp::PgpCert as Cert;
use anyhow::{anyhow, bail, Context, Result};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::handoff::split_host_port;
use super::net::{Dialer, NetError};
use super::nntp::{self, Nntp, NntpTls};
use super::store::{NymRecord, Store};
use crate::openpgp::holder as pgp;
use crate::protocol::hsub;

/// Where articles come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Nntp { host: String, port: u16, tls: NntpTls },
    Spool(PathBuf),
}

impl Source {
    pub fn parse(s: &str) -> Result<Source> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("spool:") {
            return Ok(Source::Spool(PathBuf::from(p)));
        }
        let (rest, tls, port) = if let Some(r) = s.strip_prefix("nntps://") {
            (r, NntpTls::Implicit, 563)
        } else if let Some(r) = s.strip_prefix("nntp+starttls://") {
            (r, NntpTls::StartTls, 119)
        } else if let Some(r) = s.strip_prefix("nntp://").or_else(|| s.strip_prefix("news://")) {
            (r, NntpTls::None, 119)
        } else if s.contains("://") {
            bail!(
                "unknown news source `{s}`; use nntp://HOST[:PORT], nntp+starttls://HOST[:PORT], \
                 nntps://HOST[:PORT] or spool:DIR"
            );
        } else {
            (s, NntpTls::None, 119)
        };
        let (host, port) = split_host_port(rest.trim_end_matches('/'), port)?;
        Ok(Source::Nntp { host, port, tls })
    }

    /// The name under which the high-water mark is kept. STARTTLS and
    /// plain text share one: it is the same server and numbering.
    pub fn key(&self, group: &str) -> String {
        match self {
            Source::Nntp { host, port, tls } => {
                format!(
                    "{}://{}:{port} {group}",
                    if *tls == NntpTls::Implicit { "nntps" } else { "nntp" },
                    host.to_ascii_lowercase()
                )
            }
            Source::Spool(p) => format!("spool:{}", p.display()),
        }
    }
}

/// Decides whether an article is for one of our nyms.
pub struct Matcher {
    pub nyms: Vec<NymRecord>,
    /// Nyms found only by decryption, with their unlocked keys.
    pub try_all: Vec<(String, Cert, Vec<String>)>,
}

impl Matcher {
    /// The nym whose hSub or fixed subject marks this Subject.
    pub fn by_subject(&self, subject: &str) -> Option<&str> {
        let subject = subject.trim();
        for n in &self.nyms {
            if n.all_hsubs().iter().any(|p| hsub::matches(subject, p.as_bytes()))
                || n.all_subjects().contains(&subject)
                || n.esubs.iter().any(|e| super::esub::matches(subject, &e.text, &e.key))
            {
                return Some(&n.address);
            }
        }
        None
    }

    /// The nym that can decrypt this article, trying every try-all nym.
    pub fn by_decryption(&self, article: &[u8]) -> Option<&str> {
        let body = nntp::body(article);
        let block = pgp::armored_block(&body)?;
        for (addr, cert, passwords) in &self.try_all {
            if pgp::open(block.as_bytes(), std::slice::from_ref(cert), passwords, &[]).is_ok() {
                return Some(addr);
            }
        }
        None
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub examined: u64,
    pub kept: u64,
}

pub struct FetchOpts<'a> {
    pub group: &'a str,
    pub max: Option<u64>,
    pub retries: u32,
    pub ca_file: Option<&'a Path>,
    pub user: Option<&'a str>,
    pub quiet: bool,
    /// Straight, or through the proxy with this run's credentials.
    pub dialer: &'a Dialer,
}

/// Fetch from one source.
pub fn fetch(store: &Store, src: &Source, m: &Matcher, o: &FetchOpts) -> Result<Stats> {
    match src {
        Source::Spool(dir) => fetch_spool(store, dir, m, o),
        Source::Nntp { host, port, tls } => {
            let mut total = Stats::default();
            let mut attempt = 0;
            loop {
                match fetch_nntp(store, src, host, *port, *tls, m, o, &mut total) {
                    Ok(()) => return Ok(total),
                    Err(e) if attempt < o.retries && is_connection_loss(&e) => {
                        attempt += 1;
                        eprintln!("nym: {host}: {e:#}; reconnecting ({attempt}/{})", o.retries);
                        std::thread::sleep(Duration::from_millis(500 * attempt as u64));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// A dropped line is worth a retry; an answer of the server, a proxy that
/// is down and a missing setting are not.
fn is_connection_loss(e: &anyhow::Error) -> bool {
    e.downcast_ref::<nntp::Reply>().is_none() && !e.chain().any(|c| c.downcast_ref::<NetError>().is_some())
}

#[allow(clippy::too_many_arguments)]
fn fetch_nntp(
    store: &Store,
    src: &Source,
    host: &str,
    port: u16,
    tls: NntpTls,
    m: &Matcher,
    o: &FetchOpts,
    stats: &mut Stats,
) -> Result<()> {
    let key = src.key(o.group);
    if o.user.is_some() && tls == NntpTls::None {
        return Err(NetError::CleartextLogin { what: "NNTP", host: host.to_string() }.into());
    }
    let mut conn = Nntp::connect(o.dialer, host, port, tls, o.ca_file)?;
    if let Some(user) = o.user {
        let pass = std::env::var("NYM_NNTP_PASSWORD").unwrap_or_default();
        conn.authinfo(user, &pass)?;
    }
    let g = conn.group(o.group).with_context(|| format!("selecting {} on {host}", o.group))?;
    let hwm = store.hwms()?.get(&key).copied();
    let start = match hwm {
        Some(h) => {
            if h + 1 < g.first {
                eprintln!(
                    "nym: {host}: {} articles expired before this fetch could see them; \
                     messages may have been missed (fetch more often)",
                    g.first - h - 1
                );
            }
            if h > g.last {
                eprintln!(
                    "nym: {host}: our mark ({h}) is past the group's last article ({}); the server \
                     may have renumbered. Remove the line `{key}` in state/hwm.toml to read it again.",
                    g.last
                );
            }
            (h + 1).max(g.first)
        }
        None => match o.max {
            Some(n) if g.last >= n => (g.last + 1 - n).max(g.first),
            _ => g.first,
        },
    };
    if start > g.last {
        conn.quit();
        return Ok(());
    }
    let mut seen = store.state_list("seen-ids")?;
    let mut bar = Progress::new(host, g.last - start + 1, o.quiet);
    let batch = 500;
    let mut from = start;
    while from <= g.last {
        let to = (from + batch - 1).min(g.last);
        let overview = conn.subjects(from, to)?;
        for ov in overview {
            if ov.number < from || ov.number > to {
                continue;
            }
            let hit = m.by_subject(&ov.subject).map(str::to_string);
            if hit.is_some() || !m.try_all.is_empty() {
                if let Some(art) = conn.article(ov.number)? {
                    let who = hit.or_else(|| m.by_decryption(&art).map(str::to_string));
                    if let Some(addr) = who {
                        if keep(store, &mut seen, &addr, &format!("{key} {}", ov.number), &art)? {
                            stats.kept += 1;
                            bar.kept += 1;
                        }
                        store.set_hwm(&key, ov.number)?;
                    }
                }
            }
            stats.examined += 1;
            bar.step();
        }
        store.set_hwm(&key, to)?;
        from = to + 1;
    }
    bar.finish();
    conn.quit();
    Ok(())
}

fn fetch_spool(store: &Store, dir: &Path, m: &Matcher, o: &FetchOpts) -> Result<Stats> {
    let mut stats = Stats::default();
    let list_name =
        format!("spool-{}", &hex::encode(Sha256::digest(dir.display().to_string().as_bytes()))[..16]);
    let done = store.state_list(&list_name)?;
    let mut seen = store.state_list("seen-ids")?;
    let mut names: Vec<(SystemTime, String)> = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading the spool {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        // Dotfiles are articles still being written.
        if name.starts_with('.') || !e.file_type()?.is_file() || done.contains(&name) {
            continue;
        }
        names.push((e.metadata()?.modified().unwrap_or(UNIX_EPOCH), name));
    }
    names.sort();
    let mut bar = Progress::new(&dir.display().to_string(), names.len() as u64, o.quiet);
    for (_, name) in names {
        // Anyone can post to the group: look at the headers first and read
        // the whole file only for an article that may be ours and is not
        // larger than any article the server writes.
        let (head, size) = read_head(&dir.join(&name))?;
        let subject = nntp::header(&head, "subject").unwrap_or_default();
        let by_subject = m.by_subject(&subject).map(str::to_string);
        let wanted = by_subject.is_some() || !m.try_all.is_empty();
        let art = if wanted && size <= MAX_ARTICLE { Some(fs::read(dir.join(&name))?) } else { None };
        let who = match (&by_subject, &art) {
            (Some(a), Some(_)) => Some(a.clone()),
            (None, Some(art)) => m.by_decryption(art).map(str::to_string),
            _ => None,
        };
        if let (Some(addr), Some(art)) = (who, &art) {
            if keep(store, &mut seen, &addr, &format!("spool:{}/{name}", dir.display()), art)? {
                stats.kept += 1;
                bar.kept += 1;
            }
        }
        store.state_append_with(&list_name, &name, false)?;
        stats.examined += 1;
        bar.step();
    }
    bar.finish();
    Ok(stats)
}

/// Largest article a spool fetch reads: more than the server ever writes
/// (a 20 MiB message armored), far less than what a hostile poster can
/// leave in a spool.
pub const MAX_ARTICLE: u64 = 32 * 1024 * 1024;

/// The header section of a spool file (at most 64 KiB), and its size.
fn read_head(path: &Path) -> Result<(Vec<u8>, u64)> {
    use std::io::Read;
    let f = fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut head = Vec::with_capacity(8192);
    f.take(64 * 1024).read_to_end(&mut head)?;
    if let Some(end) = head.windows(2).position(|w| w == b"\n\n") {
        head.truncate(end + 2);
    }
    Ok((head, size))
}

/// Store an article in the Maildir unless its Message-ID is already there.
fn keep(
    store: &Store,
    seen: &mut std::collections::HashSet<String>,
    addr: &str,
    origin: &str,
    art: &[u8],
) -> Result<bool> {
    let id = nntp::header(art, "message-id").unwrap_or_else(|| hex::encode(Sha256::digest(art)));
    if seen.contains(&id) {
        return Ok(false);
    }
    let mut data = format!("X-Nym-For: {addr}\nX-Nym-Origin: {origin}\n").into_bytes();
    data.extend_from_slice(art);
    maildir_deliver(&store.maildir(), &data)?;
    store.state_append("seen-ids", &id)?;
    seen.insert(id);
    Ok(true)
}

/// Maildir delivery: write to tmp/, sync, rename into new/.
pub fn maildir_deliver(maildir: &Path, data: &[u8]) -> Result<PathBuf> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut r = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut r);
    let name =
        format!("{}.M{}P{}R{}.nym", now.as_secs(), now.subsec_micros(), std::process::id(), hex::encode(r));
    let tmp = maildir.join("tmp").join(&name);
    let new = maildir.join("new").join(&name);
    {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &new).map_err(|e| anyhow!("storing {}: {e}", new.display()))?;
    if let Ok(d) = fs::File::open(maildir.join("new")) {
        let _ = d.sync_all();
    }
    Ok(new)
}

/// A one-line progress bar on standard error, shown only on a terminal
/// and only for long downloads.
struct Progress {
    label: String,
    total: u64,
    done: u64,
    kept: u64,
    on: bool,
    last: Instant,
}

impl Progress {
    fn new(label: &str, total: u64, quiet: bool) -> Progress {
        let on = !quiet && total >= 200 && std::io::stderr().is_terminal();
        Progress { label: label.to_string(), total, done: 0, kept: 0, on, last: Instant::now() }
    }

    fn step(&mut self) {
        self.done += 1;
        if self.on && (self.last.elapsed() > Duration::from_millis(100) || self.done == self.total) {
            self.last = Instant::now();
            let width = 30;
            let filled = (self.done * width / self.total.max(1)) as usize;
            eprint!(
                "\r{} [{}{}] {}/{} articles, {} kept",
                self.label,
                "#".repeat(filled),
                ".".repeat(width as usize - filled),
                self.done,
                self.total,
                self.kept
            );
        }
    }

    fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            Source::parse("nntps://news.example").unwrap(),
            Source::Nntp { host: "news.example".into(), port: 563, tls: NntpTls::Implicit }
        );
        assert_eq!(
            Source::parse("news.example:1119").unwrap(),
            Source::Nntp { host: "news.example".into(), port: 1119, tls: NntpTls::None }
        );
        let st = Source::parse("nntp+starttls://news.example").unwrap();
        assert_eq!(st, Source::Nntp { host: "news.example".into(), port: 119, tls: NntpTls::StartTls });
        assert_eq!(st.key("g"), Source::parse("nntp://news.example").unwrap().key("g"));
        assert_eq!(Source::parse("spool:/var/x").unwrap(), Source::Spool("/var/x".into()));
        assert!(Source::parse("gopher://x").is_err());
    }

    #[test]
    fn subjects_match_hsub_and_fixed_subject() {
        let a = NymRecord { address: "a@x".into(), hsub: Some("panda".into()), ..Default::default() };
        let b = NymRecord { address: "b@x".into(), subject: Some("my words".into()), ..Default::default() };
        let m = Matcher { nyms: vec![a, b], try_all: vec![] };
        assert_eq!(m.by_subject(&hsub::hsub(b"panda", 48)), Some("a@x"));
        assert_eq!(m.by_subject(" my words "), Some("b@x"));
        assert_eq!(m.by_subject(&hsub::hsub(b"koala", 48)), None);
    }
}
