//! `nym new`: make a nym key and ask the server for the nym (or resend the request).

use super::prelude::*;

impl Ctx {
    pub(crate) fn new_nym(&self, a: cli::NewArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        if a.resend {
            let rec = self.live_nym(&addr)?;
            let cert = pgp::read_cert(&self.store.key_bytes(&addr)?)?;
            let mut opts: Vec<(&str, String)> = Vec::new();
            for (name, v) in [("hsub", &rec.hsub), ("subject", &rec.subject), ("symmetric", &rec.symmetric)] {
                if let Some(v) = v {
                    opts.push((name, v.clone()));
                }
            }
            if let Some(b) = rec.acksend {
                opts.push(("acksend", if b { "yes" } else { "no" }.into()));
            }
            let plaintext = request::create_plaintext(&opts, &pgp::armored_public(&cert)?)?;
            let armored = pgp::encrypt(plaintext.as_bytes(), &[&self.server_key(&addr)?], None)?;
            return self.handoff(
                &a.handoff,
                Some(&rec.address),
                &format!("config@{}", rec.domain()),
                &armored,
            );
        }
        check_nym_name(&addr)?;
        if self.store.has_nym(&addr) {
            bail!(
                "{addr} is already in {}; `nym new --resend` sends its create request again, \
                 `nym config` changes it",
                self.store.root.display()
            );
        }
        let server_key = a.server_key.as_deref().expect("clap requires it without --resend");
        let (server, server_armored) = self.server_and_check(server_key, &addr)?;
        let cert = if a.from_gpg {
            gpg_secret_key(&addr)?
        } else {
            let expire = pgp::parse_expiry(&a.expire)?;
            let pw = if a.protect { Some(self.password(&format!("the new key of {addr}"))?) } else { None };
            eprintln!("nym: generating the key for {addr}{}", if a.rsa4096 { " (RSA-4096)" } else { "" });
            pgp::generate(&addr, expire, a.rsa4096, pw)?
        };
        pgp::check_nym_key(&cert, &addr)?;
        let cert = if a.from_gpg && a.protect && !pgp::is_protected(&cert) {
            pgp::protect(cert, &self.password(&format!("the key of {addr}"))?)?
        } else {
            cert
        };
        let mut rec = NymRecord {
            address: addr.clone(),
            state: Some(if a.no_request { "local only" } else { "requested" }.into()),
            ..Default::default()
        };
        let opts = apply_options(&mut rec, &a.options, true)?;

        self.store.save_key(&addr, pgp::armored_secret(&cert)?.as_bytes())?;
        self.store.save_server_key(&addr, &server_armored)?;
        self.store.save_nym(&rec)?;
        eprintln!("nym: {addr}: key {} stored in {}", cert.fingerprint(), self.store.root.display());
        if a.export_to_gpg {
            gpg_import(pgp::armored_secret(&cert)?.as_bytes())?;
        }
        if a.no_request {
            return Ok(());
        }
        let plaintext = request::create_plaintext(&opts, &pgp::armored_public(&cert)?)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], None)?;
        self.handoff(&a.handoff, Some(&rec.address), &format!("config@{}", rec.domain()), &armored)
            .context(format!("the nym is set up locally; retry with `nym new {addr} --resend`"))?;
        eprintln!(
            "nym: the server posts its confirmation to alt.anonymous.messages; get it with `nym fetch`"
        );
        Ok(())
    }
}
