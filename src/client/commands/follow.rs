//! Following a server key rotation (docs/client.md, "When the server key
//! changes"): `nym read` meets a "Server key rotated" notice that the key
//! it trusts did not sign. The notice carries the new key; the client
//! adopts it only if every User ID of the trusted key is on the new key
//! with a certification by the trusted key that verifies, and the notice
//! is signed by that new key. Anything else is refused, and the trusted
//! key stays.

use super::prelude::*;
use crate::openpgp::{self as core, ROTATION_SUBJECT};

/// What reading one article did about a rotation.
pub(crate) enum Follow {
    /// Not a rotation notice, or already signed by the trusted key.
    Nothing,
    /// The new key is adopted; the notice opened again under it.
    Adopted { article: pgp::Article, key: Box<Cert>, line: String },
    /// A rotation notice whose new key was refused.
    Refused(String),
}

impl Ctx {
    pub(crate) fn follow_rotation(
        &self,
        addr: &str,
        body: &str,
        keys: (&Cert, &Cert, &[String]),
        opened: &pgp::Article,
    ) -> Result<Follow> {
        let (key, trusted, passwords) = keys;
        if opened.server_signed.is_some() {
            return Ok(Follow::Nothing);
        }
        let subject = nntp::header(&opened.plaintext, "subject").unwrap_or_default();
        if subject.trim() != ROTATION_SUBJECT {
            return Ok(Follow::Nothing);
        }
        let refuse = |why: String| {
            Ok(Follow::Refused(format!(
                "{addr}: REFUSED the new server key of a \"{ROTATION_SUBJECT}\" notice: {why}; \
                 still trusting {}",
                trusted.fingerprint()
            )))
        };
        let candidate = match core::rotation_candidate(&opened.plaintext) {
            Ok(c) => c,
            Err(e) => return refuse(format!("{e:#}")),
        };
        if let Err(p) = core::verify_rotation(trusted, &candidate) {
            return refuse(format!(
                "{} is not certified by the key you trust ({p})",
                candidate.fingerprint()
            ));
        }
        let domain = addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if let Err(e) = pgp::check_server_key(&candidate, domain) {
            return refuse(format!("{e:#}"));
        }
        let again =
            pgp::open_article(body, std::slice::from_ref(key), passwords, std::slice::from_ref(&candidate))?;
        if again.server_signed.is_none() || again.notice.is_none() || again.bad_signatures > 0 {
            return refuse("the notice is not signed by the new key it carries".into());
        }
        let public = candidate.clone().strip_secret_key_material();
        self.store.save_server_key(addr, pgp::armored_public(&public)?.as_bytes())?;
        let line = format!(
            "{addr}: the server key is now {} (certified by the key you trusted, {})",
            public.fingerprint(),
            trusted.fingerprint()
        );
        Ok(Follow::Adopted { article: again, key: Box::new(public), line })
    }
}
