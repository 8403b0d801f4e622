//! Finding an armored block in a mail or an article, which may carry other
//! text (a signature line, MIME noise) around it.

/// Find the first armored block of `kind` ("MESSAGE", "PUBLIC KEY BLOCK")
/// in `text`, markers included.
pub fn find_armor<'t>(text: &'t [u8], kind: &str) -> Option<&'t [u8]> {
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let start = find(text, begin.as_bytes())?;
    let rest = &text[start..];
    let stop = find(rest, end.as_bytes())? + end.len();
    Some(&rest[..stop])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
