//! Whole-process benchmark of `nymgate deliver`, against the same work
//! done the way the older nym servers do it (one `gpg` process per
//! OpenPGP operation). Run it through `scripts/bench`; it prints a table.
//!
//! This is a measurement, not a test: nothing here asserts a timing.
//!
//! Environment:
//! - `BENCH_RUNS` samples per figure (default 60)
//! - `BENCH_NYMS` size of the big database (default 1000000)
//! - `BENCH_CONCURRENT_MSGS` messages in the 8-way run (default 1600)
//! - `BENCH_DIR` where the scratch server lives (default the temp dir)
//! - `BENCH_COMPARE=name=/path/to/nymgate,...` other builds measured in
//!   the same run on the same server, message by message beside this one
//!   (per-message and throughput figures); `BENCH_NAME` names this build
//!   (default `this`)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nymgate");
const DOMAIN: &str = "nym.example";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one child run cost: wall time, peak RSS, exit status.
struct Run {
    wall: Duration,
    /// Only meaningful when this process is small (see `memory`).
    #[allow(dead_code)]
    maxrss_kib: i64,
    cpu: Duration,
    code: i32,
}

/// Spawn `cmd` with `input` on stdin and reap it with wait4 so that we get
/// the child's own peak RSS and CPU time.
fn run(mut cmd: Command, input: &[u8]) -> Run {
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    // A developer's RUST_BACKTRACE=1 makes every internal error capture a
    // backtrace; the MTA never sets it, so neither do we.
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    // Large inputs exceed the pipe buffer: write from a thread.
    let writer = if input.len() > 60_000 {
        let data = input.to_vec();
        Some(std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        }))
    } else {
        let _ = stdin.write_all(input);
        drop(stdin);
        None
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped; status and ru are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    let wall = start.elapsed();
    if let Some(w) = writer {
        let _ = w.join();
    }
    // The Child handle is dropped without wait: wait4 already reaped it.
    std::mem::forget(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Run {
        wall,
        maxrss_kib: ru.ru_maxrss,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        code: if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 },
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    /// The nym user's GnuPG home.
    user: PathBuf,
    /// The "old server": the same server key, in a GnuPG home.
    old: PathBuf,
    /// The builds measured: this one first, then `BENCH_COMPARE`'s.
    builds: Vec<(String, PathBuf)>,
}

/// This build, then each `name=path` of `BENCH_COMPARE`.
fn builds() -> Vec<(String, PathBuf)> {
    let mut v = vec![(std::env::var("BENCH_NAME").unwrap_or_else(|_| "this".into()), PathBuf::from(BIN))];
    for item in std::env::var("BENCH_COMPARE").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        let (name, path) = item.split_once('=').expect("BENCH_COMPARE items are name=/path/to/nymgate");
        assert!(Path::new(path).is_file(), "BENCH_COMPARE: {path} is not a file");
        v.push((name.to_string(), PathBuf::from(path)));
    }
    v
}

fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home).args([
        "--batch",
        "--yes",
        "--no-tty",
        "--quiet",
        "--trust-model",
        "always",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    c
}

fn gpg_ok(home: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut c = gpg(home);
    c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn private_dir(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
}

impl Bench {
    fn new() -> Bench {
        let base = std::env::var_os("BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new().prefix("nymbench").tempdir_in(base).unwrap();
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        let out = Command::new(BIN)
            .args(["init", "--home"])
            .arg(&home)
            .args(["--domain", DOMAIN])
            .output()
            .unwrap();
        assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
        let config = home.join("nymgate.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text
            .replace("sendmail = [\"/usr/sbin/sendmail\", \"-i\"]", "sendmail = [\"/bin/true\"]")
            .replace("daily_limit = 50", "daily_limit = 100000000")
            .replace("max_message_size = 20971520", "max_message_size = 25165824")
            // The figures are of a whole delivery including its hand-off,
            // as before the pool (on by default) left hand-offs to flush.
            .replace("\nenabled = true\n", "\nenabled = false\n");
        std::fs::write(&config, text).unwrap();
        let user = root.join("user");
        let old = root.join("old");
        private_dir(&user);
        private_dir(&old);
        let b = Bench { _dir: dir, root, config, user, old, builds: builds() };
        let pubkey = b.nymgate(&["key", "export"]);
        gpg_ok(&b.user, &["--import"], &pubkey);
        // The old server holds the same secret key as ours.
        let tsk = std::fs::read(home.join("server.key")).or_else(|_| find_key_file(&home)).unwrap();
        gpg_ok(&b.old, &["--import"], &tsk);
        b
    }

    fn nymgate(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new(BIN).arg("--config").arg(&self.config).args(args).output().unwrap();
        assert!(out.status.success(), "nymgate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    fn deliver_cmd_with(&self, bin: &Path, rcpt: &str) -> Command {
        let mut c = Command::new(bin);
        c.arg("--config").arg(&self.config).args([
            "deliver",
            "--recipient",
            rcpt,
            "--sender",
            "x@outside.example",
        ]);
        c
    }

    fn deliver(&self, rcpt: &str, msg: &[u8]) -> Run {
        self.deliver_with(Path::new(BIN), rcpt, msg)
    }

    fn deliver_with(&self, bin: &Path, rcpt: &str, msg: &[u8]) -> Run {
        let r = run(self.deliver_cmd_with(bin, rcpt), msg);
        assert_eq!(r.code, 0, "{} deliver to {rcpt} exited {}", bin.display(), r.code);
        r
    }

    /// Make a nym key in the user's GnuPG and create the nym through config@.
    fn create_nym(&self, addr: &str, algo: &str) {
        if algo == "future-default" {
            gpg_ok(&self.user, &["--quick-gen-key", addr, "future-default", "default", "1y"], b"");
        } else {
            gpg_ok(&self.user, &["--quick-gen-key", addr, algo, "sign", "1y"], b"");
            let fpr = fingerprint(&self.user, addr);
            gpg_ok(&self.user, &["--quick-add-key", &fpr, algo, "encr", "1y"], b"");
        }
        let mut req = b"hsub: benchpass\n".to_vec();
        req.extend(gpg_ok(&self.user, &["--armor", "--export", addr], b""));
        let enc = gpg_ok(&self.user, &["--armor", "--encrypt", "-r", &format!("config@{DOMAIN}")], &req);
        self.deliver(&format!("config@{DOMAIN}"), &wrap("config", &enc, 0));
        // The old server knows the nym's public key.
        let pubkey = gpg_ok(&self.user, &["--armor", "--export", addr], b"");
        gpg_ok(&self.old, &["--import"], &pubkey);
    }

    /// A request signed by `nym` and encrypted to `to@DOMAIN`.
    fn request(&self, nym: &str, to: &str, text: &[u8]) -> Vec<u8> {
        gpg_ok(
            &self.user,
            &["--armor", "--sign", "--encrypt", "-r", &format!("{to}@{DOMAIN}"), "-u", nym],
            text,
        )
    }

    fn db(&self) -> PathBuf {
        self.root.join("home").join("nymgate.db")
    }
}

fn find_key_file(home: &Path) -> std::io::Result<Vec<u8>> {
    for e in std::fs::read_dir(home)? {
        let p = e?.path();
        if let Ok(t) = std::fs::read(&p) {
            if t.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----") {
                return Ok(t);
            }
        }
    }
    Err(std::io::Error::other("no server key file"))
}

fn fingerprint(home: &Path, uid: &str) -> String {
    let out = String::from_utf8(gpg_ok(home, &["--with-colons", "--list-keys", uid], b"")).unwrap();
    out.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string()
}

/// A mail carrying `body`, unique by `n`.
fn wrap(to: &str, body: &[u8], n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: anon@remailer.example\nTo: {to}@{DOMAIN}\nSubject: request\nMessage-ID: <{n}.{}@bench>\n\n",
        std::process::id()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

/// An ordinary incoming mail of about `size` bytes, unique by `n`.
fn mail_of_size(to: &str, size: usize, n: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Bob <bob@example.org>\nTo: {to}\nSubject: benchmark {n}\nMessage-ID: <m{n}.{}@example.org>\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog, again and again. 0123456789\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    while m.len() < size {
        m.push(b'.');
    }
    m
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// One row: each build's figures and the gpg way.
struct Row {
    what: String,
    /// Per build (in `Bench::builds` order): wall and CPU time (user +
    /// system) of our process.
    ours: Vec<(Vec<Duration>, Vec<Duration>)>,
    gpg: Vec<Duration>,
}

impl Row {
    fn new(what: &str, builds: usize) -> Row {
        Row { what: what.into(), ours: vec![(Vec::new(), Vec::new()); builds], gpg: Vec::new() }
    }
}

fn print_rows(rows: &mut [Row], names: &[String]) {
    println!();
    let one = names.len() == 1;
    let col = names.iter().map(String::len).max().unwrap_or(4).max(5);
    if one {
        println!(
            "{:<32} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "per message (whole process)", "ours p50", "ours p90", "cpu p50", "gpg p50", "gpg/ours"
        );
        println!("{}", "-".repeat(82));
    } else {
        println!(
            "{:<32} {:<col$} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "per message (whole process)", "build", "p50", "p90", "cpu p50", "gpg p50", "gpg/ours"
        );
        println!("{}", "-".repeat(83 + col));
    }
    for r in rows.iter_mut() {
        let g = median(&mut r.gpg);
        for (k, (wall, cpu)) in r.ours.iter_mut().enumerate() {
            let o = median(wall);
            let o90 = pct(wall, 0.9);
            let c = median(cpu);
            let ratio = g.as_secs_f64() / o.as_secs_f64();
            if one {
                println!(
                    "{:<32} {:>9} {:>9} {:>9} {:>9} {:>7.1}x",
                    r.what,
                    ms(o),
                    ms(o90),
                    ms(c),
                    ms(g),
                    ratio
                );
            } else {
                let what = if k == 0 { r.what.as_str() } else { "" };
                let gp = if k == 0 { ms(g) } else { String::new() };
                println!(
                    "{:<32} {:<col$} {:>9} {:>9} {:>9} {:>9} {:>7.1}x",
                    what,
                    names[k],
                    ms(o),
                    ms(o90),
                    ms(c),
                    gp,
                    ratio
                );
            }
        }
    }
    let n = rows.first().map(|r| r.ours[0].0.len()).unwrap_or(0);
    if one {
        println!("(times in ms; medians of {n} runs each)");
    } else {
        println!("(times in ms; medians of {n} runs each; the builds take turns message by message)");
    }
}

fn gpg_time(home: &Path, args: &[&str], input: &[u8]) -> Duration {
    let mut c = gpg(home);
    c.args(args);
    let r = run(c, input);
    // gpg does secret-key work in gpg-agent, so its own CPU time would
    // flatter it: only its wall time is compared.
    assert_eq!(r.code, 0, "gpg {args:?} failed");
    r.wall
}

/// The confirmation text the old servers encrypt back for config@ and send@.
fn confirmation() -> Vec<u8> {
    let mut t = b"From: config@nym.example\nTo: alice@nym.example\nSubject: Nym options changed\n\n".to_vec();
    t.extend_from_slice(
        b"Your nym's options were changed.\n\nNym:        alice@nym.example\nhsub:       \"benchpass\"\n",
    );
    t
}

fn sign_encrypt_args(rcpt: &str) -> Vec<String> {
    ["--armor", "--throw-keyids", "--sign", "--encrypt", "-u", &format!("config@{DOMAIN}"), "-r", rcpt]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn per_message(b: &Bench, runs: usize) -> Vec<Row> {
    let alice = format!("alice@{DOMAIN}");
    let bob = format!("bob@{DOMAIN}");
    let n = b.builds.len();
    let mut rows = Vec::new();
    for (label, rcpt) in [("mail to nym, 4 KiB, Cv25519", &alice), ("mail to nym, 4 KiB, RSA-4096", &bob)] {
        let se = sign_encrypt_args(rcpt);
        let se: Vec<&str> = se.iter().map(String::as_str).collect();
        let mut row = Row::new(label, n);
        for i in 0..runs {
            for (k, (_, bin)) in b.builds.iter().enumerate() {
                let m = mail_of_size(rcpt, 4096, (i * n + k) + rows.len() * 100_000);
                let r = b.deliver_with(bin, rcpt, &m);
                row.ours[k].0.push(r.wall);
                row.ours[k].1.push(r.cpu);
            }
            let m = mail_of_size(rcpt, 4096, i + rows.len() * 100_000);
            row.gpg.push(gpg_time(&b.old, &se, &m));
        }
        rows.push(row);
    }
    // config@ modify and send@, with fresh signatures (the replay cache
    // would short-cut repeats): one request per run and build.
    eprintln!("bench: signing {} requests of each kind with gpg ...", runs * n);
    let se = sign_encrypt_args(&alice);
    let se: Vec<&str> = se.iter().map(String::as_str).collect();
    for (label, to) in [("config@ modify (Cv25519)", "config"), ("send@ 4 KiB + ack (Cv25519)", "send")] {
        let reqs: Vec<Vec<u8>> = (0..runs * n)
            .map(|i| {
                let text = if to == "config" {
                    format!("hsub: benchpass\nsubject: s{i}\n").into_bytes()
                } else {
                    mail_of_size("carol@example.org", 4096, i)
                };
                wrap(to, &b.request(&alice, to, &text), i)
            })
            .collect();
        let rcpt = format!("{to}@{DOMAIN}");
        let mut row = Row::new(label, n);
        for (i, round) in reqs.chunks(n).enumerate() {
            for (k, (_, bin)) in b.builds.iter().enumerate() {
                let run = b.deliver_with(bin, &rcpt, &round[k]);
                row.ours[k].0.push(run.wall);
                row.ours[k].1.push(run.cpu);
            }
            // The old way: decrypt + verify, then sign + encrypt the reply.
            let r = &reqs[i * n];
            let armored = &r[r.windows(5).position(|w| w == b"-----").unwrap()..];
            let t = gpg_time(&b.old, &["--decrypt"], armored) + gpg_time(&b.old, &se, &confirmation());
            row.gpg.push(t);
        }
        rows.push(row);
    }
    rows
}

/// `total` fresh messages (numbered from `base`) through `workers`
/// deliveries at a time.
fn concurrent(b: &Bench, bin: &Path, base: usize, total: usize, workers: usize) -> (f64, usize) {
    let alice = format!("alice@{DOMAIN}");
    let msgs: Vec<Vec<u8>> = (0..total).map(|i| mail_of_size(&alice, 4096, base + i)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let r = run(b.deliver_cmd_with(bin, &alice), &msgs[i]);
                if r.code != 0 {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (total as f64 / start.elapsed().as_secs_f64(), failures.into_inner())
}

/// Fill the nyms table up to `target` rows, straight into SQLite: realistic
/// rows (a real certificate blob, options, two key-index entries each).
fn fill_nyms(b: &Bench, target: usize) {
    let mut c = rusqlite::Connection::open(b.db()).unwrap();
    c.pragma_update(None, "journal_mode", "DELETE").unwrap();
    c.pragma_update(None, "synchronous", "OFF").unwrap();
    c.pragma_update(None, "cache_size", -400_000).unwrap();
    let have: usize = c.query_row("SELECT count(*) FROM nyms", [], |r| r.get(0)).unwrap();
    let cert: Vec<u8> = c.query_row("SELECT cert FROM nyms WHERE local = 'alice'", [], |r| r.get(0)).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO nyms(local, domain, fingerprint, cert, expires, created, hsub, flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 509)",
            )
            .unwrap();
        let mut key = tx.prepare("INSERT INTO nym_keys(keyid, nym_id) VALUES (?1, ?2)").unwrap();
        let now = nymgate::store::now();
        // Seeded by the row count so that a second fill makes new keys.
        let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ ((have as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut next = || {
            // xorshift: quick, and good enough for spreading index keys.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for i in have..target {
            let fpr = format!("{:016X}{:016X}{:08X}", next(), next(), next() as u32);
            ins.execute(rusqlite::params![
                format!("filler{i}"),
                DOMAIN,
                fpr,
                cert,
                now + 365 * 86400,
                now,
                "filler-pass"
            ])
            .unwrap();
            let id = tx.last_insert_rowid();
            // Primary key ID is the fingerprint's tail; plus one subkey.
            key.execute(rusqlite::params![&fpr[24..], id]).unwrap();
            key.execute(rusqlite::params![format!("{:016X}", next()), id]).unwrap();
        }
    }
    tx.commit().unwrap();
    c.execute_batch("ANALYZE").unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
}

fn db_scale(b: &Bench, runs: usize, big: usize) {
    let alice = format!("alice@{DOMAIN}");
    let measure = |tag: usize| -> (Duration, Duration) {
        let mut mail = Vec::new();
        let mut conf = Vec::new();
        let reqs: Vec<Vec<u8>> = (0..runs)
            .map(|i| {
                wrap(
                    "config",
                    &b.request(&alice, "config", format!("subject: t{tag}-{i}\n").as_bytes()),
                    tag + i,
                )
            })
            .collect();
        for (i, r) in reqs.iter().enumerate() {
            mail.push(b.deliver(&alice, &mail_of_size(&alice, 4096, tag + i)).wall);
            conf.push(b.deliver(&format!("config@{DOMAIN}"), r).wall);
        }
        (median(&mut mail), median(&mut conf))
    };
    fill_nyms(b, 100);
    let small = measure(3_000_000);
    let t = Instant::now();
    fill_nyms(b, big);
    let fill = t.elapsed();
    let size = std::fs::metadata(b.db()).map(|m| m.len()).unwrap_or(0);
    let large = measure(4_000_000);
    println!();
    println!("database size (filled {big} nyms in {:.1} s, file {} MiB)", fill.as_secs_f64(), size >> 20);
    println!("{:<28} {:>10} {:>12} {:>8}", "per message p50", "100 nyms", format!("{big} nyms"), "change");
    println!("{}", "-".repeat(62));
    for (what, s, l) in [("mail to nym (Cv25519)", small.0, large.0), ("config@ modify", small.1, large.1)] {
        println!(
            "{:<28} {:>10} {:>12} {:>+7.1}%",
            what,
            ms(s),
            ms(l),
            (l.as_secs_f64() / s.as_secs_f64() - 1.0) * 100.0
        );
    }
}

fn memory(b: &Bench) {
    let alice = format!("alice@{DOMAIN}");
    println!();
    println!("{:<28} {:>12} {:>10} {:>10}", "peak RSS of deliver", "RSS MiB", "x size", "wall ms");
    println!("{}", "-".repeat(64));
    for (label, size) in [
        ("4 KiB mail", 4096usize),
        ("64 KiB mail", 64 << 10),
        ("1 MiB mail", 1 << 20),
        ("20 MiB mail", 20 << 20),
    ] {
        let m = mail_of_size(&alice, size, 5_000_000 + size);
        // Through /usr/bin/time, a small parent: Linux carries the
        // spawner's RSS high-water mark into the child, so wait4 from this
        // process (which holds the 20 MiB message) would over-report.
        let out = b.root.join("rss");
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%M", "-o"]).arg(&out).arg(BIN).arg("--config").arg(&b.config);
        c.args(["deliver", "--recipient", &alice]);
        c.env_remove("RUST_BACKTRACE");
        let r = run(c, &m);
        assert_eq!(r.code, 0);
        let kib: f64 = std::fs::read_to_string(&out).unwrap().trim().parse().unwrap();
        let rss = kib / 1024.0;
        println!(
            "{:<28} {:>12.1} {:>10.2} {:>10}",
            label,
            rss,
            rss * 1024.0 * 1024.0 / size as f64,
            ms(r.wall)
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; we take no other arguments.
    let runs = env_num("BENCH_RUNS", 60);
    let big = env_num("BENCH_NYMS", 1_000_000);
    let conc = env_num("BENCH_CONCURRENT_MSGS", 1600);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let want = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);
    eprintln!("bench: setting up a server, two nyms and a gpg 'old server' ...");
    let b = Bench::new();
    b.create_nym(&format!("alice@{DOMAIN}"), "future-default");
    b.create_nym(&format!("bob@{DOMAIN}"), "rsa4096");
    // Warm the page cache and gpg-agent before measuring.
    for i in 0..5 {
        for (k, (_, bin)) in b.builds.iter().enumerate() {
            b.deliver_with(
                bin,
                &format!("alice@{DOMAIN}"),
                &mail_of_size("alice", 4096, 9_000_000 + i * 10 + k),
            );
        }
        gpg_time(&b.old, &["--armor", "--sign", "-u", &format!("config@{DOMAIN}")], b"warm");
    }
    println!("nymgate deliver benchmark: {} (release), gpg {}", BIN, gpg_version());
    let names: Vec<String> = b.builds.iter().map(|(n, _)| n.clone()).collect();
    for (name, bin) in &b.builds[1..] {
        println!("compared: {name} = {}", bin.display());
    }
    if want("per") {
        let mut rows = per_message(&b, runs);
        print_rows(&mut rows, &names);
    }
    if want("conc") {
        println!();
        for (k, (name, bin)) in b.builds.iter().enumerate() {
            let tag = if names.len() == 1 { String::new() } else { format!(" [{name}]") };
            let base = 1_000_000 + k * 2 * conc;
            let (rate, fails) = concurrent(&b, bin, base, conc, 8);
            println!("throughput, 8 concurrent deliveries of 4 KiB mail to a Cv25519 nym{tag}: {rate:.0} msg/s ({conc} messages, {fails} non-zero exits)");
            let (rate1, _) = concurrent(&b, bin, base + conc, conc / 4, 1);
            println!("throughput, 1 delivery at a time (same messages){tag}:               {rate1:.0} msg/s");
        }
    }
    if want("mem") {
        memory(&b);
    }
    if want("scale") {
        db_scale(&b, runs, big);
    }
    if std::env::var_os("BENCH_KEEP").is_some() {
        let kept = b.root.clone();
        std::mem::forget(b);
        eprintln!("bench: kept {}", kept.display());
    }
}

fn gpg_version() -> String {
    let out = Command::new("gpg").arg("--version").output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out).lines().next().unwrap_or("?").trim_start_matches("gpg (GnuPG) ").to_string()
}
