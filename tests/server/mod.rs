//! The server, `nymgate`, as its MTA and its operator drive it.

mod attacks;
mod autoresp;
mod backend;
mod bad_input;
mod chain;
mod faults;
mod hostile;
mod inblocks;
mod interop_gpg;
mod interop_nymalias;
mod lifecycle;
mod notices_channel;
mod nym_commands;
mod operator;
mod outbox;
mod remailer;
mod remailer_blocks;
mod rotation;
mod send;
mod url;
