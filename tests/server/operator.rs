//! The operator's commands against the real binary: key add-domain,
//! status, queue, check, man pages.

use crate::util::*;

#[test]
fn a_domain_added_after_init_gets_its_user_ids_and_works() {
    let s = Server::new(&["nym.example"]);
    s.edit_config(|t| {
        t.replace("domains = [\"nym.example\"]", "domains = [\"nym.example\", \"second.example\"]")
    });
    let out = s.admin(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(78), "{text}");
    assert!(text.contains("FAIL the server key has a User ID for config@second.example"), "{text}");
    let out = s.admin(&["key", "add-domain", "second.example"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.home.join("server.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // A holder encrypts to config@second.example with the re-published key.
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("bob@second.example");
    let req = g.creation_request("bob@second.example", "second.example", "hsub: bob\n");
    assert_eq!(s.deliver_pgp("config@second.example", &req), 0);
    assert!(String::from_utf8_lossy(&s.admin(&["nym", "list"]).stdout).contains("bob@second.example"));
    let table = std::fs::read_to_string(s.home.join("recipients")).unwrap();
    assert!(table.contains("config@second.example config@second.example\n"), "{table}");
    let out = s.admin(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("ok   the server key has a User ID for url@second.example"), "{text}");
}

#[test]
fn status_and_queue_show_counts_never_content() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    // A news transport that is down: the mail to alice waits in the queue.
    s.set("news", "transport", "\"inews\"");
    s.set("news", "inews", "[\"/nonexistent/inews\"]");
    assert_eq!(s.deliver_raw("alice@nym.example", b"Subject: secret subject\n\nsecret body\n"), 0);
    let status = String::from_utf8(s.admin(&["status"]).stdout).unwrap();
    assert!(status.contains("nyms:        1 active, 0 disabled, 0 expired"), "{status}");
    assert!(status.contains("outbox:      news: 1 queued"), "{status}");
    assert!(!status.contains("alice") && !status.contains("secret"), "{status}");
    let json = String::from_utf8(s.admin(&["status", "--json"]).stdout).unwrap();
    assert!(json.starts_with("{\"nyms\":{\"active\":1,"), "{json}");
    let list = String::from_utf8(s.admin(&["queue", "list"]).stdout).unwrap();
    assert!(!list.contains("alice") && !list.contains("secret"), "{list}");
    let id = list.lines().nth(1).unwrap().split('\t').next().unwrap().to_string();
    assert!(s.admin(&["queue", "retry", &id]).status.success());
    assert!(s.admin(&["queue", "drop", &id]).status.success());
    assert!(!s.admin(&["queue", "drop", &id]).status.success(), "dropping twice must fail");
    let status = String::from_utf8(s.admin(&["status"]).stdout).unwrap();
    assert!(status.contains("outbox:      empty"), "{status}");
}

#[test]
fn man_pages_and_completions_come_from_the_cli() {
    let s = Server::new(&["nym.example"]);
    let dir = s.dir.path().join("man");
    let out = s.admin(&["manpage", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(dir.join("nymgate.8")).unwrap();
    assert!(page.contains(".TH nymgate 8"), "{}", &page[..200.min(page.len())]);
    assert!(dir.join("nymgate-deliver.8").is_file() && dir.join("nymgate-status.8").is_file());
    let out = s.admin(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nymgate"));
}

#[test]
fn init_takes_an_empty_home_made_by_the_package_but_never_a_used_one() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = std::process::Command::new(NYMGATE)
        .args(["init", "--domain", "nym.example", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = std::process::Command::new(NYMGATE)
        .args(["init", "--domain", "nym.example", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[test]
fn a_stale_recipient_table_is_repaired_by_flush() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    let table = || std::fs::read_to_string(s.home.join("recipients")).unwrap();
    assert!(table().contains("alice@nym.example alice@nym.example\n"));
    std::fs::remove_file(s.home.join("recipients")).unwrap();
    s.flush();
    assert!(table().contains("alice@nym.example alice@nym.example\n"));
}
