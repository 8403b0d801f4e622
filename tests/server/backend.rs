//! The crypto backend this build has, and what it refuses: a RustCrypto
//! build (the default) makes and loads no RSA server key, because its RSA
//! secret-key operations are not constant-time (src/openpgp/backend.rs).
//! An RSA *nym* key is fine with every backend: the server only encrypts
//! to it and checks its signatures (tests/server/interop_gpg.rs).

use crate::util::*;
use nymgate::openpgp::backend::REFUSES_RSA_SECRETS;
use sequoia_openpgp as openpgp;
use std::process::Command;

#[test]
fn init_with_rsa_is_refused_by_a_rustcrypto_build_and_says_how_to_build_for_it() {
    let dir = tempfile::Builder::new().prefix("ng").tempdir_in("/tmp").unwrap();
    let home = dir.path().join("home");
    let out = Command::new(NYMGATE)
        .args(["init", "--home", home.to_str().unwrap(), "--domain", "nym.example", "--rsa", "2048"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !REFUSES_RSA_SECRETS {
        assert!(out.status.success(), "{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("--features crypto-openssl"), "{stderr}");
    assert!(stderr.contains("not constant-time"), "{stderr}");
    assert!(!home.exists(), "a refused init leaves nothing behind");
}

/// An RSA server key of the shape `init --rsa 2048` makes (sign and
/// encryption subkeys), armored.
fn rsa_server_key() -> Vec<u8> {
    use openpgp::cert::prelude::*;
    use openpgp::serialize::SerializeInto;
    use openpgp::types::KeyFlags;
    let (cert, _) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::RSA2k)
        .set_validity_period(None)
        .add_signing_subkey()
        .add_subkey(KeyFlags::empty().set_transport_encryption().set_storage_encryption(), None, None)
        .add_userid("nymgate Config <config@nym.example>")
        .add_userid("nymgate Send <send@nym.example>")
        .generate()
        .unwrap();
    let tsk = cert.as_tsk().armored().to_vec().unwrap();
    tsk
}

#[test]
fn an_rsa_server_key_file_is_refused_by_a_rustcrypto_build_without_losing_mail() {
    let s = Server::new(&["nym.example"]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_key("Alice <alice@nym.example>", "future-default", "1y");
    assert_eq!(
        s.deliver_pgp(
            "config@nym.example",
            &g.creation_request("alice@nym.example", "nym.example", "hsub: pass\n")
        ),
        0
    );
    s.flush();
    // The operator puts an RSA key made elsewhere (say by an OpenSSL
    // build) in place.
    std::fs::write(s.home.join("server.key"), rsa_server_key()).unwrap();
    let mail = b"From: bob@example.org\nSubject: hi\nMessage-ID: <rsa-refused@example.org>\n\nhello\n";
    let (code, log) = s.deliver_logged("alice@nym.example", mail);
    let export = s.admin(&["key", "export"]);
    let export_err = String::from_utf8_lossy(&export.stderr);
    if REFUSES_RSA_SECRETS {
        // Transient: the MTA keeps the mail until the operator puts a key
        // this build takes back, or runs a build that takes this one.
        assert_eq!(code, 75, "{log}");
        assert!(!log.contains("alice"), "no nym name in the log: {log}");
        assert!(!export.status.success());
        assert!(export_err.contains("--features crypto-openssl"), "{export_err}");
    } else {
        assert_eq!(code, 0, "{log}");
        assert!(export.status.success(), "{export_err}");
    }
}
