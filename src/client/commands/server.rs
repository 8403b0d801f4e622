//! `nym server`: the news sources `nym fetch` reads by default.

use super::prelude::*;

impl Ctx {
    pub(crate) fn server(&self, a: cli::ServerArgs) -> Result<()> {
        let mut cfg = self.store.config()?;
        match a.action {
            cli::ServerAction::Add { url } => {
                let src = fetch::Source::parse(&url)?;
                let url = url.trim().to_string();
                if cfg.servers.iter().any(|s| fetch::Source::parse(s).ok().as_ref() == Some(&src)) {
                    eprintln!("nym: {url} is already remembered");
                    return Ok(());
                }
                cfg.servers.push(url.clone());
                self.store.save_config(&cfg)?;
                eprintln!("nym: {url} added; `nym fetch` reads it");
            }
            cli::ServerAction::Remove { url } => {
                let before = cfg.servers.len();
                cfg.servers.retain(|s| s.trim() != url.trim());
                if cfg.servers.len() == before {
                    bail!("{url} is not among the remembered servers");
                }
                self.store.save_config(&cfg)?;
            }
            cli::ServerAction::List => {
                for s in &cfg.servers {
                    println!("{s}");
                }
            }
        }
        Ok(())
    }
}
