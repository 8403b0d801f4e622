//! `--proxy socks5h://...` through the loopback SOCKS5 server of
//! `util::socks`: fetches and hand-offs go through it with names the proxy
//! resolves (`.onion` too), each nym with its own credentials, and a proxy
//! that is down lets nothing through.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::mail::{FakeSmtp, SmtpOpts};
use crate::util::news::{FakeNntp, NewsTls};
use crate::util::socks::{dead_port, Socks};
use crate::util::tls::tls_setup;
use crate::util::*;

pub(super) struct Env {
    pub t: tempfile::TempDir,
    pub home: PathBuf,
    pub g: PathBuf,
}

/// A store with two nyms (alice and bob at nym.test), nothing sent.
pub(super) fn env() -> Env {
    let t = tempfile::tempdir().unwrap();
    let g = gnupg_home(t.path());
    let key = t.path().join("server.asc");
    fs::write(&key, gpg_server_key(&g, "nym.test")).unwrap();
    let home = t.path().join("home");
    for n in ["alice", "bob"] {
        ok(
            nym(&home, &g)
                .args(["new", &format!("{n}@nym.test"), "--hsub", n, "--no-request", "--server-key"])
                .arg(&key),
            None,
        );
    }
    Env { t, home, g }
}

impl Env {
    pub fn run(&self, args: &[&str]) -> Output {
        run(nym(&self.home, &self.g).args(args), Some(b"hello\n"))
    }
    pub fn ok(&self, args: &[&str]) -> String {
        ok(nym(&self.home, &self.g).args(args), Some(b"hello\n"))
    }
    pub fn set_config(&self, toml: &str) {
        fs::write(self.home.join("config.toml"), toml).unwrap();
    }
}

/// Three of alice's articles among six.
pub(super) fn news(mode: NewsTls) -> FakeNntp {
    let news = FakeNntp::start_mode(mode);
    for n in 1..=6 {
        if n % 2 == 0 {
            news.add(n, &nymgate::protocol::hsub::hsub(b"alice", 48), &format!("ours {n}"));
        } else {
            news.add(n, &nymgate::protocol::hsub::random_subject(48), &format!("not ours {n}"));
        }
    }
    news
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ca(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn fetch_goes_through_the_proxy_over_nntp_nntps_and_starttls() {
    let e = env();
    let (cfg, ca_file) = tls_setup(e.t.path());
    let socks = Socks::start();
    let plain = news(NewsTls::None);
    let out =
        e.ok(&["--proxy", &socks.url(), "fetch", "--server", &format!("nntp://localhost:{}", plain.port)]);
    assert!(out.contains("6 examined, 3 kept"), "{out}");
    let r = socks.requests();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].host.as_str(), r[0].atyp, r[0].port), ("localhost", 3, plain.port), "sent as a name");
    assert!(r[0].user.starts_with("run-") && !r[0].pass.is_empty(), "{:?}", r[0]);

    // The proxy from config.toml, for nntps and nntp+starttls.
    e.set_config(&format!("proxy = \"{}\"\n", socks.url()));
    let tls = news(NewsTls::Implicit(cfg.clone()));
    let starttls = news(NewsTls::StartTls(cfg));
    for url in
        [format!("nntps://localhost:{}", tls.port), format!("nntp+starttls://localhost:{}", starttls.port)]
    {
        let out = e.ok(&["fetch", "--server", &url, "--ca-file", ca(&ca_file)]);
        assert!(out.contains("6 examined"), "{url}: {out}");
    }
    let r = socks.requests();
    assert_eq!(r.len(), 3);
    assert_eq!((r[1].host.as_str(), r[1].port), ("localhost", tls.port));
    assert_eq!((r[2].host.as_str(), r[2].port), ("localhost", starttls.port));
    assert!(starttls.log(0).contains(&"(tls)".to_string()));
    // A fetch is not a nym's: each run has its own credentials.
    assert!(r[0].user != r[1].user && r[1].user != r[2].user, "{r:?}");
    assert_eq!(plain.connections() + tls.connections() + starttls.connections(), 3);
}

#[test]
fn requests_go_through_the_proxy_and_each_nym_has_its_own_credentials() {
    let e = env();
    let (cfg, ca_file) = tls_setup(e.t.path());
    let socks = Socks::start();
    let plain = FakeSmtp::start(SmtpOpts::default());
    let starttls = FakeSmtp::start(SmtpOpts { tls: Some(cfg.clone()), ..Default::default() });
    let smtps = FakeSmtp::start(SmtpOpts { tls: Some(cfg), implicit: true, ..Default::default() });
    let p = socks.url();
    let via_plain = format!("smtp://localhost:{}", plain.port);
    let via_starttls = format!("smtp+starttls://localhost:{}", starttls.port);
    let via_smtps = format!("smtps://localhost:{}", smtps.port);
    let c = ca(&ca_file);
    e.ok(&["--proxy", &p, "send", "alice@nym.test", "--to", "carol@example.org", "--via", &via_plain]);
    e.ok(&["--proxy", &p, "config", "alice@nym.test", "--via", &via_starttls, "--ca-file", c]);
    e.ok(&["--proxy", &p, "config", "bob@nym.test", "--via", &via_smtps, "--ca-file", c]);
    e.ok(&["--proxy", &p, "url", "alice@nym.test", "http://example.org/", "--key", "k", "--via", &via_plain]);

    let r = socks.requests();
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(r.iter().all(|q| q.host == "localhost" && q.atyp == 3), "{r:?}");
    let creds: Vec<(&str, &str)> = r.iter().map(|q| (q.user.as_str(), q.pass.as_str())).collect();
    assert_eq!(creds[0], creds[1], "alice: the same credentials in every run");
    assert_ne!(creds[0], creds[2], "bob's differ from alice's");
    assert!(creds[0].0.starts_with("nym-") && !creds[0].0.contains("alice"), "{creds:?}");
    assert!(creds[3] != creds[0] && creds[3] != creds[2], "url@ is not tied to the nym");

    let (p, s, t) = (plain.sessions(), starttls.sessions(), smtps.sessions());
    assert_eq!((p.len(), s.len(), t.len()), (2, 1, 1));
    assert!(p[0].data.contains("To: send@nym.test\r\n") && p[1].data.contains("To: url@nym.test\r\n"));
    assert!(s[0].cmds.contains(&"STARTTLS".to_string()) && s[0].data.contains("To: config@nym.test\r\n"));
    assert!(t[0].data.contains("To: config@nym.test\r\n"));
}

#[test]
fn onion_names_reach_the_proxy_unresolved_and_need_one() {
    let e = env();
    let socks = Socks::start();
    let plain = news(NewsTls::None);
    let smtp = FakeSmtp::start(SmtpOpts::default());
    let onion = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion";
    let nntp_url = format!("nntp://{onion}:{}", plain.port);
    let smtp_url = format!("smtp://{onion}:{}", smtp.port);
    let out = e.ok(&["--proxy", &socks.url(), "fetch", "--server", &nntp_url]);
    assert!(out.contains("6 examined, 3 kept"), "{out}");
    e.ok(&["--proxy", &socks.url(), "config", "alice@nym.test", "--via", &smtp_url]);
    let r = socks.requests();
    assert_eq!(r.len(), 2);
    for (q, port) in r.iter().zip([plain.port, smtp.port]) {
        assert_eq!((q.host.as_str(), q.atyp, q.port), (onion, 3, port), "the name, not an address");
    }

    // No proxy: refused before any connection, with what to do.
    for args in [
        &["fetch", "--server", nntp_url.as_str()][..],
        &["config", "alice@nym.test", "--via", smtp_url.as_str()],
    ] {
        let out = e.run(args);
        assert_eq!(out.status.code(), Some(78), "{out:?}");
        let err = err(&out);
        assert!(err.contains("is a Tor onion service and no proxy is set"), "{err}");
        assert!(err.contains("nym: give --proxy socks5h://127.0.0.1:9050"), "{err}");
    }
    assert_eq!((plain.connections(), smtp.sessions().len()), (1, 1));
}

#[test]
fn a_proxy_that_is_down_lets_nothing_through() {
    let e = env();
    let plain = news(NewsTls::None);
    let smtp = FakeSmtp::start(SmtpOpts::default());
    let down = format!("socks5h://127.0.0.1:{}", dead_port());
    let via = format!("smtp://127.0.0.1:{}", smtp.port);
    let check = |out: Output| {
        assert_eq!(out.status.code(), Some(75), "{out:?}");
        let err = err(&out);
        assert!(err.contains(&format!("cannot reach the proxy {down}")), "{err}");
        assert!(err.contains("nothing goes around the proxy"), "{err}");
        assert!(err.contains("nym: start Tor (or the proxy) and run the command again"), "{err}");
    };
    check(e.run(&["--proxy", &down, "fetch", "--server", &plain.url()]));
    check(e.run(&["--proxy", &down, "send", "alice@nym.test", "--to", "carol@example.org", "--via", &via]));
    // The same from config.toml.
    e.set_config(&format!("proxy = \"{down}\"\n"));
    check(e.run(&["fetch", "--server", &plain.url()]));
    check(e.run(&["config", "alice@nym.test", "--via", &via]));
    assert_eq!(plain.connections(), 0, "the news server saw no connection");
    assert_eq!(smtp.sessions().len(), 0, "the mail server saw no connection");
    // Only an explicit `--proxy none` goes straight.
    e.ok(&["--proxy", "none", "config", "alice@nym.test", "--via", &via]);
    assert_eq!(smtp.sessions().len(), 1);
}
