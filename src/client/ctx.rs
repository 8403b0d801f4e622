//! The state every command works with: the holder's store, how to ask for
//! a passphrase, the keys, and handing a request to the server.

use super::commands::prelude::*;

pub(crate) struct Ctx {
    pub(crate) store: Store,
    pub(crate) passphrase_file: Option<PathBuf>,
    /// `--proxy` / `$NYM_PROXY`; overrides `proxy` in config.toml.
    pub(crate) proxy: Option<String>,
}

impl Ctx {
    pub(crate) fn password(&self, what: &str) -> Result<Passphrase> {
        if let Some(p) = &self.passphrase_file {
            let s = fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            return Ok(s.lines().next().unwrap_or("").into());
        }
        if let Ok(s) = std::env::var("NYM_PASSPHRASE") {
            return Ok(s.into());
        }
        if std::io::stdin().is_terminal() {
            return Ok(rpassword::prompt_password(format!("Passphrase for {what}: "))?.into());
        }
        bail!("{what} is passphrase-protected; give --passphrase-file or set NYM_PASSPHRASE")
    }

    /// The nym's key with usable secrets.
    pub(crate) fn secret_key(&self, addr: &str) -> Result<Cert> {
        let cert = pgp::read_cert(&self.store.key_bytes(addr)?)?;
        if pgp::is_protected(&cert) {
            let pw = self.password(&format!("the key of {addr}"))?;
            return pgp::unlock(cert, &pw);
        }
        Ok(cert)
    }

    pub(crate) fn server_key(&self, addr: &str) -> Result<Cert> {
        pgp::read_cert(&self.store.server_key_bytes(addr)?)
    }

    /// How to connect: through the proxy (command line first, then
    /// config.toml) with the credentials of `iso`, or straight.
    pub(crate) fn dialer(&self, iso: net::Isolation) -> Result<net::Dialer> {
        let setting = match &self.proxy {
            Some(p) => Some(p.clone()),
            None => self.store.config()?.proxy,
        };
        let Some(proxy) = setting.map(|s| net::Proxy::parse(&s)).transpose()?.flatten() else {
            return Ok(net::Dialer::default());
        };
        let auth = match iso {
            net::Isolation::Nym(addr) => net::nym_credentials(&self.store.isolation_secret()?, addr),
            net::Isolation::Run => net::run_credentials(),
        };
        Ok(net::Dialer { proxy: Some(proxy), auth: Some(auth) })
    }

    /// Hand a request off. `nym` is the nym whose request it is (its own
    /// SOCKS credentials), or None for requests not linked to a nym (url@).
    pub(crate) fn handoff(&self, h: &Handoff, nym: Option<&str>, to: &str, armored: &str) -> Result<()> {
        let cfg = self.store.config()?;
        let mut via = match h.via.as_deref().or(cfg.via.as_deref()) {
            Some(v) => Via::parse(v)?,
            None => Via::Stdout,
        };
        if let Via::Smtp { login: login @ None, .. } = &mut via {
            if let Some(user) = &cfg.smtp_user {
                let pass = match (&cfg.smtp_password, std::env::var("NYM_SMTP_PASSWORD")) {
                    (Some(p), _) => p.clone(),
                    (None, Ok(p)) => p,
                    (None, Err(_)) => bail!(
                        "config.toml names smtp_user but no password: set smtp_password there \
                         or $NYM_SMTP_PASSWORD"
                    ),
                };
                *login = Some(crate::client::smtp::Login { user: user.clone(), pass });
            }
        }
        let dialer = match nym {
            Some(a) => self.dialer(net::Isolation::Nym(a))?,
            None => self.dialer(net::Isolation::Run)?,
        };
        if dialer.proxy.is_some() && matches!(via, Via::Sendmail(_)) {
            eprintln!(
                "nym: note: the proxy is not used for sendmail:; that command decides how the mail leaves"
            );
        }
        let from = h.from.as_deref().or(cfg.from.as_deref());
        let text = request::carrier(to, from, armored);
        for i in 0..h.copies.max(1) {
            let mail = handoff::Mail { from, to, text: &text };
            let where_ = handoff::deliver(&via, &mail, h.ca_file.as_deref(), &dialer)?;
            if via != Via::Stdout {
                eprintln!("nym: request to {to} handed to {where_}{}", if i > 0 { " (copy)" } else { "" });
            }
        }
        Ok(())
    }

    pub(crate) fn server_and_check(&self, path: &Path, addr: &str) -> Result<(Cert, Vec<u8>)> {
        let bytes = fs::read(path).with_context(|| format!("reading the server key {}", path.display()))?;
        // A server in a key rotation publishes its old and new keys
        // together; the new one (certified by the old) is the one to use.
        let certs = pgp::read_certs(&bytes)?;
        let cert = if certs.len() == 1 {
            certs.into_iter().next().ok_or_else(|| anyhow!("no OpenPGP key found"))?
        } else {
            crate::openpgp::current_server_key(certs)?
        };
        let domain = addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        pgp::check_server_key(&cert, domain)?;
        Ok((cert.clone(), pgp::armored_public(&cert)?.into_bytes()))
    }

    pub(crate) fn live_nym(&self, addr: &str) -> Result<NymRecord> {
        let rec = self.store.load_nym(addr)?;
        if rec.deleted {
            bail!("{} was deleted; `nym delete --forget` removes it from the store", rec.address);
        }
        Ok(rec)
    }
}

/// Turn the option flags into request lines and update the record. A value
/// of `none` (or 0, no, false) unsets. Old passphrases are kept so that
/// articles already on their way can still be recognised and opened.
pub(crate) fn apply_options(
    rec: &mut NymRecord,
    o: &NymOptions,
    create: bool,
) -> Result<Vec<(&'static str, String)>> {
    let is_off = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "0" | "no" | "none" | "false");
    let mut lines = Vec::new();
    let texts: [(&'static str, &Option<String>); 3] =
        [("hsub", &o.hsub), ("subject", &o.subject), ("symmetric", &o.symmetric)];
    for (name, val) in texts {
        let Some(v) = val else { continue };
        request::check_value(name, v)?;
        let (cur, old) = match name {
            "hsub" => (&mut rec.hsub, &mut rec.old_hsubs),
            "subject" => (&mut rec.subject, &mut rec.old_subjects),
            _ => (&mut rec.symmetric, &mut rec.old_symmetric),
        };
        if let Some(prev) = cur.take() {
            if !old.contains(&prev) {
                old.push(prev);
            }
        }
        if is_off(v) {
            if !create {
                lines.push((name, "none".to_string()));
            }
        } else {
            *cur = Some(v.clone());
            lines.push((name, v.clone()));
        }
    }
    if let Some(v) = &o.acksend {
        let on = match v.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => true,
            "0" | "no" | "false" | "off" | "none" => false,
            _ => bail!("--acksend takes yes or no"),
        };
        rec.acksend = Some(on);
        lines.push(("acksend", if on { "yes" } else { "no" }.to_string()));
    }
    Ok(lines)
}

/// The secret key for `addr` from the user's GnuPG keyring. gpg may ask for
/// the key's passphrase (pinentry) to export it.
pub(crate) fn gpg_secret_key(addr: &str) -> Result<Cert> {
    let out = Process::new("gpg")
        .args(["--armor", "--export-secret-keys", "--", &format!("<{addr}>")])
        .stderr(Stdio::inherit())
        .output()
        .context("running gpg")?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!("gpg has no secret key for {addr}");
    }
    pick_cert(pgp::read_certs(&out.stdout)?, addr)
}

pub(crate) fn pick_cert(certs: Vec<Cert>, addr: &str) -> Result<Cert> {
    let mut matching: Vec<Cert> =
        certs.into_iter().filter(|c| pgp::emails(c).iter().any(|e| e == addr)).collect();
    match matching.len() {
        0 => Err(anyhow!("no usable key with the address {addr}")),
        1 => Ok(matching.remove(0)),
        n => Err(anyhow!("{n} keys carry the address {addr}; keep only the nym's key")),
    }
}

pub(crate) fn gpg_import(data: &[u8]) -> Result<()> {
    let mut child = Process::new("gpg")
        .args(["--batch", "--import"])
        .stdin(Stdio::piped())
        .spawn()
        .context("running gpg --import")?;
    child.stdin.take().expect("piped").write_all(data)?;
    if !child.wait()?.success() {
        bail!("gpg --import failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_keep_earlier_passphrases() {
        let mut rec = NymRecord { address: "a@b.c".into(), hsub: Some("old".into()), ..Default::default() };
        let o = NymOptions { hsub: Some("new".into()), symmetric: Some("none".into()), ..Default::default() };
        let lines = apply_options(&mut rec, &o, false).unwrap();
        assert_eq!(lines, vec![("hsub", "new".to_string()), ("symmetric", "none".to_string())]);
        assert_eq!(rec.hsub.as_deref(), Some("new"));
        assert_eq!(rec.old_hsubs, ["old"]);
        assert!(rec.all_hsubs().contains(&"old"));
        // On create, `none` simply sends nothing.
        let mut fresh = NymRecord::default();
        assert!(apply_options(&mut fresh, &o, true).unwrap() == vec![("hsub", "new".to_string())]);
        let bad = NymOptions { acksend: Some("maybe".into()), ..Default::default() };
        assert!(apply_options(&mut fresh, &bad, false).is_err());
    }
}
