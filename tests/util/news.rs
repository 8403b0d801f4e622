//! A tiny scripted NNTP server (real INN cannot be told to hang up in the
//! middle of an article): plain, nntps, or plain with STARTTLS (RFC 4642).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::tls::{server_tls, Conn};

#[derive(Default)]
pub struct State {
    pub articles: BTreeMap<u64, (String, String)>,
    /// (connection number, article number): hang up half-way through it.
    pub drop_at: Option<(usize, u64)>,
    /// Commands received, per connection; `(tls)` marks where TLS began.
    pub log: Vec<Vec<String>>,
}

/// How the server protects its connections.
#[derive(Clone)]
pub enum NewsTls {
    None,
    Implicit(Arc<rustls::ServerConfig>),
    /// STARTTLS offered in CAPABILITIES until TLS is on.
    StartTls(Arc<rustls::ServerConfig>),
}

pub struct FakeNntp {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
    pub tls: bool,
}

impl FakeNntp {
    /// With a TLS server configuration, the server speaks nntps.
    pub fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> FakeNntp {
        FakeNntp::start_mode(match tls {
            Some(c) => NewsTls::Implicit(c),
            None => NewsTls::None,
        })
    }

    pub fn start_mode(mode: NewsTls) -> FakeNntp {
        let with_tls = matches!(mode, NewsTls::Implicit(_));
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
                let mode = mode.clone();
                std::thread::spawn(move || {
                    let (conn, starttls): (Box<dyn Conn>, _) = match mode {
                        NewsTls::Implicit(cfg) => (server_tls(&cfg, Box::new(conn)), None),
                        NewsTls::StartTls(cfg) => (Box::new(conn), Some(cfg)),
                        NewsTls::None => (Box::new(conn), None),
                    };
                    serve(conn, conn_no, st, starttls)
                });
            }
        });
        FakeNntp { port, state, tls: with_tls }
    }

    pub fn add(&self, n: u64, subject: &str, text: &str) {
        let art = format!(
            "Path: fake!not-for-mail\nFrom: Nobody <nobody@nym.test>\nSubject: {subject}\n\
             Newsgroups: alt.anonymous.messages\nMessage-ID: <{n}@fake>\n\n{text}\n"
        );
        self.state.lock().unwrap().articles.insert(n, (subject.to_string(), art));
    }

    pub fn log(&self, conn: usize) -> Vec<String> {
        self.state.lock().unwrap().log.get(conn).cloned().unwrap_or_default()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    pub fn url(&self) -> String {
        if self.tls {
            format!("nntps://localhost:{}", self.port)
        } else {
            format!("nntp://127.0.0.1:{}", self.port)
        }
    }
}

fn serve(
    conn: Box<dyn Conn>,
    conn_no: usize,
    st: Arc<Mutex<State>>,
    mut starttls: Option<Arc<rustls::ServerConfig>>,
) {
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
            "CAPABILITIES" => {
                let mut out = "101 capability list\r\nVERSION 2\r\nREADER\r\nOVER\r\n".to_string();
                if starttls.is_some() {
                    out.push_str("STARTTLS\r\n");
                }
                out.push_str(".\r\n");
                out
            }
            "STARTTLS" if starttls.is_some() => {
                drop(s);
                let _ = r.get_mut().write_all(b"382 continue with TLS negotiation\r\n");
                let _ = r.get_mut().flush();
                let cfg = starttls.take().unwrap();
                r = BufReader::new(server_tls(&cfg, r.into_inner()));
                st.lock().unwrap().log[conn_no].push("(tls)".into());
                continue;
            }
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
