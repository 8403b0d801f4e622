//! The 6.1 check of a supplied reply block (REPLY-BLOCKS.md): the Type I
//! engine ([`super::remailer`]) run on the block alone, as a local run
//! would, and what it would send judged; nothing is sent. Its rule test is
//! with the engine's (`block_check_6_1_...` in handle/remailer.rs).

use rand::RngCore;

use super::remailer::{run, Crypto, Entry, Env};
use super::Outcome;

/// What a supplied reply block comes to on its own (REPLY-BLOCKS.md 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCheck {
    Good,
    /// No single mail, post or `Null:` destination (`reply-block-invalid`).
    Invalid,
    /// Every recipient is on the block list (`reply-block-refused`).
    Refused,
    /// Its first hop is the nym itself (`reply-block-loop`).
    Loop,
}

/// Run the engine on a reply block with an empty payload, as a local run
/// would (7.2), and judge what it would send; nothing is sent. `nym` is
/// the nym's address: a block whose first hop is that address (or a
/// `+ext` of it) would feed each delivery back to the nym. A hidden loop
/// (behind a layer for another remailer) cannot be seen here: the daily
/// unit quota stops it (7.3).
pub fn check_block(
    env: &Env,
    block: &str,
    nym: &str,
    crypto: &mut dyn Crypto,
    rng: &mut dyn RngCore,
) -> BlockCheck {
    let r = run(env, Entry::ReplyBlock, &[], block, crypto, rng);
    match r.outcome() {
        Outcome::Remailed => {
            let is_nym = |a: &String| {
                let (nl, nd) = nym.rsplit_once('@').unwrap_or((nym, ""));
                a.rsplit_once('@').is_some_and(|(l, d)| {
                    crate::protocol::address::base_local(l).eq_ignore_ascii_case(nl)
                        && d.eq_ignore_ascii_case(nd)
                })
            };
            if r.outputs.first().is_some_and(|o| o.item.env_to.iter().any(is_nym)) {
                BlockCheck::Loop
            } else {
                BlockCheck::Good
            }
        }
        Outcome::RemailerPosted | Outcome::NullDiscarded => BlockCheck::Good,
        Outcome::DestinationBlocked => BlockCheck::Refused,
        _ => BlockCheck::Invalid,
    }
}
