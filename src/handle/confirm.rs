//! Mail to `confirm+COOKIE@D` (REPLY-BLOCKS.md section 6.3): any mail
//! there within `confirm_timeout` activates the pending set the cookie
//! belongs to, and "reply block confirmed" goes through it.

use super::{Addressee, Blocks, Change, Decision, Effects, Guard, OnFail, Outcome, Post, View};
use crate::exit::Failure;
use crate::protocol::nym_commands::flag;
use crate::protocol::reply_block::cookie_hash;
use crate::store::{Nym, PendingSet, StoredBlock};

const EV: &str = "confirm";

/// The pending set a cookie found, with its nym and blocks.
#[derive(Debug, Clone)]
pub struct Found {
    pub set: PendingSet,
    pub nym: Nym,
    pub blocks: Vec<StoredBlock>,
}

/// Whether a mail was sent by a machine that answers mail: a null or
/// `MAILER-DAEMON` envelope sender, or `Auto-Submitted` other than `no`.
/// Such mail never confirms (an autoresponder cannot confirm a block
/// aimed at it).
pub fn is_automatic(sender: Option<&[u8]>, auto_submitted: Option<&str>) -> bool {
    let null = sender.is_some_and(|s| {
        let s = s.trim_ascii();
        s.is_empty() || s == b"<>"
    });
    let daemon = sender.is_some_and(|s| {
        let local = s.split(|b| *b == b'@').next().unwrap_or(b"");
        let local = local.strip_prefix(b"<").unwrap_or(local);
        local.eq_ignore_ascii_case(b"mailer-daemon")
    });
    let auto = auto_submitted.is_some_and(|v| {
        let word = v.split(';').next().unwrap_or("").trim();
        !word.eq_ignore_ascii_case("no")
    });
    null || daemon || auto
}

/// `ext`: what followed `confirm+` (None: plain `confirm@D`); `found`:
/// the pending set of a well-formed cookie, if the store has it.
pub fn decide(
    v: &View,
    ext: Option<&str>,
    automatic: bool,
    found: Option<Found>,
) -> Result<Decision, Failure> {
    match ext {
        None | Some("") => return Err(Failure::NoUser),
        Some(_) => {}
    }
    if automatic {
        return Ok(Decision::drop(EV, Outcome::ConfirmIgnoredAuto));
    }
    let Some(f) = found else { return Ok(Decision::drop(EV, Outcome::ConfirmUnknown)) };
    if f.set.created + v.cfg.reply_blocks.confirm_timeout as i64 <= v.now {
        return Ok(Decision::drop(EV, Outcome::ConfirmExpired));
    }
    if f.nym.disabled || f.nym.expired(v.now) || f.blocks.is_empty() {
        return Ok(Decision::drop(EV, Outcome::ConfirmUnknown));
    }
    let n = &f.nym;
    let text =
        format!("Your reply blocks are confirmed: mail to {} now reaches you through them.\n", n.address());
    let post = Post::ViaBlocks {
        to: Addressee::Nym(Box::new(n.clone())),
        blocks: Blocks::Set(f.blocks.clone()),
        encrypt: n.has(flag::CRYPTRECV),
        from: format!("config@{}", n.domain),
        address: n.address(),
        subject: "Reply block confirmed".into(),
        text,
        reply_to: None,
    };
    let hash = match ext.and_then(crate::protocol::reply_block::parse_cookie) {
        Some(c) => cookie_hash(&c),
        None => return Ok(Decision::drop(EV, Outcome::ConfirmUnknown)),
    };
    let effects = Effects::none()
        .guard(Guard::PendingCookie { hash }, OnFail::End(Outcome::ConfirmUnknown))
        .change(Change::ActivatePending { id: n.id })
        .post(post);
    Ok(Decision::new(EV, Outcome::Confirmed, effects))
}

/// A pending set older than `confirm_timeout` (`nymgate flush`): a nym a
/// `Config:` request made that never had a confirmed set is erased (its
/// name is free again) and told through alt.anonymous.messages; any
/// other loses the pending set and is told through its channel.
pub fn expiry(n: &Nym, active: &[StoredBlock]) -> Decision {
    const EXP: &str = "confirm_expiry";
    if !n.had_active && active.is_empty() {
        let text = format!(
            "The reply blocks of {} were never confirmed, so the nym is erased with its key;
             its name is free again. To try again, send a new Config: creation.
",
            n.address()
        );
        let post = super::notice_to(
            n,
            crate::protocol::address::Service::Config,
            "Nym erased: blocks never confirmed",
            text,
        );
        return Decision::new(
            EXP,
            Outcome::Deleted,
            Effects::none().change(Change::DeleteNym { id: n.id }).post(post),
        );
    }
    let text = format!(
        "The new reply blocks of {} were not confirmed in time and are dropped.
         Nothing else changed.
",
        n.address()
    );
    let post = super::nym_commands::current(n, active, "Reply blocks expired", text);
    Decision::new(
        EXP,
        Outcome::ConfirmExpired,
        Effects::none().change(Change::ExpirePending { id: n.id }).post(post),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;

    const COOKIE: &str = "0123456789abcdef0123456789abcdef";

    fn found(k: &Kit, created: i64) -> Found {
        Found {
            set: PendingSet { nym_id: 7, created },
            nym: k.nym("quill"),
            blocks: vec![StoredBlock { set: None, text: "::\nAnon-To: a@b.example\n\n".into() }],
        }
    }

    #[test]
    fn confirm_without_cookie_is_no_user() {
        let k = Kit::new();
        assert!(matches!(decide(&k.view(), None, false, None), Err(Failure::NoUser)));
        assert!(matches!(decide(&k.view(), Some(""), false, None), Err(Failure::NoUser)));
        assert_eq!(Failure::NoUser.exit_code(), 67);
    }

    #[test]
    fn confirm_activates_the_pending_set_and_tells_through_it() {
        let k = Kit::new();
        let d = decide(&k.view(), Some(&COOKIE.to_ascii_uppercase()), false, Some(found(&k, k.now - 10)))
            .unwrap();
        assert_eq!(d.outcome, Outcome::Confirmed);
        assert!(matches!(d.effects.changes[..], [Change::ActivatePending { id: 7 }]));
        assert_eq!(
            d.effects.guards,
            vec![(Guard::PendingCookie { hash: cookie_hash(COOKIE) }, OnFail::End(Outcome::ConfirmUnknown))]
        );
        let [Post::ViaBlocks { blocks: Blocks::Set(b), subject, .. }] = &d.effects.posts[..] else {
            panic!()
        };
        assert_eq!((b.len(), subject.as_str()), (1, "Reply block confirmed"));
    }

    #[test]
    fn confirm_unknown_or_used_cookie_exits_0_without_effect() {
        let k = Kit::new();
        let d = decide(&k.view(), Some(COOKIE), false, None).unwrap();
        assert_eq!(d.outcome, Outcome::ConfirmUnknown);
        assert!(!d.effects.commit);
        let d = decide(&k.view(), Some("not-a-cookie"), false, None).unwrap();
        assert_eq!(d.outcome, Outcome::ConfirmUnknown);
    }

    #[test]
    fn confirm_after_the_timeout_is_expired() {
        let k = Kit::new();
        let t = k.cfg.reply_blocks.confirm_timeout as i64;
        let d = decide(&k.view(), Some(COOKIE), false, Some(found(&k, k.now - t))).unwrap();
        assert_eq!(d.outcome, Outcome::ConfirmExpired);
        assert!(!d.effects.commit);
        let d = decide(&k.view(), Some(COOKIE), false, Some(found(&k, k.now - t + 1))).unwrap();
        assert_eq!(d.outcome, Outcome::Confirmed);
    }

    #[test]
    fn confirm_ignores_automatic_mail_and_keeps_the_cookie() {
        let k = Kit::new();
        let d = decide(&k.view(), Some(COOKIE), true, Some(found(&k, k.now))).unwrap();
        assert_eq!(d.outcome, Outcome::ConfirmIgnoredAuto);
        assert!(d.effects.changes.is_empty() && !d.effects.commit);
    }

    #[test]
    fn expiry_erases_a_config_nym_that_never_had_active_blocks() {
        let k = Kit::new();
        let mut n = k.nym("quill");
        n.had_active = false;
        let d = expiry(&n, &[]);
        assert!(matches!(d.effects.changes[..], [Change::DeleteNym { id: 7 }]));
        assert!(matches!(&d.effects.posts[..], [Post::Notice { .. }]), "told through a.a.m");
    }

    #[test]
    fn expiry_of_other_nyms_drops_only_the_pending_set() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = expiry(&n, &[]);
        assert!(matches!(d.effects.changes[..], [Change::ExpirePending { id: 7 }]));
        assert!(matches!(&d.effects.posts[..], [Post::Notice { .. }]));
        let mut m = k.nym("quill");
        m.had_active = true;
        m.active_blocks = 1;
        let active = vec![StoredBlock { set: None, text: "a\n\n".into() }];
        let d = expiry(&m, &active);
        assert!(matches!(d.effects.changes[..], [Change::ExpirePending { id: 7 }]));
        assert!(
            matches!(&d.effects.posts[..], [Post::ViaBlocks { blocks: Blocks::Set(_), .. }]),
            "through its blocks"
        );
    }

    #[test]
    fn confirm_automatic_senders() {
        assert!(is_automatic(Some(b""), None));
        assert!(is_automatic(Some(b"<>"), None));
        assert!(is_automatic(Some(b"MAILER-DAEMON@mx.example"), None));
        assert!(is_automatic(Some(b"mailer-daemon"), None));
        assert!(is_automatic(Some(b"a@b.example"), Some("auto-replied")));
        assert!(is_automatic(None, Some("auto-generated; type=x")));
        assert!(!is_automatic(Some(b"a@b.example"), Some(" No ")));
        assert!(!is_automatic(Some(b"a@b.example"), None));
        assert!(!is_automatic(None, None));
    }
}
