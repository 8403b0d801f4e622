//! The nym holder's client (`nym`): the user's side of the protocol.
//!
//! `cli` defines the commands and `commands/` runs them, one file each;
//! the other submodules own one concern each: the store on disk, request
//! text, hand-off of mails, SMTP, NNTP, fetching, TLS, and opening
//! connections (straight or through the SOCKS5 proxy, `net`). The OpenPGP work is
//! `crate::openpgp::holder`, shared with the server's hostile-input guard.

pub mod cli;
mod cli_chain;
mod cli_read;
mod commands;
mod ctx;
pub mod esub;
pub mod fetch;
pub mod handoff;
mod manual;
pub mod mime;
pub mod net;
pub mod nntp;
pub mod reply_block;
pub mod request;
pub mod smtp;
pub mod store;
pub mod tls;

use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::exit::Kind;
use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use ctx::Ctx;
use store::Store;

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
            let kind = error_kind(&e);
            eprintln!("nym: error: {e:#}");
            // The second half: what to do now.
            if let Some(n) = e.chain().find_map(|c| c.downcast_ref::<net::NetError>()) {
                eprintln!("nym: {}", n.todo());
            } else if kind == Kind::Temp {
                eprintln!("nym: this looks temporary (network, disk); try again later");
            }
            kind.code()
        }
    }
}

/// The exit code of a failed command, from the one exit table: trouble
/// with the network or the disk, or a proxy that is down, is temporary
/// (75); a missing or wrong connection setting (a .onion server without a
/// proxy, a bad proxy, a password without TLS) is configuration (78);
/// anything else means the request cannot be made as given (65).
fn error_kind(e: &anyhow::Error) -> Kind {
    if let Some(n) = e.chain().find_map(|c| c.downcast_ref::<net::NetError>()) {
        n.kind()
    } else if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some()) {
        Kind::Temp
    } else {
        Kind::Data
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
    let ctx = Ctx {
        store: Store::open(cli.home.as_deref())?,
        passphrase_file: cli.passphrase_file.clone(),
        proxy: cli.proxy.clone(),
    };
    match cli.command {
        Command::New(a) => ctx.new_nym(a).map(|_| 0),
        Command::Import(a) => ctx.import(a).map(|_| 0),
        Command::Send(a) => ctx.send(a).map(|_| 0),
        Command::Config(a) => ctx.config(a).map(|_| 0),
        Command::Confirm(a) => ctx.confirm(a).map(|_| 0),
        Command::Delete(a) => ctx.delete(a).map(|_| 0),
        Command::Renew(a) => ctx.renew(a).map(|_| 0),
        Command::Rotate(a) => ctx.rotate(a).map(|_| 0),
        Command::Url(a) => ctx.url(a).map(|_| 0),
        Command::Fetch(a) => ctx.fetch(a).map(|_| 0),
        Command::Read(a) => ctx.read(a),
        Command::List => ctx.list().map(|_| 0),
        Command::Export(a) => ctx.export(a).map(|_| 0),
        Command::Server(a) => ctx.server(a).map(|_| 0),
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
            // Built, so that every page lists the global options too
            // (--home, --passphrase-file, --proxy).
            let mut cmd = cmd;
            cmd.build();
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
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
