//! `nym url`: ask url@ for web pages.

use super::prelude::*;

impl Ctx {
    pub(crate) fn url(&self, a: cli::UrlArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let plaintext = request::url_plaintext(&a.urls, &a.key, a.hsub.as_deref())?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], None)?;
        self.handoff(&a.handoff, None, &format!("url@{}", rec.domain()), &armored)?;
        let uk = UrlKey { key: a.key.clone(), hsub: a.hsub.unwrap_or(a.key) };
        if !rec.url_keys.contains(&uk) {
            rec.url_keys.push(uk);
        }
        self.store.save_nym(&rec)
    }
}
