//! `nym read`: open the fetched articles, check the server's signature, show them.

use super::prelude::*;

impl Ctx {
    pub(crate) fn read(&self, a: cli::ReadArgs) -> Result<i32> {
        if let Some(p) = &a.mail {
            return self.read_mail(&a, p);
        }
        let only = a.address.as_deref().map(normalize_address).transpose()?;
        let md = self.store.maildir();
        let mut files: Vec<(String, PathBuf, bool)> = Vec::new();
        for (sub, is_new) in [("new", true), ("cur", false)] {
            if !is_new && !a.all {
                continue;
            }
            for e in fs::read_dir(md.join(sub))? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    files.push((name, e.path(), is_new));
                }
            }
        }
        files.sort();
        let mut keys: HashMap<String, (Cert, Cert, Vec<String>)> = HashMap::new();
        let mut status = 0;
        let mut shown = 0;
        let to_terminal = std::io::stdout().is_terminal() || std::env::var_os("NYM_FORCE_TTY").is_some();
        for (name, path, is_new) in files {
            let art = fs::read(&path)?;
            let Some(addr) = nntp::header(&art, "x-nym-for") else { continue };
            if only.as_ref().is_some_and(|o| *o != addr) {
                continue;
            }
            let id = name.split(':').next().unwrap_or(&name).to_string();
            if a.list {
                let date = nntp::header(&art, "date").unwrap_or_default();
                println!("{id}  {addr}  {}  {date}", if is_new { "new " } else { "read" });
                continue;
            }
            if !keys.contains_key(&addr) {
                if !self.store.has_nym(&addr) {
                    eprintln!("nym: {id}: {addr} is no longer in the store; skipped");
                    continue;
                }
                let rec = self.store.load_nym(&addr)?;
                let pw = rec.all_passwords().into_iter().map(str::to_string).collect();
                keys.insert(addr.clone(), (self.secret_key(&addr)?, self.server_key(&addr)?, pw));
            }
            let entry = keys[&addr].clone();
            let (key, server, passwords) = (&entry.0, &entry.1, &entry.2);
            shown += 1;
            println!("==> {id} for {addr}");
            if let Some(d) = nntp::header(&art, "date") {
                println!("    posted: {d}");
            }
            let body = nntp::body(&art);
            match pgp::open_article(&body, std::slice::from_ref(key), passwords, std::slice::from_ref(server))
            {
                Ok(opened) => {
                    // A rotation notice signed by the new server key: the
                    // new key replaces the trusted one only if the trusted
                    // one certified it (follow.rs).
                    let (opened, rotation) =
                        match self.follow_rotation(&addr, &body, (key, server, passwords), &opened)? {
                            super::follow::Follow::Nothing => (opened, None),
                            super::follow::Follow::Refused(line) => (opened, Some(line)),
                            super::follow::Follow::Adopted { article, key: new, line } => {
                                keys.insert(addr.clone(), (key.clone(), *new, passwords.clone()));
                                (article, Some(line))
                            }
                        };
                    let signed_ok = opened.server_signed.is_some() && opened.bad_signatures == 0;
                    // The verdict is printed after the message, so that
                    // nothing in the message can be taken for it.
                    let (verdict, trusted) = match (&opened.server_signed, &opened.notice) {
                        (Some(fp), Some(service)) if signed_ok => {
                            (format!("notice from the server ({service}@); server signature: good ({fp})"), true)
                        }
                        (Some(fp), None) if signed_ok => {
                            (format!("mail relayed to you by the server; server signature: good ({fp})"), true)
                        }
                        _ if opened.symmetric && opened.bad_signatures == 0 && is_url_answer(&opened.plaintext) => (
                            "url@ answer; server signature: none (url@ answers are only encrypted with your key)"
                                .to_string(),
                            true,
                        ),
                        _ => ("WARNING: not signed by the server key; do not trust this message".to_string(), false),
                    };
                    if opened.symmetric {
                        println!("    symmetric layer: removed");
                    }
                    println!();
                    let decoded = if a.raw { None } else { mime::decode(&opened.plaintext) };
                    let mut out = std::io::stdout().lock();
                    match &decoded {
                        Some(d) => {
                            write_shown(&mut out, d.text.as_bytes(), to_terminal)?;
                            for (i, att) in d.attachments.iter().enumerate() {
                                let line = format!(
                                    "[attachment {}: {} ({}, {} bytes)]\n",
                                    i + 1,
                                    att.name,
                                    att.content_type,
                                    att.data.len()
                                );
                                write_shown(&mut out, line.as_bytes(), to_terminal)?;
                            }
                        }
                        None => {
                            write_shown(&mut out, &opened.plaintext, to_terminal)?;
                            if !opened.plaintext.ends_with(b"\n") {
                                writeln!(out)?;
                            }
                        }
                    }
                    if trusted {
                        if let (Some(dir), Some(d)) = (&a.save, &decoded) {
                            for att in &d.attachments {
                                let p = save_attachment(dir, &att.name, &att.data)?;
                                let line = format!("[saved {}]\n", p.display());
                                write_shown(&mut out, line.as_bytes(), to_terminal)?;
                            }
                        }
                        if let Some(dir) = &a.maildir {
                            let p = deliver_maildir(dir, &id, &addr, &verdict, &opened.plaintext)?;
                            let line = format!("[delivered to {}]\n", p.display());
                            write_shown(&mut out, line.as_bytes(), to_terminal)?;
                        }
                    } else if a.save.is_some() || a.maildir.is_some() {
                        writeln!(out, "[not saved: the message is not trusted]")?;
                    }
                    writeln!(out, "<== {id}: {verdict}")?;
                    if let Some(line) = &rotation {
                        writeln!(out, "    {line}")?;
                        eprintln!("nym: {line}");
                    }
                    if trusted && opened.notice.is_some() {
                        if let Some(line) = self.apply_notice(&addr, &opened.plaintext)? {
                            writeln!(out, "    {line}")?;
                        }
                    }
                    writeln!(out)?;
                    if !trusted {
                        status = crate::exit::Kind::Data.code();
                    }
                    if is_new && !a.keep && trusted {
                        mark_read(&md, &name)?;
                    }
                }
                Err(e) => {
                    println!("    cannot open this message: {e:#}");
                    println!();
                    status = crate::exit::Kind::Data.code();
                }
            }
        }
        if shown == 0 && !a.list {
            eprintln!("nym: no {}messages", if a.all { "" } else { "unread " });
        }
        Ok(status)
    }
}

impl Ctx {
    /// A real server notice (good server signature with the notice mark)
    /// changes the nym's state; returns what to tell the holder.
    pub(crate) fn apply_notice(&self, addr: &str, plaintext: &[u8]) -> Result<Option<String>> {
        let Some(subject) = nntp::header(plaintext, "subject") else { return Ok(None) };
        let Some(state) = notice_state(&subject) else { return Ok(None) };
        let mut rec = self.store.load_nym(addr)?;
        let mut told = format!("{addr}: state now {state}");
        if subject.trim() == "Nym key refreshed" {
            told = format!("{addr}: the server confirmed the key refresh");
            rec.refresh_pending = false;
            if !rec.rotation_pending.is_empty() {
                self.finish_rotation(&mut rec)?;
                told.push_str("; the old encryption subkey's secret is erased");
            }
        }
        rec.state = Some(state.to_string());
        if state == "deleted" {
            rec.deleted = true;
        }
        self.store.save_nym(&rec)?;
        Ok(Some(told))
    }
}

/// Write message bytes; on a terminal, control characters are shown
/// (`^[`, `^H`, `\u{9b}`) instead of obeyed, so a message cannot move the
/// cursor, rewrite earlier lines, retitle the window or hide the verdict.
/// Line ends and tabs stay.
pub(crate) fn write_shown(out: &mut impl Write, bytes: &[u8], terminal: bool) -> std::io::Result<()> {
    if !terminal {
        return out.write_all(bytes);
    }
    out.write_all(visible(&String::from_utf8_lossy(bytes)).as_bytes())
}

pub(crate) fn visible(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => s.push(c),
            '\r' => s.push_str("^M"),
            c if (c as u32) < 0x20 => {
                s.push('^');
                s.push((c as u8 + 0x40) as char);
            }
            '\u{7f}' => s.push_str("^?"),
            // C1 controls (CSI and friends), and the bidirectional
            // overrides that reorder what the eye sees.
            c if ('\u{80}'..='\u{9f}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                s.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => s.push(c),
        }
    }
    s
}

/// Save an attachment in `dir` (created 0700) under a cleaned name that
/// never overwrites: `name`, `name.1`, ...; mode 0600.
pub(crate) fn save_attachment(dir: &Path, name: &str, data: &[u8]) -> Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::client::store::private_dir(dir)?;
    let base = mime::safe_file_name(name);
    for n in 0..1000 {
        let p = if n == 0 { dir.join(&base) } else { dir.join(format!("{base}.{n}")) };
        match fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p) {
            Ok(mut f) => {
                f.write_all(data)?;
                f.sync_all()?;
                return Ok(p);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("saving {}", p.display())),
        }
    }
    bail!("too many files named {base} in {}", dir.display())
}

/// Deliver the decrypted message to the Maildir `dir` (created 0700 with
/// tmp/, new/, cur/; the file 0600), with two headers of ours on top: the
/// nym it was for and the verdict.
pub(crate) fn deliver_maildir(
    dir: &Path,
    id: &str,
    addr: &str,
    verdict: &str,
    plaintext: &[u8],
) -> Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    for sub in ["", "tmp", "new", "cur"] {
        crate::client::store::private_dir(&dir.join(sub))?;
    }
    let one_line = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    let mut data =
        format!("X-Nym-For: {}\nX-Nym-Verdict: {}\n", one_line(addr), one_line(verdict)).into_bytes();
    // Keep the message's own line ends for the rest.
    if plaintext.windows(2).any(|w| w == b"\r\n") {
        data = String::from_utf8_lossy(&data).replace('\n', "\r\n").into_bytes();
    }
    data.extend_from_slice(plaintext);
    let name = format!("{}.nym-read.{}", id.replace(['/', ':'], "_"), std::process::id());
    let tmp = dir.join("tmp").join(&name);
    {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
    }
    let dest = dir.join("new").join(&name);
    fs::rename(&tmp, &dest)?;
    Ok(dest)
}

pub(crate) fn is_url_answer(plaintext: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&plaintext[..plaintext.len().min(4096)]).to_ascii_lowercase();
    head.contains("content-type: multipart/") || head.contains("mime-version")
}

/// Move a message from new/ to cur/ with the Seen flag.
pub(crate) fn mark_read(md: &Path, name: &str) -> Result<()> {
    fs::rename(md.join("new").join(name), md.join("cur").join(format!("{name}:2,S")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let v = visible("ok\x1b[2J\x1b]0;title\x07\u{9b}31m\r\u{202e}txt\tend\n");
        assert!(!v.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{v:?}");
        assert_eq!(v, "ok^[[2J^[]0;title^G\\u{9b}31m^M\\u{202e}txt\tend\n");
    }

    #[test]
    fn off_a_terminal_bytes_pass_unchanged() {
        let mut out = Vec::new();
        write_shown(&mut out, b"a\x1b[0m\xff", false).unwrap();
        assert_eq!(out, b"a\x1b[0m\xff");
    }
}
