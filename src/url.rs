//! url@: web pages for a nym (PROTOCOL.md section 8).
//!
//! The request need not be signed. Its plaintext has `url:` (or `source:`)
//! lines, a required `key:` (the reply is encrypted with it alone) and an
//! optional `hsub:` (defaults to the key). Pages are fetched with size and
//! time limits, never from non-public addresses unless the operator allows
//! it, and come back as one MIME part each; errors become text parts.

use std::time::Duration;

use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use crate::error::Failure;
use crate::fetch::{self, FetchLimits, Page};
use crate::handler::{begin, done, queue, Ctx, Done};
use crate::message::{self, article};
use crate::openpgp as pgp;

/// What a url@ request asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UrlRequest {
    pub urls: Vec<String>,
    pub key: Option<String>,
    pub hsub: Option<String>,
}

/// Read the request lines; the first `key:` and `hsub:` win, every `url:`
/// counts (up to the caller's limit).
pub fn parse_request(text: &str) -> UrlRequest {
    let mut r = UrlRequest::default();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match name.trim().to_ascii_lowercase().as_str() {
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
                    MimePart::new(ContentType::new(ct), body).header(
                        "Content-Location",
                        mail_builder::headers::raw::Raw::new(f.final_url.clone()),
                    ),
                );
            }
            Err(e) => {
                summary.push_str(&format!("{}. {} -> error: {e}\n", i + 1, p.url));
                parts.push(MimePart::new(
                    ContentType::new("text/plain").attribute("charset", "utf-8"),
                    BodyPart::Text(format!("Could not fetch {}: {e}\n", p.url).into()),
                ));
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
    MessageBuilder::new()
        .from(("URL retrieval".to_string(), format!("url@{domain}")))
        .subject("Your URL request")
        .body(MimePart::new(ContentType::new("multipart/mixed"), BodyPart::Multipart(all)))
        .write_to_vec()
        .unwrap_or_default()
}

pub fn url(ctx: &mut Ctx, raw: &[u8], digest: Option<&[u8]>) -> Result<Done, Failure> {
    const EV: &str = "url";
    let Some(armored) = message::extract_pgp_message(raw) else { return done(EV, "no_pgp_message") };
    let dec = match ctx.decrypt(&armored) {
        Ok(d) => d,
        Err(_) => return done(EV, "undecryptable"),
    };
    let req = parse_request(&String::from_utf8_lossy(&dec.plaintext));
    let Some(key) = req.key.clone() else { return done(EV, "no_key") };
    if req.urls.is_empty() {
        return done(EV, "no_url");
    }
    let u = &ctx.cfg.url;
    let limits = FetchLimits {
        allow_private: u.allow_private,
        max_bytes: u.max_page_bytes,
        timeout: Duration::from_secs(u.timeout.max(1)),
        max_redirects: 5,
    };
    let take = req.urls.len().min(u.max_urls.max(1));
    let pages: Vec<Page> = req.urls[..take].iter().map(|a| fetch::fetch(a, &limits)).collect();
    let fetched = pages.iter().filter(|p| p.result.is_ok()).count();
    let reply = build_reply(ctx.cfg.default_domain(), &pages, req.urls.len() - take);
    let body = pgp::encrypt_symmetric(&reply, &key)?;
    let hsub = req.hsub.as_deref().unwrap_or(&key);
    let item = article(ctx.cfg, &crate::hsub::hsub(hsub.as_bytes(), ctx.cfg.limits.hsub_length), &body);
    let (cfg, now) = (ctx.cfg, ctx.now);
    let Some(tx) = begin(&mut ctx.store, now, digest)? else { return done(EV, "duplicate_delivery") };
    queue(cfg, &tx, now, item, &mut ctx.mine)?;
    tx.commit()?;
    done(
        EV,
        if fetched == take {
            "fetched"
        } else if fetched == 0 {
            "all_failed"
        } else {
            "some_failed"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(r.contains("text/html"));
        assert!(r.contains("Could not fetch b: address is not public"));
    }
}
