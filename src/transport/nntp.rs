//! Posting by NNTP `IHAVE` (RFC 3977 section 6.3.2), as a peer of the news
//! server, the way Zax's server fed its INN: one connection per article to
//! `[news] nntp_server` (INN on loopback, or a configured peer that lists
//! this host in its incoming.conf). Spawning `inews` costs INN an `nnrpd`
//! per article (about 100 ms here, scripts/bench-news); innd takes IHAVE
//! itself.
//!
//! Exactly once: the outbox row is only marked sent after `235`; `435`
//! (the server has this Message-ID already: an earlier hand-off went
//! through and we died before recording it) counts as sent too. `437`
//! (rejected) is permanent; every other answer, a refused connection or a
//! timeout is transient, and the row stays queued. Server lines are read
//! with a length cap, and only their three-digit code reaches the log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::HandOffError;

/// Longest status line read from the server.
const MAX_LINE: u64 = 1024;

/// Offer and send one article (`dates` then `body`, LF line ends) with
/// Message-ID `msgid` (with its angle brackets).
pub fn post(
    server: &str,
    msgid: &str,
    dates: &[u8],
    body: &[u8],
    timeout: Duration,
) -> Result<(), HandOffError> {
    if !valid_msgid(msgid) {
        return Err(HandOffError::permanent("article without a usable Message-ID"));
    }
    if is_control(body) {
        // What `inews -R` refuses: a peer's control messages are acted on.
        return Err(HandOffError::permanent("control message refused"));
    }
    let addrs: Vec<_> = server
        .to_socket_addrs()
        .map_err(|_| HandOffError::transient("nntp server address not resolved"))?
        .collect();
    let stream = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, timeout).ok())
        .ok_or_else(|| HandOffError::transient("nntp server not reachable"))?;
    let io = |_| HandOffError::transient("nntp connection failed");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut out = stream.try_clone().map_err(io)?;
    let mut input = BufReader::new(stream);
    match status(&mut input)? {
        200 | 201 => {}
        c => return Err(HandOffError::transient(format!("nntp server refused the connection ({c})"))),
    }
    out.write_all(format!("IHAVE {msgid}\r\n").as_bytes()).map_err(io)?;
    let verdict = match status(&mut input)? {
        335 => {
            out.write_all(&wire(&[dates, body].concat())).map_err(io)?;
            match status(&mut input)? {
                235 => Ok(()),
                // Offered again after a crash between its first 335 and
                // our record: the server took it then.
                435 => Ok(()),
                437 => Err(HandOffError::permanent("nntp server rejected the article (437)")),
                c => Err(HandOffError::transient(format!("nntp transfer failed ({c})"))),
            }
        }
        435 => Ok(()),
        c => Err(HandOffError::transient(format!("nntp server would not take the article now ({c})"))),
    };
    // Courtesy only: the answer that counts is in.
    let _ = out.write_all(b"QUIT\r\n");
    verdict
}

/// Whether `server` greets a peer (`200`/`201`), for `nymgate check`.
pub fn greets(server: &str, timeout: Duration) -> bool {
    let Ok(addrs) = server.to_socket_addrs() else { return false };
    let addrs: Vec<_> = addrs.collect();
    let Some(stream) = addrs.iter().find_map(|a| TcpStream::connect_timeout(a, timeout).ok()) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    let Ok(mut out) = stream.try_clone() else { return false };
    let ok = matches!(status(&mut BufReader::new(stream)), Ok(200 | 201));
    let _ = out.write_all(b"QUIT\r\n");
    ok
}

/// Whether the article would be a control message to a peer: a `Control:`
/// or `Also-Control:` field, or a `control` / `control.*` group. send@ and
/// the Type I engine remove such fields already; this is the last guard.
fn is_control(article: &[u8]) -> bool {
    for line in article.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let name = String::from_utf8_lossy(&line[..colon]).trim().to_ascii_lowercase();
        let value = String::from_utf8_lossy(&line[colon + 1..]).to_ascii_lowercase();
        match name.as_str() {
            "control" | "also-control" => return true,
            "newsgroups"
                if value.split(',').map(str::trim).any(|g| g == "control" || g.starts_with("control.")) =>
            {
                return true
            }
            _ => {}
        }
    }
    false
}

/// A Message-ID that fits on the IHAVE line: `<...>`, printable, no spaces.
fn valid_msgid(m: &str) -> bool {
    m.len() > 2
        && m.len() <= 250
        && m.starts_with('<')
        && m.ends_with('>')
        && m.bytes().all(|b| b.is_ascii_graphic())
}

/// The status code of the next server line.
fn status(input: &mut impl BufRead) -> Result<u16, HandOffError> {
    let mut line = Vec::new();
    input
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .map_err(|_| HandOffError::transient("nntp server did not answer"))?;
    if line.len() < 3 || !line.ends_with(b"\n") {
        return Err(HandOffError::transient("nntp server gave no status line"));
    }
    std::str::from_utf8(&line[..3])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| HandOffError::transient("nntp server gave no status code"))
}

/// The article as NNTP carries it: CRLF line ends, a leading `.` doubled,
/// and the terminating `.` line.
fn wire(article: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(article.len() + article.len() / 32 + 8);
    for line in article.split_inclusive(|&b| b == b'\n') {
        let bare = line.strip_suffix(b"\n").unwrap_or(line);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(bare);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A news server on loopback that answers with `replies` in turn and
    /// returns everything the client sent.
    fn server(replies: &'static [&'static str]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut got = Vec::new();
            w.write_all(b"200 test server ready\r\n").unwrap();
            for reply in replies {
                // Read the command (or the article up to its dot line).
                loop {
                    let mut line = Vec::new();
                    if r.read_until(b'\n', &mut line).unwrap() == 0 {
                        return got;
                    }
                    got.extend_from_slice(&line);
                    if line.starts_with(b"IHAVE") || line == b".\r\n" {
                        break;
                    }
                }
                w.write_all(reply.as_bytes()).unwrap();
            }
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
            got.extend_from_slice(&rest);
            got
        });
        (addr, h)
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn ihave_235_is_sent_and_the_article_is_dot_stuffed_with_crlf() {
        let (addr, h) = server(&["335 send it\r\n", "235 thanks\r\n"]);
        let r = post(&addr, "<a1@nym.example>", b"Date: x\n", b"Subject: s\n\n.hidden\nbody\n", T);
        assert!(r.is_ok(), "{r:?}");
        let got = String::from_utf8(h.join().unwrap()).unwrap();
        assert_eq!(
            got,
            "IHAVE <a1@nym.example>\r\nDate: x\r\nSubject: s\r\n\r\n..hidden\r\nbody\r\n.\r\nQUIT\r\n"
        );
    }

    #[test]
    fn ihave_435_means_the_server_has_it_and_counts_as_sent_without_a_transfer() {
        let (addr, h) = server(&["435 duplicate\r\n"]);
        assert!(post(&addr, "<a2@nym.example>", b"", b"Subject: s\n\nb\n", T).is_ok());
        let got = String::from_utf8(h.join().unwrap()).unwrap();
        assert_eq!(got, "IHAVE <a2@nym.example>\r\nQUIT\r\n");
    }

    #[test]
    fn a_rejected_article_is_permanent_and_a_refusal_to_take_it_now_is_transient() {
        let (addr, _h) = server(&["335 send it\r\n", "437 no thanks\r\n"]);
        let e = post(&addr, "<a3@nym.example>", b"", b"S: s\n\nb\n", T).unwrap_err();
        assert!(e.permanent && e.reason.contains("437"), "{e:?}");
        for reply in [
            &["436 try later\r\n"][..],
            &["480 no permission\r\n"][..],
            &["335 go\r\n", "436 failed\r\n"][..],
        ] {
            let replies: &'static [&'static str] = Box::leak(reply.to_vec().into_boxed_slice());
            let (addr, _h) = server(replies);
            let e = post(&addr, "<a4@nym.example>", b"", b"S: s\n\nb\n", T).unwrap_err();
            assert!(!e.permanent, "{reply:?}: {e:?}");
        }
    }

    #[test]
    fn no_server_or_a_bad_greeting_is_transient() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let e = post(&addr, "<a5@nym.example>", b"", b"S: s\n\nb\n", T).unwrap_err();
        assert!(!e.permanent, "{e:?}");
        // A greeting that never ends is cut at the cap, not read forever.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(&vec![b'x'; 64 * 1024]);
        });
        let e = post(&addr, "<a6@nym.example>", b"", b"S: s\n\nb\n", T).unwrap_err();
        assert!(!e.permanent, "{e:?}");
        h.join().unwrap();
    }

    #[test]
    fn control_messages_are_refused_before_connecting() {
        for art in [
            &b"Newsgroups: alt.test\nControl: cancel <x@y>\n\nb\n"[..],
            b"also-control: newgroup alt.x\nNewsgroups: alt.test\n\nb\n",
            b"Newsgroups: alt.test, control.cancel\n\nb\n",
            b"Newsgroups: control\n\nb\n",
        ] {
            let e = post("127.0.0.1:9", "<c@nym.example>", b"", art, T).unwrap_err();
            assert!(e.permanent && e.reason.contains("control"), "{e:?}");
        }
        // In the body, or a group that only starts with the word: fine.
        assert!(!is_control(b"Newsgroups: alt.controlled\n\nControl: cancel <x@y>\n"));
    }

    #[test]
    fn a_message_id_that_would_break_the_ihave_line_is_refused_before_connecting() {
        for m in ["a@b", "<a b@c>", "<a@b>\r\nQUIT", ""] {
            let e = post("127.0.0.1:9", m, b"", b"", T).unwrap_err();
            assert!(e.permanent, "{m:?}");
        }
    }
}
