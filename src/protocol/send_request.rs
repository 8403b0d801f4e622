//! The send@ request (PROTOCOL.md section 6), both directions: the
//! header policy the server applies to what a nym sends, and the writer
//! the client composes the message with.
//!
//! Header policy for what leaves (documented in README "What send@ sends"):
//! - `From:` is always the signing nym's address; a display name the user
//!   gave is kept. `Sender`, `Reply-To`-style tricks cannot put another
//!   address in From because From is rebuilt, never copied.
//! - Removed, because they can identify the sender's machine, software or
//!   real identity: everything in [`STRIPPED`], any `X-Originating-*`, and
//!   every `Resent-*` (which would name another sender).
//! - A display name in From that holds an address (`"ceo@bank" <nym@..>`,
//!   also inside an encoded word) is dropped.
//! - Headers whose name is not printable ASCII are dropped; control
//!   characters in header lines (a bare CR, a NUL) become spaces.
//! - The body leaves byte for byte (8-bit text included).
//! - `Bcc:` recipients get the mail but the header never leaves.
//! - `Message-ID:` is generated in the nym's domain when absent; `Date:` is
//!   set at hand-off when absent; `Subject:` is "No Subject" when absent.
//! - `Newsgroups:` posts the message to Usenet as the nym as well.

use std::collections::BTreeSet;

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

/// Whether `name` is a header field name as RFC 5322 allows it: printable
/// ASCII without a colon. Anything else (a NUL, a control character, a
/// space) is dropped with its header, so a parser downstream that splits
/// or drops such bytes differently cannot be shown another header.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// One header line made safe: a bare CR, a NUL or any other control
/// character (tab aside) becomes a space, so no line can be split into two
/// headers by a reader that ends lines at CR.
fn clean_line(line: &str) -> String {
    line.chars().map(|c| if c.is_control() && c != '\t' { ' ' } else { c }).collect()
}

/// Split a message into headers and body. Lines without a colon in the
/// header section are dropped (they are not headers), and so are headers
/// whose name is not a field name. The body is kept byte for byte.
pub fn split_message(msg: &[u8]) -> (Vec<Header>, Vec<u8>) {
    let mut headers: Vec<Header> = Vec::new();
    let mut offset = 0usize;
    let mut body_at = None;
    // A continuation line belongs to the header before it, kept or not.
    let mut last_kept = false;
    for raw in msg.split_inclusive(|&b| b == b'\n') {
        offset += raw.len();
        let bytes = raw.strip_suffix(b"\n").unwrap_or(raw);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.is_empty() {
            body_at = Some(offset);
            break;
        }
        let l = clean_line(&String::from_utf8_lossy(bytes));
        if l.starts_with([' ', '\t']) {
            if let (true, Some(h)) = (last_kept, headers.last_mut()) {
                h.text.push('\n');
                h.text.push_str(&l);
            }
            continue;
        }
        last_kept = false;
        let name_end = bytes.iter().position(|&b| b == b':');
        if let Some(i) = name_end {
            let name = String::from_utf8_lossy(&bytes[..i]);
            if is_field_name(&name) {
                headers.push(Header { name: name.into_owned(), text: l });
                last_kept = true;
            }
        }
    }
    let body = body_at.map(|i| msg[i..].to_vec()).unwrap_or_default();
    (headers, body)
}

/// The addresses of every `which` header (To, Cc or Bcc), each header
/// read on its own: with two `To:` headers, both count.
fn addresses_of(headers: &[Header], which: &str) -> Vec<String> {
    let mut out = Vec::new();
    for h in headers.iter().filter(|h| h.is(which)) {
        let text = format!("{}\n\n", h.text);
        let Some(m) = mail_parser::MessageParser::default().parse(text.as_bytes()) else { continue };
        let a = match which {
            "to" => m.to(),
            "cc" => m.cc(),
            _ => m.bcc(),
        };
        if let Some(a) = a {
            out.extend(a.iter().filter_map(|x| x.address().map(|s| s.trim().to_string())));
        }
    }
    out
}

/// The display name the nym gave in From, if it is only a name: one that
/// holds an address (`"ceo@bank.example" <nym@...>`, also hidden in an
/// encoded word) would show the reader someone else, so it is dropped.
fn display_name(from_header: Option<&Header>) -> Option<String> {
    let h = from_header?;
    let text = format!("{}\n\n", h.text);
    let m = mail_parser::MessageParser::default().parse(text.as_bytes())?;
    let name = m.from()?.first()?.name()?.trim().to_string();
    if name.contains(['@', '<', '>']) {
        return None;
    }
    let name: String = name.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').collect();
    (!name.is_empty()).then_some(name)
}

/// Is `addr` on the operator's block list (addresses and whole domains)?
pub fn blocked(list: &[String], addr: &str) -> bool {
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
pub fn build_outgoing(nym_address: &str, plaintext: &[u8], new_msgid: impl FnOnce() -> String) -> Outgoing {
    let (headers, body) = split_message(plaintext);
    let mut seen = BTreeSet::new();
    let mut recipients = Vec::new();
    for which in ["to", "cc", "bcc"] {
        for a in addresses_of(&headers, which) {
            if a.contains('@') && !a.contains(char::is_whitespace) && seen.insert(a.to_ascii_lowercase()) {
                recipients.push(a);
            }
        }
    }
    let from = match display_name(headers.iter().find(|h| h.is("from"))) {
        Some(name) => format!("\"{name}\" <{nym_address}>"),
        None => nym_address.to_string(),
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
            || lname.starts_with("resent-")
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
    out.push_str(&format!("Message-ID: {}\n\n", super::article::sanitize_header(&msgid)));
    let mut mail = out.into_bytes();
    mail.extend_from_slice(&body);
    Outgoing { recipients, newsgroups, subject, msgid, mail }
}

// ------------------------------------------------------------ the writer

/// What the user wants in the mail sent as the nym.
#[derive(Debug, Default)]
pub struct Draft<'a> {
    pub nym: &'a str,
    pub name: Option<&'a str>,
    pub to: &'a [String],
    pub cc: &'a [String],
    pub bcc: &'a [String],
    pub newsgroups: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub extra_headers: &'a [String],
    pub body: &'a str,
}

/// Build the RFC 5322 message for send@. No Date and no Message-ID: the
/// server adds them, and ours would give away the time zone and host.
pub fn write_message(m: &Draft) -> Result<String, String> {
    if m.to.is_empty() && m.cc.is_empty() && m.bcc.is_empty() && m.newsgroups.is_none() {
        return Err("no recipient: give --to, --cc, --bcc or --newsgroups".into());
    }
    let mut h = String::new();
    match m.name {
        Some(n) => h.push_str(&format!("From: {} <{}>\n", quote_display_name(n), m.nym)),
        None => h.push_str(&format!("From: {}\n", m.nym)),
    }
    for (field, list) in [("To", m.to), ("Cc", m.cc), ("Bcc", m.bcc)] {
        if !list.is_empty() {
            for a in list {
                if a.contains(['\n', '\r']) {
                    return Err(format!("bad address `{a}`"));
                }
            }
            h.push_str(&format!("{field}: {}\n", list.join(", ")));
        }
    }
    if let Some(g) = m.newsgroups {
        h.push_str(&format!("Newsgroups: {}\n", g.replace(' ', "")));
    }
    if let Some(s) = m.subject {
        if s.contains(['\n', '\r']) {
            return Err("the subject must be one line".into());
        }
        h.push_str(&format!("Subject: {}\n", encode_word(s)));
    }
    for line in m.extra_headers {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("`{line}` is not a `Name: value` header"));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) || value.contains(['\n', '\r']) {
            return Err(format!("`{line}` is not a `Name: value` header"));
        }
        h.push_str(&format!("{}: {}\n", name, value.trim()));
    }
    h.push_str("MIME-Version: 1.0\n");
    if m.body.is_ascii() {
        h.push_str("Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n");
    } else {
        h.push_str("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n");
    }
    let mut out = h;
    out.push('\n');
    out.push_str(m.body);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn quote_display_name(n: &str) -> String {
    if n.is_ascii() {
        if n.chars().all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c)) {
            n.to_string()
        } else {
            format!("\"{}\"", n.replace('\\', "\\\\").replace('"', "\\\""))
        }
    } else {
        encode_word(n)
    }
}

/// RFC 2047 encoded word for non-ASCII header text.
pub fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    format!("=?UTF-8?B?{}?=", base64(s.as_bytes()))
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_list_matches_addresses_domains_and_subdomains() {
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

    fn out(plain: &str) -> Outgoing {
        build_outgoing("alice@nym.example", plain.as_bytes(), || "<new@nym.example>".into())
    }

    #[test]
    fn from_is_always_the_nym_with_display_name_kept() {
        let o = out("From: Boss <ceo@bank.example>\nTo: bob@example.org\n\nhi\n");
        let m = String::from_utf8(o.mail).unwrap();
        assert!(m.starts_with("From: \"Boss\" <alice@nym.example>\n"), "{m}");
        assert!(!m.contains("ceo@bank"));
        let o = out("To: bob@example.org\n\nhi\n");
        assert!(o.mail.starts_with(b"From: alice@nym.example\n"));
    }

    #[test]
    fn recipients_come_from_to_cc_and_bcc_once_each() {
        let o = out("To: a@x.example, B@x.example\nCc: b@x.example\nBcc: c@x.example\n\nhi\n");
        assert_eq!(o.recipients, vec!["a@x.example", "B@x.example", "c@x.example"]);
    }

    #[test]
    fn bcc_never_leaves() {
        let o = out("To: a@x.example\nBcc: secret@x.example\n\nhi\n");
        let m = String::from_utf8(o.mail).unwrap();
        assert!(!m.to_ascii_lowercase().contains("bcc"));
        assert!(!m.contains("secret@"));
    }

    #[test]
    fn identifying_headers_are_stripped() {
        let o = out(
            "To: a@x.example\nReceived: from pc\nX-Mailer: M\nUser-Agent: U\nX-Originating-IP: 1.2.3.4\n\
             X-Originating-Foo: z\nSender: s@h\nKeep: me\n\nhi\n",
        );
        let m = String::from_utf8(o.mail).unwrap();
        for gone in ["Received", "X-Mailer", "User-Agent", "X-Originating", "Sender:"] {
            assert!(!m.contains(gone), "{gone} left in {m}");
        }
        assert!(m.contains("Keep: me\n"));
    }

    #[test]
    fn usenet_powers_are_stripped() {
        let o = out("Newsgroups: alt.test\nControl: cancel <x@y>\nApproved: mod\nSupersedes: <a@b>\n\nhi\n");
        let m = String::from_utf8(o.mail).unwrap();
        for gone in ["Control:", "Approved:", "Supersedes:"] {
            assert!(!m.contains(gone), "{gone}");
        }
        assert_eq!(o.newsgroups.as_deref(), Some("alt.test"));
    }

    #[test]
    fn missing_subject_is_no_subject_and_message_id_is_generated() {
        let o = out("To: a@x.example\n\nhi\n");
        assert_eq!(o.subject, "No Subject");
        assert_eq!(o.msgid, "<new@nym.example>");
        let m = String::from_utf8(o.mail).unwrap();
        assert!(m.contains("Subject: No Subject\n") && m.contains("Message-ID: <new@nym.example>\n"));
    }

    #[test]
    fn a_given_message_id_is_kept_if_well_formed() {
        assert_eq!(out("To: a@x.example\nMessage-ID: <mine@h>\n\nx\n").msgid, "<mine@h>");
        assert_eq!(out("To: a@x.example\nMessage-ID: junk\n\nx\n").msgid, "<new@nym.example>");
    }

    #[test]
    fn body_is_kept() {
        let o = out("To: a@x.example\n\nline one\nline two\n");
        assert!(o.mail.ends_with(b"\n\nline one\nline two\n"));
    }

    #[test]
    fn written_message_reads_back_under_the_policy() {
        let to = vec!["bob@example.org".to_string()];
        let cc = vec!["carol@example.org".to_string()];
        let m = write_message(&Draft {
            nym: "alice@nym.example",
            name: Some("Alice A."),
            to: &to,
            cc: &cc,
            subject: Some("Grüße"),
            body: "hi",
            ..Default::default()
        })
        .unwrap();
        assert!(m.starts_with("From: \"Alice A.\" <alice@nym.example>\nTo: bob@example.org\n"));
        assert!(m.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\n"));
        assert!(!m.contains("Date:") && !m.contains("Message-ID"));
        assert!(m.ends_with("\n\nhi\n"));
        let o = out(&m);
        assert_eq!(o.recipients, vec!["bob@example.org", "carol@example.org"]);
        assert!(String::from_utf8(o.mail).unwrap().starts_with("From: \"Alice A.\" <alice@nym.example>\n"));
        assert!(write_message(&Draft { nym: "a@b", body: "x", ..Default::default() }).is_err());
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn bare_cr_cannot_smuggle_a_header() {
        let o = out("To: bob@example.org\nSubject: hi\rFrom: ceo@bank.example\rBcc: spy@x.example\n\nbody\n");
        let m = String::from_utf8(o.mail).unwrap();
        assert!(!m.contains('\r'));
        assert!(m.starts_with("From: alice@nym.example\n"));
        assert_eq!(m.matches("From:").count(), 1 + m.matches("Subject: hi From:").count());
        assert_eq!(o.recipients, vec!["bob@example.org"]);
    }

    #[test]
    fn nul_or_control_in_a_header_name_drops_the_header() {
        let o = out("To: bob@example.org\nFrom\0: ceo@bank.example\nX-\x01Evil: y\n folded\n\nbody\n");
        let m = String::from_utf8(o.mail).unwrap();
        assert!(!m.contains('\0') && !m.contains('\x01'));
        assert!(!m.contains("ceo@bank") && !m.contains("folded"));
    }

    #[test]
    fn display_name_holding_an_address_is_dropped() {
        for from in [
            "From: \"ceo@bank.example\" <alice@nym.example>",
            "From: =?UTF-8?B?Y2VvQGJhbmsuZXhhbXBsZQ==?= <alice@nym.example>",
            "From: \"Boss <ceo@bank.example>\" <alice@nym.example>",
        ] {
            let o = out(&format!("{from}\nTo: bob@example.org\n\nx\n"));
            let m = String::from_utf8(o.mail).unwrap();
            assert!(m.starts_with("From: alice@nym.example\n"), "{from}: {m}");
            assert!(!m.contains("ceo@bank"));
        }
    }

    #[test]
    fn resent_headers_are_removed() {
        let o = out(
            "To: bob@example.org\nResent-From: ceo@bank.example\nResent-Sender: x@y\nRESENT-TO: z@w\n\nx\n",
        );
        let m = String::from_utf8(o.mail).unwrap();
        assert!(!m.to_ascii_lowercase().contains("resent-"), "{m}");
    }

    #[test]
    fn every_to_and_cc_header_counts() {
        let o = out("To: a@x.example\nTo: b@x.example\nCc: c@x.example\nCc: d@x.example\n\nx\n");
        assert_eq!(o.recipients, vec!["a@x.example", "b@x.example", "c@x.example", "d@x.example"]);
    }

    #[test]
    fn eight_bit_body_leaves_byte_for_byte() {
        let mut msg =
            b"To: bob@example.org\nContent-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9 \xff\x00\r\n"
                .to_vec();
        let o = build_outgoing("alice@nym.example", &msg, || "<n@x>".into());
        let body_at = msg.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        let body = msg.split_off(body_at);
        assert!(o.mail.ends_with(&body));
    }
}
