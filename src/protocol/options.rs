//! The `option: value` lines of config@ requests (PROTOCOL.md section 3).
//!
//! Parsing is pure: it turns plaintext into a list of requested changes.
//! Applying them to a nym is the config handler's job.

use std::fmt;

/// The options a nym can set, after alias resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opt {
    Hsub,
    Subject,
    Symmetric,
    Acksend,
    Delete,
}

impl Opt {
    /// Resolve an option name (case-insensitive) or one of its aliases.
    pub fn from_name(name: &str) -> Option<Opt> {
        match name.to_ascii_lowercase().as_str() {
            "hsub" | "hash-subject" | "subject-password" | "hash-key" => Some(Opt::Hsub),
            "subject" => Some(Opt::Subject),
            "symmetric" => Some(Opt::Symmetric),
            "acksend" | "acknowledge-send" => Some(Opt::Acksend),
            "delete" => Some(Opt::Delete),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Opt::Hsub => "hsub",
            Opt::Subject => "subject",
            Opt::Symmetric => "symmetric",
            Opt::Acksend => "acksend",
            Opt::Delete => "delete",
        }
    }
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Longest value accepted, in characters.
pub const MAX_VALUE_CHARS: usize = 64;

/// One requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set a text option (hsub, subject, symmetric).
    Set(Opt, String),
    /// Unset a text option, or switch a boolean option off.
    Off(Opt),
    /// Switch a boolean option on (acksend), or `delete: yes`.
    On(Opt),
}

impl Change {
    pub fn opt(&self) -> Opt {
        match self {
            Change::Set(o, _) | Change::Off(o) | Change::On(o) => *o,
        }
    }
}

/// A line that looked like an option but was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub opt: Opt,
    pub reason: &'static str,
}

/// The result of reading a request's option lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Changes in the order they appeared, at most one per option.
    pub changes: Vec<Change>,
    /// Option lines that were refused (value too long, repeated, ...).
    pub rejected: Vec<Rejected>,
}

impl Parsed {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
    pub fn get(&self, opt: Opt) -> Option<&Change> {
        self.changes.iter().find(|c| c.opt() == opt)
    }
}

fn is_off_word(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "0" | "no" | "none" | "false")
}

fn is_on_word(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "yes" | "true")
}

/// Split a line into (name, value) if it has the `name: value` shape.
fn split_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    Some((name, value.trim_start_matches([' ', '\t']).trim_end()))
}

/// Read every option line of `text`. Lines inside an armored block are
/// skipped, so an armor header such as `Comment:` is never an option.
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut in_armor = false;
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if line.starts_with("-----BEGIN PGP ") {
            in_armor = true;
            continue;
        }
        if line.starts_with("-----END PGP ") {
            in_armor = false;
            continue;
        }
        if in_armor {
            continue;
        }
        let Some((name, value)) = split_line(line) else {
            continue;
        };
        let Some(opt) = Opt::from_name(name) else {
            continue;
        };
        if out.get(opt).is_some() {
            out.rejected.push(Rejected { opt, reason: "repeated; the first one counts" });
            continue;
        }
        if value.is_empty() {
            out.rejected.push(Rejected { opt, reason: "empty value" });
            continue;
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            out.rejected.push(Rejected { opt, reason: "value longer than 64 characters" });
            continue;
        }
        let change = match opt {
            Opt::Hsub | Opt::Subject | Opt::Symmetric => {
                if is_off_word(value) {
                    Change::Off(opt)
                } else {
                    Change::Set(opt, value.to_string())
                }
            }
            Opt::Acksend | Opt::Delete => {
                if is_on_word(value) {
                    Change::On(opt)
                } else if is_off_word(value) {
                    Change::Off(opt)
                } else {
                    out.rejected.push(Rejected { opt, reason: "expects yes or no" });
                    continue;
                }
            }
        };
        out.changes.push(change);
    }
    out
}

// ------------------------------------------------------------ the writer

/// Check an option value the way [`parse`] reads it: 1 to 64 characters
/// on one line, without surrounding space (the parser would trim it, and
/// the holder would then not know the real value).
pub fn check_value(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().count() > MAX_VALUE_CHARS {
        return Err(format!("the value of {name} must be 1 to {MAX_VALUE_CHARS} characters"));
    }
    if value.contains(['\n', '\r']) || value != value.trim_end() || value != value.trim_start() {
        return Err(format!("the value of {name} must be one line without leading or trailing space"));
    }
    Ok(())
}

/// `name: value` lines, in the given order (the client's side of [`parse`]).
pub fn write_lines(opts: &[(&str, String)]) -> Result<String, String> {
    let mut s = String::new();
    for (name, value) in opts {
        check_value(name, value)?;
        s.push_str(&format!("{name}: {value}\n"));
    }
    Ok(s)
}

/// A creation request's plaintext: option lines, then the armored key.
pub fn write_create(opts: &[(&str, String)], armored_public_key: &str) -> Result<String, String> {
    let mut s = write_lines(opts)?;
    s.push_str(armored_public_key);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_hsub() {
        for name in ["hsub", "HSUB", "Hash-Subject", "subject-password", "hash-key"] {
            let p = parse(&format!("{name}: panda"));
            assert_eq!(p.changes, vec![Change::Set(Opt::Hsub, "panda".into())], "{name}");
        }
        assert_eq!(parse("acknowledge-send: no").changes, vec![Change::Off(Opt::Acksend)]);
    }

    #[test]
    fn value_words() {
        for w in ["0", "no", "NONE", "False"] {
            assert_eq!(parse(&format!("hsub: {w}")).changes, vec![Change::Off(Opt::Hsub)]);
            assert_eq!(parse(&format!("acksend: {w}")).changes, vec![Change::Off(Opt::Acksend)]);
        }
        for w in ["1", "yes", "TRUE"] {
            assert_eq!(parse(&format!("acksend: {w}")).changes, vec![Change::On(Opt::Acksend)]);
            assert_eq!(parse(&format!("delete: {w}")).changes, vec![Change::On(Opt::Delete)]);
        }
        // Not a yes/no word: refused for booleans, kept verbatim for text.
        assert!(parse("delete: please").changes.is_empty());
        assert_eq!(
            parse("subject: Yes please").changes,
            vec![Change::Set(Opt::Subject, "Yes please".into())]
        );
    }

    #[test]
    fn value_is_case_sensitive_and_trimmed() {
        let p = parse("Symmetric:   My Secret  \r\n");
        assert_eq!(p.changes, vec![Change::Set(Opt::Symmetric, "My Secret".into())]);
    }

    #[test]
    fn sixty_four_character_limit() {
        let ok = "a".repeat(64);
        let long = "a".repeat(65);
        assert_eq!(parse(&format!("hsub: {ok}")).changes, vec![Change::Set(Opt::Hsub, ok.clone())]);
        let p = parse(&format!("hsub: {long}"));
        assert!(p.changes.is_empty());
        assert_eq!(p.rejected.len(), 1);
        // Characters, not bytes.
        let wide = "é".repeat(64);
        assert_eq!(parse(&format!("subject: {wide}")).changes.len(), 1);
    }

    #[test]
    fn first_wins_across_aliases() {
        let p = parse("hsub: first\nhash-key: second\nhsub: third\n");
        assert_eq!(p.changes, vec![Change::Set(Opt::Hsub, "first".into())]);
        assert_eq!(p.rejected.len(), 2);
    }

    #[test]
    fn other_lines_and_armor_are_ignored() {
        let text = "From: someone@example.org\nhello world\nhsub: panda\n\
            -----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: subject: nope\nsubject: nope\n\nmQINBF\n\
            -----END PGP PUBLIC KEY BLOCK-----\nnot an option: x\n";
        let p = parse(text);
        assert_eq!(p.changes, vec![Change::Set(Opt::Hsub, "panda".into())]);
    }

    #[test]
    fn empty_text_is_status_request() {
        assert!(parse("").is_empty());
        assert!(parse("\n\njust words\n").is_empty());
    }

    #[test]
    fn written_lines_parse_back_with_the_server_parser() {
        let t =
            write_lines(&[("hsub", "Panda Bear".into()), ("acksend", "no".into()), ("subject", "x".into())])
                .unwrap();
        let parsed = parse(&t);
        assert_eq!(
            parsed.changes,
            vec![
                Change::Set(Opt::Hsub, "Panda Bear".into()),
                Change::Off(Opt::Acksend),
                Change::Set(Opt::Subject, "x".into())
            ]
        );
        assert!(parsed.rejected.is_empty());
    }

    #[test]
    fn writer_refuses_what_the_parser_would_change() {
        assert!(check_value("hsub", "").is_err());
        assert!(check_value("hsub", &"x".repeat(MAX_VALUE_CHARS + 1)).is_err());
        assert!(check_value("hsub", &"x".repeat(MAX_VALUE_CHARS)).is_ok());
        assert!(check_value("hsub", "a\nb").is_err());
        assert!(check_value("hsub", "trailing ").is_err());
        assert!(check_value("hsub", " leading").is_err());
    }

    #[test]
    fn create_request_is_options_then_key_and_parses_back() {
        let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxyz\n-----END PGP PUBLIC KEY BLOCK-----\n";
        let t = write_create(&[("hsub", "panda".into()), ("symmetric", "x y".into())], key).unwrap();
        assert!(t.starts_with("hsub: panda\nsymmetric: x y\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n"));
        let p = parse(&t);
        assert_eq!(p.get(Opt::Hsub), Some(&Change::Set(Opt::Hsub, "panda".into())));
        assert_eq!(p.get(Opt::Symmetric), Some(&Change::Set(Opt::Symmetric, "x y".into())));
    }
}
