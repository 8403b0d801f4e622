//! `nym new`: make a nym key and ask the server for the nym (or resend the request).

use super::prelude::*;
use crate::protocol::nym_commands::Create;

impl Ctx {
    pub(crate) fn new_nym(&self, a: cli::NewArgs) -> Result<()> {
        let addr = normalize_address(&a.address)?;
        if a.resend && self.store.load_nym(&addr).is_ok_and(|r| r.reply_block_nym) {
            return self.resend_reply_block(&a, &addr);
        }
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
        let acksend = if a.chain.reply_block { reply_block_options(&a)? } else { None };
        if a.chain.reply_block {
            super::chain::check_config_name(&addr)?;
        }
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
        let opts = if a.chain.reply_block { Vec::new() } else { apply_options(&mut rec, &a.options, true)? };
        // Built before anything is stored, so that a bad hop stores
        // nothing; kept with --no-request too, for a later --resend.
        let cmds = if a.chain.reply_block {
            let cmds = self.chain_commands(&a.chain, Some(Create::New), acksend)?;
            rec.chains.push(self.new_chain(&addr, &a.chain)?);
            Some(cmds)
        } else {
            None
        };
        rec.reply_block_nym = a.chain.reply_block;
        rec.acksend = acksend.or(rec.acksend);

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
        if let (Some(cmds), Some(chain)) = (cmds, rec.chains.last()) {
            let text = Self::config_text(&rec, &cmds, Some(&pgp::armored_public(&cert)?), &[chain])?;
            self.send_config(&rec, &a.handoff, &text)
                .context(format!("the nym is set up locally; retry with `nym new {addr} --resend`"))?;
            eprintln!("{}", reply_block_hint(&rec));
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

/// What a reply-block creation takes of the Zax options: only acksend
/// (as the flag); hsub, subject and symmetric are set afterwards with
/// `nym config`, in a Zax request.
fn reply_block_options(a: &cli::NewArgs) -> Result<Option<bool>> {
    let o = &a.options;
    if o.hsub.is_some() || o.subject.is_some() || o.symmetric.is_some() {
        bail!("--hsub, --subject and --symmetric are not part of a Config: creation; set them afterwards with `nym config`");
    }
    o.acksend
        .as_deref()
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(true),
            "0" | "no" | "false" | "off" | "none" => Ok(false),
            _ => Err(anyhow!("--acksend takes yes or no")),
        })
        .transpose()
}

/// What to do once a reply-block request left.
pub(crate) fn reply_block_hint(rec: &NymRecord) -> String {
    let to = rec.chains.last().map(|c| c.deliver_to.as_str()).unwrap_or("your mailbox");
    format!(
        "nym: the server answers through the new reply block: save the mail that arrives at {to} \
         and read it with `nym read --mail FILE`; then confirm with `nym confirm {}`",
        rec.address
    )
}

impl Ctx {
    /// `nym new --resend` of a reply-block nym: the creation again, signed
    /// anew and with `create?`, so that it creates the nym if the first
    /// copy was lost and is a signed modification (a new pending block
    /// and cookie) if it arrived.
    fn resend_reply_block(&self, a: &cli::NewArgs, addr: &str) -> Result<()> {
        let rec = self.live_nym(addr)?;
        let cert = pgp::read_cert(&self.store.key_bytes(addr)?)?;
        let pending: Vec<&crate::client::store::Chain> =
            rec.chains.iter().filter(|c| c.state == "pending").collect();
        if pending.is_empty() {
            bail!("{addr} has no pending reply block to send again; `nym config --reply-block` makes one");
        }
        let cmds = self.chain_commands(&a.chain, Some(Create::IfFree), rec.acksend)?;
        let text = Self::config_text(&rec, &cmds, Some(&pgp::armored_public(&cert)?), &pending)?;
        self.send_config(&rec, &a.handoff, &text)?;
        eprintln!("{}", reply_block_hint(&rec));
        Ok(())
    }
}
