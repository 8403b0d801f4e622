//! The Type I ("cypherpunk") remailer message, REPLY-BLOCKS.md section
//! 10: the pieces of its grammar, pure. The engine that strings them
//! together (layers, policy, output) is `handle::remailer`.
//!
//! Text is read with CRLF as LF. A *blank* line is empty or only spaces
//! and tabs. Field names of directives are compared without case.

pub use super::remailer_info::{
    capability_line, parse_known_remailers, request_of, Capabilities, RemailerRequest,
};

/// Whether `line` is blank (empty, or spaces and tabs only).
pub fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

/// `text` with every CRLF turned into LF.
pub fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// The lines of `text`, each with its end (`\n`) and its byte offset.
pub fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut at = 0usize;
    text.split_inclusive('\n').map(move |l| {
        let start = at;
        at += l.len();
        (start, l)
    })
}

/// A line without its line end.
pub fn bare(line: &str) -> &str {
    let l = line.strip_suffix('\n').unwrap_or(line);
    l.strip_suffix('\r').unwrap_or(l)
}

/// The line `::` (trailing blanks allowed) that opens a directive block.
pub fn is_colons(line: &str) -> bool {
    bare(line).trim_end_matches([' ', '\t']) == "::"
}

/// The line `##` (trailing blanks allowed) that opens pasted headers.
pub fn is_hashes(line: &str) -> bool {
    bare(line).trim_end_matches([' ', '\t']) == "##"
}

/// The line `**` (trailing blanks allowed) that ends the clear part of an
/// `Encrypt-Key` message (10.5).
pub fn is_stars(line: &str) -> bool {
    bare(line).trim_end_matches([' ', '\t']) == "**"
}

/// A header field line `Name: value`: the name is printable ASCII without
/// a colon (RFC 5322), the value is trimmed. Continuation lines and
/// anything else are `None`.
pub fn field(line: &str) -> Option<(&str, &str)> {
    let l = bare(line);
    let (name, value) = l.split_once(':')?;
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b)) {
        return None;
    }
    Some((name, value.trim_matches([' ', '\t'])))
}

/// What a directive field (10.3) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `Anon-To` and its aliases: mail to these (comma-separated) addresses.
    MailTo(String),
    /// `Anon-Post-To`, `Post-To`: post to these newsgroups.
    PostTo(String),
    /// `Encrypted`: decrypt the next armored message (the value is not read).
    Encrypted,
    LatentTime(String),
    Cutmarks(String),
    /// `Encrypt-Key` and its cipher-named aliases: one output cipher for all.
    EncryptKey(String),
    /// `Hash-Subject`; only `yes` (any case) turns it on.
    HashSubject(bool),
    Null,
    /// A directive we do not carry out: the message is dropped.
    Unsupported,
    /// Anything else: no effect.
    Ignored,
}

/// Read one directive field.
pub fn directive(name: &str, value: &str) -> Directive {
    let n = name.to_ascii_lowercase();
    let v = value.to_string();
    match n.as_str() {
        "anon-to" | "request-remailing-to" | "remail-to" | "anon-send-to" => Directive::MailTo(v),
        "anon-post-to" | "post-to" => Directive::PostTo(v),
        "encrypted" => Directive::Encrypted,
        "latent-time" => Directive::LatentTime(v),
        "cutmarks" => Directive::Cutmarks(v),
        "encrypt-key" | "encrypt-idea" | "encrypt-des" | "encrypt-3des" | "encrypt-cast"
        | "encrypt-cast5" => Directive::EncryptKey(v),
        "hash-subject" => Directive::HashSubject(value.trim().eq_ignore_ascii_case("yes")),
        "null" => Directive::Null,
        "test-to" | "remix-to" | "encrypt-to" | "rand-hop" | "max-size" | "max-count" | "max-date"
        | "encrypt-subject" => Directive::Unsupported,
        _ => Directive::Ignored,
    }
}

/// A parsed `Latent-Time` value (10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latent {
    /// `+H:MM`: a delay; otherwise a time of day (UTC).
    pub relative: bool,
    pub hours: u32,
    pub minutes: u32,
    /// The `r` suffix: a random part of the delay.
    pub random: bool,
}

/// `^\s*(\+)?(\d{0,2}):(\d{2})([rR])?\s*$`, minutes 00-59, hours 0-23
/// for a time of day. Anything else is `None` (treated as absent).
pub fn parse_latent(value: &str) -> Option<Latent> {
    let v = value.trim_matches(|c: char| c.is_ascii_whitespace());
    let (relative, v) = match v.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (v, random) = match v.strip_suffix(['r', 'R']) {
        Some(rest) => (rest, true),
        None => (v, false),
    };
    let (h, m) = v.split_once(':')?;
    if h.len() > 2 || !h.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if m.len() != 2 || !m.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: u32 = if h.is_empty() { 0 } else { h.parse().ok()? };
    let minutes: u32 = m.parse().ok()?;
    if minutes > 59 || (!relative && hours > 23) {
        return None;
    }
    Some(Latent { relative, hours, minutes, random })
}

impl Latent {
    /// Seconds from `now` (seconds since the epoch, UTC), before the
    /// random part and the clamp: `+H:MM` is that long; `HH:MM` lasts
    /// until the next `HH:MM:00` UTC at or after now.
    pub fn delay(&self, now: i64) -> i64 {
        let span = i64::from(self.hours) * 3600 + i64::from(self.minutes) * 60;
        if self.relative {
            return span;
        }
        let today = now.rem_euclid(86400);
        if span >= today {
            span - today
        } else {
            span + 86400 - today
        }
    }
}

/// Why an address list is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

/// A bare `local@domain` (angle brackets allowed around it): no display
/// name, no comment, no source route, no IP literal. Lowercased domain.
pub fn bare_address(a: &str) -> Result<String, BadAddress> {
    let a = a.trim();
    let a = match a.strip_prefix('<') {
        Some(rest) => rest.strip_suffix('>').ok_or(BadAddress)?,
        None => a,
    };
    if a.len() > 254 {
        return Err(BadAddress);
    }
    let (local, domain) = a.rsplit_once('@').ok_or(BadAddress)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| b.is_ascii_graphic() && !b"@<>()[],;:\"\\".contains(&b));
    if !local_ok || !is_domain(domain) {
        return Err(BadAddress);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// A DNS name of at least two labels, not all-numeric at the end (so not
/// an IPv4 address written bare).
fn is_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// The comma-separated addresses of the mail directives, in order.
pub fn parse_addresses(value: &str) -> Result<Vec<String>, BadAddress> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(bare_address).collect()
}

/// The comma-separated newsgroups of a post directive.
pub fn parse_newsgroups(value: &str) -> Option<Vec<String>> {
    let groups: Vec<String> =
        value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect();
    let ok = |g: &String| {
        g.len() <= 128
            && g.split('.')
                .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-_".contains(&b)))
    };
    (!groups.is_empty() && groups.iter().all(ok)).then_some(groups)
}

/// Whether `group` matches one of the operator's `blocked_groups`
/// patterns: a group name, or a prefix ending in `*` (`alt.binaries.*`).
pub fn group_blocked(patterns: &[String], group: &str) -> bool {
    let g = group.to_ascii_lowercase();
    patterns.iter().any(|p| {
        let p = p.trim().to_ascii_lowercase();
        match p.strip_suffix('*') {
            Some(prefix) => g.starts_with(prefix),
            None => g == p,
        }
    })
}

/// Split `text` at its first `**` line (10.5): the clear part before and
/// the part after it. Without such a line the whole text is to encrypt.
pub fn split_stars(text: &str) -> (&str, &str) {
    for (at, line) in lines_with_offsets(text) {
        if is_stars(line) {
            return (&text[..at], &text[at + line.len()..]);
        }
    }
    ("", text)
}

/// Cut `text` at each line equal to `mark` (10.7): the first piece is
/// this message, each later one a new message. At most `max` pieces are
/// returned; the second element counts the pieces left out.
pub fn cut(text: &str, mark: &str, max: usize) -> (Vec<String>, usize) {
    let mut pieces = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if bare(line).trim_end_matches([' ', '\t']) == mark {
            pieces.push(String::new());
        } else if let Some(last) = pieces.last_mut() {
            last.push_str(line);
        }
    }
    let dropped = pieces.len().saturating_sub(max);
    pieces.truncate(max.max(1));
    (pieces, dropped)
}

/// Whether a pasted `##` field is left out of the output (10.6: Mixmaster's
/// `header.blk` and ours). `post`: the output is an article.
pub fn pasted_field_dropped(name: &str, value: &str, post: bool) -> bool {
    let n = name.to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "from",
        "sender",
        "x-sender",
        "approved",
        "errors-to",
        "message-id",
        "path",
        "received",
        "to",
        "cc",
        "bcc",
        "date",
        "return-path",
        "delivered-to",
        "supersedes",
        "also-control",
        "xref",
        "x-trace",
        "x-complaints-to",
        "dkim-signature",
        "authentication-results",
    ];
    const PREFIX: &[&str] = &["resent-", "injection-", "nntp-posting-", "arc-"];
    EXACT.contains(&n.as_str())
        || PREFIX.iter().any(|p| n.starts_with(p))
        || (n == "comments" && value.trim_start().to_ascii_lowercase().starts_with("authenticated sender is"))
        || (post && n == "newsgroups")
}

/// Whether a pasted field drops the whole message (10.6): any `Control:`,
/// or a `Newsgroups:` naming six or more groups.
pub fn pasted_field_drops_message(name: &str, value: &str) -> bool {
    name.eq_ignore_ascii_case("control")
        || (name.eq_ignore_ascii_case("newsgroups")
            && value.split(',').filter(|g| !g.trim().is_empty()).count() >= 6)
}

/// The `##` block of a message, once read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pasted {
    /// The fields that pass, as `Name: value` lines, Subject excluded.
    pub fields: Vec<String>,
    pub subject: Option<String>,
    /// A field that drops the message was present.
    pub drop: bool,
}

/// If the first non-blank line of `text` is `##`, read the header lines
/// up to the next blank line (10.6) and return them with the rest of the
/// text; otherwise `None`.
pub fn paste(text: &str, post: bool) -> Option<(Pasted, &str)> {
    let mut it = lines_with_offsets(text).skip_while(|(_, l)| is_blank(bare(l)));
    let (_, first) = it.next()?;
    if !is_hashes(first) {
        return None;
    }
    let mut p = Pasted::default();
    let mut rest_at = text.len();
    for (at, line) in it {
        if is_blank(bare(line)) {
            rest_at = at + line.len();
            break;
        }
        let Some((name, value)) = field(line) else { continue };
        if pasted_field_drops_message(name, value) {
            p.drop = true;
        }
        if pasted_field_dropped(name, value, post) {
            continue;
        }
        let value = clean(value);
        if name.eq_ignore_ascii_case("subject") {
            p.subject = Some(value);
        } else {
            p.fields.push(format!("{name}: {value}"));
        }
    }
    Some((p, &text[rest_at.min(text.len())..]))
}

/// A header value on one line: control characters become spaces.
pub fn clean(v: &str) -> String {
    v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The first armored `PGP MESSAGE` of `text`: (start, end) byte offsets,
/// `end` just past its END line (its line end included).
pub fn find_message(text: &str) -> Option<(usize, usize)> {
    let mut start = None;
    for (at, line) in lines_with_offsets(text) {
        let l = bare(line).trim_end();
        match start {
            None if l == "-----BEGIN PGP MESSAGE-----" => start = Some(at),
            Some(s) if l == "-----END PGP MESSAGE-----" => return Some((s, at + line.len())),
            _ => {}
        }
    }
    None
}

/// A single-part body in quoted-printable or base64, decoded (10.2); any
/// other body is returned unchanged. `header` holds the message's fields.
pub fn decode_single_part(header: &[(String, String)], body: &str) -> String {
    let get = |n: &str| header.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    if get("content-type").is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/")) {
        return body.to_string();
    }
    let cte = get("content-transfer-encoding").map(|v| v.trim().to_ascii_lowercase());
    match cte.as_deref() {
        Some("quoted-printable") => normalise(&String::from_utf8_lossy(&decode_qp(body))),
        Some("base64") => match decode_base64(body) {
            Some(b) => normalise(&String::from_utf8_lossy(&b)),
            None => body.to_string(),
        },
        _ => body.to_string(),
    }
}

/// Quoted-printable (RFC 2045 6.7): `=XX` and soft line breaks; a stray
/// `=` is kept as it is.
pub fn decode_qp(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (content, nl) = match line.strip_suffix('\n') {
            Some(c) => (c.strip_suffix('\r').unwrap_or(c), true),
            None => (line, false),
        };
        let content = content.trim_end_matches([' ', '\t']);
        let (content, soft) = match content.strip_suffix('=') {
            Some(c) => (c, true),
            None => (content, false),
        };
        let b = content.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && i + 3 <= b.len() {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        if nl && !soft {
            out.push(b'\n');
        }
    }
    out
}

/// Base64 (RFC 2045 6.8), whitespace ignored; `None` on any other
/// character outside the alphabet.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(v: &str) -> Option<Latent> {
        parse_latent(v)
    }

    #[test]
    fn latent_time_examples_of_the_spec() {
        let now = 1_800_000_000 - 1_800_000_000 % 86400; // 00:00 UTC
        assert_eq!(lt("+0:00").unwrap().delay(now), 0);
        assert_eq!(lt("+1:30").unwrap().delay(now), 5400);
        assert_eq!(lt("+:05").unwrap().delay(now), 300);
        let at_1730 = now + 17 * 3600 + 30 * 60;
        let at_1830 = now + 18 * 3600 + 30 * 60;
        assert_eq!(lt("18:00").unwrap().delay(at_1730), 1800);
        assert_eq!(lt("18:00").unwrap().delay(at_1830), 84600);
        // At the very second: no wait; one second later: a day.
        assert_eq!(lt("18:00").unwrap().delay(now + 18 * 3600), 0);
        assert_eq!(lt("18:00").unwrap().delay(now + 18 * 3600 + 1), 86399);
    }

    #[test]
    fn latent_time_follows_the_regex() {
        assert_eq!(lt(" +12:34r "), Some(Latent { relative: true, hours: 12, minutes: 34, random: true }));
        assert_eq!(lt("3:07R"), Some(Latent { relative: false, hours: 3, minutes: 7, random: true }));
        assert_eq!(lt(":00"), Some(Latent { relative: false, hours: 0, minutes: 0, random: false }));
        assert_eq!(lt("+99:59").unwrap().delay(0), 99 * 3600 + 59 * 60);
        for bad in
            ["", "12", "+123:00", "1:5", "1:60", "24:00", "+1:00x", "++1:00", "1:00 r", "a:00", "1:000"]
        {
            assert_eq!(lt(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn directives_are_read_without_case() {
        assert_eq!(directive("ANON-TO", "a@b.example"), Directive::MailTo("a@b.example".into()));
        assert_eq!(directive("Request-Remailing-To", "x"), Directive::MailTo("x".into()));
        assert_eq!(directive("remail-to", "x"), Directive::MailTo("x".into()));
        assert_eq!(directive("Anon-Send-To", "x"), Directive::MailTo("x".into()));
        assert_eq!(directive("Post-To", "alt.test"), Directive::PostTo("alt.test".into()));
        assert_eq!(directive("encrypted", "whatever"), Directive::Encrypted);
        assert_eq!(directive("Encrypt-CAST5", "k"), Directive::EncryptKey("k".into()));
        assert_eq!(directive("Hash-Subject", "YES"), Directive::HashSubject(true));
        assert_eq!(directive("Hash-Subject", "no"), Directive::HashSubject(false));
        for u in [
            "Test-To",
            "Remix-To",
            "Encrypt-To",
            "Rand-Hop",
            "Max-Size",
            "Max-Count",
            "Max-Date",
            "Encrypt-Subject",
        ] {
            assert_eq!(directive(u, "x"), Directive::Unsupported, "{u}");
        }
        for i in ["Inflate", "X-Anon-To", "Send-To", "Subject"] {
            assert_eq!(directive(i, "x"), Directive::Ignored, "{i}");
        }
    }

    #[test]
    fn mail_destinations_are_bare_addresses_without_ip_literals() {
        assert_eq!(
            parse_addresses("a@B.Example, <c@d.example>"),
            Ok(vec!["a@b.example".into(), "c@d.example".into()])
        );
        for bad in [
            "Name <a@b.example>",
            "a@[10.0.0.1]",
            "a@10.0.0.1",
            "a@localhost",
            "a",
            "a@b.example (x)",
            "@b.example",
            "a@-b.example",
            "<a@b.example",
        ] {
            assert_eq!(parse_addresses(bad), Err(BadAddress), "{bad:?}");
        }
    }

    #[test]
    fn stars_split_the_clear_part_from_the_encrypted_one() {
        assert_eq!(split_stars("clear\n** \nsecret\n**\nmore\n"), ("clear\n", "secret\n**\nmore\n"));
        assert_eq!(split_stars("all secret\n"), ("", "all secret\n"));
        assert_eq!(split_stars("x\n ** \n"), ("", "x\n ** \n"));
    }

    #[test]
    fn cutmarks_cut_at_whole_lines_and_are_capped() {
        let (p, d) = cut("a\n--\nb\n--x\n--\nc\n", "--", 4);
        assert_eq!(p, vec!["a\n", "b\n--x\n", "c\n"]);
        assert_eq!(d, 0);
        let flood = "x\n--\n".repeat(100);
        let (p, d) = cut(&flood, "--", 4);
        assert_eq!(p.len(), 4);
        assert_eq!(d, 97);
    }

    #[test]
    fn hash_paste_deny_list() {
        for f in [
            "From",
            "Sender",
            "X-Sender",
            "Resent-From",
            "Resent-Message-ID",
            "Approved",
            "Errors-To",
            "Message-ID",
            "Path",
            "Received",
            "To",
            "Cc",
            "Bcc",
            "Date",
            "Return-Path",
            "Delivered-To",
            "Supersedes",
            "Also-Control",
            "Xref",
            "Injection-Info",
            "Injection-Date",
            "NNTP-Posting-Host",
            "NNTP-Posting-Date",
            "X-Trace",
            "X-Complaints-To",
            "DKIM-Signature",
            "ARC-Seal",
            "ARC-Message-Signature",
            "Authentication-Results",
        ] {
            assert!(pasted_field_dropped(f, "x", false), "{f}");
            assert!(pasted_field_dropped(&f.to_ascii_uppercase(), "x", true), "{f}");
        }
        assert!(pasted_field_dropped("Comments", "Authenticated sender is x@y", false));
        assert!(!pasted_field_dropped("Comments", "hello", false));
        assert!(pasted_field_dropped("Newsgroups", "alt.test", true));
        assert!(!pasted_field_dropped("Newsgroups", "alt.test", false));
        for f in [
            "Subject",
            "Reply-To",
            "In-Reply-To",
            "References",
            "X-No-Archive",
            "Content-Type",
            "MIME-Version",
        ] {
            assert!(!pasted_field_dropped(f, "x", false), "{f}");
        }
        assert!(pasted_field_drops_message("CONTROL", "cancel <x@y>"));
        assert!(pasted_field_drops_message("Newsgroups", "a.a,b.b,c.c,d.d,e.e,f.f"));
        assert!(!pasted_field_drops_message("Newsgroups", "a.a,b.b,c.c,d.d,e.e"));
    }

    #[test]
    fn hash_paste_reads_fields_to_the_blank_line() {
        let text = "\n##\nSubject: tag\nReply-To: quill@nym.example\nFrom: me@home.example\n  folded\nnot a field\n\nbody\n";
        let (p, rest) = paste(text, false).unwrap();
        assert_eq!(p.subject.as_deref(), Some("tag"));
        assert_eq!(p.fields, vec!["Reply-To: quill@nym.example"]);
        assert!(!p.drop);
        assert_eq!(rest, "body\n");
        assert!(paste("body\n##\n", false).is_none());
        let (p, _) = paste("##\nControl: cancel <a@b>\n\n", false).unwrap();
        assert!(p.drop);
    }

    #[test]
    fn known_remailers_file_format() {
        let t = "# ours\nremailer@r2.test\n$remailer{\"r3\"} = \"<mix@R3.test> cpunk pgp hash latent\";\n\ngarbage line\n";
        assert_eq!(parse_known_remailers(t), vec!["remailer@r2.test", "mix@r3.test"]);
    }

    #[test]
    fn request_subjects() {
        assert_eq!(request_of(" Remailer-Help "), Some(RemailerRequest::Help));
        assert_eq!(request_of("help"), Some(RemailerRequest::Help));
        assert_eq!(request_of("remailer-key"), Some(RemailerRequest::Key));
        assert_eq!(request_of("REMAILER-CONF"), Some(RemailerRequest::Key));
        assert_eq!(request_of("destination-block"), Some(RemailerRequest::DestinationBlock));
        assert_eq!(request_of("remailer-stats"), Some(RemailerRequest::Other));
        assert_eq!(request_of("hello"), None);
    }

    #[test]
    fn capability_line_in_mixmasters_order() {
        let mut c = Capabilities {
            name: "r1",
            address: "remailer@r1.test",
            middleman: true,
            pgp_only: true,
            post: false,
            max_message_size: 20 * 1024 * 1024,
            extra: "",
        };
        assert_eq!(
            capability_line(&c),
            "$remailer{\"r1\"} = \"<remailer@r1.test> cpunk middle pgp pgponly hsub latent hash cut ek ekx klen20480\";"
        );
        c.middleman = false;
        c.pgp_only = false;
        c.post = true;
        c.extra = "foo";
        let l = capability_line(&c);
        assert_eq!(l, "$remailer{\"r1\"} = \"<remailer@r1.test> cpunk pgp hsub latent hash cut ek ekx post klen20480 foo\";");
        for never in [" max", " test", " mix", " esub", " reord", " inflt", " rhop"] {
            assert!(!l.contains(never), "{never}");
        }
    }

    #[test]
    fn single_part_bodies_are_decoded() {
        let h = |cte: &str| vec![("Content-Transfer-Encoding".to_string(), cte.to_string())];
        assert_eq!(
            decode_single_part(&h("quoted-printable"), "::=\r\n\nAnon-To: a=3Db@c.example\n"),
            "::\nAnon-To: a=b@c.example\n"
        );
        assert_eq!(
            decode_single_part(&h("Base64"), "OjoKQW5vbi1U\nbzogeEB5LmV4YW1wbGUK\n"),
            "::\nAnon-To: x@y.example\n"
        );
        assert_eq!(decode_single_part(&h("7bit"), "a=3D"), "a=3D");
        let multi = vec![
            ("Content-Type".to_string(), "multipart/mixed; boundary=x".to_string()),
            ("Content-Transfer-Encoding".to_string(), "base64".to_string()),
        ];
        assert_eq!(decode_single_part(&multi, "OjoK"), "OjoK");
        assert_eq!(decode_qp("a=\nb=ZZ=4"), b"ab=ZZ=4");
    }

    #[test]
    fn the_first_armored_message_is_found() {
        let t = "x\n-----BEGIN PGP MESSAGE-----\n\nabc\n-----END PGP MESSAGE-----\ntail\n";
        let (s, e) = find_message(t).unwrap();
        assert!(t[s..].starts_with("-----BEGIN"));
        assert_eq!(&t[e..], "tail\n");
        assert!(find_message("-----BEGIN PGP MESSAGE-----\nno end\n").is_none());
    }

    #[test]
    fn newsgroups_and_blocked_groups() {
        assert_eq!(
            parse_newsgroups("alt.test, Misc.Misc"),
            Some(vec!["alt.test".into(), "misc.misc".into()])
        );
        assert_eq!(parse_newsgroups("alt..test"), None);
        assert_eq!(parse_newsgroups(""), None);
        let pats = vec!["alt.binaries.*".to_string(), "misc.misc".to_string()];
        assert!(group_blocked(&pats, "alt.binaries.x"));
        assert!(group_blocked(&pats, "Misc.Misc"));
        assert!(!group_blocked(&pats, "alt.test"));
    }
}
