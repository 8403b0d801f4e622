//! The plaintexts of the requests (PROTOCOL sections 2, 3, 6, 8) and the
//! carrier mail around them. Pure text building, no crypto and no I/O, so
//! every rule is a unit test.

use anyhow::{bail, Result};

use crate::options::MAX_VALUE_CHARS;

/// Check an option value the way the server reads it: 1 to 64 characters
/// on one line, without trailing space (the server would trim it, and the
/// user would then not know the real value).
pub fn check_value(name: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.chars().count() > MAX_VALUE_CHARS {
        bail!("the value of {name} must be 1 to {MAX_VALUE_CHARS} characters");
    }
    if value.contains(['\n', '\r']) || value != value.trim_end() || value != value.trim_start() {
        bail!("the value of {name} must be one line without leading or trailing space");
    }
    Ok(())
}

/// `name: value` lines, in the given order.
pub fn option_lines(opts: &[(&str, String)]) -> Result<String> {
    let mut s = String::new();
    for (name, value) in opts {
        check_value(name, value)?;
        s.push_str(&format!("{name}: {value}\n"));
    }
    Ok(s)
}

/// Create request plaintext: option lines, then the armored public key.
pub fn create_plaintext(opts: &[(&str, String)], armored_public_key: &str) -> Result<String> {
    let mut s = option_lines(opts)?;
    s.push_str(armored_public_key);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// url@ request plaintext.
pub fn url_plaintext(urls: &[String], key: &str, hsub: Option<&str>) -> Result<String> {
    let mut s = String::new();
    for u in urls {
        if u.is_empty() || u.contains(char::is_whitespace) {
            bail!("`{u}` is not an address the server can fetch");
        }
        s.push_str(&format!("url: {u}\n"));
    }
    let mut opts = vec![("key", key.to_string())];
    if let Some(h) = hsub {
        opts.push(("hsub", h.to_string()));
    }
    s.push_str(&option_lines(&opts)?);
    Ok(s)
}

/// What the user wants in the mail sent as the nym.
#[derive(Debug, Default)]
pub struct Outgoing<'a> {
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
pub fn send_message(m: &Outgoing) -> Result<String> {
    if m.to.is_empty() && m.cc.is_empty() && m.bcc.is_empty() && m.newsgroups.is_none() {
        bail!("no recipient: give --to, --cc, --bcc or --newsgroups");
    }
    let mut h = String::new();
    match m.name {
        Some(n) => h.push_str(&format!("From: {} <{}>\n", display_name(n), m.nym)),
        None => h.push_str(&format!("From: {}\n", m.nym)),
    }
    for (field, list) in [("To", m.to), ("Cc", m.cc), ("Bcc", m.bcc)] {
        if !list.is_empty() {
            for a in list {
                if a.contains(['\n', '\r']) {
                    bail!("bad address `{a}`");
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
            bail!("the subject must be one line");
        }
        h.push_str(&format!("Subject: {}\n", encode_word(s)));
    }
    for line in m.extra_headers {
        let Some((name, value)) = line.split_once(':') else {
            bail!("`{line}` is not a `Name: value` header")
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) || value.contains(['\n', '\r']) {
            bail!("`{line}` is not a `Name: value` header");
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

fn display_name(n: &str) -> String {
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

/// The mail that carries an encrypted request to `to` (config@, send@,
/// url@). Deliberately bare: no Date, no Message-ID, no User-Agent, so it
/// says nothing about the machine it was made on.
pub fn carrier(to: &str, from: Option<&str>, armored: &str) -> String {
    let mut s = String::new();
    if let Some(f) = from {
        s.push_str(&format!("From: {f}\n"));
    }
    s.push_str(&format!("To: {to}\n"));
    s.push_str("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n");
    s.push_str(armored);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options;

    #[test]
    fn create_plaintext_is_options_then_key() {
        let t = create_plaintext(
            &[("hsub", "panda".into()), ("symmetric", "x y".into())],
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n...\n-----END PGP PUBLIC KEY BLOCK-----\n",
        )
        .unwrap();
        assert!(t.starts_with("hsub: panda\nsymmetric: x y\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n"));
    }

    #[test]
    fn option_lines_parse_back_with_the_server_parser() {
        let t = option_lines(&[("hsub", "Panda Bear".into()), ("acksend", "no".into())]).unwrap();
        let parsed = options::parse(&t);
        assert_eq!(
            parsed.changes,
            vec![
                options::Change::Set(options::Opt::Hsub, "Panda Bear".into()),
                options::Change::Off(options::Opt::Acksend)
            ]
        );
    }

    #[test]
    fn values_are_checked() {
        assert!(check_value("hsub", "").is_err());
        assert!(check_value("hsub", &"x".repeat(65)).is_err());
        assert!(check_value("hsub", &"x".repeat(64)).is_ok());
        assert!(check_value("hsub", "a\nb").is_err());
        assert!(check_value("hsub", "trailing ").is_err());
    }

    #[test]
    fn send_message_headers() {
        let to = vec!["bob@example.org".to_string()];
        let m = send_message(&Outgoing {
            nym: "alice@nym.example",
            name: Some("Alice A."),
            to: &to,
            subject: Some("Grüße"),
            body: "hi",
            ..Default::default()
        })
        .unwrap();
        assert!(m.starts_with("From: \"Alice A.\" <alice@nym.example>\nTo: bob@example.org\n"));
        assert!(m.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\n"));
        assert!(!m.contains("Date:") && !m.contains("Message-ID"));
        assert!(m.ends_with("\n\nhi\n"));
        assert!(send_message(&Outgoing { nym: "a@b", body: "x", ..Default::default() }).is_err());
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
