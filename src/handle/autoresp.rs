//! The autoresponders (REPLY-BLOCKS.md section 11): help@, remailer-key@,
//! list@ and used@ answer by mail, nobody@ swallows.
//!
//! Anyone can forge the sender of a request, so an answer is a way to
//! make the server mail a third party. Two steps keep that small: first
//! [`screen`] decides whether anybody is answered at all, and where to
//! (no answer to bounces, other robots, lists, our own domains); then the
//! shell counts the answers already sent to that address (as a keyed
//! hash) and in all, and [`decide`] refuses past the caps, builds the
//! answer, and asks `record` to check the caps again under the lock.

use rand::RngCore;

use super::{Change, Decision, Effects, Guard, OnFail, Outcome, Post, View};
use crate::exit::Failure;
use crate::protocol::address::Responder;
use crate::protocol::send_request::Header;
use crate::protocol::type1::bare_address;
use crate::store::{Kind, OutItem};

/// The built-in help text; `DOMAIN` stands for the domain asked.
pub const BUILTIN_HELP: &str = include_str!("help.txt");

/// Most lines of the request's header quoted in the answer.
pub const QUOTED_LINES: usize = 50;

/// A message to an autoresponder, as the shell read it.
pub struct Asked<'a> {
    pub responder: Responder,
    pub domain: &'a str,
    /// The envelope sender (`--sender`, else the first `Return-Path:`);
    /// `None` when neither was there.
    pub sender: Option<&'a str>,
    pub headers: &'a [Header],
}

/// What [`screen`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Exit 0, nothing sent.
    Silent(Outcome),
    /// Answer this bare address (if the caps allow).
    Answer(String),
}

/// What the shell prepared for [`decide`].
pub struct Facts<'a> {
    /// help@: the operator's text, or [`BUILTIN_HELP`].
    pub help_text: &'a str,
    /// remailer-key@: the armored server key.
    pub server_key: &'a str,
    /// remailer-key@: the capability line, when the remailer is on.
    pub capability: Option<&'a str>,
    /// list@: the nyms of the domain.
    pub names: &'a [String],
    /// The keyed hash of the answer's address.
    pub key: Vec<u8>,
    /// Answers to that address in the last 24 hours.
    pub sent_to_address: u32,
    /// Answers in all in the last hour.
    pub sent_hour: u32,
}

/// Whether the request gets an answer, and where it would go.
pub fn screen(v: &View, a: &Asked) -> Result<Screen, Failure> {
    let quiet = Ok(Screen::Silent(Outcome::ReplySuppressed));
    if !v.cfg.autoresponders.serves(a.responder) {
        return Err(Failure::NoUser);
    }
    if a.responder == Responder::Nobody {
        return Ok(Screen::Silent(Outcome::Discarded));
    }
    if let Some(s) = a.sender {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>').trim();
        let local = s.rsplit_once('@').map_or(s, |(l, _)| l);
        if s.is_empty() || local.eq_ignore_ascii_case("mailer-daemon") {
            return quiet;
        }
    }
    for h in a.headers {
        if h.text.to_ascii_lowercase().contains("mailer-daemon") {
            return quiet;
        }
        let value = h.value().to_ascii_lowercase();
        let robot = (h.is("x-loop") && names_hosted_domain(v, &value))
            || (h.is("auto-submitted") && value.split(';').next().unwrap_or("").trim() != "no")
            || (h.is("precedence") && matches!(value.trim(), "bulk" | "junk" | "list"))
            || h.name.to_ascii_lowercase().starts_with("list-");
        if robot {
            return quiet;
        }
    }
    // The first of Reply-To, From, the envelope sender that is present
    // decides; only its first address is ever answered.
    let field = ["reply-to", "from"].iter().find_map(|n| a.headers.iter().find(|h| h.is(n)));
    let addr = match field {
        Some(h) => first_address(h),
        None => a.sender.and_then(|s| bare_address(s).ok()),
    };
    let Some(addr) = addr else { return quiet };
    let domain = addr.rsplit_once('@').map_or("", |(_, d)| d);
    if v.cfg.hosts(domain) {
        return quiet;
    }
    Ok(Screen::Answer(addr))
}

/// Whether an X-Loop value names one of our domains.
fn names_hosted_domain(v: &View, value: &str) -> bool {
    value
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '@'))
        .any(|w| !w.is_empty() && v.cfg.hosts(w))
}

/// The first address of an address field, checked as a bare address.
fn first_address(h: &Header) -> Option<String> {
    let text = format!("{}\n\n", h.text);
    let m = mail_parser::MessageParser::default().parse(text.as_bytes())?;
    let list = if h.is("reply-to") { m.reply_to()? } else { m.from()? };
    let a = list.first()?.address()?;
    bare_address(a).ok()
}

/// The answer to `to`, within the caps.
pub fn decide(v: &View, a: &Asked, to: &str, f: &Facts) -> Decision {
    let ev = a.responder.event();
    let c = &v.cfg.autoresponders;
    if f.sent_to_address >= c.per_address_daily || f.sent_hour >= c.hourly_total {
        return Decision::drop(ev, Outcome::ReplyLimited);
    }
    let d = a.domain;
    let (label, subject, text) = match a.responder {
        Responder::Help => ("Help", format!("Help for {d}"), f.help_text.replace("DOMAIN", d)),
        Responder::RemailerKey => {
            let mut t = String::new();
            if let Some(line) = f.capability {
                t.push_str(line);
                t.push_str("\n\n");
            }
            t.push_str(f.server_key);
            ("Remailer key", format!("Server key of {d}"), t)
        }
        Responder::List | Responder::Used => {
            let mut names: Vec<String> = f.names.to_vec();
            names.extend(reserved_names(v));
            // Sorted as the lines read: `remailer-key@` before `remailer@`.
            let mut lines: Vec<String> = names.iter().map(|n| format!("{n}@{d}\n")).collect();
            lines.sort();
            lines.dedup();
            let mut t = format!("Names in use at {d}:\n\n");
            for l in lines {
                t.push_str(&l);
            }
            ("Names in use", format!("Names in use at {d}"), t)
        }
        // screen() never answers for nobody@.
        Responder::Nobody => return Decision::drop(ev, Outcome::Discarded),
    };
    let body = answer_mail(a, to, label, &subject, &text);
    let item = OutItem {
        kind: Kind::Mail,
        // Bounces of the answer come back to nobody@, which discards them.
        env_from: format!("nobody@{d}"),
        env_to: vec![to.to_string()],
        msgid: msgid(d),
        body,
        nym: None,
    };
    let guard = Guard::AutoReplyQuota {
        key: f.key.clone(),
        since_day: v.now - 86400,
        since_hour: v.now - 3600,
        per_address: c.per_address_daily,
        total: c.hourly_total,
    };
    let effects = Effects::none()
        .guard(guard, OnFail::End(Outcome::ReplyLimited))
        .change(Change::AutoReplied { key: f.key.clone() })
        .post(Post::Item(item));
    Decision::new(ev, Outcome::Answered, effects)
}

/// Every reserved name (built-in, services, responders, the operator's).
fn reserved_names(v: &View) -> Vec<String> {
    use crate::protocol::address::{Service, RESERVED};
    let mut out: Vec<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    out.extend(Service::ALL.iter().map(|s| s.local().to_string()));
    out.extend(Responder::ALL.iter().map(|r| r.local().to_string()));
    out.extend(v.cfg.reserved.iter().cloned());
    out
}

fn msgid(domain: &str) -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    format!("<{}@{domain}>", hex::encode(b))
}

/// A Message-ID we may copy into In-Reply-To: one `<...>` token, printable.
fn their_msgid(headers: &[Header]) -> Option<String> {
    let v = headers.iter().find(|h| h.is("message-id"))?.value().trim().to_string();
    let ok = v.len() <= 250
        && v.starts_with('<')
        && v.ends_with('>')
        && v.len() > 2
        && v.bytes().all(|b| b.is_ascii_graphic())
        && v.matches('<').count() == 1;
    ok.then_some(v)
}

fn answer_mail(a: &Asked, to: &str, label: &str, subject: &str, text: &str) -> Vec<u8> {
    let d = a.domain;
    let mut m = format!("From: {label} <nobody@{d}>\nTo: {to}\nSubject: {subject}\n");
    if let Some(id) = their_msgid(a.headers) {
        m.push_str(&format!("In-Reply-To: {id}\nReferences: {id}\n"));
    }
    m.push_str(&format!(
        "X-Loop: {d}\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    ));
    m.push_str(text);
    if !m.ends_with('\n') {
        m.push('\n');
    }
    // Whoever receives this without having asked sees who did.
    m.push_str(&format!(
        "\n-- \nSent because a message with this header reached {}@{d}:\n\n",
        a.responder.local()
    ));
    let mut lines = 0;
    'quote: for h in a.headers {
        for l in h.text.lines() {
            if lines == QUOTED_LINES {
                m.push_str("> [...]\n");
                break 'quote;
            }
            m.push_str("> ");
            m.push_str(l);
            m.push('\n');
            lines += 1;
        }
    }
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;
    use crate::protocol::send_request::split_message;

    fn headers(h: &str) -> Vec<Header> {
        split_message(format!("{h}\n\nbody\n").as_bytes()).0
    }

    fn asked<'a>(r: Responder, sender: Option<&'a str>, h: &'a [Header]) -> Asked<'a> {
        Asked { responder: r, domain: "nym.example", sender, headers: h }
    }

    fn screen_of(k: &Kit, sender: Option<&str>, h: &str) -> Screen {
        let h = headers(h);
        screen(&k.view(), &asked(Responder::Help, sender, &h)).unwrap()
    }

    fn facts(sent_to_address: u32, sent_hour: u32) -> Facts<'static> {
        Facts {
            help_text: "Mail config@DOMAIN.\n",
            server_key: "-----BEGIN PGP PUBLIC KEY BLOCK-----\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n",
            capability: None,
            names: &[],
            key: vec![9; 32],
            sent_to_address,
            sent_hour,
        }
    }

    fn answer(k: &Kit, r: Responder, h: &str, f: &Facts) -> (Decision, String) {
        let h = headers(h);
        let a = asked(r, Some("asker@outside.example"), &h);
        let d = decide(&k.view(), &a, "asker@outside.example", f);
        let body = match d.effects.posts.first() {
            Some(Post::Item(i)) => String::from_utf8(i.body.clone()).unwrap(),
            _ => String::new(),
        };
        (d, body)
    }

    const ASK: &str = "From: Asker <asker@outside.example>\nSubject: help\nMessage-ID: <q1@outside.example>";

    #[test]
    fn answers_go_to_reply_to_else_from_else_the_envelope_sender() {
        let k = Kit::new();
        let s = Some("env@outside.example");
        assert_eq!(
            screen_of(&k, s, "Reply-To: r@outside.example\nFrom: f@outside.example"),
            Screen::Answer("r@outside.example".into())
        );
        assert_eq!(
            screen_of(&k, s, "From: F <f@Outside.Example>"),
            Screen::Answer("f@outside.example".into())
        );
        assert_eq!(screen_of(&k, s, "Subject: x"), Screen::Answer("env@outside.example".into()));
        assert_eq!(screen_of(&k, None, "Subject: x"), Screen::Silent(Outcome::ReplySuppressed));
    }

    #[test]
    fn only_the_first_address_of_the_reply_field_is_answered() {
        let k = Kit::new();
        assert_eq!(
            screen_of(&k, None, "From: a@outside.example, b@outside.example, c@outside.example"),
            Screen::Answer("a@outside.example".into())
        );
    }

    #[test]
    fn no_answer_to_a_null_or_mailer_daemon_envelope_sender() {
        let k = Kit::new();
        for s in ["", "<>", "MAILER-DAEMON", "mailer-daemon@outside.example"] {
            assert_eq!(screen_of(&k, Some(s), ASK), Screen::Silent(Outcome::ReplySuppressed), "{s:?}");
        }
    }

    #[test]
    fn no_answer_when_a_header_line_names_mailer_daemon() {
        let k = Kit::new();
        let h = format!("{ASK}\nX-Failed-By: Mailer-Daemon at relay");
        assert_eq!(screen_of(&k, Some("a@outside.example"), &h), Screen::Silent(Outcome::ReplySuppressed));
    }

    #[test]
    fn no_answer_when_x_loop_names_a_hosted_domain() {
        let k = Kit::new();
        for l in ["X-Loop: nym.example", "X-Loop: <help@Other.Example>"] {
            let h = format!("{ASK}\n{l}");
            assert_eq!(screen_of(&k, None, &h), Screen::Silent(Outcome::ReplySuppressed), "{l}");
        }
        let h = format!("{ASK}\nX-Loop: lists.outside.example");
        assert!(matches!(screen_of(&k, None, &h), Screen::Answer(_)));
    }

    #[test]
    fn no_answer_to_auto_submitted_mail_other_than_no() {
        let k = Kit::new();
        for v in ["auto-replied", "auto-generated", "auto-notified; owner=x", "Auto-Replied"] {
            let h = format!("{ASK}\nAuto-Submitted: {v}");
            assert_eq!(screen_of(&k, None, &h), Screen::Silent(Outcome::ReplySuppressed), "{v}");
        }
        let h = format!("{ASK}\nAuto-Submitted: No");
        assert!(matches!(screen_of(&k, None, &h), Screen::Answer(_)));
    }

    #[test]
    fn no_answer_to_bulk_junk_or_list_precedence() {
        let k = Kit::new();
        for v in ["bulk", "Junk", "list"] {
            let h = format!("{ASK}\nPrecedence: {v}");
            assert_eq!(screen_of(&k, None, &h), Screen::Silent(Outcome::ReplySuppressed), "{v}");
        }
        let h = format!("{ASK}\nPrecedence: first-class");
        assert!(matches!(screen_of(&k, None, &h), Screen::Answer(_)));
    }

    #[test]
    fn no_answer_to_mailing_list_mail() {
        let k = Kit::new();
        for l in ["List-Id: <talk.outside.example>", "List-Unsubscribe: <mailto:u@outside.example>"] {
            let h = format!("{ASK}\n{l}");
            assert_eq!(screen_of(&k, None, &h), Screen::Silent(Outcome::ReplySuppressed), "{l}");
        }
    }

    #[test]
    fn no_answer_to_an_address_of_a_hosted_domain() {
        let k = Kit::new();
        for f in ["From: alice@nym.example", "From: x@OTHER.example", "Reply-To: config@nym.example"] {
            assert_eq!(screen_of(&k, None, f), Screen::Silent(Outcome::ReplySuppressed), "{f}");
        }
    }

    #[test]
    fn no_answer_to_an_unusable_reply_address() {
        let k = Kit::new();
        for f in ["From: nobody", "From: a@[127.0.0.1]", "From: <a b@outside.example>", "From: a@localhost"] {
            assert_eq!(
                screen_of(&k, Some("e@outside.example"), f),
                Screen::Silent(Outcome::ReplySuppressed),
                "{f}"
            );
        }
    }

    #[test]
    fn nobody_accepts_and_discards() {
        let k = Kit::new();
        let h = headers(ASK);
        let s = screen(&k.view(), &asked(Responder::Nobody, Some(""), &h)).unwrap();
        assert_eq!(s, Screen::Silent(Outcome::Discarded));
    }

    #[test]
    fn list_and_used_are_off_by_default_and_refused_as_no_user() {
        let mut k = Kit::new();
        let h = headers(ASK);
        for r in [Responder::List, Responder::Used] {
            let e = screen(&k.view(), &asked(r, None, &h)).unwrap_err();
            assert_eq!(e.exit_code(), 67);
        }
        k.cfg.autoresponders.list = true;
        assert!(matches!(screen(&k.view(), &asked(Responder::List, None, &h)), Ok(Screen::Answer(_))));
    }

    #[test]
    fn the_per_address_daily_cap_stops_answers() {
        let k = Kit::new();
        let (d, _) = answer(&k, Responder::Help, ASK, &facts(2, 0));
        assert_eq!(d.outcome, Outcome::Answered);
        let (d, _) = answer(&k, Responder::Help, ASK, &facts(3, 0));
        assert_eq!(d.outcome, Outcome::ReplyLimited);
        assert!(d.effects.posts.is_empty() && !d.effects.commit);
    }

    #[test]
    fn the_hourly_total_cap_stops_answers() {
        let k = Kit::new();
        let (d, _) = answer(&k, Responder::Help, ASK, &facts(0, 60));
        assert_eq!(d.outcome, Outcome::ReplyLimited);
        assert!(d.effects.posts.is_empty());
    }

    #[test]
    fn the_caps_are_checked_again_under_the_lock_and_the_answer_counted() {
        let k = Kit::new();
        let (d, _) = answer(&k, Responder::Help, ASK, &facts(0, 0));
        assert_eq!(
            d.effects.guards,
            vec![(
                Guard::AutoReplyQuota {
                    key: vec![9; 32],
                    since_day: k.now - 86400,
                    since_hour: k.now - 3600,
                    per_address: 3,
                    total: 60
                },
                OnFail::End(Outcome::ReplyLimited)
            )]
        );
        assert!(matches!(&d.effects.changes[..], [Change::AutoReplied { key }] if key == &vec![9u8; 32]));
    }

    #[test]
    fn answers_are_marked_auto_replied_with_x_loop_from_nobody() {
        let k = Kit::new();
        let (d, body) = answer(&k, Responder::Help, ASK, &facts(0, 0));
        let Some(Post::Item(i)) = d.effects.posts.first() else { panic!() };
        assert_eq!(i.env_from, "nobody@nym.example");
        assert_eq!(i.env_to, vec!["asker@outside.example"]);
        assert_eq!(i.kind, Kind::Mail);
        for want in [
            "From: Help <nobody@nym.example>\n",
            "To: asker@outside.example\n",
            "Auto-Submitted: auto-replied\n",
            "X-Loop: nym.example\n",
            "In-Reply-To: <q1@outside.example>\n",
            "References: <q1@outside.example>\n",
        ] {
            assert!(body.contains(want), "{want} missing:\n{body}");
        }
        assert!(i.msgid.ends_with("@nym.example>"));
    }

    #[test]
    fn answers_quote_the_request_header_up_to_fifty_lines() {
        let k = Kit::new();
        let mut h = String::from(ASK);
        for i in 0..80 {
            h.push_str(&format!("\nX-Extra-{i}: v"));
        }
        let (_, body) = answer(&k, Responder::Help, &h, &facts(0, 0));
        assert!(body.contains("> From: Asker <asker@outside.example>\n"), "{body}");
        assert_eq!(body.lines().filter(|l| l.starts_with("> ")).count(), QUOTED_LINES + 1);
        assert!(body.contains("> [...]\n"));
        assert!(!body.contains("X-Extra-79"));
    }

    #[test]
    fn a_hostile_message_id_is_not_copied() {
        let k = Kit::new();
        let h = "From: a@outside.example\nMessage-ID: <x@y> <z@w>";
        let (_, body) = answer(&k, Responder::Help, h, &facts(0, 0));
        assert!(!body.contains("In-Reply-To"), "{body}");
    }

    #[test]
    fn help_sends_the_help_text_with_the_domain_filled_in() {
        let k = Kit::new();
        let (_, body) = answer(&k, Responder::Help, ASK, &facts(0, 0));
        assert!(body.contains("\n\nMail config@nym.example.\n"), "{body}");
        assert!(body.contains("Subject: Help for nym.example\n"));
    }

    #[test]
    fn the_builtin_help_explains_both_request_formats() {
        let t = BUILTIN_HELP;
        for want in ["config@DOMAIN", "send@DOMAIN", "url@DOMAIN", "BEGIN PGP PUBLIC KEY BLOCK", "hsub:"] {
            assert!(t.contains(want), "Zax: {want}");
        }
        for want in ["Config:", "Nym-Commands:", "Public-Key:", "Reply-Block:", "confirm+", "Hidden-To:"] {
            assert!(t.contains(want), "nym.alias.net: {want}");
        }
        assert!(t.contains("remailer-key@DOMAIN") && t.contains("url https://"));
    }

    #[test]
    fn remailer_key_sends_the_key_and_the_capability_line_when_given() {
        let k = Kit::new();
        let mut f = facts(0, 0);
        let (_, body) = answer(&k, Responder::RemailerKey, ASK, &f);
        assert!(body.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----\nxx\n"), "{body}");
        assert!(!body.contains("$remailer"));
        f.capability = Some("$remailer{\"nym\"} = \"<remailer@nym.example> cpunk\";");
        let (_, body) = answer(&k, Responder::RemailerKey, ASK, &f);
        assert!(
            body.contains("\n\n$remailer{\"nym\"} = \"<remailer@nym.example> cpunk\";\n\n-----BEGIN"),
            "{body}"
        );
    }

    #[test]
    fn list_sends_the_nyms_and_reserved_names_sorted_one_a_line() {
        let mut k = Kit::new();
        k.cfg.autoresponders.list = true;
        let names = ["zed".to_string(), "alice".to_string()];
        let f = Facts { names: &names, ..facts(0, 0) };
        let (d, body) = answer(&k, Responder::Used, ASK, &f);
        assert_eq!(d.event, "used");
        let listed: Vec<&str> = body.lines().filter(|l| l.ends_with("@nym.example")).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted);
        for n in ["alice@nym.example", "zed@nym.example", "config@nym.example", "help@nym.example"] {
            assert!(listed.contains(&n), "{n} missing: {listed:?}");
        }
    }
}
