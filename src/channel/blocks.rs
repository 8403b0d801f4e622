//! Reaching a nym through reply blocks (REPLY-BLOCKS.md sections 7.1,
//! 7.2 and 7.4): the payload of a [`Post::ViaBlocks`] or of mail to the
//! nym, in the form the nym asked for, the 6.2 selection of the blocks it
//! goes through, and the hand-over to the Type I engine.
//!
//! **The seam.** [`render`] (notices) and [`through`] (mail, and the
//! notices too) turn a payload into [`BlockMessage`]s: one per selected
//! block (and per part with fixedsize), each the input of one local run of
//! the Type I engine (an empty header and the body `<block
//! text><payload>`). [`through`] also says what each copy costs, for the
//! quota that `handle::inblocks` checks before anything is queued.
//! [`run_engine`] is where those runs happen (through [`super::type1`])
//! and their output (mail to the first remote hop, or a post) becomes
//! outbox items, each due after its Latent-Time, in the same transaction
//! as the decision; [`committed`], called once the decision committed,
//! logs `event=reply_block outcome=<outcome> count=N` per outcome and
//! `outcome=queued count=N` and, in debug builds with
//! `NYMGATE_BLOCK_SPOOL_FOR_TEST=DIR`, writes each engine input to
//! `DIR/*.block` so that the tests can read what went in.
//!
//! **Forms** ([`Form`]): in clear without `cryptrecv`; signed by the
//! server and encrypted to the nym with a hidden key ID, armored, then the
//! `symmetric` layer (`cryptrecv`); or, with `fixedsize` too, `S` (the
//! payload signed, armored) cut into 10240-byte `message/partial` parts
//! ([`crate::protocol::partial`]), each encrypted to the nym alone (no
//! signature, no compression, hidden key ID), `symmetric` if set, each
//! with its own selection.

use rand::RngCore;

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::inblocks::{self, Form};
use crate::handle::quota::Copy;
use crate::handle::remailer::Entry;
use crate::handle::{Addressee, Blocks, Outcome, Post, Wrapping};
use crate::openpgp::{self as pgp, PgpCert, ServerKey};
use crate::protocol::article::notice;
use crate::protocol::partial;
use crate::protocol::reply_block::select;
use crate::store::{Delayed, StoredBlock};

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

/// Render a [`Post::ViaBlocks`] (other posts: nothing): a notice, in the
/// form the nym asked for (fixedsize parts too), through the 6.2
/// selection of its set or through exactly its one block.
pub fn render(server: &mut ServerKey, post: Post) -> Result<Vec<BlockMessage>, Failure> {
    let Post::ViaBlocks { to, blocks, encrypt, from, address, subject, text, reply_to } = post else {
        return Ok(Vec::new());
    };
    let mut payload = Vec::new();
    if let Some(r) = &reply_to {
        payload.extend_from_slice(format!("Reply-To: {r}\n").as_bytes());
    }
    payload.extend_from_slice(&notice(&from, &address, &subject, &text));
    let (cert, wrap, form) = match &to {
        Addressee::Nym(n) => (&n.cert, Wrapping::of(n), inblocks::form(n)),
        Addressee::Key { cert, wrap } => (&**cert, wrap.clone(), Form::Plain),
    };
    // Replies to requests that are not authorized are always encrypted.
    let form = match (encrypt, form) {
        (false, _) => Form::Plain,
        (true, Form::Fixed) => Form::Fixed,
        (true, _) => Form::Sealed,
    };
    let (service, domain) = from.split_once('@').unwrap_or(("config", ""));
    let (list, always) = match &blocks {
        Blocks::One(b) => (std::slice::from_ref(b), true),
        Blocks::Set(set) => (&set[..], false),
    };
    let target = Target { server, cert, wrap: &wrap, domain, notice: Some(service) };
    Ok(through(target, form, payload, b"", list, always, &mut rand::thread_rng())?.msgs)
}

/// Who a delivery through blocks is for, and who speaks.
pub struct Target<'a> {
    pub server: &'a mut ServerKey,
    pub cert: &'a PgpCert,
    pub wrap: &'a Wrapping,
    /// The nym's domain (the parts' ids).
    pub domain: &'a str,
    /// The speaking service of a notice (its signature's mark); `None`
    /// for relayed mail.
    pub notice: Option<&'a str>,
}

/// The engine inputs of one delivery and, for the quota (7.3), what each
/// copy is.
pub struct Copies {
    pub msgs: Vec<BlockMessage>,
    pub costs: Vec<Copy>,
}

/// The payload `head` then `tail` (the message as received and the
/// trailer) in `form` (7.1, 7.4), through the blocks the 6.2 selection
/// picks with `rng` (a CSPRNG; every one of `blocks` when `always`):
/// once per message, or once per part with fixedsize. The payload and
/// its encryption are held in memory, bounded by the message size limit;
/// `head` is freed as soon as it is encrypted.
pub fn through(
    t: Target,
    form: Form,
    head: Vec<u8>,
    tail: &[u8],
    blocks: &[StoredBlock],
    always: bool,
    rng: &mut dyn RngCore,
) -> Result<Copies, Failure> {
    use std::io::Read;
    let size = head.len() + tail.len();
    let mut out = Copies { msgs: Vec::new(), costs: Vec::new() };
    match form {
        Form::Plain => {
            let mut payload = head;
            payload.extend_from_slice(tail);
            add(&mut out, blocks, always, payload, false, rng);
        }
        Form::Sealed => {
            let mut inner = Vec::with_capacity(pgp::armored_size(size));
            pgp::sign_encrypt_into(
                &mut inner,
                t.server,
                t.cert,
                &mut (&head[..]).chain(tail),
                true,
                t.notice,
            )?;
            // The message is not needed any more: freed before the copies.
            drop(head);
            add(&mut out, blocks, always, symmetric(inner, t.wrap)?, false, rng);
        }
        Form::Fixed => {
            // E is written in one buffer: its header, then S.
            let mut e = Vec::with_capacity(partial::ENTITY_HEAD.len() + pgp::armored_size(size));
            e.extend_from_slice(partial::ENTITY_HEAD);
            pgp::sign_armored_into(&mut e, t.server, t.cert, &mut (&head[..]).chain(tail), t.notice)?;
            drop(head);
            let chunks = partial::chunks(&e);
            let id = partial::new_id(t.domain, rng);
            for (i, c) in chunks.iter().enumerate() {
                let part = partial::part(&id, i + 1, chunks.len(), c, rng);
                let mut sealed = pgp::encrypt_only(t.cert, &part, true)?;
                // Thousands of parts: keep none of the spare room.
                sealed.shrink_to_fit();
                add(&mut out, blocks, always, symmetric(sealed, t.wrap)?, true, rng);
            }
        }
    }
    Ok(out)
}

/// One message (or `part`) through its own selection: a copy per chosen
/// block, each costing its bytes or one part.
fn add(
    out: &mut Copies,
    blocks: &[StoredBlock],
    always: bool,
    payload: Vec<u8>,
    part: bool,
    rng: &mut dyn RngCore,
) {
    let chosen = choose(blocks, always, rng);
    let cost = if part { Copy::Part } else { Copy::Bytes(payload.len()) };
    let n = chosen.len();
    let mut payload = Some(payload);
    for (k, b) in chosen.into_iter().enumerate() {
        // The last copy takes the buffer itself.
        let p = if k + 1 == n { payload.take() } else { payload.clone() };
        out.msgs.push(BlockMessage { block: b.text.clone(), payload: p.unwrap_or_default() });
        out.costs.push(cost);
    }
}

/// The nym's `symmetric` layer over `inner`, if it set one.
fn symmetric(inner: Vec<u8>, wrap: &Wrapping) -> Result<Vec<u8>, Failure> {
    match wrap.symmetric.as_deref() {
        None => Ok(inner),
        Some(pass) => {
            let mut out = Vec::with_capacity(pgp::armored_size(inner.len()));
            pgp::encrypt_symmetric_into(&mut out, &inner, pass)?;
            Ok(out)
        }
    }
}

/// The blocks one message (or part) goes through: the 6.2 selection, one
/// CSPRNG draw per set.
fn choose<'b>(blocks: &'b [StoredBlock], always: bool, rng: &mut dyn RngCore) -> Vec<&'b StoredBlock> {
    if always {
        return blocks.iter().collect();
    }
    let sets: Vec<_> = blocks.iter().map(|b| b.set).collect();
    select(&sets, &mut || (rng.next_u32() & 0xffff) as u16)
        .into_iter()
        .filter_map(|i| blocks.get(i))
        .collect()
}

/// The `cryptrecv` trailer of relayed mail (7.1), appended to the message
/// as received before it is signed: the signature then certifies when the
/// server received it and for which address, nothing more.
pub fn trailer(ends_with_newline: bool, received: std::time::SystemTime, to: &str) -> Vec<u8> {
    let date = crate::transport::rfc5322_date(received);
    format!(
        "{}~~~\n\
         The signature above certifies only the time this message was received\n\
         and the address it was received for; it is no endorsement of its content.\n\
         Date: {date}\n\
         To: {to}\n",
        if ends_with_newline { "" } else { "\n" }
    )
    .into_bytes()
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
            rand::thread_rng().fill_bytes(&mut id);
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
    use crate::openpgp::holder;
    use rand::SeedableRng;

    fn keys() -> (ServerKey, PgpCert) {
        let server = ServerKey::from_tsk(include_bytes!("../../fuzz/keys/server.key")).unwrap();
        (server, holder::generate("alice@nym.example", None, false, None).unwrap())
    }

    fn block(set: Option<(char, u32)>, to: &str) -> StoredBlock {
        StoredBlock { set, text: format!("::\nAnon-To: {to}\n\n") }
    }

    #[test]
    fn trailer_follows_the_message_on_its_own_lines() {
        let t = String::from_utf8(trailer(false, std::time::UNIX_EPOCH, "alice+x@nym.example")).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "", "a message without a final newline gets one first");
        assert_eq!(lines[1], "~~~");
        assert!(lines[2].contains("certifies only") && lines[3].contains("no endorsement"), "{t}");
        assert_eq!(lines[4], "Date: Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(lines[5], "To: alice+x@nym.example");
        assert_eq!(lines.len(), 6);
        assert!(trailer(true, std::time::UNIX_EPOCH, "a@b").starts_with(b"~~~\n"));
    }

    #[test]
    fn sealed_mail_is_one_ciphertext_per_selected_block_costing_its_bytes() {
        let (mut server, alice) = keys();
        let wrap = Wrapping::default();
        let blocks = [block(None, "a@x.example"), block(Some(('a', 500_000_000)), "b@x.example")];
        let t =
            Target { server: &mut server, cert: &alice, wrap: &wrap, domain: "nym.example", notice: None };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let c =
            through(t, Form::Sealed, b"Subject: hi\n\nhello\n".to_vec(), b"~~~\n", &blocks, false, &mut rng)
                .unwrap();
        assert!((1..=2).contains(&c.msgs.len()));
        assert_eq!(c.msgs[0].block, blocks[0].text, "the block without a set always fires");
        assert_eq!(c.costs.len(), c.msgs.len());
        for (m, cost) in c.msgs.iter().zip(&c.costs) {
            assert_eq!(*cost, Copy::Bytes(m.payload.len()));
            assert!(m.payload.starts_with(b"-----BEGIN PGP MESSAGE-----"));
            let o = holder::open(
                &m.payload,
                std::slice::from_ref(&alice),
                &[],
                std::slice::from_ref(&server.cert),
            )
            .unwrap();
            assert_eq!(o.plaintext, b"Subject: hi\n\nhello\n~~~\n");
            assert!(o.good_signer.is_some() && o.notice.is_none(), "relayed mail: no notice mark");
        }
    }

    #[test]
    fn plain_mail_is_the_message_as_received() {
        let (mut server, alice) = keys();
        let wrap = Wrapping::default();
        let blocks = [block(None, "a@x.example")];
        let t =
            Target { server: &mut server, cert: &alice, wrap: &wrap, domain: "nym.example", notice: None };
        let c = through(
            t,
            Form::Plain,
            b"Subject: hi\n\nhello\n".to_vec(),
            b"",
            &blocks,
            false,
            &mut rand::thread_rng(),
        )
        .unwrap();
        assert_eq!(c.msgs[0].body(), b"::\nAnon-To: a@x.example\n\nSubject: hi\n\nhello\n");
    }

    #[test]
    fn fixedsize_parts_have_one_length_and_reassemble_to_the_signed_message() {
        let (mut server, alice) = keys();
        let wrap = Wrapping { symmetric: Some("pass phrase".into()), ..Default::default() };
        let blocks = [block(None, "a@x.example")];
        let payload: Vec<u8> = (0..30_000u32).map(|i| b"abcdefgh\n"[(i % 9) as usize]).collect();
        let t =
            Target { server: &mut server, cert: &alice, wrap: &wrap, domain: "nym.example", notice: None };
        let c =
            through(t, Form::Fixed, payload.clone(), b"", &blocks, false, &mut rand::thread_rng()).unwrap();
        assert!(c.msgs.len() >= 4, "{}", c.msgs.len());
        assert!(c.costs.iter().all(|c| *c == Copy::Part));
        let len = c.msgs[0].payload.len();
        assert!(c.msgs.iter().all(|m| m.payload.len() == len), "one length for every part");
        let parts: Vec<Vec<u8>> = c
            .msgs
            .iter()
            .map(|m| {
                let outer = holder::open(&m.payload, &[], &["pass phrase".to_string()], &[]).unwrap();
                let o = holder::open(&outer.plaintext, std::slice::from_ref(&alice), &[], &[]).unwrap();
                assert_eq!(o.plaintext.len(), partial::PART_BYTES);
                assert_eq!(o.bad_signatures, 0);
                assert!(o.good_signer.is_none(), "parts are not signed");
                o.plaintext
            })
            .collect();
        let e = partial::reassemble(&parts).unwrap();
        let s = partial::entity_body(&e).unwrap();
        // S is the armored signed payload (gpg verifies it in
        // tests/server/inblocks.rs).
        assert!(s.starts_with(b"-----BEGIN PGP MESSAGE-----\n"), "{}", String::from_utf8_lossy(s));
        assert!(s.ends_with(b"-----END PGP MESSAGE-----\n"));
    }

    #[test]
    fn fixedsize_each_part_has_its_own_selection() {
        let (mut server, alice) = keys();
        let wrap = Wrapping::default();
        let blocks =
            [block(Some(('a', 500_000_000)), "a@x.example"), block(Some(('a', 500_000_000)), "b@x.example")];
        let payload = vec![b'x'; 200_000];
        let t =
            Target { server: &mut server, cert: &alice, wrap: &wrap, domain: "nym.example", notice: None };
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let c = through(t, Form::Fixed, payload, b"", &blocks, false, &mut rng).unwrap();
        // A full set: each part through exactly one block, both used.
        let firsts = c.msgs.iter().filter(|m| m.block == blocks[0].text).count();
        assert!(c.msgs.len() > 20);
        assert!(firsts > 0 && firsts < c.msgs.len(), "{firsts} of {}", c.msgs.len());
    }

    #[test]
    fn engine_input_is_the_block_then_the_payload() {
        let m = BlockMessage { block: "::\nAnon-To: a@b.example\n\n".into(), payload: b"hello\n".to_vec() };
        assert_eq!(m.body(), b"::\nAnon-To: a@b.example\n\nhello\n");
    }
}
