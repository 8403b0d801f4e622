//! `nym rotate` against the real `nymgate`: a new encryption subkey, the
//! refresh, and the old subkey's secret erased only once the server's
//! confirmation has been read.

use std::path::PathBuf;
use std::process::Command;

use sequoia_openpgp as openpgp;

use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;

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

    fn mail_in(&self, text: &str) {
        let mail = format!("From: bob@example.org\nTo: alice@nym.test\nSubject: note\n\n{text}\n");
        assert_eq!(self.srv.deliver_raw("alice@nym.test", mail.as_bytes()), 0);
    }

    /// The encryption subkeys of the stored key: (fingerprint, has secret),
    /// oldest first.
    fn encryption_subkeys(&self) -> Vec<(String, bool)> {
        let armored = ok(self.nym().args(["export", "alice@nym.test", "--secret"]), None);
        let cert = openpgp::Cert::from_bytes(armored.as_bytes()).unwrap();
        let p = StandardPolicy::new();
        let vc = cert.with_policy(&p, None).unwrap();
        let mut v: Vec<_> = vc
            .keys()
            .subkeys()
            .for_transport_encryption()
            .map(|k| (k.key().creation_time(), k.key().fingerprint().to_hex(), k.key().has_secret()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, f, s)| (f, s)).collect()
    }
}

#[test]
fn rotate_adds_a_subkey_and_erases_the_old_secret_once_the_server_confirmed() {
    let h = Holder::new();
    let via = h.srv.via();
    let before = h.encryption_subkeys();
    assert_eq!(before.len(), 1);
    assert!(before[0].1);

    ok(h.nym().args(["rotate", "alice@nym.test", "--via", &via]), None);
    let pending = h.encryption_subkeys();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(pending.iter().all(|(_, s)| *s), "both secrets kept until the confirmation: {pending:?}");
    assert_eq!(pending[0].0, before[0].0);
    let list = ok(h.nym().arg("list"), None);
    assert!(list.contains("rotation=pending") && list.contains("key-refresh=requested"), "{list}");
    // A second rotation waits for the first one's confirmation.
    let again = run(h.nym().args(["rotate", "alice@nym.test", "--via", &via]), None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("waiting for the server's confirmation"));

    // Fetched but not read yet: nothing is erased.
    h.mail_in("written after the rotation");
    assert_eq!(kept(&h.fetch()), 2);
    assert!(h.encryption_subkeys().iter().all(|(_, s)| *s), "erased before the confirmation was read");

    let r = ok(h.nym().arg("read"), None);
    assert!(
        r.contains("the server confirmed the key refresh; the old encryption subkey's secret is erased"),
        "{r}"
    );
    assert!(r.contains("written after the rotation"), "{r}");
    let after = h.encryption_subkeys();
    assert_eq!(after, vec![(before[0].0.clone(), false), (pending[1].0.clone(), true)]);
    let list = ok(h.nym().arg("list"), None);
    assert!(!list.contains("rotation=pending") && !list.contains("key-refresh"), "{list}");

    // New mail still reads, with the new subkey alone.
    h.mail_in("and later still");
    assert_eq!(kept(&h.fetch()), 1);
    let r = ok(h.nym().arg("read"), None);
    assert!(r.contains("and later still") && r.contains("server signature: good"), "{r}");
    // And the key still signs: a send goes through.
    ok(h.nym().args(["send", "alice@nym.test", "--to", "bob@example.org", "--via", &via]), Some(b"hi\n"));
    h.srv.flush();
    assert_eq!(h.srv.take_mails().len(), 1);
}
