//! config@ in the nym.alias.net format: a `Config:` request creates,
//! modifies or deletes a nym, sets its flags and display name, rolls its
//! key over and gives it a pending reply-block set (REPLY-BLOCKS.md
//! section 5).
//!
//! Every problem is collected first; then either every effect applies or
//! none. Where the reply goes:
//! - an authorized modification (signed by the nym's key): the nym's
//!   current channel (its active blocks, else alt.anonymous.messages),
//!   never blocks it supplied;
//! - a new pending set: "configuration completed" through that pending
//!   set with `Reply-To: confirm+COOKIE@D`, and a notice without the
//!   cookie through the current channel of an existing nym;
//! - anything else (creation, bad or foreign signature, no such nym):
//!   only through the **first** supplied block, signed by the server and
//!   encrypted to a supplied key that passes the key rules; without both,
//!   no reply.

use super::{
    gate, notice_to, Addressee, Blocks, Change, Decision, Effects, Guard, NymRef, OnFail, Outcome, Post,
};
use super::{Request, Sig, Signer, View, Wrapping};
use crate::openpgp::PgpCert;
use crate::protocol::address::{is_valid_nym_name, Service};
use crate::protocol::config_request::{self as cr, check_blocks, ConfigRequest};
use crate::protocol::nym_commands::{self as nc, flag, Create, Problem, DEFAULT_CONFIG};
use crate::protocol::reply_block::{check_sums, cookie_hash};
use crate::store::{Nym, StoredBlock};

const EV: &str = "config";

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
    /// `reply-block-invalid`, `-refused`, `-loop`); empty until the engine
    /// is connected.
    pub block_checks: Vec<Option<Problem>>,
    /// A fresh cookie, should a pending set be made.
    pub cookie: String,
}

fn weight(w: u32) -> String {
    format!("0.{w:09}")
}

/// The state of a nym in a reply: flags, name, Zax options and each
/// block's set, weight and state (never its text).
pub fn describe(n: &Nym, active: &[StoredBlock], pending: &[StoredBlock]) -> String {
    let show =
        |v: &Option<String>| v.as_deref().map(|s| format!("\"{s}\"")).unwrap_or_else(|| "(not set)".into());
    let mut s = format!(
        "Nym:        {}\nKey:        {}\nFlags:      {}\nName:       {}\nhsub:       {}\nsubject:    {}\nsymmetric:  {}\n",
        n.address(),
        n.fingerprint,
        nc::describe(n.flags),
        show(&n.name),
        show(&n.hsub),
        show(&n.subject),
        show(&n.symmetric),
    );
    if active.is_empty() && pending.is_empty() {
        s.push_str("Reply blocks: none (mail reaches you through alt.anonymous.messages)\n");
    } else {
        s.push_str("Reply blocks:\n");
        let rows = active.iter().map(|b| (b, "active")).chain(pending.iter().map(|b| (b, "pending")));
        for (i, (b, state)) in rows.enumerate() {
            let set = match b.set {
                Some((c, w)) => format!("set {c}, weight {}", weight(w)),
                None => "no set".into(),
            };
            s.push_str(&format!("  {}. {set}, {state}\n", i + 1));
        }
    }
    s
}

fn problem_lines(p: &[Problem]) -> String {
    p.iter().map(|p| format!("{}\n", p.line())).collect()
}

/// A notice through the nym's current channel: its active blocks, else
/// alt.anonymous.messages.
fn current(n: &Nym, active: &[StoredBlock], subject: &str, text: String) -> Post {
    if active.is_empty() {
        notice_to(n, Service::Config, subject, text)
    } else {
        Post::ViaBlocks {
            to: Addressee::Nym(Box::new(n.clone())),
            blocks: Blocks::Set(active.to_vec()),
            encrypt: n.has(flag::CRYPTRECV),
            from: format!("config@{}", n.domain),
            address: n.address(),
            subject: subject.into(),
            text,
            reply_to: None,
        }
    }
}

/// The only reply an unauthorized request can get: through its first
/// block, encrypted to its usable key.
fn unauthorized(
    inp: &ConfigInput,
    blocks: &[StoredBlock],
    outcome: Outcome,
    problems: &[Problem],
    effects: Effects,
) -> Decision {
    let target = match (&inp.key, blocks.first()) {
        (Some(SuppliedKey::Usable(k)), Some(b)) if !k.is_server_key => Some((k, b)),
        _ => None,
    };
    let Some((k, b)) = target else { return Decision::new(EV, outcome, effects) };
    let address = format!("{}@{}", k.local, k.domain);
    let post = Post::ViaBlocks {
        to: Addressee::Key { cert: Box::new(k.cert.clone()), wrap: Wrapping::default() },
        blocks: Blocks::One(b.clone()),
        encrypt: true,
        from: format!("config@{}", inp.domain),
        address,
        subject: "Configuration refused".into(),
        text: format!(
            "Your Config: request to config@{} was refused; nothing was changed.\n\n{}",
            inp.domain,
            problem_lines(problems)
        ),
        reply_to: None,
    };
    Decision::new(EV, outcome, effects.post(post))
}

/// Creation names: `^\w[\w-]{1,15}$`, and a name the router can reach.
pub fn is_creation_name(name: &str) -> bool {
    let b = name.as_bytes();
    (2..=16).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        && is_valid_nym_name(name)
}

/// Section 5 key checks of a supplied key, for the nym `name@domain`
/// (`me`: the nym itself, whose key it may already be).
fn key_problems(k: &Supplied, name: &str, domain: &str, me: Option<i64>) -> Vec<Problem> {
    let mut v = Vec::new();
    if k.is_server_key {
        v.push(Problem::new(keys::KEY_IS_SERVER_KEY, "The key in Public-Key: shares a key with the server"));
    }
    if !k.local.eq_ignore_ascii_case(name) || !k.domain.eq_ignore_ascii_case(domain) {
        v.push(Problem::new(keys::KEY_UID_MISMATCH, format!("The key's User ID must be <{name}@{domain}>")));
    }
    if k.bound_to.is_some() && k.bound_to != me {
        v.push(Problem::new(keys::KEY_IN_USE, "The key in Public-Key: belongs to another nym"));
    }
    v
}

fn sig_problem(v: &View, sig: &Sig) -> Option<Problem> {
    gate::age_problem(v, sig).map(|o| {
        Problem::new(
            keys::SIGNATURE_DATE,
            match o {
                Outcome::SignatureTooOld => "The signature is too old",
                Outcome::SignatureFromFuture => "The signature is dated in the future",
                _ => "The signature has no date",
            },
        )
    })
}

pub fn decide(v: &View, req: &Request, inp: ConfigInput) -> Decision {
    let r = &inp.request;
    let cmds = nc::parse(&nc::join_lines(&r.commands));
    let blocks: Vec<StoredBlock> =
        r.blocks.iter().map(|b| StoredBlock { set: b.set, text: b.text.clone() }).collect();
    // Problems of the header and commands; of the blocks apart (a delete
    // ignores its blocks).
    let mut head: Vec<Problem> =
        r.problems.iter().filter(|p| p.key != cr::keys::BAD_PROBABILITY).cloned().collect();
    head.extend(cmds.problems.iter().cloned());
    let rb = &v.cfg.reply_blocks;
    let mut block_problems: Vec<Problem> =
        r.problems.iter().filter(|p| p.key == cr::keys::BAD_PROBABILITY).cloned().collect();
    block_problems.extend(check_blocks(&r.blocks, rb.max_per_nym, rb.max_block_bytes));
    block_problems.extend(check_sums(&r.blocks.iter().map(|b| b.set).collect::<Vec<_>>()));
    block_problems.extend(inp.block_checks.iter().flatten().cloned());
    let name = r.from.as_ref().map(|f| f.name.to_ascii_lowercase());
    let domain = r.from.as_ref().and_then(|f| f.domain.clone()).unwrap_or_else(|| inp.domain.clone());
    let creating = match cmds.create {
        Some(Create::New) => true,
        Some(Create::IfFree) => inp.named.is_none(),
        None => false,
    };
    if creating {
        create(v, &inp, &cmds, blocks, head, block_problems, name, domain)
    } else {
        modify(v, req, &inp, &cmds, blocks, head, block_problems, name.as_deref(), &domain)
    }
}

#[allow(clippy::too_many_arguments)]
fn create(
    v: &View,
    inp: &ConfigInput,
    cmds: &nc::Commands,
    blocks: Vec<StoredBlock>,
    mut problems: Vec<Problem>,
    block_problems: Vec<Problem>,
    name: Option<String>,
    domain: String,
) -> Decision {
    let mut effects = Effects::none();
    // The signature: made by the supplied key, through the usual gate.
    match &inp.key_sig {
        Some(sig) if sig.seen => return Decision::drop(EV, Outcome::ReplayedSignature),
        Some(sig) if sig.meant_for_others => return Decision::drop(EV, Outcome::SignedForSomeoneElse),
        Some(sig) => {
            effects = effects.replay(sig.digest.clone());
            problems.extend(sig_problem(v, sig));
        }
        None => problems.push(Problem::new(
            keys::BAD_SIGNATURE,
            "A new nym's request must be signed by the key in Public-Key:",
        )),
    }
    if let Some(name) = &name {
        if v.cfg.is_reserved(name) {
            problems.push(Problem::new(keys::NAME_RESERVED, format!("The name {name} is reserved")));
        } else if !is_creation_name(name) {
            problems.push(Problem::new(
                cr::keys::BAD_FROM,
                "A new nym's name has 2 to 16 characters: lowercase letters, digits, - and _, ending in a letter or digit",
            ));
        } else if inp.named.is_some() {
            problems.push(Problem::new(keys::NAME_TAKEN, format!("The name {name}@{domain} is taken")));
        }
    }
    match &inp.key {
        None => problems.push(Problem::new(keys::PUBLIC_KEY_COUNT, "A new nym needs its key in Public-Key:")),
        Some(SuppliedKey::Refused(p)) => problems.push(p.clone()),
        Some(SuppliedKey::Usable(k)) => {
            if let Some(name) = &name {
                problems.extend(key_problems(k, name, &domain, None));
            }
        }
    }
    if blocks.is_empty() {
        problems.push(Problem::new(keys::REPLY_BLOCK_REQUIRED, "A new nym needs at least one Reply-Block:"));
    }
    problems.extend(block_problems);
    if cmds.delete {
        problems.push(Problem::new(keys::CREATE_WITH_DELETE, "create and delete in one request"));
    }
    let (Some(name), Some(SuppliedKey::Usable(k)), true) = (name, &inp.key, problems.is_empty()) else {
        return unauthorized(inp, &blocks, Outcome::Refused, &problems, effects);
    };
    let mut n = Nym {
        id: 0,
        local: name,
        domain,
        fingerprint: k.fingerprint.clone(),
        cert: k.cert.clone(),
        expires: k.expires,
        created: v.now,
        hsub: None,
        subject: None,
        symmetric: None,
        flags: cmds.apply(DEFAULT_CONFIG),
        disabled: false,
        send_day: 0,
        send_count: 0,
        limit_told: false,
        name: cmds.name.clone(),
        unit_day: 0,
        unit_count: 0,
        had_active: false,
        active_blocks: 0,
        pending_blocks: blocks.len() as i64,
    };
    if cmds.resets_units() {
        n.unit_count = 0;
    }
    let post = pending_reply(&n, &inp.cookie, &blocks, &[], "created");
    let effects = effects
        .guard(
            Guard::AddressFree { local: n.local.clone(), domain: n.domain.clone() },
            OnFail::End(Outcome::DuplicateCopy),
        )
        .change(Change::InsertNym { nym: Box::new(n), keyids: k.keyids.clone() })
        .change(Change::PendingSet { nym: NymRef::Inserted, blocks, cookie_hash: cookie_hash(&inp.cookie) })
        .post(post);
    Decision::new(EV, Outcome::Created, effects)
}

/// "Configuration completed" through the new pending set, with the cookie
/// address to confirm it.
fn pending_reply(n: &Nym, cookie: &str, pending: &[StoredBlock], active: &[StoredBlock], what: &str) -> Post {
    let confirm = format!("confirm+{cookie}@{}", n.domain);
    let text = format!(
        "Configuration completed: your nym {} was {what}.\n\n{}\n\
         These reply blocks wait for confirmation. Mail anything to\n\n    {confirm}\n\n\
         (replying to this message does it) to start using them.\n",
        n.address(),
        describe(n, active, pending),
    );
    Post::ViaBlocks {
        to: Addressee::Nym(Box::new(n.clone())),
        blocks: Blocks::Set(pending.to_vec()),
        encrypt: n.has(flag::CRYPTRECV),
        from: format!("config@{}", n.domain),
        address: n.address(),
        subject: "Configuration completed".into(),
        text,
        reply_to: Some(confirm),
    }
}

#[allow(clippy::too_many_arguments)]
fn modify(
    v: &View,
    req: &Request,
    inp: &ConfigInput,
    cmds: &nc::Commands,
    blocks: Vec<StoredBlock>,
    mut head: Vec<Problem>,
    block_problems: Vec<Problem>,
    name: Option<&str>,
    domain: &str,
) -> Decision {
    let Some(named) = &inp.named else {
        if name.is_some() {
            head.push(Problem::new(
                keys::NO_SUCH_NYM,
                format!("There is no nym {}@{domain}", name.unwrap_or("")),
            ));
        }
        head.extend(block_problems);
        return unauthorized(inp, &blocks, Outcome::NoSuchNym, &head, Effects::none());
    };
    // Only the nym's own key authorizes; then the gate of every signed
    // request (lock, replay, age, holding unknown signers).
    let outcome = match &req.signer {
        Signer::Nym(n, _) if n.id == named.id => None,
        Signer::Unknown(ids) => return gate::hold(v, EV, req, ids),
        Signer::Nym(..) | Signer::NotANym => Some(Outcome::SignerNotANym),
        Signer::Bad => Some(Outcome::BadSignature),
        Signer::None => Some(Outcome::Unsigned),
    };
    if let Some(o) = outcome {
        head.push(Problem::new(
            keys::BAD_SIGNATURE,
            format!("The request is not signed by the key of {}", named.address()),
        ));
        head.extend(block_problems);
        return unauthorized(inp, &blocks, o, &head, Effects::none());
    }
    let (n, sig) = match gate::signed(v, Service::Config, req) {
        Ok(p) => p,
        Err(d) => return *d,
    };
    let base = Effects::none().replay(sig.digest.clone()).guard(
        Guard::NymPresent { id: n.id, fingerprint: n.fingerprint.clone() },
        OnFail::End(Outcome::NymGone),
    );
    let mut problems = head;
    if cmds.delete {
        if !problems.is_empty() {
            return refused(n, &inp.active, &problems, base);
        }
        let text = format!(
            "Your nym {} is deleted, with its key, reply blocks and options.\nThis is the last message you get for it.\n",
            n.address()
        );
        let post = current(n, &inp.active, "Nym deleted", text);
        return Decision::new(EV, Outcome::Deleted, base.change(Change::DeleteNym { id: n.id }).post(post));
    }
    problems.extend(block_problems);
    // Key rollover (or refresh, with the same fingerprint).
    let mut key_change = None;
    match &inp.key {
        None => {}
        Some(SuppliedKey::Refused(p)) => problems.push(p.clone()),
        Some(SuppliedKey::Usable(k)) => {
            let ps = key_problems(k, &n.local, &n.domain, Some(n.id));
            if ps.is_empty() {
                key_change = Some(if k.fingerprint == n.fingerprint {
                    Change::UpdateCert { id: n.id, cert: Box::new(k.cert.clone()), expires: k.expires }
                } else {
                    Change::ReplaceKey {
                        id: n.id,
                        cert: Box::new(k.cert.clone()),
                        expires: k.expires,
                        keyids: k.keyids.clone(),
                    }
                });
            }
            problems.extend(ps);
        }
    }
    if !problems.is_empty() {
        return refused(n, &inp.active, &problems, base);
    }
    let mut updated = n.clone();
    updated.flags = cmds.apply(n.flags);
    if let Some(name) = &cmds.name {
        updated.name = Some(name.clone());
    }
    if let Some(Change::UpdateCert { cert, expires, .. } | Change::ReplaceKey { cert, expires, .. }) =
        &key_change
    {
        updated.cert = (**cert).clone();
        updated.expires = *expires;
        if let Some(SuppliedKey::Usable(k)) = &inp.key {
            updated.fingerprint = k.fingerprint.clone();
        }
    }
    let nothing = cmds.is_empty() && key_change.is_none() && blocks.is_empty();
    if nothing {
        let text = format!("Status of your nym:\n\n{}", describe(n, &inp.active, &[]));
        return Decision::new(EV, Outcome::Status, base.post(current(n, &inp.active, "Nym status", text)));
    }
    let mut effects = base;
    if updated.flags != n.flags || updated.name != n.name {
        effects = effects.change(Change::UpdateOptions(Box::new(updated.clone())));
    }
    if cmds.resets_units() {
        effects = effects.change(Change::Units { id: n.id, day: super::quota::day_of(v.now), count: 0 });
    }
    if let Some(c) = key_change {
        effects = effects.change(c);
    }
    let mut active = inp.active.clone();
    if cmds.drop_reply_blocks {
        effects = effects.change(Change::DropReplyBlocks { id: n.id });
        active.clear();
        updated.active_blocks = 0;
    }
    if blocks.is_empty() {
        let text = format!("Configuration completed.\n\n{}", describe(&updated, &active, &[]));
        return Decision::new(
            EV,
            Outcome::Changed,
            effects.post(current(&updated, &active, "Configuration completed", text)),
        );
    }
    // A new pending set: the reply with the cookie goes through it; a
    // notice without the cookie through the current channel, so that a
    // stolen key cannot move the nym unseen.
    let notice = format!(
        "A new set of {} reply block(s) was submitted for your nym {} and waits for\n\
         confirmation through those blocks. If you did not send it, your key is no longer\n\
         yours alone: delete the nym or roll the key over.\n\n{}",
        blocks.len(),
        updated.address(),
        describe(&updated, &active, &blocks)
    );
    let cookie_free = current(&updated, &active, "Reply blocks submitted", notice);
    let post = pending_reply(&updated, &inp.cookie, &blocks, &active, "changed");
    let effects = effects
        .change(Change::PendingSet { nym: NymRef::Id(n.id), blocks, cookie_hash: cookie_hash(&inp.cookie) })
        .post(post)
        .post(cookie_free);
    Decision::new(EV, Outcome::Changed, effects)
}

/// An authorized request with problems: nothing applied, the nym told
/// through its current channel.
fn refused(n: &Nym, active: &[StoredBlock], problems: &[Problem], base: Effects) -> Decision {
    let text = format!(
        "Your Config: request was refused; nothing was changed.\n\n{}\n{}",
        problem_lines(problems),
        describe(n, active, &[])
    );
    Decision::new(EV, Outcome::Refused, base.post(current(n, active, "Configuration refused", text)))
}
