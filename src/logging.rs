//! Logging to syslog (facility mail unless configured) and, from a
//! terminal, to stderr.
//!
//! Privacy rule: callers log event kinds and outcomes only. No log line at
//! any level may carry a nym name, a correspondent, a subject or content;
//! that is why the helpers here take `&'static str` and numbers.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

struct Logger {
    level: log::LevelFilter,
    stderr: bool,
    syslog: Mutex<Option<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>>,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        if let Ok(mut guard) = self.syslog.lock() {
            if let Some(s) = guard.as_mut() {
                let _ = match r.level() {
                    log::Level::Error => s.err(&msg),
                    log::Level::Warn => s.warning(&msg),
                    log::Level::Info => s.info(&msg),
                    _ => s.debug(&msg),
                };
            }
        }
        if self.stderr {
            let _ = writeln!(std::io::stderr(), "nymgate: {}: {msg}", r.level().as_str().to_lowercase());
        }
    }

    fn flush(&self) {}
}

/// The syslog facility of a configuration word.
pub fn facility(name: &str) -> Option<syslog::Facility> {
    use syslog::Facility::*;
    Some(match name.to_ascii_lowercase().as_str() {
        "mail" => LOG_MAIL,
        "daemon" => LOG_DAEMON,
        "user" => LOG_USER,
        "local0" => LOG_LOCAL0,
        "local1" => LOG_LOCAL1,
        "local2" => LOG_LOCAL2,
        "local3" => LOG_LOCAL3,
        "local4" => LOG_LOCAL4,
        "local5" => LOG_LOCAL5,
        "local6" => LOG_LOCAL6,
        "local7" => LOG_LOCAL7,
        _ => return None,
    })
}

/// Install the logger (facility mail). Without a syslog socket
/// (containers, tests) we still log to stderr when asked.
pub fn init(level: &str, force_stderr: bool) {
    init_with(level, force_stderr, "mail")
}

/// Install the logger with a configured syslog facility.
pub fn init_with(level: &str, force_stderr: bool, facility_name: &str) {
    let level = match level.to_ascii_lowercase().as_str() {
        "error" => log::LevelFilter::Error,
        "warn" | "warning" => log::LevelFilter::Warn,
        "debug" => log::LevelFilter::Debug,
        _ => log::LevelFilter::Info,
    };
    let formatter = syslog::Formatter3164 {
        facility: facility(facility_name).unwrap_or(syslog::Facility::LOG_MAIL),
        hostname: None,
        process: "nymgate".into(),
        pid: std::process::id(),
    };
    let syslog = syslog::unix(formatter).ok();
    let stderr =
        force_stderr || std::io::stderr().is_terminal() || std::env::var_os("NYMGATE_LOG_STDERR").is_some();
    let logger = Logger { level, stderr, syslog: Mutex::new(syslog) };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

/// The one shape of a delivery log line: `event=<kind> outcome=<what>`.
pub fn event(kind: &'static str, outcome: &'static str) {
    log::info!("event={kind} outcome={outcome}");
}
