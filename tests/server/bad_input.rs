//! Bad input: every case ends with its documented exit code, no panic, and
//! an unchanged database (PROTOCOL.md section 9).

use crate::util::*;

/// Deliver `raw` and check the exit code and that nothing changed.
fn refused(s: &Server, rcpt: &str, raw: &[u8], code: i32) {
    refused_because(s, rcpt, raw, code, "");
}

/// Same, and the log names `outcome` as the reason.
fn refused_because(s: &Server, rcpt: &str, raw: &[u8], code: i32, outcome: &str) {
    let before = s.db_snapshot();
    let arts = s.articles().len();
    let (got, log) = s.deliver_logged(rcpt, raw);
    assert_eq!(got, code, "exit code for {rcpt}: {log}");
    assert!(log.contains(outcome), "expected outcome {outcome:?} in log: {log}");
    assert_eq!(before, s.db_snapshot(), "database changed");
    assert_eq!(arts, s.articles().len(), "something was posted");
}

fn pgp_mail(rcpt: &str, armored: &[u8]) -> Vec<u8> {
    let mut m = format!("To: {rcpt}\nSubject: x\n\n").into_bytes();
    m.extend_from_slice(armored);
    m
}

#[test]
fn empty_stdin() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    refused(&s, "config@nym.example", b"", 0);
    refused(&s, "send@nym.example", b"", 0);
    refused(&s, "alice@nym.example", b"", 65);
}

#[test]
fn non_mime_garbage() {
    let (s, _g) = server_with_nym("alice", "");
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    refused_because(&s, "config@nym.example", &garbage, 0, "no_pgp_message");
    refused(&s, "send@nym.example", &garbage, 0);
    refused(&s, "url@nym.example", &garbage, 0);
}

#[test]
fn pgp_message_for_another_key() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.gen_modern("stranger@elsewhere.example");
    let mut text = b"hsub: x\n".to_vec();
    let other = Gpg::new();
    other.gen_modern("alice@nym.example");
    text.extend_from_slice(&other.export("alice@nym.example"));
    let enc = g.encrypt("stranger@elsewhere.example", &text);
    refused_because(&s, "config@nym.example", &pgp_mail("config@nym.example", &enc), 0, "not_for_server_key");
}

#[test]
fn truncated_armor() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("alice@nym.example");
    let req = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    let text = String::from_utf8(req).unwrap();
    // Cut in the middle of the base64, and also drop the END line.
    let cut = &text[..text.len() / 2];
    refused_because(&s, "config@nym.example", &pgp_mail("config@nym.example", cut.as_bytes()), 0, "outcome=");
    let mut no_end = cut.to_string();
    no_end.push_str("\n-----END PGP MESSAGE-----\n");
    refused(&s, "config@nym.example", &pgp_mail("config@nym.example", no_end.as_bytes()), 0);
}

#[test]
fn key_block_with_two_keys() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("alice@nym.example");
    g.gen_modern("bob@nym.example");
    let mut text = b"hsub: panda\n".to_vec();
    text.extend_from_slice(&g.ok(&["--armor", "--export", "alice@nym.example", "bob@nym.example"], b""));
    let enc = g.encrypt("config@nym.example", &text);
    refused_because(&s, "config@nym.example", &pgp_mail("config@nym.example", &enc), 0, "more_than_one_key");
}

#[test]
fn key_with_two_user_ids_in_our_domains() {
    let s = Server::new(&["nym.example", "other.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("alice@nym.example");
    let fpr = g.fingerprint("alice@nym.example");
    g.ok(&["--passphrase", "", "--quick-add-uid", &fpr, "alice2@other.example"], b"");
    let req = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    refused_because(
        &s,
        "config@nym.example",
        &pgp_mail("config@nym.example", &req),
        0,
        "two_hosted_user_ids",
    );
}

#[test]
fn expired_key() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    // Made in 2020 with a one-year lifetime: long expired.
    g.ok(
        &[
            "--faked-system-time",
            "20200101T000000",
            "--passphrase",
            "",
            "--quick-gen-key",
            "alice@nym.example",
            "future-default",
            "default",
            "1y",
        ],
        b"",
    );
    let req = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    refused_because(&s, "config@nym.example", &pgp_mail("config@nym.example", &req), 0, "key_expired");
}

#[test]
fn revoked_key() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("alice@nym.example");
    let fpr = g.fingerprint("alice@nym.example");
    // GnuPG keeps a ready revocation certificate, defused by a leading colon.
    let rev = std::fs::read_to_string(g.home().join("openpgp-revocs.d").join(format!("{fpr}.rev"))).unwrap();
    g.import(
        rev.replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
            .as_bytes(),
    );
    let req = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    refused_because(&s, "config@nym.example", &pgp_mail("config@nym.example", &req), 0, "key_revoked");
}

#[test]
fn key_that_cannot_encrypt() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_sign_only("alice@nym.example");
    let req = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    refused_because(&s, "config@nym.example", &pgp_mail("config@nym.example", &req), 0, "key_cannot_encrypt");
}

#[test]
fn key_outside_our_domains() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("alice@elsewhere.example");
    let req = g.creation_request("alice@elsewhere.example", "nym.example", "hsub: panda\n");
    refused_because(&s, "config@nym.example", &pgp_mail("config@nym.example", &req), 0, "no_hosted_user_id");
}

#[test]
fn message_over_the_size_limit() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    s.set("limits", "max_message_size", "2000");
    let mut big = b"Subject: big\n\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 3000));
    refused_because(&s, "alice@nym.example", &big, 65, "size limit");
    refused(&s, "config@nym.example", &big, 65);
    // At the limit it still goes through.
    let mut fits = b"Subject: fits\n\n".to_vec();
    fits.resize(2000, b'y');
    assert_eq!(s.deliver_raw("alice@nym.example", &fits), 0);
}

#[test]
fn unknown_nym_and_foreign_domain_bounce() {
    let (s, _g) = server_with_nym("alice", "");
    refused(&s, "nobody-here@nym.example", b"Subject: x\n\nhello\n", 67);
    refused(&s, "alice@not-hosted.example", b"Subject: x\n\nhello\n", 67);
    refused(&s, "no-at-sign", b"Subject: x\n\nhello\n", 67);
}

#[test]
fn unsigned_reconfiguration_is_ignored() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let enc = g.encrypt("config@nym.example", b"hsub: hijacked\ndelete: yes\n");
    refused_because(
        &s,
        "config@nym.example",
        &pgp_mail("config@nym.example", &enc),
        0,
        "unsigned_without_key",
    );
}

#[test]
fn unsafe_permissions_defer() {
    let (s, _g) = server_with_nym("alice", "");
    use std::os::unix::fs::PermissionsExt;
    let db = s.home.join("nymgate.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 75);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = s.home.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 75);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 0);
}

#[test]
fn busy_database_defers_then_delivers_once() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    s.set("limits", "busy_timeout", "1");
    let conn = rusqlite::Connection::open(s.home.join("nymgate.db")).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mail = b"Subject: x\n\nwhile locked\n";
    assert_eq!(s.deliver_raw("alice@nym.example", mail), 75);
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    assert_eq!(s.deliver_raw("alice@nym.example", mail), 0);
    // The same delivery retried by the MTA is not posted twice.
    assert_eq!(s.deliver_raw("alice@nym.example", mail), 0);
    assert_eq!(s.articles_for_hsub("panda").len(), 2, "confirmation + one posting");
}

#[test]
fn missing_configuration_defers() {
    let mut c = std::process::Command::new(NYMGATE);
    c.args(["--config", "/nonexistent/nymgate.toml", "deliver", "--recipient", "a@b"]);
    let out = run(&mut c, Some(b"Subject: x\n\nx\n"));
    assert_eq!(out.status.code(), Some(75));
}
