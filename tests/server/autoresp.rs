//! The autoresponders through the real binary: answers leave through the
//! outbox (mail spool here), the loop rules hold, the caps count, and the
//! recipient table follows the switches.

use crate::util::Server;

fn server() -> Server {
    let s = Server::new(&["nym.example"]);
    s.set("mail", "transport", "\"spool\"");
    s
}

fn ask(to: &str, extra: &str) -> Vec<u8> {
    format!("From: Asker <asker@outside.example>\nTo: {to}\nSubject: hi\nMessage-ID: <q@outside.example>\n{extra}\nplease\n")
        .into_bytes()
}

#[test]
fn help_is_answered_through_the_outbox_with_auto_submitted() {
    let s = server();
    assert_eq!(s.deliver_raw("help@nym.example", &ask("help@nym.example", "")), 0);
    let mails = s.take_mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert!(m.contains("Auto-Submitted: auto-replied"), "{m}");
    assert!(m.contains("X-Loop: nym.example") && m.contains("To: asker@outside.example"), "{m}");
    assert!(m.contains("config@nym.example") && m.contains("Reply-Block:"), "{m}");
}

#[test]
fn the_operator_help_file_is_sent_when_configured() {
    let s = server();
    let p = s.dir.path().join("help.txt");
    std::fs::write(&p, "Ask the operator at DOMAIN.\n").unwrap();
    s.set("autoresponders", "help_file", &format!("{:?}", p.display().to_string()));
    assert_eq!(s.deliver_raw("help@nym.example", &ask("help@nym.example", "")), 0);
    let mails = s.take_mails();
    assert!(mails[0].contains("Ask the operator at nym.example."), "{mails:?}");
}

#[test]
fn no_answer_to_loops_robots_and_lists() {
    let s = server();
    for extra in
        ["X-Loop: nym.example\n", "Auto-Submitted: auto-replied\n", "Precedence: bulk\n", "List-Id: <l.x>\n"]
    {
        assert_eq!(s.deliver_raw("help@nym.example", &ask("help@nym.example", extra)), 0, "{extra}");
    }
    // A null envelope sender, as Exim's Return-Path shows it.
    let mut c = s.cmd();
    c.args(["deliver", "--recipient", "help@nym.example"]);
    let mut m = b"Return-Path: <>\n".to_vec();
    m.extend(ask("help@nym.example", ""));
    assert_eq!(crate::util::run(&mut c, Some(&m)).status.code(), Some(0));
    assert!(s.take_mails().is_empty());
}

#[test]
fn the_per_address_cap_holds_across_deliveries() {
    let s = server();
    for i in 0..5 {
        let m = ask("help@nym.example", &format!("X-N: {i}\n"));
        assert_eq!(s.deliver_raw("help@nym.example", &m), 0);
    }
    assert_eq!(s.take_mails().len(), 3);
}

#[test]
fn remailer_key_sends_the_server_key_and_the_capability_line_when_on() {
    let s = server();
    assert_eq!(s.deliver_raw("remailer-key@nym.example", &ask("remailer-key@nym.example", "")), 0);
    let m = s.take_mails().remove(0);
    assert!(m.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") && !m.contains("$remailer{"), "{m}");
    s.set("remailer", "enabled", "true");
    let q = ask("remailer-key@nym.example", "X-N: 2\n");
    assert_eq!(s.deliver_raw("remailer-key@nym.example", &q), 0);
    let m = s.take_mails().remove(0);
    assert!(m.contains("$remailer{\"nym\"} = \"<remailer@nym.example> cpunk middle pgp pgponly"), "{m}");
}

#[test]
fn list_is_refused_until_switched_on() {
    let s = server();
    assert_eq!(s.deliver_raw("list@nym.example", &ask("list@nym.example", "")), 67);
    assert_eq!(s.deliver_raw("used@nym.example", &ask("used@nym.example", "")), 67);
    assert!(s.take_mails().is_empty());
    s.set("autoresponders", "list", "true");
    assert_eq!(s.deliver_raw("list@nym.example", &ask("list@nym.example", "")), 0);
    let m = s.take_mails().remove(0);
    assert!(m.contains("help@nym.example\n") && m.contains("config@nym.example\n"), "{m}");
}

#[test]
fn nobody_accepts_and_discards() {
    let s = server();
    assert_eq!(s.deliver_raw("nobody@nym.example", &ask("nobody@nym.example", "")), 0);
    assert!(s.take_mails().is_empty());
    assert!(s.articles().is_empty());
}
