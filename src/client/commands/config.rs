//! `nym config`: change a nym's options by a signed request to config@.

use super::prelude::*;

impl Ctx {
    pub(crate) fn config(&self, a: cli::ConfigArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let opts = apply_options(&mut rec, &a.options, false)?;
        let plaintext = request::option_lines(&opts)?;
        let key = self.secret_key(&rec.address)?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], Some(&key))?;
        self.handoff(&a.handoff, &format!("config@{}", rec.domain()), &armored)?;
        self.store.save_nym(&rec)?;
        if opts.is_empty() {
            eprintln!("nym: status request made; the server answers with the current options");
        }
        Ok(())
    }
}
