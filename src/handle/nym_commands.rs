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
use crate::protocol::address::{is_valid_nym_name, Service};
use crate::protocol::config_request::{self as cr, check_blocks};
use crate::protocol::nym_commands::{self as nc, flag, Create, Problem, DEFAULT_CONFIG};
use crate::protocol::reply_block::{check_sums, cookie_hash};
use crate::store::{Nym, StoredBlock};

const EV: &str = "config";

pub use super::config_input::{block_problem, keys, ConfigInput, Supplied, SuppliedKey};

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
    if n.has(flag::FIXEDSIZE) && !n.has(flag::CRYPTRECV) {
        // REPLY-BLOCKS.md 7.4: parts in clear would hide nothing.
        s.push_str("Note:       fixedsize has no effect without cryptrecv (it is ignored)\n");
    }
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
pub(super) fn current(n: &Nym, active: &[StoredBlock], subject: &str, text: String) -> Post {
    super::channel_rule::apply(notice_to(n, Service::Config, subject, text), active)
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
    block_problems.extend(check_blocks(&r.blocks, r.blocks_total, rb.max_per_nym, rb.max_block_bytes));
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

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;
    use crate::protocol::config_request::keys as ck;

    const COOKIE: &str = "0123456789abcdef0123456789abcdef";

    fn hosted(d: &str) -> bool {
        d == "nym.example" || d == "other.example"
    }

    fn supplied(k: &Kit, local: &str, fpr: &str) -> SuppliedKey {
        SuppliedKey::Usable(Box::new(Supplied {
            cert: k.cert.clone(),
            fingerprint: fpr.into(),
            local: local.into(),
            domain: "nym.example".into(),
            expires: Some(k.now + 86400 * 365),
            keyids: vec!["KID".into()],
            bound_to: None,
            is_server_key: false,
        }))
    }

    fn block(n: usize) -> String {
        (0..n).map(|i| format!("Reply-Block:\n::\nAnon-To: hop{i}@r1.example\n\n")).collect()
    }

    /// A creation of alice with `extra` header lines and `blocks` blocks.
    fn creation(extra: &str, blocks: &str) -> String {
        format!(
            "Config:\nFrom: alice\nNym-Commands: create? +acksend +fixedsize name=\"Quill Pen\"\n{extra}\
             Public-Key:\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n-----END PGP PUBLIC KEY BLOCK-----\n{blocks}"
        )
    }

    fn input(k: &Kit, text: &str) -> ConfigInput {
        ConfigInput {
            request: cr::parse(text, &hosted),
            domain: "nym.example".into(),
            named: None,
            active: vec![],
            key: Some(supplied(k, "alice", "FPR-NEW")),
            key_sig: Some(k.sig(k.now - 60)),
            block_checks: vec![],
            cookie: COOKIE.into(),
        }
    }

    fn run(k: &Kit, signer: Signer, inp: ConfigInput) -> Decision {
        decide(&k.view(), &k.request(signer, b"(plaintext)"), inp)
    }

    fn modify_input(k: &Kit, n: &Nym, text: &str) -> ConfigInput {
        let mut i = input(k, text);
        i.named = Some(n.clone());
        i.key = None;
        i.key_sig = None;
        i
    }

    fn by_nym(k: &Kit, n: &Nym) -> Signer {
        Signer::Nym(Box::new(n.clone()), k.sig(k.now - 60))
    }

    fn keys_in(d: &Decision) -> Vec<String> {
        let mut v = Vec::new();
        for p in &d.effects.posts {
            let text = match p {
                Post::ViaBlocks { text, .. } | Post::Notice { text, .. } => text,
                _ => continue,
            };
            for l in text.lines() {
                if let (Some(a), true) = (l.rfind('['), l.ends_with(']')) {
                    v.push(l[a + 1..l.len() - 1].to_string());
                }
            }
        }
        v
    }

    #[test]
    fn creation_spec_example_makes_the_nym_with_its_flags_and_a_pending_set() {
        let k = Kit::new();
        let d = run(&k, Signer::Unknown(vec!["KID".into()]), input(&k, &creation("", &block(2))));
        assert_eq!(d.outcome, Outcome::Created, "{:?}", keys_in(&d));
        let Change::InsertNym { nym, keyids } = &d.effects.changes[0] else {
            panic!("{:?}", d.effects.changes)
        };
        assert_eq!(nym.address(), "alice@nym.example");
        assert_eq!(nym.flags, DEFAULT_CONFIG | flag::ACKSEND | flag::FIXEDSIZE);
        assert_eq!(nym.name.as_deref(), Some("Quill Pen"));
        assert!(!nym.had_active);
        assert_eq!(keyids, &vec!["KID".to_string()]);
        let Change::PendingSet { nym: NymRef::Inserted, blocks, cookie_hash: h } = &d.effects.changes[1]
        else {
            panic!()
        };
        assert_eq!((blocks.len(), *h), (2, cookie_hash(COOKIE)));
        assert_eq!(d.effects.replay_mark.as_deref(), Some(&k.sig(k.now - 60).digest[..]));
        let [Post::ViaBlocks { blocks: Blocks::Set(b), reply_to, text, .. }] = &d.effects.posts[..] else {
            panic!("{:?}", d.effects.posts)
        };
        assert_eq!(b.len(), 2);
        assert_eq!(reply_to.as_deref(), Some("confirm+0123456789abcdef0123456789abcdef@nym.example"));
        assert!(text.contains("+cryptrecv -signsend +acksend -disable +fixedsize"), "{text}");
        assert!(!text.contains("hop0@r1"), "a reply never shows block text");
    }

    #[test]
    fn creation_errors_each_have_their_key_and_change_nothing() {
        let k = Kit::new();
        let with = |f: &dyn Fn(&mut ConfigInput)| {
            let mut i = input(&k, &creation("", &block(1)));
            f(&mut i);
            i
        };
        let cases: Vec<(&str, ConfigInput)> = vec![
            (keys::NAME_TAKEN, {
                let mut i = input(&k, &creation("", &block(1)).replace("create?", "create"));
                i.named = Some(k.nym("alice"));
                i
            }),
            (
                keys::NAME_RESERVED,
                input(&k, &creation("", &block(1)).replace("From: alice", "From: postmaster")),
            ),
            (
                ck::BAD_FROM,
                input(&k, &creation("", &block(1)).replace("From: alice", "From: a_very_long_name_over_16")),
            ),
            (keys::PUBLIC_KEY_COUNT, with(&|i| i.key = None)),
            (
                keys::PUBLIC_KEY_COUNT,
                with(&|i| i.key = Some(SuppliedKey::Refused(Problem::new(keys::PUBLIC_KEY_COUNT, "two")))),
            ),
            (
                keys::KEY_INVALID,
                with(&|i| i.key = Some(SuppliedKey::Refused(Problem::new(keys::KEY_INVALID, "bad")))),
            ),
            (keys::KEY_UID_MISMATCH, with(&|i| i.key = Some(supplied(&k, "bob", "FPR-NEW")))),
            (
                keys::KEY_IN_USE,
                with(&|i| {
                    if let Some(SuppliedKey::Usable(s)) = &mut i.key {
                        s.bound_to = Some(99);
                    }
                }),
            ),
            (keys::BAD_SIGNATURE, with(&|i| i.key_sig = None)),
            (keys::SIGNATURE_DATE, with(&|i| i.key_sig = Some(k.sig(k.now - 30 * 86400)))),
            (keys::REPLY_BLOCK_REQUIRED, input(&k, &creation("", ""))),
            (keys::CREATE_WITH_DELETE, input(&k, &creation("Nym-Commands: delete\n", &block(1)))),
            (ck::TOO_MANY_REPLY_BLOCKS, input(&k, &creation("", &block(5)))),
            (
                ck::REPLY_BLOCK_TOO_LARGE,
                input(&k, &creation("", &format!("Reply-Block:\n{}\n", "x".repeat(40000)))),
            ),
            (ck::BAD_PROBABILITY, input(&k, &creation("", "Reply-Block: a=0,5\nx\n"))),
            (PROBABILITY_SUM_KEY, input(&k, &creation("", "Reply-Block: a=0.7\nx\nReply-Block: a=0.7\ny\n"))),
            (
                ck::BAD_FROM,
                input(&k, &creation("", &block(1)).replace("From: alice", "From: Alice <alice@nym.example>")),
            ),
            (ck::PLUSSED_FROM, input(&k, &creation("", &block(1)).replace("From: alice", "From: alice+x"))),
            (ck::UNKNOWN_HEADER, input(&k, &creation("X-Junk: 1\n", &block(1)))),
            (nc::keys::INVALID_SWITCH, input(&k, &creation("Nym-Commands: +nolimit\n", &block(1)))),
            (nc::keys::INVALID_COMMAND, input(&k, &creation("Nym-Commands: frob\n", &block(1)))),
            (nc::keys::UNPARSABLE_COMMAND, input(&k, &creation("Nym-Commands: +nobcc ;\n", &block(1)))),
            (nc::keys::BAD_NAME, input(&k, &creation("Nym-Commands: name=\"a@b\" \n", &block(1)))),
            (
                keys::KEY_IS_SERVER_KEY,
                with(&|i| {
                    if let Some(SuppliedKey::Usable(s)) = &mut i.key {
                        s.is_server_key = true;
                    }
                }),
            ),
        ];
        for (key, inp) in cases {
            let d = run(&k, Signer::Unknown(vec![]), inp);
            assert_eq!(d.outcome, Outcome::Refused, "{key}");
            assert!(d.effects.changes.is_empty(), "{key}");
            assert!(d.effects.posts.len() <= 1, "{key}");
            if let Some(p) = d.effects.posts.first() {
                assert!(matches!(p, Post::ViaBlocks { blocks: Blocks::One(_), encrypt: true, .. }), "{key}");
                assert!(keys_in(&d).iter().any(|x| x == key), "{key}: {:?}", keys_in(&d));
            } else {
                // No reply: no usable key, or the key is the server's.
                assert!(
                    [
                        keys::PUBLIC_KEY_COUNT,
                        keys::KEY_INVALID,
                        keys::KEY_IS_SERVER_KEY,
                        keys::REPLY_BLOCK_REQUIRED
                    ]
                    .contains(&key),
                    "{key} got no reply"
                );
            }
        }
    }

    const PROBABILITY_SUM_KEY: &str = crate::protocol::reply_block::PROBABILITY_SUM;

    #[test]
    fn unauthorized_request_with_four_blocks_gets_at_most_one_reply_through_the_first() {
        let k = Kit::new();
        let mut i = input(&k, &creation("", &block(4)));
        i.key_sig = None;
        let d = run(&k, Signer::Bad, i);
        assert_eq!(d.outcome, Outcome::Refused);
        let [Post::ViaBlocks { blocks: Blocks::One(b), encrypt: true, to: Addressee::Key { .. }, .. }] =
            &d.effects.posts[..]
        else {
            panic!("{:?}", d.effects.posts)
        };
        assert!(b.text.contains("hop0@r1.example"), "the first block");
        // A bad signature on a modification: the same, at most one reply.
        let mut i = modify_input(&k, &k.nym("alice"), &format!("Config:\nFrom: alice\n{}", block(4)));
        i.key = Some(supplied(&k, "alice", "FPR-alice"));
        let d = run(&k, Signer::Bad, i);
        assert_eq!(d.outcome, Outcome::BadSignature);
        assert!(matches!(&d.effects.posts[..], [Post::ViaBlocks { blocks: Blocks::One(_), .. }]));
        assert!(keys_in(&d).contains(&keys::BAD_SIGNATURE.to_string()));
    }

    #[test]
    fn unauthorized_request_without_a_usable_key_gets_no_reply() {
        let k = Kit::new();
        let mut i = modify_input(&k, &k.nym("alice"), &format!("Config:\nFrom: alice\n{}", block(4)));
        i.key = None;
        let d = run(&k, Signer::NotANym, i);
        assert_eq!(d.outcome, Outcome::SignerNotANym);
        assert!(d.effects.posts.is_empty() && d.effects.changes.is_empty() && !d.effects.commit);
    }

    #[test]
    fn creation_replayed_signature_is_silent() {
        let k = Kit::new();
        let mut i = input(&k, &creation("", &block(1)));
        let mut s = k.sig(k.now - 60);
        s.seen = true;
        i.key_sig = Some(s);
        let d = run(&k, Signer::Unknown(vec![]), i);
        assert_eq!(d.outcome, Outcome::ReplayedSignature);
        assert!(!d.effects.commit);
    }

    #[test]
    fn modification_changes_flags_and_name_through_the_current_channel() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(
            &k,
            by_nym(&k, &n),
            modify_input(
                &k,
                &n,
                "Config:\nFrom: alice@nym.example\nNym-Commands: +nobcc -acksend name=\"Al\" \n",
            ),
        );
        assert_eq!(d.outcome, Outcome::Changed);
        let [Change::UpdateOptions(u)] = &d.effects.changes[..] else { panic!("{:?}", d.effects.changes) };
        assert_eq!(u.flags, (n.flags | flag::NOBCC) & !flag::ACKSEND);
        assert_eq!(u.name.as_deref(), Some("Al"));
        // No active block: alt.anonymous.messages.
        assert!(
            matches!(&d.effects.posts[..], [Post::Notice { subject, .. }] if subject == "Configuration completed")
        );
    }

    #[test]
    fn modification_replies_through_active_blocks_when_the_nym_has_them() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.active_blocks = 1;
        let mut i = modify_input(&k, &n, "Config:\nFrom: alice\nNym-Commands: -cryptrecv\n");
        i.active = vec![StoredBlock { set: None, text: "active\n\n".into() }];
        let d = run(&k, by_nym(&k, &n), i);
        let [Post::ViaBlocks { blocks: Blocks::Set(b), encrypt, .. }] = &d.effects.posts[..] else {
            panic!()
        };
        assert_eq!(b[0].text, "active\n\n");
        assert!(!encrypt, "the reply follows the new flags");
    }

    #[test]
    fn modification_blocks_become_the_pending_set_with_a_cookie_free_notice() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, by_nym(&k, &n), modify_input(&k, &n, &format!("Config:\nFrom: alice\n{}", block(2))));
        assert_eq!(d.outcome, Outcome::Changed);
        assert!(
            matches!(&d.effects.changes[..], [Change::PendingSet { nym: NymRef::Id(7), blocks, .. }] if blocks.len() == 2)
        );
        let [Post::ViaBlocks { blocks: Blocks::Set(b), reply_to: Some(r), .. }, Post::Notice { text, .. }] =
            &d.effects.posts[..]
        else {
            panic!("{:?}", d.effects.posts)
        };
        assert_eq!(b.len(), 2);
        assert!(r.starts_with("confirm+"));
        assert!(!text.contains(COOKIE), "the current channel never sees the cookie");
    }

    #[test]
    fn modification_errors_are_all_or_nothing() {
        let k = Kit::new();
        let n = k.nym("alice");
        let text = format!("Config:\nFrom: alice\nNym-Commands: +nobcc +bogus\n{}", block(1));
        let d = run(&k, by_nym(&k, &n), modify_input(&k, &n, &text));
        assert_eq!(d.outcome, Outcome::Refused);
        assert!(d.effects.changes.is_empty());
        assert!(d.effects.replay_mark.is_some());
        assert!(matches!(&d.effects.posts[..], [Post::Notice { .. }]), "through the current channel");
        assert_eq!(keys_in(&d), vec![nc::keys::INVALID_SWITCH.to_string()]);
    }

    #[test]
    fn modification_of_no_such_nym() {
        let k = Kit::new();
        let mut i = input(&k, &format!("Config:\nFrom: nobody2\n{}", block(1)));
        i.key = Some(supplied(&k, "nobody2", "FPR-NEW"));
        let d = run(&k, Signer::Unknown(vec![]), i);
        assert_eq!(d.outcome, Outcome::NoSuchNym);
        assert!(keys_in(&d).contains(&keys::NO_SUCH_NYM.to_string()));
    }

    #[test]
    fn modification_by_an_unknown_signer_is_held() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, Signer::Unknown(vec!["AAAA".into()]), modify_input(&k, &n, "Config:\nFrom: alice\n"));
        assert_eq!(d.outcome, Outcome::HeldUnknownSigner);
    }

    #[test]
    fn create_if_free_on_a_taken_name_modifies() {
        let k = Kit::new();
        let n = k.nym("alice");
        let mut i = modify_input(&k, &n, "Config:\nFrom: alice\nNym-Commands: create? +signsend\n");
        i.key = None;
        let d = run(&k, by_nym(&k, &n), i);
        assert_eq!(d.outcome, Outcome::Changed);
    }

    #[test]
    fn status_request_when_nothing_changes() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, by_nym(&k, &n), modify_input(&k, &n, "Config:\nFrom: alice\n"));
        assert_eq!(d.outcome, Outcome::Status);
        assert!(d.effects.changes.is_empty());
        let [Post::Notice { text, .. }] = &d.effects.posts[..] else { panic!() };
        assert!(text.contains("Flags:      +cryptrecv -signsend +acksend"), "{text}");
    }

    #[test]
    fn delete_erases_after_a_last_notice_and_ignores_blocks() {
        let k = Kit::new();
        let n = k.nym("alice");
        let text = "Config:\nFrom: alice\nNym-Commands: delete\nReply-Block: a=0,5\nx\n";
        let d = run(&k, by_nym(&k, &n), modify_input(&k, &n, text));
        assert_eq!(d.outcome, Outcome::Deleted);
        assert!(matches!(d.effects.changes[..], [Change::DeleteNym { id: 7 }]));
        assert!(matches!(&d.effects.posts[..], [Post::Notice { subject, .. }] if subject == "Nym deleted"));
    }

    #[test]
    fn key_rollover_replaces_the_key_and_same_fingerprint_refreshes() {
        let k = Kit::new();
        let n = k.nym("alice");
        let mut i = modify_input(&k, &n, "Config:\nFrom: alice\nPublic-Key:\n-----END\n");
        i.key = Some(supplied(&k, "alice", "FPR-ROLLED"));
        let d = run(&k, by_nym(&k, &n), i.clone());
        assert!(
            matches!(&d.effects.changes[..], [Change::ReplaceKey { id: 7, .. }]),
            "{:?}",
            d.effects.changes
        );
        i.key = Some(supplied(&k, "alice", "FPR-alice"));
        let d = run(&k, by_nym(&k, &n), i.clone());
        assert!(matches!(&d.effects.changes[..], [Change::UpdateCert { id: 7, .. }]));
        // The new key must pass the creation key checks.
        i.key = Some(supplied(&k, "bob", "FPR-ROLLED"));
        let d = run(&k, by_nym(&k, &n), i);
        assert_eq!(d.outcome, Outcome::Refused);
        assert_eq!(keys_in(&d), vec![keys::KEY_UID_MISMATCH.to_string()]);
    }

    #[test]
    fn drop_reply_blocks_goes_back_to_aam() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.active_blocks = 1;
        let mut i = modify_input(&k, &n, "Config:\nFrom: alice\nNym-Commands: drop-reply-blocks\n");
        i.active = vec![StoredBlock { set: None, text: "a\n\n".into() }];
        let d = run(&k, by_nym(&k, &n), i);
        assert!(matches!(&d.effects.changes[..], [Change::DropReplyBlocks { id: 7 }]));
        assert!(matches!(&d.effects.posts[..], [Post::Notice { .. }]));
    }

    #[test]
    fn minus_disable_resets_todays_units() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.flags |= flag::DISABLE;
        n.unit_count = 600;
        let d =
            run(&k, by_nym(&k, &n), modify_input(&k, &n, "Config:\nFrom: alice\nNym-Commands: -disable\n"));
        assert!(d
            .effects
            .changes
            .iter()
            .any(|c| matches!(c, Change::Units { id: 7, count: 0, day } if *day == super::super::quota::day_of(k.now))));
        assert!(d
            .effects
            .changes
            .iter()
            .any(|c| matches!(c, Change::UpdateOptions(u) if !u.has(flag::DISABLE))));
    }

    #[test]
    fn creation_names_follow_the_original_rule_and_ours() {
        for ok in ["al", "quill", "a-b_c", "x1234567890abcde"] {
            assert!(is_creation_name(ok), "{ok}");
        }
        for bad in ["a", "x1234567890abcdef", "_ab", "ab-", "a.b", "Quill"] {
            assert!(!is_creation_name(bad), "{bad}");
        }
    }
}
