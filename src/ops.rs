//! The operator's views: `status`, `queue` and `check`. They show counts,
//! ages and fixed reasons, never a nym name, an address or content.

use anyhow::Result;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::admin::open_store;
use crate::config::{Config, MailTransport, NewsTransport};
use crate::store::{self, Db};

/// Nyms by state: (active, disabled, expired).
fn nym_states(db: &impl Db, now: i64) -> Result<(usize, usize, usize)> {
    let (mut a, mut d, mut e) = (0, 0, 0);
    for n in store::all_nyms(db)? {
        if n.disabled {
            d += 1
        } else if n.expired(now) {
            e += 1
        } else {
            a += 1
        }
    }
    Ok((a, d, e))
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Attempts from which an item counts as "stuck" in the status.
const STUCK_ATTEMPTS: i64 = 5;

pub fn status(cfg: &Config, json: bool, out: &mut impl Write) -> Result<()> {
    let store = open_store(cfg)?;
    let now = store::now();
    let (active, disabled, expired) = nym_states(&store, now)?;
    let queue = store::queue_summary(&store, now, STUCK_ATTEMPTS)?;
    let given_up = store::given_up_counts(&store)?;
    let (_, held, held_bytes) = store::held_counts(&store, &[])?;
    let db = cfg.db_path();
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    let last_flush = store::meta_get(&store, "last_flush")?;
    if json {
        let q: Vec<String> = queue
            .iter()
            .map(|(k, n, due, oldest, stuck)| {
                format!(
                    "{{\"kind\":{},\"queued\":{n},\"due\":{due},\"oldest_due_age\":{},\"stuck\":{stuck}}}",
                    json_str(k),
                    oldest.map(|t| (now - t).to_string()).unwrap_or("null".into())
                )
            })
            .collect();
        let g: Vec<String> = given_up
            .iter()
            .map(|(k, r, n)| format!("{{\"kind\":{},\"reason\":{},\"count\":{n}}}", json_str(k), json_str(r)))
            .collect();
        writeln!(
            out,
            "{{\"nyms\":{{\"active\":{active},\"disabled\":{disabled},\"expired\":{expired}}},\
             \"outbox\":[{}],\"given_up\":[{}],\"held\":{{\"count\":{held},\"bytes\":{held_bytes}}},\
             \"database_bytes\":{},\"wal_bytes\":{},\"last_flush\":{},\"stuck_attempts\":{STUCK_ATTEMPTS}}}",
            q.join(","),
            g.join(","),
            file_size(&db),
            file_size(&wal),
            last_flush.map(|t| t.to_string()).unwrap_or("null".into())
        )?;
        return Ok(());
    }
    writeln!(out, "nyms:        {active} active, {disabled} disabled, {expired} expired")?;
    if queue.is_empty() {
        writeln!(out, "outbox:      empty")?;
    }
    for (k, n, due, oldest, stuck) in &queue {
        let age = oldest.map(|t| format!(", oldest due {}s ago", now - t)).unwrap_or_default();
        writeln!(
            out,
            "outbox:      {k}: {n} queued, {due} due{age}, {stuck} with {STUCK_ATTEMPTS}+ attempts"
        )?;
    }
    for (k, r, n) in &given_up {
        writeln!(out, "given up:    {k}: {n} ({r})")?;
    }
    writeln!(out, "held:        {held} message(s), {held_bytes} bytes")?;
    writeln!(out, "database:    {} bytes, WAL {} bytes", file_size(&db), file_size(&wal))?;
    match last_flush {
        Some(t) => writeln!(out, "last flush:  {}s ago", now - t)?,
        None => writeln!(out, "last flush:  never")?,
    }
    Ok(())
}

pub fn queue_list(cfg: &Config, out: &mut impl Write) -> Result<()> {
    let store = open_store(cfg)?;
    let now = store::now();
    writeln!(out, "id\tkind\tage\tdue_in\tattempts\tbytes\tlast_error")?;
    for q in store::queue_list(&store)? {
        writeln!(
            out,
            "{}\t{}\t{}s\t{}s\t{}\t{}\t{}",
            q.id,
            q.kind,
            now - q.created,
            (q.due - now).max(0),
            q.attempts,
            q.size,
            q.last_error.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

pub fn queue_retry(cfg: &Config, id: i64) -> Result<bool> {
    let store = open_store(cfg)?;
    store::queue_retry(&store, id, store::now())
}

pub fn queue_drop(cfg: &Config, id: i64) -> Result<bool> {
    let store = open_store(cfg)?;
    store::queue_drop(&store, id)
}

/// One line of `check`: what was checked and whether it holds.
pub struct Finding {
    pub ok: bool,
    pub what: String,
}

fn private(p: &Path) -> Finding {
    let what = format!("{} is private (no group or other access)", p.display());
    match std::fs::metadata(p) {
        Ok(m) => Finding { ok: m.permissions().mode() & 0o077 == 0, what },
        Err(_) => Finding { ok: false, what: format!("{} exists", p.display()) },
    }
}

fn executable(argv0: &str) -> bool {
    let p = Path::new(argv0);
    let found = if p.is_absolute() {
        Some(p.to_path_buf())
    } else {
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).map(|d| d.join(argv0)).find(|c| c.is_file()))
    };
    found.and_then(|f| std::fs::metadata(f).ok()).is_some_and(|m| m.permissions().mode() & 0o111 != 0)
}

pub fn check(cfg: &Config) -> Result<Vec<Finding>> {
    let mut f = vec![private(&cfg.home), private(&cfg.db_path()), private(&cfg.key_path())];
    for ext in ["-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{ext}", cfg.db_path().display()));
        if p.exists() {
            f.push(private(&p));
        }
    }
    // A key rotation under way: its files private, and the old secret
    // gone once the grace period is over (the timer's flush retires it).
    if crate::rotation::previous_path(cfg).exists() {
        f.push(private(&crate::rotation::previous_path(cfg)));
        let over =
            crate::rotation::previous(cfg).ok().flatten().map(|p| crate::store::now() >= p.until + 86400);
        f.push(Finding {
            ok: over == Some(false),
            what: "the previous server key is within its grace period (a flush retires it after)".into(),
        });
    }
    let key = crate::admin::key_user_ids(cfg);
    for d in &cfg.domains {
        for s in crate::protocol::address::Service::ALL.iter().filter(|s| s.in_server_key()) {
            let addr = format!("{}@{d}", s.local());
            let ok = key.as_ref().is_ok_and(|uids| uids.iter().any(|u| u.contains(&format!("<{addr}>"))));
            f.push(Finding { ok, what: format!("the server key has a User ID for {addr}") });
        }
        // Keys made before the remailer existed lack it: `key add-domain D`
        // adds it. Only asked for when the remailer is served.
        if cfg.remailer.enabled {
            let addr = format!("{}@{d}", crate::protocol::address::REMAILER);
            let ok = key.as_ref().is_ok_and(|uids| uids.iter().any(|u| u.contains(&format!("<{addr}>"))));
            f.push(Finding { ok, what: format!("the server key has a User ID for {addr}") });
        }
    }
    match cfg.mail.transport {
        MailTransport::Sendmail => {
            let argv0 = cfg.mail.sendmail.first().cloned().unwrap_or_default();
            f.push(Finding { ok: executable(&argv0), what: format!("sendmail {argv0} is executable") });
        }
        MailTransport::Spool => f.push(Finding {
            ok: cfg.mail.spool.is_dir(),
            what: format!("mail spool {} exists", cfg.mail.spool.display()),
        }),
    }
    match cfg.news.transport {
        NewsTransport::Inews => {
            let argv0 = cfg.news.inews.first().cloned().unwrap_or_default();
            f.push(Finding { ok: executable(&argv0), what: format!("inews {argv0} is executable") });
            let active = std::fs::read_to_string("/var/lib/news/active").unwrap_or_default();
            let group = &cfg.news.newsgroup;
            f.push(Finding {
                ok: active.lines().any(|l| l.split_whitespace().next() == Some(group.as_str())),
                what: format!("the news server has the group {group} (/var/lib/news/active)"),
            });
        }
        NewsTransport::Nntp => {
            let server = &cfg.news.nntp_server;
            let t = std::time::Duration::from_secs(cfg.delivery.transport_timeout.clamp(1, 10));
            f.push(Finding {
                ok: crate::transport::nntp_greets(server, t),
                what: format!("the news server {server} greets us as a peer"),
            });
        }
        NewsTransport::Spool => f.push(Finding {
            ok: cfg.news.spool.is_dir(),
            what: format!("news spool {} exists", cfg.news.spool.display()),
        }),
    }
    let store = open_store(cfg)?;
    f.push(Finding {
        ok: crate::recipients::is_current(cfg, &store)?,
        what: format!("the recipient table {} is current", cfg.recipient_table().display()),
    });
    Ok(f)
}
