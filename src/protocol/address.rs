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

/// The server key's User IDs for `domains`, one per service and domain.
pub fn server_user_ids(domains: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    for d in domains {
        for s in Service::ALL.iter().filter(|s| s.in_server_key()) {
            v.push(format!("{} <{}@{d}>", s.key_name(), s.local()));
        }
    }
    v
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
];

/// Whether `local` is reserved: a service, a built-in name, or one of the
/// operator's `extra` names (already lowercase).
pub fn is_reserved(local: &str, extra: &[String]) -> bool {
    let l = local.to_ascii_lowercase();
    Service::from_local(&l).is_some() || RESERVED.contains(&l.as_str()) || extra.contains(&l)
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
    fn server_key_has_a_user_id_per_service_and_domain() {
        let ids = server_user_ids(&["a.example".into(), "b.example".into()]);
        assert_eq!(ids.len(), 6);
        assert!(ids.contains(&"nymgate Config <config@a.example>".to_string()));
        assert!(ids.contains(&"nymgate URL retrieval <url@b.example>".to_string()));
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
