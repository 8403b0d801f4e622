//! A scripted SMTP submission server: plain, STARTTLS or implicit TLS,
//! optionally offering AUTH PLAIN and/or LOGIN and requiring a login.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::tls::{server_tls, Conn};

#[derive(Clone, Default)]
pub struct SmtpOpts {
    /// TLS: offered by STARTTLS, or from the first byte when `implicit`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub implicit: bool,
    /// AUTH mechanisms offered in every EHLO answer (also before TLS, so
    /// that a client that logs in without TLS would be caught).
    pub mechanisms: Vec<&'static str>,
    /// The one user and password that log in; MAIL needs a login if set.
    pub login: Option<(String, String)>,
}

/// One SMTP session as the server saw it.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub cmds: Vec<String>,
    pub data: String,
    /// The user that logged in, and over TLS or not.
    pub authed: Option<String>,
    pub auth_in_clear: bool,
    pub failed_logins: u32,
}

pub struct FakeSmtp {
    pub port: u16,
    pub sessions: Arc<Mutex<Vec<Session>>>,
}

impl FakeSmtp {
    pub fn start(opts: SmtpOpts) -> FakeSmtp {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let ss = sessions.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let n = {
                    let mut v = ss.lock().unwrap();
                    v.push(Session::default());
                    v.len() - 1
                };
                let (ss, opts) = (ss.clone(), opts.clone());
                std::thread::spawn(move || serve(Box::new(c), &opts, &ss, n));
            }
        });
        FakeSmtp { port, sessions }
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }
}

fn serve(c: Box<dyn Conn>, o: &SmtpOpts, ss: &Mutex<Vec<Session>>, n: usize) {
    let mut in_tls = o.implicit;
    let c = match (&o.tls, o.implicit) {
        (Some(cfg), true) => server_tls(cfg, c),
        _ => c,
    };
    let mut r = BufReader::new(c);
    let mut authed = false;
    let log = |f: &dyn Fn(&mut Session)| f(&mut ss.lock().unwrap()[n]);
    macro_rules! say {
        ($s:expr) => {
            if r.get_mut().write_all($s.as_bytes()).and_then(|_| r.get_mut().flush()).is_err() {
                return;
            }
        };
    }
    macro_rules! next_line {
        () => {{
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                return;
            }
            l.trim_end().to_string()
        }};
    }
    say!("220 fake ESMTP\r\n");
    loop {
        let line = next_line!();
        log(&|s| s.cmds.push(line.clone()));
        let up = line.to_ascii_uppercase();
        let check = |user: &str, pass: &str| o.login.as_ref().is_some_and(|(u, p)| u == user && p == pass);
        if up.starts_with("EHLO") {
            let mut a = "250-fake\r\n".to_string();
            if o.tls.is_some() && !in_tls {
                a.push_str("250-STARTTLS\r\n");
            }
            if !o.mechanisms.is_empty() {
                a.push_str(&format!("250-AUTH {}\r\n", o.mechanisms.join(" ")));
            }
            a.push_str("250 8BITMIME\r\n");
            say!(a);
        } else if up == "STARTTLS" && o.tls.is_some() && !in_tls {
            say!("220 go ahead\r\n");
            r = BufReader::new(server_tls(o.tls.as_ref().unwrap(), r.into_inner()));
            in_tls = true;
        } else if up.starts_with("AUTH PLAIN") && o.mechanisms.contains(&"PLAIN") {
            let token = match line.get(11..) {
                Some(t) if !t.is_empty() => t.to_string(),
                _ => {
                    say!("334 \r\n");
                    next_line!()
                }
            };
            let dec = decode_base64(&token);
            let parts: Vec<&[u8]> = dec.split(|b| *b == 0).collect();
            let (user, pass) = match parts.as_slice() {
                [_, u, p] => {
                    (String::from_utf8_lossy(u).into_owned(), String::from_utf8_lossy(p).into_owned())
                }
                _ => (String::new(), String::new()),
            };
            authed = finish_auth(&mut r, check(&user, &pass), &user, in_tls, ss, n);
        } else if up == "AUTH LOGIN" && o.mechanisms.contains(&"LOGIN") {
            say!("334 VXNlcm5hbWU6\r\n");
            let user = String::from_utf8_lossy(&decode_base64(&next_line!())).into_owned();
            say!("334 UGFzc3dvcmQ6\r\n");
            let pass = String::from_utf8_lossy(&decode_base64(&next_line!())).into_owned();
            authed = finish_auth(&mut r, check(&user, &pass), &user, in_tls, ss, n);
        } else if up.starts_with("MAIL") && o.login.is_some() && !authed {
            say!("530 5.7.0 authentication required\r\n");
        } else if up == "DATA" {
            say!("354 go ahead\r\n");
            let mut data = String::new();
            loop {
                let l = next_line!();
                if l == "." {
                    break;
                }
                data.push_str(&l);
                data.push_str("\r\n");
            }
            log(&|s| s.data = data.clone());
            say!("250 queued\r\n");
        } else if up == "QUIT" {
            say!("221 bye\r\n");
            return;
        } else {
            say!("250 ok\r\n");
        }
    }
}

fn finish_auth(
    r: &mut BufReader<Box<dyn Conn>>,
    good: bool,
    user: &str,
    in_tls: bool,
    ss: &Mutex<Vec<Session>>,
    n: usize,
) -> bool {
    let mut v = ss.lock().unwrap();
    if !in_tls {
        v[n].auth_in_clear = true;
    }
    let answer: &[u8] = if good {
        v[n].authed = Some(user.to_string());
        b"235 2.7.0 accepted\r\n"
    } else {
        v[n].failed_logins += 1;
        b"535 5.7.8 bad credentials\r\n"
    };
    let _ = r.get_mut().write_all(answer).and_then(|_| r.get_mut().flush());
    good
}

/// Standard base64 (padding optional), for the AUTH exchanges.
pub fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(decode_base64("AHVzZXIAcGFzcw=="), b"\0user\0pass");
    assert_eq!(decode_base64("Zm9v"), b"foo");
}
