//! url@ (PROTOCOL.md section 8) against a local HTTP server.

use crate::util::*;

fn request(s: &Server, g: &Gpg, text: &str) {
    let enc = g.encrypt("url@nym.example", text.as_bytes());
    assert_eq!(s.deliver_pgp("url@nym.example", &enc), 0);
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
