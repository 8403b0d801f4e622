//! url@: web pages for a nym (PROTOCOL.md section 8). The request need not
//! be signed; the reply is encrypted with the request's `key` alone.

use super::{Decision, Effects, Outcome, Post, Request, View};
use crate::protocol::url_request::parse_request;

const EV: &str = "url";

pub fn decide(v: &View, req: &Request) -> Decision {
    let r = parse_request(&String::from_utf8_lossy(req.plaintext));
    let Some(key) = r.key else { return Decision::drop(EV, Outcome::NoKey) };
    if r.urls.is_empty() {
        return Decision::drop(EV, Outcome::NoUrl);
    }
    let take = r.urls.len().min(v.cfg.url.max_urls.max(1));
    let hsub = r.hsub.unwrap_or_else(|| key.clone());
    let post = Post::UrlReply { urls: r.urls[..take].to_vec(), skipped: r.urls.len() - take, key, hsub };
    // The outcome is refined once the pages are fetched.
    Decision::new(EV, Outcome::Fetched, Effects::none().post(post))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::super::Signer;
    use super::*;

    fn run(k: &Kit, text: &str) -> Decision {
        decide(&k.view(), &k.request(Signer::None, text.as_bytes()))
    }

    #[test]
    fn url_request_needs_no_signature_but_a_key() {
        let k = Kit::new();
        assert_eq!(run(&k, "url: example.org\n").outcome, Outcome::NoKey);
        let d = run(&k, "url: example.org\nkey: k\n");
        assert!(
            matches!(&d.effects.posts[..], [Post::UrlReply { key, hsub, .. }] if key == "k" && hsub == "k")
        );
    }

    #[test]
    fn url_request_without_address_is_dropped() {
        let k = Kit::new();
        let d = run(&k, "key: k\n");
        assert_eq!(d.outcome, Outcome::NoUrl);
        assert!(!d.effects.commit);
    }

    #[test]
    fn hsub_defaults_to_the_key_and_can_differ() {
        let k = Kit::new();
        let d = run(&k, "url: a\nkey: k\nhsub: h\n");
        assert!(matches!(&d.effects.posts[..], [Post::UrlReply { hsub, .. }] if hsub == "h"));
    }

    #[test]
    fn addresses_beyond_the_limit_are_skipped_and_counted() {
        let mut k = Kit::new();
        k.cfg.url.max_urls = 2;
        let d = run(&k, "key: k\nurl: a\nurl: b\nurl: c\n");
        let [Post::UrlReply { urls, skipped, .. }] = &d.effects.posts[..] else { panic!() };
        assert_eq!((urls.len(), *skipped), (2, 1));
    }
}
