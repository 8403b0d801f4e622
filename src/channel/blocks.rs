//! Reaching a nym through reply blocks (REPLY-BLOCKS.md sections 7.1 and
//! 7.2): the payload of a [`Post::ViaBlocks`], the 6.2 selection of the
//! blocks it goes through, and the hand-over to the Type I engine.
//!
//! **The seam.** [`render`] turns the post into [`BlockMessage`]s: one per
//! selected block, each the input of one local run of the Type I engine
//! (an empty header and the body `<block text><payload>`). [`run_engine`]
//! is where those runs happen and their output (mail to the first remote
//! hop, or a post) becomes outbox items in the same transaction as the
//! decision. Until the engine (src/protocol/type1.rs) is connected it
//! returns no items, so a reply through a block is decided and recorded
//! but not sent; [`committed`], called once the decision committed, logs
//! `event=reply_block outcome=no_engine count=N` and, in debug builds
//! with `NYMGATE_BLOCK_SPOOL_FOR_TEST=DIR`, writes each engine input to
//! `DIR/*.block` so that the tests can read what would leave.

use rand::Rng;

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::{Addressee, Blocks, Post, Wrapping};
use crate::openpgp::{self as pgp, ServerKey};
use crate::protocol::article::notice;
use crate::protocol::reply_block::select;
use crate::store::OutItem;

/// One run of the Type I engine: a block and the payload appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMessage {
    pub block: String,
    pub payload: Vec<u8>,
}

impl BlockMessage {
    /// The engine's input body: `<block text><payload>`.
    pub fn body(&self) -> Vec<u8> {
        let mut b = self.block.as_bytes().to_vec();
        b.extend_from_slice(&self.payload);
        b
    }
}

/// Render a [`Post::ViaBlocks`] (other posts: nothing).
pub fn render(server: &mut ServerKey, post: Post) -> Result<Vec<BlockMessage>, Failure> {
    let Post::ViaBlocks { to, blocks, encrypt, from, address, subject, text, reply_to } = post else {
        return Ok(Vec::new());
    };
    let mut payload = Vec::new();
    if let Some(r) = &reply_to {
        payload.extend_from_slice(format!("Reply-To: {r}\n").as_bytes());
    }
    payload.extend_from_slice(&notice(&from, &address, &subject, &text));
    let (cert, wrap) = match &to {
        Addressee::Nym(n) => (&n.cert, Wrapping::of(n)),
        Addressee::Key { cert, wrap } => (&**cert, wrap.clone()),
    };
    let service = from.split('@').next().unwrap_or("config").to_string();
    let payload = if encrypt {
        // Signed by the server, encrypted to the nym with a hidden key ID
        // (the first remote hop sees this ciphertext), armored; then the
        // symmetric layer if the nym set one.
        let mut inner = Vec::with_capacity(pgp::armored_size(payload.len()));
        pgp::sign_encrypt_into(&mut inner, server, cert, &mut &payload[..], true, Some(&service))?;
        match wrap.symmetric.as_deref() {
            None => inner,
            Some(pass) => {
                let mut out = Vec::with_capacity(pgp::armored_size(inner.len()));
                pgp::encrypt_symmetric_into(&mut out, &inner, pass)?;
                out
            }
        }
    } else {
        payload
    };
    let chosen = match blocks {
        Blocks::One(b) => vec![b],
        Blocks::Set(set) => {
            let sets: Vec<_> = set.iter().map(|b| b.set).collect();
            let mut rng = rand::thread_rng();
            let idx = select(&sets, &mut || rng.gen::<u16>());
            idx.into_iter().filter_map(|i| set.get(i).cloned()).collect()
        }
    };
    Ok(chosen.into_iter().map(|b| BlockMessage { block: b.text, payload: payload.clone() }).collect())
}

/// Run the Type I engine on each message; its outputs are outbox items,
/// queued in the decision's transaction. Not connected yet: see the
/// module documentation.
pub fn run_engine(_cfg: &Config, _msgs: &[BlockMessage]) -> Result<Vec<OutItem>, Failure> {
    Ok(Vec::new())
}

/// After the decision committed: note what went to the engine (the log
/// line carries only a count) and, in debug builds, write each engine
/// input into `NYMGATE_BLOCK_SPOOL_FOR_TEST` for the tests.
pub fn committed(msgs: &[BlockMessage]) {
    if msgs.is_empty() {
        return;
    }
    #[cfg(debug_assertions)]
    if let Some(dir) = std::env::var_os("NYMGATE_BLOCK_SPOOL_FOR_TEST") {
        let dir = std::path::PathBuf::from(dir);
        for m in msgs {
            let mut id = [0u8; 16];
            rand::thread_rng().fill(&mut id);
            if std::fs::write(dir.join(format!("{}.block", hex::encode(id))), m.body()).is_err() {
                log::warn!("event=reply_block outcome=test_spool_failed");
            }
        }
    }
    log::info!("event=reply_block outcome=no_engine count={}", msgs.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_input_is_the_block_then_the_payload() {
        let m = BlockMessage { block: "::\nAnon-To: a@b.example\n\n".into(), payload: b"hello\n".to_vec() };
        assert_eq!(m.body(), b"::\nAnon-To: a@b.example\n\nhello\n");
    }
}
