//! Articles on their way into the client: anyone can post to
//! alt.anonymous.messages, and `nym fetch` (trial decryption) and `nym read`
//! open what they find with the nym's secret key and passphrase. Bounded
//! output, only what was encrypted to the nym opens, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

use nymgate::client::fetch::Matcher;
use nymgate::openpgp::{holder, PgpCert};

struct Keys {
    nym: PgpCert,
    server: PgpCert,
    passwords: Vec<String>,
    matcher: Matcher,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let nym = holder::read_cert(include_bytes!("../keys/holder.key")).unwrap();
        let server = holder::read_cert(include_bytes!("../keys/server.key")).unwrap();
        let passwords = vec!["panda".to_string()];
        let matcher = Matcher {
            nyms: Vec::new(),
            try_all: vec![("reader@nym.example".into(), nym.clone(), passwords.clone())],
        };
        Keys { nym, server, passwords, matcher }
    })
}

/// See fuzz_targets/openpgp.rs: panics raised inside sequoia's sources
/// unwind into our guard, which must catch them.
fn tolerate_known_upstream_panic() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_sequoia = info.location().is_some_and(|l| l.file().contains("/sequoia-openpgp-"));
            if !in_sequoia {
                abort_hook(info)
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_known_upstream_panic();
    let k = keys();
    let (nym, server) = (std::slice::from_ref(&k.nym), std::slice::from_ref(&k.server));
    // `nym read`: the article body, armored, maybe in a symmetric layer.
    let body = String::from_utf8_lossy(data);
    if let Ok(a) = holder::open_article(&body, nym, &k.passwords, server) {
        assert!(a.plaintext.len() <= holder::MAX_PLAINTEXT);
    }
    // One layer, armored or binary.
    if let Ok(o) = holder::open(data, nym, &k.passwords, server) {
        assert!(o.plaintext.len() <= holder::MAX_PLAINTEXT * 2);
    }
    // `nym fetch`: is this article ours? (headers, then the body)
    let mut article = b"Subject: x\n\n".to_vec();
    article.extend_from_slice(data);
    let _ = k.matcher.by_decryption(&article);
});
