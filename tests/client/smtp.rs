//! The SMTP hand-off, against a scripted SMTP server: the request arrives
//! with the right envelope, dot-stuffing intact, and a neutral EHLO.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use crate::util::*;

/// Accept one SMTP session; send back (commands, message data).
fn fake_smtp() -> (u16, mpsc::Receiver<(Vec<String>, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        let mut cmds = Vec::new();
        let mut data = String::new();
        w.write_all(b"220 fake ESMTP\r\n").unwrap();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let line = line.trim_end().to_string();
            cmds.push(line.clone());
            let up = line.to_ascii_uppercase();
            if up.starts_with("EHLO") {
                w.write_all(b"250-fake\r\n250 8BITMIME\r\n").unwrap();
            } else if up == "DATA" {
                w.write_all(b"354 go ahead\r\n").unwrap();
                loop {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                w.write_all(b"250 queued\r\n").unwrap();
            } else if up == "QUIT" {
                w.write_all(b"221 bye\r\n").unwrap();
                break;
            } else {
                w.write_all(b"250 ok\r\n").unwrap();
            }
        }
        tx.send((cmds, data)).unwrap();
    });
    (port, rx)
}

#[test]
fn requests_go_out_over_smtp() {
    let t = tempfile::tempdir().unwrap();
    let g = gnupg_home(t.path());
    let key = t.path().join("server.asc");
    fs::write(&key, gpg_server_key(&g, "nym.test")).unwrap();
    let home = t.path().join("home");
    let (port, rx) = fake_smtp();
    ok(
        nym(&home, &g)
            .args(["new", "alice@nym.test", "--hsub", "panda", "--from", "nobody@relay.example"])
            .args(["--via", &format!("smtp://127.0.0.1:{port}"), "--server-key"])
            .arg(&key),
        None,
    );
    let (cmds, data) = rx.recv().unwrap();
    assert_eq!(cmds[0], "EHLO localhost");
    assert!(cmds.contains(&"MAIL FROM:<nobody@relay.example>".to_string()), "{cmds:?}");
    assert!(cmds.contains(&"RCPT TO:<config@nym.test>".to_string()), "{cmds:?}");
    assert!(data.contains("To: config@nym.test\r\n") && data.contains("-----BEGIN PGP MESSAGE-----"));
    // The server (gpg here) can read what arrived.
    let plain = ok(gpg(&g).arg("--decrypt"), Some(body_of(&data).as_bytes()));
    assert!(plain.starts_with("hsub: panda\n"));
}

#[test]
fn starttls_is_required_when_asked_for() {
    let t = tempfile::tempdir().unwrap();
    let g = gnupg_home(t.path());
    let key = t.path().join("server.asc");
    fs::write(&key, gpg_server_key(&g, "nym.test")).unwrap();
    let (port, _rx) = fake_smtp();
    let out = run(
        nym(&t.path().join("home"), &g)
            .args([
                "new",
                "alice@nym.test",
                "--via",
                &format!("smtp+starttls://127.0.0.1:{port}"),
                "--server-key",
            ])
            .arg(&key),
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not offer STARTTLS") && err.contains("--resend"), "{err}");
    // The request can be made again without a new key.
    let out_dir = t.path().join("out");
    fs::create_dir_all(&out_dir).unwrap();
    ok(
        nym(&t.path().join("home"), &g).args([
            "new",
            "alice@nym.test",
            "--resend",
            "--via",
            &format!("file:{}", out_dir.display()),
        ]),
        None,
    );
    let mails = files(&out_dir, "eml");
    assert_eq!(mails.len(), 1);
    let plain =
        ok(gpg(&g).arg("--decrypt"), Some(body_of(&fs::read_to_string(&mails[0]).unwrap()).as_bytes()));
    assert!(plain.contains("BEGIN PGP PUBLIC KEY BLOCK"));
}
