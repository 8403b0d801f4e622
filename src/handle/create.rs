//! config@ with a key block: create a nym, refresh its key, or refuse
//! (PROTOCOL.md section 2).

use super::{
    notice_to, Addressee, Change, Decision, Effects, Guard, OnFail, Outcome, Post, Request, View, Wrapping,
};
use crate::openpgp::{KeyProblem, PgpCert, MAX_STORED, MAX_SUBKEYS};
use crate::protocol::address::{is_valid_nym_name, Service, NAME_MAX, NAME_MIN};
use crate::protocol::article::describe_options;
use crate::protocol::nym_commands::{flag, DEFAULT_ZAX};
use crate::protocol::options::{self, Change as Opt_, Opt};
use crate::store::Nym;

const EV: &str = "create";

/// The key block of a request, as the shell read it.
#[derive(Debug, Clone)]
pub enum KeyOffer {
    Malformed,
    NoKey,
    MoreThanOne,
    Problem(KeyProblem),
    /// Usable, but beyond the bounds of a stored key (too many subkeys,
    /// too large even with only the nym's own signatures).
    TooLarge(Box<Offered>),
    Valid(Box<Offered>),
}

/// A usable key and what the store knows about its address and itself.
#[derive(Debug, Clone)]
pub struct Offered {
    pub local: String,
    pub domain: String,
    pub fingerprint: String,
    /// Expiry of the key as uploaded (seconds).
    pub expires: Option<i64>,
    pub cert: PgpCert,
    pub keyids: Vec<String>,
    /// The nym at that address, if any.
    pub existing: Option<Nym>,
    /// Some nym (at another address) already holds this key.
    pub key_in_use: bool,
    /// When `existing` holds the same key: the two merged.
    pub refresh: Option<Refresh>,
}

#[derive(Debug, Clone)]
pub struct Refresh {
    pub cert: PgpCert,
    /// The merge left the stored key byte for byte as it was.
    pub unchanged: bool,
    /// Expiry of the merged key.
    pub expires: Option<i64>,
}

fn problem_outcome(p: &KeyProblem) -> Outcome {
    match p {
        KeyProblem::Invalid => Outcome::KeyInvalid,
        KeyProblem::Revoked => Outcome::KeyRevoked,
        KeyProblem::Expired => Outcome::KeyExpired,
        KeyProblem::NoEncryption => Outcome::KeyCannotEncrypt,
        KeyProblem::NoSigning => Outcome::KeyCannotSign,
        KeyProblem::NoAddress => Outcome::NoHostedUserId,
        KeyProblem::TwoAddresses => Outcome::TwoHostedUserIds,
    }
}

fn set_value(c: Option<&Opt_>) -> Option<String> {
    match c {
        Some(Opt_::Set(_, v)) => Some(v.clone()),
        _ => None,
    }
}

/// The "Ignored ..." lines for option lines that were not taken.
pub fn rejected_text(p: &options::Parsed) -> String {
    p.rejected.iter().map(|r| format!("Ignored an \"{}\" line: {}.\n", r.opt, r.reason)).collect()
}

/// A key beyond the bounds is refused, and the key that asked is told.
fn too_large(k: &Offered) -> Decision {
    let address = format!("{}@{}", k.local, k.domain);
    let post = Post::Notice {
        to: Addressee::Key { cert: Box::new(k.cert.clone()), wrap: Wrapping::default() },
        from: format!("config@{}", k.domain),
        address: address.clone(),
        subject: "Nym refused: key too large".into(),
        text: format!(
            "The key for {address} was not stored: a nym key may have at most {MAX_SUBKEYS} subkeys and,\n\
             with only its own signatures, at most {} KiB.\nMake a smaller key and ask again.\n",
            MAX_STORED / 1024
        ),
    };
    Decision::new(EV, Outcome::KeyTooLarge, Effects::none().post(post))
}

pub fn decide(v: &View, req: &Request, offer: KeyOffer) -> Decision {
    let k = match offer {
        KeyOffer::Malformed => return Decision::drop(EV, Outcome::MalformedKeyBlock),
        KeyOffer::NoKey => return Decision::drop(EV, Outcome::NoKeyInBlock),
        KeyOffer::MoreThanOne => return Decision::drop(EV, Outcome::MoreThanOneKey),
        KeyOffer::Problem(p) => return Decision::drop(EV, problem_outcome(&p)),
        KeyOffer::TooLarge(k) => return too_large(&k),
        KeyOffer::Valid(k) => k,
    };
    let opts = options::parse(&String::from_utf8_lossy(req.plaintext));
    let wrap = Wrapping {
        hsub: set_value(opts.get(Opt::Hsub)),
        subject: set_value(opts.get(Opt::Subject)),
        symmetric: set_value(opts.get(Opt::Symmetric)),
    };
    let acksend = !matches!(opts.get(Opt::Acksend), Some(Opt_::Off(_)));
    let address = format!("{}@{}", k.local, k.domain);
    // A refusal goes to the key that asked, under the subject it asked for.
    let refusal = |subject: &str, text: String| Post::Notice {
        to: Addressee::Key { cert: Box::new(k.cert.clone()), wrap: wrap.clone() },
        from: format!("config@{}", k.domain),
        address: address.clone(),
        subject: subject.to_string(),
        text,
    };

    if !is_valid_nym_name(&k.local) {
        let post = refusal(
            "Nym refused: invalid name",
            format!(
                "The name {address} cannot be a nym.\nA nym name has {NAME_MIN} to {NAME_MAX} characters: lowercase \
                 letters a-z, digits, and -, _ or . between them.\nYour key was not stored.\n"
            ),
        );
        return Decision::new(EV, Outcome::RefusedInvalidName, Effects::none().post(post));
    }
    if v.cfg.is_reserved(&k.local) {
        let post = refusal(
            "Nym refused: reserved name",
            format!("The name {address} is reserved and cannot be a nym.\nYour key was not stored.\n"),
        );
        return Decision::new(EV, Outcome::RefusedReserved, Effects::none().post(post));
    }
    match (&k.existing, &k.refresh) {
        (Some(n), Some(r)) if n.fingerprint == k.fingerprint => {
            // A refresh, or simply the second copy of the creation.
            if r.unchanged && k.expires == n.expires {
                // Zax applies a second copy signed by the nym's key as a
                // reconfiguration (its option lines count); an unsigned
                // copy stays silent.
                if matches!(&req.signer, super::Signer::Nym(m, _) if m.id == n.id && m.fingerprint == n.fingerprint)
                {
                    return super::reconfigure::decide(v, req);
                }
                return Decision::new(EV, Outcome::DuplicateCopy, Effects::mark());
            }
            let mut updated = n.clone();
            updated.cert = r.cert.clone();
            updated.expires = r.expires;
            let text = format!(
                "Your nym's key was refreshed. Options are unchanged.\n\n{}",
                describe_options(&updated)
            );
            let post = notice_to(&updated, Service::Config, "Nym key refreshed", text);
            let change = Change::UpdateCert { id: n.id, cert: Box::new(r.cert.clone()), expires: r.expires };
            Decision::new(EV, Outcome::KeyRefreshed, Effects::none().change(change).post(post))
        }
        (Some(_), _) => {
            let post = refusal(
                "Nym refused: name taken",
                format!("The name {address} is already taken by another key.\nYour key was not stored.\n"),
            );
            Decision::new(EV, Outcome::RefusedTaken, Effects::none().post(post))
        }
        (None, _) if k.key_in_use => Decision::drop(EV, Outcome::KeyAlreadyUsed),
        (None, _) => {
            let n = Nym {
                id: 0,
                local: k.local.clone(),
                domain: k.domain.clone(),
                fingerprint: k.fingerprint.clone(),
                cert: k.cert.clone(),
                expires: k.expires,
                created: v.now,
                hsub: wrap.hsub.clone(),
                subject: wrap.subject.clone(),
                symmetric: wrap.symmetric.clone(),
                flags: if acksend { DEFAULT_ZAX } else { DEFAULT_ZAX & !flag::ACKSEND },
                disabled: false,
                send_day: 0,
                send_count: 0,
                limit_told: false,
                name: None,
                unit_day: 0,
                unit_count: 0,
                had_active: true,
                active_blocks: 0,
                pending_blocks: 0,
            };
            let text = format!(
                "Your nym {} was created.\n\n{}\n{}\nFrom now on, sign every message to config@{d} and send@{d} with this key.\n",
                n.address(),
                describe_options(&n),
                rejected_text(&opts),
                d = n.domain
            );
            let post = notice_to(&n, Service::Config, "Nym created", text);
            let effects = Effects::none()
                .guard(
                    Guard::AddressFree { local: n.local.clone(), domain: n.domain.clone() },
                    OnFail::End(Outcome::DuplicateCopy),
                )
                .change(Change::InsertNym { nym: Box::new(n), keyids: k.keyids.clone() })
                .post(post);
            Decision::new(EV, Outcome::Created, effects)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::super::Signer;
    use super::*;

    fn offer(k: &Kit, local: &str) -> Offered {
        Offered {
            local: local.into(),
            domain: "nym.example".into(),
            fingerprint: format!("FPR-{local}"),
            expires: Some(k.now + 86400 * 365),
            cert: k.cert.clone(),
            keyids: vec!["KID".into()],
            existing: None,
            key_in_use: false,
            refresh: None,
        }
    }

    fn run(k: &Kit, text: &[u8], o: KeyOffer) -> Decision {
        decide(&k.view(), &k.request(Signer::None, text), o)
    }

    fn notice(d: &Decision) -> (&Addressee, &str, &str) {
        match &d.effects.posts[..] {
            [Post::Notice { to, subject, text, .. }] => (to, subject, text),
            other => panic!("expected one notice, got {other:?}"),
        }
    }

    #[test]
    fn create_stores_the_nym_with_its_options_and_confirms() {
        let k = Kit::new();
        let d = run(&k, b"hsub: panda\nacksend: no\n", KeyOffer::Valid(Box::new(offer(&k, "alice"))));
        assert_eq!(d.outcome, Outcome::Created);
        let Change::InsertNym { nym, keyids } = &d.effects.changes[0] else { panic!() };
        assert_eq!(nym.address(), "alice@nym.example");
        assert_eq!(nym.hsub.as_deref(), Some("panda"));
        assert!(!nym.acksend());
        assert_eq!(nym.expires, Some(k.now + 86400 * 365));
        assert_eq!(keyids, &vec!["KID".to_string()]);
        let (to, subject, text) = notice(&d);
        assert!(matches!(to, Addressee::Nym(n) if n.hsub.as_deref() == Some("panda")));
        assert_eq!(subject, "Nym created");
        assert!(text.contains("alice@nym.example was created"));
    }

    #[test]
    fn create_is_guarded_against_a_concurrent_copy() {
        let k = Kit::new();
        let d = run(&k, b"", KeyOffer::Valid(Box::new(offer(&k, "alice"))));
        assert_eq!(
            d.effects.guards,
            vec![(
                Guard::AddressFree { local: "alice".into(), domain: "nym.example".into() },
                OnFail::End(Outcome::DuplicateCopy)
            )]
        );
    }

    #[test]
    fn acksend_is_on_by_default() {
        let k = Kit::new();
        let d = run(&k, b"", KeyOffer::Valid(Box::new(offer(&k, "alice"))));
        let Change::InsertNym { nym, .. } = &d.effects.changes[0] else { panic!() };
        assert!(nym.acksend());
    }

    #[test]
    fn rejected_option_lines_are_reported_in_the_confirmation() {
        let k = Kit::new();
        let long = format!("hsub: {}\n", "x".repeat(65));
        let d = run(&k, long.as_bytes(), KeyOffer::Valid(Box::new(offer(&k, "alice"))));
        let (_, _, text) = notice(&d);
        assert!(text.contains("Ignored an \"hsub\" line: value longer than 64 characters."));
    }

    #[test]
    fn reserved_name_is_refused_to_the_key_that_asked() {
        let k = Kit::new();
        let d = run(&k, b"hsub: h\n", KeyOffer::Valid(Box::new(offer(&k, "postmaster"))));
        assert_eq!(d.outcome, Outcome::RefusedReserved);
        assert!(d.effects.changes.is_empty());
        let (to, subject, _) = notice(&d);
        assert_eq!(subject, "Nym refused: reserved name");
        assert!(matches!(to, Addressee::Key { wrap, .. } if wrap.hsub.as_deref() == Some("h")));
    }

    #[test]
    fn look_alike_names_are_refused_to_the_key_that_asked() {
        let k = Kit::new();
        for bad in [
            "c\u{43e}nfig",
            "al\u{200b}ice",
            "\u{ff53}\u{ff45}\u{ff4e}\u{ff44}",
            "config+x",
            "postmaster+x",
            "a",
        ] {
            let d = run(&k, b"", KeyOffer::Valid(Box::new(offer(&k, bad))));
            assert_eq!(d.outcome, Outcome::RefusedInvalidName, "{bad:?}");
            assert!(d.effects.changes.is_empty());
            assert_eq!(notice(&d).1, "Nym refused: invalid name");
        }
    }

    #[test]
    fn operator_reserved_name_is_refused() {
        let mut k = Kit::new();
        k.cfg.reserved = vec!["staff".into()];
        let d = run(&k, b"", KeyOffer::Valid(Box::new(offer(&k, "staff"))));
        assert_eq!(d.outcome, Outcome::RefusedReserved);
    }

    #[test]
    fn name_taken_by_another_key_is_refused_and_the_key_forgotten() {
        let k = Kit::new();
        let mut o = offer(&k, "alice");
        let mut other = k.nym("alice");
        other.fingerprint = "SOMEONE-ELSE".into();
        o.existing = Some(other);
        let d = run(&k, b"", KeyOffer::Valid(Box::new(o)));
        assert_eq!(d.outcome, Outcome::RefusedTaken);
        assert!(d.effects.changes.is_empty());
        assert_eq!(notice(&d).1, "Nym refused: name taken");
        assert!(matches!(notice(&d).0, Addressee::Key { .. }));
    }

    #[test]
    fn second_identical_copy_of_a_create_changes_nothing() {
        let k = Kit::new();
        let mut o = offer(&k, "alice");
        let n = k.nym("alice");
        o.expires = n.expires;
        o.refresh = Some(Refresh { cert: k.cert.clone(), unchanged: true, expires: n.expires });
        o.existing = Some(n);
        let d = run(&k, b"", KeyOffer::Valid(Box::new(o)));
        assert_eq!(d.outcome, Outcome::DuplicateCopy);
        assert!(d.effects.commit && d.effects.changes.is_empty() && d.effects.posts.is_empty());
    }

    #[test]
    fn a_second_signed_copy_of_a_create_is_applied_as_a_reconfiguration() {
        let k = Kit::new();
        let mut o = offer(&k, "alice");
        let n = k.nym("alice");
        o.fingerprint = n.fingerprint.clone();
        o.expires = n.expires;
        o.refresh = Some(Refresh { cert: k.cert.clone(), unchanged: true, expires: n.expires });
        o.existing = Some(n.clone());
        let text = b"hsub: tiger\n";
        let d = decide(&k.view(), &k.fresh(&n, text), KeyOffer::Valid(Box::new(o.clone())));
        assert_eq!(d.outcome, Outcome::Changed);
        assert!(
            matches!(&d.effects.changes[..], [Change::UpdateOptions(m)] if m.hsub.as_deref() == Some("tiger"))
        );
        // The same copy unsigned: silent, nothing changed.
        let d = run(&k, text, KeyOffer::Valid(Box::new(o)));
        assert_eq!(d.outcome, Outcome::DuplicateCopy);
        assert!(d.effects.changes.is_empty() && d.effects.posts.is_empty());
    }

    #[test]
    fn same_key_with_new_expiry_is_a_refresh() {
        let k = Kit::new();
        let mut o = offer(&k, "alice");
        let n = k.nym("alice");
        let later = Some(k.now + 2 * 365 * 86400);
        o.expires = later;
        o.refresh = Some(Refresh { cert: k.cert.clone(), unchanged: false, expires: later });
        o.existing = Some(n.clone());
        let d = run(&k, b"hsub: ignored-on-refresh\n", KeyOffer::Valid(Box::new(o)));
        assert_eq!(d.outcome, Outcome::KeyRefreshed);
        let Change::UpdateCert { id, expires, .. } = &d.effects.changes[0] else { panic!() };
        assert_eq!((*id, *expires), (n.id, later));
        let (to, subject, _) = notice(&d);
        assert_eq!(subject, "Nym key refreshed");
        assert!(matches!(to, Addressee::Nym(m) if m.hsub.is_none()));
    }

    #[test]
    fn key_already_used_by_another_nym_is_dropped() {
        let k = Kit::new();
        let mut o = offer(&k, "bob");
        o.key_in_use = true;
        let d = run(&k, b"", KeyOffer::Valid(Box::new(o)));
        assert_eq!(d.outcome, Outcome::KeyAlreadyUsed);
        assert!(!d.effects.commit);
    }

    #[test]
    fn unusable_keys_get_no_nym() {
        let k = Kit::new();
        for (p, o) in [
            (KeyProblem::Invalid, Outcome::KeyInvalid),
            (KeyProblem::Revoked, Outcome::KeyRevoked),
            (KeyProblem::Expired, Outcome::KeyExpired),
            (KeyProblem::NoEncryption, Outcome::KeyCannotEncrypt),
            (KeyProblem::NoSigning, Outcome::KeyCannotSign),
            (KeyProblem::NoAddress, Outcome::NoHostedUserId),
            (KeyProblem::TwoAddresses, Outcome::TwoHostedUserIds),
        ] {
            let d = run(&k, b"", KeyOffer::Problem(p));
            assert_eq!(d.outcome, o);
            assert!(!d.effects.commit);
        }
    }

    #[test]
    fn a_key_beyond_the_bounds_is_refused_with_a_notice() {
        let k = Kit::new();
        let d = run(&k, b"", KeyOffer::TooLarge(Box::new(offer(&k, "alice"))));
        assert_eq!(d.outcome, Outcome::KeyTooLarge);
        assert!(d.effects.changes.is_empty());
        assert_eq!(notice(&d).1, "Nym refused: key too large");
    }

    #[test]
    fn malformed_or_plural_key_blocks_are_dropped() {
        let k = Kit::new();
        assert_eq!(run(&k, b"", KeyOffer::Malformed).outcome, Outcome::MalformedKeyBlock);
        assert_eq!(run(&k, b"", KeyOffer::NoKey).outcome, Outcome::NoKeyInBlock);
        assert_eq!(run(&k, b"", KeyOffer::MoreThanOne).outcome, Outcome::MoreThanOneKey);
    }
}
