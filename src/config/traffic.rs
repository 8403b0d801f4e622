//! `[pool]`, `[cover]` and `[lifecycle]`: the defences against traffic
//! analysis and the life of a nym, all carried out by `flush`.

use serde::Deserialize;

/// The outgoing pool (docs/traffic-analysis.md): items leave in random
/// batches, Mixmaster-style, instead of one by one as they arrive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pool {
    /// Off: every item is handed off as soon as it is due (by `deliver`
    /// itself when there is no latency).
    pub enabled: bool,
    /// Seconds between two pool rounds; `flush` runs more often (for
    /// retries and url@) and does a round only when one is due.
    pub interval: u64,
    /// A round sends nothing unless at least this many items wait.
    pub min_pool: u32,
    /// Percentage of the waiting items that a round sends, chosen at
    /// random (rounded up).
    pub rate: u32,
    /// Seconds after which a waiting item leaves at the next round,
    /// whatever the pool's size.
    pub max_hold: u64,
}

impl Default for Pool {
    fn default() -> Self {
        Pool { enabled: true, interval: 900, min_pool: 5, rate: 65, max_hold: 6 * 3600 }
    }
}

/// Cover traffic (docs/traffic-analysis.md): dummy articles, posted at
/// random times, that only a nym's key could tell from mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cover {
    /// Dummy articles per day on average (a Poisson process); 0 = none.
    pub rate: u32,
}

impl Default for Cover {
    fn default() -> Self {
        Cover { rate: 48 }
    }
}

/// The life of a nym after its creation (docs/operators.md, "The life of
/// a nym"): warnings before its key expires, erasure after, and the
/// optional inactivity rule. All of it runs in `flush`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifecycle {
    /// Days before the key's expiry at which the nym is warned, once each
    /// per expiry date (a refresh with a new expiry re-arms them).
    pub warn_days: Vec<u32>,
    /// Days after the key's expiry before the nym is erased.
    pub expire_grace: u32,
    /// Days without a signed request after which the nym is warned; 0: off.
    pub inactive_warn_days: u32,
    /// Days without a signed request after which the nym is erased; 0: off.
    pub inactive_delete_days: u32,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle { warn_days: vec![14, 2], expire_grace: 0, inactive_warn_days: 0, inactive_delete_days: 0 }
    }
}

impl Lifecycle {
    /// Is the inactivity rule on (and so the last-activity day kept)?
    pub fn tracks_activity(&self) -> bool {
        self.inactive_warn_days > 0 || self.inactive_delete_days > 0
    }
}
