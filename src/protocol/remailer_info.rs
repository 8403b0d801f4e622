//! What a Type I remailer says about itself and knows of others
//! (REPLY-BLOCKS.md 10.9 and 10.11): the known-remailers file, the request
//! subjects at remailer@, and the capability line.

use super::type1::bare_address;

/// A known remailer list (10.9): one entry a line, a bare address or a
/// Mixmaster `$remailer{"name"} = "<addr> flags";` line; `#` starts a
/// comment line. Addresses come back lowercased.
pub fn parse_known_remailers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let candidate = if l.starts_with("$remailer{") {
            // The address is the <...> inside the quoted value.
            let Some((_, after)) = l.split_once('=') else { continue };
            let Some(open) = after.find('<') else { continue };
            let Some(close) = after[open..].find('>') else { continue };
            after[open + 1..open + close].to_string()
        } else {
            l.to_string()
        };
        if let Ok(a) = bare_address(&candidate) {
            out.push(a.to_ascii_lowercase());
        }
    }
    out
}

/// A request by Subject at `remailer@D` (10.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemailerRequest {
    Help,
    Key,
    /// Forwarded to the operator, never acted on.
    DestinationBlock,
    /// Another `remailer-*` subject: dropped.
    Other,
}

/// What a Subject asks of the remailer, if it is a request.
pub fn request_of(subject: &str) -> Option<RemailerRequest> {
    let s = subject.trim().to_ascii_lowercase();
    match s.as_str() {
        "remailer-help" | "help" => Some(RemailerRequest::Help),
        "remailer-key" | "remailer-conf" => Some(RemailerRequest::Key),
        "destination-block" => Some(RemailerRequest::DestinationBlock),
        _ if s.starts_with("remailer-") => Some(RemailerRequest::Other),
        _ => None,
    }
}

/// What the capability line says (10.11).
pub struct Capabilities<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub middleman: bool,
    pub pgp_only: bool,
    pub post: bool,
    pub max_message_size: u64,
    pub extra: &'a str,
}

/// The capability line, in Mixmaster's order. We never claim `max`,
/// `test`, `mix`, `esub`, `reord`, `inflt` or `rhop`.
pub fn capability_line(c: &Capabilities) -> String {
    let mut flags = vec!["cpunk"];
    if c.middleman {
        flags.push("middle");
    }
    flags.push("pgp");
    if c.pgp_only {
        flags.push("pgponly");
    }
    flags.extend(["hsub", "latent", "hash", "cut", "ek", "ekx"]);
    if c.post {
        flags.push("post");
    }
    let klen = format!("klen{}", c.max_message_size / 1024);
    flags.push(&klen);
    let extra = c.extra.trim();
    if !extra.is_empty() {
        flags.push(extra);
    }
    format!("$remailer{{\"{}\"}} = \"<{}> {}\";", c.name, c.address, flags.join(" "))
}
