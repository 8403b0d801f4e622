//! docs/reply-blocks.md "By hand with gpg", run as written against a real
//! `nymgate`: the shell blocks after each `<!-- test: NAME -->` marker of
//! the guide are read from the file and run by bash with real GnuPG, in
//! a home of their own. Only what makes gpg non-interactive is added (a
//! `gpg` shell function with `--batch --pinentry-mode loopback` and the
//! passphrase the holder would type); the mailing the guide describes in
//! words is done with `nymgate deliver`.
//!
//! What the guide's remailers do (peeling their layer, the Encrypt-Key
//! re-encryption) is not run here: the Type I engine is not connected yet,
//! so what would go through the block is read from the engine-input spool
//! of debug builds (`NYMGATE_BLOCK_SPOOL_FOR_TEST`), and the holder's
//! peeling starts at the server's layer. The block's own layers are
//! checked by decrypting them with the two remailers' keys.

use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUIDE: &str = include_str!("../../docs/reply-blocks.md");

/// The shell blocks after `<!-- test: NAME -->`, up to the next marker or
/// heading, joined.
fn snippet(name: &str) -> String {
    let marker = format!("<!-- test: {name} -->");
    let start = GUIDE.find(&marker).unwrap_or_else(|| panic!("no {marker} in docs/reply-blocks.md"));
    let mut out = String::new();
    let mut in_code = false;
    for line in GUIDE[start + marker.len()..].lines() {
        if !in_code && (line.starts_with("<!-- test: ") || line.starts_with('#')) {
            break;
        }
        match (in_code, line) {
            (false, "```sh") => in_code = true,
            (true, "```") => in_code = false,
            (true, l) => {
                out.push_str(l);
                out.push('\n');
            }
            _ => {}
        }
    }
    assert!(!out.is_empty(), "{marker} has no shell block");
    out
}

/// The holder's machine: a HOME (the guide's `~/.gnupg-quill` lands
/// there) and a working directory.
struct Holder {
    dir: tempfile::TempDir,
}

impl Holder {
    fn new() -> Holder {
        let dir = tempfile::Builder::new().prefix("h").tempdir_in("/tmp").unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        Holder { dir }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Run shell text from the guide; `pass` is what the holder types when
    /// gpg asks. Returns stdout and stderr; fails the test if bash does.
    fn sh(&self, script: &str, pass: &str) -> (String, String) {
        let prelude = "set -euo pipefail\n\
            gpg() { command gpg --batch --yes --no-tty --pinentry-mode loopback --passphrase \"$GUIDE_PASS\" \"$@\"; }\n";
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!("{prelude}{script}"))
            .current_dir(self.work())
            .env("HOME", self.dir.path())
            .env("GNUPGHOME", self.dir.path().join(".gnupg-quill"))
            .env("GUIDE_PASS", pass);
        let out = run(&mut c, None);
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "guide step failed:\n{script}\nstdout:\n{o}\nstderr:\n{e}");
        (o, e)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.dir.path().join(".gnupg-quill"))
            .args(["--kill", "all"])
            .output();
    }
}

/// The engine inputs written so far, oldest first.
fn block_inputs(dir: &Path) -> Vec<String> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "block"))
        .map(|p| (fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| fs::read_to_string(p).unwrap()).collect()
}

/// Mail the armored file to `rcpt` as the guide says ("mail it as the
/// body"), through `deliver` with the block spool; exit code and log.
fn mail(s: &Server, spool: &Path, rcpt: &str, body: &str) -> (i32, String) {
    let raw = format!(
        "From: anon@remailer.example\nTo: {rcpt}\nSubject: x\nMessage-ID: <{}@t>\n\n{body}",
        rand_hex()
    );
    let mut c = s.cmd();
    c.env("NYMGATE_LOG_STDERR", "1").env("NYMGATE_BLOCK_SPOOL_FOR_TEST", spool);
    c.args(["deliver", "--recipient", rcpt, "--sender", "anon@remailer.example"]);
    let out = run(&mut c, Some(raw.as_bytes()));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().unwrap_or(-1), err)
}

fn show(s: &Server) -> String {
    String::from_utf8(s.admin(&["nym", "show", "quill@nym.example"]).stdout).unwrap()
}

/// The first armored PGP message in `text`.
fn armor(text: &str) -> &str {
    let a = text.find("-----BEGIN PGP MESSAGE-----").expect("an armored message");
    let end = "-----END PGP MESSAGE-----";
    let b = text[a..].find(end).expect("its end") + a + end.len();
    &text[a..b]
}

/// The holder peels the server's layer of an engine input with the
/// guide's `peel` (the remailers' layers are not there yet: see above).
fn peel_server_layer(h: &Holder, block: &str, input: &str) -> (String, String) {
    assert!(input.starts_with(block), "the engine input starts with the stored block");
    fs::write(h.file("layer0.txt"), &input[block.len()..]).unwrap();
    let peel = snippet("peel");
    let define = peel.lines().find(|l| l.starts_with("peel() ")).unwrap();
    let step = peel.lines().find(|l| l.starts_with("peel layer0.txt notice.txt")).unwrap();
    let (_, err) = h.sh(&format!("{define}\n{step}\n"), "");
    (h.read("notice.txt"), err)
}

#[test]
fn the_holders_guide_by_hand_with_gpg_creates_confirms_sends_changes_and_deletes() {
    let s = Server::new(&["nym.example"]);
    // What leaves by mail is written to the mail spool, never to sendmail.
    s.set("mail", "transport", "\"spool\"");
    let spool = s.dir.path().join("blocks");
    fs::create_dir(&spool).unwrap();
    let h = Holder::new();
    // What the holder downloads: the server key and two remailers' keys.
    fs::write(h.file("server.asc"), s.key_export()).unwrap();
    let (r1, r2) = (Gpg::new(), Gpg::new());
    r1.gen_modern("remailer@r1.example");
    r2.gen_modern("remailer@r2.example");
    fs::write(h.file("r1.asc"), r1.export("remailer@r1.example")).unwrap();
    fs::write(h.file("r2.asc"), r2.export("remailer@r2.example")).unwrap();

    // 1-3: keys, the block, the request.
    h.sh(&snippet("keys"), "");
    h.sh(&snippet("block"), "");
    h.sh(&snippet("request"), "");
    // The block's layers open for the remailers they were made for, each
    // to the layer before it.
    let block = h.read("block.txt");
    assert!(block.starts_with("::\nAnon-To: remailer@r1.example\n\n::\nEncrypted: PGP\n\n"), "{block}");
    let o = r1.decrypt(armor(&block).as_bytes());
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), h.read("hop1.txt"));
    let o = r2.decrypt(armor(&h.read("hop1.txt")).as_bytes());
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), h.read("hop2.txt"));
    assert!(!r2.decrypt(armor(&block).as_bytes()).ok, "r2 cannot open r1's layer");

    // 4: the request reaches config@; a nym with a pending block.
    let (code, log) = mail(&s, &spool, "config@nym.example", &h.read("request.asc"));
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=created"), "{log}");
    let st = show(&s);
    assert!(st.contains("blocks:      0 active, 1 pending"), "{st}");
    assert!(st.contains("flags:       +cryptrecv -signsend +acksend -disable"), "{st}");
    assert!(st.contains("name:        set"), "{st}");
    // A second copy by another path is harmless.
    let (code, log) = mail(&s, &spool, "config@nym.example", &h.read("request.asc"));
    assert_eq!(code, 0, "{log}");

    // 5: the confirmation goes through the block the request brought,
    // stored byte for byte (with the one blank line the server adds).
    let inputs = block_inputs(&spool);
    assert_eq!(inputs.len(), 1, "one confirmation for two copies");
    let stored = format!("{block}\n");
    let (notice, err) = peel_server_layer(&h, &stored, &inputs[0]);
    assert!(err.contains("Good signature"), "{err}");
    assert!(notice.contains("Configuration completed: your nym quill@nym.example was created."), "{notice}");
    assert!(notice.contains("+cryptrecv -signsend +acksend"), "{notice}");
    assert!(notice.contains("Name:       \"Quill Pen\""), "{notice}");
    assert!(notice.contains(", pending"), "{notice}");

    // 6: the guide's command prints the confirm address; mail to it.
    let (addr, _) = h.sh(&snippet("confirm"), "");
    let addr = addr.trim();
    let cookie = addr.strip_prefix("confirm+").and_then(|a| a.strip_suffix("@nym.example")).expect(addr);
    assert!(cookie.len() == 32 && cookie.bytes().all(|b| b.is_ascii_hexdigit()), "{addr}");
    let (code, log) = mail(&s, &spool, addr, "yes\n");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("outcome=confirmed"), "{log}");
    assert!(show(&s).contains("blocks:      1 active, 0 pending"), "{}", show(&s));
    let inputs = block_inputs(&spool);
    assert_eq!(inputs.len(), 2);
    let (notice, _) = peel_server_layer(&h, &stored, &inputs[1]);
    assert!(notice.contains("Subject: Reply block confirmed"), "{notice}");

    // The two notices also left through the block: to its first hop only.
    let hops = s.take_mails();
    assert_eq!(hops.len(), 2, "{hops:?}");
    assert!(hops.iter().all(|m| m.contains("X-Nymgate-Envelope-To: remailer@r1.example\n")), "{hops:?}");

    // 7: a letter in the nym.alias.net format through send@.
    h.sh(&snippet("send"), "");
    let (code, log) = mail(&s, &spool, "send@nym.example", &h.read("letter.asc"));
    assert_eq!(code, 0, "{log}");
    let mails = s.take_mails();
    assert_eq!(mails.len(), 2, "the letter, and the receipt to the block's first hop: {mails:?}");
    let letter = "X-Nymgate-Envelope-To: editor@paper.example, archive@mine.example\n";
    let m = mails.iter().find(|m| m.contains(letter)).expect("the letter");
    let hop = mails.iter().find(|m| !m.contains(letter)).expect("the receipt's first hop");
    assert!(hop.contains("X-Nymgate-Envelope-To: remailer@r1.example\n"), "{hop}");
    assert!(m.contains("\nFrom: \"Quill Pen\" <quill@nym.example>\n"), "{m}");
    assert!(m.contains("\nTo: editor@paper.example\n"), "{m}");
    // What the recipients see: the hidden one and the commands are gone.
    let seen: String =
        m.lines().filter(|l| !l.starts_with("X-Nymgate-Envelope-")).collect::<Vec<_>>().join("\n");
    assert!(
        !seen.contains("Hidden-To") && !seen.contains("Nym-Commands") && !seen.contains("archive@"),
        "{m}"
    );
    assert!(m.contains("The council met on Tuesday."), "{m}");
    // The receipt (acksend) follows the channel rule (REPLY-BLOCKS.md
    // 8.2, 8.4): through the block, from send@, as the guide says.
    let inputs = block_inputs(&spool);
    assert_eq!(inputs.len(), 3, "the receipt through the block");
    let (receipt, err) = peel_server_layer(&h, &stored, &inputs[2]);
    assert!(err.contains("Good signature"), "{err}");
    assert!(receipt.contains("From: send@nym.example"), "{receipt}");
    assert!(
        receipt.contains("Subject: Message sent") && receipt.contains("On the council vote"),
        "{receipt}"
    );
    assert!(s.articles().is_empty(), "nothing on alt.anonymous.messages");

    // 8: flags and name.
    h.sh(&snippet("change"), "");
    let (code, log) = mail(&s, &spool, "config@nym.example", &h.read("change.asc"));
    assert_eq!(code, 0, "{log}");
    assert!(show(&s).contains("flags:       +cryptrecv +signsend -acksend -disable"), "{}", show(&s));
    let inputs = block_inputs(&spool);
    assert_eq!(inputs.len(), 4);
    let (notice, _) = peel_server_layer(&h, &stored, &inputs[3]);
    assert!(
        notice.contains("Configuration completed") && notice.contains("Name:       \"Q. Pen\""),
        "{notice}"
    );

    // 9: delete; a last notice through the block, then nothing is left.
    h.sh(&snippet("delete"), "");
    let (code, log) = mail(&s, &spool, "config@nym.example", &h.read("delete.asc"));
    assert_eq!(code, 0, "{log}");
    let list = String::from_utf8(s.admin(&["nym", "list"]).stdout).unwrap();
    assert!(!list.contains("quill"), "{list}");
    let inputs = block_inputs(&spool);
    assert_eq!(inputs.len(), 5, "a last notice");
    let (notice, _) = peel_server_layer(&h, &stored, &inputs[4]);
    assert!(notice.contains("quill@nym.example"), "{notice}");
    assert!(s.articles().is_empty(), "nothing ever went to alt.anonymous.messages");
}
