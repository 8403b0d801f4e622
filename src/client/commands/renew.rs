//! `nym renew`: a new key expiry and the key refresh request to config@.

use super::prelude::*;

impl Ctx {
    pub(crate) fn renew(&self, a: cli::RenewArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let addr = rec.address.clone();
        let expire = pgp::parse_expiry(&a.expire)?;
        let stored = pgp::read_cert(&self.store.key_bytes(&addr)?)?;
        let unlocked = self.secret_key(&addr)?;
        let renewed = pgp::renew(stored, &unlocked, expire)?;
        pgp::check_nym_key(&renewed, &addr)?;
        // The public key again, as in a create request: for a nym that
        // exists with this key the server takes it as a key refresh.
        let plaintext = request::create_plaintext(&[], &pgp::armored_public(&renewed)?)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&self.server_key(&addr)?], None)?;
        self.store.save_key(&addr, pgp::armored_secret(&renewed)?.as_bytes())?;
        self.handoff(&a.handoff, Some(&rec.address), &format!("config@{}", rec.domain()), &armored)
            .context(format!("the key is renewed locally; retry with `nym renew {addr}`"))?;
        rec.refresh_pending = true;
        self.store.save_nym(&rec)?;
        eprintln!(
            "nym: {addr}: key valid {}; the server confirms the refresh on the newsgroup \
             (`nym fetch`, `nym read`)",
            match expire {
                Some(d) => format!("for {} more days", d.as_secs() / 86_400),
                None => "without expiry".into(),
            }
        );
        Ok(())
    }
}
