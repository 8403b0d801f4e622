//! The life of a nym, driven by `flush` (the timer) with its clock moved
//! ahead through the `NYMGATE_TEST_NOW` test hook: expiry warnings,
//! automatic expiry, and the optional inactivity rule.

use crate::util::*;

const DAY: i64 = 86400;

/// `flush` as if the clock said `t`; returns its log lines.
fn flush_at(s: &Server, t: i64) -> String {
    let mut c = s.cmd();
    c.arg("flush").env("NYMGATE_TEST_NOW", t.to_string()).env("NYMGATE_LOG_STDERR", "1");
    let out = run(&mut c, None);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "flush failed: {log}");
    log
}

/// One integer from the database.
fn db_int(s: &Server, sql: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        s.home.join("nymgate.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).ok().flatten()
}

fn expires(s: &Server) -> i64 {
    db_int(s, "SELECT expires FROM nyms").expect("the nym has an expiry")
}

/// The texts of the articles for `hsub` that are not in `seen` yet (by
/// body), decrypted with the holder's GnuPG; `seen` takes them in.
fn new_texts(s: &Server, g: &Gpg, hsub: &str, seen: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for a in s.articles_for_hsub(hsub) {
        if seen.contains(&a.body) {
            continue;
        }
        seen.push(a.body.clone());
        let o = g.decrypt(a.body.as_bytes());
        assert!(o.ok, "{}", o.stderr);
        out.push(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    out
}

#[test]
fn expiry_warnings_come_at_14_and_2_days_once_each_and_a_refresh_rearms_them() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let mut seen = Vec::new();
    assert_eq!(new_texts(&s, &g, "panda", &mut seen).len(), 1, "the creation notice");
    let e = expires(&s);
    flush_at(&s, e - 20 * DAY);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty(), "too early for a warning");
    let log = flush_at(&s, e - 13 * DAY - 3600);
    assert!(!log.contains("alice"), "the log names the nym: {log}");
    let t = new_texts(&s, &g, "panda", &mut seen);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].contains("alice@nym.example expires on") && t[0].contains("in 14 day(s)"), "{}", t[0]);
    assert!(t[0].contains("nym renew") && t[0].contains("config@nym.example"), "{}", t[0]);
    flush_at(&s, e - 13 * DAY);
    flush_at(&s, e - 3 * DAY);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty(), "the 14-day warning is sent once");
    flush_at(&s, e - DAY - 600);
    let t = new_texts(&s, &g, "panda", &mut seen);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].contains("in 2 day(s)"), "{}", t[0]);
    flush_at(&s, e - DAY);
    flush_at(&s, e - 60);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty(), "the 2-day warning is sent once");

    // A refresh with a new expiry date re-arms both.
    let fpr = g.fingerprint("alice@nym.example");
    g.ok(&["--passphrase", "", "--quick-set-expire", &fpr, "2y"], b"");
    g.ok(&["--passphrase", "", "--quick-set-expire", &fpr, "2y", "*"], b"");
    let req = g.creation_request("alice@nym.example", "nym.example", "");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let t = new_texts(&s, &g, "panda", &mut seen);
    assert!(t.iter().any(|t| t.contains("key was refreshed")), "{t:?}");
    let e2 = expires(&s);
    assert!(e2 > e + 300 * DAY, "expiry not moved");
    flush_at(&s, e2 - 10 * DAY);
    let t = new_texts(&s, &g, "panda", &mut seen);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].contains("in 10 day(s)"), "{}", t[0]);
    flush_at(&s, e2 - DAY);
    assert_eq!(new_texts(&s, &g, "panda", &mut seen).len(), 1, "the 2-day warning again");
    // The old date's warnings do not come back either.
    flush_at(&s, e - DAY);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty());
}

#[test]
fn warn_days_are_configurable_and_empty_means_no_warning() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let mut seen = Vec::new();
    new_texts(&s, &g, "panda", &mut seen);
    let e = expires(&s);
    s.set("lifecycle", "warn_days", "[30]");
    flush_at(&s, e - 20 * DAY);
    let t = new_texts(&s, &g, "panda", &mut seen);
    assert_eq!(t.len(), 1, "{t:?}");
    flush_at(&s, e - DAY);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty(), "no 2-day warning when only 30 is set");
    let (s, g) = server_with_nym("bob", "hsub: koala\n");
    let mut seen = Vec::new();
    new_texts(&s, &g, "koala", &mut seen);
    s.set("lifecycle", "warn_days", "[]");
    flush_at(&s, expires(&s) - DAY);
    assert!(new_texts(&s, &g, "koala", &mut seen).is_empty());
}

/// Neither the nym's name nor its key's fingerprint anywhere in the
/// database files or the recipient table.
fn assert_erased(s: &Server, name: &str, fpr: &str) {
    assert!(s.admin(&["nym", "list"]).stdout.is_empty(), "the nym is still listed");
    for f in ["nymgate.db", "nymgate.db-wal", "recipients"] {
        let Ok(bytes) = std::fs::read(s.home.join(f)) else { continue };
        let hay = String::from_utf8_lossy(&bytes).to_string();
        assert!(!hay.contains(&format!("{name}@nym.example")), "{f} still holds the nym name");
        assert!(!hay.contains(fpr), "{f} still holds the fingerprint");
    }
}

#[test]
fn an_expired_nym_is_erased_by_flush_as_a_delete_erases_it() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let fpr = g.fingerprint("alice@nym.example");
    let table = std::fs::read_to_string(s.home.join("recipients")).unwrap();
    assert!(table.contains("alice@nym.example"), "{table}");
    let e = expires(&s);
    flush_at(&s, e - 1);
    assert!(!s.admin(&["nym", "list"]).stdout.is_empty(), "erased before its expiry");
    let log = flush_at(&s, e);
    assert!(log.contains("event=expire outcome=erased count=1"), "{log}");
    assert!(!log.contains("alice"), "the log names the nym: {log}");
    assert_erased(&s, "alice", &fpr);
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: x\n\nhello\n"), 67);
}

#[test]
fn expire_grace_keeps_an_expired_nym_that_many_days() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let fpr = g.fingerprint("alice@nym.example");
    s.set("lifecycle", "expire_grace", "3");
    let e = expires(&s);
    flush_at(&s, e + 3 * DAY - 1);
    assert!(!s.admin(&["nym", "list"]).stdout.is_empty(), "erased within the grace period");
    // `nym expire` follows the same rule as the timer.
    let out =
        s.cmd().args(["nym", "expire"]).env("NYMGATE_TEST_NOW", (e + 3 * DAY).to_string()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_erased(&s, "alice", &fpr);
}

#[test]
fn inactivity_is_off_by_default_and_keeps_no_activity_day() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let mut seen = Vec::new();
    new_texts(&s, &g, "panda", &mut seen);
    let req = g.sign_encrypt("config@nym.example", "alice@nym.example", b"");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    assert_eq!(new_texts(&s, &g, "panda", &mut seen).len(), 1, "the status notice");
    let now = nymgate::store::now();
    flush_at(&s, now + 300 * DAY);
    assert!(!s.admin(&["nym", "list"]).stdout.is_empty(), "erased without the rule");
    // The status and the creation were signed requests: nothing kept.
    assert_eq!(db_int(&s, "SELECT active_day FROM nyms"), Some(0));
    let t = new_texts(&s, &g, "panda", &mut seen);
    assert!(t.iter().all(|t| !t.contains("sent no signed request")), "{t:?}");
}

#[test]
fn inactivity_rule_warns_then_erases_and_a_signed_request_resets_it() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let fpr = g.fingerprint("alice@nym.example");
    let mut seen = Vec::new();
    new_texts(&s, &g, "panda", &mut seen);
    s.set("lifecycle", "inactive_warn_days", "90");
    s.set("lifecycle", "inactive_delete_days", "120");
    let now = nymgate::store::now();
    let today = now.div_euclid(DAY);
    // Switched on: the count starts at the flush that first sees it (made
    // 10 days ago here, so that a request today moves the day).
    flush_at(&s, now - 10 * DAY);
    assert_eq!(db_int(&s, "SELECT active_day FROM nyms"), Some(today - 10));
    flush_at(&s, now + 79 * DAY);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty(), "warned too early");
    flush_at(&s, now + 80 * DAY);
    let t = new_texts(&s, &g, "panda", &mut seen);
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].contains("sent no signed request to this server for 90 days"), "{}", t[0]);
    flush_at(&s, now + 81 * DAY);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty(), "the warning is sent once");

    // A signed request today: the day moves, the rule starts again.
    let req = g.sign_encrypt("config@nym.example", "alice@nym.example", b"");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    assert_eq!(db_int(&s, "SELECT active_day FROM nyms"), Some(today));
    new_texts(&s, &g, "panda", &mut seen);
    flush_at(&s, now + 89 * DAY);
    assert!(new_texts(&s, &g, "panda", &mut seen).is_empty());
    flush_at(&s, now + 90 * DAY);
    assert_eq!(new_texts(&s, &g, "panda", &mut seen).len(), 1, "warned again after new silence");
    flush_at(&s, now + 119 * DAY);
    assert!(!s.admin(&["nym", "list"]).stdout.is_empty(), "erased a day early");
    let log = flush_at(&s, now + 120 * DAY);
    assert!(log.contains("event=inactive outcome=erased count=1"), "{log}");
    assert!(!log.contains("alice"), "the log names the nym: {log}");
    assert_erased(&s, "alice", &fpr);
}

#[test]
fn switching_the_inactivity_rule_off_forgets_the_activity_days() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    s.set("lifecycle", "inactive_warn_days", "90");
    let now = nymgate::store::now();
    flush_at(&s, now);
    assert_eq!(db_int(&s, "SELECT active_day FROM nyms"), Some(now.div_euclid(DAY)));
    s.set("lifecycle", "inactive_warn_days", "0");
    flush_at(&s, now);
    assert_eq!(db_int(&s, "SELECT active_day FROM nyms"), Some(0));
}

#[test]
fn the_inactivity_rule_leaves_a_disabled_nym_to_the_operator() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    s.set("lifecycle", "inactive_warn_days", "90");
    s.set("lifecycle", "inactive_delete_days", "120");
    let now = nymgate::store::now();
    flush_at(&s, now);
    assert!(s.admin(&["nym", "disable", "alice@nym.example"]).status.success());
    let before = s.articles().len();
    flush_at(&s, now + 200 * DAY);
    assert!(String::from_utf8_lossy(&s.admin(&["nym", "list"]).stdout).contains("disabled"));
    assert_eq!(s.articles().len(), before, "a disabled nym is not warned");
    assert!(s.admin(&["nym", "enable", "alice@nym.example"]).status.success());
    let log = flush_at(&s, now + 200 * DAY);
    assert!(log.contains("event=inactive outcome=erased count=1"), "{log}");
}
