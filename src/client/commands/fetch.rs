//! `nym fetch`: find the nym's articles in the newsgroup (NNTP, NNTPS or a spool).

use super::prelude::*;

impl Ctx {
    pub(crate) fn fetch(&self, a: cli::FetchArgs) -> Result<()> {
        let _lock = self.store.fetch_lock()?;
        let nyms = match &a.address {
            Some(addr) => vec![self.store.load_nym(addr)?],
            None => self.store.list_nyms()?,
        };
        if nyms.is_empty() {
            bail!("no nyms in {}; create one with `nym new`", self.store.root.display());
        }
        let mut try_all = Vec::new();
        for n in &nyms {
            if a.try_all || n.needs_try_all() {
                let passwords = n.all_passwords().into_iter().map(str::to_string).collect();
                try_all.push((n.address.clone(), self.secret_key(&n.address)?, passwords));
            }
        }
        let cfg = self.store.config()?;
        let servers = if a.servers.is_empty() { cfg.servers } else { a.servers.clone() };
        if servers.is_empty() {
            bail!(
                "no news source; give --server nntp://HOST (or spool:DIR), or remember one with `nym server add URL`"
            );
        }
        let matcher = fetch::Matcher { nyms, try_all };
        // The newsgroup is read for all nyms at once: one set of SOCKS
        // credentials per run, not per nym.
        let dialer = self.dialer(net::Isolation::Run)?;
        let opts = fetch::FetchOpts {
            group: &a.group,
            max: a.max,
            retries: a.retries,
            ca_file: a.ca_file.as_deref(),
            user: a.user.as_deref(),
            quiet: a.quiet,
            dialer: &dialer,
        };
        let mut failed = None;
        for s in &servers {
            let src = fetch::Source::parse(s)?;
            match fetch::fetch(&self.store, &src, &matcher, &opts) {
                Ok(st) => println!("{}: {} examined, {} kept", src.key(&a.group), st.examined, st.kept),
                Err(e) => {
                    eprintln!("nym: {}: {e:#}", src.key(&a.group));
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e.context("fetch incomplete; run it again to continue where it stopped")),
            None => Ok(()),
        }
    }
}
