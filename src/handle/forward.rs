//! postmaster@ and abuse@: mail for the people who run the server, passed
//! on unchanged to the operator's address. Without one (`[operator]
//! address = ""`) nobody is there to read it: exit 67, so that the MTA
//! bounces instead of nymgate queueing mail for an empty recipient
//! (REPLY-BLOCKS.md section 11: "Empty: 67").

use super::{Decision, Effects, Outcome, Post, View};
use crate::exit::Failure;
use crate::protocol::article::new_msgid;
use crate::store::{Kind, OutItem};

pub fn decide(v: &View, domain: &str, raw: &[u8]) -> Result<Decision, Failure> {
    if v.cfg.operator.address.trim().is_empty() {
        return Err(Failure::NoUser);
    }
    let item = OutItem {
        kind: Kind::Mail,
        // A bounce of the forward must not come back into the server: the
        // sender is an address the recipient table does not list.
        env_from: format!("MAILER-DAEMON@{domain}"),
        env_to: vec![v.cfg.operator.address.clone()],
        msgid: new_msgid(v.cfg),
        body: raw.to_vec(),
        nym: None,
    };
    Ok(Decision::new("forward", Outcome::Forwarded, Effects::none().post(Post::Item(item))))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;

    #[test]
    fn role_mail_goes_unchanged_to_the_operator() {
        let mut k = Kit::new();
        k.cfg.operator.address = "ops@example.org".into();
        let d = decide(&k.view(), "nym.example", b"Subject: spam report\n\nbody\n").unwrap();
        assert_eq!(d.outcome, Outcome::Forwarded);
        let [Post::Item(i)] = &d.effects.posts[..] else { panic!() };
        assert_eq!(i.env_to, vec!["ops@example.org"]);
        assert_eq!(i.body, b"Subject: spam report\n\nbody\n");
        assert_eq!(i.env_from, "MAILER-DAEMON@nym.example");
        assert!(d.effects.commit);
    }

    #[test]
    fn role_mail_without_an_operator_address_is_no_such_user() {
        let mut k = Kit::new();
        for empty in ["", "  "] {
            k.cfg.operator.address = empty.into();
            let r = decide(&k.view(), "nym.example", b"Subject: x\n\nbody\n");
            assert!(matches!(r, Err(Failure::NoUser)), "{empty:?}");
        }
    }
}
