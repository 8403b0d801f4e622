//! The life of a nym with the news going through a real INN on loopback:
//! the server's articles are fed to INN (IHAVE, as a news peer would), and
//! `nym fetch` reads them back over NNTP. Needs inn2; the helper script
//! `client_inn_setup.sh` installs and starts it if needed (CI runs it too).

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

const INN: &str = "nntp://127.0.0.1:119";

fn inn_ready() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/client_inn_setup.sh");
    ok(Command::new("sh").arg(script), None);
}

/// Offer every article of the server's news spool not offered yet to INN.
fn feed_inn(srv: &Server, fed: &mut HashSet<PathBuf>) -> usize {
    let mut n = 0;
    for p in files(&srv.news_spool(), "art") {
        if p.file_name().unwrap().to_string_lossy().starts_with('.') || !fed.insert(p.clone()) {
            continue;
        }
        let art = fs::read_to_string(&p).unwrap();
        let id = art
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("article has a Message-ID")
            .trim()
            .to_string();
        let s = TcpStream::connect("127.0.0.1:119").unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        let mut expect = |r: &mut BufReader<TcpStream>, code: &str| {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "INN said `{}` where {code} was expected", line.trim_end());
        };
        expect(&mut r, "200");
        write!(w, "IHAVE {id}\r\n").unwrap();
        expect(&mut r, "335");
        let mut data = String::new();
        for l in art.lines() {
            if l.starts_with('.') {
                data.push('.');
            }
            data.push_str(l);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        w.write_all(data.as_bytes()).unwrap();
        expect(&mut r, "235");
        write!(w, "QUIT\r\n").unwrap();
        n += 1;
    }
    n
}

#[test]
fn the_life_of_a_nym_through_inn() {
    inn_ready();
    let t = tempfile::tempdir().unwrap();
    let srv = Server::for_client("nym.test");
    let home = t.path().join("home");
    let g = gnupg_home(t.path());
    let via = srv.via();
    // A passphrase of our own, so that other tests' articles in the shared
    // group never match.
    let hsub = format!("inn-{}", nymgate::protocol::hsub::random_subject(48));
    let mut fed = HashSet::new();
    let fetch = |fed: &mut HashSet<PathBuf>| -> String {
        srv.flush();
        assert!(feed_inn(&srv, fed) > 0, "the server posted nothing");
        // INN makes articles visible once they are filed; it does so
        // before answering 235, so no wait is needed.
        ok(nym(&home, &g).args(["fetch", "alice@nym.test", "--quiet", "--server", INN]), None)
    };
    let read = || ok(nym(&home, &g).arg("read"), None);

    ok(
        nym(&home, &g)
            .args(["new", "alice@nym.test", "--hsub", &hsub, "--via", &via, "--server-key"])
            .arg(srv.key_file()),
        None,
    );
    let f = fetch(&mut fed);
    assert_eq!(kept(&f), 1, "{f}");
    let r = read();
    assert!(r.contains("server signature: good") && r.contains(&hsub), "{r}");

    // Nothing is read twice.
    let f = ok(nym(&home, &g).args(["fetch", "--server", INN]), None);
    assert_eq!(kept(&f), 0, "{f}");

    // Mail in.
    ok(
        srv.cmd().args(["deliver", "--recipient", "alice@nym.test"]),
        Some(b"From: bob@example.org\nSubject: via inn\n\nHello through INN.\n"),
    );
    assert_eq!(kept(&fetch(&mut fed)), 1);
    assert!(read().contains("Hello through INN."));

    // Send out, with the acknowledgement coming back through INN.
    ok(
        nym(&home, &g).args([
            "send",
            "alice@nym.test",
            "--to",
            "bob@example.org",
            "--subject",
            "hi",
            "--via",
            &via,
        ]),
        Some(b"out\n"),
    );
    assert_eq!(kept(&fetch(&mut fed)), 1);
    let mails = srv.take_mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("X-Nymgate-Envelope-To: bob@example.org"));

    // Config and delete.
    let hsub2 = format!("inn2-{}", nymgate::protocol::hsub::random_subject(48));
    ok(nym(&home, &g).args(["config", "alice@nym.test", "--hsub", &hsub2, "--via", &via]), None);
    assert_eq!(kept(&fetch(&mut fed)), 1);
    assert!(read().contains(&hsub2));
    ok(nym(&home, &g).args(["delete", "alice@nym.test", "--yes", "--via", &via]), None);
    assert_eq!(kept(&fetch(&mut fed)), 1);
    assert!(read().contains("server signature: good"));
    assert_eq!(maildir(&home, "cur").len(), 5);
    assert!(maildir(&home, "new").is_empty());
}

/// The server's own `nntp` transport (IHAVE at hand-off, no inews, no
/// feeding by the test): the holder finds each article on INN once, and
/// nothing is left in the outbox or written to the spool.
#[test]
fn the_servers_nntp_transport_posts_straight_to_inn() {
    inn_ready();
    let t = tempfile::tempdir().unwrap();
    let srv = Server::for_client("nym.test");
    srv.set("news", "transport", "\"nntp\"");
    srv.set("news", "nntp_server", "\"127.0.0.1:119\"");
    let home = t.path().join("home");
    let g = gnupg_home(t.path());
    let via = srv.via();
    let hsub = format!("ihave-{}", nymgate::protocol::hsub::random_subject(48));
    ok(
        nym(&home, &g)
            .args(["new", "alice@nym.test", "--hsub", &hsub, "--via", &via, "--server-key"])
            .arg(srv.key_file()),
        None,
    );
    let fetch = || ok(nym(&home, &g).args(["fetch", "alice@nym.test", "--quiet", "--server", INN]), None);
    assert_eq!(kept(&fetch()), 1);
    ok(
        srv.cmd().args(["deliver", "--recipient", "alice@nym.test"]),
        Some(b"From: bob@example.org\nSubject: by ihave\n\nHello by IHAVE.\n"),
    );
    assert_eq!(kept(&fetch()), 1);
    let r = ok(nym(&home, &g).arg("read"), None);
    assert!(r.contains("Hello by IHAVE.") && r.contains("server signature: good"), "{r}");
    // A flush finds nothing to send again; nothing went to the spool.
    assert!(srv.flush().contains("sent 0"), "{}", srv.flush());
    assert!(files(&srv.news_spool(), "art").is_empty());
    let check = ok(srv.cmd().arg("check"), None);
    assert!(check.contains("greets us as a peer"), "{check}");
}
