//! Where a message goes, by its envelope recipient: a service of a hosted
//! domain, a nym, or nowhere.

use crate::config::Config;
use crate::protocol::address::{
    base_local, is_valid_nym_name, split_address, Responder, Service, CONFIRM, FORWARDED, REMAILER,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A service address (`config@D`, ...).
    Service { service: Service, domain: String },
    /// `confirm+COOKIE@D`: `ext` is what followed the `+` (None without).
    Confirm { ext: Option<String>, domain: String },
    /// postmaster@ or abuse@: forwarded to the operator.
    Forward { domain: String },
    /// An autoresponder (help@, list@, ...); whether it is on is for
    /// `handle::autoresp` to say.
    Responder { responder: Responder, domain: String },
    /// `remailer@D`, the Type I remailer, when `[remailer] enabled`
    /// (off, it is a reserved name and routes nowhere: 67).
    Remailer { domain: String },
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
    // `name+ext` reaches `name`; `+` is never part of a name.
    let ext = local.split_once('+').map(|(_, e)| e.to_string());
    let local = base_local(&local);
    if local == CONFIRM {
        return Route::Confirm { ext, domain };
    }
    if let Some(service) = Service::from_local(local) {
        return Route::Service { service, domain };
    }
    if local == REMAILER && cfg.remailer.enabled {
        return Route::Remailer { domain };
    }
    if FORWARDED.contains(&local) {
        return Route::Forward { domain };
    }
    if let Some(responder) = Responder::from_local(local) {
        return Route::Responder { responder, domain };
    }
    if cfg.is_reserved(local) || !is_valid_nym_name(local) {
        return Route::Nowhere;
    }
    Route::Nym { local: local.to_string(), domain }
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
        assert_eq!(route(&cfg(), "admin@nym.example"), Route::Nowhere);
        assert_eq!(route(&cfg(), "root@nym.example"), Route::Nowhere);
    }

    #[test]
    fn autoresponders_route_to_their_responder_with_or_without_extension() {
        assert_eq!(
            route(&cfg(), "Help@two.example"),
            Route::Responder { responder: Responder::Help, domain: "two.example".into() }
        );
        assert_eq!(
            route(&cfg(), "remailer-key+x@nym.example"),
            Route::Responder { responder: Responder::RemailerKey, domain: "nym.example".into() }
        );
        assert_eq!(
            route(&cfg(), "nobody@nym.example"),
            Route::Responder { responder: Responder::Nobody, domain: "nym.example".into() }
        );
    }

    #[test]
    fn remailer_routes_only_when_enabled() {
        let mut c = cfg();
        assert_eq!(route(&c, "remailer@nym.example"), Route::Nowhere);
        c.remailer.enabled = true;
        assert_eq!(route(&c, "Remailer@two.example"), Route::Remailer { domain: "two.example".into() });
        assert_eq!(route(&c, "remailer+x@nym.example"), Route::Remailer { domain: "nym.example".into() });
        assert_eq!(route(&c, "remailer@elsewhere.example"), Route::Nowhere);
    }

    #[test]
    fn postmaster_and_abuse_reach_the_operator() {
        assert_eq!(route(&cfg(), "Postmaster@nym.example"), Route::Forward { domain: "nym.example".into() });
        assert_eq!(route(&cfg(), "abuse+x@two.example"), Route::Forward { domain: "two.example".into() });
    }

    #[test]
    fn an_extension_reaches_the_nym_or_service() {
        assert_eq!(
            route(&cfg(), "alice+news@nym.example"),
            Route::Nym { local: "alice".into(), domain: "nym.example".into() }
        );
        assert_eq!(
            route(&cfg(), "config+x@nym.example"),
            Route::Service { service: Service::Config, domain: "nym.example".into() }
        );
        assert_eq!(route(&cfg(), "admin+x@nym.example"), Route::Nowhere);
    }

    #[test]
    fn confirm_routes_as_base_plus_ext() {
        assert_eq!(
            route(&cfg(), "confirm+0123456789ABCDEF0123456789abcdef@nym.example"),
            Route::Confirm {
                ext: Some("0123456789abcdef0123456789abcdef".into()),
                domain: "nym.example".into()
            }
        );
        assert_eq!(
            route(&cfg(), "Confirm@two.example"),
            Route::Confirm { ext: None, domain: "two.example".into() }
        );
        assert!(crate::protocol::address::is_reserved("confirm", &[]));
    }

    #[test]
    fn names_no_nym_can_have_route_nowhere() {
        assert_eq!(route(&cfg(), "c\u{43e}nfig@nym.example"), Route::Nowhere);
        assert_eq!(route(&cfg(), "al\u{200b}ice@nym.example"), Route::Nowhere);
        assert_eq!(route(&cfg(), "x@nym.example"), Route::Nowhere);
    }

    #[test]
    fn foreign_domains_and_non_addresses_route_nowhere() {
        assert_eq!(route(&cfg(), "alice@elsewhere.example"), Route::Nowhere);
        assert_eq!(route(&cfg(), "alice"), Route::Nowhere);
        assert_eq!(route(&cfg(), ""), Route::Nowhere);
    }
}
