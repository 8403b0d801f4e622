//! url@: web pages for a nym (PROTOCOL.md section 8).
use crate::error::Failure;
use crate::handler::{done, Ctx, Done};
pub fn url(_ctx: &mut Ctx, _raw: &[u8], _digest: Option<&[u8]>) -> Result<Done, Failure> {
    done("url", "not_implemented")
}
