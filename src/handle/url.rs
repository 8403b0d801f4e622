//! url@: web pages for a nym (PROTOCOL.md section 8). The request need not
//! be signed; the reply is encrypted with the request's `key` alone.

use super::{Change, Decision, Effects, Guard, OnFail, Outcome, Request, View};
use crate::protocol::url_request::{parse_request, write_request};

const EV: &str = "url";

pub fn decide(v: &View, req: &Request) -> Decision {
    let r = parse_request(&String::from_utf8_lossy(req.plaintext));
    let Some(key) = r.key else { return Decision::drop(EV, Outcome::NoKey) };
    if r.urls.is_empty() {
        return Decision::drop(EV, Outcome::NoUrl);
    }
    // The pages are fetched by the flush timer, not while the MTA waits:
    // an address that never answers must not hold a delivery slot. The
    // request is stored in the form the client writes, with the addresses
    // beyond the limit left out and counted by the reply.
    let take = r.urls.len().min(v.cfg.url.max_urls.max(1));
    let hsub = r.hsub.unwrap_or_else(|| key.clone());
    let Ok(mut text) = write_request(&r.urls[..take], &key, Some(&hsub)) else {
        return Decision::drop(EV, Outcome::NoUrl);
    };
    text.push_str(&format!("skipped: {}\n", r.urls.len() - take));
    let quota = Guard::UrlQuota { since: v.now - 3600, max: v.cfg.url.max_per_hour };
    let effects = Effects::none()
        .guard(quota, OnFail::End(Outcome::UrlRateLimited))
        .change(Change::QueueUrl { request: text.into_bytes() });
    Decision::new(EV, Outcome::UrlQueued, effects)
}

/// What the flush timer reads back from a queued request.
pub struct Queued {
    pub urls: Vec<String>,
    pub skipped: usize,
    pub key: String,
    pub hsub: String,
}

pub fn read_queued(request: &[u8]) -> Option<Queued> {
    let text = String::from_utf8_lossy(request);
    let r = parse_request(&text);
    let skipped = text
        .lines()
        .find_map(|l| l.strip_prefix("skipped: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let key = r.key?;
    Some(Queued { urls: r.urls, skipped, hsub: r.hsub.unwrap_or_else(|| key.clone()), key })
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
        let q = queued(&run(&k, "url: example.org\nkey: k\n"));
        assert_eq!((q.key.as_str(), q.hsub.as_str()), ("k", "k"));
        assert_eq!(q.urls, vec!["example.org"]);
    }

    fn queued(d: &Decision) -> Queued {
        assert_eq!(d.outcome, Outcome::UrlQueued);
        let [Change::QueueUrl { request }] = &d.effects.changes[..] else {
            panic!("{:?}", d.effects.changes)
        };
        read_queued(request).unwrap()
    }

    #[test]
    fn url_requests_are_queued_for_the_timer_under_an_hourly_quota() {
        let k = Kit::new();
        let d = run(&k, "url: a\nkey: k\n");
        assert!(d.effects.posts.is_empty(), "nothing is fetched while the MTA waits");
        assert_eq!(
            d.effects.guards,
            vec![(Guard::UrlQuota { since: k.now - 3600, max: 60 }, OnFail::End(Outcome::UrlRateLimited))]
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
        assert_eq!(queued(&run(&k, "url: a\nkey: k\nhsub: h\n")).hsub, "h");
    }

    #[test]
    fn addresses_beyond_the_limit_are_skipped_and_counted() {
        let mut k = Kit::new();
        k.cfg.url.max_urls = 2;
        let q = queued(&run(&k, "key: k\nurl: a\nurl: b\nurl: c\n"));
        assert_eq!((q.urls.len(), q.skipped), (2, 1));
    }
}
