//! The client reads a newsgroup anyone can post to: hostile articles
//! against the real `nym` binary (issue 10, client items).

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

struct Holder {
    _t: tempfile::TempDir,
    srv: Server,
    home: PathBuf,
    g: PathBuf,
}

impl Holder {
    fn new() -> Holder {
        let t = tempfile::tempdir().unwrap();
        let srv = Server::for_client("nym.test");
        let h = Holder { home: t.path().join("home"), g: gnupg_home(t.path()), srv, _t: t };
        let via = h.srv.via();
        ok(
            h.nym()
                .args(["new", "alice@nym.test", "--hsub", "panda", "--expire", "6m", "--via", &via])
                .arg("--server-key")
                .arg(h.srv.key_file()),
            None,
        );
        h
    }

    fn nym(&self) -> Command {
        nym(&self.home, &self.g)
    }

    fn spool(&self) -> String {
        format!("spool:{}", self.srv.news_spool().display())
    }

    fn fetch(&self) -> String {
        self.srv.flush();
        ok(self.nym().args(["fetch", "--server", &self.spool()]), None)
    }
}

#[test]
fn escape_sequences_cannot_rewrite_the_terminal_or_the_verdict() {
    let h = Holder::new();
    // Mail to the nym whose body clears the screen, retitles the window and
    // prints a fake verdict.
    let evil = b"Subject: hi\n\n\x1b[2J\x1b]0;pwned\x07<== 1: notice from the server (config@); server signature: good\x1b[1A\x1b[2K\n";
    assert_eq!(h.srv.deliver_raw("alice@nym.test", evil), 0);
    h.fetch();
    let out = run(h.nym().arg("read").env("NYM_FORCE_TTY", "1"), None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains("^[[2J") && text.contains("^[]0;pwned^G"), "{text}");
    // The real verdict of the relayed mail comes after its content.
    let fake = text.find("^[[1A").expect("the fake line is shown");
    let real = text.rfind("mail relayed to you by the server; server signature: good").expect("verdict");
    assert!(real > fake, "{text}");
}

#[test]
fn a_forged_notice_is_shown_as_relayed_mail() {
    let h = Holder::new();
    let forged = b"From: config@nym.test\nSubject: Nym deleted\n\nRe-create your nym with the key below.\n";
    assert_eq!(h.srv.deliver_raw("alice@nym.test", forged), 0);
    h.fetch();
    let text = ok(h.nym().arg("read"), None);
    // The creation confirmation is a notice; the forged one is relayed mail.
    assert_eq!(text.matches("notice from the server (config@)").count(), 1, "{text}");
    assert_eq!(text.matches("mail relayed to you by the server").count(), 1, "{text}");
    let forged_at = text.find("Re-create your nym").unwrap();
    let relayed_at = text.find("mail relayed to you by the server").unwrap();
    assert!(relayed_at > forged_at);
}

#[test]
fn a_huge_spool_file_that_is_not_ours_is_skipped_without_reading_it() {
    let h = Holder::new();
    h.fetch();
    // 256 MiB, sparse: a Subject that is nobody's, then nothing.
    let big = h.srv.news_spool().join("huge.art");
    std::fs::write(
        &big,
        b"Subject: 0123456789abcdef0123456789abcdef0123456789abcdef\nMessage-ID: <huge@x>\n\n",
    )
    .unwrap();
    std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(256 * 1024 * 1024).unwrap();
    let rss = h.home.join("../rss");
    let mut c = Command::new("/usr/bin/time");
    c.arg("-f").arg("%M").arg("-o").arg(&rss).arg(NYM);
    c.arg("--home").arg(&h.home).env("GNUPGHOME", &h.g).env_remove("NYM_VIA");
    c.args(["fetch", "--server", &h.spool()]);
    let out = run(&mut c, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kib: u64 = std::fs::read_to_string(&rss).unwrap().trim().lines().last().unwrap().parse().unwrap();
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB for a 256 MiB article that is not ours");
}
