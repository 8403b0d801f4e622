//! `nym rotate`: a new encryption subkey, the key refresh to config@, and
//! the old subkey's secret erased once the server confirmed (forward
//! secrecy: the server writes to the newest encryption subkey only).

use super::prelude::*;

impl Ctx {
    pub(crate) fn rotate(&self, a: cli::RotateArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let addr = rec.address.clone();
        // The next "Nym key refreshed" notice must be this refresh's: a
        // confirmation of an earlier one would erase the old secret before
        // the server knows the new subkey.
        if rec.refresh_pending || !rec.rotation_pending.is_empty() {
            bail!(
                "{addr}: a key refresh is still waiting for the server's confirmation; \
                 read it first (`nym fetch`, `nym read`)"
            );
        }
        let stored = pgp::read_cert(&self.store.key_bytes(&addr)?)?;
        let password = if pgp::is_protected(&stored) {
            Some(self.password(&format!("the key of {addr}"))?)
        } else {
            None
        };
        let unlocked = match &password {
            Some(pw) => pgp::unlock(stored.clone(), pw)?,
            None => stored.clone(),
        };
        let (rotated, old) = pgp::add_encryption_subkey(stored, &unlocked, password.as_ref())?;
        pgp::check_nym_key(&rotated, &addr)?;
        let plaintext = request::create_plaintext(&[], &pgp::armored_public(&rotated)?)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&self.server_key(&addr)?], None)?;
        // The new subkey is kept before anything is sent: the server may
        // write to it as soon as the refresh arrives.
        self.store.save_key(&addr, pgp::armored_secret(&rotated)?.as_bytes())?;
        rec.rotation_pending = old;
        rec.refresh_pending = true;
        self.store.save_nym(&rec)?;
        if let Err(e) =
            self.handoff(&a.handoff, Some(&rec.address), &format!("config@{}", rec.domain()), &armored)
        {
            // Nothing went out: the old secret must stay; the new subkey
            // stays too (harmless), and `nym renew` or another rotation
            // can send the key again.
            rec.rotation_pending.clear();
            rec.refresh_pending = false;
            self.store.save_nym(&rec)?;
            return Err(e.context(format!("the new subkey is kept locally; retry with `nym rotate {addr}`")));
        }
        eprintln!(
            "nym: {addr}: new encryption subkey sent as a key refresh; the old subkey's secret is \
             erased when the server's confirmation is read (`nym fetch`, `nym read`). Messages \
             encrypted to the old subkey cannot be opened after that: read them first."
        );
        Ok(())
    }

    /// The server confirmed the refresh of a rotation: erase the secrets
    /// of the old encryption subkeys from the stored key.
    pub(crate) fn finish_rotation(&self, rec: &mut NymRecord) -> Result<()> {
        let addr = rec.address.clone();
        let stored = pgp::read_cert(&self.store.key_bytes(&addr)?)?;
        let erased = pgp::erase_secret_subkeys(stored, &rec.rotation_pending)?;
        if rec.rotation_pending.iter().any(|f| pgp::has_secret(&erased, f)) {
            bail!("{addr}: the old subkey's secret could not be removed");
        }
        self.store.save_key(&addr, pgp::armored_secret(&erased)?.as_bytes())?;
        rec.rotation_pending.clear();
        Ok(())
    }
}
