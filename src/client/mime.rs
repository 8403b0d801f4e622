//! Decoding the opened messages for the holder: headers, text parts
//! (transfer encodings and charsets applied), and the attachments.

use mail_parser::{Address, MessageParser, MimeHeaders};

/// One attachment of a decoded message.
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What `nym read` shows of one message.
pub struct Decoded {
    /// Header lines and text parts, ready to be shown (still subject to
    /// `write_shown` on a terminal).
    pub text: String,
    pub subject: Option<String>,
    pub attachments: Vec<Attachment>,
}

fn addresses(a: &Address) -> String {
    a.iter()
        .map(|x| match (x.name(), x.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decode `raw`; `None` when it is not a mail at all (then it is shown as
/// it is).
pub fn decode(raw: &[u8]) -> Option<Decoded> {
    let m = MessageParser::default().parse(raw)?;
    if m.headers().is_empty() {
        return None;
    }
    let mut text = String::new();
    if let Some(a) = m.from() {
        text.push_str(&format!("From: {}\n", addresses(a)));
    }
    if let Some(a) = m.to() {
        text.push_str(&format!("To: {}\n", addresses(a)));
    }
    if let Some(a) = m.cc() {
        text.push_str(&format!("Cc: {}\n", addresses(a)));
    }
    if let Some(d) = m.date() {
        text.push_str(&format!("Date: {}\n", d.to_rfc822()));
    }
    if let Some(s) = m.subject() {
        text.push_str(&format!("Subject: {s}\n"));
    }
    text.push('\n');
    let mut shown_text = false;
    for i in 0..m.text_body_count() {
        let Some(part) = m.text_part(i) else { continue };
        if part.is_text_html() {
            // No plain part: the HTML converted to text.
            if let Some(t) = m.body_text(i) {
                text.push_str(&t);
            }
        } else if let Some(t) = part.text_contents() {
            text.push_str(t);
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        shown_text = true;
    }
    if !shown_text && m.attachment_count() == 0 {
        text.push_str("(no text)\n");
    }
    let mut attachments = Vec::new();
    for (i, part) in m.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let name =
            part.attachment_name().map(str::to_string).unwrap_or_else(|| format!("attachment-{}", i + 1));
        let data = match part.message() {
            Some(inner) => inner.raw_message().to_vec(),
            None => part.contents().to_vec(),
        };
        attachments.push(Attachment { name, content_type, data });
    }
    Some(Decoded { text, subject: m.subject().map(str::to_string), attachments })
}

/// A file name for an attachment that cannot leave the directory it is
/// saved in, hide itself or carry control characters.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut s: String = base
        .chars()
        .map(|c| {
            if c.is_control()
                || c == ':'
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    let s = s.trim().to_string();
    let s: String = s.chars().take(120).collect();
    if s.is_empty() {
        "attachment".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encodings_charsets_and_parts() {
        let raw = b"From: Bob <bob@example.org>\r\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSch=F6n\r\n--XX\r\nContent-Type: application/pdf; name=\"../a.pdf\"\r\nContent-Disposition: attachment; filename=\"../a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n";
        let d = decode(raw).unwrap();
        assert!(d.text.contains("Subject: Grüße"), "{}", d.text);
        assert!(d.text.contains("Schön"), "{}", d.text);
        assert_eq!(d.attachments.len(), 1);
        assert_eq!(d.attachments[0].data, b"%PDF-");
        assert_eq!(safe_file_name(&d.attachments[0].name), "a.pdf");
        assert_eq!(safe_file_name("..\u{1b}x"), "_x");
    }
}
