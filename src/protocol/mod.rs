//! Wire formats, pure: no I/O, no crypto, no database. Each format keeps
//! the server's parser and the client's writer side by side, with a
//! round-trip test, so that the two sides cannot drift apart.
//!
//! - [`address`]: the services (the route table), reserved names, recipients
//! - [`options`]: the Zax `option: value` lines of config@
//! - [`send_request`]: the send@ message and the header policy
//! - [`url_request`]: the url@ request and its reply
//! - [`article`]: what we post (articles, notices, the Usenet copy)
//! - [`hsub`]: hashed subjects
//! - [`padding`]: the fixed sizes of articles and their Marker-packet padding
//! - [`type1`]: the Type I remailer message (REPLY-BLOCKS.md section 10)
//! - [`remailer_info`]: known remailers, request subjects, the capability line
//! - [`nym_commands`]: the nym.alias.net flag word and `Nym-Commands:`
//! - [`config_request`]: the nym.alias.net `Config:` request
//! - [`config_write`]: the client's writer of that request
//! - [`reply_block`]: probability sets and confirmation cookies
//! - [`partial`]: the uniform `message/partial` parts of `fixedsize`
//! - [`send_format`]: which of the two send@ formats a request is

pub mod address;
pub mod article;
pub mod config_request;
pub mod config_write;
pub mod hsub;
pub mod nym_commands;
pub mod options;
pub mod padding;
pub mod partial;
pub mod remailer_info;
pub mod reply_block;
pub mod send_format;
pub mod send_request;
pub mod trace;
pub mod type1;
pub mod url_request;
