//! The MTA's recipient table: every address nymgate delivers for, so that
//! Postfix and Exim refuse any other at RCPT time instead of accepting it
//! and bouncing later to a forged sender (backscatter).
//!
//! The file holds `address address` lines, which Postfix reads as a
//! `texthash:` table and Exim as `lsearch` (the value is the address again,
//! an untainted string Exim may pass to the pipe transport). It names
//! nyms, so it is as private as the MTA allows: mode 0640, for the group
//! the MTA reads it as. The state database stays private to nymgate.

use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::config::Config;
use crate::protocol::address::{Responder, Service, CONFIRM, FORWARDED, REMAILER};
use crate::store::{self, Store};

/// The table's lines for these nyms.
pub fn lines(cfg: &Config, nyms: &[(String, String)]) -> String {
    let mut all: Vec<String> = Vec::new();
    for d in &cfg.domains {
        for s in Service::ALL {
            all.push(format!("{}@{d}", s.local()));
        }
        for f in FORWARDED {
            all.push(format!("{f}@{d}"));
        }
        // confirm+COOKIE@D: with recipient_delimiter = +, this line covers it.
        all.push(format!("{CONFIRM}@{d}"));
        // The Type I remailer only when it is on: off, it is refused at RCPT.
        if cfg.remailer.enabled {
            all.push(format!("{REMAILER}@{d}"));
        }
        // Only the responders that are on: the others are refused at RCPT.
        for r in Responder::ALL.iter().filter(|r| cfg.autoresponders.serves(**r)) {
            all.push(format!("{}@{d}", r.local()));
        }
    }
    all.extend(nyms.iter().filter(|(_, d)| cfg.hosts(d)).map(|(l, d)| format!("{l}@{d}")));
    all.sort();
    all.dedup();
    all.iter().map(|a| format!("{a} {a}\n")).collect()
}

/// Rewrite the table from the store. Writers are serialised by the
/// database's write lock, so the last table written reflects the last
/// commit.
pub fn rewrite(cfg: &Config, store: &mut Store) -> Result<()> {
    let tx = store.write()?;
    let text = lines(cfg, &store::all_addresses(&tx)?);
    write_atomic(&cfg.recipient_table(), text.as_bytes())?;
    drop(tx);
    Ok(())
}

/// Rewrite, and only log a failure: the change it follows is committed,
/// and the next change or `nymgate check` repairs the table.
pub fn rewrite_or_log(cfg: &Config, store: &mut Store) {
    if rewrite(cfg, store).is_err() {
        crate::logging::event("recipients", "table_not_written");
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut rnd = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut rnd);
    let tmp = dir.join(format!(".recipients.{}.tmp", hex::encode(rnd)));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o640)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let res = (|| -> Result<()> {
        f.write_all(data)?;
        // umask may have taken the group bit away.
        f.set_permissions(std::fs::Permissions::from_mode(0o640))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Whether the table on disk is what the store says (for `nymgate check`).
pub fn is_current(cfg: &Config, store: &Store) -> Result<bool> {
    let want = lines(cfg, &store::all_addresses(store)?);
    Ok(std::fs::read_to_string(cfg.recipient_table()).map(|t| t == want).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_services_forwarded_names_and_nyms_of_hosted_domains() {
        let cfg = Config::for_tests(&["a.example", "b.example"]);
        let t = lines(&cfg, &[("alice".into(), "a.example".into()), ("x".into(), "gone.example".into())]);
        for want in [
            "config@a.example",
            "send@b.example",
            "url@a.example",
            "postmaster@b.example",
            "abuse@a.example",
            "confirm@b.example",
            "alice@a.example",
        ] {
            assert!(t.contains(&format!("{want} {want}\n")), "{want} missing:\n{t}");
        }
        assert!(!t.contains("gone.example"));
        assert!(!t.contains("admin@"));
    }

    #[test]
    fn table_lists_the_autoresponders_that_are_on_and_not_list_by_default() {
        let mut cfg = Config::for_tests(&["a.example"]);
        let t = lines(&cfg, &[]);
        for want in ["help@a.example", "remailer-key@a.example", "nobody@a.example"] {
            assert!(t.contains(&format!("{want} {want}\n")), "{want} missing:\n{t}");
        }
        assert!(!t.contains("list@") && !t.contains("used@"), "{t}");
        cfg.autoresponders.list = true;
        let t = lines(&cfg, &[]);
        assert!(t.contains("list@a.example list@a.example\n") && t.contains("used@a.example"), "{t}");
    }

    /// Postfix's lookup of a recipient in `relay_recipient_maps`
    /// (texthash, lowercased keys): the address, then, with
    /// `recipient_delimiter = +`, the address without its extension. Exim's
    /// `local_part_suffix = +*` does the second lookup the same way.
    fn postfix_accepts(table: &str, rcpt: &str, delimiter: bool) -> bool {
        let rcpt = rcpt.to_ascii_lowercase();
        let keys: Vec<&str> = table.lines().filter_map(|l| l.split(' ').next()).collect();
        let (local, domain) = rcpt.rsplit_once('@').unwrap();
        keys.contains(&rcpt.as_str())
            || (delimiter
                && local
                    .split_once('+')
                    .is_some_and(|(b, _)| keys.contains(&format!("{b}@{domain}").as_str())))
    }

    #[test]
    fn confirm_cookie_addresses_pass_the_table_in_every_hosted_domain() {
        let cfg = Config::for_tests(&["a.example", "b.example"]);
        let t = lines(&cfg, &[("quill".into(), "a.example".into())]);
        for d in ["a.example", "B.Example"] {
            let rcpt = format!("confirm+0123456789ABCDEF0123456789abcdef@{d}");
            assert!(postfix_accepts(&t, &rcpt, true), "{rcpt} refused:\n{t}");
            // Without the delimiter no table line can match a cookie (they are
            // stored hashed, so none is listed): postfix/setup.sh's regexp map
            // lets these through, tested in tests/e2e/run.
            assert!(!postfix_accepts(&t, &rcpt, false));
        }
        assert!(postfix_accepts(&t, "quill+news@a.example", true));
        assert!(!postfix_accepts(&t, "confirm+x@other.example", true));
        assert!(!postfix_accepts(&t, "nosuch+x@a.example", true));
    }

    #[test]
    fn table_lists_remailer_only_when_enabled() {
        let mut cfg = Config::for_tests(&["a.example"]);
        assert!(!lines(&cfg, &[]).contains("remailer@a.example "));
        cfg.remailer.enabled = true;
        assert!(lines(&cfg, &[]).contains("remailer@a.example remailer@a.example\n"));
    }

    #[test]
    fn table_is_replaced_atomically_with_group_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("recipients");
        write_atomic(&p, b"one\n").unwrap();
        write_atomic(&p, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two\n");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left");
    }
}
