//! Decisions, and nothing else.
//!
//! A handler takes a read-only [`View`] (configuration and clock) and the
//! request as the shell prepared it (decrypted plaintext, what the
//! signature says, the nym rows it needs), and returns a [`Decision`]: an
//! [`Outcome`] for the log line and the [`Effects`] to apply. It does no
//! SQL, no OpenPGP and no I/O; `record` applies the effects in one
//! transaction and `channel` turns the posts into articles. So every rule
//! of the protocol is a plain unit test here.

pub mod autoresp;
pub mod block_check;
pub mod channel_rule;
pub mod config_input;
pub mod confirm;
pub mod create;
pub mod forward;
pub mod gate;
pub mod inblocks;
pub mod inbound;
pub mod lifecycle;
pub mod nym_commands;
pub mod outcome;
pub mod quota;
pub mod reconfigure;
pub mod remailer;
pub mod send;
pub mod url;

#[cfg(test)]
pub(crate) mod testkit;

pub use outcome::Outcome;

use crate::config::Config;
use crate::openpgp::PgpCert;
use crate::protocol::address::Service;
use crate::store::{Nym, OutItem, StoredBlock};

/// What every handler may read.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub cfg: &'a Config,
    /// Seconds since the epoch.
    pub now: i64,
    /// The operator's send@ block list (addresses, `@domain`, `domain`).
    pub blocklist: &'a [String],
}

/// Why a request could not be decrypted (all permanent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undecryptable {
    NoMessage,
    NotForUs,
    Malformed,
    TooLarge,
}

/// What the signature of a decrypted request tells.
#[derive(Debug, Clone)]
pub enum Signer {
    /// No signature at all.
    None,
    /// Signatures that did not verify against the key they name.
    Bad,
    /// Signed by keys we do not know (yet): these key IDs.
    Unknown(Vec<String>),
    /// A good signature by a key that is no nym's.
    NotANym,
    /// A good signature by this nym.
    Nym(Box<Nym>, Sig),
}

/// The facts about a good signature that the rules need.
#[derive(Debug, Clone)]
pub struct Sig {
    /// Digest of the signature packet: the replay cache's key.
    pub digest: Vec<u8>,
    /// Creation time (seconds), if the signature has one.
    pub created: Option<i64>,
    /// The replay cache already holds this signature.
    pub seen: bool,
    /// The signature names its intended recipients, and the server is not
    /// among them: text the nym signed for someone else, re-encrypted to
    /// us.
    pub meant_for_others: bool,
}

/// A decrypted request to a service.
pub struct Request<'a> {
    /// The envelope recipient, as the MTA gave it (for holds).
    pub recipient: &'a str,
    /// The whole message as received (for holds).
    pub raw: &'a [u8],
    pub plaintext: &'a [u8],
    pub signer: Signer,
}

/// How a nym (or a key that asked to become one) wants its articles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wrapping {
    pub hsub: Option<String>,
    pub subject: Option<String>,
    pub symmetric: Option<String>,
}

impl Wrapping {
    pub fn of(n: &Nym) -> Self {
        Wrapping { hsub: n.hsub.clone(), subject: n.subject.clone(), symmetric: n.symmetric.clone() }
    }
}

/// Who a notice is for.
#[derive(Debug, Clone)]
pub enum Addressee {
    Nym(Box<Nym>),
    /// A key that is not (or not yet) a nym: refusals of a creation.
    Key {
        cert: Box<PgpCert>,
        wrap: Wrapping,
    },
}

/// Something to send, before any cryptography: `channel` renders it.
#[derive(Debug, Clone)]
pub enum Post {
    /// A notice from a service address to a nym, posted as an article.
    Notice { to: Addressee, from: String, address: String, subject: String, text: String },
    /// The message being delivered, as it arrives, to this nym.
    Inbound(Box<Nym>),
    /// A ready mail or news item (what a nym sent).
    Item(OutItem),
    /// A notice that goes through reply blocks (REPLY-BLOCKS.md 7): the
    /// channel makes its payload (7.1), and each selected block with that
    /// payload is one input of the Type I engine (7.2); see
    /// [`channel::blocks`](crate::channel::blocks).
    ViaBlocks {
        to: Addressee,
        blocks: Blocks,
        /// Sign and encrypt to the key (`cryptrecv`, and always for
        /// replies to requests that are not authorized).
        encrypt: bool,
        from: String,
        address: String,
        subject: String,
        text: String,
        /// A `Reply-To:` header (the `confirm+COOKIE@D` address).
        reply_to: Option<String>,
    },
}

/// Which reply blocks a [`Post::ViaBlocks`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocks {
    /// A set, in order: the 6.2 selection picks the copies.
    Set(Vec<StoredBlock>),
    /// Exactly this block (the first supplied block of a request that is
    /// not authorized: never more than one unconfirmed block).
    One(StoredBlock),
}

/// The nym a change is about: a stored one, or the one this decision
/// inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NymRef {
    Id(i64),
    Inserted,
}

/// A change to the stored state.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new nym; `keyids` find messages held for it.
    InsertNym { nym: Box<Nym>, keyids: Vec<String> },
    /// A key refresh.
    UpdateCert { id: i64, cert: Box<PgpCert>, expires: Option<i64> },
    /// New options (hsub, subject, symmetric, acksend) from the nym row.
    UpdateOptions(Box<Nym>),
    /// Erase the nym, its key and options.
    DeleteNym { id: i64 },
    /// The send counters of the nym row.
    SendCount(Box<Nym>),
    /// Keep a signed message from an unknown key until `until`.
    Hold { recipient: String, raw: Vec<u8>, keyids: Vec<String>, until: i64 },
    /// A url@ request for the flush timer (its plaintext, rewritten).
    QueueUrl { request: Vec<u8> },
    /// A signed request from the nym: its last-activity day, kept only
    /// while the inactivity rule is on.
    Active { id: i64 },
    /// Make these blocks the nym's pending set (replacing an older one and
    /// its cookie), under the SHA-256 of the cookie.
    PendingSet { nym: NymRef, blocks: Vec<StoredBlock>, cookie_hash: [u8; 32] },
    /// The pending set was confirmed: it replaces the active blocks.
    ActivatePending { id: i64 },
    /// The pending set expired unconfirmed: its blocks and cookie erased.
    ExpirePending { id: i64 },
    /// `drop-reply-blocks`: every block and the cookie erased.
    DropReplyBlocks { id: i64 },
    /// Key rollover: another key; `keyids` find messages held for it.
    ReplaceKey { id: i64, cert: Box<PgpCert>, expires: Option<i64>, keyids: Vec<String> },
    /// The unit counter (day, units).
    Units { id: i64, day: i64, count: i64 },
    /// Set these bits in the flag word (the others stay as they are
    /// under the lock): the quota's `disable` (REPLY-BLOCKS.md 7.3).
    AddFlags { id: i64, bits: u32 },
    /// An autoresponder answered the address with this keyed hash.
    AutoReplied { key: Vec<u8> },
}

/// A condition checked under the write lock, since the view was read
/// without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The nym still holds this key and is enabled.
    NymEnabled { id: i64, fingerprint: String },
    /// The nym still holds this key (enabled or not).
    NymPresent { id: i64, fingerprint: String },
    /// No nym holds this address.
    AddressFree { local: String, domain: String },
    /// The nym's send counters are still these.
    SendCounters { id: i64, fingerprint: String, day: i64, count: i64, told: bool },
    /// Fewer than `max` url@ requests arrived since `since`.
    UrlQuota { since: i64, max: u32 },
    /// The nym's unit counter and flag word are still these (the quota
    /// of REPLY-BLOCKS.md 7.3 was checked against them).
    Units { id: i64, day: i64, count: i64, flags: u32 },
    /// A pending set with this cookie hash still exists.
    PendingCookie { hash: [u8; 32] },
    /// Fewer than `per_address` autoresponder answers to `key` since
    /// `since_day`, and fewer than `total` in all since `since_hour`.
    AutoReplyQuota { key: Vec<u8>, since_day: i64, since_hour: i64, per_address: u32, total: u32 },
}

/// What to do when a [`Guard`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFail {
    /// Commit the delivery mark only and end with this outcome.
    End(Outcome),
    /// Roll back and report "no such nym" to the MTA.
    NoUser,
    /// Roll back, read the view again and decide again.
    Retry,
}

/// Everything a decision asks for. Applied in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Record the delivery (and any marks) even without changes, so that a
    /// retried delivery is recognised.
    pub commit: bool,
    pub guards: Vec<(Guard, OnFail)>,
    /// Signature digest for the replay cache; if it is already there under
    /// the lock, nothing else is applied.
    pub replay_mark: Option<Vec<u8>>,
    pub changes: Vec<Change>,
    pub posts: Vec<Post>,
}

impl Effects {
    /// Nothing to record: junk is dropped without a trace.
    pub fn none() -> Self {
        Effects::default()
    }
    /// Record that this delivery was handled, and nothing else.
    pub fn mark() -> Self {
        Effects { commit: true, ..Default::default() }
    }
    pub fn post(mut self, p: Post) -> Self {
        self.commit = true;
        self.posts.push(p);
        self
    }
    pub fn change(mut self, c: Change) -> Self {
        self.commit = true;
        self.changes.push(c);
        self
    }
    pub fn guard(mut self, g: Guard, on_fail: OnFail) -> Self {
        self.guards.push((g, on_fail));
        self
    }
    pub fn replay(mut self, digest: Vec<u8>) -> Self {
        self.commit = true;
        self.replay_mark = Some(digest);
        self
    }
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub struct Decision {
    pub event: &'static str,
    pub outcome: Outcome,
    pub effects: Effects,
}

impl Decision {
    pub fn new(event: &'static str, outcome: Outcome, effects: Effects) -> Self {
        Decision { event, outcome, effects }
    }
    /// Dropped: nothing recorded.
    pub fn drop(event: &'static str, outcome: Outcome) -> Self {
        Decision::new(event, outcome, Effects::none())
    }
}

/// A notice from `service@` the nym's domain to the nym. It is written
/// for alt.anonymous.messages; the shell applies the channel rule
/// ([`channel_rule`]) before rendering, so a nym with active blocks gets
/// it through them.
pub fn notice_to(n: &Nym, service: Service, subject: &str, text: String) -> Post {
    Post::Notice {
        to: Addressee::Nym(Box::new(n.clone())),
        from: format!("{}@{}", service.local(), n.domain),
        address: n.address(),
        subject: subject.to_string(),
        text,
    }
}

/// Which decision a request to `service` gets.
pub fn dispatch(v: &View, service: Service, req: &Request, key: Option<create::KeyOffer>) -> Decision {
    match service {
        Service::Config => match key {
            Some(offer) => create::decide(v, req, offer),
            None => reconfigure::decide(v, req),
        },
        Service::Send => send::decide(v, req),
        Service::Url => url::decide(v, req),
    }
}
