//! `nym read --mail FILE`: mail that arrived through a reply block. The
//! Encrypt-Key layers of the chain come off first (with the passphrases
//! kept in the store), then the nym key's layer and the server's
//! signature are checked as for articles. The server's notices about the
//! blocks ("Configuration completed" with its confirm+ address, "Reply
//! block confirmed") change what the store knows.

use super::prelude::*;
use crate::client::reply_block as rb;

/// The most input `--mail` reads (one mail or an mbox).
pub const MAX_INPUT: u64 = 64 << 20;
/// The most mails of one mbox that are looked at.
pub const MAX_MAILS: usize = 10_000;

/// Read FILE (or standard input for `-`), at most [`MAX_INPUT`] bytes.
fn read_input(path: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let n = if path == Path::new("-") {
        std::io::stdin().lock().take(MAX_INPUT + 1).read_to_end(&mut data)?
    } else {
        let f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        f.take(MAX_INPUT + 1).read_to_end(&mut data)?
    };
    if n as u64 > MAX_INPUT {
        bail!("{} is larger than {} MiB; split the mailbox", path.display(), MAX_INPUT >> 20);
    }
    Ok(data)
}

/// One mail, or the mails of an mbox (a first line `From `): split at
/// each `From ` line, with mboxrd's `>From ` quoting undone.
pub(crate) fn split_mails(data: &[u8]) -> Vec<Vec<u8>> {
    if !data.starts_with(b"From ") {
        return vec![data.to_vec()];
    }
    let mut mails: Vec<Vec<u8>> = Vec::new();
    for line in data.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            if mails.len() >= MAX_MAILS {
                break;
            }
            mails.push(Vec::new());
            continue;
        }
        let Some(cur) = mails.last_mut() else { continue };
        let quoted = line.iter().take_while(|b| **b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            cur.extend_from_slice(&line[1..]);
        } else {
            cur.extend_from_slice(line);
        }
    }
    mails
}

impl Ctx {
    pub(crate) fn read_mail(&self, a: &cli::ReadArgs, path: &Path) -> Result<i32> {
        let only = a.address.as_deref().map(normalize_address).transpose()?;
        let nyms: Vec<NymRecord> = self
            .store
            .list_nyms()?
            .into_iter()
            .filter(|n| !n.chains.is_empty() && only.as_ref().is_none_or(|o| *o == n.address))
            .collect();
        if nyms.is_empty() {
            bail!(
                "no nym in the store has a reply block (`nym new --reply-block`, `nym config --reply-block`)"
            );
        }
        let data = read_input(path)?;
        let to_terminal = std::io::stdout().is_terminal() || std::env::var_os("NYM_FORCE_TTY").is_some();
        let mut keys: HashMap<String, (Cert, Cert)> = HashMap::new();
        let mut status = 0;
        let mails = split_mails(&data);
        for (i, mail) in mails.iter().enumerate() {
            let id = format!("mail {}", i + 1);
            let body = nntp::body(mail);
            let found = nyms.iter().find_map(|n| {
                let p = rb::peel(body.as_bytes(), &n.chain_passphrases());
                (p.layers > 0).then_some((n, p))
            });
            let Some((rec, peeled)) = found else {
                println!("==> {id}: no Encrypt-Key layer of a reply block in the store opens it; skipped\n");
                status = crate::exit::Kind::Data.code();
                continue;
            };
            let addr = rec.address.clone();
            if !keys.contains_key(&addr) {
                keys.insert(addr.clone(), (self.secret_key(&addr)?, self.server_key(&addr)?));
            }
            let (key, server) = keys[&addr].clone();
            println!("==> {id} for {addr}");
            println!("    reply-block layers removed: {}", peeled.layers);
            let passwords: Vec<String> = rec.all_passwords().into_iter().map(str::to_string).collect();
            let text = String::from_utf8_lossy(&peeled.text).into_owned();
            let opened = match pgp::open_article(&text, &[key], &passwords, &[server]) {
                Ok(o) => o,
                Err(e) => {
                    println!("    cannot open this message: {e:#}\n");
                    status = crate::exit::Kind::Data.code();
                    continue;
                }
            };
            let signed_ok = opened.server_signed.is_some() && opened.bad_signatures == 0;
            let (verdict, trusted) = match (&opened.server_signed, &opened.notice) {
                (Some(fp), Some(service)) if signed_ok => {
                    (format!("notice from the server ({service}@); server signature: good ({fp})"), true)
                }
                (Some(fp), None) if signed_ok => {
                    (format!("mail relayed to you by the server; server signature: good ({fp})"), true)
                }
                _ => ("WARNING: not signed by the server key; do not trust this message".to_string(), false),
            };
            if opened.symmetric {
                println!("    symmetric layer: removed");
            }
            println!();
            let mut out = std::io::stdout().lock();
            let decoded = if a.raw { None } else { mime::decode(&opened.plaintext) };
            match &decoded {
                Some(d) => super::read::write_shown(&mut out, d.text.as_bytes(), to_terminal)?,
                None => super::read::write_shown(&mut out, &opened.plaintext, to_terminal)?,
            }
            if trusted {
                if let Some(dir) = &a.maildir {
                    let p = super::read::deliver_maildir(
                        dir,
                        &id.replace(' ', "-"),
                        &addr,
                        &verdict,
                        &opened.plaintext,
                    )?;
                    writeln!(out, "[delivered to {}]", p.display())?;
                }
            }
            writeln!(out, "<== {id}: {verdict}")?;
            if trusted && opened.notice.as_deref() == Some("config") {
                for line in self.block_notice(&addr, &opened.plaintext)? {
                    writeln!(out, "    {line}")?;
                }
            }
            writeln!(out)?;
            if !trusted {
                status = crate::exit::Kind::Data.code();
            }
        }
        if mails.is_empty() {
            eprintln!("nym: no mail in {}", path.display());
        }
        Ok(status)
    }

    /// A real config@ notice that arrived through a block: remember the
    /// confirm+ address, or make the pending blocks the active ones.
    fn block_notice(&self, addr: &str, plaintext: &[u8]) -> Result<Vec<String>> {
        let subject = nntp::header(plaintext, "subject").unwrap_or_default();
        let mut rec = self.store.load_nym(addr)?;
        let mut told = Vec::new();
        match subject.trim() {
            // Only while a block of ours waits: an old notice read again
            // after the confirmation does not bring a used cookie back.
            "Configuration completed" if rec.chains.iter().any(|c| c.state == "pending") => {
                if let Some(c) = rb::confirm_address(plaintext, rec.domain()) {
                    told.push(format!("the new reply block waits for confirmation at {c}"));
                    told.push(format!("run `nym confirm {addr}` to confirm it (through your chain)"));
                    rec.confirm_to = Some(c);
                    rec.state = Some("awaiting confirmation".into());
                    self.store.save_nym(&rec)?;
                }
            }
            "Reply block confirmed" => {
                for c in &mut rec.chains {
                    c.state = match c.state.as_str() {
                        "pending" => "active".into(),
                        _ => "replaced".into(),
                    };
                }
                rec.confirm_to = None;
                rec.state = Some("active".into());
                self.store.save_nym(&rec)?;
                told.push(format!("{addr}: the reply block is confirmed and in use"));
            }
            _ => {
                if let Some(line) = self.apply_notice(addr, plaintext)? {
                    told.push(line);
                }
            }
        }
        Ok(told)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mbox_splits_into_its_mails_with_from_quoting_undone() {
        let m = b"From a@b Thu Jan  1 00:00:00 1970\nSubject: 1\n\n>From here\n\nFrom c@d Thu Jan  1 00:00:00 1970\nSubject: 2\n\nx\n";
        let v = split_mails(m);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], b"Subject: 1\n\nFrom here\n\n");
        assert_eq!(v[1], b"Subject: 2\n\nx\n");
        assert_eq!(split_mails(b"Subject: one\n\nbody\n").len(), 1);
    }
}
