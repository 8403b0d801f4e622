//! nymgate: a pseudonymous remailer (Zax-type nym server) run by the MTA
//! once per message.

pub mod client;
pub mod config;
pub mod hsub;
pub mod options;
