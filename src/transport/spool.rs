//! Spool directories: a file per item, named after its Message-ID, so a
//! repeated hand-off finds the file already there.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::HandOffError;

/// File name for an item in a spool: derived from the Message-ID so that
/// a repeated hand-off finds the file already there.
pub fn spool_name(msgid: &str, ext: &str) -> String {
    let clean: String = msgid
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' })
        .collect();
    format!("{clean}.{ext}")
}

/// Write `parts` as the file `name` in `dir`. The temporary file has an
/// unpredictable name and is created exclusively without following links,
/// so nothing planted in the spool (nyms choose the Message-IDs of their
/// news posts) can redirect the write.
pub fn write(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<(), HandOffError> {
    fs::create_dir_all(dir).map_err(|_| HandOffError::transient("spool directory unavailable"))?;
    let target = dir.join(name);
    if target.symlink_metadata().is_ok() {
        return Ok(()); // handed off before; a crash kept the row
    }
    let mut rnd = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut rnd);
    let tmp = dir.join(format!(".tmp.{}", hex::encode(rnd)));
    let res = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, &target)?;
        fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
        return Err(HandOffError::transient("spool write failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_names_are_safe() {
        assert_eq!(spool_name("<ab/../c@d.example>", "art"), "ab_.._c_d.example.art");
    }

    #[test]
    fn a_planted_symlink_at_the_old_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        // The old scheme's predictable name: .<name>.<pid>.tmp
        let name = "m_x.art";
        let planted = dir.path().join(format!(".{name}.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write(dir.path(), name, &[b"article"]).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(fs::read(dir.path().join(name)).unwrap(), b"article");
    }

    #[test]
    fn an_existing_target_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.art"), b"first").unwrap();
        write(dir.path(), "a.art", &[b"second"]).unwrap();
        assert_eq!(fs::read(dir.path().join("a.art")).unwrap(), b"first");
    }

    #[test]
    fn temporary_names_are_unpredictable() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.art", &[b"x"]).unwrap();
        write(dir.path(), "b.art", &[b"y"]).unwrap();
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
