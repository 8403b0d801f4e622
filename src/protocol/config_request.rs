//! The nym.alias.net `Config:` request (REPLY-BLOCKS.md sections 3, 4.1,
//! 4.4 and 6.1): which format a config@ request is, its header lines, its
//! reply-block sections and their size checks. Pure: keys are returned as
//! text for the OpenPGP layer to read, commands as lines for
//! [`nym_commands`](super::nym_commands).

use super::nym_commands::Problem;

/// The error keys of this module.
pub mod keys {
    pub const BAD_FROM: &str = "bad-from";
    pub const PLUSSED_FROM: &str = "plussed-from";
    pub const UNKNOWN_HEADER: &str = "unknown-header";
    pub const TOO_MANY_LINES: &str = "too-many-lines";
    pub const PUBLIC_KEY_COUNT: &str = "public-key-count";
    pub const BAD_PROBABILITY: &str = "bad-probability";
    pub const TOO_MANY_REPLY_BLOCKS: &str = "too-many-reply-blocks";
    pub const REPLY_BLOCK_TOO_LARGE: &str = "reply-block-too-large";
}

/// Most header lines (before the first `Reply-Block:`) a request may have.
pub const MAX_LINES: usize = 1024;

/// Most `Reply-Block:` sections kept from one request; more are only
/// counted (a request with more than `max_per_nym` is refused anyway).
pub const MAX_SECTIONS: usize = 64;

/// The default of `[reply_blocks] max_per_nym`.
pub const MAX_PER_NYM: usize = 4;
/// The default of `[reply_blocks] max_block_bytes`.
pub const MAX_BLOCK_BYTES: usize = 32768;

/// Whether a line is blank: empty or only spaces and tabs.
pub fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

/// The text with CRLF read as LF.
pub fn normalize(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// Section 3: after blank lines, a first line that begins `Config:`
/// (case-sensitive) makes a `Config:` request; anything else is Zax.
pub fn is_config_request(text: &str) -> bool {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .find(|l| !is_blank(l))
        .is_some_and(|l| l.starts_with("Config:"))
}

/// A `From:` line read as we read it (section 4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromName {
    /// The name as written (the caller compares it lowercased).
    pub name: String,
    /// A `+ext`, without the `+`.
    pub ext: Option<String>,
    /// The domain named, lowercased; `None`: the domain of the service
    /// address.
    pub domain: Option<String>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

/// The value of a `From:` line (what follows `From:`) read with
/// `^From:\s*([^\s@+<>(),"]+)(\+[\w-]*)?(@(DOMAIN)(\s[^@]*)?| [^@]*|)\s*$`,
/// `DOMAIN` being any domain `hosted` accepts, whole.
pub fn parse_from(value: &str, hosted: &dyn Fn(&str) -> bool) -> Option<FromName> {
    let v = value.trim_start_matches(is_space);
    let name_end = v.find(|c: char| is_space(c) || "@+<>(),\"".contains(c)).unwrap_or(v.len());
    if name_end == 0 {
        return None;
    }
    let name = &v[..name_end];
    let mut rest = &v[name_end..];
    let mut ext = None;
    if let Some(r) = rest.strip_prefix('+') {
        let n = r.bytes().take_while(|b| is_word(*b) || *b == b'-').count();
        ext = Some(r[..n].to_string());
        rest = &r[n..];
    }
    let mut domain = None;
    if let Some(r) = rest.strip_prefix('@') {
        let n = r.find(is_space).unwrap_or(r.len());
        let d = r[..n].to_ascii_lowercase();
        if d.is_empty() || !hosted(&d) || r[n..].contains('@') {
            return None;
        }
        domain = Some(d);
    } else {
        let only_space = rest.trim_matches(is_space).is_empty();
        let comment = rest.starts_with(' ') && !rest.contains('@');
        if !(only_space || comment) {
            return None;
        }
    }
    Some(FromName { name: name.to_string(), ext, domain })
}

/// One `Reply-Block:` section (4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSection {
    /// The probability set and weight (in units of 10^-9), if given.
    pub set: Option<(char, u32)>,
    /// The text, opaque, ending with one blank line.
    pub text: String,
}

/// A `Reply-Block:` line whose set is not `[A-Za-z]=0\.\d{1,9}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadProbability;

/// Read the rest of a `Reply-Block:` line: empty, or
/// `[A-Za-z]=0\.\d{1,9}` (the weight in units of 10^-9).
pub fn parse_probability(rest: &str) -> Result<Option<(char, u32)>, BadProbability> {
    let r = rest.trim_matches(is_space);
    if r.is_empty() {
        return Ok(None);
    }
    let b = r.as_bytes();
    if b.len() < 5 || !b[0].is_ascii_alphabetic() || &b[1..4] != b"=0." {
        return Err(BadProbability);
    }
    let digits = &r[4..];
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|d| d.is_ascii_digit()) {
        return Err(BadProbability);
    }
    let mut w: u32 = 0;
    for d in digits.bytes().chain(std::iter::repeat(b'0')).take(9) {
        w = w * 10 + u32::from(d - b'0');
    }
    Ok(Some((b[0] as char, w)))
}

/// A `Config:` request, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigRequest {
    /// The one good `From:` line; `None` with a `bad-from` problem.
    pub from: Option<FromName>,
    /// The `Public-Key:` block, from its first line to its `-----END`
    /// line (or the end of the request).
    pub public_key: Option<String>,
    /// The values of the `Nym-Command(s):` lines, not joined.
    pub commands: Vec<String>,
    /// The first [`MAX_SECTIONS`] blocks.
    pub blocks: Vec<BlockSection>,
    /// How many `Reply-Block:` sections the request had.
    pub blocks_total: usize,
    pub problems: Vec<Problem>,
}

/// Whether `line` begins with the field `name:` in any case.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let n = name.len();
    if line.len() > n
        && line.is_char_boundary(n)
        && line[..n].eq_ignore_ascii_case(name)
        && line[n..].starts_with(':')
    {
        Some(&line[n + 1..])
    } else {
        None
    }
}

/// `^[\w-]+:`: the field name, if the line is a header field.
fn field_name(line: &str) -> Option<&str> {
    let n = line.bytes().take_while(|b| is_word(*b) || *b == b'-').count();
    (n > 0 && line.as_bytes().get(n) == Some(&b':')).then(|| &line[..n])
}

fn is_reply_block_line(line: &str) -> bool {
    field(line, "Reply-Block").is_some()
}

/// Read a `Config:` request (its decrypted text). `hosted` tells the
/// hosted domains.
pub fn parse(text: &str, hosted: &dyn Fn(&str) -> bool) -> ConfigRequest {
    let text = normalize(text);
    // The LF ending the last line ends it; it starts no empty line.
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let mut r = ConfigRequest::default();
    let mut lines = text.split('\n').skip_while(|l| is_blank(l));
    // The `Config:` line itself.
    lines.next();
    let mut froms = 0usize;
    let mut count = 1usize;
    let mut block_head: Option<&str> = None;
    let mut keys_seen = 0usize;
    while let Some(line) = lines.next() {
        if is_reply_block_line(line) {
            block_head = Some(line);
            break;
        }
        count += 1;
        if count > MAX_LINES {
            r.problems.push(Problem::new(keys::TOO_MANY_LINES, format!("More than {MAX_LINES} lines")));
            return r;
        }
        if let Some(v) = line.strip_prefix("From:") {
            froms += 1;
            match parse_from(v, hosted) {
                Some(f) if f.ext.is_some() => r.problems.push(Problem::new(
                    keys::PLUSSED_FROM,
                    "From: names an address with +extension; name the nym itself",
                )),
                Some(f) => r.from = Some(f),
                None => r.problems.push(Problem::new(
                    keys::BAD_FROM,
                    "From: must be the nym's name or address (\"From: name\" or \"From: name@domain\")",
                )),
            }
        } else if field(line, "Public-Key").is_some() {
            keys_seen += 1;
            let mut block = String::new();
            for l in lines.by_ref() {
                count += 1;
                block.push_str(l);
                block.push('\n');
                if l.starts_with("-----END") {
                    break;
                }
            }
            if keys_seen == 1 {
                r.public_key = Some(block);
            }
        } else if let Some(v) = field(line, "Nym-Commands").or_else(|| field(line, "Nym-Command")) {
            r.commands.push(v.to_string());
        } else if let Some(name) = field_name(line) {
            let shown: String = name.chars().take(40).collect();
            if r.problems.len() < super::nym_commands::MAX_PROBLEMS {
                r.problems.push(Problem::new(keys::UNKNOWN_HEADER, format!("Unknown header line {shown}:")));
            }
        }
    }
    if keys_seen > 1 {
        r.problems.push(Problem::new(keys::PUBLIC_KEY_COUNT, "More than one Public-Key: block"));
    }
    if froms != 1 {
        r.from = None;
        r.problems.push(Problem::new(
            keys::BAD_FROM,
            if froms == 0 { "No From: line" } else { "More than one From: line" },
        ));
    } else if r.problems.iter().any(|p| p.key == keys::BAD_FROM || p.key == keys::PLUSSED_FROM) {
        r.from = None;
    }
    // Reply blocks: every line up to the next `Reply-Block:` line.
    let mut head = block_head;
    while let Some(h) = head.take() {
        let rest = field(h, "Reply-Block").unwrap_or("");
        let mut body = String::new();
        for l in lines.by_ref() {
            if is_reply_block_line(l) {
                head = Some(l);
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        r.blocks_total += 1;
        if r.blocks.len() >= MAX_SECTIONS {
            continue;
        }
        let set = match parse_probability(rest) {
            Ok(s) => s,
            Err(BadProbability) => {
                let n = r.blocks.len() + 1;
                r.problems.push(Problem::new(
                    keys::BAD_PROBABILITY,
                    format!("Reply block {n}: the set must be a letter and a weight like a=0.5"),
                ));
                None
            }
        };
        r.blocks.push(BlockSection { set, text: finish_block(body) });
    }
    r
}

/// The block text ends with one blank line: added if its last line is not
/// blank already. (`body` is whole lines, each ending with LF.)
fn finish_block(mut body: String) -> String {
    let last = body.strip_suffix('\n').map(|b| b.rsplit('\n').next().unwrap_or(""));
    if !last.is_some_and(is_blank) {
        body.push('\n');
    }
    body
}

/// Section 6.1: the count and size of the blocks of one request.
/// `total` is how many the request had ([`ConfigRequest::blocks_total`]).
pub fn check_blocks(
    blocks: &[BlockSection],
    total: usize,
    max_per_nym: usize,
    max_block_bytes: usize,
) -> Vec<Problem> {
    let mut v = Vec::new();
    let total = total.max(blocks.len());
    if total > max_per_nym {
        v.push(Problem::new(
            keys::TOO_MANY_REPLY_BLOCKS,
            format!("{total} reply blocks; at most {max_per_nym} are allowed"),
        ));
    }
    for (i, b) in blocks.iter().enumerate() {
        if b.text.len() > max_block_bytes {
            v.push(Problem::new(
                keys::REPLY_BLOCK_TOO_LARGE,
                format!("Reply block {} is larger than {max_block_bytes} bytes", i + 1),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosted(d: &str) -> bool {
        d == "nym.example" || d == "other.example"
    }

    fn keys_of(r: &ConfigRequest) -> Vec<&'static str> {
        r.problems.iter().map(|p| p.key).collect()
    }

    const SPEC: &str = "Config:\nFrom: quill\nNym-Commands: create? +acksend +fixedsize name=\"Quill Pen\"\n\
Public-Key:\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n(key)\n-----END PGP PUBLIC KEY BLOCK-----\n\
Reply-Block: a=0.7\n::\nAnon-To: remailer@r1.example\n\n::\nEncrypted: PGP\n\n-----BEGIN PGP MESSAGE-----\n\
-----END PGP MESSAGE-----\n**\n\nReply-Block: a=0.3\n...\n";

    #[test]
    fn format_config_first_non_blank_line_begins_config_case_sensitive() {
        assert!(is_config_request("\n  \n\t\nConfig:\nFrom: quill\n"));
        assert!(is_config_request("\r\nConfig: anything\r\n"));
        assert!(!is_config_request("config:\nFrom: quill\n"));
        assert!(!is_config_request("hsub: x\nConfig:\n"));
        assert!(!is_config_request(" Config:\n"));
        assert!(!is_config_request(""));
    }

    #[test]
    fn format_config_is_tested_before_the_key_block() {
        // A Config: creation holds a key block too: the first line decides.
        assert!(is_config_request(SPEC));
    }

    #[test]
    fn request_spec_example_reads_whole() {
        let r = parse(SPEC, &hosted);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.from, Some(FromName { name: "quill".into(), ext: None, domain: None }));
        assert_eq!(r.commands, vec![" create? +acksend +fixedsize name=\"Quill Pen\"".to_string()]);
        let k = r.public_key.unwrap();
        assert!(k.starts_with("-----BEGIN") && k.ends_with("-----END PGP PUBLIC KEY BLOCK-----\n"));
        assert_eq!(r.blocks.len(), 2);
        assert_eq!(r.blocks[0].set, Some(('a', 700_000_000)));
        assert!(r.blocks[0].text.starts_with("::\nAnon-To: remailer@r1.example\n\n::\n"));
        assert!(r.blocks[0].text.ends_with("**\n\n"));
        assert_eq!(r.blocks[1], BlockSection { set: Some(('a', 300_000_000)), text: "...\n\n".into() });
    }

    #[test]
    fn from_accepted_forms() {
        let p = |v: &str| parse_from(v, &hosted);
        assert_eq!(p(" quill"), Some(FromName { name: "quill".into(), ext: None, domain: None }));
        assert_eq!(p(" quill@nym.example").unwrap().domain.as_deref(), Some("nym.example"));
        assert_eq!(p(" quill@Other.Example  ").unwrap().domain.as_deref(), Some("other.example"));
        assert_eq!(p(" quill (Quill Pen)").unwrap().name, "quill");
        assert_eq!(p(" quill@nym.example (Quill Pen)").unwrap().name, "quill");
        assert_eq!(p("quill.pen_2"), Some(FromName { name: "quill.pen_2".into(), ext: None, domain: None }));
        assert_eq!(p(" quill+news").unwrap().ext.as_deref(), Some("news"));
        assert_eq!(p(" quill+").unwrap().ext.as_deref(), Some(""));
    }

    #[test]
    fn from_refused_forms() {
        let p = |v: &str| parse_from(v, &hosted);
        for bad in [
            " Quill <quill@nym.example>",
            " quill@nym.example.org",
            " quill@elsewhere.example",
            " quill@",
            " quill (a@b)",
            " \"quill\"",
            " <quill@nym.example>",
            "",
            "   ",
            " quill\t(tab)",
            " quill@nym.example x@y",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn from_is_case_sensitive_and_exactly_one() {
        let r = parse("Config:\nfrom: quill\n", &hosted);
        assert_eq!(keys_of(&r), vec![keys::UNKNOWN_HEADER, keys::BAD_FROM]);
        let r = parse("Config:\nFrom: quill\nFrom: quill\n", &hosted);
        assert_eq!(keys_of(&r), vec![keys::BAD_FROM]);
        assert_eq!(r.from, None);
        let r = parse("Config:\nFrom: Quill <quill@nym.example>\n", &hosted);
        assert_eq!(keys_of(&r), vec![keys::BAD_FROM]);
    }

    #[test]
    fn from_with_extension_is_plussed_from() {
        let r = parse("Config:\nFrom: quill+x@nym.example\n", &hosted);
        assert_eq!(keys_of(&r), vec![keys::PLUSSED_FROM]);
        assert_eq!(r.from, None);
    }

    #[test]
    fn header_unknown_lines_and_ignored_lines() {
        let r = parse("Config:\nFrom: quill\nX-Foo: bar\nsome text\n  Indented: x\n", &hosted);
        assert_eq!(keys_of(&r), vec![keys::UNKNOWN_HEADER]);
        assert!(r.problems[0].detail.contains("X-Foo"));
    }

    #[test]
    fn header_nym_command_lines_any_case_repeatable_continuations_not_joined() {
        let r =
            parse("Config:\nFrom: quill\nnym-command: +nobcc\n   -acksend\nNYM-COMMANDS: delete\n", &hosted);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.commands, vec![" +nobcc".to_string(), " delete".to_string()]);
    }

    #[test]
    fn header_public_key_any_case_runs_to_its_end_line() {
        let r = parse(
            "Config:\npublic-key: ignored\nKey: x\n-----END PGP PUBLIC KEY BLOCK-----\nFrom: quill\n",
            &hosted,
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.public_key.as_deref(), Some("Key: x\n-----END PGP PUBLIC KEY BLOCK-----\n"));
    }

    #[test]
    fn header_public_key_at_most_one() {
        let r = parse("Config:\nFrom: q\nPublic-Key:\n-----END\nPublic-Key:\n-----END\n", &hosted);
        assert_eq!(keys_of(&r), vec![keys::PUBLIC_KEY_COUNT]);
    }

    #[test]
    fn header_too_many_lines() {
        let mut t = String::from("Config:\nFrom: quill\n");
        t.push_str(&"text\n".repeat(MAX_LINES - 2));
        assert!(parse(&t, &hosted).problems.is_empty());
        t.push_str("text\n");
        assert_eq!(keys_of(&parse(&t, &hosted)), vec![keys::TOO_MANY_LINES]);
    }

    #[test]
    fn header_crlf_is_read_as_lf() {
        let r = parse("\r\nConfig:\r\nFrom: quill\r\nReply-Block:\r\n::\r\nAnon-To: a@b\r\n", &hosted);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.blocks[0].text, "::\nAnon-To: a@b\n\n");
    }

    #[test]
    fn probability_forms() {
        assert_eq!(parse_probability(""), Ok(None));
        assert_eq!(parse_probability("  \t"), Ok(None));
        assert_eq!(parse_probability(" a=0.7 "), Ok(Some(('a', 700_000_000))));
        assert_eq!(parse_probability("Z=0.000000001"), Ok(Some(('Z', 1))));
        assert_eq!(parse_probability("b=0.123456789"), Ok(Some(('b', 123_456_789))));
        for bad in
            ["a = 0.5", "a=0,5", "a=1.0", "a=0.", "a=0.1234567890", "1=0.5", "ab=0.5", "a=.5", "\u{e9}=0.5"]
        {
            assert_eq!(parse_probability(bad), Err(BadProbability), "{bad:?}");
        }
    }

    #[test]
    fn probability_bad_is_reported_per_block() {
        let r = parse("Config:\nFrom: q\nReply-Block: a = 0.5\nx\nreply-block: A=0.5\ny\n", &hosted);
        assert_eq!(keys_of(&r), vec![keys::BAD_PROBABILITY]);
        assert_eq!(r.blocks[0].set, None);
        assert_eq!(r.blocks[1].set, Some(('A', 500_000_000)), "case kept");
    }

    #[test]
    fn block_text_is_opaque_and_ends_with_one_blank_line() {
        let r = parse(
            "Config:\nFrom: q\nReply-Block:\n::\nAnon-To: a@b\n\n\nFrom: x\nReply-Block:\nlast",
            &hosted,
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        // Lines that look like headers inside a block are its text.
        assert_eq!(r.blocks[0].text, "::\nAnon-To: a@b\n\n\nFrom: x\n\n");
        assert_eq!(r.blocks[1].text, "last\n\n");
        let r = parse("Config:\nFrom: q\nReply-Block:\n", &hosted);
        assert_eq!(r.blocks[0].text, "\n");
        let r = parse("Config:\nFrom: q\nReply-Block:\nx\n\n", &hosted);
        assert_eq!(r.blocks[0].text, "x\n\n");
    }

    #[test]
    fn blocks_at_most_max_per_nym() {
        let b = |n: usize| vec![BlockSection { set: None, text: "x\n\n".into() }; n];
        assert!(check_blocks(&b(4), 4, MAX_PER_NYM, MAX_BLOCK_BYTES).is_empty());
        let p = check_blocks(&b(5), 5, MAX_PER_NYM, MAX_BLOCK_BYTES);
        assert_eq!(p.iter().map(|p| p.key).collect::<Vec<_>>(), vec![keys::TOO_MANY_REPLY_BLOCKS]);
    }

    #[test]
    fn blocks_a_flood_of_sections_is_counted_not_kept() {
        let t = format!("Config:\nFrom: q\n{}", "Reply-Block: a=0,5\nx\n".repeat(10_000));
        let r = parse(&t, &hosted);
        assert_eq!((r.blocks.len(), r.blocks_total), (MAX_SECTIONS, 10_000));
        let p = check_blocks(&r.blocks, r.blocks_total, MAX_PER_NYM, MAX_BLOCK_BYTES);
        assert!(p[0].detail.starts_with("10000 reply blocks"), "{}", p[0].detail);
        assert_eq!(r.problems.len(), MAX_SECTIONS, "one bad-probability per kept block");
        let t = format!("Config:\nFrom: q\n{}", "X-A: 1\n".repeat(1000));
        assert_eq!(parse(&t, &hosted).problems.len(), crate::protocol::nym_commands::MAX_PROBLEMS);
    }

    #[test]
    fn blocks_at_most_max_block_bytes() {
        let ok = BlockSection { set: None, text: "x".repeat(MAX_BLOCK_BYTES) };
        let big = BlockSection { set: None, text: "x".repeat(MAX_BLOCK_BYTES + 1) };
        assert!(check_blocks(std::slice::from_ref(&ok), 1, MAX_PER_NYM, MAX_BLOCK_BYTES).is_empty());
        let p = check_blocks(&[ok, big], 2, MAX_PER_NYM, MAX_BLOCK_BYTES);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, keys::REPLY_BLOCK_TOO_LARGE);
        assert!(p[0].detail.contains("block 2"));
    }
}
