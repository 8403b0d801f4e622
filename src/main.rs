//! Thin shell: parse arguments, run, turn the result into an exit code.

use clap::{CommandFactory, Parser};
use nymgate::cli::{Cli, Command, KeyCmd, NymCmd, QueueCmd};
use nymgate::config::Config;
use nymgate::exit::{Kind, EX_CONFIG, EX_OK, EX_TEMPFAIL, EX_USAGE};
use nymgate::{admin, deliver, logging, ops, outbox, store};
use std::io::Write;

fn main() {
    // Keep every file we create private, whatever umask the MTA gives us.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // A panic in `deliver` must not lose the message: report it without
    // its payload (which could hold content) and exit 75 so the MTA retries.
    std::panic::set_hook(Box::new(|info| {
        let loc = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        log::error!("event=panic at={loc}");
        let _ = writeln!(std::io::stderr(), "nymgate: internal error at {loc}");
    }));
    let code = match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => {
            log::error!("event=deliver outcome=deferred reason=panic");
            EX_TEMPFAIL
        }
    };
    std::process::exit(code);
}

fn load(cli: &Cli) -> Result<Config, i32> {
    Config::load(&cli.config).map_err(|e| {
        eprintln!("nymgate: {e:#}");
        EX_CONFIG
    })
}

fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EX_USAGE } else { EX_OK };
        }
    };
    match &cli.command {
        Command::Manpage { out } => {
            return match manpages(out) {
                Ok(()) => EX_OK,
                Err(e) => {
                    eprintln!("nymgate: {e:#}");
                    Kind::Software.code()
                }
            }
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "nymgate", &mut std::io::stdout());
            return EX_OK;
        }
        _ => {}
    }
    match &cli.command {
        Command::Init(a) => {
            logging::init("info", true);
            match admin::init(&a.home, &a.domains, a.rsa) {
                Ok(r) => {
                    println!("config: {}", r.config_path.display());
                    println!("server key: {}", r.fingerprint);
                    EX_OK
                }
                Err(e) => {
                    eprintln!("nymgate: {e:#}");
                    EX_CONFIG
                }
            }
        }
        Command::Deliver(a) => {
            let cfg = match load(&cli) {
                Ok(c) => c,
                // Without a configuration we cannot judge the message: keep it.
                Err(_) => return EX_TEMPFAIL,
            };
            logging::init_with(&cfg.log.level, cfg.log.stderr, &cfg.log.facility);
            let stdin = std::io::stdin().lock();
            // A recipient that is not UTF-8 cannot be one of our addresses;
            // the sender is read by the autoresponders only, and a
            // non-UTF-8 one is no address they would answer.
            let recipient = a.recipient.to_str().unwrap_or("");
            let sender = a.sender.as_ref().map(|s| s.to_str().unwrap_or("?"));
            match deliver::deliver_from(&cfg, recipient, sender, stdin) {
                Ok(done) => {
                    logging::event(done.event, done.outcome.as_str());
                    EX_OK
                }
                Err(f) => {
                    // Failure's Display carries no names or content.
                    log::warn!("event=deliver outcome=failed exit={} reason={}", f.exit_code(), f);
                    // The MTA puts this line into the bounce or deferral
                    // reason; pipe(8) reads the enhanced status code that
                    // starts it. It says what happened, never why in detail.
                    eprintln!("{}", f.mta_line());
                    f.exit_code()
                }
            }
        }
        other => {
            let cfg = match load(&cli) {
                Ok(c) => c,
                Err(code) => return code,
            };
            logging::init_with(&cfg.log.level, cfg.log.stderr, &cfg.log.facility);
            let res = admin(&cfg, other);
            match res {
                Ok(()) => EX_OK,
                Err(e) => {
                    eprintln!("nymgate: {e:#}");
                    if store::is_transient(&e) {
                        Kind::Temp.code()
                    } else {
                        Kind::Software.code()
                    }
                }
            }
        }
    }
}

fn admin(cfg: &Config, cmd: &Command) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Key(KeyCmd::Export) => out.write_all(&admin::export_key(cfg)?)?,
        Command::Key(KeyCmd::AddDomain { domain }) => {
            let configured = admin::key_add_domain(cfg, domain)?;
            writeln!(
                out,
                "the server key now has User IDs for {domain}; publish it again (nymgate key export)"
            )?;
            if !configured {
                writeln!(out, "add {domain:?} to domains in the configuration to host it")?;
            }
        }
        Command::Flush => {
            let r = outbox::flush(cfg)?;
            log::info!("event=flush outcome=done sent={} failed={} queued={}", r.sent, r.failed, r.left);
            writeln!(out, "sent {}, failed {}, still queued {}", r.sent, r.failed, r.left)?;
        }
        Command::Nym(NymCmd::List) => admin::nym_list(cfg, &mut out)?,
        Command::Nym(NymCmd::Show { address }) => admin::nym_show(cfg, address, &mut out)?,
        Command::Nym(NymCmd::Disable { address }) => admin::nym_set_disabled(cfg, address, true)?,
        Command::Nym(NymCmd::Enable { address }) => admin::nym_set_disabled(cfg, address, false)?,
        Command::Nym(NymCmd::Delete { address }) => admin::nym_delete(cfg, address)?,
        Command::Nym(NymCmd::Expire) => {
            let n = admin::nym_expire(cfg)?;
            writeln!(out, "removed {n} expired nym(s)")?;
        }
        Command::Status { json } => ops::status(cfg, *json, &mut out)?,
        Command::Queue(QueueCmd::List) => ops::queue_list(cfg, &mut out)?,
        Command::Queue(QueueCmd::Retry { id }) => {
            if !ops::queue_retry(cfg, *id)? {
                anyhow::bail!("no queued item {id}");
            }
        }
        Command::Queue(QueueCmd::Drop { id }) => {
            if !ops::queue_drop(cfg, *id)? {
                anyhow::bail!("no queued item {id}");
            }
        }
        Command::Check => {
            let findings = ops::check(cfg)?;
            for f in &findings {
                writeln!(out, "{} {}", if f.ok { "ok  " } else { "FAIL" }, f.what)?;
            }
            if findings.iter().any(|f| !f.ok) {
                out.flush()?;
                std::process::exit(EX_CONFIG);
            }
        }
        // Handled in run before a configuration is read.
        Command::Init(_) | Command::Deliver(_) | Command::Manpage { .. } | Command::Completions { .. } => {}
    }
    Ok(())
}

/// nymgate.8 and one page per command, from the clap definitions.
fn manpages(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).section("8").render(&mut buf)?;
    std::fs::write(dir.join("nymgate.8"), &buf)?;
    for sub in cmd.get_subcommands() {
        // clap keeps command names as static strings; a few bytes per page
        // for a process that exits right after.
        let name: &'static str = Box::leak(format!("nymgate-{}", sub.get_name()).into_boxed_str());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name)).section("8").render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.8")), &buf)?;
    }
    Ok(())
}
