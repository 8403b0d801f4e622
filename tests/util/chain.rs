//! Several nymgate instances on one machine joined into a chain of Type I
//! hops (REPLY-BLOCKS.md section 13): each has its own home and writes its
//! outgoing mail to its mail spool; [`Chain::route`] carries every spooled
//! mail to the instance that hosts its envelope recipient's domain (by
//! running that instance's `nymgate deliver --recipient --sender`, as an
//! MTA would), or files it under [`CAPTURE`] for the end of the chain,
//! then runs `nymgate flush` everywhere, until every spool is empty.
//!
//! Every hand-over is kept as a [`Hop`], so a test can follow one message
//! along the chain and compare what each hop received.

use std::fs;

use super::{files, run, Server};

/// The domain whose mail is captured instead of delivered.
pub const CAPTURE: &str = "box.test";

/// Most rounds of [`Chain::route`]: a loop between hops stops here.
pub const MAX_ROUNDS: usize = 40;

/// One mail as an instance's spool held it, split from its envelope.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The domain of the instance that sent it.
    pub from_instance: String,
    pub env_from: String,
    /// This recipient (one hop per envelope recipient).
    pub env_to: String,
    /// The mail without the spool's `X-Nymgate-Envelope-*` lines.
    pub mail: String,
    /// The exit code of the receiving `deliver`; `None` when captured.
    pub exit: Option<i32>,
    /// The receiving deliver's log lines (stderr).
    pub log: String,
}

impl Hop {
    pub fn header(&self) -> &str {
        self.mail.split_once("\n\n").map_or(self.mail.as_str(), |(h, _)| h)
    }
    pub fn body(&self) -> &str {
        self.mail.split_once("\n\n").map_or("", |(_, b)| b)
    }
    /// The value of the first header field `name` (any case).
    pub fn field(&self, name: &str) -> Option<String> {
        self.header().lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// The instances, by domain (each instance hosts one).
pub struct Chain {
    pub nodes: Vec<(String, Server)>,
    /// Every hand-over so far, in order.
    pub hops: Vec<Hop>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    pub fn new() -> Chain {
        Chain { nodes: Vec::new(), hops: Vec::new() }
    }

    /// Add an instance hosting `domain`: mail to the spool, no latency,
    /// Latent-Time clamped to 0, the remailer as `remailer` says (set
    /// more with [`Chain::server`] and [`Server::set`]).
    pub fn add(&mut self, domain: &str, remailer: bool) -> &Server {
        let s = Server::new(&[domain]);
        s.set("mail", "transport", "\"spool\"");
        s.set("delivery", "latency_min", "0");
        s.set("delivery", "latency_max", "0");
        s.set("remailer", "max_latency", "0");
        if remailer {
            s.set("remailer", "enabled", "true");
        }
        self.nodes.push((domain.to_string(), s));
        &self.nodes.last().unwrap().1
    }

    pub fn server(&self, domain: &str) -> &Server {
        &self.nodes.iter().find(|(d, _)| d == domain).unwrap_or_else(|| panic!("no instance {domain}")).1
    }

    /// The mails captured at [`CAPTURE`] so far.
    pub fn captured(&self) -> Vec<&Hop> {
        self.hops.iter().filter(|h| h.exit.is_none()).collect()
    }

    /// Deliver `raw` from outside to `rcpt` at its instance (as the first
    /// MTA hop would); the exit code and log.
    pub fn inject(&mut self, rcpt: &str, sender: &str, raw: &[u8]) -> (i32, String) {
        let (code, log) = self.deliver(rcpt, sender, raw);
        self.hops.push(Hop {
            from_instance: "outside".into(),
            env_from: sender.into(),
            env_to: rcpt.into(),
            mail: String::from_utf8_lossy(raw).into_owned(),
            exit: Some(code),
            log: log.clone(),
        });
        (code, log)
    }

    fn deliver(&self, rcpt: &str, sender: &str, raw: &[u8]) -> (i32, String) {
        let domain = rcpt.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        let s = self.server(&domain);
        let mut c = s.cmd();
        c.env("NYMGATE_LOG_STDERR", "1");
        c.args(["deliver", "--recipient", rcpt, "--sender", sender]);
        let out = run(&mut c, Some(raw));
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!log.contains("panicked"), "deliver at {domain} panicked: {log}");
        (out.status.code().unwrap_or(-1), log)
    }

    /// Carry mail until every spool is empty (at most [`MAX_ROUNDS`]
    /// rounds; more is a loop and fails the test). Every receiving
    /// `deliver` must exit with `expect`. Returns the hops of this call.
    pub fn route(&mut self, expect: i32) -> Vec<Hop> {
        self.route_with(Some(expect))
    }

    /// [`Chain::route`] without a check of the exit codes: each hop keeps
    /// its own (a bounce of the MTA is not simulated; the mail stops).
    pub fn route_any(&mut self) -> Vec<Hop> {
        self.route_with(None)
    }

    fn route_with(&mut self, expect: Option<i32>) -> Vec<Hop> {
        let first = self.hops.len();
        for _ in 0..MAX_ROUNDS {
            let mut moved = 0;
            for i in 0..self.nodes.len() {
                let (from, spool) = (self.nodes[i].0.clone(), self.nodes[i].1.mail_spool());
                for p in files(&spool, "eml") {
                    let text = fs::read_to_string(&p).unwrap();
                    fs::remove_file(&p).unwrap();
                    moved += 1;
                    let (env_from, env_to, mail) = split_envelope(&text);
                    for to in env_to {
                        let domain =
                            to.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
                        let mut hop = Hop {
                            from_instance: from.clone(),
                            env_from: env_from.clone(),
                            env_to: to.clone(),
                            mail: mail.clone(),
                            exit: None,
                            log: String::new(),
                        };
                        if domain != CAPTURE {
                            let (code, log) = self.deliver(&to, &env_from, mail.as_bytes());
                            if let Some(e) = expect {
                                assert_eq!(code, e, "deliver {to} from {from}: {log}");
                            }
                            hop.exit = Some(code);
                            hop.log = log;
                        }
                        self.hops.push(hop);
                    }
                }
            }
            for (_, s) in &self.nodes {
                s.flush();
            }
            let waiting = self.nodes.iter().any(|(_, s)| !files(&s.mail_spool(), "eml").is_empty());
            if moved == 0 && !waiting {
                return self.hops[first..].to_vec();
            }
        }
        panic!("mail still moving after {MAX_ROUNDS} rounds: a loop between hops?");
    }
}

/// A spool file: its `X-Nymgate-Envelope-From`/`-To` lines (on top), and
/// the mail after them.
pub fn split_envelope(text: &str) -> (String, Vec<String>, String) {
    let mut from = String::new();
    let mut to = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        if let Some(v) = line.strip_prefix("X-Nymgate-Envelope-From: ") {
            from = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("X-Nymgate-Envelope-To: ") {
            to.extend(v.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()));
        } else {
            break;
        }
        rest = after;
    }
    (from, to, rest.to_string())
}

#[test]
fn envelope_lines_are_split_from_the_mail() {
    let (f, t, m) =
        split_envelope("X-Nymgate-Envelope-From: a@b\nX-Nymgate-Envelope-To: c@d, e@f\nFrom: x\n\nbody\n");
    assert_eq!(
        (f.as_str(), t, m.as_str()),
        ("a@b", vec!["c@d".to_string(), "e@f".to_string()], "From: x\n\nbody\n")
    );
}
