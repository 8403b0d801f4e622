//! What we post and mail: article headers for alt.anonymous.messages,
//! the server's notices to a nym, the Usenet copy of a nym's post, and the
//! subjects a nym recognises its articles by.

use rand::RngCore;

use super::send_request::{split_message, Outgoing};
use crate::config::Config;
use crate::store::{Kind, Nym, OutItem};

/// A Message-ID in our default domain.
pub fn new_msgid(cfg: &Config) -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    format!("<{}@{}>", hex::encode(b), cfg.default_domain())
}

/// Subject for an article to `nym` (PROTOCOL.md section 4).
pub fn subject_for(cfg: &Config, hsub: Option<&str>, subject: Option<&str>) -> String {
    match (hsub, subject) {
        (Some(h), _) => super::hsub::hsub(h.as_bytes(), cfg.limits.hsub_length),
        (None, Some(s)) => sanitize_header(s),
        (None, None) => super::hsub::random_subject(cfg.limits.hsub_length),
    }
}

/// Header values we write must stay on one line.
pub fn sanitize_header(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// An article for alt.anonymous.messages carrying `body` (armored).
/// Date and Injection-Date are added at hand-off.
pub fn article(cfg: &Config, subject: &str, body: &[u8]) -> OutItem {
    let (msgid, mut out) = article_head(cfg, subject, body.len());
    out.extend_from_slice(body);
    article_finish(msgid, out)
}

/// The headers of a new article, in a buffer with room for `body_len`
/// more bytes, so that the body can be written straight after them.
pub fn article_head(cfg: &Config, subject: &str, body_len: usize) -> (String, Vec<u8>) {
    let msgid = new_msgid(cfg);
    let n = &cfg.news;
    let head = format!(
        "Path: {}\nFrom: {}\nSubject: {}\nNewsgroups: {}\nMessage-ID: {}\nInjection-Info: {}; mail-complaints-to=\"{}\"\n\n",
        n.path, n.from, subject, n.newsgroup, msgid, n.injection_host, n.complaints_to
    );
    let mut out = Vec::with_capacity(head.len() + body_len + 1);
    out.extend_from_slice(head.as_bytes());
    (msgid, out)
}

/// Close an article begun with [`article_head`].
pub fn article_finish(msgid: String, mut out: Vec<u8>) -> OutItem {
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    OutItem { kind: Kind::News, env_from: String::new(), env_to: Vec::new(), msgid, body: out, nym: None }
}

/// The plaintext of a notice from the server to a nym: a small mail, so
/// that the nym's reader shows it like any other message.
pub fn notice(from: &str, to: &str, subject: &str, text: &str) -> Vec<u8> {
    let date = crate::transport::rfc5322_date(std::time::SystemTime::now());
    format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nDate: {date}\nContent-Type: text/plain; charset=utf-8\n\n{text}"
    )
    .into_bytes()
}

/// A human-readable list of a nym's options, for confirmations.
pub fn describe_options(n: &Nym) -> String {
    let show =
        |v: &Option<String>| v.as_deref().map(|s| format!("\"{s}\"")).unwrap_or_else(|| "(not set)".into());
    let expires = match n.expires {
        Some(e) => crate::transport::rfc5322_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.max(0) as u64),
        ),
        None => "never".into(),
    };
    format!(
        "Nym:        {}\nKey:        {}\nExpires:    {}\nhsub:       {}\nsubject:    {}\nsymmetric:  {}\nacksend:    {}\n",
        n.address(),
        n.fingerprint,
        expires,
        show(&n.hsub),
        show(&n.subject),
        show(&n.symmetric),
        if n.acksend() { "yes" } else { "no" },
    )
}

/// The Usenet copy: our article headers around the nym's message.
pub fn news_post(cfg: &Config, out: &Outgoing, groups: &str) -> OutItem {
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
        nym: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::for_tests(&["nym.example"])
    }

    #[test]
    fn article_headers_follow_the_protocol() {
        let item = article(&cfg(), "0001", b"-----BEGIN PGP MESSAGE-----\n");
        let t = String::from_utf8(item.body).unwrap();
        assert!(t.starts_with(
            "Path: nym.example!not-for-mail\nFrom: Nobody <nobody@nym.example>\nSubject: 0001\n"
        ));
        assert!(t.contains("Newsgroups: alt.anonymous.messages\n"));
        assert!(t.contains(&format!("Message-ID: {}\n", item.msgid)));
        assert!(t.contains("Injection-Info: nym.example; mail-complaints-to=\"abuse@nym.example\"\n\n"));
        // Date and Injection-Date are set at hand-off, not here.
        assert!(!t.contains("\nDate:") && !t.contains("Injection-Date"));
        assert!(item.msgid.ends_with("@nym.example>"));
    }

    #[test]
    fn subject_is_hsub_then_fixed_then_random() {
        let c = cfg();
        let s = subject_for(&c, Some("panda"), Some("fixed"));
        assert!(super::super::hsub::matches(&s, b"panda"));
        assert_eq!(subject_for(&c, None, Some("fixed\ttext")), "fixed text");
        let r = subject_for(&c, None, None);
        assert_eq!(r.len(), 48);
        assert!(r.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn header_values_stay_on_one_line() {
        assert_eq!(sanitize_header("a\r\nb\0c"), "a  b c");
    }

    #[test]
    fn usenet_copy_drops_mail_only_headers() {
        let o = Outgoing {
            recipients: vec!["bob@x".into()],
            newsgroups: Some("alt.test".into()),
            subject: "s".into(),
            msgid: "<m@nym.example>".into(),
            mail: b"From: alice@nym.example\nTo: bob@x\nCc: c@x\nSubject: s\nMessage-ID: <m@nym.example>\n\nbody".to_vec(),
        };
        let item = news_post(&cfg(), &o, "alt.test");
        let t = String::from_utf8(item.body).unwrap();
        assert!(
            t.starts_with("Path: nym.example!not-for-mail\nNewsgroups: alt.test\nFrom: alice@nym.example\n")
        );
        assert!(!t.contains("To: bob") && !t.contains("Cc:"));
        assert!(t.ends_with("\n\nbody\n"));
        assert_eq!(item.kind, Kind::News);
    }

    #[test]
    fn notice_is_a_small_mail() {
        let n = String::from_utf8(notice("config@d", "a@d", "Nym created", "text\n")).unwrap();
        assert!(n.starts_with("From: config@d\nTo: a@d\nSubject: Nym created\nDate: "));
        assert!(n.ends_with("\n\ntext\n"));
    }
}
