//! Business dates. Everything is stored in UTC; "today", birthdays, member days and expiry
//! dates are read in the configured zone (Asia/Shanghai by default), so a check-in at 23:30
//! Beijing time counts for that day, not for UTC's.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;

#[derive(Clone, Copy, Debug)]
pub struct Calendar {
    tz: Tz,
}

impl Calendar {
    pub fn new(tz: Tz) -> Self {
        Self { tz }
    }

    pub fn date_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    pub fn today(&self) -> NaiveDate {
        self.date_of(Utc::now())
    }

    /// The first instant of `date` in the business zone, in UTC.
    pub fn start_of(&self, date: NaiveDate) -> DateTime<Utc> {
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        midnight
            .and_local_timezone(self.tz)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| midnight.and_utc())
    }
}

/// `date` plus `months`; the 31st of a shorter month becomes its last day.
pub fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

pub fn sub_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

/// `YYYY-MM`, the key of monthly caps.
pub fn month_key(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn business_dates_follow_the_zone_not_utc() {
        let cal = Calendar::new(chrono_tz::Asia::Shanghai);
        // 16:30 UTC is 00:30 the next day in Beijing.
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 16, 30, 0).unwrap();
        assert_eq!(
            cal.date_of(at),
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
        let start = cal.start_of(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 11, 22, 16, 0, 0).unwrap());
    }

    #[test]
    fn months_clamp_to_the_end_of_shorter_months() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(
            add_months(d, 1),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
        let leap = NaiveDate::from_ymd_opt(2028, 2, 29).unwrap();
        assert_eq!(
            add_months(leap, 12),
            NaiveDate::from_ymd_opt(2029, 2, 28).unwrap()
        );
        assert_eq!(month_key(d), "2026-01");
    }
}
