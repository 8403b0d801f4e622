//! High-water marks and dropped connections, against a tiny scripted NNTP
//! server (real INN cannot be told to hang up in the middle of an article).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::util::*;

#[derive(Default)]
struct State {
    articles: BTreeMap<u64, (String, String)>,
    /// (connection number, article number): hang up half-way through it.
    drop_at: Option<(usize, u64)>,
    /// Commands received, per connection.
    log: Vec<Vec<String>>,
}

struct FakeNntp {
    port: u16,
    state: Arc<Mutex<State>>,
    tls: bool,
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

impl FakeNntp {
    /// With a TLS server configuration, the server speaks nntps.
    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> FakeNntp {
        let with_tls = tls.is_some();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                let conn_no = {
                    let mut s = st.lock().unwrap();
                    s.log.push(Vec::new());
                    s.log.len() - 1
                };
                let st = st.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let conn: Box<dyn Conn> = match tls {
                        Some(cfg) => Box::new(rustls::StreamOwned::new(
                            rustls::ServerConnection::new(cfg).unwrap(),
                            conn,
                        )),
                        None => Box::new(conn),
                    };
                    serve(conn, conn_no, st)
                });
            }
        });
        FakeNntp { port, state, tls: with_tls }
    }

    fn add(&self, n: u64, subject: &str, text: &str) {
        let art = format!(
            "Path: fake!not-for-mail\nFrom: Nobody <nobody@nym.test>\nSubject: {subject}\n\
             Newsgroups: alt.anonymous.messages\nMessage-ID: <{n}@fake>\n\n{text}\n"
        );
        self.state.lock().unwrap().articles.insert(n, (subject.to_string(), art));
    }

    fn log(&self, conn: usize) -> Vec<String> {
        self.state.lock().unwrap().log.get(conn).cloned().unwrap_or_default()
    }

    fn connections(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    fn url(&self) -> String {
        if self.tls {
            format!("nntps://localhost:{}", self.port)
        } else {
            format!("nntp://127.0.0.1:{}", self.port)
        }
    }
}

fn serve(conn: Box<dyn Conn>, conn_no: usize, st: Arc<Mutex<State>>) {
    let mut r = BufReader::new(conn);
    let _ = r.get_mut().write_all(b"200 fake news server ready\r\n");
    let _ = r.get_mut().flush();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_string();
        let mut s = st.lock().unwrap();
        s.log[conn_no].push(line.clone());
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let arg = words.next().unwrap_or("");
        let reply = match verb.as_str() {
            "MODE" => "200 reader\r\n".to_string(),
            "GROUP" => {
                let (first, last) = (
                    s.articles.keys().next().copied().unwrap_or(1),
                    s.articles.keys().last().copied().unwrap_or(0),
                );
                format!("211 {} {first} {last} {arg}\r\n", s.articles.len())
            }
            "OVER" | "XOVER" => {
                let (a, b) = arg.split_once('-').unwrap();
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                let mut out = "224 overview follows\r\n".to_string();
                for (n, (subj, _)) in s.articles.range(a..=b) {
                    out.push_str(&format!("{n}\t{subj}\tNobody\tdate\t<{n}@fake>\t\t100\t3\r\n"));
                }
                out.push_str(".\r\n");
                out
            }
            "ARTICLE" => {
                let n: u64 = arg.parse().unwrap();
                match s.articles.get(&n) {
                    None => "423 no such article\r\n".to_string(),
                    Some((_, art)) => {
                        let mut out = format!("220 {n} <{n}@fake>\r\n");
                        for l in art.lines() {
                            if l.starts_with('.') {
                                out.push('.');
                            }
                            out.push_str(l);
                            out.push_str("\r\n");
                        }
                        out.push_str(".\r\n");
                        if s.drop_at == Some((conn_no, n)) {
                            // Half an article, then the line goes dead.
                            let _ = r.get_mut().write_all(&out.as_bytes()[..out.len() / 2]);
                            let _ = r.get_mut().flush();
                            return;
                        }
                        out
                    }
                }
            }
            "QUIT" => {
                let _ = r.get_mut().write_all(b"205 bye\r\n");
                let _ = r.get_mut().flush();
                return;
            }
            _ => "500 what?\r\n".to_string(),
        };
        drop(s);
        if r.get_mut().write_all(reply.as_bytes()).and_then(|_| r.get_mut().flush()).is_err() {
            return;
        }
    }
}

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

/// A CA and a server certificate for `localhost`, made with openssl.
fn tls_setup(dir: &std::path::Path) -> (Arc<rustls::ServerConfig>, PathBuf) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let sh = |script: &str| ok(std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir), None);
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null");
    sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null && \
        printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext && \
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
        -extfile ext 2>/dev/null");
    let certs: Vec<CertificateDer> =
        CertificateDer::pem_file_iter(dir.join("srv.pem")).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("srv.key")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    (Arc::new(cfg), dir.join("ca.pem"))
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
