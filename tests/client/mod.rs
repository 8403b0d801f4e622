//! The client, `nym`, against the real `nymgate`, plain gpg, sq, INN and
//! scripted SMTP and NNTP servers and a loopback SOCKS5 proxy.

mod daily;
mod gpg_interop;
mod hostile;
mod inn;
mod life;
mod nntp_faults;
mod proxy;
mod reply_block;
mod rotate;
mod server_rotation;
mod smtp;
mod tls_login;
