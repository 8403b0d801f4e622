//! The client's side of the nym.alias.net `Config:` request
//! (REPLY-BLOCKS.md section 4): the writer that `nym new --reply-block`
//! and `nym config --reply-block` use, beside the server's parser in
//! [`config_request`](super::config_request), with round-trip tests
//! against that parser so that the two cannot drift apart.

use super::config_request::{parse_probability, BadProbability};
use super::nym_commands::{self as nc, Commands};

/// One `Reply-Block:` section to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// The probability set, `a=0.5` (`None`: the block always fires).
    pub set: Option<&'a str>,
    /// The block text (Type I directives and ciphertexts).
    pub text: &'a str,
}

/// Why a request cannot be written as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError(pub String);

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteError {}

fn starts_field(line: &str, name: &str) -> bool {
    line.len() > name.len()
        && line.is_char_boundary(name.len())
        && line[..name.len()].eq_ignore_ascii_case(name)
        && line[name.len()..].starts_with(':')
}

/// Write a `Config:` request: `From: name@domain`, the commands (if any)
/// on one `Nym-Commands:` line, the armored public key (creation and key
/// rollover), then the blocks. Refused: a set that is not
/// `[A-Za-z]=0.\d{1,9}`, a block holding a line the parser would take for
/// the start of the next block, or a key whose armor does not end.
pub fn write(
    from: &str,
    commands: &Commands,
    public_key: Option<&str>,
    blocks: &[Section],
) -> Result<String, WriteError> {
    if from.contains(['\n', '\r']) || from.trim().is_empty() {
        return Err(WriteError("the From: of a Config: request is one address".into()));
    }
    let mut s = format!("Config:\nFrom: {from}\n");
    if !commands.is_empty() {
        s.push_str(&format!("Nym-Commands: {}\n", nc::write(commands).trim_end()));
    }
    if let Some(k) = public_key {
        if !k.lines().any(|l| l.starts_with("-----END")) || k.lines().any(|l| starts_field(l, "Reply-Block"))
        {
            return Err(WriteError("the public key is not one armored key block".into()));
        }
        s.push_str("Public-Key:\n");
        s.push_str(k);
        if !k.ends_with('\n') {
            s.push('\n');
        }
    }
    for (i, b) in blocks.iter().enumerate() {
        let set = match b.set {
            None => String::new(),
            Some(v) => match parse_probability(v) {
                Ok(_) => format!(" {}", v.trim()),
                Err(BadProbability) => {
                    return Err(WriteError(format!(
                        "reply block {}: `{v}` is no set; write a letter and a weight like a=0.5",
                        i + 1
                    )))
                }
            },
        };
        if b.text.lines().any(|l| starts_field(l, "Reply-Block")) {
            return Err(WriteError(format!("reply block {} holds a Reply-Block: line", i + 1)));
        }
        s.push_str(&format!("Reply-Block:{set}\n"));
        s.push_str(b.text);
        if !b.text.ends_with('\n') {
            s.push('\n');
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::config_request::parse;
    use super::super::nym_commands::{flag, Create};
    use super::*;

    const KEY: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBN\n-----END PGP PUBLIC KEY BLOCK-----\n";
    const BLOCK: &str = "::\nAnon-To: remailer@r1.example\n\n::\nEncrypted: PGP\n\n-----BEGIN PGP MESSAGE-----\n\nhQ\n-----END PGP MESSAGE-----\n\n**\n";

    fn hosted(d: &str) -> bool {
        d == "nym.example"
    }

    #[test]
    fn request_written_by_the_client_reads_back_whole() {
        let c = Commands {
            create: Some(Create::New),
            set: flag::ACKSEND,
            name: Some("Quill \"the\" Pen".into()),
            ..Default::default()
        };
        let blocks = [
            Section { set: None, text: BLOCK },
            Section { set: Some("a=0.25"), text: "::\nAnon-To: x@y.example\n" },
        ];
        let s = write("quill@nym.example", &c, Some(KEY), &blocks).unwrap();
        let r = parse(&s, &hosted);
        assert!(r.problems.is_empty(), "{:?}\n{s}", r.problems);
        assert_eq!(r.from.as_ref().unwrap().name, "quill");
        assert_eq!(r.from.unwrap().domain.as_deref(), Some("nym.example"));
        assert_eq!(r.public_key.as_deref(), Some(KEY));
        let cmds = nc::parse(&nc::join_lines(&r.commands));
        assert!(cmds.problems.is_empty(), "{:?}", cmds.problems);
        assert_eq!((cmds.create, cmds.set, cmds.name.as_deref()), (c.create, c.set, c.name.as_deref()));
        assert_eq!(r.blocks.len(), 2);
        assert_eq!(r.blocks[0].set, None);
        // Stored as sent, ending with one blank line.
        assert_eq!(r.blocks[0].text, format!("{BLOCK}\n"));
        assert_eq!(r.blocks[1].set, Some(('a', 250_000_000)));
    }

    #[test]
    fn request_without_commands_or_key_is_a_modification() {
        let s = write("quill@nym.example", &Commands::default(), None, &[Section { set: None, text: BLOCK }])
            .unwrap();
        assert!(s.starts_with("Config:\nFrom: quill@nym.example\nReply-Block:\n::\n"), "{s}");
        let r = parse(&s, &hosted);
        assert!(r.problems.is_empty() && r.commands.is_empty() && r.public_key.is_none());
    }

    #[test]
    fn request_writer_refuses_what_the_parser_would_misread() {
        let c = Commands::default();
        let bad_set = [Section { set: Some("a = 0.5"), text: BLOCK }];
        assert!(write("q@nym.example", &c, None, &bad_set).is_err());
        let inner = [Section { set: None, text: "::\nreply-block: x\n" }];
        assert!(write("q@nym.example", &c, None, &inner).is_err());
        assert!(write("q@nym.example", &c, Some("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"), &[]).is_err());
        assert!(write("q@nym.example\nTo: x", &c, None, &[]).is_err());
    }
}
