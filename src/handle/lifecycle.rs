//! The life of a nym after its creation: which warning is due before its
//! key expires, whether it is inactive, and the notices that tell it
//! (docs/operators.md, "The life of a nym"). The flush timer
//! (crate::lifecycle) reads the state, asks these rules and records what
//! was sent.

use super::{gate, notice_to, Change, Effects, Post, Request, Signer, View};
use crate::protocol::address::Service;
use crate::store::{ExpiryState, Nym};

const DAY: i64 = 86400;

/// The expiry warning due now, if any: the smallest of `warn_days` whose
/// day has come, unless a warning that close (or closer) was already sent
/// for this same expiry date. One notice per flush even when several
/// thresholds have passed (a nym created 3 days before its expiry gets
/// the 2-day warning only when it comes, not the 14-day one late).
/// `warn_days` is sorted, largest first (config normalises it).
pub fn expiry_warning_due(warn_days: &[u32], now: i64, s: &ExpiryState) -> Option<u32> {
    let left = s.expires - now;
    if left <= 0 {
        return None;
    }
    let due = warn_days.iter().copied().filter(|d| left <= *d as i64 * DAY).min()?;
    let already = s.warned_for == Some(s.expires) && s.warned_days.is_some_and(|w| w <= due as i64);
    (!already).then_some(due)
}

/// Whole days left before `expires`, rounded up (a key that expires in
/// 36 hours has "2 days" left).
fn days_left(now: i64, expires: i64) -> i64 {
    (expires - now + DAY - 1).div_euclid(DAY).max(0)
}

/// The notice that the nym's key expires soon, and how to renew.
pub fn expiry_notice(v: &View, n: &Nym, expires: i64) -> Post {
    let date = crate::transport::rfc5322_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires.max(0) as u64),
    );
    let grace = v.cfg.lifecycle.expire_grace;
    let after = if grace == 0 {
        "When it has expired, the nym is erased, with its key and options, as a delete would.".to_string()
    } else {
        format!("{grace} day(s) after it has expired, the nym is erased, with its key and options.")
    };
    let text = format!(
        "The key of your nym {addr} expires on {date}, in {left} day(s).\n\
         {after}\n\n\
         To keep the nym, renew the key before then:\n\
         - with the nym client: nym renew\n\
         - with GnuPG: gpg --quick-set-expire <fingerprint> 1y (and the same for the\n  \
         encryption subkey: gpg --quick-set-expire <fingerprint> 1y '*'), then send\n  \
         the public key again, encrypted to config@{d}, as when you created the nym.\n\
         The server takes the new expiry as a key refresh and confirms it.\n",
        addr = n.address(),
        left = days_left(v.now, expires),
        d = n.domain,
    );
    notice_to(n, Service::Config, "Nym key expires soon", text)
}

/// What the inactivity rule asks for a nym last active on `active_day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactivity {
    Nothing,
    Warn,
}

/// Whether the inactivity warning is due for a nym last active on
/// `active_day` (0: unknown, never counted), that was warned for the
/// active day `warned` (0: never). Erasure is decided under the lock by
/// the day alone ([`inactive_cutoff`]).
pub fn inactivity(v: &View, active_day: i64, warned: i64) -> Inactivity {
    let l = &v.cfg.lifecycle;
    if l.inactive_warn_days == 0 || active_day <= 0 {
        return Inactivity::Nothing;
    }
    let today = v.now.div_euclid(DAY);
    if today - active_day >= l.inactive_warn_days as i64 && warned != active_day {
        Inactivity::Warn
    } else {
        Inactivity::Nothing
    }
}

/// The last active day that makes a nym inactive long enough to warn
/// (`warn`) or erase; `None` when that part of the rule is off.
pub fn inactive_cutoff(v: &View, warn: bool) -> Option<i64> {
    let l = &v.cfg.lifecycle;
    let days = if warn { l.inactive_warn_days } else { l.inactive_delete_days };
    (days > 0).then(|| v.now.div_euclid(DAY) - days as i64)
}

/// The notice that the nym has been inactive and will be erased.
pub fn inactivity_notice(v: &View, n: &Nym) -> Post {
    let l = &v.cfg.lifecycle;
    let then = if l.inactive_delete_days > 0 {
        format!(
            "Nyms that send no signed request for {} days are erased, with their key and\n\
             options: yours will be in about {} day(s).",
            l.inactive_delete_days,
            (l.inactive_delete_days - l.inactive_warn_days.min(l.inactive_delete_days)).max(1)
        )
    } else {
        "This server may erase nyms that stay inactive.".to_string()
    };
    let text = format!(
        "Your nym {addr} has sent no signed request to this server for {w} days.\n{then}\n\n\
         To keep it, send any signed request: for example an empty message signed with\n\
         the nym's key and encrypted to config@{d} (a status request; `nym status`\n\
         with the client).\n",
        addr = n.address(),
        w = l.inactive_warn_days,
        d = n.domain,
    );
    notice_to(n, Service::Config, "Nym inactive", text)
}

/// A signed request that counts as the nym's activity: signed by an
/// enabled, unexpired nym, fresh, not a replay, meant for the server, and
/// committed. `None` otherwise (a replayed or stale request must not keep
/// a nym alive).
pub fn activity(v: &View, req: &Request, effects: &Effects) -> Option<Change> {
    let Signer::Nym(n, sig) = &req.signer else { return None };
    if !effects.commit || n.disabled || n.expired(v.now) || sig.seen || sig.meant_for_others {
        return None;
    }
    if gate::age_problem(v, sig).is_some() {
        return None;
    }
    Some(Change::Active { id: n.id })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;

    fn state(expires: i64, warned_for: Option<i64>, warned_days: Option<i64>) -> ExpiryState {
        ExpiryState { id: 1, expires, warned_for, warned_days }
    }

    #[test]
    fn expiry_warnings_come_at_14_and_2_days_once_each() {
        let w = [14, 2];
        let now = 1_800_000_000;
        let e = now + 20 * DAY;
        assert_eq!(expiry_warning_due(&w, now, &state(e, None, None)), None);
        assert_eq!(expiry_warning_due(&w, e - 14 * DAY, &state(e, None, None)), Some(14));
        assert_eq!(expiry_warning_due(&w, e - 13 * DAY, &state(e, Some(e), Some(14))), None);
        assert_eq!(expiry_warning_due(&w, e - 2 * DAY, &state(e, Some(e), Some(14))), Some(2));
        assert_eq!(expiry_warning_due(&w, e - DAY, &state(e, Some(e), Some(2))), None);
        assert_eq!(expiry_warning_due(&w, e, &state(e, Some(e), Some(2))), None, "expired: no warning");
    }

    #[test]
    fn a_new_expiry_date_rearms_the_warnings() {
        let w = [14, 2];
        let e = 1_800_000_000;
        let later = e + 30 * DAY;
        let now = later - 10 * DAY;
        assert_eq!(expiry_warning_due(&w, now, &state(later, Some(e), Some(2))), Some(14));
    }

    #[test]
    fn a_late_start_sends_only_the_closest_warning() {
        let e = 1_800_000_000;
        assert_eq!(expiry_warning_due(&[14, 2], e - DAY, &state(e, None, None)), Some(2));
        assert_eq!(expiry_warning_due(&[14, 2], e - DAY, &state(e, Some(e), Some(14))), Some(2));
        assert_eq!(expiry_warning_due(&[], e - DAY, &state(e, None, None)), None, "no warn_days: no warning");
    }

    #[test]
    fn the_expiry_notice_says_when_and_how_to_renew() {
        let k = Kit::new();
        let n = k.nym("alice");
        let Post::Notice { from, subject, text, .. } = expiry_notice(&k.view(), &n, k.now + 13 * DAY + 5)
        else {
            panic!()
        };
        assert_eq!(from, "config@nym.example");
        assert_eq!(subject, "Nym key expires soon");
        assert!(text.contains("in 14 day(s)"), "{text}");
        assert!(text.contains("nym renew") && text.contains("--quick-set-expire"), "{text}");
    }

    #[test]
    fn inactivity_is_off_by_default() {
        let k = Kit::new();
        let today = k.now / DAY;
        assert_eq!(inactivity(&k.view(), today - 10_000, 0), Inactivity::Nothing);
        assert_eq!(inactive_cutoff(&k.view(), true), None);
        assert_eq!(inactive_cutoff(&k.view(), false), None);
    }

    #[test]
    fn inactivity_warns_once_per_active_day_after_the_warning_period() {
        let mut k = Kit::new();
        k.cfg.lifecycle.inactive_warn_days = 90;
        k.cfg.lifecycle.inactive_delete_days = 120;
        let today = k.now / DAY;
        assert_eq!(inactivity(&k.view(), today - 89, 0), Inactivity::Nothing);
        assert_eq!(inactivity(&k.view(), today - 90, 0), Inactivity::Warn);
        assert_eq!(inactivity(&k.view(), today - 90, today - 90), Inactivity::Nothing);
        // Active again after the warning, then silent again: warned again.
        assert_eq!(inactivity(&k.view(), today - 95, today - 200), Inactivity::Warn);
        assert_eq!(inactivity(&k.view(), 0, 0), Inactivity::Nothing, "unknown day: not counted");
        assert_eq!(inactive_cutoff(&k.view(), false), Some(today - 120));
        let Post::Notice { text, .. } = inactivity_notice(&k.view(), &k.nym("alice")) else { panic!() };
        assert!(text.contains("for 90 days") && text.contains("about 30 day(s)"), "{text}");
    }

    #[test]
    fn only_a_fresh_committed_signed_request_is_activity() {
        let k = Kit::new();
        let n = k.nym("alice");
        let done = Effects::mark();
        let req = k.fresh(&n, b"");
        assert!(matches!(activity(&k.view(), &req, &done), Some(Change::Active { id }) if id == n.id));
        assert!(activity(&k.view(), &req, &Effects::none()).is_none(), "not committed");
        let mut seen = k.sig(k.now - 60);
        seen.seen = true;
        assert!(activity(&k.view(), &k.signed_by(&n, seen, b""), &done).is_none(), "replay");
        let stale = k.sig(k.now - 30 * DAY);
        assert!(activity(&k.view(), &k.signed_by(&n, stale, b""), &done).is_none(), "too old");
        let mut off = n.clone();
        off.disabled = true;
        assert!(activity(&k.view(), &k.fresh(&off, b""), &done).is_none(), "disabled");
        assert!(activity(&k.view(), &k.request(Signer::None, b""), &done).is_none(), "unsigned");
    }
}
