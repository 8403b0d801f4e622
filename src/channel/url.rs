//! The url@ reply: the pages fetched, as one MIME message, encrypted with
//! the request's key alone and posted under the hSub of its `hsub`.

use std::time::Duration;

use crate::config::Config;
use crate::exit::Failure;
use crate::fetch::{self, FetchLimits, Page};
use crate::handle::Outcome;
use crate::pgp;
use crate::protocol::{article, hsub, url_request};
use crate::store::OutItem;

pub fn reply(
    cfg: &Config,
    urls: &[String],
    skipped: usize,
    key: &str,
    hsub_pass: &str,
) -> Result<(OutItem, Outcome), Failure> {
    let u = &cfg.url;
    let limits = FetchLimits {
        allow_private: u.allow_private,
        max_bytes: u.max_page_bytes,
        timeout: Duration::from_secs(u.timeout.max(1)),
        max_redirects: 5,
    };
    let pages: Vec<Page> = urls.iter().map(|a| fetch::fetch(a, &limits)).collect();
    let fetched = pages.iter().filter(|p| p.result.is_ok()).count();
    let body = url_request::build_reply(cfg.default_domain(), &pages, skipped);
    let armored = pgp::encrypt_symmetric(&body, key)?;
    let item = article::article(cfg, &hsub::hsub(hsub_pass.as_bytes(), cfg.limits.hsub_length), &armored);
    let outcome = if fetched == pages.len() {
        Outcome::Fetched
    } else if fetched == 0 {
        Outcome::AllFailed
    } else {
        Outcome::SomeFailed
    };
    Ok((item, outcome))
}
