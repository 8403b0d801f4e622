//! send@: mail and news from a nym (PROTOCOL.md section 6).
//!
//! Header policy for what leaves (documented in README "What send@ sends"):
//! - `From:` is always the signing nym's address; a display name the user
//!   gave is kept. `Sender`, `Reply-To`-style tricks cannot put another
//!   address in From because From is rebuilt, never copied.
//! - Removed, because they can identify the sender's machine, software or
//!   real identity: everything in [`STRIPPED`], and any `X-Originating-*`.
//! - `Bcc:` recipients get the mail but the header never leaves.
//! - `Message-ID:` is generated in the nym's domain when absent; `Date:` is
//!   set at hand-off when absent; `Subject:` is "No Subject" when absent.
//! - `Newsgroups:` posts the message to Usenet as the nym as well.

use std::collections::BTreeSet;

use crate::error::Failure;
use crate::handler::{article_for_nym, begin, done, hold, queue, signed_request_gate, Ctx, Done};
use crate::message::{self, notice, sanitize_header};
use crate::openpgp::{DecryptError, Decrypted};
use crate::store::{self, Kind, Nym, OutItem};

/// Headers removed from everything a nym sends (lowercase).
pub const STRIPPED: &[&str] = &[
    "received",
    "return-path",
    "sender",
    "x-sender",
    "x-mailer",
    "user-agent",
    "x-newsreader",
    "x-originating-ip",
    "x-originating-host",
    "x-remote-addr",
    "x-forwarded-for",
    "x-apparently-from",
    "x-authenticated-sender",
    "x-authenticated-user",
    "x-authentication-warning",
    "x-mimeole",
    "x-msmail-priority",
    "organization",
    "autocrypt",
    "openpgp",
    "dkim-signature",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "authentication-results",
    "delivered-to",
    "nntp-posting-host",
    "nntp-posting-date",
    "injection-info",
    "injection-date",
    "x-trace",
    "x-complaints-to",
    "path",
    "xref",
    "x-face",
    "face",
    "bcc",
    "resent-bcc",
    // Usenet powers a nym must not borrow: cancels, moderator approval,
    // replacing someone else's article.
    "control",
    "also-control",
    "approved",
    "supersedes",
    "from",
];

/// One header: its name as written and its whole text (folded lines
/// included, without the final newline).
#[derive(Debug, Clone)]
pub struct Header {
    pub name: String,
    pub text: String,
}

impl Header {
    pub fn value(&self) -> &str {
        self.text[self.name.len() + 1..].trim()
    }
    pub fn is(&self, n: &str) -> bool {
        self.name.eq_ignore_ascii_case(n)
    }
}

/// Split a message into headers and body. Lines without a colon in the
/// header section are dropped (they are not headers).
pub fn split_message(msg: &[u8]) -> (Vec<Header>, Vec<u8>) {
    let text = String::from_utf8_lossy(msg);
    let mut headers: Vec<Header> = Vec::new();
    let mut rest = 0usize;
    let mut offset = 0usize;
    let mut ended = false;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let l = line.trim_end_matches(['\n', '\r']);
        if l.is_empty() {
            rest = offset;
            ended = true;
            break;
        }
        if l.starts_with([' ', '\t']) {
            if let Some(h) = headers.last_mut() {
                h.text.push('\n');
                h.text.push_str(l);
            }
            continue;
        }
        match l.split_once(':') {
            Some((name, _)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                headers.push(Header { name: name.to_string(), text: l.to_string() })
            }
            _ => {}
        }
    }
    let body = if ended { text.as_bytes()[rest..].to_vec() } else { Vec::new() };
    (headers, body)
}

fn addresses_of(raw_headers: &str, which: &str) -> Vec<String> {
    let Some(m) = mail_parser::MessageParser::default().parse(raw_headers.as_bytes()) else { return vec![] };
    let a = match which {
        "to" => m.to(),
        "cc" => m.cc(),
        _ => m.bcc(),
    };
    a.map(|a| a.iter().filter_map(|x| x.address().map(|s| s.trim().to_string())).collect())
        .unwrap_or_default()
}

fn display_name(from_header: Option<&Header>) -> Option<String> {
    let h = from_header?;
    let text = format!("{}\n\n", h.text);
    let m = mail_parser::MessageParser::default().parse(text.as_bytes())?;
    let name = m.from()?.first()?.name()?.trim().to_string();
    let name: String = name.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').collect();
    (!name.is_empty()).then_some(name)
}

/// Is `addr` on the operator's block list (addresses and whole domains)?
fn blocked(list: &[String], addr: &str) -> bool {
    let a = addr.to_ascii_lowercase();
    let domain = a.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    list.iter().any(|e| {
        let e = e.as_str();
        if let Some(d) = e.strip_prefix('@') {
            domain == d || domain.ends_with(&format!(".{d}"))
        } else if e.contains('@') {
            a == e
        } else {
            domain == e || domain.ends_with(&format!(".{e}"))
        }
    })
}

fn load_blocklist(ctx: &Ctx) -> Result<Vec<String>, Failure> {
    let Some(path) = &ctx.cfg.send.blocklist else { return Ok(vec![]) };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        // An unreadable list must not let mail through to people who asked
        // to be left alone: defer.
        Err(e) => return Err(Failure::Temp(e.into())),
    };
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|l| !l.is_empty())
        .collect())
}

/// The message as it will leave, built from the signed plaintext.
pub struct Outgoing {
    pub recipients: Vec<String>,
    pub newsgroups: Option<String>,
    pub subject: String,
    pub msgid: String,
    /// Headers (without Bcc) and body, From rewritten.
    pub mail: Vec<u8>,
}

/// Rewrite the nym's signed message for sending (pure; no I/O).
pub fn build_outgoing(n: &Nym, plaintext: &[u8], new_msgid: impl FnOnce() -> String) -> Outgoing {
    let (headers, body) = split_message(plaintext);
    let raw_headers: String = headers.iter().map(|h| format!("{}\n", h.text)).collect::<String>() + "\n";
    let mut seen = BTreeSet::new();
    let mut recipients = Vec::new();
    for which in ["to", "cc", "bcc"] {
        for a in addresses_of(&raw_headers, which) {
            if a.contains('@') && !a.contains(char::is_whitespace) && seen.insert(a.to_ascii_lowercase()) {
                recipients.push(a);
            }
        }
    }
    let from = match display_name(headers.iter().find(|h| h.is("from"))) {
        Some(name) => format!("\"{name}\" <{}>", n.address()),
        None => n.address(),
    };
    let subject = headers
        .iter()
        .find(|h| h.is("subject"))
        .map(|h| h.value().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "No Subject".into());
    let msgid = headers
        .iter()
        .find(|h| h.is("message-id"))
        .map(|h| h.value().to_string())
        .filter(|v| v.starts_with('<') && v.ends_with('>') && v.contains('@'))
        .unwrap_or_else(new_msgid);
    let newsgroups =
        headers.iter().find(|h| h.is("newsgroups")).map(|h| h.value().replace(char::is_whitespace, ""));
    let newsgroups = newsgroups.filter(|g| !g.is_empty());
    let mut out = format!("From: {from}\n");
    let mut have_subject = false;
    for h in &headers {
        let lname = h.name.to_ascii_lowercase();
        if STRIPPED.contains(&lname.as_str())
            || lname.starts_with("x-originating-")
            || lname == "message-id"
            || lname == "newsgroups"
        {
            continue;
        }
        if lname == "subject" {
            have_subject = true;
        }
        out.push_str(&h.text);
        out.push('\n');
    }
    if !have_subject {
        out.push_str("Subject: No Subject\n");
    }
    out.push_str(&format!("Message-ID: {}\n\n", sanitize_header(&msgid)));
    let mut mail = out.into_bytes();
    mail.extend_from_slice(&body);
    Outgoing { recipients, newsgroups, subject, msgid, mail }
}

/// A message to send@.
pub fn send(ctx: &mut Ctx, recipient: &str, raw: &[u8], digest: Option<&[u8]>) -> Result<Done, Failure> {
    const EV: &str = "send";
    let Some(armored) = message::extract_pgp_message(raw) else { return done(EV, "no_pgp_message") };
    let dec: Decrypted = match ctx.decrypt(&armored) {
        Ok(d) => d,
        Err(DecryptError::NotForUs) => return done(EV, "not_for_server_key"),
        Err(_) => return done(EV, "malformed_pgp"),
    };
    let Some(sig) = dec.good().cloned() else {
        if dec.signatures.iter().any(|s| !s.bad) {
            return hold(ctx, EV, recipient, raw, &dec.signatures, digest);
        }
        return done(EV, if dec.signatures.is_empty() { "unsigned" } else { "bad_signature" });
    };
    let fpr = sig.good_signer.clone().unwrap_or_default();
    let Some(n) = store::nym_by_fingerprint(&ctx.store.conn, &fpr)? else {
        return done(EV, "signer_not_a_nym");
    };
    if let Err(d) = signed_request_gate(ctx, EV, &n, &sig, digest)? {
        return Ok(d);
    }
    let blocklist = load_blocklist(ctx)?;
    let cfg = ctx.cfg;
    let out = build_outgoing(&n, &dec.plaintext, || {
        let id = message::new_msgid(cfg);
        // In the nym's own domain, not necessarily the default one.
        id.replacen(&format!("@{}>", cfg.default_domain()), &format!("@{}>", n.domain), 1)
    });
    let (allowed, refused): (Vec<String>, Vec<String>) =
        out.recipients.iter().cloned().partition(|r| !blocked(&blocklist, r));

    let now = ctx.now;
    let today = now.div_euclid(86400);
    let Some(tx) = begin(&mut ctx.store, now, digest)? else { return done(EV, "duplicate_delivery") };
    if !store::replay_insert(&tx, &sig.digest, now)? {
        return done(EV, "replayed_signature");
    }
    // Counters are read under the lock so parallel sends cannot overshoot.
    let Some(mut cur) = store::nym_by_fingerprint(&tx, &n.fingerprint)? else { return done(EV, "nym_gone") };
    if cur.send_day != today {
        cur.send_day = today;
        cur.send_count = 0;
        cur.limit_told = false;
    }
    let from_addr = format!("send@{}", cur.domain);
    let who = cur.clone();
    let tell = |ctx_server: &mut crate::openpgp::ServerKey, subject: &str, text: String| {
        article_for_nym(cfg, ctx_server, &who, &notice(&from_addr, &who.address(), subject, &text))
    };
    let mut items: Vec<OutItem> = Vec::new();
    let outcome;
    if allowed.is_empty() && out.newsgroups.is_none() {
        let text = if refused.is_empty() {
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
        items.push(tell(&mut ctx.server, "Message not sent", text)?);
        outcome = if refused.is_empty() { "no_recipient" } else { "all_recipients_blocked" };
    } else if cur.send_count >= cfg.send.daily_limit as i64 {
        if !cur.limit_told {
            cur.limit_told = true;
            let text = format!(
                "Your message \"{}\" was not sent: you reached this server's limit of {} messages per day.\n\
                 Sending resumes at 00:00 UTC. Further messages today are refused without notice.\n",
                out.subject, cfg.send.daily_limit
            );
            items.push(tell(&mut ctx.server, "Daily send limit reached", text)?);
        }
        outcome = "daily_limit";
    } else {
        cur.send_count += 1;
        if !allowed.is_empty() {
            let env_from = if cfg.mail.bounce_address.is_empty() {
                cur.address()
            } else {
                cfg.mail.bounce_address.clone()
            };
            items.push(OutItem {
                kind: Kind::Mail,
                env_from,
                env_to: allowed.clone(),
                msgid: out.msgid.clone(),
                body: out.mail.clone(),
            });
        }
        if let Some(groups) = &out.newsgroups {
            items.push(news_post(cfg, &out, groups));
        }
        let mut text = String::new();
        if !refused.is_empty() {
            text.push_str(&format!(
                "Not sent to these recipients, who are on this server's block list:\n  {}\n\n",
                refused.join("\n  ")
            ));
        }
        if cur.acksend || !refused.is_empty() {
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
            items.push(tell(&mut ctx.server, "Message sent", text)?);
        }
        outcome = if refused.is_empty() { "sent" } else { "sent_some_blocked" };
    }
    store::update_send_count(&tx, &cur)?;
    for item in items {
        queue(cfg, &tx, now, item, &mut ctx.mine)?;
    }
    tx.commit()?;
    done(EV, outcome)
}

/// The Usenet copy: our article headers around the nym's message.
fn news_post(cfg: &crate::config::Config, out: &Outgoing, groups: &str) -> OutItem {
    let (headers, body) = split_message(&out.mail);
    let n = &cfg.news;
    let mut art = format!("Path: {}\nNewsgroups: {}\n", n.path, sanitize_header(groups));
    for h in &headers {
        // Mail-only headers do not belong in an article.
        if h.is("to") || h.is("cc") {
            continue;
        }
        art.push_str(&h.text);
        art.push('\n');
    }
    art.push_str(&format!(
        "Injection-Info: {}; mail-complaints-to=\"{}\"\n\n",
        n.injection_host, n.complaints_to
    ));
    let mut bytes = art.into_bytes();
    bytes.extend_from_slice(&body);
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    OutItem {
        kind: Kind::News,
        env_from: String::new(),
        env_to: vec![],
        msgid: out.msgid.clone(),
        body: bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocklist_matching() {
        let list = vec!["bob@example.org".to_string(), "@corp.example".into(), "quiet.example".into()];
        assert!(blocked(&list, "Bob@Example.org"));
        assert!(!blocked(&list, "rob@example.org"));
        assert!(blocked(&list, "x@corp.example"));
        assert!(blocked(&list, "x@mail.corp.example"));
        assert!(blocked(&list, "y@quiet.example"));
        assert!(!blocked(&list, "y@notquiet.example"));
    }

    #[test]
    fn headers_split_and_fold() {
        let (h, b) = split_message(b"To: a@b\nSubject: one\n two\nbogus line\n\nbody\n");
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].text, "Subject: one\n two");
        assert_eq!(b, b"body\n");
    }
}
