//! SMTP AUTH (PLAIN and LOGIN) only over TLS, and NNTP STARTTLS
//! (RFC 4642), against the scripted servers of `util::mail` and
//! `util::news` with the private CA of `util::tls`.

use std::fs;
use std::process::Output;

use super::proxy::{env, news};
use crate::util::mail::{FakeSmtp, SmtpOpts};
use crate::util::news::NewsTls;
use crate::util::smtp_base64;
use crate::util::tls::tls_setup;
use crate::util::{nym, run};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn smtp_logs_in_only_over_tls_and_never_shows_the_password() {
    let e = env();
    let (cfg, ca_file) = tls_setup(e.t.path());
    let ca = ca_file.to_str().unwrap();
    let (user, pass) = ("us@er", "p:ss/w0rd%");
    let login = Some((user.to_string(), pass.to_string()));
    let starttls = FakeSmtp::start(SmtpOpts {
        tls: Some(cfg.clone()),
        mechanisms: vec!["PLAIN", "LOGIN"],
        login: login.clone(),
        ..Default::default()
    });
    let via = format!("smtp+starttls://us%40er:p%3Ass%2Fw0rd%25@localhost:{}", starttls.port);
    let out = e.run(&["config", "alice@nym.test", "--via", &via, "--ca-file", ca]);
    assert!(out.status.success(), "{out:?}");
    assert!(!text(&out).contains("w0rd") && !text(&out).contains(&smtp_base64(pass)), "{}", text(&out));
    let s = &starttls.sessions()[0];
    assert_eq!(s.authed.as_deref(), Some(user), "{s:?}");
    assert!(!s.auth_in_clear && s.cmds.iter().any(|c| c.starts_with("AUTH PLAIN ")), "{s:?}");
    assert!(s.data.contains("To: config@nym.test\r\n"));

    // Implicit TLS, a server with LOGIN only, the login from config.toml.
    let smtps = FakeSmtp::start(SmtpOpts {
        tls: Some(cfg.clone()),
        implicit: true,
        mechanisms: vec!["LOGIN"],
        login: login.clone(),
    });
    fs::write(e.home.join("config.toml"), format!("smtp_user = \"{user}\"\nsmtp_password = \"{pass}\"\n"))
        .unwrap();
    let via = format!("smtps://localhost:{}", smtps.port);
    e.ok(&["config", "alice@nym.test", "--via", &via, "--ca-file", ca]);
    let s = &smtps.sessions()[0];
    assert_eq!(s.authed.as_deref(), Some(user));
    assert!(s.cmds.contains(&"AUTH LOGIN".to_string()) && s.data.contains("To: config@nym.test\r\n"));

    // A wrong password: the server's refusal, and nothing of the secret.
    fs::write(
        e.home.join("config.toml"),
        format!("smtp_user = \"{user}\"\nsmtp_password = \"wr0ng-secret\"\n"),
    )
    .unwrap();
    let via = format!("smtp+starttls://localhost:{}", starttls.port);
    let out = e.run(&["config", "alice@nym.test", "--via", &via, "--ca-file", ca]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("535") && t.contains("AUTH PLAIN"), "{t}");
    assert!(!t.contains("wr0ng") && !t.contains(&smtp_base64(&format!("\0{user}\0wr0ng-secret"))), "{t}");
    let s = &starttls.sessions()[1];
    assert_eq!((s.failed_logins, s.data.as_str()), (1, ""), "{s:?}");

    // No TLS: refused before connecting, although the server offers AUTH.
    let clear = FakeSmtp::start(SmtpOpts { mechanisms: vec!["PLAIN", "LOGIN"], login, ..Default::default() });
    for via in [
        format!("smtp://us%40er:secret@127.0.0.1:{}", clear.port),
        format!("smtp://127.0.0.1:{}", clear.port),
    ] {
        // The second takes the login from config.toml.
        let out = e.run(&["config", "alice@nym.test", "--via", &via]);
        assert_eq!(out.status.code(), Some(78), "{out:?}");
        let t = text(&out);
        assert!(t.contains("refusing to send the SMTP password to 127.0.0.1 without TLS"), "{t}");
        assert!(t.contains("use smtp+starttls://") && !t.contains("secret"), "{t}");
    }
    assert!(clear.sessions().is_empty(), "no connection was made");
}

#[test]
fn nntp_starttls_upgrades_before_anything_else() {
    let e = env();
    let (cfg, ca_file) = tls_setup(e.t.path());
    let ca = ca_file.to_str().unwrap();
    let server = news(NewsTls::StartTls(cfg));
    let url = format!("nntp+starttls://localhost:{}", server.port);
    let out = e.ok(&["fetch", "--server", &url, "--ca-file", ca]);
    assert!(out.contains("6 examined, 3 kept"), "{out}");
    let log = server.log(0);
    assert_eq!(
        log[..6],
        ["CAPABILITIES", "STARTTLS", "(tls)", "CAPABILITIES", "MODE READER", "GROUP alt.anonymous.messages"],
        "{log:?}"
    );

    // The wrong CA: nothing after STARTTLS reaches the server.
    let out = e.run(&["fetch", "--server", &url, "--retries", "0"]);
    assert!(!out.status.success() && text(&out).contains("TLS"), "{out:?}");
    assert!(!server.log(1).iter().any(|l| l.starts_with("GROUP")), "{:?}", server.log(1));

    // A server without STARTTLS: the client stops instead of going on in clear.
    let plain = news(NewsTls::None);
    let url = format!("nntp+starttls://127.0.0.1:{}", plain.port);
    let out = e.run(&["fetch", "--server", &url, "--retries", "0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not offer STARTTLS; nothing was sent in the clear"), "{}", text(&out));
    assert_eq!(plain.log(0), ["CAPABILITIES"]);

    // AUTHINFO needs TLS too: refused before connecting on plain nntp://.
    let out = run(
        nym(&e.home, &e.g)
            .args(["fetch", "--server", &plain.url(), "--user", "reader"])
            .env("NYM_NNTP_PASSWORD", "n3ws-secret"),
        None,
    );
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let t = text(&out);
    assert!(t.contains("refusing to send the NNTP password to 127.0.0.1 without TLS"), "{t}");
    assert!(t.contains("use nntps://HOST or nntp+starttls://HOST") && !t.contains("n3ws"), "{t}");
    assert_eq!(plain.connections(), 1, "no second connection");
}
