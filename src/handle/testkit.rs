//! Fixtures for the rule tests: a configuration, a clock, nym rows and
//! requests, without a database, key generation or a subprocess. The one
//! certificate is parsed from a fixed public key (alice@nym.example).

use super::{Request, Sig, Signer, View};
use crate::config::Config;
use crate::openpgp::PgpCert;
use crate::store::Nym;

const KEY: &[u8] = include_bytes!("../../fuzz/seeds/openpgp/nym-key.asc");

pub struct Kit {
    pub cfg: Config,
    pub now: i64,
    pub cert: PgpCert,
}

impl Kit {
    pub fn new() -> Kit {
        let cert = crate::openpgp::parse_certs(KEY).unwrap().remove(0);
        Kit { cfg: Config::for_tests(&["nym.example", "other.example"]), now: 1_800_000_000, cert }
    }

    pub fn view(&self) -> View<'_> {
        View { cfg: &self.cfg, now: self.now, blocklist: &[] }
    }

    /// An enabled nym with default options; its fingerprint is a name tag.
    pub fn nym(&self, local: &str) -> Nym {
        Nym {
            id: 7,
            local: local.into(),
            domain: "nym.example".into(),
            fingerprint: format!("FPR-{local}"),
            cert: self.cert.clone(),
            expires: Some(self.now + 365 * 86400),
            created: self.now - 86400,
            hsub: None,
            subject: None,
            symmetric: None,
            flags: crate::protocol::nym_commands::DEFAULT_ZAX,
            disabled: false,
            send_day: 0,
            send_count: 0,
            limit_told: false,
            name: None,
            unit_day: 0,
            unit_count: 0,
            had_active: true,
            active_blocks: 0,
            pending_blocks: 0,
        }
    }

    /// A good, fresh signature made at `created`.
    pub fn sig(&self, created: i64) -> Sig {
        Sig { digest: vec![created as u8; 32], created: Some(created), seen: false, meant_for_others: false }
    }

    pub fn request<'a>(&self, signer: Signer, plaintext: &'a [u8]) -> Request<'a> {
        Request { recipient: "config@nym.example", raw: b"raw message", plaintext, signer }
    }

    pub fn signed_by<'a>(&self, n: &Nym, sig: Sig, plaintext: &'a [u8]) -> Request<'a> {
        self.request(Signer::Nym(Box::new(n.clone()), sig), plaintext)
    }

    /// A request signed by `n` just now.
    pub fn fresh<'a>(&self, n: &Nym, plaintext: &'a [u8]) -> Request<'a> {
        self.signed_by(n, self.sig(self.now - 60), plaintext)
    }
}
