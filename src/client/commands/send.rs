//! `nym send`: mail or post as the nym through send@.

use super::prelude::*;

impl Ctx {
    pub(crate) fn send(&self, a: cli::SendArgs) -> Result<()> {
        let rec = self.live_nym(&a.address)?;
        let all: Vec<&String> = a.to.iter().chain(&a.cc).chain(&a.bcc).collect();
        for r in &all {
            check_recipient(r)?;
        }
        if all.len() > 20 {
            bail!("{} recipients; the server refuses more than 20 per message", all.len());
        }
        if all.is_empty() && a.newsgroups.is_none() && !a.raw {
            bail!("no recipient: give --to, --cc, --bcc or --newsgroups");
        }
        if std::io::stdin().is_terminal() {
            eprintln!("nym: type the message, then Ctrl-D on a line of its own (Ctrl-C cancels)");
        }
        let mut body = String::new();
        std::io::stdin().read_to_string(&mut body).context("reading the message from standard input")?;
        let message = if a.raw {
            if !a.encrypt_to_cert.is_empty() {
                bail!("--encrypt-to-cert cannot be combined with --raw; encrypt the body yourself");
            }
            if !body.contains("\n\n") && !body.contains("\r\n\r\n") {
                bail!("--raw needs a whole message: headers, a blank line, the body");
            }
            body
        } else {
            if !a.encrypt_to_cert.is_empty() {
                let mut certs = Vec::new();
                for p in &a.encrypt_to_cert {
                    let bytes = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    certs.extend(pgp::read_certs(&bytes)?);
                }
                let refs: Vec<&Cert> = certs.iter().collect();
                body = pgp::encrypt(body.as_bytes(), &refs, None).context("end-to-end encryption")?;
            }
            request::send_message(&request::Outgoing {
                nym: &rec.address,
                name: a.name.as_deref(),
                to: &a.to,
                cc: &a.cc,
                bcc: &a.bcc,
                newsgroups: a.newsgroups.as_deref(),
                subject: a.subject.as_deref(),
                extra_headers: &a.header,
                body: &body,
            })?
        };
        let key = self.secret_key(&rec.address)?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(message.as_bytes(), &[&server], Some(&key))?;
        self.handoff(&a.handoff, Some(&rec.address), &format!("send@{}", rec.domain()), &armored)
    }
}

/// A recipient the server can use: one plain address `local@domain`, no
/// spaces, no control characters, no display name or second address.
fn check_recipient(r: &str) -> Result<()> {
    let a = r.trim();
    let bad = || anyhow!("`{}` is not a plain mail address (write local@domain)", r.escape_debug());
    let (local, domain) = a.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.is_empty()
        || a.chars().any(|c| c.is_control() || c.is_whitespace() || "<>,;()\"\\[]".contains(c))
        || !domain.contains('.')
        || domain.starts_with(['.', '-'])
        || domain.ends_with(['.', '-'])
        || local.contains('@')
    {
        return Err(bad());
    }
    Ok(())
}
