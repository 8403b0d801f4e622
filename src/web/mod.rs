//! Fetching web pages for the `url@` service.
//!
//! A nym can ask the server to fetch arbitrary addresses, so the server must
//! not become a way to reach machines that only it can see (its own loopback,
//! the LAN, cloud metadata endpoints and so on). The rule is enforced where
//! the connection is made: ureq is given a resolver that does the DNS lookup
//! itself, drops every address that is not public and hands ureq only the
//! survivors, so nothing can change between the check and the connect.
//! Redirects are followed here, one hop at a time, so every hop goes through
//! the same resolver again, and connection reuse is switched off so no hop
//! can ride on a socket opened for an earlier one.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

mod addr;
pub use addr::is_public_ip;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use url::{Host, Url};

/// Sent to servers; some refuse requests without a User-Agent.
const USER_AGENT: &str = "nymgate-fetch/1";

/// Addresses longer than this are refused before parsing; no real page needs
/// more and it keeps error messages and logs to a sane size.
const MAX_URL_LEN: usize = 4096;

/// A timeout above this is treated as this, so deadline arithmetic can
/// never overflow an `Instant`.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Limits applied to one fetch (all hops of one address together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLimits {
    /// Allow loopback, private and other non-public addresses. Only for
    /// tests or deliberately internal deployments.
    pub allow_private: bool,
    /// Body bytes kept; anything beyond is discarded and `truncated` is set.
    pub max_bytes: u64,
    /// Wall-clock budget for the whole fetch: DNS, connects, redirects, body.
    pub timeout: Duration,
    /// How many redirects may be followed before giving up.
    pub max_redirects: u32,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            allow_private: false,
            max_bytes: 1024 * 1024,
            timeout: Duration::from_secs(60),
            max_redirects: 5,
        }
    }
}

/// The outcome for one requested address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The address as the nym wrote it.
    pub url: String,
    /// The page, or a human-readable reason why there is none.
    pub result: Result<Fetched, String>,
}

/// A successfully fetched page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where the page was finally found, after redirects.
    pub final_url: String,
    /// The Content-Type header as sent (with parameters such as charset),
    /// or `application/octet-stream` if the server sent none.
    pub content_type: String,
    pub body: Vec<u8>,
    /// The server had more than `max_bytes` to send.
    pub truncated: bool,
}

/// Turn what the nym wrote into a full http or https URL.
///
/// A bare host (`example.com`, `example.com:8080/x`) gets `http://`.
/// Every other scheme is refused.
pub fn normalise_url(s: &str) -> Result<String, String> {
    parse_url(s).map(String::from)
}

fn parse_url(s: &str) -> Result<Url, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty address".to_string());
    }
    if s.len() > MAX_URL_LEN {
        return Err(format!("address is too long (more than {MAX_URL_LEN} characters)"));
    }
    let full = if s.starts_with("//") {
        format!("http:{s}")
    } else if has_scheme(s) {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let mut url = Url::parse(&full).map_err(|e| format!("malformed address: {e}"))?;
    check_scheme_and_host(&url)?;
    // The fragment is never sent to the server; dropping it keeps final_url honest.
    url.set_fragment(None);
    Ok(url)
}

/// Whether `s` starts with `scheme://`. Looking for "://" alone is not enough:
/// `example.com/?next=http://x` contains it but has no scheme, and
/// `localhost:8080` would look like scheme `localhost` to a URL parser.
fn has_scheme(s: &str) -> bool {
    match s.find("://") {
        Some(i) => {
            let scheme = &s[..i];
            let mut chars = scheme.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn check_scheme_and_host(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("only http and https addresses are supported, not {other}:")),
    }
    match url.host() {
        None => Err("address has no host".to_string()),
        Some(Host::Domain("")) => Err("address has no host".to_string()),
        Some(_) => Ok(()),
    }
}

/// Fetch one address within `limits`. Never panics; every failure is
/// reported as text in `Page::result`.
pub fn fetch(url: &str, limits: &FetchLimits) -> Page {
    let allow: fn(IpAddr) -> bool = if limits.allow_private { |_| true } else { is_public_ip };
    let gate = Arc::new(Gate::new(allow, limits.timeout));
    Page { url: url.to_string(), result: fetch_through(url, limits, &gate) }
}

/// The address policy and the deadline of one fetch, shared with the resolver.
struct Gate {
    allow: fn(IpAddr) -> bool,
    deadline: Instant,
    /// Why the resolver last refused, so the nym sees our reason rather than
    /// ureq's generic "Dns Failed" wrapper.
    refusal: Mutex<Option<String>>,
    /// Every host:port the resolver was asked about, in order. Tests use it
    /// to show that each redirect hop goes through the check.
    asked: Mutex<Vec<String>>,
}

/// Lock a mutex even if another thread panicked while holding it; the data
/// here (a message, a log) is still fine to use and panicking would break
/// the "never panic" promise.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    fn new(allow: fn(IpAddr) -> bool, timeout: Duration) -> Gate {
        Gate {
            allow,
            deadline: Instant::now() + timeout.min(MAX_TIMEOUT),
            refusal: Mutex::new(None),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// Time left, or None once the deadline has passed.
    fn remaining(&self) -> Option<Duration> {
        self.deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    /// Resolve `netloc` ("host:port" or "[v6]:port") and keep only the
    /// addresses the policy allows.
    fn resolve(&self, netloc: &str) -> Result<Vec<SocketAddr>, String> {
        lock(&self.asked).push(netloc.to_string());
        let (host, addrs) = self.lookup(netloc)?;
        let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            addrs.into_iter().partition(|a| (self.allow)(a.ip()));
        if !allowed.is_empty() {
            // Mixed answers are fine: the refused addresses are simply never
            // handed to ureq, so they cannot be connected to.
            return Ok(allowed);
        }
        if refused.is_empty() {
            return Err(format!("could not resolve host {host}: no addresses"));
        }
        let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
        if list.len() == 1 && list[0] == host.trim_start_matches('[').trim_end_matches(']') {
            Err(format!("address is not public: {host}"))
        } else {
            Err(format!("address is not public: {host} resolves to {}", list.join(", ")))
        }
    }

    fn lookup(&self, netloc: &str) -> Result<(String, Vec<SocketAddr>), String> {
        // Literal addresses need no DNS, but they go through the same filter.
        if let Ok(sa) = netloc.parse::<SocketAddr>() {
            let host = netloc.rsplit_once(':').map_or(netloc, |(h, _)| h);
            return Ok((host.to_string(), vec![sa]));
        }
        let (host, port) = netloc.rsplit_once(':').ok_or_else(|| format!("bad host {netloc:?}"))?;
        let port: u16 = port.parse().map_err(|_| format!("bad port in {netloc:?}"))?;
        if host.is_empty() {
            return Err("address has no host".to_string());
        }
        let remaining = self.remaining().ok_or_else(|| "timed out".to_string())?;
        // getaddrinfo cannot be given a timeout, so it runs on its own thread
        // and we stop waiting at the deadline. A lookup that hangs leaves
        // one idle thread behind until the system resolver gives up.
        let (tx, rx) = mpsc::channel();
        let name = host.to_string();
        std::thread::Builder::new()
            .name("fetch-dns".to_string())
            .spawn(move || {
                let r = (name.as_str(), port).to_socket_addrs().map(|it| it.collect::<Vec<_>>());
                // The receiver may have given up already; nothing to do then.
                let _ = tx.send(r);
            })
            .map_err(|e| format!("could not start DNS lookup: {e}"))?;
        match rx.recv_timeout(remaining) {
            Ok(Ok(addrs)) => Ok((host.to_string(), addrs)),
            Ok(Err(e)) => Err(format!("could not resolve host {host}: {e}")),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("timed out resolving host {host}")),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!("could not resolve host {host}")),
        }
    }
}

/// The ureq side of the gate. ureq calls this for every connection it
/// opens, and connects only to what it returns.
struct GateResolver(Arc<Gate>);

impl ureq::Resolver for GateResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        self.0.resolve(netloc).map_err(|msg| {
            *lock(&self.0.refusal) = Some(msg.clone());
            io::Error::other(msg)
        })
    }
}

/// Refuse a URL whose host is a literal IP address the policy rejects.
/// The resolver would refuse it too; checking up front gives a clear
/// message and keeps the redirect check testable on its own.
fn check_literal_host(url: &Url, allow: fn(IpAddr) -> bool) -> Result<(), String> {
    let ip = match url.host() {
        Some(Host::Ipv4(a)) => IpAddr::V4(a),
        Some(Host::Ipv6(a)) => IpAddr::V6(a),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err("address has no host".to_string()),
    };
    if allow(ip) {
        Ok(())
    } else {
        Err(format!("address is not public: {ip}"))
    }
}

/// Work out where a redirect from `current` to `location` goes, and refuse
/// it if the scheme is not http(s) or the target is a forbidden literal IP.
/// Host names are checked later by the resolver when the hop is made.
fn next_hop(current: &Url, location: &str, allow: fn(IpAddr) -> bool) -> Result<Url, String> {
    let shown: String = location.chars().take(200).filter(|c| !c.is_control()).collect();
    let mut next =
        current.join(location.trim()).map_err(|e| format!("bad redirect location {shown:?}: {e}"))?;
    check_scheme_and_host(&next)
        .and_then(|()| check_literal_host(&next, allow))
        .map_err(|e| format!("redirect to {shown} refused: {e}"))?;
    next.set_fragment(None);
    Ok(next)
}

fn fetch_through(url: &str, limits: &FetchLimits, gate: &Arc<Gate>) -> Result<Fetched, String> {
    let mut current = parse_url(url)?;
    check_literal_host(&current, gate.allow)?;
    let mut hops = 0u32;
    loop {
        let remaining = gate.remaining().ok_or_else(|| timed_out(limits))?;
        let resp = match agent(gate, remaining).request_url("GET", &current).timeout(remaining).call() {
            Ok(resp) => resp,
            Err(ureq::Error::Status(code, resp)) => {
                return Err(format!("HTTP {code} {}", printable(resp.status_text(), 100)).trim_end().into())
            }
            Err(ureq::Error::Transport(t)) => return Err(describe_transport(&t, gate, limits)),
        };
        if matches!(resp.status(), 301 | 302 | 303 | 307 | 308) {
            if let Some(location) = resp.header("location") {
                if hops >= limits.max_redirects {
                    return Err(format!("too many redirects (more than {})", limits.max_redirects));
                }
                hops += 1;
                current = next_hop(&current, location, gate.allow)?;
                continue;
            }
            // A redirect status without a Location has nowhere to go;
            // hand back whatever body came with it.
        }
        return read_body(resp, limits, gate);
    }
}

/// A fresh agent for one hop. Fresh because ureq's connect timeout is a
/// separate setting (30 s by default) that ignores the request deadline,
/// so it has to be set to the time actually left each time.
fn agent(gate: &Arc<Gate>, remaining: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .resolver(GateResolver(Arc::clone(gate)))
        // A proxy would be resolved and connected to instead of the target,
        // bypassing the check; make sure no environment variable adds one.
        .try_proxy_from_env(false)
        .redirects(0)
        // No connection may be kept for reuse: every hop must ask the resolver.
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .timeout_connect(remaining)
        .user_agent(USER_AGENT)
        .build()
}

fn read_body(resp: ureq::Response, limits: &FetchLimits, gate: &Gate) -> Result<Fetched, String> {
    let final_url = resp.get_url().to_string();
    let content_type = resp
        .header("content-type")
        .map(|v| printable(v, 200))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let mut body = Vec::new();
    // One byte past the limit tells "exactly max_bytes" from "more".
    let mut reader = resp.into_reader().take(limits.max_bytes.saturating_add(1));
    if let Err(e) = reader.read_to_end(&mut body) {
        return Err(if gate.remaining().is_none() || is_timeout(&e) {
            format!("{} while reading the page (after {} bytes)", timed_out(limits), body.len())
        } else {
            format!("error while reading the page: {e}")
        });
    }
    let truncated = body.len() as u64 > limits.max_bytes;
    if truncated {
        // Safe cast: body.len() > max_bytes, so max_bytes fits in usize.
        body.truncate(limits.max_bytes as usize);
    }
    Ok(Fetched { final_url, content_type, body, truncated })
}

fn timed_out(limits: &FetchLimits) -> String {
    format!("timed out (limit {} s)", limits.timeout.as_secs_f64())
}

fn is_timeout(e: &io::Error) -> bool {
    // A socket read timeout shows up as WouldBlock on Unix.
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

fn describe_transport(t: &ureq::Transport, gate: &Gate, limits: &FetchLimits) -> String {
    if let Some(reason) = lock(&gate.refusal).take() {
        return reason;
    }
    let source = std::error::Error::source(t);
    let io_err = source.and_then(|s| s.downcast_ref::<io::Error>());
    if gate.remaining().is_none() || io_err.is_some_and(is_timeout) {
        return timed_out(limits);
    }
    let detail = match (source, t.message()) {
        (Some(s), _) => s.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => t.kind().to_string(),
    };
    let what = match t.kind() {
        ureq::ErrorKind::Dns => "could not resolve host",
        ureq::ErrorKind::ConnectionFailed => "could not connect",
        ureq::ErrorKind::Io => "network error",
        ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader => "bad HTTP response",
        ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => "bad address",
        _ => "fetch failed",
    };
    format!("{what}: {}", printable(&detail, 300))
}

/// Server-supplied text goes into mail; strip control characters and cap the length.
fn printable(s: &str, max_chars: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max_chars).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_ip_table() {
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:200::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            // Teredo: server 8.8.8.8, client 1.1.1.1 (stored inverted as fefe:fefe).
            "2001:0:808:808::fefe:fefe",
        ];
        let not_public = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::ffff:0:7f00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "3fff::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2002:a9fe:a9fe::1",
            // Teredo with a private server, or a loopback client (127.0.0.1 inverted).
            "2001:0:a00:1::fefe:fefe",
            "2001:0:808:808::80ff:fffe",
            "5f00::1",
        ];
        for s in public {
            assert!(is_public_ip(ip(s)), "{s} should be public");
        }
        for s in not_public {
            assert!(!is_public_ip(ip(s)), "{s} should not be public");
        }
    }

    #[test]
    fn normalise_cases() {
        let ok = [
            ("example.com", "http://example.com/"),
            ("  example.com/a b  ", "http://example.com/a%20b"),
            ("example.com:8080/x?y=1", "http://example.com:8080/x?y=1"),
            ("localhost:8080", "http://localhost:8080/"),
            ("example.com/?next=https://other", "http://example.com/?next=https://other"),
            ("//example.com/p", "http://example.com/p"),
            ("HTTPS://Example.COM/Path#frag", "https://example.com/Path"),
            ("http://example.com:80/", "http://example.com/"),
            ("10.0.0.1", "http://10.0.0.1/"),
            ("[::1]:81", "http://[::1]:81/"),
            ("http://0x7f.1/", "http://127.0.0.1/"),
            ("http://user:pw@example.com/", "http://user:pw@example.com/"),
        ];
        for (input, want) in ok {
            assert_eq!(normalise_url(input).as_deref(), Ok(want), "input {input:?}");
        }
        let bad = [
            "",
            "   ",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com",
            "javascript://x",
            "http://",
            "http://exa mple.com/",
            "http://[::1/",
            "example.com:99999",
            "http://[fe80::1%25eth0]/",
        ];
        for input in bad {
            assert!(normalise_url(input).is_err(), "{input:?} should be refused");
        }
        let long = format!("example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(normalise_url(&long).unwrap_err().contains("too long"));
        assert!(normalise_url("ftp://x").unwrap_err().contains("only http and https"));
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "\0",
            "http://\u{202e}evil",
            "::::",
            "[",
            "http://[]/",
            "%",
            "http://%zz/",
            "\u{1F600}://x",
            "://",
            "http://a:b:c/",
        ];
        for s in inputs {
            let _ = normalise_url(s);
            if normalise_url(s).is_err() {
                assert!(fetch(s, &FetchLimits::default()).result.is_err());
            }
        }
    }

    #[test]
    fn redirect_hops_are_checked() {
        let here = Url::parse("https://example.com/a/b").unwrap();
        let go = |loc: &str| next_hop(&here, loc, is_public_ip).map(String::from);
        assert_eq!(go("c").as_deref(), Ok("https://example.com/a/c"));
        assert_eq!(go("/x#frag").as_deref(), Ok("https://example.com/x"));
        assert_eq!(go("http://other.example/").as_deref(), Ok("http://other.example/"));
        assert_eq!(go("//8.8.8.8/").as_deref(), Ok("https://8.8.8.8/"));
        for bad in [
            "http://127.0.0.1/",
            "http://127.1:8080/",
            "http://0x7f000001/",
            "//10.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://169.254.169.254/latest/meta-data/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://[broken/",
        ] {
            assert!(go(bad).is_err(), "redirect to {bad} should be refused");
        }
        assert!(go("http://127.0.0.1/").unwrap_err().contains("not public"));
    }

    #[test]
    fn resolver_filters_names_and_literals() {
        let gate = Gate::new(is_public_ip, Duration::from_secs(10));
        for netloc in ["localhost:80", "127.0.0.1:80", "[::1]:443", "[::ffff:127.0.0.1]:80", "10.1.1.1:8080"]
        {
            let err = gate.resolve(netloc).unwrap_err();
            assert!(err.contains("not public"), "{netloc}: {err}");
        }
        assert!(gate.resolve("localhost:80").unwrap_err().contains("resolves to 127.0.0.1"));
        assert_eq!(gate.resolve("8.8.8.8:53").unwrap(), vec!["8.8.8.8:53".parse().unwrap()]);
        assert!(gate.resolve("nonsense").is_err());
        assert!(gate.resolve(":80").is_err());
        let open = Gate::new(|_| true, Duration::from_secs(10));
        assert!(open.resolve("localhost:80").unwrap().iter().all(|a| a.ip().is_loopback()));
    }

    /// A tiny HTTP server on 127.0.0.1. `handler` gets the request path and
    /// the socket and writes whatever it likes. Returns the port and a
    /// counter of accepted connections.
    fn serve(handler: fn(&str, u16, &mut TcpStream)) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                seen.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let path = read_request_path(&mut stream);
                    handler(&path, port, &mut stream);
                });
            }
        });
        (port, count)
    }

    fn read_request_path(stream: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            buf.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&buf);
        text.split_whitespace().nth(1).unwrap_or("/").to_string()
    }

    fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    }

    fn site(path: &str, port: u16, s: &mut TcpStream) {
        match path {
            "/hello" => respond(s, "200 OK", "Content-Type: text/plain; charset=utf-8\r\n", b"hello"),
            "/untyped" => respond(s, "200 OK", "", b"\x00\x01"),
            "/big" => respond(s, "200 OK", "Content-Type: text/plain\r\n", &[b'x'; 10_000]),
            "/missing" => respond(s, "404 Not Found", "", b"nope"),
            "/to-hello" => respond(s, "302 Found", "Location: /hello\r\n", b""),
            "/loop" => respond(s, "301 Moved", "Location: /loop\r\n", b""),
            "/to-localhost" => {
                let loc = format!("Location: http://localhost:{port}/hello\r\n");
                respond(s, "307 Temporary", &loc, b"")
            }
            "/to-other-loopback" => {
                let loc = format!("Location: http://127.0.0.2:{port}/hello\r\n");
                respond(s, "302 Found", &loc, b"")
            }
            "/silent" => std::thread::sleep(Duration::from_secs(5)),
            "/drip" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
                for _ in 0..100 {
                    std::thread::sleep(Duration::from_millis(100));
                    if s.write_all(b"x").is_err() {
                        break;
                    }
                }
            }
            _ => respond(s, "500 Internal Server Error", "", b""),
        }
    }

    fn private_ok() -> FetchLimits {
        FetchLimits { allow_private: true, timeout: Duration::from_secs(10), ..FetchLimits::default() }
    }

    #[test]
    fn local_server_refused_by_default() {
        let (port, count) = serve(site);
        for url in [format!("http://127.0.0.1:{port}/hello"), format!("localhost:{port}/hello")] {
            let page = fetch(&url, &FetchLimits::default());
            assert_eq!(page.url, url);
            let err = page.result.unwrap_err();
            assert!(err.contains("not public"), "{url}: {err}");
        }
        assert_eq!(count.load(Ordering::SeqCst), 0, "no connection may be made");
    }

    #[test]
    fn local_server_fetched_when_allowed() {
        let (port, _) = serve(site);
        let got = fetch(&format!("127.0.0.1:{port}/hello"), &private_ok()).result.unwrap();
        assert_eq!(got.final_url, format!("http://127.0.0.1:{port}/hello"));
        assert_eq!(got.content_type, "text/plain; charset=utf-8");
        assert_eq!(got.body, b"hello");
        assert!(!got.truncated);

        let got = fetch(&format!("http://127.0.0.1:{port}/untyped"), &private_ok()).result.unwrap();
        assert_eq!(got.content_type, "application/octet-stream");

        let err = fetch(&format!("http://127.0.0.1:{port}/missing"), &private_ok()).result.unwrap_err();
        assert_eq!(err, "HTTP 404 Not Found");
    }

    #[test]
    fn redirects_followed_and_limited() {
        let (port, _) = serve(site);
        let got = fetch(&format!("http://127.0.0.1:{port}/to-hello"), &private_ok()).result.unwrap();
        assert_eq!(got.final_url, format!("http://127.0.0.1:{port}/hello"));
        assert_eq!(got.body, b"hello");

        let limits = FetchLimits { max_redirects: 3, ..private_ok() };
        let err = fetch(&format!("http://127.0.0.1:{port}/loop"), &limits).result.unwrap_err();
        assert_eq!(err, "too many redirects (more than 3)");

        let none = FetchLimits { max_redirects: 0, ..private_ok() };
        let err = fetch(&format!("http://127.0.0.1:{port}/to-hello"), &none).result.unwrap_err();
        assert!(err.contains("too many redirects"), "{err}");
    }

    /// Only 127.0.0.1 itself, standing in for "the public internet" so the
    /// redirect check can be exercised against a local server.
    fn only_127_0_0_1(ip: IpAddr) -> bool {
        ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    #[test]
    fn every_redirect_hop_goes_through_the_gate() {
        let (port, _) = serve(site);
        let limits = private_ok();

        // Hop to a host name: the resolver is asked again for the new host.
        let gate = Arc::new(Gate::new(only_127_0_0_1, limits.timeout));
        let got = fetch_through(&format!("http://127.0.0.1:{port}/to-localhost"), &limits, &gate).unwrap();
        assert_eq!(got.body, b"hello");
        let asked = lock(&gate.asked).clone();
        assert_eq!(asked, vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")]);

        // Hop to an address the policy forbids: refused, not connected to.
        let gate = Arc::new(Gate::new(only_127_0_0_1, limits.timeout));
        let err =
            fetch_through(&format!("http://127.0.0.1:{port}/to-other-loopback"), &limits, &gate).unwrap_err();
        assert!(err.contains("refused") && err.contains("not public: 127.0.0.2"), "{err}");
        assert_eq!(lock(&gate.asked).len(), 1);
    }

    #[test]
    fn body_is_truncated_at_the_limit() {
        let (port, _) = serve(site);
        let url = format!("http://127.0.0.1:{port}/big");
        let got = fetch(&url, &FetchLimits { max_bytes: 1000, ..private_ok() }).result.unwrap();
        assert_eq!(got.body.len(), 1000);
        assert!(got.truncated);

        let got = fetch(&url, &FetchLimits { max_bytes: 10_000, ..private_ok() }).result.unwrap();
        assert_eq!(got.body.len(), 10_000);
        assert!(!got.truncated);

        let got = fetch(&url, &FetchLimits { max_bytes: 0, ..private_ok() }).result.unwrap();
        assert!(got.body.is_empty() && got.truncated);
    }

    #[test]
    fn silent_server_times_out() {
        let (port, _) = serve(site);
        let limits = FetchLimits { timeout: Duration::from_millis(500), ..private_ok() };
        let err = fetch(&format!("http://127.0.0.1:{port}/silent"), &limits).result.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    #[test]
    fn slow_body_is_bounded_by_total_time() {
        // Each byte arrives well within any per-read timeout; only a deadline
        // for the whole fetch stops this.
        let (port, _) = serve(site);
        let limits = FetchLimits { timeout: Duration::from_millis(700), ..private_ok() };
        let err = fetch(&format!("http://127.0.0.1:{port}/drip"), &limits).result.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    #[test]
    fn closed_port_is_reported() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = fetch(&format!("http://127.0.0.1:{port}/"), &private_ok()).result.unwrap_err();
        assert!(err.starts_with("could not connect"), "{err}");
    }

    #[test]
    fn https_to_a_plain_http_server_is_an_error() {
        // Answer in plain HTTP without waiting for a request, as a
        // misconfigured server would; the TLS handshake must fail cleanly.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let err = fetch(&format!("https://127.0.0.1:{port}/"), &private_ok()).result.unwrap_err();
        assert!(err.starts_with("could not connect"), "{err}");
    }
}
