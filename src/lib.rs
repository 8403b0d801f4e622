//! nymgate: a pseudonymous remailer (Zax-type nym server) run by the MTA
//! once per message.

pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod fetch;
pub mod handler;
pub mod hsub;
pub mod logging;
pub mod message;
pub mod openpgp;
pub mod options;
pub mod send;
pub mod store;
pub mod transport;
pub mod url;
