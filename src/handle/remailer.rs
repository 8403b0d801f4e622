//! The Type I remailer engine (REPLY-BLOCKS.md section 10), pure: one
//! incoming message (header fields and body text) in, the outgoing items
//! and an [`Outcome`] per message out. Decryption with the server key and
//! the `Encrypt-Key` cipher are injected ([`Crypto`]), and so are the
//! clock and the random source, so every rule is a unit test here.
//!
//! Every failure is a silent drop with its outcome for the log.

use rand::RngCore;

pub use super::block_check::{check_block, BlockCheck};
use super::Outcome;
use crate::config::Config;
use crate::protocol::type1::{self as t1, Directive};
use crate::store::{Kind, OutItem};

/// Which door a message came in by (10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Mail to `remailer@D`.
    Remailer,
    /// A local run through a nym's reply block (7.2): `pgp_only` and
    /// `middleman` are skipped, every other limit applies.
    ReplyBlock,
}

/// The operator's remailer settings, as the engine needs them.
#[derive(Debug, Clone)]
pub struct Policy {
    pub pgp_only: bool,
    pub middleman: bool,
    pub post: bool,
    pub blocked_groups: Vec<String>,
    pub max_layers: usize,
    pub max_cut_segments: usize,
    /// Seconds; Latent-Time is clamped to it.
    pub max_latency: i64,
    pub max_recipients: usize,
    /// `From:` of the output; empty: `Anonymous <nobody@D>`.
    pub from: String,
    /// `Comments:` of the output; empty: the default text.
    pub comments: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            pgp_only: true,
            middleman: true,
            post: false,
            blocked_groups: Vec::new(),
            max_layers: 8,
            max_cut_segments: 4,
            max_latency: 86400,
            max_recipients: 5,
            from: String::new(),
            comments: String::new(),
        }
    }
}

impl Policy {
    /// The policy of the `[remailer]` section.
    pub fn of(cfg: &Config) -> Policy {
        let r = &cfg.remailer;
        Policy {
            pgp_only: r.pgp_only,
            middleman: r.middleman,
            post: r.post,
            blocked_groups: r.blocked_groups.clone(),
            max_layers: r.max_layers,
            max_cut_segments: r.max_cut_segments,
            max_latency: r.max_latency as i64,
            max_recipients: r.max_recipients,
            from: r.from.clone(),
            comments: r.comments.clone(),
        }
    }
}

/// The cryptography the engine asks the shell for.
pub trait Crypto {
    /// Decrypt one armored message with the server key, integrity
    /// protection required; `None` when it cannot be opened.
    fn decrypt(&mut self, armored: &str) -> Option<String>;
    /// The `Encrypt-Key` layer of 10.5: `text` encrypted with the
    /// passphrase `key`, armored.
    fn encrypt_key(&mut self, key: &str, text: &str) -> Option<String>;
}

/// Closures as [`Crypto`]: `(decrypt, encrypt_key)`.
pub struct Funcs<D, E>(pub D, pub E);

impl<D: FnMut(&str) -> Option<String>, E: FnMut(&str, &str) -> Option<String>> Crypto for Funcs<D, E> {
    fn decrypt(&mut self, armored: &str) -> Option<String> {
        (self.0)(armored)
    }
    fn encrypt_key(&mut self, key: &str, text: &str) -> Option<String> {
        (self.1)(key, text)
    }
}

/// What the engine reads besides the message.
pub struct Env<'a> {
    pub cfg: &'a Config,
    pub policy: &'a Policy,
    /// The hosted domain the message came in at (`remailer@D`, or the nym's).
    pub domain: &'a str,
    /// Seconds since the epoch.
    pub now: i64,
    /// The `[send] blocklist` entries.
    pub blocklist: &'a [String],
    /// Known remailers (lowercase addresses) for `middleman`.
    pub known: &'a [String],
}

/// One item to queue, `delay` seconds (Latent-Time) after arrival; the
/// shell adds the `[delivery]` latency.
#[derive(Debug, Clone)]
pub struct Output {
    pub item: OutItem,
    pub delay: i64,
}

/// All that came of one incoming message: an outcome per message
/// processed (the first is the message itself, then cut segments) and
/// the items to queue.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub outputs: Vec<Output>,
    /// Cut segments left out by `max_cut_segments`.
    pub segments_dropped: usize,
}

impl Run {
    /// The outcome of the incoming message itself, for the log line.
    pub fn outcome(&self) -> Outcome {
        self.outcomes.first().copied().unwrap_or(Outcome::NoDestination)
    }
}

/// Run the engine on one incoming message. `header` holds its header
/// fields (empty for a reply-block run), `body` its body.
pub fn run(
    env: &Env,
    entry: Entry,
    header: &[(String, String)],
    body: &str,
    crypto: &mut dyn Crypto,
    rng: &mut dyn RngCore,
) -> Run {
    let mut out = Run::default();
    let body = t1::normalise(body);
    let first = t1::decode_single_part(header, &body);
    // Messages still to process: the incoming one, then cut segments.
    let mut queue: std::collections::VecDeque<(bool, String)> = std::collections::VecDeque::new();
    queue.push_back((true, first));
    // Segments per incoming message, the message itself included.
    let mut budget = env.policy.max_cut_segments.max(1) - 1;
    while let Some((is_first, text)) = queue.pop_front() {
        let hdr: &[(String, String)] = if is_first { header } else { &[] };
        let mut segments = Vec::new();
        let r = one(env, entry, hdr, text, crypto, rng, &mut segments);
        for s in segments {
            if budget > 0 {
                budget -= 1;
                queue.push_back((false, s));
            } else {
                out.segments_dropped += 1;
            }
        }
        match r {
            Ok((o, outcome)) => {
                out.outputs.extend(o);
                out.outcomes.push(outcome);
            }
            Err(outcome) => out.outcomes.push(outcome),
        }
    }
    out
}

/// The directives of one message, in order.
#[derive(Default)]
struct Directives(Vec<Directive>);

impl Directives {
    fn add(&mut self, name: &str, value: &str) {
        self.0.push(t1::directive(name, value));
    }
    fn has(&self, f: impl Fn(&Directive) -> bool) -> bool {
        self.0.iter().any(f)
    }
    fn last<T>(&self, f: impl Fn(&Directive) -> Option<T>) -> Option<T> {
        self.0.iter().rev().find_map(f)
    }
}

/// Read the directive block of one level (10.2 step 2): after blank
/// lines, a `::` line and its fields up to a blank line; after a
/// decryption also leading field lines without `::`. Returns where the
/// rest of the text starts.
fn read_level(text: &str, decrypted: bool, dirs: &mut Directives) -> usize {
    let mut lines = t1::lines_with_offsets(text).peekable();
    while lines.peek().is_some_and(|(_, l)| t1::is_blank(t1::bare(l))) {
        lines.next();
    }
    let Some(&(at, first)) = lines.peek() else { return text.len() };
    let bare_fields = decrypted && !t1::is_colons(first) && t1::field(first).is_some();
    if !t1::is_colons(first) && !bare_fields {
        return at;
    }
    if !bare_fields {
        lines.next();
    }
    for (at, line) in lines {
        if t1::is_blank(t1::bare(line)) {
            return at + line.len();
        }
        match t1::field(line) {
            Some((name, value)) => dirs.add(name, value),
            // Leading fields without `::` end at the first line that is
            // not one; inside a `::` block other lines are ignored.
            None if bare_fields => return at,
            None => {}
        }
    }
    text.len()
}

type One = Result<(Vec<Output>, Outcome), Outcome>;

/// One message (the incoming one or a cut segment).
fn one(
    env: &Env,
    entry: Entry,
    header: &[(String, String)],
    mut text: String,
    crypto: &mut dyn Crypto,
    rng: &mut dyn RngCore,
    segments: &mut Vec<String>,
) -> One {
    let p = env.policy;
    let mut dirs = Directives::default();
    // Step 1: directives in the real header, only without pgp_only.
    if entry == Entry::Remailer && !p.pgp_only {
        for (n, v) in header {
            dirs.add(n, v);
        }
    }
    let mut layers = 0usize;
    let rest_at = loop {
        let rest_at = read_level(&text, layers > 0, &mut dirs);
        if !dirs.has(|d| *d == Directive::Encrypted) {
            break rest_at;
        }
        // Step 3: decrypt the first armored message of what remains.
        if layers >= p.max_layers {
            return Err(Outcome::TooManyLayers);
        }
        let rest = &text[rest_at..];
        let Some((s, e)) = t1::find_message(rest) else { return Err(Outcome::LayerWithoutMessage) };
        let Some(mut plain) = crypto.decrypt(&rest[s..e]) else { return Err(Outcome::LayerUndecryptable) };
        plain = t1::normalise(&plain);
        if !plain.ends_with('\n') {
            plain.push('\n');
        }
        plain.push_str(&rest[e..]);
        text = plain;
        layers += 1;
        // The forgetting rule: only the innermost encryption's directives
        // count, so text around a ciphertext cannot add recipients.
        dirs = Directives::default();
    };
    // Step 4.
    if entry == Entry::Remailer && p.pgp_only && layers == 0 {
        return Err(Outcome::PgpOnlyDropped);
    }
    if dirs.has(|d| *d == Directive::Unsupported) {
        return Err(Outcome::UnsupportedDirective);
    }
    let mut rest = text[rest_at..].to_string();
    // Step 5: Cutmarks, ##, Encrypt-Key.
    if let Some(mark) = dirs.last(|d| match d {
        Directive::Cutmarks(m) if !m.trim().is_empty() => Some(m.trim().to_string()),
        _ => None,
    }) {
        // One more than the cap, so the caller sees that some were left out.
        let (mut pieces, _) = t1::cut(&rest, &mark, p.max_cut_segments.saturating_add(1));
        let this = pieces.remove(0);
        segments.extend(pieces);
        rest = this;
    }
    let mail: Vec<&str> = dirs
        .0
        .iter()
        .filter_map(|d| if let Directive::MailTo(v) = d { Some(v.as_str()) } else { None })
        .collect();
    let post: Vec<&str> = dirs
        .0
        .iter()
        .filter_map(|d| if let Directive::PostTo(v) = d { Some(v.as_str()) } else { None })
        .collect();
    let null = dirs.has(|d| *d == Directive::Null);
    let kinds = usize::from(!mail.is_empty()) + usize::from(!post.is_empty()) + usize::from(null);
    if kinds == 0 {
        return Err(Outcome::NoDestination);
    }
    if kinds > 1 {
        return Err(Outcome::MixedDestinations);
    }
    let is_post = !post.is_empty();
    let (pasted, mut body) = match t1::paste(&rest, is_post) {
        Some((p, b)) => (p, b.to_string()),
        None => (t1::Pasted::default(), rest.trim_start_matches('\n').to_string()),
    };
    if pasted.drop {
        return Err(Outcome::PastedFieldDropped);
    }
    if let Some(key) =
        dirs.last(|d| if let Directive::EncryptKey(k) = d { Some(k.trim().to_string()) } else { None })
    {
        if !key.is_empty() {
            let (clear, secret) = t1::split_stars(&body);
            let Some(armored) = crypto.encrypt_key(&key, secret) else {
                return Err(Outcome::EncryptKeyFailed);
            };
            let mut b = clear.to_string();
            b.push_str("**\n");
            b.push_str(&armored);
            if !b.ends_with('\n') {
                b.push('\n');
            }
            body = b;
        }
    }
    // Step 6: destination and exit policy.
    let dest = if null {
        return Ok((Vec::new(), Outcome::NullDiscarded));
    } else if is_post {
        let Some(groups) = t1::parse_newsgroups(&post.join(",")) else { return Err(Outcome::BadNewsgroups) };
        if groups.len() >= 6 {
            return Err(Outcome::BadNewsgroups);
        }
        if entry == Entry::Remailer && p.middleman {
            return Err(Outcome::MiddlemanRefused);
        }
        if !p.post {
            return Err(Outcome::PostingOff);
        }
        if groups.iter().any(|g| t1::group_blocked(&p.blocked_groups, g)) {
            return Err(Outcome::GroupBlocked);
        }
        Dest::Post(groups)
    } else {
        let Ok(to) = t1::parse_addresses(&mail.join(",")) else { return Err(Outcome::BadRecipient) };
        if to.is_empty() {
            return Err(Outcome::BadRecipient);
        }
        if to.len() > p.max_recipients {
            return Err(Outcome::RemailTooManyRecipients);
        }
        let to: Vec<String> =
            to.into_iter().filter(|a| !crate::protocol::send_request::blocked(env.blocklist, a)).collect();
        if to.is_empty() {
            return Err(Outcome::DestinationBlocked);
        }
        if entry == Entry::Remailer && p.middleman {
            let ours = |a: &str| {
                a.split_once('@').is_some_and(|(l, d)| l.eq_ignore_ascii_case("remailer") && env.cfg.hosts(d))
            };
            let to: Vec<String> = to
                .into_iter()
                .filter(|a| ours(a) || env.known.iter().any(|k| k.eq_ignore_ascii_case(a)))
                .collect();
            if to.is_empty() {
                return Err(Outcome::MiddlemanRefused);
            }
            Dest::Mail(to)
        } else {
            Dest::Mail(to)
        }
    };
    // Latent-Time (10.4).
    let mut delay = 0i64;
    if let Some(l) = dirs.last(|d| if let Directive::LatentTime(v) = d { t1::parse_latent(v) } else { None })
    {
        delay = l.delay(env.now).min(p.max_latency);
        if l.random && delay > 0 {
            delay = (rng.next_u64() % (delay as u64 + 1)) as i64;
        }
    }
    delay = delay.clamp(0, p.max_latency.max(0));
    let hash_subject = dirs.has(|d| *d == Directive::HashSubject(true));
    let subject = match (pasted.subject, hash_subject) {
        (Some(s), true) => {
            let mut iv = [0u8; 8];
            rng.fill_bytes(&mut iv);
            Some(crate::protocol::hsub::hsub_with_iv(s.as_bytes(), &iv, env.cfg.limits.hsub_length))
        }
        (s, _) => s,
    };
    let item = output(env, &dest, subject, &pasted.fields, &body, rng);
    let outcome = if is_post { Outcome::RemailerPosted } else { Outcome::Remailed };
    Ok((vec![Output { item, delay }], outcome))
}

enum Dest {
    Mail(Vec<String>),
    Post(Vec<String>),
}

/// The outgoing message (10.8). No incoming header survives except by
/// `##`; Date is added at hand-off; no Received.
fn output(
    env: &Env,
    dest: &Dest,
    subject: Option<String>,
    fields: &[String],
    body: &str,
    rng: &mut dyn RngCore,
) -> OutItem {
    let d = env.domain;
    let p = env.policy;
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let msgid = format!("<{}@{d}>", hex::encode(id));
    let from = if p.from.trim().is_empty() { format!("Anonymous <nobody@{d}>") } else { t1::clean(&p.from) };
    let comments = if p.comments.trim().is_empty() {
        format!("This message was remailed anonymously. Report abuse to abuse@{d}")
    } else {
        t1::clean(&p.comments)
    };
    let mut h = String::new();
    if let Dest::Post(_) = dest {
        h.push_str(&format!("Path: {}\n", env.cfg.news.path));
    }
    h.push_str(&format!("From: {from}\n"));
    match dest {
        Dest::Mail(to) => h.push_str(&format!("To: {}\n", to.join(", "))),
        Dest::Post(g) => h.push_str(&format!("Newsgroups: {}\n", g.join(","))),
    }
    match (&subject, dest) {
        (Some(s), _) => h.push_str(&format!("Subject: {s}\n")),
        (None, Dest::Post(_)) => h.push_str("Subject: (no subject)\n"),
        (None, Dest::Mail(_)) => {}
    }
    h.push_str(&format!("Comments: {comments}\nMessage-ID: {msgid}\n"));
    for f in fields {
        h.push_str(f);
        h.push('\n');
    }
    if let Dest::Post(_) = dest {
        let n = &env.cfg.news;
        h.push_str(&format!(
            "Injection-Info: {}; mail-complaints-to=\"{}\"\n",
            n.injection_host, n.complaints_to
        ));
    }
    h.push('\n');
    let mut bytes = h.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    let (kind, env_to) = match dest {
        Dest::Mail(to) => (Kind::Mail, to.clone()),
        Dest::Post(_) => (Kind::News, Vec::new()),
    };
    OutItem { kind, env_from: format!("nobody@{d}"), env_to, msgid, body: bytes, nym: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    /// A fake server key: `-----BEGIN PGP MESSAGE-----\nHEX\n-----END...`
    /// "decrypts" to the hex-decoded line between the armor lines; `BAD`
    /// does not decrypt.
    fn wrap(plain: &str) -> String {
        format!("-----BEGIN PGP MESSAGE-----\n{}\n-----END PGP MESSAGE-----\n", hex::encode(plain))
    }

    struct Fake {
        decrypted: usize,
    }

    impl Crypto for Fake {
        fn decrypt(&mut self, armored: &str) -> Option<String> {
            let inner = armored.lines().nth(1)?;
            if inner == "BAD" {
                return None;
            }
            self.decrypted += 1;
            String::from_utf8(hex::decode(inner).ok()?).ok()
        }
        fn encrypt_key(&mut self, key: &str, text: &str) -> Option<String> {
            Some(format!(
                "-----BEGIN PGP MESSAGE-----\nEK[{key}]{}\n-----END PGP MESSAGE-----\n",
                text.replace('\n', "|")
            ))
        }
    }

    struct T {
        cfg: Config,
        policy: Policy,
        now: i64,
        blocklist: Vec<String>,
        known: Vec<String>,
    }

    impl T {
        fn new() -> T {
            T {
                cfg: Config::for_tests(&["r1.test", "nym.test"]),
                policy: Policy::default(),
                now: 1_800_000_000,
                blocklist: vec![],
                known: vec!["remailer@r2.test".into()],
            }
        }
        fn open(mut self) -> T {
            self.policy.pgp_only = false;
            self.policy.middleman = false;
            self
        }
        fn run_h(&self, entry: Entry, header: &[(&str, &str)], body: &str) -> (Run, usize) {
            let env = Env {
                cfg: &self.cfg,
                policy: &self.policy,
                domain: "r1.test",
                now: self.now,
                blocklist: &self.blocklist,
                known: &self.known,
            };
            let h: Vec<(String, String)> =
                header.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            let mut c = Fake { decrypted: 0 };
            let mut rng = StepRng::new(7, 11);
            let r = run(&env, entry, &h, body, &mut c, &mut rng);
            (r, c.decrypted)
        }
        fn run(&self, entry: Entry, body: &str) -> Run {
            self.run_h(entry, &[], body).0
        }
    }

    fn text(o: &Output) -> String {
        String::from_utf8(o.item.body.clone()).unwrap()
    }

    #[test]
    fn a_colons_block_names_the_recipient() {
        let t = T::new().open();
        let r = t.run(Entry::Remailer, "::\nAnon-To: quill@box.test\n\nHello\n");
        assert_eq!(r.outcomes, vec![Outcome::Remailed]);
        let o = &r.outputs[0];
        assert_eq!(o.item.env_to, vec!["quill@box.test"]);
        assert_eq!(o.item.env_from, "nobody@r1.test");
        assert_eq!(o.delay, 0);
        let s = text(o);
        assert!(s.starts_with("From: Anonymous <nobody@r1.test>\nTo: quill@box.test\nComments: "), "{s}");
        assert!(s.ends_with("\n\nHello\n"), "{s}");
        assert!(!s.contains("Subject:") && !s.contains("Date:") && !s.contains("Received:"), "{s}");
    }

    #[test]
    fn message_id_is_128_random_bits_in_our_domain() {
        let t = T::new().open();
        let r = t.run(Entry::Remailer, "::\nAnon-To: quill@box.test\n\nx\n");
        let id = &r.outputs[0].item.msgid;
        let hexpart = id.strip_prefix('<').unwrap().strip_suffix("@r1.test>").unwrap();
        assert_eq!(hexpart.len(), 32);
        assert!(hexpart.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(text(&r.outputs[0]).contains(&format!("Message-ID: {id}\n")));
    }

    #[test]
    fn no_incoming_header_survives() {
        let t = T::new().open();
        let (r, _) = t.run_h(
            Entry::Remailer,
            &[
                ("From", "me@home.example"),
                ("Received", "from home"),
                ("Subject", "secret"),
                ("Anon-To", "quill@box.test"),
            ],
            "x\n",
        );
        assert_eq!(r.outcome(), Outcome::Remailed);
        let s = text(&r.outputs[0]);
        assert!(!s.contains("home") && !s.contains("secret"), "{s}");
    }

    #[test]
    fn real_header_directives_count_only_without_pgp_only() {
        let mut t = T::new().open();
        let (r, _) = t.run_h(Entry::Remailer, &[("Anon-To", "quill@box.test")], "x\n");
        assert_eq!(r.outcome(), Outcome::Remailed);
        t.policy.pgp_only = true;
        let body = format!("::\nEncrypted: PGP\n\n{}", wrap("::\nNull: x\n\n"));
        let (r, _) = t.run_h(Entry::Remailer, &[("Anon-To", "quill@box.test")], &body);
        // The header's Anon-To is forgotten after the decryption anyway,
        // and never read with pgp_only.
        assert_eq!(r.outcome(), Outcome::NullDiscarded);
    }

    #[test]
    fn pgp_only_drops_what_was_not_encrypted() {
        let t = T::new();
        let r = t.run(Entry::Remailer, "::\nAnon-To: remailer@r2.test\n\nx\n");
        assert_eq!(r.outcome(), Outcome::PgpOnlyDropped);
        assert!(r.outputs.is_empty());
        // A reply-block run skips pgp_only (and middleman).
        let r = t.run(Entry::ReplyBlock, "::\nAnon-To: quill@box.test\n\nx\n");
        assert_eq!(r.outcome(), Outcome::Remailed);
    }

    #[test]
    fn encrypted_layers_are_peeled_and_text_after_the_armor_kept() {
        let t = T::new();
        let inner = "::\nAnon-To: remailer@r2.test\n\npayload for r2\n";
        let body = format!("::\nEncrypted: PGP\n\n{}after the armor\n", wrap(inner));
        let (r, n) = t.run_h(Entry::Remailer, &[], &body);
        assert_eq!(n, 1);
        assert_eq!(r.outcome(), Outcome::Remailed);
        assert_eq!(r.outputs[0].item.env_to, vec!["remailer@r2.test"]);
        assert!(text(&r.outputs[0]).ends_with("\n\npayload for r2\nafter the armor\n"));
    }

    #[test]
    fn after_a_decryption_bare_fields_count() {
        let t = T::new();
        let body = format!("::\nEncrypted: PGP\n\n{}", wrap("Anon-To: remailer@r2.test\n\nbody"));
        let r = t.run(Entry::Remailer, &body);
        assert_eq!(r.outcome(), Outcome::Remailed);
        assert!(text(&r.outputs[0]).ends_with("\n\nbody\n"));
        // Not before one: a bare field line at the top is body.
        let r = T::new().open().run(Entry::Remailer, "Anon-To: quill@box.test\n\nx\n");
        assert_eq!(r.outcome(), Outcome::NoDestination);
    }

    #[test]
    fn one_colons_block_per_level_the_next_is_payload() {
        let t = T::new().open();
        let r = t.run(
            Entry::Remailer,
            "::\nAnon-To: remailer@r2.test\n\n::\nEncrypted: PGP\n\n-----BEGIN PGP MESSAGE-----\n",
        );
        assert_eq!(r.outcome(), Outcome::Remailed);
        assert!(text(&r.outputs[0]).contains("\n\n::\nEncrypted: PGP\n"));
    }

    #[test]
    fn forgetting_rule_outer_directives_do_not_survive_a_decryption() {
        let t = T::new().open();
        // The outer block names a recipient beside Encrypted; the inner
        // layer names another. Only the inner one counts.
        let body = format!(
            "::\nAnon-To: spy@evil.test\nEncrypted: PGP\n\n{}",
            wrap("::\nAnon-To: quill@box.test\n\nx")
        );
        let r = t.run(Entry::Remailer, &body);
        assert_eq!(r.outputs[0].item.env_to, vec!["quill@box.test"]);
        // And an inner layer without a destination is not rescued by the
        // outer one.
        let body = format!("::\nAnon-To: spy@evil.test\nEncrypted: PGP\n\n{}", wrap("just text"));
        assert_eq!(t.run(Entry::Remailer, &body).outcome(), Outcome::NoDestination);
    }

    fn nested(depth: usize, core: &str) -> String {
        let mut s = core.to_string();
        for _ in 0..depth {
            s = format!("::\nEncrypted: PGP\n\n{}", wrap(&s));
        }
        s
    }

    #[test]
    fn layer_cap_at_most_max_layers_decryptions() {
        let t = T::new();
        let core = "::\nAnon-To: remailer@r2.test\n\nx";
        let (r, n) = t.run_h(Entry::Remailer, &[], &nested(8, core));
        assert_eq!((r.outcome(), n), (Outcome::Remailed, 8));
        let (r, n) = t.run_h(Entry::Remailer, &[], &nested(9, core));
        assert_eq!((r.outcome(), n), (Outcome::TooManyLayers, 8));
        assert!(r.outputs.is_empty());
    }

    #[test]
    fn an_undecryptable_or_missing_layer_drops() {
        let t = T::new();
        let r = t.run(
            Entry::Remailer,
            "::\nEncrypted: PGP\n\n-----BEGIN PGP MESSAGE-----\nBAD\n-----END PGP MESSAGE-----\n",
        );
        assert_eq!(r.outcome(), Outcome::LayerUndecryptable);
        let r = t.run(Entry::Remailer, "::\nEncrypted: PGP\n\nno armor here\n");
        assert_eq!(r.outcome(), Outcome::LayerWithoutMessage);
    }

    #[test]
    fn destination_exactly_one_kind() {
        let mut t = T::new().open();
        t.policy.post = true;
        assert_eq!(t.run(Entry::Remailer, "::\nSubject: x\n\nbody\n").outcome(), Outcome::NoDestination);
        assert_eq!(
            t.run(Entry::Remailer, "::\nAnon-To: a@b.test\nPost-To: alt.test\n\nx\n").outcome(),
            Outcome::MixedDestinations
        );
        assert_eq!(
            t.run(Entry::Remailer, "::\nAnon-To: a@b.test\nNull:\n\nx\n").outcome(),
            Outcome::MixedDestinations
        );
        let r = t.run(Entry::Remailer, "::\nNull:\n\nx\n");
        assert_eq!((r.outcome(), r.outputs.len()), (Outcome::NullDiscarded, 0));
    }

    #[test]
    fn repeated_mail_directives_are_joined_and_capped() {
        let t = T::new().open();
        let r = t.run(Entry::Remailer, "::\nAnon-To: a@b.test\nRemail-To: c@d.test, <e@f.test>\n\nx\n");
        assert_eq!(r.outputs[0].item.env_to, vec!["a@b.test", "c@d.test", "e@f.test"]);
        let six = (0..6).map(|i| format!("r{i}@x.test")).collect::<Vec<_>>().join(",");
        let r = t.run(Entry::Remailer, &format!("::\nAnon-To: {six}\n\nx\n"));
        assert_eq!(r.outcome(), Outcome::RemailTooManyRecipients);
        let r = t.run(Entry::Remailer, "::\nAnon-To: a@[127.0.0.1]\n\nx\n");
        assert_eq!(r.outcome(), Outcome::BadRecipient);
        let r = t.run(Entry::Remailer, "::\nAnon-To: Someone <a@b.test>\n\nx\n");
        assert_eq!(r.outcome(), Outcome::BadRecipient);
    }

    #[test]
    fn unsupported_directives_drop_the_message() {
        let t = T::new().open();
        for d in ["Test-To: a@b.test", "Remix-To: x", "Rand-Hop: 2", "Max-Size: 10", "Encrypt-Subject: k"] {
            let r = t.run(Entry::Remailer, &format!("::\nAnon-To: a@b.test\n{d}\n\nx\n"));
            assert_eq!(r.outcome(), Outcome::UnsupportedDirective, "{d}");
        }
        let r = t.run(Entry::Remailer, "::\nAnon-To: a@b.test\nInflate: 10\nX-Anon-To: z@z.test\n\nx\n");
        assert_eq!(r.outputs[0].item.env_to, vec!["a@b.test"]);
    }

    #[test]
    fn latent_time_delays_and_is_clamped() {
        let mut t = T::new().open();
        t.now = 1_800_000_000 - 1_800_000_000 % 86400 + 17 * 3600 + 30 * 60; // 17:30 UTC
        let d = |t: &T, v: &str| {
            t.run(Entry::Remailer, &format!("::\nAnon-To: a@b.test\nLatent-Time: {v}\n\nx\n")).outputs[0]
                .delay
        };
        assert_eq!(d(&t, "+1:30"), 5400);
        assert_eq!(d(&t, "18:00"), 1800);
        assert_eq!(d(&t, "17:00"), 84600);
        assert_eq!(d(&t, "nonsense"), 0);
        assert_eq!(d(&t, "+99:00"), 86400);
        t.policy.max_latency = 0;
        assert_eq!(d(&t, "+99:00"), 0);
        t.policy.max_latency = 600;
        // r: uniform in [0, delay], from the injected source.
        let r = d(&t, "+0:10r");
        assert!((0..=600).contains(&r));
        assert_ne!(r, 600);
    }

    #[test]
    fn hash_paste_sets_subject_and_passes_allowed_fields() {
        let t = T::new().open();
        let r = t.run(
            Entry::Remailer,
            "::\nAnon-To: a@b.test\n\n##\nSubject: tag-7f3a\nReply-To: quill@nym.test\nFrom: me@home.test\nX-Trace: x\n\nbody\n",
        );
        let s = text(&r.outputs[0]);
        assert!(s.contains("\nSubject: tag-7f3a\n"), "{s}");
        assert!(s.contains("\nReply-To: quill@nym.test\n"), "{s}");
        assert!(!s.contains("me@home") && !s.contains("X-Trace"), "{s}");
        assert!(s.ends_with("\n\nbody\n"));
    }

    #[test]
    fn hash_paste_control_or_six_groups_drop_the_message() {
        let mut t = T::new().open();
        t.policy.post = true;
        let r = t.run(Entry::Remailer, "::\nAnon-To: a@b.test\n\n##\nControl: cancel <x@y>\n\nx\n");
        assert_eq!(r.outcome(), Outcome::PastedFieldDropped);
        let r =
            t.run(Entry::Remailer, "::\nAnon-To: a@b.test\n\n##\nNewsgroups: a.a,b.b,c.c,d.d,e.e,f.f\n\nx\n");
        assert_eq!(r.outcome(), Outcome::PastedFieldDropped);
        // Newsgroups pasted into a post is left out, not obeyed.
        let r = t.run(Entry::Remailer, "::\nPost-To: alt.test\n\n##\nNewsgroups: alt.other\n\nx\n");
        let s = text(&r.outputs[0]);
        assert!(s.contains("Newsgroups: alt.test\n") && !s.contains("alt.other"), "{s}");
    }

    #[test]
    fn hash_subject_turns_the_pasted_subject_into_its_hsub() {
        let t = T::new().open();
        let r =
            t.run(Entry::Remailer, "::\nAnon-To: a@b.test\nHash-Subject: yes\n\n##\nSubject: panda\n\nx\n");
        let s = text(&r.outputs[0]);
        let subj = s.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap();
        assert_eq!(subj.len(), 48);
        assert!(crate::protocol::hsub::matches(subj, b"panda"));
    }

    #[test]
    fn encrypt_key_encrypts_after_the_stars_line() {
        let t = T::new().open();
        let r = t.run(
            Entry::Remailer,
            "::\nAnon-To: a@b.test\nEncrypt-Key: k1\n\n::\nEncrypted: PGP\n\n**\npayload\n",
        );
        let s = text(&r.outputs[0]);
        assert!(s.ends_with("\n\n::\nEncrypted: PGP\n\n**\n-----BEGIN PGP MESSAGE-----\nEK[k1]payload|\n-----END PGP MESSAGE-----\n"), "{s}");
        // Without a ** line, all of it; the alias names change nothing.
        let r = t.run(Entry::Remailer, "::\nAnon-To: a@b.test\nEncrypt-IDEA: k2\n\nall\n");
        assert!(text(&r.outputs[0])
            .ends_with("\n\n**\n-----BEGIN PGP MESSAGE-----\nEK[k2]all|\n-----END PGP MESSAGE-----\n"));
    }

    #[test]
    fn cutmarks_split_into_messages_and_are_capped() {
        let t = T::new().open();
        let body = "::\nAnon-To: a@b.test\nCutmarks: --\n\nfirst\n--\n::\nAnon-To: c@d.test\n\nsecond\n";
        let r = t.run(Entry::Remailer, body);
        assert_eq!(r.outcomes, vec![Outcome::Remailed, Outcome::Remailed]);
        assert!(text(&r.outputs[0]).ends_with("\n\nfirst\n"));
        assert_eq!(r.outputs[1].item.env_to, vec!["c@d.test"]);
        // A flood, nesting included: at most max_cut_segments in all.
        let seg = "::\nAnon-To: c@d.test\nCutmarks: --\n\nx\n--\n";
        let flood = format!("::\nAnon-To: a@b.test\nCutmarks: --\n\nfirst\n--\n{}", seg.repeat(50));
        let r = t.run(Entry::Remailer, &flood);
        assert_eq!(r.outputs.len(), 4, "{:?}", r.outcomes);
        assert!(r.segments_dropped > 0);
        // Nested: a segment with Cutmarks of its own spends the same budget.
        let nest = format!(
            "::\nAnon-To: a@b.test\nCutmarks: --\n\nx\n--\n::\nAnon-To: c@d.test\nCutmarks: ==\n\ny\n{}",
            "==\n::\nAnon-To: e@f.test\n\nz\n".repeat(10)
        );
        let r = t.run(Entry::Remailer, &nest);
        assert_eq!(r.outputs.len(), 4, "{:?}", r.outcomes);
        assert_eq!(r.outputs[3].item.env_to, vec!["e@f.test"]);
        assert!(r.segments_dropped > 0);
    }

    #[test]
    fn cut_segments_are_new_messages_under_pgp_only() {
        let t = T::new();
        let inner = "::\nAnon-To: remailer@r2.test\nCutmarks: --\n\nfirst\n--\n::\nAnon-To: remailer@r2.test\n\nclear\n";
        let r = t.run(Entry::Remailer, &format!("::\nEncrypted: PGP\n\n{}", wrap(inner)));
        assert_eq!(r.outcomes, vec![Outcome::Remailed, Outcome::PgpOnlyDropped]);
    }

    #[test]
    fn exit_policy_blocklist_removes_recipients() {
        let mut t = T::new().open();
        t.blocklist = vec!["@quiet.test".into()];
        let r = t.run(Entry::Remailer, "::\nAnon-To: a@quiet.test, b@b.test\n\nx\n");
        assert_eq!(r.outputs[0].item.env_to, vec!["b@b.test"]);
        let r = t.run(Entry::ReplyBlock, "::\nAnon-To: a@quiet.test\n\nx\n");
        assert_eq!(r.outcome(), Outcome::DestinationBlocked);
    }

    #[test]
    fn exit_policy_middleman_mails_only_known_remailers() {
        let mut t = T::new();
        t.policy.pgp_only = false;
        let r = t.run(Entry::Remailer, "::\nAnon-To: quill@box.test\n\nx\n");
        assert_eq!(r.outcome(), Outcome::MiddlemanRefused);
        let r = t.run(Entry::Remailer, "::\nAnon-To: Remailer@R2.test, quill@box.test\n\nx\n");
        assert_eq!(r.outputs[0].item.env_to, vec!["Remailer@r2.test"]);
        // Our own remailer@ addresses are always known.
        let r = t.run(Entry::Remailer, "::\nAnon-To: remailer@nym.test\n\nx\n");
        assert_eq!(r.outcome(), Outcome::Remailed);
        t.policy.post = true;
        assert_eq!(
            t.run(Entry::Remailer, "::\nPost-To: alt.test\n\nx\n").outcome(),
            Outcome::MiddlemanRefused
        );
        // Not for reply-block runs.
        assert_eq!(
            t.run(Entry::ReplyBlock, "::\nAnon-To: quill@box.test\n\nx\n").outcome(),
            Outcome::Remailed
        );
    }

    #[test]
    fn exit_policy_posts_need_post_and_no_blocked_group() {
        let mut t = T::new().open();
        assert_eq!(
            t.run(Entry::Remailer, "::\nAnon-Post-To: alt.test\n\nx\n").outcome(),
            Outcome::PostingOff
        );
        t.policy.post = true;
        t.policy.blocked_groups = vec!["alt.binaries.*".into()];
        assert_eq!(
            t.run(Entry::Remailer, "::\nPost-To: alt.test, alt.binaries.x\n\nx\n").outcome(),
            Outcome::GroupBlocked
        );
        let r = t.run(Entry::Remailer, "::\nPost-To: alt.test\n\nx\n");
        assert_eq!(r.outcome(), Outcome::RemailerPosted);
        let o = &r.outputs[0].item;
        assert_eq!(o.kind, Kind::News);
        let s = text(&r.outputs[0]);
        assert!(s.starts_with("Path: r1.test!not-for-mail\nFrom: Anonymous <nobody@r1.test>\nNewsgroups: alt.test\nSubject: (no subject)\n"), "{s}");
        let six = "a.a,b.b,c.c,d.d,e.e,f.f";
        assert_eq!(
            t.run(Entry::Remailer, &format!("::\nPost-To: {six}\n\nx\n")).outcome(),
            Outcome::BadNewsgroups
        );
    }

    #[test]
    fn output_from_and_comments_follow_the_settings() {
        let mut t = T::new().open();
        t.policy.from = "Remailer R1 <nobody@r1.test>".into();
        t.policy.comments = "ask abuse@r1.test".into();
        let s = text(&t.run(Entry::Remailer, "::\nAnon-To: a@b.test\n\nx\n").outputs[0]);
        assert!(
            s.starts_with("From: Remailer R1 <nobody@r1.test>\nTo: a@b.test\nComments: ask abuse@r1.test\n"),
            "{s}"
        );
        let s = text(&T::new().open().run(Entry::Remailer, "::\nAnon-To: a@b.test\n\nx\n").outputs[0]);
        assert!(
            s.contains("Comments: This message was remailed anonymously. Report abuse to abuse@r1.test\n")
        );
    }

    fn check(t: &T, block: &str) -> BlockCheck {
        let env = Env {
            cfg: &t.cfg,
            policy: &t.policy,
            domain: "nym.test",
            now: t.now,
            blocklist: &t.blocklist,
            known: &t.known,
        };
        let mut c = Fake { decrypted: 0 };
        check_block(&env, block, "quill@nym.test", &mut c, &mut StepRng::new(1, 1))
    }

    #[test]
    fn block_check_6_1_one_destination_not_blocked_not_the_nym_itself() {
        let mut t = T::new();
        t.blocklist = vec!["@quiet.test".into()];
        assert_eq!(check(&t, "::\nAnon-To: remailer@r1.test\n\n"), BlockCheck::Good);
        assert_eq!(
            check(&t, &format!("::\nEncrypted: PGP\n\n{}", wrap("Anon-To: a@b.test\n\n"))),
            BlockCheck::Good
        );
        assert_eq!(check(&t, "::\nNull:\n\n"), BlockCheck::Good);
        assert_eq!(check(&t, "just text\n\n"), BlockCheck::Invalid);
        assert_eq!(check(&t, "::\nAnon-To: a@b.test\nPost-To: alt.test\n\n"), BlockCheck::Invalid);
        assert_eq!(
            check(&t, "::\nEncrypted: PGP\n\n-----BEGIN PGP MESSAGE-----\nBAD\n-----END PGP MESSAGE-----\n"),
            BlockCheck::Invalid
        );
        assert_eq!(check(&t, "::\nAnon-To: x@quiet.test\n\n"), BlockCheck::Refused);
        assert_eq!(check(&t, "::\nAnon-To: Quill@nym.test\n\n"), BlockCheck::Loop);
        assert_eq!(check(&t, "::\nAnon-To: quill+x@NYM.test\n\n"), BlockCheck::Loop);
        assert_eq!(check(&t, "::\nAnon-To: quill@other.test\n\n"), BlockCheck::Good);
    }

    #[test]
    fn quoted_printable_bodies_are_decoded_first() {
        let t = T::new().open();
        let (r, _) = t.run_h(
            Entry::Remailer,
            &[("Content-Transfer-Encoding", "quoted-printable")],
            "::=\n\nAnon-To: a=40b.test\n\nx=3Dy\n",
        );
        assert_eq!(r.outputs[0].item.env_to, vec!["a@b.test"]);
        assert!(text(&r.outputs[0]).ends_with("\n\nx=y\n"));
    }
}
