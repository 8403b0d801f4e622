//! The url@ request (PROTOCOL.md section 8), both directions: the parser
//! the server reads it with, the writer the client makes it with, and the
//! reply the server posts back.

use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use crate::web::Page;

/// What a url@ request asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UrlRequest {
    pub urls: Vec<String>,
    pub key: Option<String>,
    pub hsub: Option<String>,
}

/// Read the request lines; the first `key:` and `hsub:` win, every `url:`
/// counts once (up to the caller's limit). Zax's old form with a space
/// for the colon (`url http://...`, `key secret`) is read too.
pub fn parse_request(text: &str) -> UrlRequest {
    let mut r = UrlRequest::default();
    let word = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    for line in text.lines() {
        let (name, value) = match line.split_once(':') {
            Some((n, v)) if word(n.trim()) => (n, v),
            _ => match line.trim_start().split_once([' ', '\t']) {
                Some((n, v)) if word(n) => (n, v),
                _ => continue,
            },
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match name.trim().to_ascii_lowercase().as_str() {
            "url" | "source" if r.urls.iter().any(|u| u == value) => {}
            "url" | "source" => r.urls.push(value.to_string()),
            "key" if r.key.is_none() => r.key = Some(value.to_string()),
            "hsub" if r.hsub.is_none() => r.hsub = Some(value.to_string()),
            _ => {}
        }
    }
    r
}

/// The reply: a multipart message with a summary and one part per page.
pub fn build_reply(domain: &str, pages: &[Page], skipped: usize) -> Vec<u8> {
    let mut summary = String::from("Results of your URL request:\n\n");
    let mut parts: Vec<MimePart> = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        match &p.result {
            Ok(f) => {
                summary.push_str(&format!(
                    "{}. {} -> {} ({} bytes{})\n",
                    i + 1,
                    p.url,
                    f.final_url,
                    f.body.len(),
                    if f.truncated { ", truncated at the size limit" } else { "" }
                ));
                let ct =
                    f.content_type.split(';').next().unwrap_or("application/octet-stream").trim().to_string();
                let ct = if ct.contains('/') { ct } else { "application/octet-stream".into() };
                let body = if ct.starts_with("text/") {
                    BodyPart::Text(String::from_utf8_lossy(&f.body).into_owned().into())
                } else {
                    BodyPart::Binary(f.body.clone().into())
                };
                parts.push(
                    MimePart::new(ContentType::new(ct), body)
                        .header("Content-Location", mail_builder::headers::raw::Raw::new(f.final_url.clone()))
                        .header(
                            "Content-Description",
                            mail_builder::headers::raw::Raw::new(one_line(&p.url)),
                        ),
                );
            }
            Err(e) => {
                summary.push_str(&format!("{}. {} -> error: {e}\n", i + 1, p.url));
                parts.push(
                    MimePart::new(
                        ContentType::new("text/plain").attribute("charset", "utf-8"),
                        BodyPart::Text(format!("Could not fetch {}: {e}\n", p.url).into()),
                    )
                    .header("Content-Description", mail_builder::headers::raw::Raw::new(one_line(&p.url))),
                );
            }
        }
    }
    if skipped > 0 {
        summary
            .push_str(&format!("\n{skipped} more address(es) were not fetched: too many in one request.\n"));
    }
    let mut all = vec![MimePart::new(
        ContentType::new("text/plain").attribute("charset", "utf-8"),
        BodyPart::Text(summary.into()),
    )];
    all.extend(parts);
    // Our own Message-ID: the library's default names the machine.
    let mut id = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
    let msg = MessageBuilder::new()
        .message_id(format!("{}@{domain}", hex::encode(id)))
        .from(("URL retrieval".to_string(), format!("url@{domain}")))
        .subject("Your URL request")
        .body(MimePart::new(ContentType::new("multipart/mixed"), BodyPart::Multipart(all)))
        .write_to_vec()
        .unwrap_or_default();
    // Zax's mailbox shape: the decrypted text, saved, opens in a mail
    // reader as a one-message mbox.
    let mut out = mbox_from_line(domain, std::time::SystemTime::now()).into_bytes();
    out.extend_from_slice(&msg);
    out
}

/// A header value on one line (addresses come from the request).
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(900).collect()
}

/// `From url@D Mon Dec  7 20:56:52 2026`: the mbox separator, asctime date (UTC).
pub fn mbox_from_line(domain: &str, t: std::time::SystemTime) -> String {
    // "Mon, 07 Dec 2026 20:56:52 +0000" -> "Mon Dec  7 20:56:52 2026"
    let d = crate::transport::rfc5322_date(t);
    let w: Vec<&str> = d.split_whitespace().collect();
    let (wd, day, mo, y, hms) = (w[0].trim_end_matches(','), w[1], w[2], w[3], w[4]);
    let day: u32 = day.parse().unwrap_or(1);
    format!("From url@{domain} {wd} {mo} {day:>2} {hms} {y}\n")
}

/// The client's side of [`parse_request`]: `url:` lines, then `key:` and
/// the optional `hsub:`.
pub fn write_request(urls: &[String], key: &str, hsub: Option<&str>) -> Result<String, String> {
    let mut s = String::new();
    for u in urls {
        if u.is_empty() || u.contains(char::is_whitespace) {
            return Err(format!("`{u}` is not an address the server can fetch"));
        }
        s.push_str(&format!("url: {u}\n"));
    }
    let mut opts = vec![("key", key.to_string())];
    if let Some(h) = hsub {
        opts.push(("hsub", h.to_string()));
    }
    s.push_str(&super::options::write_lines(&opts)?);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web as fetch;

    #[test]
    fn the_old_form_with_a_space_is_read_and_repeated_addresses_count_once() {
        let r =
            parse_request("url http://a.example/x\nsource  b.example\nurl http://a.example/x\nkey s3cret\n");
        assert_eq!(r.urls, vec!["http://a.example/x", "b.example"]);
        assert_eq!(r.key.as_deref(), Some("s3cret"));
        assert_eq!(parse_request("url: http://a.example/x\n").urls, vec!["http://a.example/x"]);
    }

    #[test]
    fn the_reply_starts_with_an_mbox_from_line() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_677_012);
        assert_eq!(mbox_from_line("nym.example", t), "From url@nym.example Mon Dec  7 20:56:52 2026\n");
    }

    #[test]
    fn request_lines() {
        let r = parse_request(
            "URL: example.org\nsource: http://b.example/x\nkey: k1\nkey: k2\nhsub: h\nother: z\n",
        );
        assert_eq!(r.urls, vec!["example.org", "http://b.example/x"]);
        assert_eq!(r.key.as_deref(), Some("k1"));
        assert_eq!(r.hsub.as_deref(), Some("h"));
    }

    #[test]
    fn reply_has_a_part_per_page_and_errors_as_text() {
        let pages = vec![
            Page {
                url: "a".into(),
                result: Ok(fetch::Fetched {
                    final_url: "http://a/".into(),
                    content_type: "text/html; charset=utf-8".into(),
                    body: b"<p>hi</p>".to_vec(),
                    truncated: false,
                }),
            },
            Page { url: "b".into(), result: Err("address is not public".into()) },
        ];
        let r = String::from_utf8(build_reply("d.example", &pages, 0)).unwrap();
        assert!(r.contains("multipart/mixed"));
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let msgid = r.lines().find(|l| l.starts_with("Message-ID:")).unwrap();
        assert!(msgid.ends_with("@d.example>"), "{msgid}");
        assert!(host.trim().is_empty() || !r.contains(host.trim()), "the reply names the host");
        assert!(r.contains("text/html"));
        assert!(r.contains("Could not fetch b: address is not public"));
        assert!(r.starts_with("From url@d.example "), "{r}");
        assert!(r.contains("Content-Description: a\r\n") || r.contains("Content-Description: a\n"), "{r}");
        assert!(r.contains("Content-Description: b"), "{r}");
    }

    #[test]
    fn written_request_parses_back() {
        let urls = vec!["example.org".to_string(), "https://b.example/p?q=1".to_string()];
        let t = write_request(&urls, "sekrit", Some("h s")).unwrap();
        let r = parse_request(&t);
        assert_eq!(r.urls, urls);
        assert_eq!(r.key.as_deref(), Some("sekrit"));
        assert_eq!(r.hsub.as_deref(), Some("h s"));
        assert!(write_request(&["a b".to_string()], "k", None).is_err());
    }

    #[test]
    fn first_key_and_hsub_win_repeated_urls_count_once() {
        let r = parse_request("key: a\nkey: b\nhsub: x\nhsub: y\nurl: u1\nurl: u1\nurl: u2\n");
        assert_eq!(r.key.as_deref(), Some("a"));
        assert_eq!(r.hsub.as_deref(), Some("x"));
        assert_eq!(r.urls, vec!["u1", "u2"]);
    }

    #[test]
    fn lines_without_value_are_ignored() {
        let r = parse_request("url:\nkey:   \nurl: x\n");
        assert_eq!(r.urls, vec!["x"]);
        assert_eq!(r.key, None);
    }
}
