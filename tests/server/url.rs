//! url@ (PROTOCOL.md section 8) against a local HTTP server.

use crate::util::*;

/// Deliver a request: nothing is fetched while the MTA waits; the flush
/// timer answers it.
fn request(s: &Server, g: &Gpg, text: &str) {
    let enc = g.encrypt("url@nym.example", text.as_bytes());
    assert_eq!(s.deliver_pgp("url@nym.example", &enc), 0);
    assert!(s.articles().is_empty(), "url@ fetched on the delivery path");
    s.flush();
}

#[test]
fn local_addresses_are_refused_by_default() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    let port = http_page("<p>secret intranet page</p>");
    request(&s, &g, &format!("url: http://127.0.0.1:{port}/\nkey: k3y\nhsub: hs\n"));
    let arts = s.articles_for_hsub("hs");
    assert_eq!(arts.len(), 1);
    let o = g.decrypt_pass(arts[0].body.as_bytes(), "k3y");
    assert!(o.ok, "{}", o.stderr);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("not public"), "{text}");
    assert!(!text.contains("secret intranet page"));
}

#[test]
fn fetched_with_the_switch_on_and_subject_is_hsub_of_key() {
    let s = Server::new(&["nym.example"]);
    s.set("url", "allow_private", "true");
    let g = Gpg::new();
    g.import(&s.key_export());
    let port = http_page("<p>hello from the page</p>");
    // No hsub line: the Subject is the hSub of the key.
    request(&s, &g, &format!("url: 127.0.0.1:{port}/page\nsource: http://127.0.0.1:1/\nkey: k3y\n"));
    let arts = s.articles_for_hsub("k3y");
    assert_eq!(arts.len(), 1);
    let o = g.decrypt_pass(arts[0].body.as_bytes(), "k3y");
    assert!(o.ok, "{}", o.stderr);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("multipart/mixed"), "{text}");
    assert!(text.contains("hello from the page"), "{text}");
    assert!(text.contains("Content-Type: text/html"), "{text}");
    // The unreachable second address becomes a text part, not a silent drop.
    assert!(text.contains("Could not fetch http://127.0.0.1:1/"), "{text}");
    // Only the key opens it.
    assert!(!g.decrypt_pass(arts[0].body.as_bytes(), "wrong").ok);
}

#[test]
fn request_without_key_is_dropped() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    let before = s.db_snapshot();
    let enc = g.encrypt("url@nym.example", b"url: example.org\n");
    let (code, log) = s.deliver_logged("url@nym.example", &[b"Subject: x\n\n".as_slice(), &enc].concat());
    assert_eq!(code, 0);
    assert!(log.contains("no_key"), "{log}");
    assert!(s.articles().is_empty());
    assert_eq!(before, s.db_snapshot());
}

#[test]
fn a_request_to_addresses_that_never_answer_does_not_hold_the_delivery() {
    let s = Server::new(&["nym.example"]);
    s.set("url", "allow_private", "true");
    let g = Gpg::new();
    g.import(&s.key_export());
    // A listener that accepts and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let urls: String = (0..10).map(|i| format!("url: http://127.0.0.1:{port}/{i}\n")).collect();
    let enc = g.encrypt("url@nym.example", format!("{urls}key: k\n").as_bytes());
    assert_eq!(s.deliver_pgp("url@nym.example", &enc), 0);
    // The delivery itself never connects (it waited 10 x 30 s before).
    l.set_nonblocking(true).unwrap();
    assert!(l.accept().is_err(), "the delivery connected to the address");
    l.set_nonblocking(false).unwrap();
    // The flush answers within the request's total budget.
    s.set("url", "request_timeout", "3");
    s.set("url", "timeout", "2");
    s.flush();
    let arts = s.articles_for_hsub("k");
    assert_eq!(arts.len(), 1);
    let text = String::from_utf8_lossy(&g.decrypt_pass(arts[0].body.as_bytes(), "k").stdout).into_owned();
    assert!(text.contains("time limit"), "{text}");
    drop(l);
}

#[test]
fn replies_are_capped_below_the_news_article_limit() {
    let s = Server::new(&["nym.example"]);
    s.set("url", "allow_private", "true");
    let g = Gpg::new();
    g.import(&s.key_export());
    let big: &'static str = Box::leak("x".repeat(3 * 1024 * 1024).into_boxed_str());
    let port = http_page(big);
    request(&s, &g, &format!("url: http://127.0.0.1:{port}/a\nurl: http://127.0.0.1:{port}/b\nkey: k\n"));
    let arts = s.articles_for_hsub("k");
    assert_eq!(arts.len(), 1);
    let size = arts[0].headers.len() + arts[0].body.len();
    assert!(size < 1_000_000, "article of {size} bytes passes INN's default limit");
    let text = String::from_utf8_lossy(&g.decrypt_pass(arts[0].body.as_bytes(), "k").stdout).into_owned();
    assert!(text.contains("truncated") || text.contains("size limit"), "{}", &text[..400.min(text.len())]);
}

#[test]
fn url_requests_are_capped_per_hour() {
    let s = Server::new(&["nym.example"]);
    s.set("url", "max_per_hour", "2");
    let g = Gpg::new();
    g.import(&s.key_export());
    let enc = g.encrypt("url@nym.example", b"url: http://127.0.0.1:1/\nkey: k\n");
    for i in 0..3 {
        let (code, log) =
            s.deliver_logged("url@nym.example", &[format!("Subject: {i}\n\n").as_bytes(), &enc].concat());
        assert_eq!(code, 0);
        assert_eq!(log.contains("url_rate_limited"), i == 2, "{i}: {log}");
    }
}

#[test]
fn reply_names_no_host() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    request(&s, &g, "url: http://127.0.0.1:1/\nkey: k\n");
    let arts = s.articles_for_hsub("k");
    let text = String::from_utf8_lossy(&g.decrypt_pass(arts[0].body.as_bytes(), "k").stdout).into_owned();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let msgid = text.lines().find(|l| l.starts_with("Message-ID:")).unwrap();
    assert!(msgid.ends_with("@nym.example>"), "{msgid}");
    assert!(!text.contains(host.trim()) && !arts[0].headers.contains(host.trim()));
}
