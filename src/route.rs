//! Where a message goes, by its envelope recipient: a service of a hosted
//! domain, a nym, or nowhere.

use crate::config::Config;
use crate::protocol::address::{split_address, Service};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A service address (`config@D`, ...).
    Service { service: Service, domain: String },
    /// A possible nym; whether it exists is for the store to say.
    Nym { local: String, domain: String },
    /// Not ours: another domain, a reserved name, no address at all.
    Nowhere,
}

pub fn route(cfg: &Config, recipient: &str) -> Route {
    let Some((local, domain)) = split_address(recipient) else { return Route::Nowhere };
    if !cfg.hosts(&domain) {
        return Route::Nowhere;
    }
    if let Some(service) = Service::from_local(&local) {
        return Route::Service { service, domain };
    }
    if cfg.is_reserved(&local) {
        return Route::Nowhere;
    }
    Route::Nym { local, domain }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::for_tests(&["nym.example", "two.example"])
    }

    #[test]
    fn service_addresses_route_to_their_service_in_every_domain() {
        let c = cfg();
        assert_eq!(
            route(&c, "Config@Two.Example"),
            Route::Service { service: Service::Config, domain: "two.example".into() }
        );
        assert_eq!(
            route(&c, "send@nym.example"),
            Route::Service { service: Service::Send, domain: "nym.example".into() }
        );
        assert_eq!(
            route(&c, "url@nym.example"),
            Route::Service { service: Service::Url, domain: "nym.example".into() }
        );
    }

    #[test]
    fn other_local_parts_route_to_a_nym() {
        assert_eq!(
            route(&cfg(), "Alice@nym.example"),
            Route::Nym { local: "alice".into(), domain: "nym.example".into() }
        );
    }

    #[test]
    fn reserved_names_route_nowhere() {
        assert_eq!(route(&cfg(), "postmaster@nym.example"), Route::Nowhere);
        assert_eq!(route(&cfg(), "admin@nym.example"), Route::Nowhere);
    }

    #[test]
    fn foreign_domains_and_non_addresses_route_nowhere() {
        assert_eq!(route(&cfg(), "alice@elsewhere.example"), Route::Nowhere);
        assert_eq!(route(&cfg(), "alice"), Route::Nowhere);
        assert_eq!(route(&cfg(), ""), Route::Nowhere);
    }
}
