//! The url@ reply, built by the flush timer: the pages fetched within the
//! request's time and size budget, as one MIME message, encrypted with the
//! request's key alone and posted under the hSub of its `hsub`.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::url::Queued;
use crate::handle::Outcome;
use crate::openpgp as pgp;
use crate::protocol::{article, hsub, url_request};
use crate::store::OutItem;
use crate::web::{self as fetch, FetchLimits, Page};

pub fn reply(cfg: &Config, q: &Queued) -> Result<(OutItem, Outcome), Failure> {
    let u = &cfg.url;
    let deadline = Instant::now() + Duration::from_secs(u.request_timeout.max(1));
    let mut budget = u.max_reply_bytes;
    let mut pages = Vec::with_capacity(q.urls.len());
    for url in &q.urls {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = if left.is_zero() {
            Err("not fetched: the request's time limit was reached".to_string())
        } else if budget == 0 {
            Err("not fetched: the reply's size limit was reached".to_string())
        } else {
            let limits = FetchLimits {
                allow_private: u.allow_private,
                max_bytes: u.max_page_bytes.min(budget),
                timeout: Duration::from_secs(u.timeout.max(1)).min(left),
                max_redirects: 5,
            };
            fetch::fetch(url, &limits).result
        };
        if let Ok(f) = &result {
            budget = budget.saturating_sub(f.body.len() as u64);
        }
        pages.push(Page { url: url.clone(), result });
    }
    let fetched = pages.iter().filter(|p| p.result.is_ok()).count();
    let body = url_request::build_reply(cfg.default_domain(), &pages, q.skipped);
    let armored = pgp::encrypt_symmetric(&body, &q.key)?;
    let item = article::article(cfg, &hsub::hsub(q.hsub.as_bytes(), cfg.limits.hsub_length), &armored);
    let outcome = if fetched == pages.len() {
        Outcome::Fetched
    } else if fetched == 0 {
        Outcome::AllFailed
    } else {
        Outcome::SomeFailed
    };
    Ok((item, outcome))
}
