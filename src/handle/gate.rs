//! The checks every signed request passes before its handler sees it
//! (PROTOCOL.md section 7): who signed, whether that nym may act, replay,
//! the signature's age; and holding messages from keys not known yet.

use super::{notice_to, Decision, Effects, Outcome, Request, Sig, Signer, View};
use crate::protocol::address::Service;
use crate::store::Nym;

/// Pass a signed request on to its handler, or end it here.
pub fn signed<'r>(v: &View, service: Service, req: &'r Request) -> Result<(&'r Nym, &'r Sig), Box<Decision>> {
    let ev = service.event();
    match &req.signer {
        Signer::Nym(n, sig) => {
            if n.disabled || n.expired(v.now) {
                return Err(Box::new(Decision::drop(ev, Outcome::NymDisabledOrExpired)));
            }
            if sig.seen {
                return Err(Box::new(Decision::drop(ev, Outcome::ReplayedSignature)));
            }
            if sig.meant_for_others {
                return Err(Box::new(Decision::drop(ev, Outcome::SignedForSomeoneElse)));
            }
            if let Some(why) = age_problem(v, sig) {
                let text = format!(
                    "Your message to {ev}@{} was refused: its signature is {}.\n\
                     Signatures must be dated within the last {} days and not in the future.\n\
                     Nothing was done. Sign the request again and resend it.\n",
                    n.domain,
                    match why {
                        Outcome::SignatureTooOld => "too old",
                        Outcome::SignatureFromFuture => "dated in the future",
                        _ => "undated",
                    },
                    v.cfg.send.replay_window / 86400
                );
                let post = notice_to(n, Service::Config, "Request refused: signature date", text);
                return Err(Box::new(Decision::new(ev, why, Effects::none().post(post))));
            }
            Ok((n, sig))
        }
        Signer::Unknown(keyids) => Err(Box::new(hold(v, ev, req, keyids))),
        Signer::NotANym => Err(Box::new(Decision::drop(ev, Outcome::SignerNotANym))),
        Signer::Bad => Err(Box::new(Decision::drop(ev, Outcome::BadSignature))),
        Signer::None => Err(Box::new(Decision::drop(
            ev,
            if service == Service::Config { Outcome::UnsignedWithoutKey } else { Outcome::Unsigned },
        ))),
    }
}

/// A signature outside the accepted window: too old, from the future, or
/// undated.
pub fn age_problem(v: &View, sig: &Sig) -> Option<Outcome> {
    let Some(created) = sig.created else { return Some(Outcome::SignatureUndated) };
    if created < v.now - v.cfg.send.replay_window as i64 {
        return Some(Outcome::SignatureTooOld);
    }
    if created > v.now + v.cfg.send.future_skew as i64 {
        return Some(Outcome::SignatureFromFuture);
    }
    None
}

/// Hold a signed message from a key we do not know yet: it runs again if
/// a nym with that key is created in time.
pub fn hold(v: &View, ev: &'static str, req: &Request, keyids: &[String]) -> Decision {
    if keyids.is_empty() || v.cfg.send.hold_time == 0 {
        return Decision::drop(ev, Outcome::UnknownSignerDropped);
    }
    let change = super::Change::Hold {
        recipient: req.recipient.to_string(),
        raw: req.raw.to_vec(),
        keyids: keyids.to_vec(),
        until: v.now + v.cfg.send.hold_time as i64,
    };
    Decision::new(ev, Outcome::HeldUnknownSigner, Effects::none().change(change))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{Change, Post};
    use super::*;

    #[test]
    fn disabled_nym_is_refused_silently() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.disabled = true;
        let req = k.signed_by(&n, k.sig(k.now - 10), b"");
        let d = signed(&k.view(), Service::Send, &req).unwrap_err();
        assert_eq!(d.outcome, Outcome::NymDisabledOrExpired);
        assert!(!d.effects.commit);
    }

    #[test]
    fn expired_nym_is_refused_silently() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.expires = Some(k.now - 1);
        let req = k.signed_by(&n, k.sig(k.now - 10), b"");
        assert_eq!(
            signed(&k.view(), Service::Config, &req).unwrap_err().outcome,
            Outcome::NymDisabledOrExpired
        );
    }

    #[test]
    fn replayed_signature_is_dropped() {
        let k = Kit::new();
        let n = k.nym("alice");
        let mut s = k.sig(k.now - 10);
        s.seen = true;
        let d = signed(&k.view(), Service::Send, &k.signed_by(&n, s, b"")).unwrap_err();
        assert_eq!(d.outcome, Outcome::ReplayedSignature);
        assert!(d.effects.posts.is_empty());
    }

    #[test]
    fn text_signed_for_someone_else_is_refused() {
        let k = Kit::new();
        let n = k.nym("alice");
        let mut s = k.sig(k.now - 10);
        s.meant_for_others = true;
        let d = signed(&k.view(), Service::Config, &k.signed_by(&n, s, b"delete: yes\n")).unwrap_err();
        assert_eq!(d.outcome, Outcome::SignedForSomeoneElse);
        assert!(!d.effects.commit);
    }

    #[test]
    fn signature_older_than_the_window_is_refused_with_a_notice() {
        let k = Kit::new();
        let n = k.nym("alice");
        let old = k.now - k.cfg.send.replay_window as i64 - 1;
        let d = signed(&k.view(), Service::Send, &k.signed_by(&n, k.sig(old), b"")).unwrap_err();
        assert_eq!(d.outcome, Outcome::SignatureTooOld);
        let Post::Notice { text, from, .. } = &d.effects.posts[0] else { panic!() };
        assert!(text.contains("too old"));
        assert_eq!(from, "config@nym.example");
    }

    #[test]
    fn signature_at_the_edge_of_the_window_passes() {
        let k = Kit::new();
        let n = k.nym("alice");
        let edge = k.now - k.cfg.send.replay_window as i64;
        assert!(signed(&k.view(), Service::Send, &k.signed_by(&n, k.sig(edge), b"")).is_ok());
    }

    #[test]
    fn signature_from_the_future_beyond_the_skew_is_refused() {
        let k = Kit::new();
        let n = k.nym("alice");
        let ahead = k.now + k.cfg.send.future_skew as i64 + 1;
        let d = signed(&k.view(), Service::Config, &k.signed_by(&n, k.sig(ahead), b"")).unwrap_err();
        assert_eq!(d.outcome, Outcome::SignatureFromFuture);
        let within = k.now + k.cfg.send.future_skew as i64;
        assert!(signed(&k.view(), Service::Config, &k.signed_by(&n, k.sig(within), b"")).is_ok());
    }

    #[test]
    fn undated_signature_is_refused() {
        let k = Kit::new();
        let n = k.nym("alice");
        let mut s = k.sig(0);
        s.created = None;
        let d = signed(&k.view(), Service::Send, &k.signed_by(&n, s, b"")).unwrap_err();
        assert_eq!(d.outcome, Outcome::SignatureUndated);
    }

    #[test]
    fn unknown_signer_is_held_until_the_hold_time() {
        let k = Kit::new();
        let req = k.request(Signer::Unknown(vec!["AAAA".into()]), b"x");
        let d = signed(&k.view(), Service::Send, &req).unwrap_err();
        assert_eq!(d.outcome, Outcome::HeldUnknownSigner);
        let Change::Hold { until, keyids, .. } = &d.effects.changes[0] else { panic!() };
        assert_eq!(*until, k.now + k.cfg.send.hold_time as i64);
        assert_eq!(keyids, &vec!["AAAA".to_string()]);
    }

    #[test]
    fn holding_switched_off_drops_unknown_signers() {
        let mut k = Kit::new();
        k.cfg.send.hold_time = 0;
        let req = k.request(Signer::Unknown(vec!["AAAA".into()]), b"x");
        let d = signed(&k.view(), Service::Send, &req).unwrap_err();
        assert_eq!(d.outcome, Outcome::UnknownSignerDropped);
        assert!(!d.effects.commit);
    }

    #[test]
    fn unsigned_config_request_without_key_is_dropped() {
        let k = Kit::new();
        let d = signed(&k.view(), Service::Config, &k.request(Signer::None, b"hsub: x")).unwrap_err();
        assert_eq!(d.outcome, Outcome::UnsignedWithoutKey);
        let d = signed(&k.view(), Service::Send, &k.request(Signer::None, b"To: a@b")).unwrap_err();
        assert_eq!(d.outcome, Outcome::Unsigned);
    }

    #[test]
    fn bad_signature_and_foreign_signer_are_dropped() {
        let k = Kit::new();
        assert_eq!(
            signed(&k.view(), Service::Send, &k.request(Signer::Bad, b"")).unwrap_err().outcome,
            Outcome::BadSignature
        );
        assert_eq!(
            signed(&k.view(), Service::Config, &k.request(Signer::NotANym, b"")).unwrap_err().outcome,
            Outcome::SignerNotANym
        );
    }
}
