//! `nym export`: a nym's keys for use elsewhere.

use super::prelude::*;

impl Ctx {
    pub(crate) fn export(&self, a: cli::ExportArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        self.store.load_nym(&addr)?;
        let cert = pgp::read_cert(&self.store.key_bytes(&addr)?)?;
        if a.to_gpg {
            gpg_import(pgp::armored_secret(&cert)?.as_bytes())?;
            gpg_import(&self.store.server_key_bytes(&addr)?)?;
            eprintln!("nym: {addr} and its server key imported into GnuPG");
            return Ok(());
        }
        let text = if a.secret { pgp::armored_secret(&cert)? } else { pgp::armored_public(&cert)? };
        std::io::stdout().write_all(text.as_bytes())?;
        Ok(())
    }
}
