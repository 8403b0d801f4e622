//! nymgate: a pseudonymous remailer (Zax-type nym server) run by the MTA
//! once per message, and `nym`, its holder's client.
//!
//! The server's data flows one way, and the modules follow it:
//!
//! ```text
//! stdin -> ingest -> route -> handle (decide) -> channel (render) -> record -> outbox -> transport
//! ```
//!
//! - [`ingest`]: reading the message from the MTA
//! - [`route`]: which service or nym a recipient is
//! - [`deliver`]: the shell of `nymgate deliver` that runs the steps
//! - [`deliver_autoresp`]: its part for the autoresponders
//! - [`deliver_nymcmd`]: its part for `confirm+COOKIE@D` and `Config:` requests
//! - [`deliver_blocks`]: its part for mail to a nym with reply blocks
//! - [`deliver_remailer`]: its part for `remailer@D`, the Type I remailer
//! - [`handle`]: the decisions, pure (no SQL, no OpenPGP, no I/O)
//! - [`channel`]: how a payload reaches a nym (articles, encryption)
//! - [`record`]: applies a decision in one transaction
//! - [`outbox`]: hand-off after commit, back-off, `flush`
//! - [`pool`]: which waiting items a pool round sends
//! - [`cover`]: when the flush adds dummy articles, and their sizes
//! - [`lifecycle`]: expiry warnings, expiry and inactivity, run by `flush`
//! - [`transport`]: spool, inews, sendmail (the only process spawning)
//! - [`protocol`]: the wire formats, parser and writer together
//! - [`openpgp`]: the OpenPGP layer for server and client (the only sequoia user)
//! - [`store`]: the SQLite state (the only rusqlite user)
//! - [`web`]: the SSRF-safe web fetcher for url@
//! - [`admin`]: the operator's commands
//! - [`rotation`]: server key rotation (`key rotate`, its grace period, retiring the old key)
//! - [`exit`]: the one table from failure kinds to exit codes
//! - [`client`]: the holder's client `nym`

pub mod admin;
pub mod channel;
pub mod cli;
pub mod client;
pub mod config;
pub mod cover;
pub mod deliver;
pub mod deliver_autoresp;
pub mod deliver_blocks;
pub mod deliver_nymcmd;
pub mod deliver_remailer;
pub mod exit;
pub mod handle;
pub mod ingest;
pub mod lifecycle;
pub mod logging;
pub mod notices;
pub mod openpgp;
pub mod ops;
pub mod outbox;
pub mod pool;
pub mod protocol;
pub mod recipients;
pub mod record;
pub mod rotation;
pub mod route;
pub mod store;
pub mod transport;
pub mod web;
