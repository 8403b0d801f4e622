//! `nym config`: change a nym's options by a signed request to config@.

use super::prelude::*;

impl Ctx {
    pub(crate) fn config(&self, a: cli::ConfigArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let o = &a.options;
        let server_side =
            o.hsub.is_some() || o.subject.is_some() || o.symmetric.is_some() || o.acksend.is_some();
        if a.esub_text.is_some() || a.no_esub {
            if a.no_esub {
                rec.esubs.clear();
            }
            if let (Some(text), Some(key)) = (&a.esub_text, &a.esub_key) {
                let e = crate::client::store::EsubSecret { text: text.clone(), key: key.clone() };
                if !rec.esubs.contains(&e) {
                    rec.esubs.push(e);
                }
            }
            self.store.save_nym(&rec)?;
            eprintln!(
                "nym: {}: eSub secrets stored locally ({}); nothing sent",
                rec.address,
                rec.esubs.len()
            );
            if !server_side {
                return Ok(());
            }
        }
        let opts = apply_options(&mut rec, &a.options, false)?;
        let plaintext = request::option_lines(&opts)?;
        let key = self.secret_key(&rec.address)?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], Some(&key))?;
        self.handoff(&a.handoff, Some(&rec.address), &format!("config@{}", rec.domain()), &armored)?;
        self.store.save_nym(&rec)?;
        if opts.is_empty() {
            eprintln!("nym: status request made; the server answers with the current options");
        }
        Ok(())
    }
}
