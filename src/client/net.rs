//! Opening the client's connections (NNTP, NNTPS, SMTP): straight to the
//! server, or through a SOCKS5 proxy such as Tor.
//!
//! With a proxy, the proxy is the only way out: a proxy that cannot be
//! reached, or that cannot reach the server, ends the command; nothing
//! ever falls back to a direct connection. Host names go to the proxy as
//! names (socks5h: the proxy resolves them), so no DNS query leaves this
//! machine and `.onion` names work. Each connection carries a SOCKS
//! username and password (RFC 1929); Tor puts streams with different
//! credentials on different circuits (IsolateSOCKSAuth, on by default), so
//! every nym gets its own credentials and the exit relays or servers that
//! see one nym's connections cannot tie them to another nym's.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::exit::Kind;

/// A `socks5h://HOST:PORT` proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
}

impl Proxy {
    /// `socks5h://HOST[:PORT]` (port 1080 when missing; Tor's is 9050).
    /// `none` (or `direct`) means explicitly no proxy, e.g. on the command
    /// line to override the config file.
    pub fn parse(s: &str) -> Result<Option<Proxy>, NetError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("direct") {
            return Ok(None);
        }
        let bad = |why: &str| NetError::BadProxy { setting: s.to_string(), why: why.to_string() };
        let Some(rest) = s.strip_prefix("socks5h://") else {
            if s.starts_with("socks5://") || s.starts_with("socks4") {
                return Err(bad(
                    "only socks5h:// is used, so that the proxy, not this machine, resolves names",
                ));
            }
            return Err(bad("write socks5h://HOST:PORT, e.g. socks5h://127.0.0.1:9050 for Tor"));
        };
        let (host, port) = super::handoff::split_host_port(rest.trim_end_matches('/'), 1080)
            .map_err(|e| bad(&e.to_string()))?;
        if host.is_empty() || host.contains(['@', '/']) {
            return Err(bad("no user name or path: nym chooses the SOCKS credentials itself"));
        }
        Ok(Some(Proxy { host, port }))
    }

    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("socks5h://[{}]:{}", self.host, self.port)
        } else {
            format!("socks5h://{}:{}", self.host, self.port)
        }
    }
}

/// Whose connection this is, for stream isolation.
#[derive(Debug, Clone, Copy)]
pub enum Isolation<'a> {
    /// A request of this nym: the nym's own credentials, the same in every
    /// run, different from every other nym's.
    Nym(&'a str),
    /// Not tied to a nym (fetching the newsgroup, url@ requests): fresh
    /// credentials for each run of `nym`.
    Run,
}

/// SOCKS username and password; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// A nym's SOCKS credentials: a hash of the store's secret and the
/// address, so that the proxy learns nothing about the nym's name.
pub fn nym_credentials(secret: &[u8], addr: &str) -> Credentials {
    let mut h = Sha256::new();
    h.update(b"nym socks isolation v1\0");
    h.update(secret);
    h.update(b"\0");
    h.update(addr.to_ascii_lowercase().as_bytes());
    let d = hex::encode(h.finalize());
    Credentials { user: format!("nym-{}", &d[..16]), pass: d[16..48].to_string() }
}

/// This run's credentials for connections that are not a nym's.
pub fn run_credentials() -> Credentials {
    static RUN: OnceLock<Credentials> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut r = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut r);
        let d = hex::encode(r);
        Credentials { user: format!("run-{}", &d[..16]), pass: d[16..].to_string() }
    })
    .clone()
}

/// Whether `host` is a Tor onion service, which only a proxy can reach.
pub fn is_onion(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "onion" || h.ends_with(".onion")
}

/// Why a connection was not made. Each says what happened and what to do;
/// [`NetError::kind`] gives the exit code.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("the proxy setting `{setting}` is unusable: {why}")]
    BadProxy { setting: String, why: String },
    #[error("{host} is a Tor onion service and no proxy is set; nothing was sent")]
    OnionWithoutProxy { host: String },
    #[error("cannot reach the proxy {proxy}: {why}; nothing was sent, and nothing goes around the proxy")]
    ProxyDown { proxy: String, why: String },
    #[error("the proxy {proxy} does not work as a SOCKS5 proxy: {why}; nothing was sent")]
    ProxyBroken { proxy: String, why: String },
    #[error("the proxy {proxy} could not reach {target}: {why}; nothing was sent")]
    ProxyRefused { proxy: String, target: String, why: String },
    #[error("refusing to send the {what} password to {host} without TLS; nothing was sent")]
    CleartextLogin { what: &'static str, host: String },
}

impl NetError {
    /// The exit table's row for this failure.
    pub fn kind(&self) -> Kind {
        match self {
            NetError::ProxyDown { .. } | NetError::ProxyRefused { .. } => Kind::Temp,
            _ => Kind::Config,
        }
    }

    /// The second half of the message: what to do now.
    pub fn todo(&self) -> &'static str {
        match self {
            NetError::BadProxy { .. } => {
                "fix --proxy, $NYM_PROXY or `proxy` in config.toml (socks5h://127.0.0.1:9050 for Tor)"
            }
            NetError::OnionWithoutProxy { .. } => {
                "give --proxy socks5h://127.0.0.1:9050 (Tor) or set `proxy` in config.toml"
            }
            NetError::ProxyDown { .. } => {
                "start Tor (or the proxy) and run the command again, or correct the proxy setting \
                 (--proxy, $NYM_PROXY, `proxy` in config.toml)"
            }
            NetError::ProxyBroken { .. } => {
                "check that the proxy setting names a SOCKS5 port (Tor's SocksPort, usually 9050)"
            }
            NetError::ProxyRefused { .. } => {
                "the server or the Tor network may be down; run the command again later"
            }
            NetError::CleartextLogin { what: "NNTP", .. } => {
                "use nntps://HOST or nntp+starttls://HOST, or drop --user"
            }
            NetError::CleartextLogin { .. } => {
                "use smtp+starttls://HOST:587 or smtps://HOST:465, or drop the user name"
            }
        }
    }
}

/// How to open connections: straight, or through a proxy with the
/// credentials of one nym or of this run.
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    pub proxy: Option<Proxy>,
    pub auth: Option<Credentials>,
}

impl Dialer {
    /// A TCP connection to `host:port` (a name, or an IP address literal).
    pub fn connect(&self, host: &str, port: u16) -> Result<TcpStream> {
        let Some(proxy) = &self.proxy else {
            if is_onion(host) {
                return Err(NetError::OnionWithoutProxy { host: host.to_string() }.into());
            }
            return TcpStream::connect((host, port)).with_context(|| format!("connecting to {host}:{port}"));
        };
        let down = |why: String| NetError::ProxyDown { proxy: proxy.url(), why };
        let addrs: Vec<_> = (proxy.host.as_str(), proxy.port)
            .to_socket_addrs()
            .map_err(|e| down(format!("its address does not resolve ({e})")))?
            .collect();
        let mut last = String::from("no address");
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(30)) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let mut tcp = tcp.ok_or_else(|| down(last))?;
        tcp.set_read_timeout(Some(Duration::from_secs(120)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(120)))?;
        let broken = |why: String| NetError::ProxyBroken { proxy: proxy.url(), why };
        socks5_handshake(&mut tcp, self.auth.as_ref(), host, port).map_err(|e| match e {
            Socks::Io(e) => broken(format!("the conversation failed ({e})")),
            Socks::Protocol(why) => broken(why),
            Socks::Refused(why) => {
                NetError::ProxyRefused { proxy: proxy.url(), target: format!("{host}:{port}"), why }
            }
        })?;
        Ok(tcp)
    }
}

#[derive(Debug)]
enum Socks {
    Io(std::io::Error),
    Protocol(String),
    Refused(String),
}

impl From<std::io::Error> for Socks {
    fn from(e: std::io::Error) -> Socks {
        Socks::Io(e)
    }
}

/// The CONNECT request for `host:port`: IP literals as addresses, every
/// other host as a domain name for the proxy to resolve (RFC 1928).
fn connect_request(host: &str, port: u16) -> Result<Vec<u8>, Socks> {
    let mut req = vec![5, 1, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.octets());
        }
        Ok(IpAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.octets());
        }
        Err(_) => {
            let name = host.as_bytes();
            if name.is_empty() || name.len() > 255 {
                return Err(Socks::Protocol(format!("the host name `{host}` is too long for SOCKS5")));
            }
            req.push(3);
            req.push(name.len() as u8);
            req.extend_from_slice(name);
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

fn socks5_handshake(
    s: &mut TcpStream,
    auth: Option<&Credentials>,
    host: &str,
    port: u16,
) -> Result<(), Socks> {
    // Offer username/password (for isolation) when we have credentials;
    // no-authentication too, for proxies without isolation (ssh -D).
    let methods: &[u8] = if auth.is_some() { &[2, 0] } else { &[0] };
    let mut hello = vec![5, methods.len() as u8];
    hello.extend_from_slice(methods);
    s.write_all(&hello)?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice)?;
    if choice[0] != 5 {
        return Err(Socks::Protocol("it does not answer in SOCKS version 5".into()));
    }
    match (choice[1], auth) {
        (0, _) => {}
        (2, Some(c)) => {
            let (u, p) = (c.user.as_bytes(), c.pass.as_bytes());
            let mut m = vec![1, u.len() as u8];
            m.extend_from_slice(u);
            m.push(p.len() as u8);
            m.extend_from_slice(p);
            s.write_all(&m)?;
            let mut r = [0u8; 2];
            s.read_exact(&mut r)?;
            if r[1] != 0 {
                return Err(Socks::Protocol("it refused the username/password (RFC 1929)".into()));
            }
        }
        _ => return Err(Socks::Protocol("it accepts none of the offered authentication methods".into())),
    }
    s.write_all(&connect_request(host, port)?)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    if head[0] != 5 {
        return Err(Socks::Protocol("bad reply version".into()));
    }
    if head[1] != 0 {
        return Err(Socks::Refused(reply_text(head[1]).to_string()));
    }
    // The bound address, which we do not need.
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l)?;
            l[0] as usize
        }
        _ => return Err(Socks::Protocol("bad address type in the reply".into())),
    };
    let mut rest = vec![0u8; skip + 2];
    s.read_exact(&mut rest)?;
    Ok(())
}

fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not allowed by the proxy's rules",
        3 => "network unreachable",
        4 => "host unreachable (for an onion service: it may be offline)",
        5 => "connection refused",
        6 => "timed out",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_socks5h_proxies_are_accepted() {
        let p = Proxy::parse("socks5h://127.0.0.1:9050").unwrap().unwrap();
        assert_eq!(p, Proxy { host: "127.0.0.1".into(), port: 9050 });
        assert_eq!(p.url(), "socks5h://127.0.0.1:9050");
        assert_eq!(Proxy::parse("none").unwrap(), None);
        for bad in ["socks5://127.0.0.1:9050", "http://x:1", "socks5h://u:p@h:1", "socks5h://h:x"] {
            let e = Proxy::parse(bad).unwrap_err();
            assert_eq!(e.kind(), Kind::Config, "{bad}");
        }
    }

    #[test]
    fn names_go_to_the_proxy_unresolved() {
        let r = connect_request("abcdefgh.onion", 119).unwrap();
        assert_eq!(&r[..5], &[5, 1, 0, 3, 14]);
        assert_eq!(&r[5..19], b"abcdefgh.onion");
        assert_eq!(&r[19..], &119u16.to_be_bytes());
        assert_eq!(connect_request("127.0.0.1", 25).unwrap(), [5, 1, 0, 1, 127, 0, 0, 1, 0, 25]);
        assert_eq!(connect_request("::1", 25).unwrap()[3], 4);
        assert!(is_onion("X.ONION.") && !is_onion("onion.example"));
    }

    #[test]
    fn each_nym_has_its_own_stable_credentials() {
        let a = nym_credentials(b"secret", "alice@nym.example");
        assert_eq!(a, nym_credentials(b"secret", "Alice@nym.example"));
        assert_ne!(a, nym_credentials(b"secret", "bob@nym.example"));
        assert_ne!(a, nym_credentials(b"other", "alice@nym.example"));
        assert!(!a.user.contains("alice") && !format!("{a:?}").contains(&a.pass));
        assert_eq!(run_credentials(), run_credentials());
        assert_ne!(run_credentials(), a);
    }

    #[test]
    fn a_proxy_that_is_down_is_an_error_not_a_fallback() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let d = Dialer { proxy: Some(Proxy { host: "127.0.0.1".into(), port }), auth: None };
        let e = d.connect("127.0.0.1", 1).unwrap_err();
        let n = e.downcast_ref::<NetError>().expect("a NetError");
        assert!(matches!(n, NetError::ProxyDown { .. }) && n.kind() == Kind::Temp);
        let e = Dialer::default().connect("x.onion", 1).unwrap_err();
        assert!(matches!(e.downcast_ref::<NetError>(), Some(NetError::OnionWithoutProxy { .. })));
    }
}
