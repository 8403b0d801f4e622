//! `nym import`: take a nym made elsewhere (with gpg) into the store.

use super::prelude::*;

impl Ctx {
    pub(crate) fn import(&self, a: cli::ImportArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        if self.store.has_nym(&addr) {
            bail!("{addr} is already in {}", self.store.root.display());
        }
        let (_, server_armored) = self.server_and_check(&a.server_key, &addr)?;
        let cert = if a.from_gpg {
            gpg_secret_key(&addr)?
        } else {
            let p = a.secret_key.as_ref().expect("clap requires one");
            let bytes = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            pick_cert(pgp::read_certs(&bytes)?, &addr)?
        };
        if !cert.is_tsk() {
            bail!("the key for {addr} has no secret parts; export it with --export-secret-keys");
        }
        pgp::check_nym_key(&cert, &addr)?;
        let mut rec = NymRecord { address: addr.clone(), ..Default::default() };
        apply_options(&mut rec, &a.options, true)?;
        self.store.save_key(&addr, pgp::armored_secret(&cert)?.as_bytes())?;
        self.store.save_server_key(&addr, &server_armored)?;
        self.store.save_nym(&rec)?;
        eprintln!("nym: {addr}: imported key {}", cert.fingerprint());
        Ok(())
    }
}
