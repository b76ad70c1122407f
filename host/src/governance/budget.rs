//! Spending limits that cannot be overspent: a request reserves its worst-case cost
//! before the call and settles to the real cost after it. Admission compares spent +
//! reserved + this request's worst case against the limit under the scope's lock, so
//! concurrent requests cannot all see the same headroom (LiteLLM #34732). Money is
//! integer micro-dollars.

use crate::config::{Budget, BudgetPeriod};

/// Where the current period began, in unix milliseconds (UTC calendar boundaries).
pub fn period_start(period: BudgetPeriod, now_ms: i64) -> i64 {
    match period {
        BudgetPeriod::Total => 0,
        BudgetPeriod::Day => now_ms - now_ms.rem_euclid(86_400_000),
        BudgetPeriod::Month => {
            let Ok(t) = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000)) else {
                return 0;
            };
            time::Date::from_calendar_date(t.year(), t.month(), 1)
                .map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
                .unwrap_or(0)
        }
    }
}

/// One budget's running account.
#[derive(Debug, Clone)]
pub struct Account {
    pub budget: Budget,
    pub period_start_ms: i64,
    /// Settled spend in the current period.
    pub spent: i64,
    /// Reserved by requests in flight.
    pub reserved: i64,
}

impl Account {
    /// An account that has already spent `spent` in the period that contains `now_ms`.
    pub fn new(budget: Budget, spent: i64, now_ms: i64) -> Account {
        Account {
            budget,
            period_start_ms: period_start(budget.period, now_ms),
            spent,
            reserved: 0,
        }
    }

    fn roll(&mut self, now_ms: i64) {
        let start = period_start(self.budget.period, now_ms);
        if start > self.period_start_ms {
            self.period_start_ms = start;
            self.spent = 0;
        }
    }

    /// Whether `micros` more can be reserved now.
    pub fn fits(&mut self, micros: i64, now_ms: i64) -> bool {
        self.roll(now_ms);
        self.spent
            .saturating_add(self.reserved)
            .saturating_add(micros)
            <= self.budget.limit_micros
    }

    pub fn reserve(&mut self, micros: i64) {
        self.reserved += micros;
    }

    /// Replaces a reservation by the real cost.
    pub fn settle(&mut self, reserved: i64, cost: i64, now_ms: i64) {
        self.roll(now_ms);
        self.reserved = (self.reserved - reserved).max(0);
        self.spent = self.spent.saturating_add(cost);
    }

    /// Left to spend, reservations counted.
    pub fn remaining(&self) -> i64 {
        (self.budget.limit_micros - self.spent - self.reserved).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_30_2026_1230: i64 = 1_796_041_800_000;

    #[test]
    fn periods_start_on_utc_calendar_boundaries() {
        let day = period_start(BudgetPeriod::Day, NOV_30_2026_1230);
        assert_eq!(day, 1_796_083_200_000 - 86_400_000);
        let month = period_start(BudgetPeriod::Month, NOV_30_2026_1230);
        let expected = time::macros::datetime!(2026-11-01 0:00 UTC).unix_timestamp() * 1000;
        assert_eq!(month, expected);
        assert_eq!(period_start(BudgetPeriod::Total, NOV_30_2026_1230), 0);
    }

    #[test]
    fn reservations_count_until_settled_and_periods_reset() {
        let budget = Budget {
            limit_micros: 100,
            period: BudgetPeriod::Day,
        };
        let mut a = Account::new(budget, 20, NOV_30_2026_1230);
        assert!(a.fits(80, NOV_30_2026_1230));
        a.reserve(80);
        assert!(!a.fits(1, NOV_30_2026_1230));
        a.settle(80, 30, NOV_30_2026_1230);
        assert_eq!(a.remaining(), 50);
        // Next UTC day: a fresh budget.
        assert!(a.fits(100, NOV_30_2026_1230 + 86_400_000));
        assert_eq!(a.spent, 0);
    }
}
