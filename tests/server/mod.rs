//! The server, `nymgate`, as its MTA and its operator drive it.

mod attacks;
mod autoresp;
mod backend;
mod bad_input;
mod faults;
mod hostile;
mod interop_gpg;
mod lifecycle;
mod nym_commands;
mod operator;
mod outbox;
mod rotation;
mod send;
mod url;
