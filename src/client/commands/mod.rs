//! One file per `nym` command; each adds its method to [`Ctx`].

pub(crate) mod prelude;

mod chain;
mod config;
mod delete;
mod export;
mod fetch;
mod follow;
mod import;
mod list;
mod new;
mod read;
mod read_mail;
mod renew;
mod rotate;
mod send;
mod server;
mod url;

#[allow(unused_imports)]
use super::ctx::Ctx;
