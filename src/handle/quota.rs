//! The daily unit quota of deliveries through reply blocks
//! (REPLY-BLOCKS.md section 7.3), checked **before** anything is queued.

use crate::protocol::nym_commands::flag;
use crate::store::Nym;

/// Bytes per unit beyond the first.
pub const UNIT_BYTES: usize = 32768;

/// One copy a message's 6.2 selection makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// A whole message of this many bytes (after encryption).
    Bytes(usize),
    /// One fixedsize part.
    Part,
}

/// What a copy costs: `1 + floor(bytes / 32768)`, or 1 per fixedsize part.
pub fn copy_cost(c: Copy) -> u64 {
    match c {
        Copy::Bytes(b) => 1 + (b / UNIT_BYTES) as u64,
        Copy::Part => 1,
    }
}

/// What a message costs: the sum over its copies.
pub fn message_cost(copies: &[Copy]) -> u64 {
    copies.iter().map(|c| copy_cost(*c)).fold(0u64, u64::saturating_add)
}

/// The UTC day (days since the epoch) of `now`.
pub fn day_of(now: i64) -> i64 {
    now.div_euclid(86400)
}

/// The quota's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send, and store the counter as (day, count).
    Send { day: i64, count: i64 },
    /// Send nothing, set `disable`, and tell the nym once.
    Disable,
}

/// The counter after spending `cost` units now: (today, units spent
/// today including `cost`); a new UTC day starts from 0.
pub fn charged(n: &Nym, now: i64, cost: u64) -> (i64, u64) {
    let today = day_of(now);
    let spent = if n.unit_day == today { n.unit_count.max(0) as u64 } else { 0 };
    (today, spent.saturating_add(cost))
}

/// Whether a message costing `cost` may go now: today's units (0 on a new
/// UTC day) plus the cost must not exceed `daily_units`, unless the
/// operator set `nolimit`.
pub fn check(n: &Nym, now: i64, cost: u64, daily_units: u64) -> Verdict {
    let (today, total) = charged(n, now, cost);
    if total > daily_units && !n.has(flag::NOLIMIT) {
        return Verdict::Disable;
    }
    Verdict::Send { day: today, count: total.min(i64::MAX as u64) as i64 }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Kit;
    use super::*;

    #[test]
    fn quota_copy_costs_one_unit_per_started_32_kib() {
        assert_eq!(copy_cost(Copy::Bytes(0)), 1);
        assert_eq!(copy_cost(Copy::Bytes(32767)), 1);
        assert_eq!(copy_cost(Copy::Bytes(32768)), 2);
        assert_eq!(copy_cost(Copy::Bytes(100_000)), 4);
        assert_eq!(copy_cost(Copy::Part), 1);
        assert_eq!(message_cost(&[Copy::Bytes(40000), Copy::Bytes(10), Copy::Part]), 4);
        assert_eq!(message_cost(&[]), 0);
    }

    #[test]
    fn quota_is_checked_before_queueing() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.unit_day = day_of(k.now);
        n.unit_count = 510;
        assert_eq!(check(&n, k.now, 2, 512), Verdict::Send { day: day_of(k.now), count: 512 });
        // Going over refuses the whole message: nothing is sent first.
        assert_eq!(check(&n, k.now, 3, 512), Verdict::Disable);
    }

    #[test]
    fn quota_counters_reset_at_utc_midnight() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        let midnight = (day_of(k.now) + 1) * 86400;
        n.unit_day = day_of(k.now);
        n.unit_count = 512;
        assert_eq!(check(&n, midnight - 1, 1, 512), Verdict::Disable);
        assert_eq!(check(&n, midnight, 1, 512), Verdict::Send { day: day_of(midnight), count: 1 });
    }

    #[test]
    fn quota_nolimit_is_never_disabled() {
        let k = Kit::new();
        let mut n = k.nym("alice");
        n.flags |= flag::NOLIMIT;
        n.unit_day = day_of(k.now);
        n.unit_count = 10_000;
        assert_eq!(check(&n, k.now, 5, 512), Verdict::Send { day: day_of(k.now), count: 10_005 });
    }

    #[test]
    fn quota_day_of_negative_time_is_floor() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(86399), 0);
    }
}
