//! Reaching a nym through reply blocks (REPLY-BLOCKS.md sections 7.1 and
//! 7.2): the payload of a [`Post::ViaBlocks`], the 6.2 selection of the
//! blocks it goes through, and the hand-over to the Type I engine.
//!
//! **The seam.** [`render`] turns the post into [`BlockMessage`]s: one per
//! selected block, each the input of one local run of the Type I engine
//! (an empty header and the body `<block text><payload>`). [`run_engine`]
//! is where those runs happen (through [`super::type1`]) and their output
//! (mail to the first remote hop, or a post) becomes outbox items, each
//! due after its Latent-Time, in the same transaction as the decision;
//! [`committed`], called once the decision committed, logs
//! `event=reply_block outcome=<outcome> count=N` per outcome and
//! `outcome=queued count=N` and, in debug builds with
//! `NYMGATE_BLOCK_SPOOL_FOR_TEST=DIR`, writes each engine input to
//! `DIR/*.block` so that the tests can read what went in.

use rand::Rng;

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::remailer::Entry;
use crate::handle::{Addressee, Blocks, Outcome, Post, Wrapping};
use crate::openpgp::{self as pgp, ServerKey};
use crate::protocol::article::notice;
use crate::protocol::reply_block::select;
use crate::store::Delayed;

use super::type1::{self, Lists};

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

/// What the local runs of the Type I engine came to.
#[derive(Debug, Default)]
pub struct Runs {
    /// The engine's inputs, one per selected block (and part).
    pub msgs: Vec<BlockMessage>,
    /// The outcome of each run (of the message itself, not of its cut
    /// segments), for the log line.
    pub outcomes: Vec<Outcome>,
    /// The outbox items made, each with its Latent-Time; taken by
    /// [`super::Rendered::into_items`].
    pub items: Vec<Delayed>,
    /// How many items the runs made in all.
    pub queued: usize,
}

/// Run the Type I engine on each message (REPLY-BLOCKS.md 7.2): an empty
/// header, the body `<block text><payload>`, `pgp_only` and `middleman`
/// skipped, every other limit and the block list applied. The outputs
/// (mail to the first remote hop, or a post) are queued by the caller in
/// the decision's transaction. The server key is read only if a block
/// has a layer encrypted to it; if it cannot be read, the delivery
/// defers (75) rather than lose the mail.
///
/// The outputs name the first hosted domain (`From: nobody@D`, the
/// Message-ID) for every nym: the first hop learns which server, not which
/// of its domains (and a [`BlockMessage`] does not say). The engine reads
/// text: bytes that are not UTF-8 (8-bit mail in another charset, without
/// `cryptrecv`) reach the first hop as U+FFFD.
pub fn run_engine(cfg: &Config, msgs: Vec<BlockMessage>) -> Result<Runs, Failure> {
    let mut runs = Runs { msgs, ..Runs::default() };
    if runs.msgs.is_empty() {
        return Ok(runs);
    }
    let domain = cfg.domains.first().cloned().unwrap_or_default();
    let lists = Lists { blocklist: type1::blocklist(cfg)?, known: Vec::new() };
    let mut crypto = type1::ServerCrypto::new(cfg, None);
    for m in &runs.msgs {
        let body = String::from_utf8_lossy(&m.body()).into_owned();
        let (items, run) = type1::run(cfg, Entry::ReplyBlock, &domain, &[], &body, &lists, &mut crypto);
        if crypto.failed() {
            return Err(Failure::Temp(anyhow::anyhow!("server key unreadable for a reply-block layer")));
        }
        runs.outcomes.push(run.outcome());
        runs.queued += items.len();
        runs.items.extend(items);
    }
    Ok(runs)
}

/// After the decision committed: log what the runs came to (one line per
/// outcome, counts only) and, in debug builds, write each engine input
/// into `NYMGATE_BLOCK_SPOOL_FOR_TEST` for the tests.
pub fn committed(runs: &Runs) {
    let msgs = &runs.msgs;
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
    let mut seen: Vec<(Outcome, usize)> = Vec::new();
    for o in &runs.outcomes {
        match seen.iter_mut().find(|(s, _)| s == o) {
            Some((_, n)) => *n += 1,
            None => seen.push((*o, 1)),
        }
    }
    for (o, n) in seen {
        log::info!("event=reply_block outcome={o} count={n}");
    }
    log::info!("event=reply_block outcome=queued count={}", runs.queued);
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
