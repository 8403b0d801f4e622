//! Mail to a nym with confirmed reply blocks (REPLY-BLOCKS.md 7.1 to 7.5)
//! against the real binary and real GnuPG: a nym made by a `Config:`
//! request with its blocks, confirmed by mail to `confirm+COOKIE@`, then
//! outside mail to it. What goes to the Type I engine is read from the
//! engine-input spool of debug builds (`NYMGATE_BLOCK_SPOOL_FOR_TEST`):
//! each input is the block text, then the payload.

use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};

pub(crate) const BLOCK: &str = "::\nAnon-To: quill@box.example\n\n";

/// A confirmed reply-block nym `quill@nym.example` and the spool its
/// deliveries are read from (emptied after the confirmation).
pub(crate) struct Nym {
    pub(crate) s: Server,
    pub(crate) g: Gpg,
    pub(crate) spool: PathBuf,
}

impl Nym {
    /// Create `quill` with these `Nym-Commands:` (after `create`) and these
    /// `Reply-Block:` sections, and confirm them.
    pub(crate) fn new(commands: &str, blocks: &str, setup: impl FnOnce(&Server)) -> Nym {
        let s = Server::new(&["nym.example"]);
        setup(&s);
        let g = Gpg::new();
        let spool = s.dir.path().join("blocks");
        fs::create_dir_all(&spool).unwrap();
        g.import(&s.key_export());
        g.gen_modern("quill@nym.example");
        let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
        let text =
            format!("Config:\nFrom: quill\nNym-Commands: create {commands}\nPublic-Key:\n{key}{blocks}");
        let n = Nym { s, g, spool };
        n.config(&text);
        // The creation reply goes through every block the selection picks:
        // look for the cookie in each.
        let cookie = n
            .inputs()
            .iter()
            .find_map(|i| {
                let p = n.open_or_plain(i);
                p.lines().find_map(|l| l.strip_prefix("Reply-To: confirm+").map(|c| c[..32].to_string()))
            })
            .expect("a creation reply with the cookie");
        let (code, log) =
            n.deliver(&format!("confirm+{cookie}@nym.example"), "a@b.example", b"Subject: ok\n\ny\n");
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("outcome=confirmed"), "{log}");
        n.clear();
        n
    }

    /// A signed `Config:` request from the holder, which must be taken.
    pub(crate) fn config(&self, text: &str) {
        let armored = self.g.sign_encrypt("config@nym.example", "quill@nym.example", text.as_bytes());
        let mut m = format!(
            "From: anon@remailer.example\nTo: config@nym.example\nSubject: c\nMessage-ID: <{}@t>\n\n",
            rand_hex()
        )
        .into_bytes();
        m.extend_from_slice(&armored);
        let (code, log) = self.deliver("config@nym.example", "anon@remailer.example", &m);
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("outcome=created") || log.contains("outcome=changed"), "{log}");
    }

    /// `deliver` with an envelope sender and the block spool: exit code
    /// and log.
    pub(crate) fn deliver(&self, rcpt: &str, sender: &str, raw: &[u8]) -> (i32, String) {
        let mut c = self.s.cmd();
        c.env("NYMGATE_LOG_STDERR", "1").env("NYMGATE_BLOCK_SPOOL_FOR_TEST", &self.spool);
        c.args(["deliver", "--recipient", rcpt, "--sender", sender]);
        let out = run(&mut c, Some(raw));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!err.contains("panicked"), "{err}");
        (out.status.code().unwrap_or(-1), err)
    }

    /// The engine inputs written so far (in no particular order).
    pub(crate) fn inputs(&self) -> Vec<String> {
        files_in(&self.spool).iter().map(|p| fs::read_to_string(p).unwrap()).collect()
    }

    pub(crate) fn clear(&self) {
        for p in files_in(&self.spool) {
            fs::remove_file(p).unwrap();
        }
    }

    /// The payload of an engine input, decrypted and its signature
    /// checked by gpg; a plaintext payload as it is.
    pub(crate) fn open_or_plain(&self, input: &str) -> String {
        match input.find("-----BEGIN PGP MESSAGE-----") {
            Some(at) => {
                let o = self.g.decrypt(&input.as_bytes()[at..]);
                assert!(o.ok, "{}", o.stderr);
                assert!(o.stderr.contains("Good signature"), "{}", o.stderr);
                String::from_utf8(o.stdout).unwrap()
            }
            None => input.to_string(),
        }
    }

    pub(crate) fn db<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        let c = rusqlite::Connection::open_with_flags(
            self.s.home.join("nymgate.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

pub(crate) fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "block"))
        .collect();
    v.sort();
    v
}

pub(crate) fn mail(to: &str, tag: &str) -> Vec<u8> {
    format!(
        "From: bob@example.org\nTo: {to}\nSubject: {tag}\nMessage-ID: <{tag}@example.org>\n\nhello {tag}\n"
    )
    .into_bytes()
}

#[test]
fn mail_through_a_confirmed_block_is_signed_encrypted_with_the_trailer() {
    let n = Nym::new("", &format!("Reply-Block:\n{BLOCK}"), |_| {});
    let raw = mail("quill@nym.example", "t1");
    let (code, log) = n.deliver("quill@nym.example", "bob@example.org", &raw);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=posted"), "{log}");
    let inputs = n.inputs();
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].starts_with(BLOCK), "{}", inputs[0]);
    let after = &inputs[0][BLOCK.len()..];
    assert!(after.starts_with("-----BEGIN PGP MESSAGE-----"), "the payload follows the block at once");
    assert!(!after.contains("hello t1"), "encrypted");
    // Hidden key ID: the first remote hop cannot tell whom it is for.
    let packets = n.g.run(&["--list-packets"], after.as_bytes());
    assert!(
        String::from_utf8_lossy(&packets.stdout).contains("keyid 0000000000000000"),
        "{}",
        packets.stderr
    );
    let p = n.open_or_plain(&inputs[0]);
    // The message as received, then the trailer; no Received: line.
    let raw = String::from_utf8(raw).unwrap();
    assert!(p.starts_with(&raw), "{p}");
    let trailer: Vec<&str> = p[raw.len()..].lines().collect();
    assert_eq!(trailer[0], "~~~", "{p}");
    assert!(trailer[1].contains("certifies only") && trailer[2].contains("no endorsement"), "{p}");
    assert!(trailer[3].starts_with("Date: ") && trailer[3].ends_with("+0000"), "{p}");
    assert_eq!(trailer[4], "To: quill@nym.example");
    assert_eq!(trailer.len(), 5);
    assert!(!p.contains("Received:"), "{p}");
    // Nothing on alt.anonymous.messages; one unit spent.
    assert!(n.s.articles().is_empty());
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), 1);

    // To an extension: the trailer names it.
    n.clear();
    let (code, log) = n.deliver("quill+shop-2@nym.example", "bob@example.org", &mail("x@y.example", "t2"));
    assert_eq!(code, 0, "{log}");
    let p = n.open_or_plain(&n.inputs()[0]);
    assert!(p.ends_with("To: quill+shop-2@nym.example\n"), "{p}");
}

#[test]
fn without_cryptrecv_mail_goes_in_clear_and_fixedsize_is_ignored() {
    let n = Nym::new("-cryptrecv +fixedsize", &format!("Reply-Block:\n{BLOCK}"), |_| {});
    let raw = mail("quill@nym.example", "clear");
    assert_eq!(n.deliver("quill@nym.example", "bob@example.org", &raw).0, 0);
    let inputs = n.inputs();
    assert_eq!(inputs.len(), 1);
    assert_eq!(
        inputs[0].as_bytes(),
        [BLOCK.as_bytes(), &raw].concat(),
        "the message as received, nothing added"
    );
    // In clear, every remailer on the way reads it: the trace fields the
    // MTA put on top (naming this host) are removed, nothing else.
    n.clear();
    let traced = [
        &b"Return-Path: <bob@example.org>\nReceived: from mx.example.org\n\tby host7.operator.internal\n\
           Delivered-To: quill@nym.example\n"[..],
        &raw,
    ]
    .concat();
    assert_eq!(n.deliver("quill@nym.example", "bob@example.org", &traced).0, 0);
    assert_eq!(n.inputs()[0].as_bytes(), [BLOCK.as_bytes(), &raw].concat());
}

#[test]
fn the_notice_says_fixedsize_needs_cryptrecv() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    let spool = s.dir.path().join("blocks");
    fs::create_dir_all(&spool).unwrap();
    g.import(&s.key_export());
    g.gen_modern("quill@nym.example");
    let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
    let text =
        format!("Config:\nFrom: quill\nNym-Commands: create -cryptrecv +fixedsize\nPublic-Key:\n{key}Reply-Block:\n{BLOCK}");
    let n = Nym { s, g, spool };
    n.config(&text);
    let inputs = n.inputs();
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].contains("fixedsize has no effect without cryptrecv"), "{}", inputs[0]);
}

#[test]
fn a_nym_without_active_blocks_still_receives_through_aam() {
    // A Zax nym.
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let spool = s.dir.path().join("blocks");
    fs::create_dir_all(&spool).unwrap();
    let mut c = s.cmd();
    c.env("NYMGATE_BLOCK_SPOOL_FOR_TEST", &spool).args(["deliver", "--recipient", "alice@nym.example"]);
    assert!(run(&mut c, Some(&mail("alice@nym.example", "zax"))).status.success());
    assert!(files_in(&spool).is_empty());
    let arts = s.articles_for_hsub("panda");
    assert!(arts
        .iter()
        .any(|a| String::from_utf8_lossy(&g.decrypt(a.body.as_bytes()).stdout).contains("hello zax")));
    // A Config: nym whose block is still pending: a.a.m. too.
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    let spool = s.dir.path().join("blocks");
    fs::create_dir_all(&spool).unwrap();
    g.import(&s.key_export());
    g.gen_modern("quill@nym.example");
    let key = String::from_utf8(g.export("quill@nym.example")).unwrap();
    let n = Nym { s, g, spool };
    n.config(&format!("Config:\nFrom: quill\nNym-Commands: create\nPublic-Key:\n{key}Reply-Block:\n{BLOCK}"));
    n.clear();
    assert_eq!(n.deliver("quill@nym.example", "bob@example.org", &mail("quill@nym.example", "p")).0, 0);
    assert!(n.inputs().is_empty(), "a pending block carries nothing but its confirmation");
    assert_eq!(n.s.articles().len(), 1);
}

#[test]
fn two_half_blocks_share_40_messages_each_in_exactly_one() {
    let blocks = "Reply-Block: a=0.5\n::\nAnon-To: one@box.example\n\nReply-Block: a=0.5\n::\nAnon-To: two@box.example\n\n";
    let n = Nym::new("-cryptrecv", blocks, |_| {});
    for i in 0..40 {
        let (code, log) = n.deliver(
            "quill@nym.example",
            "bob@example.org",
            &mail("quill@nym.example", &format!("m{i:02}x")),
        );
        assert_eq!(code, 0, "{log}");
    }
    let inputs = n.inputs();
    assert_eq!(inputs.len(), 40, "one copy per message");
    let (mut one, mut two) = (0, 0);
    for i in 0..40 {
        let tag = format!("hello m{i:02}x\n");
        let with: Vec<&String> = inputs.iter().filter(|p| p.contains(&tag)).collect();
        assert_eq!(with.len(), 1, "{tag}");
        if with[0].contains("Anon-To: one@box.example") {
            one += 1;
        } else {
            assert!(with[0].contains("Anon-To: two@box.example"));
            two += 1;
        }
    }
    // Each message went through exactly one block; both blocks were used
    // (all 40 through one block: probability 2^-39).
    assert!(one > 0 && two > 0, "{one} / {two}");
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), 40);
}

#[test]
fn daily_units_3_then_69_with_exactly_one_disabled_notice_and_minus_disable_reenables() {
    let n = Nym::new("", &format!("Reply-Block:\n{BLOCK}"), |s| s.set("reply_blocks", "daily_units", "3"));
    for i in 0..3 {
        assert_eq!(
            n.deliver("quill@nym.example", "bob@example.org", &mail("quill@nym.example", &format!("q{i}"))).0,
            0
        );
    }
    assert_eq!(n.inputs().len(), 3);
    n.clear();
    // The fourth would go over: nothing of it is sent, 69, one notice.
    let (code, err) = n.deliver("quill@nym.example", "bob@example.org", &mail("quill@nym.example", "q3"));
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("5.3.0 This nym is disabled."), "{err}");
    assert!(err.contains("outcome=disabled_by_quota"), "{err}");
    let inputs = n.inputs();
    assert_eq!(inputs.len(), 1, "exactly one notice");
    let p = n.open_or_plain(&inputs[0]);
    assert!(p.contains("Subject: Nym disabled by the daily limit"), "{p}");
    assert!(p.contains("reply-block loop") && p.contains("Nym-Commands: -disable"), "{p}");
    assert!(!p.contains("hello q3"));
    assert_eq!(n.db::<i64>("SELECT flags FROM nyms") & 0x200, 0x200);
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), 3, "what was not sent costs nothing");
    // Later mail: refused on arrival, a unit each, no further notice.
    for i in 4..6 {
        let (code, err) =
            n.deliver("quill@nym.example", "bob@example.org", &mail("quill@nym.example", &format!("q{i}")));
        assert_eq!(code, 69, "{err}");
    }
    assert_eq!(n.inputs().len(), 1, "still one notice");
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), 5);
    // Re-enabled by the holder; with room left today, mail flows again.
    n.s.set("reply_blocks", "daily_units", "10");
    n.config("Config:\nFrom: quill\nNym-Commands: -disable\n");
    assert_eq!(n.db::<i64>("SELECT flags FROM nyms") & 0x200, 0);
    n.clear();
    let (code, log) = n.deliver("quill@nym.example", "bob@example.org", &mail("quill@nym.example", "again"));
    assert_eq!(code, 0, "{log}");
    assert!(n.inputs().iter().any(|i| n.open_or_plain(i).contains("hello again")));
}

#[test]
fn nobcc_77_and_disable_69_through_blocks() {
    let n = Nym::new("+nobcc", &format!("Reply-Block:\n{BLOCK}"), |_| {});
    let (code, err) = n.deliver("quill@nym.example", "bob@example.org", &mail("list@lists.example", "b1"));
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("5.7.0 This nym does not accept blind copies"), "{err}");
    assert!(n.inputs().is_empty());
    assert_eq!(
        n.deliver("quill@nym.example", "bob@example.org", &mail("Quill <QUILL@nym.example>", "b2")).0,
        0
    );
    assert_eq!(n.deliver("quill+x@nym.example", "bob@example.org", &mail("list@lists.example", "b3")).0, 0);
    assert_eq!(n.inputs().len(), 2);
    n.config("Config:\nFrom: quill\nNym-Commands: +disable\n");
    n.clear();
    let before: i64 = n.db("SELECT unit_count FROM nyms");
    let (code, err) = n.deliver("quill@nym.example", "bob@example.org", &mail("quill@nym.example", "b4"));
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("5.3.0 This nym is disabled."), "{err}");
    assert!(n.inputs().is_empty(), "no notice for the holder's own disable");
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), before + 1, "the refusal costs one unit");
}

/// Reassemble decrypted `message/partial` parts by hand, as a holder
/// would: order by `number=`, join the bodies.
fn reassemble(parts: &[String]) -> String {
    let mut v: Vec<(usize, usize, String, &str)> = parts
        .iter()
        .map(|p| {
            let (head, body) = p.split_once("\n\n").unwrap();
            let ct = head.lines().next().unwrap();
            assert!(ct.starts_with("Content-Type: message/partial; id=\""), "{ct}");
            let num = |k: &str| -> usize {
                ct.split("; ").find_map(|f| f.strip_prefix(k)).unwrap().trim().parse().unwrap()
            };
            let id = ct.split('"').nth(1).unwrap().to_string();
            (num("number="), num("total="), id, body)
        })
        .collect();
    v.sort_by_key(|x| x.0);
    let total = v[0].1;
    assert_eq!(v.len(), total);
    assert!(v.iter().enumerate().all(|(i, x)| x.0 == i + 1 && x.1 == total && x.2 == v[0].2));
    assert!(v[0].2.ends_with("@nym.example") && v[0].2.len() == 32 + "@nym.example".len(), "{}", v[0].2);
    v.iter().map(|x| x.3).collect()
}

#[test]
fn fixedsize_parts_have_one_length_and_reassemble_to_a_signature_gpg_verifies() {
    let n = Nym::new("", &format!("Reply-Block:\n{BLOCK}"), |_| {});
    n.config("Config:\nFrom: quill\nNym-Commands: +fixedsize\n");
    // Its own confirmation already comes in parts.
    let notice = n.inputs();
    assert!(!notice.is_empty());
    for i in &notice {
        assert_eq!(n.g.decrypt(&i.as_bytes()[BLOCK.len()..]).stdout.len(), 10240);
    }
    n.clear();
    let mut raw = mail("quill@nym.example", "big");
    for i in 0..400 {
        raw.extend_from_slice(format!("line {i} of a longer message, to need several parts\n").as_bytes());
    }
    let (code, log) = n.deliver("quill@nym.example", "bob@example.org", &raw);
    assert_eq!(code, 0, "{log}");
    let inputs = n.inputs();
    assert!(inputs.len() >= 3, "{} parts", inputs.len());
    assert!(inputs.iter().all(|i| i.starts_with(BLOCK)));
    let len = inputs[0].len();
    assert!(inputs.iter().all(|i| i.len() == len), "every part one length");
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), inputs.len() as i64, "one unit per part");
    let parts: Vec<String> = inputs
        .iter()
        .map(|i| {
            let o = n.g.decrypt(&i.as_bytes()[BLOCK.len()..]);
            assert!(o.ok, "{}", o.stderr);
            assert!(!o.stderr.contains("signature"), "parts are not signed: {}", o.stderr);
            assert_eq!(o.stdout.len(), 10240);
            let p = String::from_utf8(o.stdout).unwrap();
            assert!(p.contains("\nMIME-Version: 1.0\nX-Padding: "), "{p}");
            p
        })
        .collect();
    let e = reassemble(&parts);
    let s = e.strip_prefix("Content-Type: text/plain; charset=us-ascii\n\n").expect(&e[..80]);
    let o = n.g.run(&["--decrypt"], s.as_bytes());
    assert!(o.ok && o.stderr.contains("Good signature"), "{}", o.stderr);
    let p = String::from_utf8(o.stdout).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    assert!(p.starts_with(&raw));
    assert!(p.ends_with("To: quill@nym.example\n"), "the trailer is signed with it");

    // The holder's commands of docs/reply-blocks.md, as written there.
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reply-blocks.md")).unwrap();
    let script = doc.split("```\nfor f in part-*.asc").nth(1).unwrap().split("```").next().unwrap();
    let script = format!("set -e\nfor f in part-*.asc{script}");
    let work = n.s.dir.path().join("by-hand");
    fs::create_dir_all(&work).unwrap();
    for (k, i) in inputs.iter().enumerate() {
        fs::write(work.join(format!("part-{k}.asc")), &i[BLOCK.len()..]).unwrap();
    }
    let mut sh = std::process::Command::new("sh");
    sh.current_dir(&work).env("GNUPGHOME", n.g.home()).args(["-c", &script]);
    let out = run(&mut sh, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("Good signature"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), p);
}

#[test]
fn quota_holds_under_parallel_deliveries_with_one_notice() {
    let n = Nym::new("-cryptrecv", &format!("Reply-Block:\n{BLOCK}"), |s| {
        s.set("reply_blocks", "daily_units", "3")
    });
    let codes: Vec<i32> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let n = &n;
                sc.spawn(move || loop {
                    // 75 is the MTA's "try again": it would.
                    let raw = mail("quill@nym.example", &format!("par{i}"));
                    let (code, err) = n.deliver("quill@nym.example", "bob@example.org", &raw);
                    if code != 75 {
                        return code;
                    }
                    assert!(!err.contains("panicked"));
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 69).count(), 5, "{codes:?}");
    let inputs = n.inputs();
    assert_eq!(inputs.iter().filter(|i| i.contains("hello par")).count(), 3);
    assert_eq!(inputs.iter().filter(|i| i.contains("Nym disabled by the daily limit")).count(), 1);
    assert_eq!(inputs.len(), 4);
}

#[test]
fn an_mta_retry_sends_and_counts_nothing_twice_and_oversized_mail_sends_nothing() {
    let n = Nym::new("", &format!("Reply-Block:\n{BLOCK}"), |s| s.set("limits", "max_message_size", "20000"));
    let raw = mail("quill@nym.example", "once");
    assert_eq!(n.deliver("quill@nym.example", "bob@example.org", &raw).0, 0);
    let (code, log) = n.deliver("quill@nym.example", "bob@example.org", &raw);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=duplicate_delivery"), "{log}");
    assert_eq!(n.inputs().len(), 1);
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), 1);
    // Over the size limit, or empty: 65, nothing sent or counted.
    let mut big = mail("quill@nym.example", "big");
    big.extend(std::iter::repeat_n(b'x', 30_000));
    assert_eq!(n.deliver("quill@nym.example", "bob@example.org", &big).0, 65);
    assert_eq!(n.deliver("quill@nym.example", "bob@example.org", b"\n \n").0, 65);
    assert_eq!(n.inputs().len(), 1);
    assert_eq!(n.db::<i64>("SELECT unit_count FROM nyms"), 1);
}
