//! Mail from anyone to NAME@D: the whole message, as received, goes to the
//! nym in an article (PROTOCOL.md section 5), or through its confirmed
//! reply blocks ([`super::inblocks`]), after the refusals on arrival of
//! REPLY-BLOCKS.md section 7.5, in order: the operator's lock (67), the
//! holder's `disable` (69, costing a unit: [`super::inblocks::refusal`]),
//! `nobcc` (77).

use super::{Decision, Effects, Guard, OnFail, Outcome, Post, View};
use crate::exit::Failure;
use crate::protocol::address::split_address;
use crate::protocol::nym_commands::flag;
use crate::store::Nym;

/// `nym` is the row at the recipient's address, if any.
pub fn decide(v: &View, nym: Option<Nym>) -> Result<Decision, Failure> {
    let Some(n) = nym else { return Err(Failure::NoUser) };
    if n.disabled || n.expired(v.now) {
        return Err(Failure::NoUser);
    }
    if n.has(flag::DISABLE) {
        return Err(Failure::NymDisabled);
    }
    let guard = Guard::NymEnabled { id: n.id, fingerprint: n.fingerprint.clone() };
    let effects = Effects::none().guard(guard, OnFail::NoUser).post(Post::Inbound(Box::new(n)));
    Ok(Decision::new("inbound", Outcome::Posted, effects))
}

/// Whether mail to the nym must name it in To/Cc (`nobcc`, and no
/// `+ext` in the recipient): the shell then reads the header first.
pub fn needs_recipients(n: &Nym, ext: bool) -> bool {
    n.has(flag::NOBCC) && !ext
}

/// Whether a message header names `address` as a recipient: in
/// `Resent-To`/`Resent-Cc` if the header has any, else in `To`/`Cc`;
/// parsed addresses, compared without case.
pub fn names_recipient(header: &[u8], address: &str) -> bool {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(header) else { return false };
    let want = split_address(address);
    let list = |name: &str| -> Vec<String> {
        msg.header_values(name)
            .filter_map(|v| v.as_address())
            .flat_map(|a| a.iter().filter_map(|x| x.address().map(str::to_string)).collect::<Vec<_>>())
            .collect()
    };
    let resent: Vec<String> = list("Resent-To").into_iter().chain(list("Resent-Cc")).collect();
    let seen = if msg.header_values("Resent-To").next().is_some()
        || msg.header_values("Resent-Cc").next().is_some()
    {
        resent
    } else {
        list("To").into_iter().chain(list("Cc")).collect()
    };
    want.is_some() && seen.iter().any(|a| split_address(a) == want)
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
    fn refusal_disable_exits_69() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.flags |= flag::DISABLE;
        assert!(matches!(decide(&k.view(), Some(n.clone())), Err(Failure::NymDisabled)));
        // The operator's lock comes first.
        n.disabled = true;
        assert!(matches!(decide(&k.view(), Some(n)), Err(Failure::NoUser)));
    }

    #[test]
    fn refusal_nobcc_only_without_extension() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        assert!(!needs_recipients(&n, false));
        n.flags |= flag::NOBCC;
        assert!(needs_recipients(&n, false));
        assert!(!needs_recipients(&n, true));
    }

    #[test]
    fn refusal_nobcc_compares_parsed_addresses() {
        let a = "alice@nym.example";
        assert!(names_recipient(b"To: Alice <ALICE@Nym.Example>\nSubject: x\n\n", a));
        assert!(names_recipient(b"To: bob@x.example\nCc: \"a, b\" <alice@nym.example>\n\n", a));
        assert!(!names_recipient(b"To: bob@x.example\nSubject: alice@nym.example\n\n", a));
        assert!(
            !names_recipient(b"To: \"alice@nym.example\" <bob@x.example>\n\n", a),
            "a word is not an address"
        );
        assert!(!names_recipient(b"To: malice@nym.example\n\n", a));
        assert!(!names_recipient(b"Subject: none\n\n", a));
    }

    #[test]
    fn refusal_nobcc_resent_fields_replace_to_and_cc() {
        let a = "alice@nym.example";
        assert!(!names_recipient(b"To: alice@nym.example\nResent-To: other@x.example\n\n", a));
        assert!(names_recipient(b"To: other@x.example\nResent-Cc: alice@nym.example\n\n", a));
    }

    #[test]
    fn a_nym_without_expiry_never_expires() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.expires = None;
        assert!(decide(&k.view(), Some(n)).is_ok());
    }
}
