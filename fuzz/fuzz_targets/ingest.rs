//! Everything that reads an incoming mail before any cryptography: finding
//! the OpenPGP block (MIME decoding included), option lines of config@,
//! the send@ payload (header split, recipients, From rewriting) and url@
//! directives. None of it may panic or run away on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use nymgate::store::Nym;

fn nym() -> &'static Nym {
    static NYM: OnceLock<Nym> = OnceLock::new();
    NYM.get_or_init(|| {
        let cert = nymgate::openpgp::parse_certs(include_bytes!("../keys/nym.asc")).unwrap().remove(0);
        Nym {
            id: 1,
            local: "alice".into(),
            domain: "nym.example".into(),
            fingerprint: cert.fingerprint().to_hex(),
            cert,
            expires: None,
            created: 0,
            hsub: Some("panda".into()),
            subject: None,
            symmetric: None,
            acksend: true,
            disabled: false,
            send_day: 0,
            send_count: 0,
            limit_told: false,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let raw = nymgate::message::strip_from_line(data);
    let _ = nymgate::message::extract_pgp_message(raw);
    let text = String::from_utf8_lossy(raw);
    let parsed = nymgate::options::parse(&text);
    let _ = parsed.is_empty();
    let _ = nymgate::url::parse_request(&text);
    let _ = nymgate::send::split_message(raw);
    let out = nymgate::send::build_outgoing(nym(), raw, || "<fuzz@nym.example>".to_string());
    // The one promise send@ makes whatever the input: From is the nym.
    let (hs, _) = nymgate::send::split_message(&out.mail);
    let froms: Vec<_> = hs.iter().filter(|h| h.is("from")).collect();
    assert_eq!(froms.len(), 1, "exactly one From");
    assert!(froms[0].value().contains("alice@nym.example"), "From is the nym: {}", froms[0].text);
    let _ = nymgate::app::split_address(&text);
    let _ = nymgate::hsub::matches(&text, b"panda");
});
