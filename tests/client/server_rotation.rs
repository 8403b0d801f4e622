//! `nym read` and a server key rotation, against the real `nymgate`: the
//! client follows a rotation whose new key the trusted key certified, and
//! refuses a forged one (a new key certified by nobody, or by an unrelated
//! key), keeping the key it trusts.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

const DAY: i64 = 86400;

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
                .args(["new", "alice@nym.test", "--hsub", "alice-hsub", "--expire", "6m", "--via", &via])
                .arg("--server-key")
                .arg(h.srv.key_file()),
            None,
        );
        assert_eq!(kept(&h.fetch()), 1);
        ok(h.nym().arg("read"), None);
        h
    }

    fn nym(&self) -> Command {
        nym(&self.home, &self.g)
    }

    fn fetch(&self) -> String {
        self.srv.flush();
        ok(
            self.nym().args(["fetch", "--server", &format!("spool:{}", self.srv.news_spool().display())]),
            None,
        )
    }

    /// `nym read`: (exit code, stdout, stderr).
    fn read(&self) -> (i32, String, String) {
        let o = run(self.nym().arg("read"), None);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Fingerprint of the server key the client trusts for alice.
    fn trusted(&self) -> String {
        let armored = fs::read(self.home.join("nyms/alice@nym.test/server.asc")).unwrap();
        use sequoia_openpgp::parse::Parse;
        sequoia_openpgp::Cert::from_bytes(&armored).unwrap().fingerprint().to_hex()
    }

    fn rotate(&self) -> String {
        let out = ok(self.srv.cmd().args(["key", "rotate", "--grace-days", "5"]), None);
        out.lines().find_map(|l| l.strip_prefix("new key ")).unwrap().trim().to_string()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn the_client_follows_a_rotation_certified_by_the_key_it_trusts() {
    let h = Holder::new();
    let old = h.trusted();
    let new = h.rotate();
    assert_eq!(kept(&h.fetch()), 1, "the rotation notice");
    let (code, out, err) = h.read();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("server signature: good ({new})")), "{out}");
    assert!(
        out.contains(&format!("the server key is now {new} (certified by the key you trusted, {old})")),
        "{out}"
    );
    assert_eq!(h.trusted(), new);
    // The same notice once more (`--notify-again`) is an ordinary notice now.
    ok(h.srv.cmd().args(["key", "rotate", "--notify-again"]), None);
    assert_eq!(kept(&h.fetch()), 1);
    let (code, out, err) = h.read();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("server signature: good ({new})")), "{out}");
    assert!(!out.contains("REFUSED") && !out.contains("is now"), "{out}");
    assert_eq!(h.trusted(), new);

    // The grace period ends; the client's next request goes to the new
    // key, is accepted, and the answer (signed by the new key) is trusted.
    let mut c = h.srv.cmd();
    c.arg("flush").env("NYMGATE_TEST_NOW", (now() + 6 * DAY).to_string());
    ok(&mut c, None);
    assert!(!h.srv.home.join("server.key.previous").exists());
    let via = h.srv.via();
    ok(h.nym().args(["config", "alice@nym.test", "--acksend", "no", "--via", &via]), None);
    assert_eq!(kept(&h.fetch()), 1, "the confirmation");
    let (code, out, err) = h.read();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("notice from the server (config@); server signature: good ({new})")),
        "{out}"
    );

    // A holder who starts after the rotation takes the key export (both
    // keys, the old one revoked) and gets the new key.
    let t = tempfile::tempdir().unwrap();
    let late = t.path().join("late.asc");
    fs::write(&late, h.srv.key_export()).unwrap();
    let home2 = t.path().join("home");
    let g2 = gnupg_home(t.path());
    ok(
        nym(&home2, &g2)
            .args(["new", "bob@nym.test", "--hsub", "bob-hsub", "--expire", "6m", "--via", &via])
            .arg("--server-key")
            .arg(&late),
        None,
    );
}

#[test]
fn a_rotation_certified_by_an_unrelated_key_is_refused_and_the_old_key_kept() {
    let h = Holder::new();
    let old = h.trusted();
    // Someone who has not the old secret: the server key swapped for one
    // of theirs with the same User IDs, which then "rotates" (so the new
    // key is certified, but by the unrelated key).
    let uids = nymgate::openpgp::user_ids(&fs::read(h.srv.home.join("server.key")).unwrap()).unwrap();
    let forged = nymgate::openpgp::generate_server_key(&uids, None).unwrap();
    fs::write(h.srv.home.join("server.key"), nymgate::openpgp::tsk_armored(&forged).unwrap()).unwrap();
    let new = h.rotate();
    assert_eq!(kept(&h.fetch()), 1);
    let (code, out, err) = h.read();
    assert_eq!(code, 65, "an untrusted message is a data error: {out}");
    assert!(out.contains("WARNING: not signed by the server key"), "{out}");
    assert!(
        out.contains(&format!("REFUSED the new server key of a \"Server key rotated\" notice: {new} is not certified by the key you trust")),
        "{out}"
    );
    assert!(out.contains(&format!("still trusting {old}")), "{out}");
    assert!(err.contains("REFUSED the new server key"), "{err}");
    assert_eq!(h.trusted(), old, "the trusted key is kept");
}

#[test]
fn a_rotation_notice_with_an_uncertified_key_is_refused() {
    use nymgate::openpgp::{self as pgp, ServerKey};
    let h = Holder::new();
    let old = h.trusted();
    // A notice made by hand: the right form, a new key with the server's
    // User IDs, signed by that key with the notice mark, encrypted to
    // alice; posted to the group like any article.
    let uids = pgp::user_ids(&fs::read(h.srv.home.join("server.key")).unwrap()).unwrap();
    let forged = pgp::generate_server_key(&uids, None).unwrap();
    let tsk = pgp::tsk_armored(&forged).unwrap();
    let mut key = ServerKey::from_tsk(&tsk).unwrap();
    let public = String::from_utf8(pgp::public_keyring(&[&tsk]).unwrap()).unwrap();
    let text = nymgate::rotation::notice_text(&old, &key.fingerprint_hex(), now() + DAY, "nym.test", &public);
    let payload =
        nymgate::protocol::article::notice("config@nym.test", "alice@nym.test", pgp::ROTATION_SUBJECT, &text);
    let alice = ok(h.nym().args(["export", "alice@nym.test"]), None);
    let alice = pgp::parse_certs(alice.as_bytes()).unwrap().remove(0);
    let mut body = Vec::new();
    pgp::sign_encrypt_into(&mut body, &mut key, &alice, &mut &payload[..], true, Some("config")).unwrap();
    // Headers of a real article to alice (its hSub), a new Message-ID.
    let spool = h.srv.news_spool();
    let real = fs::read_dir(&spool).unwrap().flatten().map(|e| e.path()).find(|p| p.is_file());
    let real = real.expect("an article in the spool");
    let real = fs::read_to_string(real).unwrap();
    let head = real.split_once("\n\n").unwrap().0;
    let mut art = String::new();
    for line in head.lines() {
        if line.to_ascii_lowercase().starts_with("message-id:") {
            art.push_str(&format!("Message-ID: <{}@forged.example>\n", rand_hex()));
        } else {
            art.push_str(line);
            art.push('\n');
        }
    }
    art.push('\n');
    art.push_str(&String::from_utf8(body).unwrap());
    fs::write(spool.join(format!("zz-forged-{}.art", rand_hex())), art).unwrap();
    let out = ok(h.nym().args(["fetch", "--server", &format!("spool:{}", spool.display())]), None);
    assert_eq!(kept(&out), 1, "{out}");
    let (code, out, _) = h.read();
    assert_eq!(code, 65, "{out}");
    assert!(
        out.contains(&format!("{} is not certified by the key you trust", key.fingerprint_hex())),
        "{out}"
    );
    assert_eq!(h.trusted(), old);
}
