//! Reaching a nym through alt.anonymous.messages (PROTOCOL.md section 5):
//! the payload signed by the server and encrypted to the nym (hidden
//! recipient unless a symmetric layer follows), then the symmetric layer
//! if the nym set one, under the subject the nym recognises.

use crate::config::Config;
use crate::exit::Failure;
use crate::handle::Wrapping;
use crate::openpgp::{self as pgp, PgpCert, ServerKey};
use crate::protocol::{article, padding};
use crate::store::OutItem;

/// The article carrying `payload` to the holder of `cert`; `notice` names
/// the speaking service when the payload is the server's own notice, so
/// that its signature carries the notice mark. The encryption
/// is written straight after the headers: a 20 MiB message must not be
/// copied again once it is armored.
pub fn article_for(
    cfg: &Config,
    server: &mut ServerKey,
    cert: &PgpCert,
    wrap: &Wrapping,
    payload: &mut dyn std::io::Read,
    size_hint: usize,
    notice: Option<&str>,
) -> Result<OutItem, Failure> {
    let subject = article::subject_for(cfg, wrap.hsub.as_deref(), wrap.subject.as_deref());
    // Room for the padded size, not only the payload's.
    let padded = if cfg.news.padding { padding::target(size_hint as u64 + 1024) as usize } else { size_hint };
    let size = pgp::armored_size(padded);
    match wrap.symmetric.as_deref() {
        None => {
            let (msgid, mut out) = article::article_head(cfg, &subject, size);
            pgp::sign_encrypt_padded_into(&mut out, server, cert, payload, true, notice, cfg.news.padding)?;
            Ok(article::article_finish(msgid, out))
        }
        Some(pass) => {
            let mut inner = Vec::with_capacity(size);
            pgp::sign_encrypt_padded_into(
                &mut inner,
                server,
                cert,
                payload,
                false,
                notice,
                cfg.news.padding,
            )?;
            let (msgid, mut out) = article::article_head(cfg, &subject, pgp::armored_size(inner.len()));
            pgp::encrypt_symmetric_into(&mut out, &inner, pass)?;
            Ok(article::article_finish(msgid, out))
        }
    }
}
