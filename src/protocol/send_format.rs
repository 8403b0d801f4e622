//! Which of the two send@ formats a request is (REPLY-BLOCKS.md section
//! 8.1), and the two nym.alias.net headers both formats honour:
//! `Hidden-To:` and the per-message `Nym-Commands:`.

use super::config_request::{is_blank, parse_from, FromName};
use super::nym_commands::{self, flag};

/// The format of a send@ request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// A `Config:` request sent to send@: nothing is sent, the nym is told
    /// to use config@.
    Misdirected,
    /// nym.alias.net format; `From` holds every `From:` line of the header
    /// as read by the 4.1 rule (`+ext` allowed).
    NymAlias { from: Vec<Option<FromName>> },
    /// Zax format (PROTOCOL.md section 6).
    Zax,
}

/// `^[\w-]+:`: whether the line is a header field, and its name.
fn field_name(line: &str) -> Option<&str> {
    let n = line.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-').count();
    (n > 0 && line.as_bytes().get(n) == Some(&b':')).then(|| &line[..n])
}

/// The header fields of a request: `(name, value)`, a continuation (a
/// line starting with a space or tab) appended to its field's value after
/// an LF. The header ends at a blank line, or at the first line that
/// starts with a non-space and is not a field (it starts the body).
pub fn header_fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if is_blank(line) {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line);
                }
                None => break,
            }
            continue;
        }
        match field_name(line) {
            Some(n) => out.push((n.to_string(), line[n.len() + 1..].to_string())),
            None => break,
        }
    }
    out
}

/// The text after leading blank lines, with a first line `::` dropped;
/// and whether it was.
fn strip_colons(text: &str) -> (&str, bool) {
    let mut rest = text;
    loop {
        let (line, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if is_blank(line) && !rest.is_empty() {
            rest = next;
            continue;
        }
        if line.trim_end_matches([' ', '\t']) == "::" {
            return (next, true);
        }
        return (rest, false);
    }
}

/// Tell the formats apart. Returns the format and the request text to
/// read further (after blank lines, without a first `::` line).
pub fn detect<'t>(text: &'t str, hosted: &dyn Fn(&str) -> bool) -> (Format, &'t str) {
    let (rest, colons) = strip_colons(text);
    let first = rest.split('\n').next().unwrap_or("");
    if !colons && first.len() >= 7 && first.is_char_boundary(7) && first[..7].eq_ignore_ascii_case("Config:")
    {
        return (Format::Misdirected, rest);
    }
    let from: Vec<Option<FromName>> =
        header_fields(rest).iter().filter(|(n, _)| n == "From").map(|(_, v)| parse_from(v, hosted)).collect();
    if colons || from.iter().any(Option::is_some) {
        (Format::NymAlias { from }, rest)
    } else {
        (Format::Zax, rest)
    }
}

/// Most addresses a `Hidden-To:` header is split into (the caller applies
/// `[send] max_recipients`; this only bounds the work).
pub const MAX_HIDDEN_TO: usize = 1000;

/// The addresses of `Hidden-To:` values (continuations included), split
/// on white space and commas, angle brackets dropped.
pub fn hidden_to<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.as_ref().split(|c: char| c.is_whitespace() || c == ',').collect::<Vec<_>>())
        .map(|a| a.trim_start_matches('<').trim_end_matches('>'))
        .filter(|a| !a.is_empty())
        .take(MAX_HIDDEN_TO + 1)
        .map(str::to_string)
        .collect()
}

/// What the `Nym-Command(s):` lines of one send@ message ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageCommands {
    pub acksend: Option<bool>,
    pub signsend: Option<bool>,
    /// One line per token or problem that was not honoured.
    pub warnings: Vec<String>,
}

/// Only `±acksend` and `±signsend` count for one message; everything else
/// is a warning.
pub fn message_commands<S: AsRef<str>>(values: &[S]) -> MessageCommands {
    let c = nym_commands::parse(&nym_commands::join_lines(values));
    let honoured = flag::ACKSEND | flag::SIGNSEND;
    let pick = |bit: u32| {
        if c.set & bit != 0 {
            Some(true)
        } else if c.clear & bit != 0 {
            Some(false)
        } else {
            None
        }
    };
    let mut m =
        MessageCommands { acksend: pick(flag::ACKSEND), signsend: pick(flag::SIGNSEND), warnings: vec![] };
    let other = (c.set | c.clear) & !honoured;
    for (n, b) in nym_commands::NAMED {
        if other & b != 0 {
            m.warnings.push(format!(
                "Ignored {}{n}: only +/-acksend and +/-signsend work on send@",
                if c.set & b != 0 { '+' } else { '-' }
            ));
        }
    }
    if c.name.is_some() || c.create.is_some() || c.delete || c.drop_reply_blocks {
        m.warnings.push("Ignored a configuration command: send it to config@".into());
    }
    m.warnings.extend(c.problems.iter().map(|p| format!("Ignored: {}", p.line())));
    m
}

/// A send@ request made ready for the Zax writer: the nym.alias.net
/// headers taken out, the rest byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The message to send (its header without `Hidden-To:` and
    /// `Nym-Command(s):`; in nym.alias.net format without `From:` and a
    /// first `::` line; with `From: "name=" <nym>` when the holder set a
    /// display name and the message gives none).
    pub text: Vec<u8>,
    /// The `Hidden-To:` addresses, if the header had that field.
    pub hidden_to: Option<Vec<String>>,
    pub commands: MessageCommands,
}

/// Prepare `plaintext` (a send@ request in `format`, not `Misdirected`)
/// for the nym `address` whose display name is `name`.
pub fn prepare(plaintext: &[u8], alias: bool, name: Option<&str>, address: &str) -> Prepared {
    let mut lines = plaintext.split_inclusive(|&b| b == b'\n').peekable();
    let blank = |l: &[u8]| l.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    // Leading blank lines, and a first `::` line in nym.alias.net format.
    while lines.peek().is_some_and(|l| blank(l)) {
        lines.next();
    }
    if alias {
        if let Some(l) = lines.peek() {
            let t = String::from_utf8_lossy(l);
            if t.trim_end() == "::" {
                lines.next();
            }
        }
    }
    let mut out = Vec::with_capacity(plaintext.len() + 64);
    let mut hidden: Option<Vec<String>> = None;
    let mut hidden_values: Vec<String> = Vec::new();
    let mut command_values: Vec<String> = Vec::new();
    let mut has_from = false;
    // Which field the current (continued) line belongs to: kept or not.
    #[derive(PartialEq)]
    enum Cur {
        Keep,
        Hidden,
        Commands,
        Drop,
    }
    let mut cur = Cur::Keep;
    let mut in_header = true;
    let mut rest: Vec<u8> = Vec::new();
    for l in lines.by_ref() {
        if !in_header {
            rest.extend_from_slice(l);
            continue;
        }
        let text = String::from_utf8_lossy(l);
        let line = text.trim_end_matches(['\n', '\r']);
        if is_blank(line) {
            in_header = false;
            rest.extend_from_slice(l);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match cur {
                Cur::Keep => out.extend_from_slice(l),
                Cur::Hidden => hidden_values.push(line.to_string()),
                Cur::Commands => command_values.push(line.to_string()),
                Cur::Drop => {}
            }
            continue;
        }
        let Some(field) = field_name(line) else {
            // A non-field line starts the body (8.1).
            in_header = false;
            rest.extend_from_slice(l);
            continue;
        };
        let value = line[field.len() + 1..].to_string();
        cur = if field.eq_ignore_ascii_case("hidden-to") {
            hidden_values.push(value);
            hidden.get_or_insert_with(Vec::new);
            Cur::Hidden
        } else if field.eq_ignore_ascii_case("nym-command") || field.eq_ignore_ascii_case("nym-commands") {
            command_values.push(value);
            Cur::Commands
        } else if field.eq_ignore_ascii_case("from") && alias {
            Cur::Drop
        } else {
            if field.eq_ignore_ascii_case("from") {
                has_from = true;
            }
            out.extend_from_slice(l);
            Cur::Keep
        };
    }
    if let (Some(n), false) = (name, has_from) {
        let quoted: String = n.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
        let mut head = format!("From: \"{quoted}\" <{address}>\n").into_bytes();
        head.extend_from_slice(&out);
        out = head;
    }
    if in_header {
        // No body separator: the writer needs one.
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(&rest);
    if hidden.is_some() {
        hidden = Some(hidden_to(&hidden_values));
    }
    Prepared { text: out, hidden_to: hidden, commands: message_commands(&command_values) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosted(d: &str) -> bool {
        d == "nym.example"
    }

    const ALIAS: &str =
        "From: quill\nTo: editor@paper.example\nHidden-To: tips@other.example, archive@mine.example\n\
Subject: On the council vote\nNym-Commands: +acksend -signsend\n\nBody...\n";
    const ZAX: &str = "From: Quill Pen <quill@nym.example>\nTo: editor@paper.example\nSubject: On the council vote\n\nBody...\n";

    #[test]
    fn format_spec_examples() {
        let (f, _) = detect(ALIAS, &hosted);
        assert_eq!(
            f,
            Format::NymAlias { from: vec![Some(FromName { name: "quill".into(), ext: None, domain: None })] }
        );
        assert_eq!(detect(ZAX, &hosted).0, Format::Zax);
    }

    #[test]
    fn format_config_first_line_any_case_is_misdirected() {
        assert_eq!(detect("\n\nconfig:\nFrom: quill\n", &hosted).0, Format::Misdirected);
        assert_eq!(detect("CONFIG: x\n", &hosted).0, Format::Misdirected);
    }

    #[test]
    fn format_colons_first_line_is_dropped_and_means_nym_alias() {
        let (f, rest) = detect("\n::\nTo: a@b.example\n\nhi\n", &hosted);
        assert_eq!(f, Format::NymAlias { from: vec![] });
        assert_eq!(rest, "To: a@b.example\n\nhi\n");
        assert!(matches!(detect(":: \r\nFrom: quill\n", &hosted).0, Format::NymAlias { .. }));
    }

    #[test]
    fn format_without_from_is_zax() {
        assert_eq!(detect("To: a@b.example\n\nbody\n", &hosted).0, Format::Zax);
        assert_eq!(detect("", &hosted).0, Format::Zax);
    }

    #[test]
    fn format_from_rule_allows_plus_ext_and_hosted_domains_only() {
        let (f, _) = detect("From: quill+news@nym.example\n\nx\n", &hosted);
        let Format::NymAlias { from } = f else { panic!("{f:?}") };
        assert_eq!(from[0].as_ref().unwrap().ext.as_deref(), Some("news"));
        assert_eq!(detect("From: quill@elsewhere.example\n\nx\n", &hosted).0, Format::Zax);
        assert_eq!(detect("from: quill\n\nx\n", &hosted).0, Format::Zax, "From: is case-sensitive");
    }

    #[test]
    fn format_from_in_the_body_does_not_count() {
        assert_eq!(detect("To: a@b.example\n\nFrom: quill\n", &hosted).0, Format::Zax);
        // A non-field line starts the body.
        assert_eq!(detect("To: a@b.example\nHello\nFrom: quill\n", &hosted).0, Format::Zax);
    }

    #[test]
    fn format_two_from_lines_are_both_reported() {
        let (f, _) = detect("From: quill\nFrom: Someone <x@y>\n\nb\n", &hosted);
        let Format::NymAlias { from } = f else { panic!() };
        assert_eq!(from.len(), 2);
        assert!(from[1].is_none());
    }

    #[test]
    fn header_continuations_join_their_field() {
        let f = header_fields("Hidden-To: a@b.example,\n  c@d.example\n\tmore@e.example\nSubject: x\n\nbody");
        assert_eq!(f[0], ("Hidden-To".into(), " a@b.example,\n  c@d.example\n\tmore@e.example".into()));
        assert_eq!(f[1].0, "Subject");
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn hidden_to_splits_on_white_space_and_commas() {
        let f = header_fields(ALIAS);
        let v: Vec<&String> =
            f.iter().filter(|(n, _)| n.eq_ignore_ascii_case("hidden-to")).map(|(_, v)| v).collect();
        assert_eq!(hidden_to(&v), vec!["tips@other.example", "archive@mine.example"]);
        assert_eq!(hidden_to(&[" a@b,,c@d\n\t<e@f> "]), vec!["a@b", "c@d", "e@f"]);
        assert!(hidden_to(&["  ,  "]).is_empty());
    }

    #[test]
    fn hidden_to_is_bounded() {
        let many = "a@b ".repeat(5000);
        assert_eq!(hidden_to(&[many]).len(), MAX_HIDDEN_TO + 1);
    }

    #[test]
    fn prepare_spec_example_takes_out_the_nym_alias_headers() {
        let p = prepare(ALIAS.as_bytes(), true, Some("Quill Pen"), "quill@nym.example");
        let t = String::from_utf8(p.text).unwrap();
        assert_eq!(
            t,
            "From: \"Quill Pen\" <quill@nym.example>\nTo: editor@paper.example\nSubject: On the council vote\n\nBody...\n"
        );
        assert_eq!(p.hidden_to, Some(vec!["tips@other.example".into(), "archive@mine.example".into()]));
        assert_eq!((p.commands.acksend, p.commands.signsend), (Some(true), Some(false)));
    }

    #[test]
    fn prepare_keeps_the_body_byte_for_byte_and_continuations_with_their_field() {
        let mut raw =
            b"\n::\nFrom: quill\nHidden-To: a@b.example,\n  c@d.example\nX-Keep: 1\n  more\n\n".to_vec();
        raw.extend_from_slice(b"Hidden-To: not@header.example\n\xff\x00bytes\n");
        let p = prepare(&raw, true, None, "quill@nym.example");
        let mut want = b"X-Keep: 1\n  more\n\nHidden-To: not@header.example\n".to_vec();
        want.extend_from_slice(b"\xff\x00bytes\n");
        assert_eq!(p.text, want);
        assert_eq!(p.hidden_to, Some(vec!["a@b.example".into(), "c@d.example".into()]));
    }

    #[test]
    fn prepare_zax_format_keeps_from_and_adds_name_only_without_one() {
        let p = prepare(ZAX.as_bytes(), false, Some("Other"), "quill@nym.example");
        assert!(String::from_utf8(p.text).unwrap().starts_with("From: Quill Pen <quill@nym.example>\n"));
        let p = prepare(b"To: a@b.example\n\nx\n", false, Some("Q \"P\""), "quill@nym.example");
        assert!(String::from_utf8(p.text).unwrap().starts_with("From: \"Q P\" <quill@nym.example>\nTo:"));
        assert_eq!(p.hidden_to, None);
        let p = prepare(b"Hidden-To:\n\nx\n", false, None, "q@n");
        assert_eq!(p.hidden_to, Some(vec![]));
    }

    #[test]
    fn message_commands_honour_only_acksend_and_signsend() {
        let m = message_commands(&[" +acksend -signsend"]);
        assert_eq!(m, MessageCommands { acksend: Some(true), signsend: Some(false), warnings: vec![] });
        let m = message_commands(&[" -acksend +nobcc", "delete name=\"x\" +bogus"]);
        assert_eq!((m.acksend, m.signsend), (Some(false), None));
        assert_eq!(m.warnings.len(), 3, "{:?}", m.warnings);
        assert!(m.warnings[0].contains("+nobcc"));
        assert!(m.warnings[2].ends_with("[invalid-switch]"));
    }
}
