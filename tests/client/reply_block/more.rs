//! More of the reply-block nym (see `mod.rs`): a second block by `nym
//! config`, a direct confirmation, a Zax nym adding a block, the chain
//! from config.toml, and what is refused: bad chains, hostile mail files.

use std::fs;

use super::World;
use crate::util::*;

#[test]
fn nym_config_replaces_the_block_and_a_direct_confirm_mails_the_cookie() {
    let w = World::new();
    w.create();
    let first = w.take_inputs().remove(0);
    let (_, out) = w.read_mail(&w.route(&first)[2].text);
    assert!(out.contains("waits for confirmation"), "{out}");
    // A second block before confirming: a signed modification.
    let o = run(
        w.nym()
            .args(["config", "quill@nym.example", "--reply-block", "--via", &w.srv.via()])
            .args(w.hop_args()),
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("outcome=changed"), "{err}");
    let inputs = w.take_inputs();
    assert_eq!(inputs.len(), 1, "the new pending block only (no active one yet): {err}");
    let (_, out) = w.read_mail(&w.route(&inputs[0])[2].text);
    let cookie_addr = out
        .split_whitespace()
        .find(|w| w.starts_with("confirm+") && w.ends_with("@nym.example"))
        .unwrap()
        .to_string();
    // --direct: a plain mail to the cookie address through the hand-off.
    let out_dir = w.dir.join("direct");
    let o = run(
        w.nym()
            .args(["confirm", "quill@nym.example", "--direct", "--from", "someone@box.test", "--via"])
            .arg(format!("file:{}", out_dir.display())),
        None,
    );
    assert!(o.status.success());
    let mail = fs::read_to_string(&files(&out_dir, "eml")[0]).unwrap();
    assert!(mail.starts_with(&format!("From: someone@box.test\nTo: {cookie_addr}\n")), "{mail}");
    let (code, log) = w.deliver(&cookie_addr, "someone@box.test", mail.as_bytes());
    assert_eq!((code, log.contains("outcome=confirmed")), (0, true), "{log}");
    let inputs = w.take_inputs();
    assert_eq!(inputs.len(), 1, "{log}");
    let (_, out) = w.read_mail(&w.route(&inputs[0])[2].text);
    assert!(out.contains("confirmed and in use"), "{out}");
    // Passphrases of the replaced block are kept for mail on its way.
    let toml = fs::read_to_string(w.home.join("nyms/quill@nym.example/nym.toml")).unwrap();
    let rec: nymgate::client::store::NymRecord = toml::from_str(&toml).unwrap();
    let states: Vec<&str> = rec.chains.iter().map(|c| c.state.as_str()).collect();
    assert_eq!(states, ["replaced", "active"]);
    assert_eq!(rec.chain_passphrases().len(), 4, "both blocks' passphrases are kept");
    assert_eq!(rec.confirm_to, None);
}

#[test]
fn hostile_mail_files_are_refused_without_a_panic() {
    let w = World::new();
    w.create();
    for junk in [
        "".to_string(),
        "no header at all".to_string(),
        "Subject: x\n\n**\n-----BEGIN PGP MESSAGE-----\n\nnot base64 !!!\n-----END PGP MESSAGE-----\n"
            .to_string(),
        format!(
            "From x\nSubject: a\n\n{}\nFrom y\n\n\u{1b}[2J\n",
            "-----BEGIN PGP MESSAGE-----\n".repeat(1000)
        ),
    ] {
        let (code, out) = w.read_mail(&junk);
        assert!(code == 65 || (code == 0 && junk.is_empty()), "{code}: {out}");
    }
    // Larger than the cap: refused before reading it all.
    let big = w.dir.join("big.mbox");
    let f = fs::File::create(&big).unwrap();
    f.set_len((64 << 20) + 1).unwrap();
    let o = run(w.nym().args(["read", "--mail"]).arg(&big), None);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("larger than"));
}

#[test]
fn bad_chains_store_nothing() {
    let w = World::new();
    let key = w.r1.key_file(&w.dir);
    let base = |extra: &[&str]| {
        let mut c = w.nym();
        c.args(["new", "quill@nym.example", "--reply-block", "--via", "stdout", "--server-key"])
            .arg(w.srv.key_file());
        c.args(extra);
        run(&mut c, None)
    };
    let hop = format!("remailer@r1.test={}", key.display());
    for args in [
        vec!["--deliver-to", "quill@box.test"],
        vec!["--hop", hop.as_str()],
        vec!["--hop", "remailer@r1.test", "--deliver-to", "quill@box.test"],
        vec!["--hop", hop.as_str(), "--deliver-to", "Quill <quill@box.test>"],
        vec!["--hop", hop.as_str(), "--deliver-to", "quill@nym.example"],
        vec!["--hop", hop.as_str(), "--deliver-to", "quill@box.test", "--flag", "-cryptrecv"],
        vec!["--hop", hop.as_str(), "--deliver-to", "quill@box.test", "--flag", "+fixedsize"],
        vec!["--hop", hop.as_str(), "--deliver-to", "quill@box.test", "--hsub", "x"],
        vec!["--hop", hop.as_str(), "--deliver-to", "quill@box.test", "--latent-time", "soon"],
    ] {
        let o = base(&args);
        assert_eq!(o.status.code(), Some(65), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!w.home.join("nyms/quill@nym.example").exists(), "{args:?}");
    }
    // A name the nym.alias.net rule refuses (a dot).
    let o = run(
        w.nym()
            .args(["new", "qu.ill@nym.example", "--reply-block", "--deliver-to", "q@box.test", "--hop", &hop])
            .arg("--server-key")
            .arg(w.srv.key_file()),
        None,
    );
    assert_eq!(o.status.code(), Some(65));
}

#[test]
fn the_chain_can_come_from_config_toml() {
    let w = World::new();
    fs::create_dir_all(&w.home).unwrap();
    let toml = format!(
        "deliver_to = \"quill@box.test\"\n\n[[chain]]\naddress = \"{}\"\nkey = \"{}\"\n\n[[chain]]\naddress = \"{}\"\nkey = \"{}\"\n",
        w.r1.address(),
        w.r1.key_file(&w.dir).display(),
        w.r2.address(),
        w.r2.key_file(&w.dir).display()
    );
    fs::write(w.home.join("config.toml"), toml).unwrap();
    let out_dir = w.dir.join("req");
    ok(
        w.nym()
            .args(["new", "quill@nym.example", "--reply-block", "--subject-tag", "for-quill", "--via"])
            .arg(format!("file:{}", out_dir.display()))
            .arg("--server-key")
            .arg(w.srv.key_file()),
        None,
    );
    let req = fs::read(&files(&out_dir, "eml")[0]).unwrap();
    assert!(req.starts_with(b"To: config@nym.example\n"));
    let (code, log) = w.deliver("config@nym.example", "anon@remailer.example", &req);
    assert_eq!(code, 0);
    assert!(log.contains("outcome=created"), "{log}");
    let last = &w.route(&w.take_inputs()[0])[2];
    assert!(last.text.contains("\nSubject: for-quill\n"), "{}", last.text);
    let (code, out) = w.read_mail(&last.text);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Configuration completed"), "{out}");
    let list = ok(w.nym().arg("list"), None);
    assert!(list.contains("blocks-pending=1") && list.contains("confirm=waiting"), "{list}");
}

#[test]
fn a_zax_nym_adds_a_reply_block_with_nym_config() {
    let w = World::new();
    ok(
        w.nym()
            .args(["new", "alice@nym.example", "--hsub", "panda", "--via", &w.srv.via()])
            .arg("--server-key")
            .arg(w.srv.key_file()),
        None,
    );
    assert!(w.take_inputs().is_empty(), "a Zax creation answers on the newsgroup");
    let o = run(
        w.nym()
            .args([
                "config",
                "alice@nym.example",
                "--reply-block",
                "--flag",
                "+signsend",
                "--via",
                &w.srv.via(),
            ])
            .args(w.hop_args()),
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success() && err.contains("outcome=changed"), "{err}");
    // Options and blocks in one command are two requests: refused.
    let o = run(
        w.nym().args(["config", "alice@nym.example", "--hsub", "x", "--reply-block"]).args(w.hop_args()),
        None,
    );
    assert_eq!(o.status.code(), Some(65));
    let inputs = w.take_inputs();
    assert_eq!(inputs.len(), 1, "the cookie goes through the new block only");
    let last = w.route(&inputs[0]).remove(2);
    // From standard input this time.
    let o = run(w.nym().args(["read", "--mail", "-"]), Some(last.text.as_bytes()));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("+signsend"), "{out}");
    assert!(out.contains("nym confirm alice@nym.example"), "{out}");
    let list = ok(w.nym().arg("list"), None);
    assert!(list.contains("blocks-pending=1") && list.contains("hsub"), "{list}");
}

#[test]
fn resend_creates_with_create_if_free_and_then_renews_the_pending_block() {
    let w = World::new();
    let o = run(
        w.nym()
            .args(["new", "quill@nym.example", "--reply-block", "--no-request"])
            .args(w.hop_args())
            .arg("--server-key")
            .arg(w.srv.key_file()),
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resend = || {
        let o = run(w.nym().args(["new", "quill@nym.example", "--resend", "--via", &w.srv.via()]), None);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{err}");
        err
    };
    // The first copy creates the nym (create? on a free name) ...
    assert!(resend().contains("outcome=created"));
    let first = w.take_inputs();
    // ... a second, signed anew, is a modification: a new cookie.
    assert!(resend().contains("outcome=changed"));
    let second = w.take_inputs();
    assert_eq!((first.len(), second.len()), (1, 1));
    let cookie = |input: &str| {
        let (_, out) = w.read_mail(&w.route(input)[2].text);
        out.split_whitespace().find(|x| x.starts_with("confirm+")).map(str::to_string).unwrap()
    };
    assert_ne!(cookie(&first[0]), cookie(&second[0]));
}
