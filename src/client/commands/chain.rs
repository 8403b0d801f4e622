//! Reply blocks: the chain a holder gives (`--hop`, `[[chain]]`), the
//! nym.alias.net `Config:` request around it, and `nym confirm`.

use super::prelude::*;
use crate::client::reply_block::{self as rb, Destination, HopSpec};
use crate::client::store::{Chain, Hop};
use crate::protocol::config_write::{self, Section};
use crate::protocol::nym_commands::{self as nc, flag, Commands, Create};

/// A nym name a `Config:` creation accepts: `^\w[\w-]{1,15}$`.
pub(crate) fn check_config_name(addr: &str) -> Result<()> {
    let local = addr.split('@').next().unwrap_or("");
    let b = local.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    if !(2..=16).contains(&b.len()) || !word(&b[0]) || !b[1..].iter().all(|c| word(c) || *c == b'-') {
        bail!(
            "`{local}` cannot be a reply-block nym: 2 to 16 characters of a-z, 0-9, _ and -, \
             not starting with - (the nym.alias.net rule)"
        );
    }
    Ok(())
}

impl Ctx {
    /// The chain of `--hop` options, else of config.toml's `[[chain]]`.
    fn chain_spec(&self, c: &cli::ChainArgs) -> Result<(Vec<HopSpec>, Destination)> {
        let cfg = self.store.config()?;
        let mut given: Vec<(String, PathBuf)> = Vec::new();
        for h in &c.hops {
            let (a, k) = h
                .split_once('=')
                .ok_or_else(|| anyhow!("--hop takes ADDRESS=KEYFILE, e.g. remailer@r1.example=r1.asc"))?;
            given.push((a.to_string(), PathBuf::from(k)));
        }
        if given.is_empty() {
            given = cfg.chain.iter().map(|h| (h.address.clone(), h.key.clone())).collect();
        }
        if given.is_empty() {
            bail!(
                "no remailer chain: give --hop ADDRESS=KEYFILE (first hop first) or [[chain]] in config.toml"
            );
        }
        let mut hops = Vec::new();
        for (a, k) in given {
            let address = rb::remailer_address(&a)?;
            let bytes =
                fs::read(&k).with_context(|| format!("reading the key of {address}, {}", k.display()))?;
            let certs = pgp::read_certs(&bytes)?;
            let cert = if certs.len() == 1 {
                certs.into_iter().next().expect("one")
            } else {
                pick_cert(certs, &address).context(format!("the key file {}", k.display()))?
            };
            hops.push(HopSpec { address, cert });
        }
        let dest = match c.deliver_to.as_deref().or(cfg.deliver_to.as_deref()) {
            Some(d) => Destination::parse(d)?,
            None => bail!("where should the last remailer deliver? give --deliver-to ADDR"),
        };
        Ok((hops, dest))
    }

    /// Build a new block for `addr` (state `pending`).
    pub(crate) fn new_chain(&self, addr: &str, c: &cli::ChainArgs) -> Result<Chain> {
        let (hops, dest) = self.chain_spec(c)?;
        let domain = addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if dest == Destination::Mail(addr.to_string()) {
            bail!("the chain must not deliver to the nym itself (a loop)");
        }
        if hops[0].address.rsplit_once('@').is_some_and(|(l, d)| d == domain && l != "remailer") {
            bail!("the first hop {} is an address of the nym server itself", hops[0].address);
        }
        if let Some(s) = &c.block_set {
            crate::protocol::config_request::parse_probability(s)
                .ok()
                .flatten()
                .ok_or_else(|| anyhow!("--block-set `{s}`: write a letter and a weight like a=0.5"))?;
        }
        let keys: Vec<String> = hops.iter().map(|_| rb::new_passphrase()).collect();
        let extras = rb::Extras { subject: c.subject_tag.as_deref(), latent_time: c.latent_time.as_deref() };
        let block = rb::build(&hops, &dest, &keys, extras)?;
        let mut stored = Vec::new();
        for (h, k) in hops.iter().zip(keys) {
            stored.push(Hop {
                address: h.address.clone(),
                key: pgp::armored_public(&h.cert)?,
                fingerprint: h.cert.fingerprint().to_hex(),
                encrypt_key: k,
            });
        }
        let shown: Vec<&str> = stored.iter().map(|h| h.address.as_str()).collect();
        eprintln!("nym: reply block through {} -> {}", shown.join(" -> "), dest.shown());
        Ok(Chain {
            hops: stored,
            deliver_to: dest.shown(),
            set: c.block_set.clone(),
            block,
            state: "pending".into(),
        })
    }

    /// The `Nym-Commands:` of a request: `--flag`, `--name`, and the
    /// create word.
    pub(crate) fn chain_commands(
        &self,
        c: &cli::ChainArgs,
        create: Option<Create>,
        acksend: Option<bool>,
    ) -> Result<Commands> {
        let mut cmds = Commands { create, ..Default::default() };
        let mut switch = |on: bool, bit: u32| {
            if on {
                cmds.set |= bit;
                cmds.clear &= !bit;
            } else {
                cmds.clear |= bit;
                cmds.set &= !bit;
            }
        };
        if let Some(on) = acksend {
            switch(on, flag::ACKSEND);
        }
        for f in &c.flags {
            let (on, name) = match f.trim().split_at_checked(1) {
                Some(("+", n)) => (true, n),
                Some(("-", n)) => (false, n),
                _ => bail!("--flag `{f}`: write +NAME or -NAME"),
            };
            let bit = nc::switchable(name).ok_or_else(|| anyhow!("--flag `{f}`: no such flag"))?;
            if bit == flag::CRYPTRECV && !on {
                bail!("-cryptrecv would let the first remailer read your mail; refused");
            }
            if bit == flag::FIXEDSIZE && on {
                bail!("+fixedsize sends message/partial pieces that nym read does not reassemble; refused");
            }
            switch(on, bit);
        }
        if let Some(n) = &c.name {
            if let Some(p) = nc::name_problem(n) {
                bail!("--name {p}");
            }
            cmds.name = Some(n.clone());
        }
        Ok(cmds)
    }

    /// Sign `text` with the nym key, encrypt it to the server and hand it
    /// to config@.
    pub(crate) fn send_config(&self, rec: &NymRecord, h: &Handoff, text: &str) -> Result<()> {
        let key = self.secret_key(&rec.address)?;
        let server = self.server_key(&rec.address)?;
        let armored = pgp::encrypt(text.as_bytes(), &[&server], Some(&key))?;
        self.handoff(h, Some(&rec.address), &format!("config@{}", rec.domain()), &armored)
    }

    /// The `Config:` request text.
    pub(crate) fn config_text(
        rec: &NymRecord,
        cmds: &Commands,
        key: Option<&str>,
        chains: &[&Chain],
    ) -> Result<String> {
        let sections: Vec<Section> =
            chains.iter().map(|c| Section { set: c.set.as_deref(), text: &c.block }).collect();
        config_write::write(&rec.address, cmds, key, &sections).map_err(|e| anyhow!(e))
    }

    pub(crate) fn confirm(&self, a: cli::ConfirmArgs) -> Result<()> {
        let mut rec = self.live_nym(&a.address)?;
        let Some(to) = rec.confirm_to.clone() else {
            bail!(
                "no confirmation is waiting for {}; read the server's \"Configuration completed\" \
                 notice first with `nym read --mail FILE`",
                rec.address
            );
        };
        let chain = rec.chains.iter().rev().find(|c| c.state == "pending").or(rec.chains.last());
        match chain {
            Some(c) if !a.direct => {
                let mut hops = Vec::new();
                for h in &c.hops {
                    hops.push(HopSpec {
                        address: h.address.clone(),
                        cert: pgp::read_cert(h.key.as_bytes())?,
                    });
                }
                let msg = rb::forward(&hops, &to, "confirm\n")?;
                self.handoff(&a.handoff, Some(&rec.address), &hops[0].address, &msg)?;
                eprintln!(
                    "nym: confirmation for {} sent through {} remailer(s); the server answers \
                     \"Reply block confirmed\" through the new block",
                    rec.address,
                    hops.len()
                );
            }
            _ => {
                let cfg = self.store.config()?;
                if a.handoff.from.is_none() && cfg.from.is_none() {
                    eprintln!(
                        "nym: note: the server ignores a confirmation with an empty envelope sender; \
                         sendmail fills one in, SMTP needs --from"
                    );
                }
                self.handoff(&a.handoff, Some(&rec.address), &to, "confirm\n")?;
                eprintln!("nym: confirmation for {} handed off directly", rec.address);
            }
        }
        rec.state = Some("confirmation sent".into());
        self.store.save_nym(&rec)
    }
}
