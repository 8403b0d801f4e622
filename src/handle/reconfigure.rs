//! config@ signed by a nym: change options, report status, or delete
//! (PROTOCOL.md section 3).

use super::create::rejected_text;
use super::{gate, notice_to, Change, Decision, Effects, Guard, OnFail, Outcome, Request, View};
use crate::protocol::address::Service;
use crate::protocol::article::describe_options;
use crate::protocol::nym_commands::flag;
use crate::protocol::options::{self, Change as Opt_, Opt};

const EV: &str = "config";

pub fn decide(v: &View, req: &Request) -> Decision {
    let (n, sig) = match gate::signed(v, Service::Config, req) {
        Ok(p) => p,
        Err(d) => return *d,
    };
    let opts = options::parse(&String::from_utf8_lossy(req.plaintext));
    let base = Effects::none().replay(sig.digest.clone()).guard(
        Guard::NymPresent { id: n.id, fingerprint: n.fingerprint.clone() },
        OnFail::End(Outcome::NymGone),
    );
    if matches!(opts.get(Opt::Delete), Some(Opt_::On(_))) {
        let text = format!(
            "Your nym {} is deleted, with its key and options.\nThis is the last message you get for it.\n",
            n.address()
        );
        let post = notice_to(n, Service::Config, "Nym deleted", text);
        return Decision::new(EV, Outcome::Deleted, base.change(Change::DeleteNym { id: n.id }).post(post));
    }
    if opts.is_empty() {
        let text = format!("Status of your nym:\n\n{}\n{}", describe_options(n), rejected_text(&opts));
        return Decision::new(
            EV,
            Outcome::Status,
            base.post(notice_to(n, Service::Config, "Nym status", text)),
        );
    }
    let mut updated = n.clone();
    for c in &opts.changes {
        match c {
            Opt_::Set(Opt::Hsub, v) => updated.hsub = Some(v.clone()),
            Opt_::Set(Opt::Subject, v) => updated.subject = Some(v.clone()),
            Opt_::Set(Opt::Symmetric, v) => updated.symmetric = Some(v.clone()),
            Opt_::Off(Opt::Hsub) => updated.hsub = None,
            Opt_::Off(Opt::Subject) => updated.subject = None,
            Opt_::Off(Opt::Symmetric) => updated.symmetric = None,
            Opt_::On(Opt::Acksend) => updated.set_flag(flag::ACKSEND, true),
            Opt_::Off(Opt::Acksend) => updated.set_flag(flag::ACKSEND, false),
            _ => {}
        }
    }
    let text = format!(
        "Your nym's options were changed.\n\n{}\n{}",
        describe_options(&updated),
        rejected_text(&opts)
    );
    // The confirmation already follows the new options: the holder asked
    // for them.
    let post = notice_to(&updated, Service::Config, "Nym options changed", text);
    Decision::new(EV, Outcome::Changed, base.change(Change::UpdateOptions(Box::new(updated))).post(post))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::super::{Addressee, Post};
    use super::*;
    use crate::store::Nym;

    fn run(k: &Kit, n: &Nym, text: &str) -> Decision {
        decide(&k.view(), &k.fresh(n, text.as_bytes()))
    }

    fn options_after(d: &Decision) -> Nym {
        match &d.effects.changes[..] {
            [Change::UpdateOptions(n)] => (**n).clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn option_change_updates_the_nym_and_confirms_under_the_new_options() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, &n, "hsub: panda\nsymmetric: s3cret\n");
        assert_eq!(d.outcome, Outcome::Changed);
        let u = options_after(&d);
        assert_eq!((u.hsub.as_deref(), u.symmetric.as_deref()), (Some("panda"), Some("s3cret")));
        let Post::Notice { to: Addressee::Nym(to), subject, .. } = &d.effects.posts[0] else { panic!() };
        assert_eq!(to.hsub.as_deref(), Some("panda"));
        assert_eq!(subject, "Nym options changed");
    }

    #[test]
    fn off_words_unset_text_options() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.hsub = Some("old".into());
        n.subject = Some("s".into());
        let u = options_after(&run(&k, &n, "hsub: none\nsubject: 0\n"));
        assert_eq!((u.hsub, u.subject), (None, None));
    }

    #[test]
    fn acksend_switches_off_and_on() {
        let k = Kit::new();
        let n = k.nym("alice");
        assert!(!options_after(&run(&k, &n, "acknowledge-send: no\n")).acksend());
        let mut off = n.clone();
        off.set_flag(crate::protocol::nym_commands::flag::ACKSEND, false);
        assert!(options_after(&run(&k, &off, "acksend: yes\n")).acksend());
    }

    #[test]
    fn repeated_option_first_wins() {
        let k = Kit::new();
        let u = options_after(&run(&k, &k.nym("alice"), "hsub: first\nhash-subject: second\n"));
        assert_eq!(u.hsub.as_deref(), Some("first"));
    }

    #[test]
    fn empty_signed_request_is_a_status_request() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "");
        assert_eq!(d.outcome, Outcome::Status);
        assert!(d.effects.changes.is_empty());
        let Post::Notice { subject, text, .. } = &d.effects.posts[0] else { panic!() };
        assert_eq!(subject, "Nym status");
        assert!(text.contains("Nym:        alice@nym.example"));
    }

    #[test]
    fn text_without_option_lines_is_a_status_request() {
        let k = Kit::new();
        assert_eq!(run(&k, &k.nym("alice"), "hello there\nno options here\n").outcome, Outcome::Status);
    }

    #[test]
    fn delete_yes_erases_the_nym_after_a_last_notice() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, &n, "delete: yes\n");
        assert_eq!(d.outcome, Outcome::Deleted);
        assert!(matches!(d.effects.changes[..], [Change::DeleteNym { id }] if id == n.id));
        let Post::Notice { subject, .. } = &d.effects.posts[0] else { panic!() };
        assert_eq!(subject, "Nym deleted");
    }

    #[test]
    fn delete_no_is_not_a_delete() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "delete: no\n");
        assert_ne!(d.outcome, Outcome::Deleted);
        assert!(!d.effects.changes.iter().any(|c| matches!(c, Change::DeleteNym { .. })));
    }

    #[test]
    fn every_signed_change_marks_its_signature_and_rechecks_the_nym() {
        let k = Kit::new();
        let n = k.nym("alice");
        for text in ["", "hsub: x\n", "delete: yes\n"] {
            let d = run(&k, &n, text);
            assert_eq!(d.effects.replay_mark.as_deref(), Some(&k.sig(k.now - 60).digest[..]));
            assert_eq!(
                d.effects.guards,
                vec![(
                    Guard::NymPresent { id: n.id, fingerprint: n.fingerprint.clone() },
                    OnFail::End(Outcome::NymGone)
                )]
            );
        }
    }
}
