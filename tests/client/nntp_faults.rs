//! High-water marks and dropped connections, against the scripted NNTP
//! server of `util::news`.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use crate::util::news::FakeNntp;
use crate::util::tls::tls_setup;
use crate::util::*;

struct Env {
    _t: tempfile::TempDir,
    home: PathBuf,
    g: PathBuf,
    news: FakeNntp,
}

fn env() -> Env {
    env_with(None)
}

fn env_with(tls: Option<Arc<rustls::ServerConfig>>) -> Env {
    let t = tempfile::tempdir().unwrap();
    let g = gnupg_home(t.path());
    let key = t.path().join("server.asc");
    fs::write(&key, gpg_server_key(&g, "nym.test")).unwrap();
    let home = t.path().join("home");
    ok(
        nym(&home, &g)
            .args(["new", "alice@nym.test", "--hsub", "panda", "--no-request", "--server-key"])
            .arg(&key),
        None,
    );
    let news = FakeNntp::start_with(tls);
    for n in 1..=6 {
        if n % 2 == 0 {
            let body = format!("ours {n}\n.a line that starts with a dot\n");
            news.add(n, &nymgate::protocol::hsub::hsub(b"panda", 48), &body);
        } else {
            news.add(n, &nymgate::protocol::hsub::random_subject(48), &format!("not ours {n}"));
        }
    }
    Env { home, g, news, _t: t }
}

impl Env {
    fn fetch(&self, extra: &[&str]) -> std::process::Output {
        run(nym(&self.home, &self.g).args(["fetch", "--server", &self.news.url()]).args(extra), None)
    }

    fn stored(&self) -> Vec<String> {
        maildir(&self.home, "new").iter().map(|p| fs::read_to_string(p).unwrap()).collect()
    }
}

fn articles_requested(log: &[String]) -> Vec<String> {
    log.iter().filter(|l| l.starts_with("ARTICLE")).cloned().collect()
}

#[test]
fn high_water_marks_read_each_article_once() {
    let e = env();
    let out = e.fetch(&[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 examined, 3 kept"));
    assert_eq!(articles_requested(&e.news.log(0)), ["ARTICLE 2", "ARTICLE 4", "ARTICLE 6"]);
    let stored = e.stored();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|a| a.contains("\n.a line that starts with a dot\n")), "dot-stuffing undone");

    // New articles arrive; only they are looked at.
    e.news.add(7, &nymgate::protocol::hsub::hsub(b"panda", 48), "ours 7");
    e.news.add(8, "something else", "not ours 8");
    let out = e.fetch(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 examined, 1 kept"), "{out:?}");
    let log = e.news.log(1);
    assert!(log.iter().any(|l| l == "OVER 7-8"), "{log:?}");
    assert_eq!(articles_requested(&log), ["ARTICLE 7"]);

    // Nothing new: nothing examined, no article requested.
    let out = e.fetch(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 examined, 0 kept"));
    assert!(articles_requested(&e.news.log(2)).is_empty());
    assert_eq!(e.stored().len(), 4);
}

#[test]
fn a_dropped_connection_loses_nothing() {
    let e = env();
    e.news.state.lock().unwrap().drop_at = Some((0, 4));
    let out = e.fetch(&["--retries", "0"]);
    assert!(!out.status.success(), "a fetch cut short must say so");
    assert!(String::from_utf8_lossy(&out.stderr).contains("run it again"));
    // Article 2 was kept before the drop; half of article 4 was not.
    assert_eq!(e.stored().len(), 1);

    let out = e.fetch(&[]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 kept"), "{out:?}");
    // The second connection starts after the last article fully handled.
    assert_eq!(articles_requested(&e.news.log(1)), ["ARTICLE 4", "ARTICLE 6"]);
    let stored = e.stored();
    assert_eq!(stored.len(), 3);
    for n in [2, 4, 6] {
        assert_eq!(stored.iter().filter(|a| a.contains(&format!("ours {n}\n"))).count(), 1, "article {n}");
    }
}

#[test]
fn fetch_reconnects_after_a_drop() {
    let e = env();
    e.news.state.lock().unwrap().drop_at = Some((0, 6));
    let out = e.fetch(&["--retries", "2"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(e.news.connections(), 2);
    assert_eq!(articles_requested(&e.news.log(1)), ["ARTICLE 6"]);
    assert_eq!(e.stored().len(), 3);
}

#[test]
fn fetch_over_tls_checks_the_certificate() {
    let d = tempfile::tempdir().unwrap();
    let (cfg, ca) = tls_setup(d.path());
    let e = env_with(Some(cfg));
    // Unknown CA: refused, and nothing is marked as read.
    let out = e.fetch(&["--retries", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"), "{out:?}");
    // With the CA: the same articles, high-water mark intact.
    let out = e.fetch(&["--ca-file", ca.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 examined, 3 kept"));
    assert_eq!(e.stored().len(), 3);
}
