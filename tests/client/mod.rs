//! The client, `nym`, against the real `nymgate`, plain gpg, sq, INN and
//! scripted SMTP and NNTP servers.

mod daily;
mod gpg_interop;
mod hostile;
mod inn;
mod life;
mod nntp_faults;
mod smtp;
