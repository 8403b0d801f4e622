//! The nym holder's client (`nym`): the user's side of the protocol.
//!
//! `cli` defines the commands; this module runs them, and the submodules
//! own one concern each: the store on disk, the OpenPGP work, request text,
//! hand-off of mails, NNTP, fetching and TLS.

pub mod cli;
pub mod fetch;
pub mod handoff;
pub mod nntp;
pub mod request;
pub mod store;
pub mod tls;

use std::collections::HashMap;
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use crate::openpgp::holder::{self as pgp, Passphrase};
use crate::openpgp::PgpCert as Cert;
use anyhow::{anyhow, bail, Context, Result};
use clap::{CommandFactory, Parser};

use cli::{Cli, Command, Handoff, NymOptions};
use handoff::Via;
use store::{normalize_address, NymRecord, Store, UrlKey};

/// Entry point of the `nym` binary; returns the exit code.
pub fn main() -> i32 {
    // Behave like other filters when the reader goes away (`nym read | head`):
    // die quietly of SIGPIPE instead of panicking in println!.
    // SAFETY: setting a signal disposition to its default before any thread
    // is started has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A reader that stopped reading (`nym read | head`) is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            0
        }
        Err(e) => {
            eprintln!("nym: error: {e:#}");
            1
        }
    }
}

pub fn run(cli: Cli) -> Result<i32> {
    // Commands that need no store.
    match &cli.command {
        Command::Manpage(a) => return manpage(a.out.as_deref()).map(|_| 0),
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "nym", &mut std::io::stdout());
            return Ok(0);
        }
        _ => {}
    }
    let ctx = Ctx { store: Store::open(cli.home.as_deref())?, passphrase_file: cli.passphrase_file.clone() };
    match cli.command {
        Command::New(a) => ctx.new_nym(a).map(|_| 0),
        Command::Import(a) => ctx.import(a).map(|_| 0),
        Command::Send(a) => ctx.send(a).map(|_| 0),
        Command::Config(a) => ctx.config(a).map(|_| 0),
        Command::Delete(a) => ctx.delete(a).map(|_| 0),
        Command::Url(a) => ctx.url(a).map(|_| 0),
        Command::Fetch(a) => ctx.fetch(a).map(|_| 0),
        Command::Read(a) => ctx.read(a),
        Command::List => ctx.list().map(|_| 0),
        Command::Export(a) => ctx.export(a).map(|_| 0),
        Command::Manpage(_) | Command::Completions(_) => unreachable!(),
    }
}

fn manpage(out: Option<&Path>) -> Result<()> {
    let cmd = Cli::command();
    match out {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
        Some(dir) => {
            fs::create_dir_all(dir)?;
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
            fs::write(dir.join("nym.1"), &buf)?;
            for sub in cmd.get_subcommands() {
                let name: &'static str = Box::leak(format!("nym-{}", sub.get_name()).into_boxed_str());
                let sub = sub.clone().name(name);
                let mut buf = Vec::new();
                clap_mangen::Man::new(sub).render(&mut buf)?;
                fs::write(dir.join(format!("{name}.1")), &buf)?;
            }
            eprintln!("nym: man pages written to {}", dir.display());
        }
    }
    Ok(())
}

struct Ctx {
    store: Store,
    passphrase_file: Option<PathBuf>,
}

impl Ctx {
    fn password(&self, what: &str) -> Result<Passphrase> {
        if let Some(p) = &self.passphrase_file {
            let s = fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            return Ok(s.lines().next().unwrap_or("").into());
        }
        if let Ok(s) = std::env::var("NYM_PASSPHRASE") {
            return Ok(s.into());
        }
        if std::io::stdin().is_terminal() {
            return Ok(rpassword::prompt_password(format!("Passphrase for {what}: "))?.into());
        }
        bail!("{what} is passphrase-protected; give --passphrase-file or set NYM_PASSPHRASE")
    }

    /// The nym's key with usable secrets.
    fn secret_key(&self, addr: &str) -> Result<Cert> {
        let cert = pgp::read_cert(&self.store.key_bytes(addr)?)?;
        if pgp::is_protected(&cert) {
            let pw = self.password(&format!("the key of {addr}"))?;
            return pgp::unlock(cert, &pw);
        }
        Ok(cert)
    }

    fn server_key(&self, addr: &str) -> Result<Cert> {
        pgp::read_cert(&self.store.server_key_bytes(addr)?)
    }

    fn handoff(&self, h: &Handoff, to: &str, armored: &str) -> Result<()> {
        let cfg = self.store.config()?;
        let via = match h.via.as_deref().or(cfg.via.as_deref()) {
            Some(v) => Via::parse(v)?,
            None => Via::Stdout,
        };
        let from = h.from.as_deref().or(cfg.from.as_deref());
        let text = request::carrier(to, from, armored);
        for i in 0..h.copies.max(1) {
            let where_ =
                handoff::deliver(&via, &handoff::Mail { from, to, text: &text }, h.ca_file.as_deref())?;
            if via != Via::Stdout {
                eprintln!("nym: request to {to} handed to {where_}{}", if i > 0 { " (copy)" } else { "" });
            }
        }
        Ok(())
    }

    fn server_and_check(&self, path: &Path, addr: &str) -> Result<(Cert, Vec<u8>)> {
        let bytes = fs::read(path).with_context(|| format!("reading the server key {}", path.display()))?;
        let cert = pgp::read_cert(&bytes)?;
        let domain = addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        pgp::check_server_key(&cert, domain)?;
        Ok((cert.clone(), pgp::armored_public(&cert)?.into_bytes()))
    }

    fn new_nym(&self, a: cli::NewArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        if a.resend {
            let rec = self.live_nym(&addr)?;
            let cert = pgp::read_cert(&self.store.key_bytes(&addr)?)?;
            let mut opts: Vec<(&str, String)> = Vec::new();
            for (name, v) in [("hsub", &rec.hsub), ("subject", &rec.subject), ("symmetric", &rec.symmetric)] {
                if let Some(v) = v {
                    opts.push((name, v.clone()));
                }
            }
            if let Some(b) = rec.acksend {
                opts.push(("acksend", if b { "yes" } else { "no" }.into()));
            }
            let plaintext = request::create_plaintext(&opts, &pgp::armored_public(&cert)?)?;
            let armored = pgp::encrypt(plaintext.as_bytes(), &[&self.server_key(&addr)?], None)?;
            return self.handoff(&a.handoff, &format!("config@{}", rec.domain()), &armored);
        }
        if self.store.has_nym(&addr) {
            bail!(
                "{addr} is already in {}; `nym new --resend` sends its create request again, \
                 `nym config` changes it",
                self.store.root.display()
            );
        }
        let server_key = a.server_key.as_deref().expect("clap requires it without --resend");
        let (server, server_armored) = self.server_and_check(server_key, &addr)?;
        let cert = if a.from_gpg {
            gpg_secret_key(&addr)?
        } else {
            let expire = pgp::parse_expiry(&a.expire)?;
            let pw = if a.protect { Some(self.password(&format!("the new key of {addr}"))?) } else { None };
            eprintln!("nym: generating the key for {addr}{}", if a.rsa4096 { " (RSA-4096)" } else { "" });
            pgp::generate(&addr, expire, a.rsa4096, pw)?
        };
        pgp::check_nym_key(&cert, &addr)?;
        let cert = if a.from_gpg && a.protect && !pgp::is_protected(&cert) {
            pgp::protect(cert, &self.password(&format!("the key of {addr}"))?)?
        } else {
            cert
        };
        let mut rec = NymRecord { address: addr.clone(), ..Default::default() };
        let opts = apply_options(&mut rec, &a.options, true)?;

        self.store.save_key(&addr, pgp::armored_secret(&cert)?.as_bytes())?;
        self.store.save_server_key(&addr, &server_armored)?;
        self.store.save_nym(&rec)?;
        eprintln!("nym: {addr}: key {} stored in {}", cert.fingerprint(), self.store.root.display());
        if a.export_to_gpg {
            gpg_import(pgp::armored_secret(&cert)?.as_bytes())?;
        }
        if a.no_request {
            return Ok(());
        }
        let plaintext = request::create_plaintext(&opts, &pgp::armored_public(&cert)?)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], None)?;
        self.handoff(&a.handoff, &format!("config@{}", rec.domain()), &armored)
            .context(format!("the nym is set up locally; retry with `nym new {addr} --resend`"))?;
        eprintln!(
            "nym: the server posts its confirmation to alt.anonymous.messages; get it with `nym fetch`"
        );
        Ok(())
    }

    fn import(&self, a: cli::ImportArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        if self.store.has_nym(&addr) {
            bail!("{addr} is already in {}", self.store.root.display());
        }
        let (_, server_armored) = self.server_and_check(&a.server_key, &addr)?;
        let cert = if a.from_gpg {
            gpg_secret_key(&addr)?
        } else {
            let p = a.secret_key.as_ref().expect("clap requires one");
            let bytes = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            pick_cert(pgp::read_certs(&bytes)?, &addr)?
        };
        if !cert.is_tsk() {
            bail!("the key for {addr} has no secret parts; export it with --export-secret-keys");
        }
        pgp::check_nym_key(&cert, &addr)?;
        let mut rec = NymRecord { address: addr.clone(), ..Default::default() };
        apply_options(&mut rec, &a.options, true)?;
        self.store.save_key(&addr, pgp::armored_secret(&cert)?.as_bytes())?;
        self.store.save_server_key(&addr, &server_armored)?;
        self.store.save_nym(&rec)?;
        eprintln!("nym: {addr}: imported key {}", cert.fingerprint());
        Ok(())
    }

    fn live_nym(&self, addr: &str) -> Result<NymRecord> {
        let rec = self.store.load_nym(addr)?;
        if rec.deleted {
            bail!("{} was deleted; `nym delete --forget` removes it from the store", rec.address);
        }
        Ok(rec)
    }

    fn send(&self, a: cli::SendArgs) -> Result<()> {
        let rec = self.live_nym(&a.address)?;
        let mut body = String::new();
        std::io::stdin().read_to_string(&mut body).context("reading the message from standard input")?;
        let message = if a.raw {
            if !a.encrypt_to_cert.is_empty() {
                bail!("--encrypt-to-cert cannot be combined with --raw; encrypt the body yourself");
            }
            if !body.contains("\n\n") && !body.contains("\r\n\r\n") {
                bail!("--raw needs a whole message: headers, a blank line, the body");
            }
            body
        } else {
            if !a.encrypt_to_cert.is_empty() {
                let mut certs = Vec::new();
                for p in &a.encrypt_to_cert {
                    let bytes = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    certs.extend(pgp::read_certs(&bytes)?);
                }
                let refs: Vec<&Cert> = certs.iter().collect();
                body = pgp::encrypt(body.as_bytes(), &refs, None).context("end-to-end encryption")?;
            }
            request::send_message(&request::Outgoing {
                nym: &rec.address,
                name: a.name.as_deref(),
                to: &a.to,
                cc: &a.cc,
                bcc: &a.bcc,
                newsgroups: a.newsgroups.as_deref(),
                subject: a.subject.as_deref(),
                extra_headers: &a.header,
                body: &body,
            })?
        };
        let key = self.secret_key(&rec.address)?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(message.as_bytes(), &[&server], Some(&key))?;
        self.handoff(&a.handoff, &format!("send@{}", rec.domain()), &armored)
    }

    fn config(&self, a: cli::ConfigArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let opts = apply_options(&mut rec, &a.options, false)?;
        let plaintext = request::option_lines(&opts)?;
        let key = self.secret_key(&rec.address)?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], Some(&key))?;
        self.handoff(&a.handoff, &format!("config@{}", rec.domain()), &armored)?;
        self.store.save_nym(&rec)?;
        if opts.is_empty() {
            eprintln!("nym: status request made; the server answers with the current options");
        }
        Ok(())
    }

    fn delete(&self, a: cli::DeleteArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        if a.forget {
            self.store.load_nym(&addr)?;
            self.store.forget_nym(&addr)?;
            eprintln!("nym: {addr} removed from {}", self.store.root.display());
            return Ok(());
        }
        if !a.yes {
            bail!("deleting {addr} cannot be undone; add --yes to do it");
        }
        let mut rec = self.live_nym(&addr)?;
        let key = self.secret_key(&addr)?;
        let server = self.server_key(&addr)?;
        let armored = pgp::encrypt(b"delete: yes\n", &[&server], Some(&key))?;
        self.handoff(&a.handoff, &format!("config@{}", rec.domain()), &armored)?;
        rec.deleted = true;
        self.store.save_nym(&rec)?;
        eprintln!(
            "nym: delete requested; fetch and read the last confirmation, then `nym delete {addr} --forget`"
        );
        Ok(())
    }

    fn url(&self, a: cli::UrlArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let plaintext = request::url_plaintext(&a.urls, &a.key, a.hsub.as_deref())?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], None)?;
        self.handoff(&a.handoff, &format!("url@{}", rec.domain()), &armored)?;
        let uk = UrlKey { key: a.key.clone(), hsub: a.hsub.unwrap_or(a.key) };
        if !rec.url_keys.contains(&uk) {
            rec.url_keys.push(uk);
        }
        self.store.save_nym(&rec)
    }

    fn fetch(&self, a: cli::FetchArgs) -> Result<()> {
        let nyms = match &a.address {
            Some(addr) => vec![self.store.load_nym(addr)?],
            None => self.store.list_nyms()?,
        };
        if nyms.is_empty() {
            bail!("no nyms in {}; create one with `nym new`", self.store.root.display());
        }
        let mut try_all = Vec::new();
        for n in &nyms {
            if a.try_all || n.needs_try_all() {
                let passwords = n.all_passwords().into_iter().map(str::to_string).collect();
                try_all.push((n.address.clone(), self.secret_key(&n.address)?, passwords));
            }
        }
        let cfg = self.store.config()?;
        let servers = if a.servers.is_empty() { cfg.servers } else { a.servers.clone() };
        if servers.is_empty() {
            bail!(
                "no news source; give --server nntp://HOST (or spool:DIR), or set `servers` in config.toml"
            );
        }
        let matcher = fetch::Matcher { nyms, try_all };
        let opts = fetch::FetchOpts {
            group: &a.group,
            max: a.max,
            retries: a.retries,
            ca_file: a.ca_file.as_deref(),
            user: a.user.as_deref(),
            quiet: a.quiet,
        };
        let mut failed = None;
        for s in &servers {
            let src = fetch::Source::parse(s)?;
            match fetch::fetch(&self.store, &src, &matcher, &opts) {
                Ok(st) => println!("{}: {} examined, {} kept", src.key(&a.group), st.examined, st.kept),
                Err(e) => {
                    eprintln!("nym: {}: {e:#}", src.key(&a.group));
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e.context("fetch incomplete; run it again to continue where it stopped")),
            None => Ok(()),
        }
    }

    fn read(&self, a: cli::ReadArgs) -> Result<i32> {
        let only = a.address.as_deref().map(normalize_address).transpose()?;
        let md = self.store.maildir();
        let mut files: Vec<(String, PathBuf, bool)> = Vec::new();
        for (sub, is_new) in [("new", true), ("cur", false)] {
            if !is_new && !a.all {
                continue;
            }
            for e in fs::read_dir(md.join(sub))? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    files.push((name, e.path(), is_new));
                }
            }
        }
        files.sort();
        let mut keys: HashMap<String, (Cert, Cert, Vec<String>)> = HashMap::new();
        let mut status = 0;
        let mut shown = 0;
        for (name, path, is_new) in files {
            let art = fs::read(&path)?;
            let Some(addr) = nntp::header(&art, "x-nym-for") else { continue };
            if only.as_ref().is_some_and(|o| *o != addr) {
                continue;
            }
            let id = name.split(':').next().unwrap_or(&name).to_string();
            if a.list {
                let date = nntp::header(&art, "date").unwrap_or_default();
                println!("{id}  {addr}  {}  {date}", if is_new { "new " } else { "read" });
                continue;
            }
            if !keys.contains_key(&addr) {
                if !self.store.has_nym(&addr) {
                    eprintln!("nym: {id}: {addr} is no longer in the store; skipped");
                    continue;
                }
                let rec = self.store.load_nym(&addr)?;
                let pw = rec.all_passwords().into_iter().map(str::to_string).collect();
                keys.insert(addr.clone(), (self.secret_key(&addr)?, self.server_key(&addr)?, pw));
            }
            let (key, server, passwords) = &keys[&addr];
            shown += 1;
            println!("==> {id} for {addr}");
            if let Some(d) = nntp::header(&art, "date") {
                println!("    posted: {d}");
            }
            let body = nntp::body(&art);
            match pgp::open_article(&body, std::slice::from_ref(key), passwords, std::slice::from_ref(server))
            {
                Ok(opened) => {
                    let mut trusted = true;
                    let signed_ok = opened.server_signed.is_some() && opened.bad_signatures == 0;
                    if opened.symmetric {
                        println!("    symmetric layer: removed");
                    }
                    match &opened.server_signed {
                        Some(fp) if signed_ok => println!("    server signature: good ({fp})"),
                        _ if opened.symmetric
                            && opened.bad_signatures == 0
                            && is_url_answer(&opened.plaintext) =>
                        {
                            println!(
                                "    server signature: none (url@ answers are only encrypted with your key)"
                            )
                        }
                        _ => {
                            println!("    WARNING: not signed by the server key; do not trust this message");
                            trusted = false;
                            status = 1;
                        }
                    }
                    println!();
                    std::io::stdout().write_all(&opened.plaintext)?;
                    if !opened.plaintext.ends_with(b"\n") {
                        println!();
                    }
                    println!();
                    if is_new && !a.keep && trusted {
                        mark_read(&md, &name)?;
                    }
                }
                Err(e) => {
                    println!("    cannot open this message: {e:#}");
                    println!();
                    status = 1;
                }
            }
        }
        if shown == 0 && !a.list {
            eprintln!("nym: no {}messages", if a.all { "" } else { "unread " });
        }
        Ok(status)
    }

    fn list(&self) -> Result<()> {
        let md = self.store.maildir();
        let mut unread: HashMap<String, usize> = HashMap::new();
        for e in fs::read_dir(md.join("new"))? {
            let art = fs::read(e?.path())?;
            if let Some(a) = nntp::header(&art, "x-nym-for") {
                *unread.entry(a).or_default() += 1;
            }
        }
        for n in self.store.list_nyms()? {
            let mut o = Vec::new();
            if n.hsub.is_some() {
                o.push("hsub".to_string());
            }
            if let Some(s) = &n.subject {
                o.push(format!("subject={s}"));
            }
            if n.symmetric.is_some() {
                o.push("symmetric".into());
            }
            if let Some(b) = n.acksend {
                o.push(format!("acksend={}", if b { "yes" } else { "no" }));
            }
            if n.deleted {
                o.push("DELETED".into());
            }
            println!("{}  unread={}  {}", n.address, unread.get(&n.address).unwrap_or(&0), o.join(" "));
        }
        Ok(())
    }

    fn export(&self, a: cli::ExportArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        self.store.load_nym(&addr)?;
        let cert = pgp::read_cert(&self.store.key_bytes(&addr)?)?;
        if a.to_gpg {
            gpg_import(pgp::armored_secret(&cert)?.as_bytes())?;
            gpg_import(&self.store.server_key_bytes(&addr)?)?;
            eprintln!("nym: {addr} and its server key imported into GnuPG");
            return Ok(());
        }
        let text = if a.secret { pgp::armored_secret(&cert)? } else { pgp::armored_public(&cert)? };
        std::io::stdout().write_all(text.as_bytes())?;
        Ok(())
    }
}

fn is_url_answer(plaintext: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&plaintext[..plaintext.len().min(4096)]).to_ascii_lowercase();
    head.contains("content-type: multipart/") || head.contains("mime-version")
}

/// Move a message from new/ to cur/ with the Seen flag.
fn mark_read(md: &Path, name: &str) -> Result<()> {
    fs::rename(md.join("new").join(name), md.join("cur").join(format!("{name}:2,S")))?;
    Ok(())
}

/// Turn the option flags into request lines and update the record. A value
/// of `none` (or 0, no, false) unsets. Old passphrases are kept so that
/// articles already on their way can still be recognised and opened.
fn apply_options(rec: &mut NymRecord, o: &NymOptions, create: bool) -> Result<Vec<(&'static str, String)>> {
    let is_off = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "0" | "no" | "none" | "false");
    let mut lines = Vec::new();
    let texts: [(&'static str, &Option<String>); 3] =
        [("hsub", &o.hsub), ("subject", &o.subject), ("symmetric", &o.symmetric)];
    for (name, val) in texts {
        let Some(v) = val else { continue };
        request::check_value(name, v)?;
        let (cur, old) = match name {
            "hsub" => (&mut rec.hsub, &mut rec.old_hsubs),
            "subject" => (&mut rec.subject, &mut rec.old_subjects),
            _ => (&mut rec.symmetric, &mut rec.old_symmetric),
        };
        if let Some(prev) = cur.take() {
            if !old.contains(&prev) {
                old.push(prev);
            }
        }
        if is_off(v) {
            if !create {
                lines.push((name, "none".to_string()));
            }
        } else {
            *cur = Some(v.clone());
            lines.push((name, v.clone()));
        }
    }
    if let Some(v) = &o.acksend {
        let on = match v.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => true,
            "0" | "no" | "false" | "off" | "none" => false,
            _ => bail!("--acksend takes yes or no"),
        };
        rec.acksend = Some(on);
        lines.push(("acksend", if on { "yes" } else { "no" }.to_string()));
    }
    Ok(lines)
}

/// The secret key for `addr` from the user's GnuPG keyring. gpg may ask for
/// the key's passphrase (pinentry) to export it.
fn gpg_secret_key(addr: &str) -> Result<Cert> {
    let out = Process::new("gpg")
        .args(["--armor", "--export-secret-keys", "--", &format!("<{addr}>")])
        .stderr(Stdio::inherit())
        .output()
        .context("running gpg")?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!("gpg has no secret key for {addr}");
    }
    pick_cert(pgp::read_certs(&out.stdout)?, addr)
}

fn pick_cert(certs: Vec<Cert>, addr: &str) -> Result<Cert> {
    let mut matching: Vec<Cert> =
        certs.into_iter().filter(|c| pgp::emails(c).iter().any(|e| e == addr)).collect();
    match matching.len() {
        0 => Err(anyhow!("no usable key with the address {addr}")),
        1 => Ok(matching.remove(0)),
        n => Err(anyhow!("{n} keys carry the address {addr}; keep only the nym's key")),
    }
}

fn gpg_import(data: &[u8]) -> Result<()> {
    let mut child = Process::new("gpg")
        .args(["--batch", "--import"])
        .stdin(Stdio::piped())
        .spawn()
        .context("running gpg --import")?;
    child.stdin.take().expect("piped").write_all(data)?;
    if !child.wait()?.success() {
        bail!("gpg --import failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_keep_earlier_passphrases() {
        let mut rec = NymRecord { address: "a@b.c".into(), hsub: Some("old".into()), ..Default::default() };
        let o = NymOptions { hsub: Some("new".into()), symmetric: Some("none".into()), ..Default::default() };
        let lines = apply_options(&mut rec, &o, false).unwrap();
        assert_eq!(lines, vec![("hsub", "new".to_string()), ("symmetric", "none".to_string())]);
        assert_eq!(rec.hsub.as_deref(), Some("new"));
        assert_eq!(rec.old_hsubs, ["old"]);
        assert!(rec.all_hsubs().contains(&"old"));
        // On create, `none` simply sends nothing.
        let mut fresh = NymRecord::default();
        assert!(apply_options(&mut fresh, &o, true).unwrap() == vec![("hsub", "new".to_string())]);
        let bad = NymOptions { acksend: Some("maybe".into()), ..Default::default() };
        assert!(apply_options(&mut fresh, &bad, false).is_err());
    }
}
