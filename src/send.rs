//! send@: mail and news from a nym (PROTOCOL.md section 6).
use crate::error::Failure;
use crate::handler::{done, Ctx, Done};
pub fn send(_ctx: &mut Ctx, _recipient: &str, _raw: &[u8], _digest: Option<&[u8]>) -> Result<Done, Failure> {
    done("send", "not_implemented")
}
