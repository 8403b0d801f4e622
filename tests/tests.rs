//! The integration tests, all in one binary.
//!
//! Every test binary links the whole crate, so one binary instead of one
//! per file saves most of `target/` and most of the link time. Each area is
//! a module: `server` drives the real `nymgate` as its MTA and its operator
//! would, `client` the real `nym` against `nymgate`, gpg, sq and INN.
//! `util` is the shared harness.
//!
//! Run one area or one file with a filter, e.g. `cargo test --test tests
//! server::faults` or `cargo test --test tests client::`.

mod client;
mod server;
mod util;
