//! Nothing lost, nothing sent twice: the real binary under kill -9, failing
//! and hanging transports, a full disk, and many deliveries at once.
//!
//! Knobs (CI keeps them small; run them big by hand, see docs/performance.md):
//! - `NYMGATE_CRASH_RUNS`  messages whose delivery is killed at a random
//!   moment (default 30)
//! - `NYMGATE_SOAK_WORKERS` x `NYMGATE_SOAK_MSGS`  parallel deliveries and
//!   messages per worker in the soak (default 16 x 10)

use crate::util::*;

use rand::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nymgate::openpgp::{self as pgp, ServerKey};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The nym's own secret key, to read articles in-process (much faster
/// than one gpg run per article when there are thousands).
fn reader(g: &Gpg, addr: &str) -> ServerKey {
    let tsk = g.ok(&["--armor", "--passphrase", "", "--export-secret-keys", addr], b"");
    ServerKey::from_tsk(&tsk).expect("nym secret key")
}

fn open_article(key: &mut ServerKey, body: &[u8]) -> Option<Vec<u8>> {
    pgp::decrypt(key, body, 64 << 20, |_| Vec::new()).ok().map(|d| d.plaintext)
}

/// How many of the articles readable with `key` carry each marker
/// `<prefix...>`.
fn count_markers(key: &mut ServerKey, arts: &[Article], prefix: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for a in arts {
        let Some(plain) = open_article(key, a.body.as_bytes()) else { continue };
        let text = String::from_utf8_lossy(&plain).into_owned();
        if let Some(i) = text.find(prefix) {
            let rest = &text[i..];
            let end = rest.find('>').expect("marker end");
            *seen.entry(rest[..=end].to_string()).or_insert(0) += 1;
        }
    }
    seen
}

fn mail(to: &str, marker: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.org>\nTo: {to}\nSubject: test\nMessage-ID: <{}@example.org>\n\nThis is {marker}.\n",
        rand_hex()
    )
    .into_bytes()
}

fn spawn_deliver(s: &Server, rcpt: &str, msg: &[u8]) -> std::process::Child {
    let mut c = s.cmd();
    c.args(["deliver", "--recipient", rcpt, "--sender", "bob@example.org"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn deliver");
    // Messages here are small: the pipe buffer takes them whole.
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(msg);
    drop(stdin);
    child
}

fn db(s: &Server) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(s.home.join("nymgate.db")).unwrap();
    c.busy_timeout(Duration::from_secs(30)).unwrap();
    c
}

fn outbox_len(s: &Server) -> i64 {
    db(s).query_row("SELECT count(*) FROM outbox", [], |r| r.get(0)).unwrap()
}

/// Pretend the retry back-off and any claim of a process that could not
/// record its failure have run out (instead of sleeping minutes).
fn make_all_due(s: &Server) {
    db(s).execute("UPDATE outbox SET due = 0, claimed_until = 0", []).unwrap();
}

// ------------------------------------------------------------------ kill -9

/// kill -9 at a random moment, then the MTA's retries until one ends with
/// a verdict, then a flush once the claims of the dead have expired: every
/// message ends as exactly one article (mail to the nym) or exactly one
/// mail (send@), never none and never two.
#[test]
fn crash_at_any_point_then_mta_retry_and_flush_give_exactly_one_of_each() {
    let runs = env_num("NYMGATE_CRASH_RUNS", 30);
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    s.set("mail", "transport", "\"spool\"");
    s.set("delivery", "claim_timeout", "1");
    let nym = "alice@nym.example";
    let mut key = reader(&g, nym);
    let before = s.articles().len();

    // How long a whole delivery takes here sets the window we shoot into.
    let t = Instant::now();
    assert_eq!(s.deliver_raw(nym, &mail(nym, "<warmup>")), 0);
    let typical = t.elapsed();
    let mut rng = rand::thread_rng();
    let (mut killed, mut finished_first) = (0, 0);
    let mut sends = Vec::new();

    for i in 0..runs {
        // Every fifth message is a send@ through the mail spool.
        let (rcpt, msg) = if i % 5 == 4 {
            let text = format!("To: carol@example.org\nSubject: crash {i}\n\nThis is <crash-{i}>.\n");
            sends.push(i);
            let req = g.sign_encrypt("send@nym.example", nym, text.as_bytes());
            let mut m =
                format!("From: x@remailer.example\nTo: send@nym.example\nMessage-ID: <{}@r>\n\n", rand_hex())
                    .into_bytes();
            m.extend_from_slice(&req);
            ("send@nym.example", m)
        } else {
            (nym, mail(nym, &format!("<crash-{i}>")))
        };
        // Up to three attempts are shot at; the MTA keeps retrying.
        let mut attempt = 0;
        loop {
            let mut child = spawn_deliver(&s, rcpt, &msg);
            if attempt < 3 && rng.gen_bool(0.8) {
                let delay = rng.gen_range(Duration::ZERO..typical.mul_f64(1.3));
                std::thread::sleep(delay);
                let _ = child.kill(); // SIGKILL
            }
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "deliver panicked: {stderr}");
            match out.status.code() {
                Some(0) => {
                    if attempt == 0 {
                        finished_first += 1;
                    }
                    break;
                }
                // Killed (no code) or deferred: the MTA tries again.
                None | Some(75) => {
                    if out.status.code().is_none() {
                        killed += 1;
                    }
                }
                Some(c) => panic!("deliver of message {i} exited {c}: {stderr}"),
            }
            attempt += 1;
            assert!(attempt < 20, "message {i} never delivered");
        }
    }
    // Items claimed by processes that died are picked up by flush.
    std::thread::sleep(Duration::from_millis(2100));
    s.flush();
    assert_eq!(outbox_len(&s), 0, "flush left items queued");
    eprintln!(
        "crash test: {runs} messages, {killed} processes killed, {finished_first} finished before the shot"
    );

    let arts = s.articles();
    let seen = count_markers(&mut key, &arts, "<crash-");
    let mails = s.mails();
    for i in 0..runs {
        let m = format!("<crash-{i}>");
        if sends.contains(&i) {
            let n = mails.iter().filter(|t| t.contains(&m)).count();
            assert_eq!(n, 1, "send@ message {i} went out {n} times");
        } else {
            assert_eq!(seen.get(&m).copied().unwrap_or(0), 1, "message {i} posted {:?} times", seen.get(&m));
        }
    }
    // Nothing else appeared: creation confirmation + warm-up + one per message.
    assert_eq!(arts.len(), before + 1 + runs - sends.len(), "unexpected extra articles");
}

// ------------------------------------------------------------ transports

/// A stand-in for sendmail and inews whose behaviour a control file sets:
/// `ok`, `fail` (exit 1) or `hang` (never returns). What it accepts lands
/// in `<dir>/out`, one file per run.
struct FakeTransport {
    dir: PathBuf,
}

impl FakeTransport {
    fn new(parent: &Path, name: &str) -> FakeTransport {
        let dir = parent.join(name);
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let script = format!(
            "#!/bin/sh\nmode=$(cat '{d}/mode')\ncase \"$mode\" in\n\
             fail) cat >/dev/null; echo 'transport down' >&2; exit 1 ;;\n\
             hang) exec sleep 600 ;;\n\
             esac\nf=$(mktemp '{d}/out/m.XXXXXX')\ncat > \"$f\"\nexit 0\n",
            d = dir.display()
        );
        let path = dir.join("run");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let t = FakeTransport { dir };
        t.mode("ok");
        t
    }
    fn mode(&self, m: &str) {
        std::fs::write(self.dir.join("mode"), m).unwrap();
    }
    fn argv(&self) -> String {
        format!("[\"{}\"]", self.dir.join("run").display())
    }
    fn accepted(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("out"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

fn send_request(g: &Gpg, marker: &str) -> Vec<u8> {
    let text = format!("To: carol@example.org\nSubject: hello\n\nThis is {marker}.\n");
    let req = g.sign_encrypt("send@nym.example", "alice@nym.example", text.as_bytes());
    let mut m = format!("From: x@remailer.example\nTo: send@nym.example\nMessage-ID: <{}@r>\n\n", rand_hex())
        .into_bytes();
    m.extend_from_slice(&req);
    m
}

#[test]
fn sendmail_failing_or_hanging_keeps_the_mail_queued_and_flush_sends_it_once() {
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    let sm = FakeTransport::new(s.dir.path(), "sendmail");
    s.set("mail", "transport", "\"sendmail\"");
    s.set("mail", "sendmail", &sm.argv());
    s.set("delivery", "transport_timeout", "1");

    for mode in ["fail", "hang"] {
        sm.mode(mode);
        let marker = format!("<sendmail-{mode}>");
        let t = Instant::now();
        // Committed, so the MTA is told 0 although the hand-off failed.
        assert_eq!(s.deliver_raw("send@nym.example", &send_request(&g, &marker)), 0);
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "a hanging sendmail held deliver for {:?}",
            t.elapsed()
        );
        assert_eq!(outbox_len(&s), 1, "the mail must stay queued ({mode})");
        assert!(sm.accepted().iter().all(|m| !m.contains(&marker)));
        // A flush while sendmail is still broken keeps it queued too.
        make_all_due(&s);
        s.flush();
        assert_eq!(outbox_len(&s), 1, "a failed flush must keep the mail ({mode})");
        // Repaired: the next flush sends it, once; more flushes change nothing.
        sm.mode("ok");
        make_all_due(&s);
        s.flush();
        s.flush();
        assert_eq!(outbox_len(&s), 0);
        let n = sm.accepted().iter().filter(|m| m.contains(&marker)).count();
        assert_eq!(n, 1, "mail sent {n} times after sendmail {mode}");
    }
}

#[test]
fn inews_failing_or_hanging_keeps_the_article_queued_and_flush_posts_it_once() {
    let (s, g) = server_with_nym("alice", "hsub: panda\n");
    let inews = FakeTransport::new(s.dir.path(), "inews");
    s.set("news", "transport", "\"inews\"");
    s.set("news", "inews", &inews.argv());
    s.set("delivery", "transport_timeout", "1");
    let mut key = reader(&g, "alice@nym.example");

    for mode in ["fail", "hang"] {
        inews.mode(mode);
        let marker = format!("<inews-{mode}>");
        assert_eq!(s.deliver_raw("alice@nym.example", &mail("alice@nym.example", &marker)), 0);
        assert_eq!(outbox_len(&s), 1, "the article must stay queued ({mode})");
        make_all_due(&s);
        s.flush();
        assert_eq!(outbox_len(&s), 1);
        inews.mode("ok");
        make_all_due(&s);
        s.flush();
        s.flush();
        assert_eq!(outbox_len(&s), 0);
        let mut n = 0;
        for art in inews.accepted() {
            let body = art.split_once("\n\n").unwrap().1;
            let plain = open_article(&mut key, body.as_bytes()).expect("article for alice");
            if String::from_utf8_lossy(&plain).contains(&marker) {
                n += 1;
            }
        }
        assert_eq!(n, 1, "article posted {n} times after inews {mode}");
    }
}

/// INN answers 435/437 for a Message-ID it already has: the earlier
/// hand-off worked, so the item is done, not retried for ever.
#[test]
fn inews_duplicate_answer_counts_as_posted() {
    let (s, _g) = server_with_nym("alice", "hsub: panda\n");
    let dir = s.dir.path().join("dupnews");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("inews");
    std::fs::write(&script, "#!/bin/sh\ncat >/dev/null\necho '437 Duplicate article'\nexit 1\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    s.set("news", "transport", "\"inews\"");
    s.set("news", "inews", &format!("[\"{}\"]", script.display()));
    assert_eq!(s.deliver_raw("alice@nym.example", &mail("alice@nym.example", "<dup>")), 0);
    assert_eq!(outbox_len(&s), 0);
}

// ------------------------------------------------------------- disk full

/// A small tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Tmpfs { path: path.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fill the file system holding `dir` until at most `leave` bytes are free.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let free = || {
        let st = nix::sys::statvfs::statvfs(dir).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    };
    let chunk = vec![0u8; 4096];
    while free() > leave {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    path
}

fn integrity_ok(s: &Server) {
    let r: String = db(s).query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(r, "ok", "database damaged");
}

#[test]
fn disk_full_defers_with_75_keeps_the_database_and_delivers_once_space_returns() {
    let dir = tempfile::Builder::new().prefix("ngfull").tempdir_in("/tmp").unwrap();
    let mnt = dir.path().join("mnt");
    let _fs = match Tmpfs::mount(&mnt, "8m") {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "\n!!!!! SKIPPED disk-full test: cannot mount a tmpfs ({e}); run the tests as root !!!!!\n"
            );
            return;
        }
    };
    // A server whose whole home lives on the small file system.
    let s = Server::init(dir, mnt.join("home"), &["nym.example"], &[]);
    let g = Gpg::new();
    g.import(&s.key_export());
    g.gen_modern("alice@nym.example");
    let req = g.creation_request("alice@nym.example", "nym.example", "hsub: panda\n");
    assert_eq!(s.deliver_pgp("config@nym.example", &req), 0);
    let mut key = reader(&g, "alice@nym.example");

    // From no room at all to a little: every outcome must be 0 or 75, and
    // a 75 must have left the database exactly as it was.
    let mut deferred = 0;
    let leaves = [0u64, 4096, 16384, 32768, 65536, 131072];
    for (i, leave) in leaves.iter().enumerate() {
        let msg = mail("alice@nym.example", &format!("<full-{i}>"));
        let snap = s.db_snapshot();
        let filler = fill(&mnt, *leave);
        let code = s.deliver_raw("alice@nym.example", &msg);
        eprintln!("disk full, {leave} bytes left: deliver exited {code}, {} item(s) queued", outbox_len(&s));
        match code {
            75 => {
                deferred += 1;
                std::fs::remove_file(&filler).unwrap();
                integrity_ok(&s);
                assert_eq!(s.db_snapshot(), snap, "a deferred delivery changed the database");
                // The MTA's retry, now that there is room.
                assert_eq!(s.deliver_raw("alice@nym.example", &msg), 0);
            }
            0 => std::fs::remove_file(&filler).unwrap(),
            c => panic!("disk full (leaving {leave} bytes) gave exit {c}"),
        }
        integrity_ok(&s);
        make_all_due(&s);
        s.flush();
        assert_eq!(outbox_len(&s), 0);
    }
    assert!(deferred > 0, "a completely full disk never made deliver defer");
    let seen = count_markers(&mut key, &s.articles(), "<full-");
    for i in 0..leaves.len() {
        assert_eq!(seen.get(&format!("<full-{i}>")).copied(), Some(1), "message {i}: {seen:?}");
    }
}

// ------------------------------------------------------------------ soak

/// Many deliveries at once with flush and the admin commands running
/// beside them: every delivery exits 0, every message is posted once.
#[test]
fn soak_parallel_deliveries_with_flush_and_admin_lose_nothing_and_duplicate_nothing() {
    let workers = env_num("NYMGATE_SOAK_WORKERS", 16);
    let per = env_num("NYMGATE_SOAK_MSGS", 10);
    let (s, g) = server_with_nym("alice", "hsub: panda\nacksend: no\n");
    // A second nym for the admin commands to toggle.
    g.gen_modern("bob@nym.example");
    assert_eq!(
        s.deliver_pgp("config@nym.example", &g.creation_request("bob@nym.example", "nym.example", "")),
        0
    );
    let mut key = reader(&g, "alice@nym.example");
    let before = s.articles().len();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let failures = std::sync::Mutex::new(Vec::new());

    std::thread::scope(|sc| {
        // Flush and the operator, all the time.
        sc.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = s.admin(&["flush"]);
                if !out.status.success() {
                    failures.lock().unwrap().push(format!("flush: {}", String::from_utf8_lossy(&out.stderr)));
                }
            }
        });
        sc.spawn(|| {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let args: &[&str] = match i % 5 {
                    0 => &["nym", "list"],
                    1 => &["nym", "show", "alice@nym.example"],
                    2 => &["nym", "disable", "bob@nym.example"],
                    3 => &["nym", "enable", "bob@nym.example"],
                    _ => &["key", "export"],
                };
                let out = s.admin(args);
                if !out.status.success() {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)));
                }
                i += 1;
            }
        });
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let s = &s;
                let failures = &failures;
                sc.spawn(move || {
                    for i in 0..per {
                        let msg = mail("alice@nym.example", &format!("<soak-{w}-{i}>"));
                        let out =
                            run(s.cmd().args(["deliver", "--recipient", "alice@nym.example"]), Some(&msg));
                        if out.status.code() != Some(0) {
                            failures.lock().unwrap().push(format!(
                                "deliver {w}/{i} exited {:?}: {}",
                                out.status.code(),
                                String::from_utf8_lossy(&out.stderr)
                            ));
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    s.flush();
    assert_eq!(outbox_len(&s), 0);
    let arts = s.articles();
    assert_eq!(arts.len(), before + workers * per, "article count");
    let seen = count_markers(&mut key, &arts, "<soak-");
    for w in 0..workers {
        for i in 0..per {
            let m = format!("<soak-{w}-{i}>");
            assert_eq!(seen.get(&m).copied(), Some(1), "{m} posted {:?} times", seen.get(&m));
        }
    }
}
