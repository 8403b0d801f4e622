//! The hostile corpus (tests/corpus/MANIFEST): every message is fed to the
//! real `deliver`, which must answer the expected exit code, never panic,
//! stay within a memory bound and a time bound, and leave the database
//! exactly as it was when the message is refused.
//!
//! Messages named `gen:*` are built here: they are big, or OpenPGP data
//! that must be encrypted to this test's own server key.

use crate::util::*;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::serialize::Serialize;
use sequoia_openpgp as openpgp;

const MAX_SIZE: u64 = 8 << 20;
/// Peak RSS any one deliver may reach on this corpus (debug build).
const RSS_LIMIT_KIB: i64 = 256 * 1024;
const TIME_LIMIT: Duration = Duration::from_secs(120);

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

struct Outcome {
    code: i32,
    maxrss_kib: i64,
    stderr: String,
}

/// Run deliver, reaped with wait4 to learn its peak RSS; killed if it
/// runs past the time limit.
fn deliver(s: &Server, rcpt: &str, msg: &[u8]) -> Outcome {
    // Peak RSS comes from /usr/bin/time, a small parent: wait4 from this
    // big test process would report our own high-water mark instead
    // (Linux carries it into the child across fork and exec).
    let rss_file = s.dir.path().join("rss");
    let timed = std::path::Path::new("/usr/bin/time").exists();
    let mut c = if timed {
        let mut c = std::process::Command::new("/usr/bin/time");
        c.args(["-f", "%M", "-o"]).arg(&rss_file).arg(NYMGATE).arg("--config").arg(&s.config);
        c
    } else {
        s.cmd()
    };
    c.args(["deliver", "--recipient", rcpt, "--sender", "attacker@evil.example"])
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = msg.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let watchdog = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < TIME_LIMIT {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: signal 0 only probes whether the process exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                return;
            }
        }
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own unreaped child; valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid);
    std::mem::forget(child);
    let _ = writer.join();
    let _ = watchdog.join();
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
    let maxrss_kib = if timed {
        let t = std::fs::read_to_string(&rss_file).unwrap_or_default();
        // GNU time prefixes "Command terminated by signal" lines when killed.
        t.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(-1)
    } else {
        -1
    };
    let _ = ru;
    Outcome { code, maxrss_kib, stderr: reader.join().unwrap() }
}

fn policy() -> &'static StandardPolicy<'static> {
    static P: StandardPolicy<'static> = StandardPolicy::new();
    &P
}

/// The OpenPGP side of the attacker (and of the honest nym alice).
struct Pgp {
    server: openpgp::Cert,
    alice: openpgp::Cert,
}

impl Pgp {
    fn recipients(&self) -> Vec<Recipient<'_>> {
        self.server
            .keys()
            .with_policy(policy(), None)
            .supported()
            .for_transport_encryption()
            .map(|ka| {
                Recipient::new(
                    openpgp::types::Features::empty().set_seipdv1(),
                    Some(ka.key().keyid().into()),
                    ka.key(),
                )
            })
            .collect()
    }

    /// Encrypt to the server; `inner` writes the (raw) plaintext packets.
    fn encrypt_raw(&self, inner: impl FnOnce(Message) -> openpgp::Result<()>) -> Vec<u8> {
        let mut out = Vec::new();
        let m = Message::new(&mut out);
        let m = Armorer::new(m).build().unwrap();
        let m = Encryptor::for_recipients(m, self.recipients()).build().unwrap();
        inner(m).unwrap();
        out
    }

    fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        self.encrypt_raw(|m| {
            let mut w = LiteralWriter::new(m).build()?;
            w.write_all(plaintext)?;
            w.finalize()
        })
    }

    /// Signed by alice with a chosen signature time, encrypted to the server.
    fn signed_at(&self, plaintext: &[u8], when: SystemTime) -> Vec<u8> {
        let signer = self
            .alice
            .keys()
            .unencrypted_secret()
            .with_policy(policy(), None)
            .for_signing()
            .next()
            .unwrap()
            .key()
            .clone()
            .into_keypair()
            .unwrap();
        self.encrypt_raw(|m| {
            let m = Signer::new(m, signer)?.creation_time(when).build()?;
            let mut w = LiteralWriter::new(m).build()?;
            w.write_all(plaintext)?;
            w.finalize()
        })
    }

    /// A creation request for `cert`, encrypted to the server.
    fn creation(&self, cert: &openpgp::Cert) -> Vec<u8> {
        let mut text = b"hsub: hostile\n".to_vec();
        cert.armored().serialize(&mut text).unwrap();
        self.encrypt(&text)
    }
}

fn mail(to: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("From: attacker@evil.example\nTo: {to}\nSubject: x\n\n").into_bytes();
    m.extend_from_slice(body);
    m
}

fn armor(kind: openpgp::armor::Kind, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = openpgp::armor::Writer::new(&mut out, kind).unwrap();
    w.write_all(bytes).unwrap();
    w.finalize().unwrap();
    out
}

/// The `gen:` messages of the manifest.
fn generated(name: &str, p: &Pgp, gpg: &Gpg) -> Vec<u8> {
    let year = Duration::from_secs(365 * 86400);
    match name {
        "100k-headers" => {
            let mut m = Vec::new();
            for i in 0..100_000 {
                m.extend_from_slice(format!("X-H{i}: v\n").as_bytes());
            }
            m.extend_from_slice(b"\n-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n");
            m
        }
        "1mb-line" => {
            let mut m = b"Subject: ".to_vec();
            m.extend(std::iter::repeat_n(b'A', 1 << 20));
            m.extend_from_slice(b"\n\n");
            m.extend(std::iter::repeat_n(b'B', 1 << 20));
            m.push(b'\n');
            m
        }
        "1mb-line-armored" => {
            let mut body = b"-----BEGIN PGP MESSAGE-----\n\n".to_vec();
            body.extend(std::iter::repeat_n(b'h', 1 << 20));
            body.extend_from_slice(b"\n-----END PGP MESSAGE-----\n");
            mail("config@nym.example", &body)
        }
        "oversized" => {
            let mut m = b"Subject: big\n\n".to_vec();
            m.resize(MAX_SIZE as usize + 1, b'x');
            m
        }
        "compression-bomb" => {
            // 256 MiB of zeros, deflated by gpg into a few hundred KiB, to
            // a 8 MiB plaintext limit.
            let zeros = vec![0u8; 256 << 20];
            let enc = gpg.ok(
                &["--armor", "--compress-algo", "zlib", "-z", "9", "--encrypt", "-r", "config@nym.example"],
                &zeros,
            );
            mail("config@nym.example", &enc)
        }
        "absurd-packet-length" => {
            // A PKESK claiming 4 GiB, then a few bytes.
            let mut b = vec![0xC1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 3];
            b.extend_from_slice(&[0u8; 64]);
            // A literal packet with a partial-length chain that never ends.
            b.extend(std::iter::repeat_n([0xCB, 0xE0, b'x'], 10_000).flatten());
            mail("config@nym.example", &armor(openpgp::armor::Kind::Message, &b))
        }
        "absurd-literal-length-inside" => {
            let enc = p.encrypt_raw(|mut m| {
                m.write_all(&[0xCB, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, b'b', 0, 0, 0, 0, 0])?;
                m.write_all(b"short")?;
                m.finalize()
            });
            mail("config@nym.example", &enc)
        }
        "garbage-inside-encryption" => {
            let enc = p.encrypt_raw(|mut m| {
                let mut x = 0x1234_5678u32;
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    m.write_all(&[x as u8])?;
                }
                m.finalize()
            });
            mail("config@nym.example", &enc)
        }
        "thousands-of-onepass-sigs" => {
            let enc = p.encrypt_raw(|mut m| {
                let ops = [0xC4, 13, 3, 0, 8, 22, 1, 2, 3, 4, 5, 6, 7, 8, 0];
                for _ in 0..5000 {
                    m.write_all(&ops)?;
                }
                m.write_all(&[0xCB, 7, b'b', 0, 0, 0, 0, 0, b'x'])?;
                m.finalize()
            });
            mail("config@nym.example", &enc)
        }
        "key-thousands-of-userids" => {
            let mut b = CertBuilder::general_purpose(Some("many0@nym.example"));
            for i in 1..2000 {
                b = b.add_userid(format!("many{i}@nym.example"));
            }
            let (cert, _) = b.generate().unwrap();
            mail("config@nym.example", &p.creation(&cert))
        }
        "key-thousands-of-subkeys" => {
            let mut b = CertBuilder::general_purpose(Some("bigkey@nym.example"));
            for _ in 0..1000 {
                b = b.add_transport_encryption_subkey();
            }
            let (cert, _) = b.generate().unwrap();
            mail("config@nym.example", &p.creation(&cert))
        }
        "key-from-the-future" => {
            let (cert, _) = CertBuilder::general_purpose(Some("later@nym.example"))
                .set_creation_time(SystemTime::now() + 10 * year)
                .generate()
                .unwrap();
            mail("config@nym.example", &p.creation(&cert))
        }
        "signature-from-the-future" => {
            let enc = p.signed_at(
                b"To: victim@example.org\nSubject: x\n\nsubject: future\n",
                SystemTime::now() + 10 * year,
            );
            mail("config@nym.example", &enc)
        }
        "signature-from-1970" => {
            let enc = p.signed_at(
                b"To: victim@example.org\nSubject: x\n\nold\n",
                SystemTime::UNIX_EPOCH + Duration::from_secs(86400),
            );
            mail("send@nym.example", &enc)
        }
        "not-for-us" => {
            let (other, _) = CertBuilder::general_purpose(Some("x@elsewhere.example")).generate().unwrap();
            let rcpt: Vec<Recipient> = other
                .keys()
                .with_policy(policy(), None)
                .for_transport_encryption()
                .map(|ka| {
                    Recipient::new(
                        openpgp::types::Features::empty().set_seipdv1(),
                        Some(ka.key().keyid().into()),
                        ka.key(),
                    )
                })
                .collect();
            let mut out = Vec::new();
            let m = Armorer::new(Message::new(&mut out)).build().unwrap();
            let m = Encryptor::for_recipients(m, rcpt).build().unwrap();
            let mut w = LiteralWriter::new(m).build().unwrap();
            w.write_all(b"subject: x\n").unwrap();
            w.finalize().unwrap();
            mail("config@nym.example", &out)
        }
        other => panic!("unknown generated message {other}"),
    }
}

#[test]
fn hostile_corpus_gets_the_expected_exit_code_without_panic_bloat_or_damage() {
    let s = Server::new(&["nym.example"]);
    s.set("limits", "max_message_size", &MAX_SIZE.to_string());
    let server = openpgp::Cert::from_bytes(&s.key_export()).unwrap();
    let (alice, _) = CertBuilder::general_purpose(Some("alice@nym.example")).generate().unwrap();
    let p = Pgp { server, alice };
    // alice is created the honest way.
    assert_eq!(s.deliver_pgp("config@nym.example", &p.creation(&p.alice)), 0);
    assert!(String::from_utf8_lossy(&s.admin(&["nym", "list"]).stdout).contains("alice@nym.example"));
    // gpg only for the compression bomb (it compresses 256 MiB fast).
    let gpg = Gpg::new();
    gpg.import(&s.key_export());

    let manifest = std::fs::read_to_string(corpus_dir().join("MANIFEST")).unwrap();
    let mut cache: HashMap<String, Vec<u8>> = HashMap::new();
    let mut failures = Vec::new();
    let (mut count, mut peak) = (0, 0i64);
    for line in manifest.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "bad manifest line: {line}");
        let (name, rcpt, want, db) = (f[0], f[1], f[2].parse::<i32>().unwrap(), f[3]);
        let msg = cache
            .entry(name.to_string())
            .or_insert_with(|| match name.strip_prefix("gen:") {
                Some(g) => generated(g, &p, &gpg),
                None => std::fs::read(corpus_dir().join(name)).unwrap(),
            })
            .clone();
        let before = s.db_snapshot();
        let out = deliver(&s, rcpt, &msg);
        count += 1;
        peak = peak.max(out.maxrss_kib);
        eprintln!("{name:<40} {rcpt:<26} exit {:>3}  rss {:>6} KiB", out.code, out.maxrss_kib);
        if out.stderr.contains("panicked") || out.stderr.contains("internal error") {
            failures.push(format!("{name} -> {rcpt}: panic: {}", out.stderr));
        }
        if out.code != want {
            failures.push(format!("{name} -> {rcpt}: exit {} (expected {want}): {}", out.code, out.stderr));
        }
        if out.maxrss_kib > RSS_LIMIT_KIB {
            failures.push(format!("{name} -> {rcpt}: peak RSS {} KiB", out.maxrss_kib));
        }
        if db == "same" && s.db_snapshot() != before {
            failures.push(format!("{name} -> {rcpt}: refused but the database changed"));
        }
    }
    eprintln!("{count} hostile deliveries, highest peak RSS {peak} KiB");
    if peak < 0 {
        eprintln!("\n!!!!! /usr/bin/time is missing (apt-get install time): peak RSS NOT checked !!!!!\n");
    }
    assert!(count >= 50, "the corpus must hold at least 50 cases");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The stored key of `addr`, as bytes, read from the database.
fn stored_key_len(s: &Server, addr: &str) -> usize {
    let (local, domain) = addr.split_once('@').unwrap();
    let conn = rusqlite::Connection::open_with_flags(
        s.home.join("nymgate.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row("SELECT length(cert) FROM nyms WHERE local = ?1 AND domain = ?2", [local, domain], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap() as usize
}

/// The armored key block of `base` followed by `n` User IDs outside our
/// domains and `n` third-party certifications of its own User ID, written
/// packet by packet (building it as a certificate would itself take the
/// quadratic time the server must avoid).
fn flooded(base: &openpgp::Cert, n: usize) -> Vec<u8> {
    use openpgp::packet::UserID;
    let (other, _) = CertBuilder::general_purpose(Some("mallory@evil.example")).generate().unwrap();
    let mut signer = other.primary_key().key().clone().parts_into_secret().unwrap().into_keypair().unwrap();
    let uid = base.userids().next().unwrap().userid().clone();
    let mut bytes = Vec::new();
    base.serialize(&mut bytes).unwrap();
    let c = uid
        .certify(&mut signer, base, openpgp::types::SignatureType::GenericCertification, None, None)
        .unwrap();
    for i in 0..n {
        openpgp::Packet::from(UserID::from(format!("junk {i} <junk{i}@elsewhere.example>")))
            .serialize(&mut bytes)
            .unwrap();
        openpgp::Packet::from(c.clone()).serialize(&mut bytes).unwrap();
    }
    armor(openpgp::armor::Kind::PublicKey, &bytes)
}

impl Pgp {
    /// A creation request carrying an armored key block as it is.
    fn creation_block(&self, block: &[u8]) -> Vec<u8> {
        let mut text = b"hsub: hostile\n".to_vec();
        text.extend_from_slice(block);
        self.encrypt(&text)
    }
}

#[test]
fn flooded_refreshes_do_not_grow_the_stored_key() {
    let s = Server::new(&["nym.example"]);
    let server = openpgp::Cert::from_bytes(&s.key_export()).unwrap();
    let (alice, _) = CertBuilder::general_purpose(Some("alice@nym.example")).generate().unwrap();
    let p = Pgp { server, alice };
    assert_eq!(s.deliver_pgp("config@nym.example", &p.creation(&p.alice)), 0);
    let before = stored_key_len(&s, "alice@nym.example");
    // Anyone holding alice's public key can upload it again, flooded.
    for _ in 0..4 {
        let upload = flooded(&p.alice, 1000);
        let out = deliver(&s, "config@nym.example", &mail("config@nym.example", &p.creation_block(&upload)));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.maxrss_kib < 64 * 1024, "peak RSS {} KiB", out.maxrss_kib);
    }
    let after = stored_key_len(&s, "alice@nym.example");
    assert!(after <= before, "stored key grew from {before} to {after} bytes");
    assert!(after <= 64 * 1024);
}

#[test]
fn a_key_with_thousands_of_user_ids_is_judged_without_blowing_up() {
    let s = Server::new(&["nym.example"]);
    let server = openpgp::Cert::from_bytes(&s.key_export()).unwrap();
    let (alice, _) = CertBuilder::general_purpose(Some("alice@nym.example")).generate().unwrap();
    let p = Pgp { server, alice };
    // 6,000 User IDs outside our domains beside the nym's: the request that
    // cost 12-13 s of CPU before the key block was read within bounds.
    let big = flooded(&p.alice, 6000);
    assert!(big.len() > 600_000, "{} bytes", big.len());
    let out = deliver(&s, "config@nym.example", &mail("config@nym.example", &p.creation_block(&big)));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(String::from_utf8_lossy(&s.admin(&["nym", "list"]).stdout).contains("alice@nym.example"));
    assert!(out.maxrss_kib < 96 * 1024, "peak RSS {} KiB", out.maxrss_kib);
    assert!(stored_key_len(&s, "alice@nym.example") < 4096);
}

#[test]
fn text_signed_for_someone_else_cannot_be_replayed_into_config() {
    let s = Server::new(&["nym.example"]);
    let server = openpgp::Cert::from_bytes(&s.key_export()).unwrap();
    let (alice, _) = CertBuilder::general_purpose(Some("alice@nym.example")).generate().unwrap();
    let p = Pgp { server: server.clone(), alice };
    assert_eq!(s.deliver_pgp("config@nym.example", &p.creation(&p.alice)), 0);
    let (bob, _) = CertBuilder::general_purpose(Some("bob@example.org")).generate().unwrap();
    // alice signs "delete: yes" in a message for bob (the signature names
    // bob as its intended recipient, as sequoia and GnuPG 2.3+ do); bob
    // re-encrypts the signed text to config@.
    let signed_for = |who: &openpgp::Cert| {
        let signer = p
            .alice
            .keys()
            .unencrypted_secret()
            .with_policy(policy(), None)
            .for_signing()
            .next()
            .unwrap()
            .key()
            .clone()
            .into_keypair()
            .unwrap();
        p.encrypt_raw(|m| {
            let m = Signer::new(m, signer)?.add_intended_recipient(who).build()?;
            let mut w = LiteralWriter::new(m).build()?;
            w.write_all(b"delete: yes\n")?;
            w.finalize()
        })
    };
    let (code, log) = s.deliver_logged("config@nym.example", &mail("config@nym.example", &signed_for(&bob)));
    assert_eq!(code, 0);
    assert!(log.contains("signed_for_someone_else"), "{log}");
    assert!(String::from_utf8_lossy(&s.admin(&["nym", "list"]).stdout).contains("alice@nym.example"));
    // Signed for the server, the same request is obeyed.
    let (code, log) =
        s.deliver_logged("config@nym.example", &mail("config@nym.example", &signed_for(&server)));
    assert_eq!(code, 0);
    assert!(log.contains("outcome=deleted"), "{log}");
}

/// Not a test: writes the hostile inputs of the hardening issue, encrypted
/// to the server key in `$MEASURE_KEY`, into `$MEASURE_OUT`, for
/// `scripts/measure-hardening` to feed to an old and a new binary.
/// Run: MEASURE_KEY=key.asc MEASURE_OUT=dir cargo test --test tests -- --ignored write_hardening_inputs
#[test]
#[ignore]
fn write_hardening_inputs() {
    let (Some(key), Some(out)) = (std::env::var_os("MEASURE_KEY"), std::env::var_os("MEASURE_OUT")) else {
        return;
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).unwrap();
    let key_bytes = std::fs::read(&key).unwrap();
    let server = openpgp::Cert::from_bytes(&key_bytes).unwrap();
    let (alice, _) = CertBuilder::general_purpose(Some("alice@nym.example")).generate().unwrap();
    let p = Pgp { server, alice };
    let gpg = Gpg::new();
    gpg.import(&key_bytes);
    let write = |name: &str, body: Vec<u8>| std::fs::write(out.join(name), body).unwrap();
    write("00-create-alice.eml", mail("config@nym.example", &p.creation(&p.alice)));
    // 1: a public-key "refresh" flooded with 1,000 certifications and User IDs.
    write("01-refresh-flood.eml", mail("config@nym.example", &p.creation_block(&flooded(&p.alice, 1000))));
    // 2: a creation request whose key has 6,000 User IDs.
    let (bob, _) = CertBuilder::general_purpose(Some("bob@nym.example")).generate().unwrap();
    write("02-6000-uids.eml", mail("config@nym.example", &p.creation_block(&flooded(&bob, 6000))));
    // 3: 256 MiB of zeros compressed into a small message.
    write("03-bomb.eml", generated("compression-bomb", &p, &gpg));
    // 7: send@ with 1,000 recipients, signed by alice.
    let rcpts: Vec<String> = (0..1000).map(|i| format!("r{i}@example.org")).collect();
    let msg = format!("To: {}\nSubject: blast\n\nx\n", rcpts.join(", "));
    write("07-1000-rcpts.eml", mail("send@nym.example", &p.signed_at(msg.as_bytes(), SystemTime::now())));
    // 9-12: header smuggling, identity headers, repeated To, 8-bit body.
    let mut smuggle = b"To: bob@example.org\nTo: carol@example.org\nSubject: hi\rFrom: ceo@bank.example\rBcc: spy@evil.example\nFrom\0: x@y\n\
Resent-From: ceo@bank.example\nFrom: \"ceo@bank.example\" <alice@nym.example>\n\ncaf\xe9\n"
        .to_vec();
    smuggle.shrink_to_fit();
    write("09-12-headers.eml", mail("send@nym.example", &p.signed_at(&smuggle, SystemTime::now())));
}
