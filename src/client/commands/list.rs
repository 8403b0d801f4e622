//! `nym list`: the nyms in the store and their unread articles.

use super::prelude::*;

impl Ctx {
    pub(crate) fn list(&self) -> Result<()> {
        let md = self.store.maildir();
        let mut unread: HashMap<String, usize> = HashMap::new();
        for e in fs::read_dir(md.join("new"))? {
            let art = fs::read(e?.path())?;
            if let Some(a) = nntp::header(&art, "x-nym-for") {
                *unread.entry(a).or_default() += 1;
            }
        }
        for n in self.store.list_nyms()? {
            let mut o = Vec::new();
            if n.hsub.is_some() {
                o.push("hsub".to_string());
            }
            if let Some(s) = &n.subject {
                o.push(format!("subject={s}"));
            }
            if !n.esubs.is_empty() {
                o.push(format!("esub={}", n.esubs.len()));
            }
            if n.symmetric.is_some() {
                o.push("symmetric".into());
            }
            if let Some(b) = n.acksend {
                o.push(format!("acksend={}", if b { "yes" } else { "no" }));
            }
            match (&n.state, n.deleted) {
                (Some(s), false) if s != "deleted" => o.push(format!("state={s}")),
                (Some(s), _) if s == "deleted" => o.push("DELETED (the server confirmed)".into()),
                (_, true) => o.push("DELETED (requested)".into()),
                _ => {}
            }
            if !n.chains.is_empty() {
                let count = |s: &str| n.chains.iter().filter(|c| c.state == s).count();
                o.push(format!("blocks-active={} blocks-pending={}", count("active"), count("pending")));
            }
            if n.confirm_to.is_some() {
                o.push("confirm=waiting (nym confirm)".into());
            }
            if n.refresh_pending {
                o.push("key-refresh=requested".into());
            }
            if !n.rotation_pending.is_empty() {
                o.push("rotation=pending".into());
            }
            println!("{}  unread={}  {}", n.address, unread.get(&n.address).unwrap_or(&0), o.join(" "));
        }
        Ok(())
    }
}
