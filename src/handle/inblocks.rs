//! Mail to a nym that has confirmed reply blocks (REPLY-BLOCKS.md 7.1 to
//! 7.5): the form its payload takes, the daily unit quota checked
//! **before** anything is queued, the one notice when the quota disables
//! the nym, and the unit that a refusal of a disabled nym costs.
//!
//! The shell renders the copies first (their size after encryption is
//! what they cost), then asks [`decide`]; nothing it rendered is queued
//! unless the decision says so, in the same transaction as the counter.

use super::nym_commands::current;
use super::quota::{self, Copy, Verdict};
use super::{Change, Decision, Effects, Guard, OnFail, Outcome, View};
use crate::protocol::nym_commands::flag;
use crate::store::{Nym, StoredBlock};

const EV: &str = "inbound";

/// What goes through a block (7.1, 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Without `cryptrecv`: the message as received, in clear.
    Plain,
    /// `cryptrecv`: the message and the trailer, signed by the server,
    /// encrypted to the nym (hidden key ID), armored, `symmetric` if set.
    Sealed,
    /// `cryptrecv` and `fixedsize`: uniform 10240-byte parts, each
    /// encrypted to the nym and selected on its own.
    Fixed,
}

/// The form of a nym's deliveries through its blocks. `fixedsize` needs
/// `cryptrecv`: parts in clear would hide nothing.
pub fn form(n: &Nym) -> Form {
    match (n.has(flag::CRYPTRECV), n.has(flag::FIXEDSIZE)) {
        (false, _) => Form::Plain,
        (true, false) => Form::Sealed,
        (true, true) => Form::Fixed,
    }
}

/// The address the trailer names (7.1): `nym+ext@D` when the mail came
/// to an extension of the `[\w-]*` grammar (at most 64 characters),
/// else `nym@D`.
pub fn received_for(n: &Nym, ext: Option<&str>) -> String {
    match ext {
        Some(e)
            if e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            format!("{}+{e}@{}", n.local, n.domain)
        }
        _ => n.address(),
    }
}

/// The subject of the notice the quota sends when it disables a nym.
pub const DISABLED_SUBJECT: &str = "Nym disabled by the daily limit";

/// The text of that notice.
pub fn disabled_text(n: &Nym, daily_units: u64) -> String {
    format!(
        "Your nym {} is disabled by the daily limit: a message to it would have\n\
         gone over the {daily_units} delivery units a day that reply blocks may use.\n\
         Nothing of that message was sent, and its sender got a bounce.\n\n\
         Check for a reply-block loop (a block that leads back to a nym).\n\
         Re-enable the nym with a signed Config: request to config@{} saying\n\n\
         \x20   Nym-Commands: -disable\n\n\
         Units are counted per UTC day; today's count stays until 00:00 UTC.\n",
        n.address(),
        n.domain
    )
}

/// Whether mail whose 6.2 selection made `copies` may go through the
/// nym's `active` blocks now (REPLY-BLOCKS.md 7.3). Checked against the
/// counter the view read, and under the lock against the same counter
/// and flag word (a concurrent delivery makes this one decide again).
///
/// - Within the quota (or `nolimit`): the copies go, and the counter
///   holds their cost, in the same transaction.
/// - Over it: nothing is sent, `disable` is set, and one notice goes
///   through the blocks outside the quota. Once `disable` is set, mail
///   is refused on arrival ([`refusal`]) before it gets here, so the
///   notice is sent once per disable. The shell then exits 69.
/// - A selection that chose no block (a set summing below 1) sends and
///   costs nothing.
pub fn decide(v: &View, n: &Nym, active: &[StoredBlock], copies: &[Copy]) -> Decision {
    let enabled = Guard::NymEnabled { id: n.id, fingerprint: n.fingerprint.clone() };
    let counter = Guard::Units { id: n.id, day: n.unit_day, count: n.unit_count, flags: n.flags };
    let effects = Effects::mark().guard(enabled, OnFail::NoUser);
    if copies.is_empty() {
        return Decision::new(EV, Outcome::NoBlockSelected, effects);
    }
    let daily = v.cfg.reply_blocks.daily_units;
    let effects = effects.guard(counter, OnFail::Retry);
    match quota::check(n, v.now, quota::message_cost(copies), daily) {
        Verdict::Send { day, count } => {
            Decision::new(EV, Outcome::Posted, effects.change(Change::Units { id: n.id, day, count }))
        }
        Verdict::Disable => {
            let notice = current(n, active, DISABLED_SUBJECT, disabled_text(n, daily));
            let effects = effects.change(Change::AddFlags { id: n.id, bits: flag::DISABLE }).post(notice);
            Decision::new(EV, Outcome::DisabledByQuota, effects)
        }
    }
}

/// Mail to a nym with `disable` set (7.5): refused with 69, and the
/// refusal costs one unit. `None` when the refusal does not apply (the
/// operator's lock and expiry come first and cost nothing).
pub fn refusal(v: &View, n: &Nym) -> Option<Decision> {
    if n.disabled || n.expired(v.now) || !n.has(flag::DISABLE) {
        return None;
    }
    let (day, count) = quota::charged(n, v.now, 1);
    let counter = Guard::Units { id: n.id, day: n.unit_day, count: n.unit_count, flags: n.flags };
    let effects = Effects::mark().guard(counter, OnFail::Retry).change(Change::Units {
        id: n.id,
        day,
        count: count.min(i64::MAX as u64) as i64,
    });
    Some(Decision::new(EV, Outcome::DisabledRefusal, effects))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::super::{inbound, Blocks, Post};
    use super::*;
    use crate::exit::Failure;

    fn blocks() -> Vec<StoredBlock> {
        vec![
            StoredBlock { set: None, text: "::\nAnon-To: a@x.example\n\n".into() },
            StoredBlock { set: Some(('a', 500_000_000)), text: "::\nAnon-To: b@x.example\n\n".into() },
        ]
    }

    fn units(d: &Decision) -> Option<(i64, i64)> {
        d.effects.changes.iter().find_map(|c| match c {
            Change::Units { day, count, .. } => Some((*day, *count)),
            _ => None,
        })
    }

    fn kit(daily: u64) -> Kit {
        let mut k = Kit::new();
        k.cfg.reply_blocks.daily_units = daily;
        k
    }

    #[test]
    fn fixedsize_only_with_cryptrecv() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.flags = flag::FIXEDSIZE;
        assert_eq!(form(&n), Form::Plain, "fixedsize without cryptrecv is ignored");
        n.flags = flag::CRYPTRECV;
        assert_eq!(form(&n), Form::Sealed);
        n.flags = flag::CRYPTRECV | flag::FIXEDSIZE;
        assert_eq!(form(&n), Form::Fixed);
    }

    #[test]
    fn fixedsize_without_cryptrecv_is_said_in_the_notice() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.flags = flag::FIXEDSIZE;
        let said = "fixedsize has no effect without cryptrecv";
        assert!(super::super::nym_commands::describe(&n, &[], &[]).contains(said));
        n.flags |= flag::CRYPTRECV;
        assert!(!super::super::nym_commands::describe(&n, &[], &[]).contains(said));
    }

    #[test]
    fn trailer_names_the_address_with_its_extension() {
        let k = Kit::new();
        let n = k.nym("alice");
        assert_eq!(received_for(&n, None), "alice@nym.example");
        assert_eq!(received_for(&n, Some("news-2_x")), "alice+news-2_x@nym.example");
        assert_eq!(received_for(&n, Some("")), "alice+@nym.example");
        // Outside the grammar: only the nym's own address.
        assert_eq!(received_for(&n, Some("a\nTo: x")), "alice@nym.example");
        assert_eq!(received_for(&n, Some(&"e".repeat(65))), "alice@nym.example");
    }

    #[test]
    fn quota_within_the_limit_records_the_units_in_the_same_decision() {
        let k = kit(3);
        let mut n = k.nym("alice");
        n.unit_day = quota::day_of(k.now);
        n.unit_count = 0;
        // 1 + (1 + 1) = 3 units: exactly the limit is allowed.
        let d = decide(&k.view(), &n, &blocks(), &[Copy::Bytes(100), Copy::Bytes(40_000)]);
        assert_eq!(d.outcome, Outcome::Posted);
        assert_eq!(units(&d), Some((quota::day_of(k.now), 3)));
        assert!(d.effects.posts.is_empty(), "the copies are the shell's rendering, queued with this");
        assert!(d.effects.guards.contains(&(
            Guard::Units { id: n.id, day: n.unit_day, count: 0, flags: n.flags },
            OnFail::Retry
        )));
    }

    #[test]
    fn quota_is_checked_before_queueing_and_over_it_nothing_is_sent() {
        let k = kit(3);
        let mut n = k.nym("alice");
        n.unit_day = quota::day_of(k.now);
        n.unit_count = 2;
        let ok = decide(&k.view(), &n, &blocks(), &[Copy::Bytes(10)]);
        assert_eq!(ok.outcome, Outcome::Posted);
        assert_eq!(units(&ok), Some((quota::day_of(k.now), 3)));
        let over = decide(&k.view(), &n, &blocks(), &[Copy::Bytes(10), Copy::Bytes(10)]);
        assert_eq!(over.outcome, Outcome::DisabledByQuota);
        // No units are spent by what was not sent; disable is set under
        // the lock (other bits untouched).
        assert_eq!(units(&over), None);
        assert!(over
            .effects
            .changes
            .iter()
            .any(|c| matches!(c, Change::AddFlags { id, bits } if *id == n.id && *bits == flag::DISABLE)));
        // The only post is the notice, through the active blocks.
        let [Post::ViaBlocks { blocks: Blocks::Set(b), subject, text, from, .. }] = &over.effects.posts[..]
        else {
            panic!("{:?}", over.effects.posts)
        };
        assert_eq!(b, &blocks());
        assert_eq!(subject, DISABLED_SUBJECT);
        assert_eq!(from, "config@nym.example");
        assert!(text.contains("reply-block loop") && text.contains("Nym-Commands: -disable"), "{text}");
    }

    #[test]
    fn quota_fixedsize_parts_cost_one_unit_each() {
        let k = kit(3);
        let n = k.nym("alice");
        assert_eq!(decide(&k.view(), &n, &blocks(), &[Copy::Part; 3]).outcome, Outcome::Posted);
        assert_eq!(decide(&k.view(), &n, &blocks(), &[Copy::Part; 4]).outcome, Outcome::DisabledByQuota);
    }

    #[test]
    fn quota_counter_resets_at_utc_midnight() {
        let mut k = kit(3);
        let mut n = k.nym("alice");
        let midnight = (quota::day_of(k.now) + 1) * 86400;
        n.unit_day = quota::day_of(midnight - 1);
        n.unit_count = 3;
        k.now = midnight - 1;
        assert_eq!(decide(&k.view(), &n, &blocks(), &[Copy::Bytes(1)]).outcome, Outcome::DisabledByQuota);
        k.now = midnight;
        let d = decide(&k.view(), &n, &blocks(), &[Copy::Bytes(1)]);
        assert_eq!(d.outcome, Outcome::Posted);
        assert_eq!(units(&d), Some((quota::day_of(midnight), 1)));
    }

    #[test]
    fn quota_nolimit_sends_past_the_limit() {
        let k = kit(3);
        let mut n = k.nym("alice");
        n.flags |= flag::NOLIMIT;
        n.unit_day = quota::day_of(k.now);
        n.unit_count = 3;
        let d = decide(&k.view(), &n, &blocks(), &[Copy::Bytes(1)]);
        assert_eq!(d.outcome, Outcome::Posted);
        assert_eq!(units(&d), Some((quota::day_of(k.now), 4)));
    }

    #[test]
    fn quota_disable_notice_is_sent_once_per_disable() {
        let k = kit(1);
        let mut n = k.nym("alice");
        n.unit_day = quota::day_of(k.now);
        n.unit_count = 1;
        let d = decide(&k.view(), &n, &blocks(), &[Copy::Bytes(1)]);
        assert_eq!(d.effects.posts.len(), 1);
        // Once the flag is set, the next mail is refused on arrival with no
        // notice: it never reaches the quota.
        n.flags |= flag::DISABLE;
        assert!(matches!(inbound::decide(&k.view(), Some(n.clone())), Err(Failure::NymDisabled)));
        let r = refusal(&k.view(), &n).unwrap();
        assert!(r.effects.posts.is_empty());
        // Re-enabled (-disable), a new trip sends a new notice.
        n.flags &= !flag::DISABLE;
        assert_eq!(decide(&k.view(), &n, &blocks(), &[Copy::Bytes(1)]).effects.posts.len(), 1);
    }

    #[test]
    fn quota_selection_of_no_block_sends_and_costs_nothing() {
        let k = kit(0);
        let n = k.nym("alice");
        let d = decide(&k.view(), &n, &blocks(), &[]);
        assert_eq!(d.outcome, Outcome::NoBlockSelected);
        assert!(d.effects.changes.is_empty() && d.effects.posts.is_empty());
        assert!(d.effects.commit, "the delivery is still recorded");
    }

    #[test]
    fn refusal_disable_costs_one_unit() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        assert!(refusal(&k.view(), &n).is_none(), "not disabled: no refusal");
        n.flags |= flag::DISABLE;
        n.unit_day = quota::day_of(k.now);
        n.unit_count = 600;
        let d = refusal(&k.view(), &n).unwrap();
        assert_eq!(d.outcome, Outcome::DisabledRefusal);
        assert_eq!(units(&d), Some((quota::day_of(k.now), 601)));
        // On a new day it is the first unit.
        n.unit_day -= 1;
        assert_eq!(units(&refusal(&k.view(), &n).unwrap()), Some((quota::day_of(k.now), 1)));
        // The operator's lock (67) comes first and costs nothing.
        n.disabled = true;
        assert!(refusal(&k.view(), &n).is_none());
    }
}
