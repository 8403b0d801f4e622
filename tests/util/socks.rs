//! A small SOCKS5 server on loopback (RFC 1928, with RFC 1929
//! username/password) standing in for Tor: it records what each client
//! asked for (credentials, host name as sent, port) and connects onward
//! to 127.0.0.1 at the requested port, whatever the name (an `.onion`
//! name included), as Tor would reach the service.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocksRequest {
    /// Empty when the client chose no authentication.
    pub user: String,
    pub pass: String,
    /// The address as the client sent it: a name (type 3) or an IP literal.
    pub host: String,
    /// 1 IPv4, 3 domain name, 4 IPv6.
    pub atyp: u8,
    pub port: u16,
}

pub struct Socks {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<SocksRequest>>>,
}

impl Socks {
    pub fn start() -> Socks {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let rq = requests.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { return };
                let rq = rq.clone();
                std::thread::spawn(move || {
                    let _ = serve(c, &rq);
                });
            }
        });
        Socks { port, requests }
    }

    pub fn url(&self) -> String {
        format!("socks5h://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<SocksRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// A port on 127.0.0.1 where nothing listens (a proxy that is down).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn read_n(c: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    c.read_exact(&mut b)?;
    Ok(b)
}

fn serve(mut c: TcpStream, rq: &Mutex<Vec<SocksRequest>>) -> std::io::Result<()> {
    let head = read_n(&mut c, 2)?;
    assert_eq!(head[0], 5, "not SOCKS5");
    let methods = read_n(&mut c, head[1] as usize)?;
    let (mut user, mut pass) = (String::new(), String::new());
    if methods.contains(&2) {
        c.write_all(&[5, 2])?;
        let v = read_n(&mut c, 2)?;
        assert_eq!(v[0], 1, "RFC 1929 version");
        user = String::from_utf8(read_n(&mut c, v[1] as usize)?).unwrap();
        let pl = read_n(&mut c, 1)?[0] as usize;
        pass = String::from_utf8(read_n(&mut c, pl)?).unwrap();
        c.write_all(&[1, 0])?;
    } else if methods.contains(&0) {
        c.write_all(&[5, 0])?;
    } else {
        c.write_all(&[5, 0xff])?;
        return Ok(());
    }
    let req = read_n(&mut c, 4)?;
    assert_eq!(&req[..3], &[5, 1, 0], "CONNECT");
    let host = match req[3] {
        1 => read_n(&mut c, 4)?.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("."),
        3 => {
            let l = read_n(&mut c, 1)?[0] as usize;
            String::from_utf8(read_n(&mut c, l)?).unwrap()
        }
        4 => format!("{:?}", read_n(&mut c, 16)?),
        t => panic!("address type {t}"),
    };
    let p = read_n(&mut c, 2)?;
    let port = u16::from_be_bytes([p[0], p[1]]);
    rq.lock().unwrap().push(SocksRequest { user, pass, host, atyp: req[3], port });
    let up = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(u) => u,
        Err(_) => {
            c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Ok(());
        }
    };
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let (mut c2, mut up2) = (c.try_clone()?, up.try_clone()?);
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut up2);
        let _ = up2.shutdown(std::net::Shutdown::Write);
    });
    let (mut up, mut c) = (up, c);
    let _ = std::io::copy(&mut up, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
    Ok(())
}
