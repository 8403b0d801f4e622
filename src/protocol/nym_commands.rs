//! The nym.alias.net flag word and the `Nym-Commands:` grammar
//! (REPLY-BLOCKS.md sections 2, 4.2 and 4.3), reader and writer.
//!
//! The reader works like the original: the command lines are joined with
//! LF and tokens are taken from the front with `^\s*([\w+-]+[=?]?)`, left
//! to right, the later token winning. Every problem is collected with its
//! error key; nothing here decides whether a request is applied.

/// One problem of a request: the error key (printed in brackets at the end
/// of its reply line) and what it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(key: &'static str, detail: impl Into<String>) -> Problem {
        Problem { key, detail: detail.into() }
    }
    /// The reply line: what went wrong, then the key in brackets.
    pub fn line(&self) -> String {
        format!("{} [{}]", self.detail, self.key)
    }
}

/// The error keys of this module.
pub mod keys {
    pub const INVALID_SWITCH: &str = "invalid-switch";
    pub const INVALID_COMMAND: &str = "invalid-command";
    pub const UNPARSABLE_COMMAND: &str = "unparsable-command";
    pub const BAD_NAME: &str = "bad-name";
}

/// The bits of the flag word (section 2).
pub mod flag {
    pub const CRYPTRECV: u32 = 0x1;
    pub const SIGNSEND: u32 = 0x2;
    pub const ACKSEND: u32 = 0x100;
    pub const DISABLE: u32 = 0x200;
    pub const FIXEDSIZE: u32 = 0x400;
    pub const FINGERKEY: u32 = 0x800;
    pub const NOBCC: u32 = 0x1000;
    pub const SPAMFILTER: u32 = 0x2000;
    pub const NOLIMIT: u32 = 0x10000;
}

/// The flag word of a nym made by a `Config:` request: bits 0x4 to 0x80
/// are set and unused, as nym.alias.net had them.
pub const DEFAULT_CONFIG: u32 = 0xfd;
/// The flag word of a nym made by a Zax request: acksend on.
pub const DEFAULT_ZAX: u32 = 0x1fd;

/// The named flags in the order they are written.
pub const NAMED: &[(&str, u32)] = &[
    ("cryptrecv", flag::CRYPTRECV),
    ("signsend", flag::SIGNSEND),
    ("acksend", flag::ACKSEND),
    ("disable", flag::DISABLE),
    ("fixedsize", flag::FIXEDSIZE),
    ("fingerkey", flag::FINGERKEY),
    ("nobcc", flag::NOBCC),
    ("spamfilter", flag::SPAMFILTER),
    ("nolimit", flag::NOLIMIT),
];

/// The bit of a flag a holder may switch with `+NAME` / `-NAME` (every
/// named flag except `nolimit`, which is the operator's). Names compare
/// without regard to ASCII case.
pub fn switchable(name: &str) -> Option<u32> {
    NAMED.iter().find(|(n, b)| *b != flag::NOLIMIT && n.eq_ignore_ascii_case(name)).map(|(_, b)| *b)
}

/// The flag word as `+cryptrecv -signsend ...`: every switchable flag,
/// then `+nolimit` only when the operator set it. Unknown bits are not
/// written (they are kept in the store, never shown).
pub fn describe(word: u32) -> String {
    let mut out = Vec::new();
    for (n, b) in NAMED {
        if *b == flag::NOLIMIT && word & b == 0 {
            continue;
        }
        out.push(format!("{}{n}", if word & b != 0 { '+' } else { '-' }));
    }
    out.join(" ")
}

/// What a create word asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `create`: an error if the name is taken.
    New,
    /// `create?`: create if free, else modify.
    IfFree,
}

/// The commands of one request, after the later tokens won.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commands {
    /// Bits switched on, and bits switched off (disjoint).
    pub set: u32,
    pub clear: u32,
    pub name: Option<String>,
    pub create: Option<Create>,
    pub delete: bool,
    pub drop_reply_blocks: bool,
    pub problems: Vec<Problem>,
}

impl Commands {
    /// The flag word after these switches (unknown bits kept).
    pub fn apply(&self, word: u32) -> u32 {
        (word | self.set) & !self.clear
    }
    /// `-disable` also resets today's unit count.
    pub fn resets_units(&self) -> bool {
        self.clear & flag::DISABLE != 0
    }
    /// Nothing asked for at all (a status request, if nothing else).
    pub fn is_empty(&self) -> bool {
        self.set == 0
            && self.clear == 0
            && self.name.is_none()
            && self.create.is_none()
            && !self.delete
            && !self.drop_reply_blocks
    }
    fn switch(&mut self, on: bool, bit: u32) {
        if on {
            self.set |= bit;
            self.clear &= !bit;
        } else {
            self.clear |= bit;
            self.set &= !bit;
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Perl's `\s` on ASCII.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Join the values of the `Nym-Command(s):` lines as the reader wants them.
pub fn join_lines<S: AsRef<str>>(lines: &[S]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l.as_ref());
        s.push('\n');
    }
    s
}

/// Match `"(([^\\"\n]|\\\\|\\")*)"\s` at the start of `s`: the unescaped
/// value and the number of bytes taken (the trailing white space
/// included).
pub fn quoted(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        match b.get(i)? {
            b'"' => break,
            b'\n' => return None,
            b'\\' => match b.get(i + 1)? {
                c @ (b'\\' | b'"') => {
                    out.push(*c);
                    i += 2;
                }
                _ => return None,
            },
            c => {
                out.push(*c);
                i += 1;
            }
        }
    }
    // i is at the closing quote; one white-space character must follow.
    if !b.get(i + 1).is_some_and(|c| is_space(*c)) {
        return None;
    }
    // Cut only at ASCII bytes, so the value stays valid UTF-8.
    Some((String::from_utf8(out).ok()?, i + 2))
}

/// Longest display name, in bytes after unescaping.
pub const NAME_MAX_BYTES: usize = 255;

/// Why an unescaped `name=` value cannot be used, if it cannot
/// (section 4.3): a control character (C0, DEL, C1), more than 255 bytes,
/// or one of `@ " , < >` outside `\`-escaped pairs and balanced quotes.
pub fn name_problem(v: &str) -> Option<&'static str> {
    if v.chars().any(|c| c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c)) {
        return Some("holds a control character");
    }
    if v.len() > NAME_MAX_BYTES {
        return Some("is longer than 255 bytes");
    }
    // Drop `\x` pairs, then balanced "..." runs; what is left must be
    // free of the characters that end or extend an address phrase.
    let mut rest = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else {
            rest.push(c);
        }
    }
    let mut outside = String::with_capacity(rest.len());
    let mut tail = rest.as_str();
    while let Some(open) = tail.find('"') {
        match tail[open + 1..].find('"') {
            Some(close) => {
                outside.push_str(&tail[..open]);
                tail = &tail[open + 1 + close + 1..];
            }
            None => break,
        }
    }
    outside.push_str(tail);
    if outside.contains(['@', '"', ',', '<', '>']) {
        return Some("holds @ \" , < or > outside quotes");
    }
    None
}

/// Most problems one request reports; later ones are not listed (the
/// request is refused all the same), so that a hostile command line
/// cannot make the reply, or memory, grow with it.
pub const MAX_PROBLEMS: usize = 32;

/// A token as it is shown in a reply: at most 40 characters.
fn shown(token: &str) -> String {
    let mut s: String = token.chars().take(40).collect();
    if s.len() < token.len() {
        s.push_str("...");
    }
    s
}

fn push(c: &mut Commands, p: Problem) {
    if c.problems.len() < MAX_PROBLEMS {
        c.problems.push(p);
    }
}

/// Read the joined command text (see [`join_lines`]).
pub fn parse(text: &str) -> Commands {
    let mut c = Commands::default();
    let b = text.as_bytes();
    let mut i = 0;
    loop {
        let mut j = i;
        while j < b.len() && is_space(b[j]) {
            j += 1;
        }
        let start = j;
        while j < b.len() && (is_word(b[j]) || b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j == start {
            i = start;
            break;
        }
        if j < b.len() && (b[j] == b'=' || b[j] == b'?') {
            j += 1;
        }
        // Only ASCII bytes were taken: slicing here is on char bounds.
        let token = &text[start..j];
        i = j;
        let body = &token[1..];
        if (token.starts_with('+') || token.starts_with('-')) && !body.is_empty() && body.bytes().all(is_word)
        {
            match switchable(body) {
                Some(bit) => c.switch(token.starts_with('+'), bit),
                None => push(
                    &mut c,
                    Problem::new(keys::INVALID_SWITCH, format!("Unknown switch {}", shown(token))),
                ),
            }
            continue;
        }
        match token {
            "name=" => match quoted(&text[i..]) {
                Some((v, used)) => {
                    i += used;
                    match name_problem(&v) {
                        None => c.name = Some(v),
                        Some(why) => push(&mut c, Problem::new(keys::BAD_NAME, format!("The name {why}"))),
                    }
                }
                None => push(
                    &mut c,
                    Problem::new(
                        keys::BAD_NAME,
                        "name= needs a value in double quotes (with \\\\ and \\\" only) followed by a space",
                    ),
                ),
            },
            "create" => c.create = Some(Create::New),
            "create?" => c.create = Some(Create::IfFree),
            "delete" => c.delete = true,
            "drop-reply-blocks" => c.drop_reply_blocks = true,
            _ if token.starts_with('+') || token.starts_with('-') => {
                push(&mut c, Problem::new(keys::INVALID_SWITCH, format!("Unknown switch {}", shown(token))))
            }
            _ => {
                push(
                    &mut c,
                    Problem::new(keys::INVALID_COMMAND, format!("Unknown command {}", shown(token))),
                );
                if let Some((_, used)) = quoted(&text[i..]) {
                    i += used;
                }
            }
        }
    }
    if text[i..].bytes().any(|b| !is_space(b)) {
        push(&mut c, Problem::new(keys::UNPARSABLE_COMMAND, "Could not read the rest of the commands"));
    }
    c
}

/// Quote a display name for `name=` (escaping `\` and `"`).
pub fn quote_name(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for ch in v.chars() {
        if ch == '\\' || ch == '"' {
            s.push('\\');
        }
        s.push(ch);
    }
    s.push('"');
    s
}

/// Write commands as one `Nym-Commands:` value: create word, delete,
/// drop-reply-blocks, the switches as `+cryptrecv -signsend ...` in table
/// order, then `name="..."` (with the space the grammar wants after it).
pub fn write(c: &Commands) -> String {
    let mut w = Vec::new();
    match c.create {
        Some(Create::New) => w.push("create".to_string()),
        Some(Create::IfFree) => w.push("create?".to_string()),
        None => {}
    }
    if c.delete {
        w.push("delete".into());
    }
    if c.drop_reply_blocks {
        w.push("drop-reply-blocks".into());
    }
    for (n, b) in NAMED {
        if c.set & b != 0 {
            w.push(format!("+{n}"));
        } else if c.clear & b != 0 {
            w.push(format!("-{n}"));
        }
    }
    if let Some(n) = &c.name {
        w.push(format!("name={} ", quote_name(n)));
    }
    w.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of(c: &Commands) -> Vec<&'static str> {
        c.problems.iter().map(|p| p.key).collect()
    }

    #[test]
    fn flag_defaults_are_0xfd_for_config_and_0x1fd_for_zax() {
        assert_eq!(DEFAULT_CONFIG, 0xfd);
        assert_eq!(DEFAULT_ZAX, DEFAULT_CONFIG | flag::ACKSEND);
        assert_eq!(DEFAULT_CONFIG & (flag::CRYPTRECV | flag::SIGNSEND), flag::CRYPTRECV);
    }

    #[test]
    fn flag_bits_are_the_originals() {
        let want = [
            ("cryptrecv", 0x1),
            ("signsend", 0x2),
            ("acksend", 0x100),
            ("disable", 0x200),
            ("fixedsize", 0x400),
            ("fingerkey", 0x800),
            ("nobcc", 0x1000),
            ("spamfilter", 0x2000),
            ("nolimit", 0x10000),
        ];
        assert_eq!(NAMED, &want);
    }

    #[test]
    fn flag_switches_keep_unknown_bits() {
        let c = parse("+nobcc -cryptrecv\n");
        let word = 0x8000_00fd;
        assert_eq!(c.apply(word), (0x8000_00fd | flag::NOBCC) & !flag::CRYPTRECV);
        assert_eq!(c.apply(word) & 0x8000_00fc, 0x8000_00fc);
    }

    #[test]
    fn flag_nolimit_is_not_a_switch() {
        let c = parse("+nolimit\n");
        assert_eq!(keys_of(&c), vec![keys::INVALID_SWITCH]);
        assert_eq!(c.apply(0), 0);
        assert_eq!(switchable("nolimit"), None);
    }

    #[test]
    fn flag_describe_writes_every_switch_and_nolimit_only_when_set() {
        assert_eq!(
            describe(DEFAULT_CONFIG),
            "+cryptrecv -signsend -acksend -disable -fixedsize -fingerkey -nobcc -spamfilter"
        );
        assert!(describe(DEFAULT_ZAX | flag::NOLIMIT).ends_with("-spamfilter +nolimit"));
        assert!(describe(DEFAULT_ZAX).contains("+acksend"));
    }

    #[test]
    fn token_spec_example_reads_create_if_free_flags_and_name() {
        let c = parse(&join_lines(&["create? +acksend +fixedsize name=\"Quill Pen\""]));
        assert_eq!(c.create, Some(Create::IfFree));
        assert_eq!(c.set, flag::ACKSEND | flag::FIXEDSIZE);
        assert_eq!(c.name.as_deref(), Some("Quill Pen"));
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    #[test]
    fn token_later_tokens_win() {
        let c = parse("+nobcc -nobcc create create? name=\"A\" name=\"B\" \n");
        assert_eq!((c.set, c.clear), (0, flag::NOBCC));
        assert_eq!(c.create, Some(Create::IfFree));
        assert_eq!(c.name.as_deref(), Some("B"));
        let c = parse("-signsend\n+signsend\n");
        assert_eq!((c.set, c.clear), (flag::SIGNSEND, 0));
    }

    #[test]
    fn token_lines_are_joined_with_lf() {
        let c = parse(&join_lines(&["+nobcc", "delete", "drop-reply-blocks"]));
        assert!(c.delete && c.drop_reply_blocks);
        assert_eq!(c.set, flag::NOBCC);
    }

    #[test]
    fn token_flag_names_ignore_case() {
        assert_eq!(parse("+AckSend\n").set, flag::ACKSEND);
    }

    #[test]
    fn token_invalid_switch() {
        for t in ["+bogus\n", "-\n", "+ack-send\n", "+\n"] {
            assert_eq!(keys_of(&parse(t)), vec![keys::INVALID_SWITCH], "{t:?}");
        }
    }

    #[test]
    fn token_invalid_command_skips_a_following_quoted_string() {
        let c = parse("nick=\"a@b, <c>\" +nobcc\n");
        assert_eq!(keys_of(&c), vec![keys::INVALID_COMMAND]);
        assert_eq!(c.set, flag::NOBCC);
        assert_eq!(keys_of(&parse("frobnicate\n")), vec![keys::INVALID_COMMAND]);
        // The token stops before `!`: `create` counts, the rest is left over.
        let c = parse("create!\n");
        assert_eq!((c.create, keys_of(&c)), (Some(Create::New), vec![keys::UNPARSABLE_COMMAND]));
    }

    #[test]
    fn token_unparsable_command_for_leftovers() {
        let c = parse("+nobcc ; rm -rf\n");
        assert_eq!(c.set, flag::NOBCC);
        assert_eq!(keys_of(&c), vec![keys::UNPARSABLE_COMMAND]);
        assert!(parse("  \n\t\n").problems.is_empty());
        assert!(parse("").is_empty());
    }

    #[test]
    fn token_non_ascii_stops_the_reader() {
        let c = parse("+nobcc \u{e9}t\u{e9}\n");
        assert_eq!(keys_of(&c), vec![keys::UNPARSABLE_COMMAND]);
    }

    #[test]
    fn token_minus_disable_resets_the_unit_count() {
        assert!(parse("-disable\n").resets_units());
        assert!(!parse("+disable\n").resets_units());
        assert!(!parse("-disable +disable\n").resets_units());
    }

    #[test]
    fn name_syntax_allows_only_escaped_backslash_and_quote() {
        assert_eq!(quoted("\"a\\\\b\\\"c\" "), Some(("a\\b\"c".to_string(), 10)));
        assert_eq!(quoted("\"a\\nb\" "), None);
        assert_eq!(quoted("\"ab\""), None, "needs white space after");
        assert_eq!(quoted("\"a\nb\" "), None);
        assert_eq!(quoted("\"$;\"\n").map(|v| v.0), Some("$;".to_string()));
    }

    #[test]
    fn name_needs_the_closing_quote_and_a_space() {
        let c = parse("name=\"Quill\"");
        assert_eq!(keys_of(&c), vec![keys::BAD_NAME, keys::UNPARSABLE_COMMAND]);
        assert_eq!(parse("name=Quill\n").problems[0].key, keys::BAD_NAME);
    }

    #[test]
    fn name_dollar_and_semicolon_are_allowed() {
        assert_eq!(parse("name=\"A$;B\" \n").name.as_deref(), Some("A$;B"));
    }

    #[test]
    fn name_controls_are_refused_by_utf8_character() {
        for v in ["a\u{1}b", "a\u{7f}", "x\u{85}y", "\u{9f}"] {
            assert!(name_problem(v).is_some(), "{v:?}");
        }
        // U+00C5 is encoded C3 85: a byte in the C1 range, not a C1 character.
        assert_eq!(name_problem("\u{c5}se"), None);
        assert_eq!(name_problem("\u{a0}"), None);
        let c = parse("name=\"a\tb\" \n");
        assert_eq!(keys_of(&c), vec![keys::BAD_NAME]);
        assert_eq!(c.name, None);
    }

    #[test]
    fn name_is_at_most_255_bytes() {
        assert_eq!(name_problem(&"a".repeat(255)), None);
        assert!(name_problem(&"a".repeat(256)).is_some());
        assert!(name_problem(&"\u{e9}".repeat(128)).is_some(), "256 bytes in 128 characters");
    }

    #[test]
    fn name_address_characters_only_inside_quotes_or_escaped() {
        for bad in ["a@b", "Smith, John", "x <y>", "one \"two", "a>"] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        for ok in ["\"a@b\"", "Smith\\, John", "Quill \"the\" Pen", "\"x <y>\" z", "\\\""] {
            assert_eq!(name_problem(ok), None, "{ok:?}");
        }
        assert_eq!(parse("name=\"\\\"a@b\\\"\" \n").name.as_deref(), Some("\"a@b\""));
    }

    #[test]
    fn writer_round_trips_through_the_reader() {
        let c = Commands {
            set: flag::ACKSEND | flag::NOBCC,
            clear: flag::CRYPTRECV | flag::DISABLE,
            name: Some("Quill \"the\" Pen \\ x".into()),
            create: Some(Create::IfFree),
            delete: false,
            drop_reply_blocks: true,
            problems: vec![],
        };
        let text = write(&c);
        assert!(
            text.starts_with("create? drop-reply-blocks -cryptrecv +acksend -disable +nobcc name="),
            "{text}"
        );
        assert_eq!(parse(&join_lines(&[&text])), c);
        for c in
            [Commands::default(), Commands { create: Some(Create::New), delete: true, ..Default::default() }]
        {
            assert_eq!(parse(&join_lines(&[write(&c)])), c);
        }
    }

    #[test]
    fn writer_of_a_flag_word_sets_it_from_zero() {
        let word = DEFAULT_CONFIG & 0x3 | flag::NOBCC;
        let text = describe(word);
        assert_eq!(parse(&join_lines(&[text])).apply(0), word);
    }

    #[test]
    fn hostile_command_lines_report_a_bounded_number_of_short_problems() {
        let text = format!("{} +{}\n", "frob ".repeat(100_000), "x".repeat(100_000));
        let c = parse(&text);
        assert_eq!(c.problems.len(), MAX_PROBLEMS);
        assert!(c.problems.iter().all(|p| p.detail.len() < 80));
        let c = parse(&format!("+{}\n", "y".repeat(10_000)));
        assert!(c.problems[0].detail.len() < 80, "{}", c.problems[0].detail);
    }

    #[test]
    fn problem_line_ends_with_its_key() {
        assert_eq!(Problem::new("bad-from", "No From: line").line(), "No From: line [bad-from]");
    }
}
