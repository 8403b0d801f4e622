//! Addresses: the services a hosted domain offers, the names that can
//! never be nyms, and how an envelope recipient is read.
//!
//! [`Service`] is the route table. Routing, the reserved names and the
//! server key's User IDs all come from it, so that a new service is one
//! new variant here.

/// A service address of every hosted domain (`config@D`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Create, reconfigure and delete nyms (PROTOCOL.md sections 2 and 3).
    Config,
    /// Send mail and news as a nym (section 6).
    Send,
    /// Fetch web pages for a nym (section 8).
    Url,
}

impl Service {
    pub const ALL: &'static [Service] = &[Service::Config, Service::Send, Service::Url];

    /// The local part the service answers at.
    pub fn local(self) -> &'static str {
        match self {
            Service::Config => "config",
            Service::Send => "send",
            Service::Url => "url",
        }
    }

    /// The name in the server key's User ID for this service.
    pub fn key_name(self) -> &'static str {
        match self {
            Service::Config => "nymgate Config",
            Service::Send => "nymgate Send",
            Service::Url => "nymgate URL retrieval",
        }
    }

    /// Whether the server key carries a User ID for this service (clients
    /// encrypt to the key by these addresses).
    pub fn in_server_key(self) -> bool {
        matches!(self, Service::Config | Service::Send | Service::Url)
    }

    pub fn from_local(local: &str) -> Option<Service> {
        Service::ALL.iter().copied().find(|s| s.local().eq_ignore_ascii_case(local))
    }

    /// The event name used in log lines for requests to this service.
    pub fn event(self) -> &'static str {
        self.local()
    }
}

/// The local part of `confirm+COOKIE@D`, where mail activates a pending
/// reply-block set (REPLY-BLOCKS.md section 6.3).
pub const CONFIRM: &str = "confirm";

/// The local part of the Type I remailer, `remailer@D` (REPLY-BLOCKS.md
/// section 10), served when `[remailer] enabled`; reserved either way.
pub const REMAILER: &str = "remailer";

/// Role addresses that reach the operator (RFC 5321 requires postmaster;
/// every article names abuse@ for complaints). Mail to them is forwarded
/// to the configured operator address.
pub const FORWARDED: &[&str] = &["postmaster", "abuse"];

/// The server key's User IDs for `domains`, one per service and domain,
/// and `remailer@D` (REPLY-BLOCKS.md 10.1: Type I clients look the key up
/// by the remailer's address; the key is the same).
pub fn server_user_ids(domains: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    for d in domains {
        for s in Service::ALL.iter().filter(|s| s.in_server_key()) {
            v.push(format!("{} <{}@{d}>", s.key_name(), s.local()));
        }
        v.push(remailer_user_id(d));
    }
    v
}

/// The server key's User ID for the Type I remailer of `domain`.
pub fn remailer_user_id(domain: &str) -> String {
    format!("nymgate Remailer <{REMAILER}@{domain}>")
}

/// Local parts that can never be nyms (PROTOCOL.md section 1), besides the
/// service addresses and the operator's own list.
pub const RESERVED: &[&str] = &[
    "abuse",
    "admin",
    "help",
    "list",
    "postmaster",
    "root",
    "this",
    "webmaster",
    "nobody",
    "mailer-daemon",
    "hostmaster",
    "noreply",
    "no-reply",
    CONFIRM,
    REMAILER,
];

/// Whether `local` is reserved: a service, a built-in name, or one of the
/// operator's `extra` names (already lowercase).
pub fn is_reserved(local: &str, extra: &[String]) -> bool {
    let l = local.to_ascii_lowercase();
    Service::from_local(&l).is_some()
        || Responder::from_local(&l).is_some()
        || RESERVED.contains(&l.as_str())
        || extra.contains(&l)
}

/// Longest and shortest nym names, in characters.
pub const NAME_MIN: usize = 2;
pub const NAME_MAX: usize = 32;

/// Whether `local` can be a nym's name: ASCII only, 2 to 32 of lowercase
/// letters, digits, `-`, `_` and `.`, starting and ending with a letter or
/// a digit. Look-alike letters from other scripts, invisible characters,
/// direction overrides and `+` (the recipient delimiter) are all outside
/// this set, so no name can imitate another or a service.
pub fn is_valid_nym_name(local: &str) -> bool {
    let b = local.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.');
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (NAME_MIN..=NAME_MAX).contains(&b.len())
        && b.iter().all(inner)
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
}

/// The local part without a `+extension` (`alice+lists` reaches `alice`,
/// as with Postfix's `recipient_delimiter`).
pub fn base_local(local: &str) -> &str {
    local.split_once('+').map_or(local, |(base, _)| base)
}

/// The autoresponders of every hosted domain (REPLY-BLOCKS.md section
/// 11): addresses that answer by themselves, or (nobody@) swallow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Responder {
    /// The help text.
    Help,
    /// The server key and the remailer's capability line.
    RemailerKey,
    /// The names in use (off by default: it shows the user base).
    List,
    /// The same list, by its nym.alias.net name.
    Used,
    /// Accepts and discards: the envelope sender of what we send.
    Nobody,
}

impl Responder {
    pub const ALL: &'static [Responder] =
        &[Responder::Help, Responder::RemailerKey, Responder::List, Responder::Used, Responder::Nobody];

    pub fn local(self) -> &'static str {
        match self {
            Responder::Help => "help",
            Responder::RemailerKey => "remailer-key",
            Responder::List => "list",
            Responder::Used => "used",
            Responder::Nobody => "nobody",
        }
    }

    pub fn from_local(local: &str) -> Option<Responder> {
        Responder::ALL.iter().copied().find(|r| r.local().eq_ignore_ascii_case(local))
    }

    /// The event name of its log lines.
    pub fn event(self) -> &'static str {
        match self {
            Responder::RemailerKey => "remailer_key",
            r => r.local(),
        }
    }
}

/// Split an address into (local part, domain), lowercased. Angle brackets
/// around it are dropped.
pub fn split_address(addr: &str) -> Option<(String, String)> {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>');
    let (l, d) = a.rsplit_once('@')?;
    if l.is_empty() || d.is_empty() {
        return None;
    }
    Some((l.to_ascii_lowercase(), d.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_route_by_local_part_case_insensitively() {
        assert_eq!(Service::from_local("Config"), Some(Service::Config));
        assert_eq!(Service::from_local("SEND"), Some(Service::Send));
        assert_eq!(Service::from_local("url"), Some(Service::Url));
        assert_eq!(Service::from_local("alice"), None);
    }

    #[test]
    fn service_addresses_are_reserved_names() {
        for s in Service::ALL {
            assert!(is_reserved(s.local(), &[]), "{s:?}");
        }
    }

    #[test]
    fn reserved_names_of_the_protocol() {
        for n in ["abuse", "admin", "config", "help", "list", "postmaster", "root", "send", "this"] {
            assert!(is_reserved(n, &[]), "{n}");
        }
        for n in ["url", "webmaster", "nobody", "Postmaster"] {
            assert!(is_reserved(n, &[]), "{n}");
        }
        assert!(!is_reserved("alice", &[]));
        assert!(is_reserved("staff", &["staff".to_string()]));
    }

    #[test]
    fn autoresponder_addresses_are_reserved_names() {
        for r in Responder::ALL {
            assert!(is_reserved(r.local(), &[]), "{r:?}");
            assert_eq!(Responder::from_local(&r.local().to_ascii_uppercase()), Some(*r));
        }
        assert!(is_reserved("used", &[]) && is_reserved("remailer-key", &[]));
        assert!(is_reserved("remailer", &[]) && is_reserved("Remailer", &[]));
        assert_eq!(Responder::from_local("alice"), None);
    }

    #[test]
    fn server_key_has_a_user_id_per_service_and_domain() {
        let ids = server_user_ids(&["a.example".into(), "b.example".into()]);
        assert_eq!(ids.len(), 8);
        assert!(ids.contains(&"nymgate Remailer <remailer@b.example>".to_string()));
        assert!(ids.contains(&"nymgate Config <config@a.example>".to_string()));
        assert!(ids.contains(&"nymgate URL retrieval <url@b.example>".to_string()));
    }

    #[test]
    fn nym_names_are_ascii_letters_digits_and_inner_punctuation() {
        for ok in ["al", "alice", "a.b-c_d", "x9", "0day", &"a".repeat(32)] {
            assert!(is_valid_nym_name(ok), "{ok}");
        }
        for bad in ["a", "", &"a".repeat(33), "-alice", "alice.", "_x", "Alice", "al ice", "al+ice", "a@b"] {
            assert!(!is_valid_nym_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn look_alike_and_invisible_names_are_refused() {
        for bad in [
            "c\u{43e}nfig",
            "\u{ff53}\u{ff45}\u{ff4e}\u{ff44}",
            "al\u{200b}ice",
            "\u{202e}ecila",
            "alic\u{0435}",
        ] {
            assert!(!is_valid_nym_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_extension_reaches_the_base_name() {
        assert_eq!(base_local("alice+lists"), "alice");
        assert_eq!(base_local("config+x"), "config");
        assert_eq!(base_local("alice"), "alice");
        assert_eq!(base_local("+x"), "");
    }

    #[test]
    fn reserved_names_are_compared_without_extension() {
        assert!(is_reserved(base_local("postmaster+x"), &[]));
        assert!(is_reserved(base_local("config+x"), &[]));
    }

    #[test]
    fn split_address_lowercases_and_strips_brackets() {
        assert_eq!(split_address("<Alice@Nym.Example>"), Some(("alice".into(), "nym.example".into())));
        assert_eq!(split_address("a@b@c"), Some(("a@b".into(), "c".into())));
        assert_eq!(split_address("nodomain"), None);
        assert_eq!(split_address("@d"), None);
        assert_eq!(split_address("l@"), None);
    }
}
