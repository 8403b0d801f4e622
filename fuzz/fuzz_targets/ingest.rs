//! Everything that reads an incoming mail before any cryptography: finding
//! the OpenPGP block (MIME decoding included), option lines of config@,
//! the send@ payload (header split, recipients, From rewriting) and url@
//! directives. None of it may panic or run away on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = nymgate::ingest::strip_from_line(data);
    let _ = nymgate::ingest::extract_pgp_message(raw);
    let text = String::from_utf8_lossy(raw);
    let parsed = nymgate::protocol::options::parse(&text);
    let _ = parsed.is_empty();
    let _ = nymgate::protocol::url_request::parse_request(&text);
    let _ = nymgate::protocol::send_request::split_message(raw);
    let out = nymgate::protocol::send_request::build_outgoing("alice@nym.example", raw, || {
        "<fuzz@nym.example>".to_string()
    });
    // The one promise send@ makes whatever the input: From is the nym.
    let (hs, _) = nymgate::protocol::send_request::split_message(&out.mail);
    let froms: Vec<_> = hs.iter().filter(|h| h.is("from")).collect();
    assert_eq!(froms.len(), 1, "exactly one From");
    assert!(froms[0].value().contains("alice@nym.example"), "From is the nym: {}", froms[0].text);
    let _ = nymgate::protocol::address::split_address(&text);
    let _ = nymgate::protocol::hsub::matches(&text, b"panda");
});
