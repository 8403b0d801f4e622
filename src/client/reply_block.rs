//! Reply blocks on the holder's side (REPLY-BLOCKS.md sections 6, 7.1,
//! 10 and 13): building a block through a chain of Type I remailers,
//! inside out, with one `Encrypt-Key` passphrase per hop; the forward
//! message that carries a confirmation through the same remailers; and
//! peeling the Encrypt-Key layers off what the chain delivers.
//!
//! The block for hops `1..n` delivering to `D`, where `PGP_i` is
//! encryption to hop `i`'s key and `k_i` hop `i`'s passphrase:
//!
//! ```text
//! P_n   = "::\nAnon-To: D\nEncrypt-Key: k_n\n\n"
//! P_i   = "::\nAnon-To: hop_{i+1}\nEncrypt-Key: k_i\n\n::\nEncrypted: PGP\n\n" PGP_{i+1}(P_{i+1}) "\n**\n"
//! block = "::\nAnon-To: hop_1\n\n::\nEncrypted: PGP\n\n" PGP_1(P_1) "\n**\n"
//! ```
//!
//! The nym server reads the clear first level and mails the rest, with
//! the payload after it, to hop 1. Hop `i` opens `P_i`, sends on what
//! precedes the first `**` line (the next hop's ciphertext) and encrypts
//! everything after it with `k_i`. So what reaches `D` is the payload
//! under `k_n(... k_1(payload))`, and each hop sees only ciphertext.

use anyhow::{anyhow, bail, Result};

use crate::openpgp::holder as pgp;
use crate::openpgp::PgpCert as Cert;
use crate::protocol::type1;

/// Most hops a chain may have. Each adds a layer of encryption to the
/// block, which the server caps at 32 KiB; and every hop more is one
/// more remailer that must stay up for as long as the block is used.
pub const MAX_HOPS: usize = 8;

/// The server's default `max_block_bytes`.
pub const MAX_BLOCK_BYTES: usize = 32768;

/// Most Encrypt-Key layers peeled off one message.
pub const MAX_LAYERS: usize = MAX_HOPS + 2;

// ---------------------------------------------------------- the store's record

/// One reply block: the Type I remailers it runs through and where the
/// last one delivers.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Chain {
    pub hops: Vec<Hop>,
    /// The last hop's destination (the holder's mailbox, or
    /// `post:GROUPS`).
    pub deliver_to: String,
    /// The probability set sent with the block (`a=0.5`), if any.
    pub set: Option<String>,
    /// The block text exactly as sent in `Reply-Block:`.
    pub block: String,
    /// `pending` (sent, not confirmed), `active`, or `replaced`.
    pub state: String,
}

/// One Type I remailer of a chain.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Hop {
    pub address: String,
    /// The remailer's public key, armored.
    pub key: String,
    pub fingerprint: String,
    /// The passphrase this hop encrypts with (`Encrypt-Key:`).
    pub encrypt_key: String,
}

impl Chain {
    /// The Encrypt-Key passphrases, last hop first: the order in which
    /// the layers come off.
    pub fn passphrases(&self) -> Vec<String> {
        self.hops.iter().rev().map(|h| h.encrypt_key.clone()).collect()
    }
}

// ------------------------------------------------------------- building

/// One remailer of the chain, as the holder gave it.
#[derive(Clone)]
pub struct HopSpec {
    pub address: String,
    pub cert: Cert,
}

/// Where the last hop delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A mailbox (`Anon-To:`).
    Mail(String),
    /// Newsgroups (`Anon-Post-To:`), written `post:GROUP[,GROUP]`.
    Post(String),
}

impl Destination {
    pub fn parse(s: &str) -> Result<Destination> {
        let s = s.trim();
        if let Some(g) = s.strip_prefix("post:") {
            let groups = type1::parse_newsgroups(g)
                .filter(|v| !v.is_empty() && v.len() < 6)
                .ok_or_else(|| anyhow!("`{g}` is not a list of one to five newsgroups"))?;
            return Ok(Destination::Post(groups.join(",")));
        }
        Ok(Destination::Mail(remailer_address(s)?))
    }

    /// As stored (`NymRecord` chains).
    pub fn shown(&self) -> String {
        match self {
            Destination::Mail(a) => a.clone(),
            Destination::Post(g) => format!("post:{g}"),
        }
    }

    fn directive(&self) -> String {
        match self {
            Destination::Mail(a) => format!("Anon-To: {a}"),
            Destination::Post(g) => format!("Anon-Post-To: {g}"),
        }
    }
}

/// A bare `local@domain` as the Type I engine accepts it.
pub fn remailer_address(a: &str) -> Result<String> {
    type1::bare_address(a)
        .map_err(|_| anyhow!("`{}` is not a bare mail address (local@domain)", a.escape_debug()))
}

/// A fresh Encrypt-Key passphrase: 128 random bits, as hex (the Type I
/// field is one line; hex survives every remailer).
pub fn new_passphrase() -> String {
    let mut r = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut r);
    hex::encode(r)
}

/// `::` + `Encrypted: PGP` + the armored message, as one hop reads it.
fn encrypted_to(cert: &Cert, plain: &str) -> Result<String> {
    let armored = pgp::encrypt(plain.as_bytes(), &[cert], None)?;
    Ok(format!("::\nEncrypted: PGP\n\n{}\n", armored.trim_end()))
}

/// What a block asks of its hops besides the route.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// The last hop pastes it as the Subject (`##`, 10.6), so that the
    /// mailbox can sort what the block brings.
    pub subject: Option<&'a str>,
    /// A `Latent-Time:` for every hop (10.4), e.g. `+0:30r`: each holds
    /// the message that long (the `r` form: up to that long, at random)
    /// before sending it on, which makes matching arrivals to departures
    /// harder. Each remailer clamps it to its own maximum.
    pub latent_time: Option<&'a str>,
}

/// Build the block inside out; `keys[i]` is hop `i`'s Encrypt-Key.
pub fn build(hops: &[HopSpec], dest: &Destination, keys: &[String], x: Extras) -> Result<String> {
    if x.subject.is_some_and(|s| s.trim().is_empty() || s.chars().any(char::is_control) || s.len() > 200) {
        bail!("the subject tag must be one line of at most 200 characters");
    }
    if let Some(l) = x.latent_time {
        if type1::parse_latent(l).is_none() {
            bail!("`{l}` is no Latent-Time; write +H:MM (a delay), HH:MM (a UTC time), with r for random");
        }
    }
    if hops.is_empty() {
        bail!("a reply block needs at least one remailer (--hop ADDRESS=KEYFILE)");
    }
    if hops.len() > MAX_HOPS {
        bail!("{} hops; at most {MAX_HOPS}", hops.len());
    }
    if keys.len() != hops.len() || keys.iter().any(|k| k.trim().is_empty() || k.contains(['\n', '\r'])) {
        bail!("one one-line Encrypt-Key passphrase per hop is needed");
    }
    let n = hops.len();
    let mut inner: Option<String> = None;
    for i in (0..n).rev() {
        let next = if i + 1 == n { dest.directive() } else { format!("Anon-To: {}", hops[i + 1].address) };
        let latent = x.latent_time.map(|l| format!("Latent-Time: {}\n", l.trim())).unwrap_or_default();
        let mut p = format!("::\n{next}\nEncrypt-Key: {}\n{latent}\n", keys[i]);
        if let (true, Some(s)) = (i + 1 == n, x.subject) {
            p.push_str(&format!("##\nSubject: {}\n\n", s.trim()));
        }
        if let Some(q) = inner.take() {
            p.push_str(&encrypted_to(&hops[i + 1].cert, &q)?);
            p.push_str("**\n");
        }
        inner = Some(p);
    }
    let p1 = inner.expect("at least one hop");
    let mut block = format!("::\nAnon-To: {}\n\n", hops[0].address);
    block.push_str(&encrypted_to(&hops[0].cert, &p1)?);
    block.push_str("**\n");
    if block.len() > MAX_BLOCK_BYTES {
        bail!(
            "the block is {} bytes, more than the {MAX_BLOCK_BYTES} a server takes; use fewer hops or smaller keys",
            block.len()
        );
    }
    Ok(block)
}

/// A message that the chain carries forward to `to` (for `nym
/// confirm`): hop 1 gets the result; each hop opens its layer and mails
/// the rest to the next; the last mails `body` to `to`.
pub fn forward(hops: &[HopSpec], to: &str, body: &str) -> Result<String> {
    if hops.is_empty() || hops.len() > MAX_HOPS {
        bail!("a chain of 1 to {MAX_HOPS} remailers is needed");
    }
    let mut msg = format!("::\nAnon-To: {}\n\n{body}", remailer_address(to)?);
    for i in (0..hops.len()).rev() {
        let wrapped = encrypted_to(&hops[i].cert, &msg)?;
        msg = if i == 0 { wrapped } else { format!("::\nAnon-To: {}\n\n{wrapped}", hops[i].address) };
    }
    Ok(msg)
}

/// What came off a message that arrived through a chain.
#[derive(Debug)]
pub struct Peeled {
    /// The text under the last Encrypt-Key layer removed.
    pub text: Vec<u8>,
    pub layers: usize,
}

/// Peel Encrypt-Key layers: while the first armored message of the text
/// opens with one of `passphrases`, replace the text by its plaintext
/// (the `**` lines in between are simply skipped, as the armored message
/// is looked for anywhere). Stops at the first message that does not
/// open, at most [`MAX_LAYERS`] times; each layer is bounded by the
/// holder's plaintext cap.
pub fn peel(body: &[u8], passphrases: &[String]) -> Peeled {
    let mut text = body.to_vec();
    let mut layers = 0;
    while layers < MAX_LAYERS {
        let Some(block) = crate::openpgp::find_armor(&text, "MESSAGE") else { break };
        match pgp::open(block, &[], passphrases, &[]) {
            Ok(o) if o.by_password => {
                text = o.plaintext;
                layers += 1;
            }
            _ => break,
        }
    }
    Peeled { text, layers }
}

/// The `confirm+COOKIE@domain` address a notice names in its
/// `Reply-To:`, if it is one (32 hex digits, the nym's own domain).
pub fn confirm_address(payload: &[u8], domain: &str) -> Option<String> {
    let v = crate::client::nntp::header(payload, "reply-to")?;
    let a = v.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase();
    let (local, d) = a.split_once('@')?;
    let cookie = local.strip_prefix("confirm+")?;
    (d == domain.to_ascii_lowercase() && cookie.len() == 32 && cookie.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_mailboxes_or_newsgroups() {
        assert_eq!(
            Destination::parse("<Me@Box.Example>").unwrap(),
            Destination::Mail("Me@box.example".into())
        );
        assert_eq!(
            Destination::parse("post:alt.anonymous.messages").unwrap().shown(),
            "post:alt.anonymous.messages"
        );
        for bad in ["me", "Me <me@box.example>", "me@[127.0.0.1]", "post:", "post:a,b,c,d,e,f"] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn confirm_address_is_only_the_cookie_form_in_the_nyms_domain() {
        let c = "0123456789abcdef0123456789abcdef";
        let p = format!("Reply-To: confirm+{c}@nym.example\nFrom: config@nym.example\n\nx\n");
        assert_eq!(confirm_address(p.as_bytes(), "nym.example"), Some(format!("confirm+{c}@nym.example")));
        assert_eq!(confirm_address(p.as_bytes(), "other.example"), None);
        for bad in [
            "confirm@nym.example",
            "confirm+abc@nym.example",
            "evil+0123456789abcdef0123456789abcdef@nym.example",
        ] {
            let p = format!("Reply-To: {bad}\n\nx\n");
            assert_eq!(confirm_address(p.as_bytes(), "nym.example"), None, "{bad}");
        }
        assert_eq!(
            confirm_address(
                b"From: x\n\nReply-To: confirm+0123456789abcdef0123456789abcdef@nym.example\n",
                "nym.example"
            ),
            None
        );
    }

    #[test]
    fn passphrases_are_fresh_and_one_line() {
        let (a, b) = (new_passphrase(), new_passphrase());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn peeling_stops_at_a_layer_it_cannot_open() {
        let inner = crate::openpgp::encrypt_key("k1", b"\n**\npayload\n").unwrap();
        let mut outer = b"**\n".to_vec();
        outer.extend(crate::openpgp::encrypt_key("k2", &inner).unwrap());
        let p = peel(&outer, &["k2".into(), "k1".into()]);
        assert_eq!((p.layers, p.text.as_slice()), (2, &b"\n**\npayload\n"[..]));
        let p = peel(&outer, &["k2".into()]);
        assert_eq!(p.layers, 1);
        assert_eq!(peel(b"no armor", &["k".into()]).layers, 0);
    }
}
