//! What a nym.alias.net `Config:` request brings to its decision
//! ([`super::nym_commands`]): the error keys of REPLY-BLOCKS.md sections 5
//! and 9, the supplied key as the shell checked it, the Type I engine's
//! verdict on each supplied block, and the rest the shell read.

use super::Sig;
use crate::openpgp::PgpCert;
use crate::protocol::config_request::ConfigRequest;
use crate::protocol::nym_commands::Problem;
use crate::store::{Nym, StoredBlock};

/// The error keys of section 5 and 9.
pub mod keys {
    pub const NO_SUCH_NYM: &str = "no-such-nym";
    pub const PUBLIC_KEY_COUNT: &str = "public-key-count";
    pub const KEY_INVALID: &str = "key-invalid";
    pub const KEY_UID_MISMATCH: &str = "key-uid-mismatch";
    pub const KEY_IN_USE: &str = "key-in-use";
    pub const KEY_IS_SERVER_KEY: &str = "key-is-server-key";
    pub const REPLY_BLOCK_REQUIRED: &str = "reply-block-required";
    pub const NAME_TAKEN: &str = "name-taken";
    pub const NAME_RESERVED: &str = "name-reserved";
    pub const CREATE_WITH_DELETE: &str = "create-with-delete";
    pub const BAD_SIGNATURE: &str = "bad-signature";
    pub const SIGNATURE_DATE: &str = "signature-date";
    pub const REPLY_BLOCK_INVALID: &str = "reply-block-invalid";
    pub const REPLY_BLOCK_REFUSED: &str = "reply-block-refused";
    pub const REPLY_BLOCK_LOOP: &str = "reply-block-loop";
}

/// The 6.1 verdict of the Type I engine on a supplied block, as the
/// problem the reply lists (`None`: the block is good).
pub fn block_problem(c: super::remailer::BlockCheck) -> Option<Problem> {
    use super::remailer::BlockCheck as C;
    match c {
        C::Good => None,
        C::Invalid => Some(Problem::new(
            keys::REPLY_BLOCK_INVALID,
            "A reply block must name exactly one destination (Anon-To:, Anon-Post-To: or Null:) that this server can read",
        )),
        C::Refused => Some(Problem::new(keys::REPLY_BLOCK_REFUSED, "A reply block sends to an address this server refuses")),
        C::Loop => Some(Problem::new(keys::REPLY_BLOCK_LOOP, "A reply block sends straight back to the nym itself")),
    }
}

/// A key from `Public-Key:` as the shell checked it.
#[derive(Debug, Clone)]
pub enum SuppliedKey {
    /// Not usable: `public-key-count` or `key-invalid`.
    Refused(Problem),
    Usable(Box<Supplied>),
}

#[derive(Debug, Clone)]
pub struct Supplied {
    /// Stripped to the nym's own User ID and signatures.
    pub cert: PgpCert,
    pub fingerprint: String,
    /// The hosted User ID's address.
    pub local: String,
    pub domain: String,
    pub expires: Option<i64>,
    pub keyids: Vec<String>,
    /// The nym that holds this key already, if any.
    pub bound_to: Option<i64>,
    /// The key shares a (sub)key with the server key.
    pub is_server_key: bool,
}

/// What the shell prepared for a `Config:` request.
#[derive(Debug, Clone)]
pub struct ConfigInput {
    /// The request, read.
    pub request: ConfigRequest,
    /// The domain of the config@ address the request came to.
    pub domain: String,
    /// The nym `From:` names, if it exists.
    pub named: Option<Nym>,
    /// Its active blocks, in order.
    pub active: Vec<StoredBlock>,
    pub key: Option<SuppliedKey>,
    /// A good signature by the supplied key (a creation is signed by the
    /// key it brings).
    pub key_sig: Option<Sig>,
    /// The Type I engine's verdict on each supplied block (6.1:
    /// `reply-block-invalid`, `-refused`, `-loop`; see [`block_problem`]).
    pub block_checks: Vec<Option<Problem>>,
    /// A fresh cookie, should a pending set be made.
    pub cookie: String,
}
