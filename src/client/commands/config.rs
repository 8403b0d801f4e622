//! `nym config`: change a nym's options by a signed request to config@.

use super::prelude::*;

impl Ctx {
    pub(crate) fn config(&self, a: cli::ConfigArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let o = &a.options;
        let server_side =
            o.hsub.is_some() || o.subject.is_some() || o.symmetric.is_some() || o.acksend.is_some();
        if a.esub_text.is_some() || a.no_esub {
            if a.no_esub {
                rec.esubs.clear();
            }
            if let (Some(text), Some(key)) = (&a.esub_text, &a.esub_key) {
                let e = crate::client::store::EsubSecret { text: text.clone(), key: key.clone() };
                if !rec.esubs.contains(&e) {
                    rec.esubs.push(e);
                }
            }
            self.store.save_nym(&rec)?;
            eprintln!(
                "nym: {}: eSub secrets stored locally ({}); nothing sent",
                rec.address,
                rec.esubs.len()
            );
            if !server_side {
                return Ok(());
            }
        }
        if a.chain.reply_block || a.drop_reply_blocks {
            if server_side {
                bail!("options and reply blocks go in two requests: run `nym config` once for each");
            }
            return self.config_blocks(rec, &a);
        }
        let opts = apply_options(&mut rec, &a.options, false)?;
        let plaintext = request::option_lines(&opts)?;
        let key = self.secret_key(&rec.address)?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(plaintext.as_bytes(), &[&server], Some(&key))?;
        self.handoff(&a.handoff, Some(&rec.address), &format!("config@{}", rec.domain()), &armored)?;
        self.store.save_nym(&rec)?;
        if opts.is_empty() {
            eprintln!("nym: status request made; the server answers with the current options");
        }
        Ok(())
    }
}

impl Ctx {
    /// A signed `Config:` modification: a new block (with the current
    /// ones again under --keep-blocks), or `drop-reply-blocks`.
    fn config_blocks(&self, mut rec: NymRecord, a: &cli::ConfigArgs) -> Result<()> {
        let mut cmds = self.chain_commands(&a.chain, None, None)?;
        if a.drop_reply_blocks {
            cmds.drop_reply_blocks = true;
            let text = Self::config_text(&rec, &cmds, None, &[])?;
            self.send_config(&rec, &a.handoff, &text)?;
            for c in &mut rec.chains {
                c.state = "replaced".into();
            }
            rec.confirm_to = None;
            self.store.save_nym(&rec)?;
            eprintln!(
                "nym: {}: reply blocks dropped; the server answers on alt.anonymous.messages",
                rec.address
            );
            return Ok(());
        }
        let new = self.new_chain(&rec.address, &a.chain)?;
        // The blocks of this request replace all others once confirmed:
        // with --keep-blocks the current ones go again, as new pending
        // copies (same text, same passphrases).
        let mut set: Vec<crate::client::store::Chain> = Vec::new();
        if a.keep_blocks {
            for c in rec.chains.iter().filter(|c| c.state == "active") {
                set.push(crate::client::store::Chain { state: "pending".into(), ..c.clone() });
            }
        }
        set.push(new);
        let refs: Vec<&crate::client::store::Chain> = set.iter().collect();
        let text = Self::config_text(&rec, &cmds, None, &refs)?;
        self.send_config(&rec, &a.handoff, &text)?;
        // An older pending set is replaced on the server by this one.
        for c in &mut rec.chains {
            if c.state == "pending" {
                c.state = "replaced".into();
            }
        }
        rec.chains.extend(set);
        rec.confirm_to = None;
        self.store.save_nym(&rec)?;
        eprintln!("{}", super::new::reply_block_hint(&rec));
        Ok(())
    }
}
