//! send@: mail and news from a nym (PROTOCOL.md sections 6 and 7): the
//! signer decides the sender, the block list and the daily limit decide
//! whether it leaves, and acksend decides whether the nym hears of it.
//!
//! Both formats of REPLY-BLOCKS.md section 8 are read: a `Config:`
//! request is not sent (the nym is told to use config@); in the
//! nym.alias.net format the one `From:` must name the signer's nym; in
//! both, `Hidden-To:` replaces the recipients (To/Cc then only show),
//! `Nym-Command(s):` switches `acksend` for this message (other tokens are
//! warnings, which are always acknowledged), and a nym with `disable` set
//! sends nothing and is told. `signsend` (8.3) is not applied yet.

use super::{gate, notice_to, Change, Decision, Effects, Guard, OnFail, Outcome, Post, Request, View};
use crate::protocol::address::{split_address, Service};
use crate::protocol::article::{new_msgid, news_post};
use crate::protocol::nym_commands::flag;
use crate::protocol::send_format::{self, Format};
use crate::protocol::send_request::{blocked, build_outgoing};
use crate::store::{Kind, OutItem};

const EV: &str = "send";

pub fn decide(v: &View, req: &Request) -> Decision {
    let (n, sig) = match gate::signed(v, Service::Send, req) {
        Ok(p) => p,
        Err(d) => return *d,
    };
    let cfg = v.cfg;
    let refuse = |outcome: Outcome, text: String| {
        let post = notice_to(n, Service::Send, "Message not sent", text);
        Decision::new(EV, outcome, Effects::none().replay(sig.digest.clone()).post(post))
    };
    let hosted = |d: &str| cfg.hosts(d);
    let request_text = String::from_utf8_lossy(req.plaintext);
    let (format, _) = send_format::detect(&request_text, &hosted);
    let alias = match &format {
        Format::Misdirected => {
            return refuse(
                Outcome::WrongFormat,
                format!(
                    "Your message to send@{d} was not sent: it is a Config: request.
                     Send configuration requests to config@{d}.
",
                    d = n.domain
                ),
            )
        }
        Format::NymAlias { from } => {
            let send_domain =
                split_address(req.recipient).map(|(_, d)| d).unwrap_or_else(|| n.domain.clone());
            let names_signer = |f: &crate::protocol::config_request::FromName| {
                f.name.eq_ignore_ascii_case(&n.local)
                    && f.domain.as_deref().unwrap_or(&send_domain) == n.domain
            };
            let ok = matches!(&from[..], [Some(f)] if names_signer(f));
            if !ok {
                return refuse(
                    Outcome::FromNotSigner,
                    format!(
                        "Your message was not sent: in this format its header needs exactly one From: line,
                         naming your nym ({}) as \"From: {}\".
",
                        n.address(),
                        n.local
                    ),
                );
            }
            true
        }
        Format::Zax => false,
    };
    if n.has(flag::DISABLE) {
        return refuse(
            Outcome::SendDisabled,
            "Your message was not sent: your nym is disabled. Send \"Nym-Commands: -disable\" to config@ first.\n"
                .to_string(),
        );
    }
    let prep = send_format::prepare(req.plaintext, alias, n.name.as_deref(), &n.address());
    let mut out = build_outgoing(&n.address(), &prep.text, || {
        let id = new_msgid(cfg);
        // In the nym's own domain, not necessarily the default one.
        id.replacen(&format!("@{}>", cfg.default_domain()), &format!("@{}>", n.domain), 1)
    });
    let hidden = prep.hidden_to.is_some();
    if let Some(h) = &prep.hidden_to {
        // Hidden-To replaces the envelope recipients; To and Cc only show.
        let mut seen = std::collections::BTreeSet::new();
        out.recipients =
            h.iter().filter(|a| a.contains('@') && seen.insert(a.to_ascii_lowercase())).cloned().collect();
    }
    let warnings = &prep.commands.warnings;
    let acksend = prep.commands.acksend.unwrap_or(n.acksend());
    let (allowed, refused): (Vec<String>, Vec<String>) =
        out.recipients.iter().cloned().partition(|r| !blocked(v.blocklist, r));

    let today = v.now.div_euclid(86400);
    let mut cur = n.clone();
    if cur.send_day != today {
        cur.send_day = today;
        cur.send_count = 0;
        cur.limit_told = false;
    }
    let tell =
        |cur: &crate::store::Nym, subject: &str, text: String| notice_to(cur, Service::Send, subject, text);
    let mut posts = Vec::new();
    let outcome;
    // Every recipient, and a news post, is one unit of the daily limit.
    let units = (allowed.len() + usize::from(out.newsgroups.is_some())) as i64;
    if out.recipients.len() > cfg.send.max_recipients {
        let text = format!(
            "Your message \"{}\" was not sent: it has {} recipients, and this server sends a message to at most {}.\n\
             Nothing was sent. Split the recipients over several messages.\n",
            out.subject,
            out.recipients.len(),
            cfg.send.max_recipients
        );
        posts.push(tell(&cur, "Message not sent", text));
        outcome = Outcome::TooManyRecipients;
    } else if allowed.is_empty() && out.newsgroups.is_none() {
        let text = if refused.is_empty() && hidden {
            format!("Your message \"{}\" was not sent: its Hidden-To: names no address.\n", out.subject)
        } else if refused.is_empty() {
            format!(
                "Your message \"{}\" was not sent: it names no recipient (To, Cc or Bcc) and no Newsgroups.\n",
                out.subject
            )
        } else {
            format!(
                "Your message \"{}\" was not sent: every recipient is on this server's block list\n\
                 (they asked never to receive mail from nyms):\n  {}\n",
                out.subject,
                refused.join("\n  ")
            )
        };
        posts.push(tell(&cur, "Message not sent", text));
        outcome = if refused.is_empty() { Outcome::NoRecipient } else { Outcome::AllRecipientsBlocked };
    } else if cur.send_count + units > cfg.send.daily_limit as i64 {
        if !cur.limit_told {
            cur.limit_told = true;
            let text = format!(
                "Your message \"{}\" was not sent: it would pass this server's limit of {} recipients per day\n\
                 ({} used today, {} in this message).\n\
                 Sending resumes at 00:00 UTC. Further messages today are refused without notice.\n",
                out.subject, cfg.send.daily_limit, cur.send_count, units
            );
            posts.push(tell(&cur, "Daily send limit reached", text));
        }
        outcome = Outcome::DailyLimit;
    } else {
        cur.send_count += units;
        if !allowed.is_empty() {
            let env_from = if cfg.mail.bounce_address.is_empty() {
                cur.address()
            } else {
                cfg.mail.bounce_address.clone()
            };
            posts.push(Post::Item(OutItem {
                kind: Kind::Mail,
                env_from,
                env_to: allowed.clone(),
                msgid: out.msgid.clone(),
                body: out.mail.clone(),
                nym: Some(cur.id),
            }));
        }
        if let Some(groups) = &out.newsgroups {
            let mut post = news_post(cfg, &out, groups);
            post.nym = Some(cur.id);
            posts.push(Post::Item(post));
        }
        let mut text = String::new();
        if !refused.is_empty() {
            text.push_str(&format!(
                "Not sent to these recipients, who are on this server's block list:\n  {}\n\n",
                refused.join("\n  ")
            ));
        }
        for w in warnings {
            text.push_str(&format!("Warning: {w}\n"));
        }
        if !warnings.is_empty() {
            text.push('\n');
        }
        if acksend || !refused.is_empty() || !warnings.is_empty() {
            text.push_str(&format!(
                "Your message was sent.\n\nSubject:    {}\nMessage-ID: {}\n",
                out.subject, out.msgid
            ));
            if !allowed.is_empty() {
                text.push_str(&format!("Recipients: {}\n", allowed.join(", ")));
            }
            if let Some(g) = &out.newsgroups {
                text.push_str(&format!("Newsgroups: {g}\n"));
            }
            posts.push(tell(&cur, "Message sent", text));
        }
        outcome = if refused.is_empty() { Outcome::Sent } else { Outcome::SentSomeBlocked };
    }
    // The counters were read without the lock: if another delivery moved
    // them meanwhile, decide again on the new values.
    let guard = Guard::SendCounters {
        id: n.id,
        fingerprint: n.fingerprint.clone(),
        day: n.send_day,
        count: n.send_count,
        told: n.limit_told,
    };
    let mut effects = Effects::none()
        .replay(sig.digest.clone())
        .guard(guard, OnFail::Retry)
        .change(Change::SendCount(Box::new(cur)));
    for p in posts {
        effects = effects.post(p);
    }
    Decision::new(EV, outcome, effects)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::super::{Addressee, View};
    use super::*;
    use crate::store::Nym;

    fn run_with(k: &Kit, n: &Nym, text: &str, blocklist: &[String]) -> Decision {
        let v = View { blocklist, ..k.view() };
        decide(&v, &k.fresh(n, text.as_bytes()))
    }

    fn run(k: &Kit, n: &Nym, text: &str) -> Decision {
        run_with(k, n, text, &[])
    }

    fn mails(d: &Decision) -> Vec<&OutItem> {
        d.effects.posts.iter().filter_map(|p| if let Post::Item(i) = p { Some(i) } else { None }).collect()
    }

    fn notices(d: &Decision) -> Vec<(&str, &str)> {
        d.effects
            .posts
            .iter()
            .filter_map(|p| match p {
                Post::Notice { subject, text, .. } => Some((subject.as_str(), text.as_str())),
                _ => None,
            })
            .collect()
    }

    fn counters(d: &Decision) -> (i64, i64, bool) {
        let Some(Change::SendCount(n)) = d.effects.changes.first() else { panic!() };
        (n.send_day, n.send_count, n.limit_told)
    }

    #[test]
    fn mail_goes_to_every_recipient_from_the_nym() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "To: bob@example.org\nCc: carol@example.org\nSubject: hi\n\nbody\n");
        assert_eq!(d.outcome, Outcome::Sent);
        let m = mails(&d);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].env_to, vec!["bob@example.org", "carol@example.org"]);
        assert_eq!(m[0].env_from, "alice@nym.example");
        assert!(m[0].msgid.ends_with("@nym.example>"));
    }

    #[test]
    fn bounce_address_replaces_the_envelope_sender() {
        let mut k = Kit::new();
        k.cfg.mail.bounce_address = "bounces@nym.example".into();
        let d = run(&k, &k.nym("alice"), "To: bob@example.org\n\nx\n");
        assert_eq!(mails(&d)[0].env_from, "bounces@nym.example");
    }

    #[test]
    fn acksend_on_confirms_with_recipients_subject_and_message_id() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "To: bob@example.org\nSubject: hello\n\nx\n");
        let n = notices(&d);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].0, "Message sent");
        assert!(n[0].1.contains("Subject:    hello") && n[0].1.contains("Recipients: bob@example.org"));
    }

    #[test]
    fn acksend_off_sends_silently() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.set_flag(crate::protocol::nym_commands::flag::ACKSEND, false);
        let d = run(&k, &n, "To: bob@example.org\n\nx\n");
        assert_eq!(d.outcome, Outcome::Sent);
        assert!(notices(&d).is_empty());
    }

    #[test]
    fn no_recipient_is_refused_with_a_notice() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "Subject: lonely\n\nx\n");
        assert_eq!(d.outcome, Outcome::NoRecipient);
        assert!(mails(&d).is_empty());
        assert_eq!(notices(&d)[0].0, "Message not sent");
    }

    #[test]
    fn blocked_recipients_are_left_out_and_the_nym_told() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.set_flag(crate::protocol::nym_commands::flag::ACKSEND, false);
        let list = vec!["quiet.example".to_string()];
        let d = run_with(&k, &n, "To: bob@example.org, x@quiet.example\n\nx\n", &list);
        assert_eq!(d.outcome, Outcome::SentSomeBlocked);
        assert_eq!(mails(&d)[0].env_to, vec!["bob@example.org"]);
        assert!(notices(&d)[0].1.contains("x@quiet.example"));
    }

    #[test]
    fn all_recipients_blocked_sends_nothing() {
        let k = Kit::new();
        let list = vec!["@quiet.example".to_string()];
        let d = run_with(&k, &k.nym("alice"), "To: x@quiet.example\n\nx\n", &list);
        assert_eq!(d.outcome, Outcome::AllRecipientsBlocked);
        assert!(mails(&d).is_empty());
    }

    #[test]
    fn daily_limit_refuses_and_tells_once() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.send_day = k.now.div_euclid(86400);
        n.send_count = k.cfg.send.daily_limit as i64;
        let d = run(&k, &n, "To: bob@example.org\n\nx\n");
        assert_eq!(d.outcome, Outcome::DailyLimit);
        assert!(mails(&d).is_empty());
        assert_eq!(notices(&d)[0].0, "Daily send limit reached");
        assert!(counters(&d).2);
        n.limit_told = true;
        let d = run(&k, &n, "To: bob@example.org\n\nx\n");
        assert_eq!(d.outcome, Outcome::DailyLimit);
        assert!(notices(&d).is_empty());
    }

    #[test]
    fn every_recipient_counts_against_the_daily_limit() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, &n, "To: a@x.example, b@x.example\nCc: c@x.example\nNewsgroups: alt.test\n\nx\n");
        assert_eq!(counters(&d).1, 4);
    }

    #[test]
    fn a_message_that_would_pass_the_daily_limit_is_refused_whole() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.send_day = k.now.div_euclid(86400);
        n.send_count = k.cfg.send.daily_limit as i64 - 1;
        let d = run(&k, &n, "To: a@x.example, b@x.example\n\nx\n");
        assert_eq!(d.outcome, Outcome::DailyLimit);
        assert!(mails(&d).is_empty());
        let d = run(&k, &n, "To: a@x.example\n\nx\n");
        assert_eq!(d.outcome, Outcome::Sent);
    }

    #[test]
    fn too_many_recipients_are_refused_whole_and_not_counted() {
        let k = Kit::new();
        let n = k.nym("alice");
        let many: Vec<String> = (0..=k.cfg.send.max_recipients).map(|i| format!("r{i}@x.example")).collect();
        let d = run(&k, &n, &format!("To: {}\n\nx\n", many.join(", ")));
        assert_eq!(d.outcome, Outcome::TooManyRecipients);
        assert!(mails(&d).is_empty());
        assert_eq!(counters(&d).1, 0);
        assert!(notices(&d)[0].1.contains("at most 20"));
        let d = run(&k, &n, &format!("To: {}\n\nx\n", many[1..].join(", ")));
        assert_eq!(d.outcome, Outcome::Sent);
    }

    #[test]
    fn daily_limit_resets_on_a_new_utc_day() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.send_day = k.now.div_euclid(86400) - 1;
        n.send_count = 1000;
        n.limit_told = true;
        let d = run(&k, &n, "To: bob@example.org\n\nx\n");
        assert_eq!(d.outcome, Outcome::Sent);
        assert_eq!(counters(&d), (k.now.div_euclid(86400), 1, false));
    }

    #[test]
    fn newsgroups_post_as_the_nym() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "Newsgroups: alt.test\nSubject: s\n\nhello\n");
        assert_eq!(d.outcome, Outcome::Sent);
        let m = mails(&d);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, Kind::News);
        assert!(String::from_utf8_lossy(&m[0].body).contains("From: alice@nym.example\n"));
    }

    #[test]
    fn counters_read_without_the_lock_are_guarded() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, &n, "To: bob@example.org\n\nx\n");
        assert!(matches!(d.effects.guards[..], [(Guard::SendCounters { count: 0, .. }, OnFail::Retry)]));
        assert!(d.effects.replay_mark.is_some());
    }

    #[test]
    fn notices_about_sending_come_from_send_at_the_nym_domain() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "To: bob@example.org\n\nx\n");
        let Some(Post::Notice { from, to: Addressee::Nym(_), .. }) = d.effects.posts.last() else { panic!() };
        assert_eq!(from, "send@nym.example");
    }

    #[test]
    fn format_nym_alias_spec_example_sends_to_hidden_to_only() {
        let k = Kit::new();
        let mut n = k.nym("quill");
        n.name = Some("Quill Pen".into());
        let text =
            "From: quill\nTo: editor@paper.example\nHidden-To: tips@other.example, archive@mine.example\n\
                    Subject: On the council vote\nNym-Commands: +acksend -signsend\n\nBody...\n";
        let d = run(&k, &n, text);
        assert_eq!(d.outcome, Outcome::Sent);
        let m = mails(&d);
        assert_eq!(m[0].env_to, vec!["tips@other.example".to_string(), "archive@mine.example".to_string()]);
        let body = String::from_utf8(m[0].body.clone()).unwrap();
        assert!(body.starts_with("From: \"Quill Pen\" <quill@nym.example>\n"), "{body}");
        assert!(body.contains("To: editor@paper.example\n"), "To stays for show");
        assert!(!body.contains("Hidden-To") && !body.contains("Nym-Commands"), "{body}");
    }

    #[test]
    fn format_config_request_at_send_is_not_sent() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "config:\nFrom: alice\n");
        assert_eq!(d.outcome, Outcome::WrongFormat);
        assert!(mails(&d).is_empty());
        assert!(notices(&d)[0].1.contains("config@nym.example"));
        assert!(d.effects.replay_mark.is_some());
    }

    #[test]
    fn format_nym_alias_from_must_name_the_signer_once() {
        let k = Kit::new();
        let n = k.nym("alice");
        for text in [
            "From: bob\nTo: x@y.example\n\nb\n",
            "From: alice@other.example\nTo: x@y.example\n\nb\n",
            "From: alice\nFrom: alice\nTo: x@y.example\n\nb\n",
            "::\nTo: x@y.example\n\nb\n",
        ] {
            let d = run(&k, &n, text);
            assert_eq!(d.outcome, Outcome::FromNotSigner, "{text:?}");
            assert!(mails(&d).is_empty());
        }
        assert_eq!(run(&k, &n, "From: Alice@nym.example\nTo: x@y.example\n\nb\n").outcome, Outcome::Sent);
        assert_eq!(run(&k, &n, "::\nFrom: alice\nTo: x@y.example\n\nb\n").outcome, Outcome::Sent);
    }

    #[test]
    fn format_empty_hidden_to_is_not_sent() {
        let k = Kit::new();
        let d = run(&k, &k.nym("alice"), "To: x@y.example\nHidden-To: ,\n\nb\n");
        assert_eq!(d.outcome, Outcome::NoRecipient);
        assert!(notices(&d)[0].1.contains("Hidden-To"));
    }

    #[test]
    fn per_message_commands_switch_acksend_and_warn_about_the_rest() {
        let k = Kit::new();
        let n = k.nym("alice");
        let d = run(&k, &n, "To: x@y.example\nNym-Commands: -acksend\n\nb\n");
        assert_eq!(d.outcome, Outcome::Sent);
        assert!(notices(&d).is_empty(), "acksend off for this message");
        let d = run(&k, &n, "To: x@y.example\nNym-Commands: -acksend +nobcc\n\nb\n");
        let t = notices(&d);
        assert_eq!(t.len(), 1, "warnings are always acknowledged");
        assert!(t[0].1.contains("Warning: Ignored +nobcc"), "{}", t[0].1);
        let mut off = n.clone();
        off.set_flag(flag::ACKSEND, false);
        assert_eq!(notices(&run(&k, &off, "To: x@y.example\nNym-Command: +acksend\n\nb\n")).len(), 1);
    }

    #[test]
    fn disabled_nym_sends_nothing_and_is_told() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.flags |= flag::DISABLE;
        let d = run(&k, &n, "To: x@y.example\n\nb\n");
        assert_eq!(d.outcome, Outcome::SendDisabled);
        assert!(mails(&d).is_empty());
        assert_eq!(notices(&d).len(), 1);
    }
}
