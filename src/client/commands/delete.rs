//! `nym delete`: ask the server to erase the nym.

use super::prelude::*;

impl Ctx {
    pub(crate) fn delete(&self, a: cli::DeleteArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        if a.forget {
            self.store.load_nym(&addr)?;
            self.store.forget_nym(&addr)?;
            eprintln!("nym: {addr} removed from {}", self.store.root.display());
            return Ok(());
        }
        if !a.yes {
            bail!("deleting {addr} cannot be undone; add --yes to do it");
        }
        let mut rec = self.live_nym(&addr)?;
        let key = self.secret_key(&addr)?;
        let server = self.server_key(&addr)?;
        let armored = pgp::encrypt(b"delete: yes\n", &[&server], Some(&key))?;
        self.handoff(&a.handoff, Some(&rec.address), &format!("config@{}", rec.domain()), &armored)?;
        rec.deleted = true;
        rec.state = Some("delete requested".into());
        self.store.save_nym(&rec)?;
        eprintln!(
            "nym: delete requested; fetch and read the last confirmation, then `nym delete {addr} --forget`"
        );
        Ok(())
    }
}
