//! Mail from anyone to NAME@D: the whole message, as received, goes to the
//! nym in an article (PROTOCOL.md section 5).

use super::{Decision, Effects, Guard, OnFail, Outcome, Post, View};
use crate::exit::Failure;
use crate::store::Nym;

/// `nym` is the row at the recipient's address, if any.
pub fn decide(v: &View, nym: Option<Nym>) -> Result<Decision, Failure> {
    let Some(n) = nym else { return Err(Failure::NoUser) };
    if n.disabled || n.expired(v.now) {
        return Err(Failure::NoUser);
    }
    let guard = Guard::NymEnabled { id: n.id, fingerprint: n.fingerprint.clone() };
    let effects = Effects::none().guard(guard, OnFail::NoUser).post(Post::Inbound(Box::new(n)));
    Ok(Decision::new("inbound", Outcome::Posted, effects))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;

    #[test]
    fn mail_to_an_unknown_nym_is_no_user() {
        let k = Kit::new();
        assert!(matches!(decide(&k.view(), None), Err(Failure::NoUser)));
    }

    #[test]
    fn mail_to_a_disabled_nym_is_no_user() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.disabled = true;
        assert!(matches!(decide(&k.view(), Some(n)), Err(Failure::NoUser)));
    }

    #[test]
    fn mail_to_an_expired_nym_is_no_user() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.expires = Some(k.now);
        assert!(matches!(decide(&k.view(), Some(n)), Err(Failure::NoUser)));
    }

    #[test]
    fn mail_to_a_nym_is_posted_to_it_if_it_is_still_enabled_under_the_lock() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = decide(&k.view(), Some(n.clone())).unwrap();
        assert_eq!(d.outcome, Outcome::Posted);
        assert!(matches!(&d.effects.posts[..], [Post::Inbound(m)] if m.id == n.id));
        assert_eq!(
            d.effects.guards,
            vec![(Guard::NymEnabled { id: n.id, fingerprint: n.fingerprint }, OnFail::NoUser)]
        );
    }

    #[test]
    fn a_nym_without_expiry_never_expires() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.expires = None;
        assert!(decide(&k.view(), Some(n)).is_ok());
    }
}
