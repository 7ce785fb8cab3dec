//! Spend caps of one upstream: `maxSpendPerDay` (atomic units per UTC day) and `maxTotal`
//! (authorizations handed out, ever).
//!
//! A budget counts every signature handed to a seller: an authorization the seller holds
//! stays counted until it is provably unusable (see [`super::state::HandedOut`]), not only
//! the payments known to have settled.
//!
//! Accounting is pessimistic: a payment is counted when it is *reserved*, before anything is
//! signed or sent, and uncounted only when it is known not to have been spent (released). The
//! counters therefore always hold `confirmed + in flight`, a reservation is a single
//! check-and-add, and the persisted counters never under-count after a crash. Concurrent
//! reservations are serialised by the caller's lock (see [`super::state::StateStore`]), so a
//! budget of N payments admits exactly N.
//!
//! Time is passed in (`now`, Unix seconds): the caller's clock is injectable.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

/// Seconds per UTC day (Unix time has no leap seconds).
pub const DAY_SECS: u64 = 86_400;

/// The caps configured for an upstream; `None` = no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Most that may be spent per UTC day, in the asset's atomic units.
    pub max_spend_per_day: Option<U256>,
    /// Most payments ever made for the upstream.
    pub max_total: Option<u64>,
}

impl BudgetLimits {
    pub fn is_unlimited(&self) -> bool {
        self.max_spend_per_day.is_none() && self.max_total.is_none()
    }
}

/// The counters of one upstream (in flight included), as persisted in the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetCounters {
    /// The UTC day `spent_today` belongs to, `YYYY-MM-DD`.
    #[serde(with = "day_string")]
    pub day: i64,
    /// Atomic units spent (or in flight) on `day`.
    #[serde(with = "decimal")]
    pub spent_today: U256,
    pub payments_today: u64,
    /// Atomic units spent (or in flight), ever.
    #[serde(with = "decimal")]
    pub spent_total: U256,
    pub payments_total: u64,
}

/// A reserved payment: what to give back if it turns out not to have been spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub day: i64,
    pub amount: U256,
}

/// Why a payment was refused before anything was signed. `pending` is the part of what was
/// used that is handed out and not yet known to be spent or unusable (filled in by the state
/// store, which tracks them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetRefusal {
    #[error(
        "daily budget exhausted: {spent} of {limit} handed out today (UTC), in authorizations of which {pending} are not yet known to be unusable; this payment needs {amount}"
    )]
    Day {
        limit: U256,
        spent: U256,
        amount: U256,
        /// Seconds until the next UTC midnight.
        retry_after: u64,
        /// Today's authorizations not yet known to be spent or unusable.
        pending: u64,
    },
    #[error("{}", total_message(.limit, .used, .pending))]
    Total { limit: u64, used: u64, pending: u64 },
}

fn total_message(limit: &u64, used: &u64, pending: &u64) -> String {
    format!(
        "total budget exhausted: {used} of {limit} authorizations handed out ({} spent, {pending} not yet known to be unusable)",
        used.saturating_sub(*pending)
    )
}

/// The UTC day (days since 1970-01-01) of a Unix time.
pub fn day_of(now: u64) -> i64 {
    (now / DAY_SECS) as i64
}

/// Seconds from `now` until the next UTC midnight.
pub fn secs_to_midnight(now: u64) -> u64 {
    DAY_SECS - now % DAY_SECS
}

impl BudgetCounters {
    /// Starts a new day's count when `now` is past `day`.
    pub fn roll(&mut self, now: u64) {
        let today = day_of(now);
        if today != self.day {
            self.day = today;
            self.spent_today = U256::ZERO;
            self.payments_today = 0;
        }
    }

    /// Counts a payment of `amount` if every cap allows it; otherwise changes nothing.
    pub fn reserve(
        &mut self,
        limits: &BudgetLimits,
        amount: U256,
        now: u64,
    ) -> Result<Reservation, BudgetRefusal> {
        self.roll(now);
        if let Some(limit) = limits.max_total
            && self.payments_total >= limit
        {
            return Err(BudgetRefusal::Total {
                limit,
                used: self.payments_total,
                pending: 0,
            });
        }
        if let Some(limit) = limits.max_spend_per_day {
            let after = self.spent_today.checked_add(amount);
            if after.is_none_or(|a| a > limit) {
                return Err(BudgetRefusal::Day {
                    limit,
                    spent: self.spent_today,
                    amount,
                    retry_after: secs_to_midnight(now),
                    pending: 0,
                });
            }
        }
        self.spent_today = self.spent_today.saturating_add(amount);
        self.payments_today += 1;
        self.spent_total = self.spent_total.saturating_add(amount);
        self.payments_total += 1;
        Ok(Reservation {
            day: self.day,
            amount,
        })
    }

    /// Gives a reservation back (the payment was not spent). A reservation of a day that has
    /// passed only comes off the totals.
    pub fn cancel(&mut self, r: &Reservation, now: u64) {
        self.roll(now);
        if r.day == self.day {
            self.spent_today = self.spent_today.saturating_sub(r.amount);
            self.payments_today = self.payments_today.saturating_sub(1);
        }
        self.spent_total = self.spent_total.saturating_sub(r.amount);
        self.payments_total = self.payments_total.saturating_sub(1);
    }

    /// What may still be spent today; `None` without a daily cap.
    pub fn left_today(&self, limits: &BudgetLimits, now: u64) -> Option<U256> {
        let spent = if day_of(now) == self.day {
            self.spent_today
        } else {
            U256::ZERO
        };
        limits.max_spend_per_day.map(|l| l.saturating_sub(spent))
    }

    /// How many payments may still be made; `None` without a total cap.
    pub fn left_total(&self, limits: &BudgetLimits) -> Option<u64> {
        limits
            .max_total
            .map(|l| l.saturating_sub(self.payments_total))
    }

    /// `spent_today` as seen at `now` (zero on a new day).
    pub fn spent_on(&self, now: u64) -> U256 {
        if day_of(now) == self.day {
            self.spent_today
        } else {
            U256::ZERO
        }
    }
}

/// `YYYY-MM-DD` of a day number (proleptic Gregorian, UTC).
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

// Howard Hinnant's date algorithms (public domain).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) mod day_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(day: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_day(*day))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_day(&s)
            .ok_or_else(|| serde::de::Error::custom("`day` is not a YYYY-MM-DD date"))
    }
}

/// U256 as a decimal string (atomic units), never a float.
pub(crate) mod decimal {
    use alloy_primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = String::deserialize(d)?;
        crate::x402::amount::parse_atomic(&s)
            .map_err(|_| serde::de::Error::custom("not a decimal integer amount"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T23:59:50Z.
    const LATE: u64 = 1_795_391_990;

    fn u(v: u64) -> U256 {
        U256::from(v)
    }

    fn limits(per_day: Option<u64>, total: Option<u64>) -> BudgetLimits {
        BudgetLimits {
            max_spend_per_day: per_day.map(u),
            max_total: total,
        }
    }

    #[test]
    fn days_round_trip_through_dates() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(day_of(LATE)), "2026-11-22");
        assert_eq!(parse_day("2026-11-22"), Some(day_of(LATE)));
        for day in [-1000, 0, 59, 60, 11_016, 20_000, 30_000] {
            assert_eq!(parse_day(&format_day(day)), Some(day));
        }
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("yesterday"), None);
        assert_eq!(format_day(parse_day("2024-02-29").unwrap()), "2024-02-29");
    }

    #[test]
    fn the_daily_cap_admits_exactly_what_fits() {
        let l = limits(Some(30), None);
        let mut c = BudgetCounters::default();
        for _ in 0..3 {
            c.reserve(&l, u(10), LATE).unwrap();
        }
        let err = c.reserve(&l, u(10), LATE).unwrap_err();
        assert_eq!(
            err,
            BudgetRefusal::Day {
                limit: u(30),
                spent: u(30),
                amount: u(10),
                retry_after: 10,
                pending: 0,
            }
        );
        assert_eq!(c.left_today(&l, LATE), Some(U256::ZERO));
        // A smaller payment that still fits is admitted; one that does not is not.
        let l = limits(Some(35), None);
        c.reserve(&l, u(5), LATE).unwrap();
        assert!(c.reserve(&l, u(1), LATE).is_err());
    }

    #[test]
    fn the_day_rolls_over_at_utc_midnight() {
        let l = limits(Some(20), None);
        let mut c = BudgetCounters::default();
        let r1 = c.reserve(&l, u(10), LATE).unwrap();
        c.reserve(&l, u(10), LATE).unwrap();
        assert!(
            c.reserve(&l, u(10), LATE + 9).is_err(),
            "23:59:59 is still today"
        );
        let midnight = LATE + 10;
        assert_eq!(c.left_today(&l, midnight), Some(u(20)));
        c.reserve(&l, u(10), midnight).unwrap();
        assert_eq!(format_day(c.day), "2026-11-23");
        assert_eq!(c.spent_today, u(10));
        assert_eq!(c.spent_total, u(30));
        assert_eq!(c.payments_total, 3);
        // Yesterday's reservation given back comes off the totals, not today's count.
        c.cancel(&r1, midnight);
        assert_eq!(c.spent_today, u(10));
        assert_eq!(c.payments_today, 1);
        assert_eq!(c.spent_total, u(20));
        assert_eq!(c.payments_total, 2);
    }

    #[test]
    fn the_total_cap_counts_payments_and_cancel_gives_them_back() {
        let l = limits(None, Some(2));
        let mut c = BudgetCounters::default();
        let a = c.reserve(&l, u(7), LATE).unwrap();
        c.reserve(&l, u(7), LATE).unwrap();
        assert_eq!(
            c.reserve(&l, u(7), LATE).unwrap_err(),
            BudgetRefusal::Total {
                limit: 2,
                used: 2,
                pending: 0
            }
        );
        assert_eq!(c.left_total(&l), Some(0));
        c.cancel(&a, LATE);
        assert_eq!(c.left_total(&l), Some(1));
        c.reserve(&l, u(7), LATE).unwrap();
        assert_eq!(c.spent_total, u(14));
        // The total cap outlives days.
        assert!(c.reserve(&l, u(7), LATE + 5 * DAY_SECS).is_err());
    }

    #[test]
    fn no_limits_never_refuse_and_report_no_budget_left() {
        let l = BudgetLimits::default();
        assert!(l.is_unlimited());
        let mut c = BudgetCounters::default();
        for _ in 0..1000 {
            c.reserve(&l, u(1_000_000), LATE).unwrap();
        }
        assert_eq!(c.left_today(&l, LATE), None);
        assert_eq!(c.left_total(&l), None);
        assert_eq!(c.payments_total, 1000);
    }

    #[test]
    fn an_overflowing_amount_is_refused_not_wrapped() {
        let l = limits(Some(u64::MAX), None);
        let mut c = BudgetCounters::default();
        c.reserve(&l, u(5), LATE).unwrap();
        assert!(c.reserve(&l, U256::MAX, LATE).is_err());
        assert_eq!(c.spent_today, u(5));
    }

    #[test]
    fn counters_serialise_as_decimal_strings_and_dates() {
        let mut c = BudgetCounters::default();
        c.reserve(&BudgetLimits::default(), u(1_500_000), LATE)
            .unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "day": "2026-11-22", "spentToday": "1500000", "paymentsToday": 1,
                "spentTotal": "1500000", "paymentsTotal": 1
            })
        );
        let back: BudgetCounters = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        let bad = serde_json::json!({"day": "2026-11-22", "spentToday": "1.5",
            "paymentsToday": 1, "spentTotal": "0", "paymentsTotal": 1});
        assert!(serde_json::from_value::<BudgetCounters>(bad).is_err());
    }
}
