//! When a schedule fires: its cadence's wall times mapped to instants in its timezone, and the
//! missed-slot policy.
//!
//! Slots are the cadence's local wall times (walked by [`super::cron`]) mapped to instants:
//! - a local time that happens twice (the autumn repeat) fires once, at its earlier instant;
//! - a local time that does not exist (the spring gap) fires shifted forward by the gap
//!   (02:30 on the spring-forward day in Europe/Berlin fires at 03:30 CEST).
//!
//! Missed slots (the scheduler was down, or the schedule was re-enabled) follow one policy,
//! [`Timetable::due`]: of the slots in `[next_fire_at, now]`, the latest fires if it is at most
//! [`GRACE`] old; every other one is recorded as skipped. A schedule never fires a burst.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::cron::CronExpr;
use super::{BackupSchedule, Cadence, SKIPPED_KEPT, ScheduleError, parse_timezone};

/// How late a missed slot may still fire. Older missed slots are recorded as skipped.
pub const GRACE: Duration = Duration::minutes(30);
/// Missed slots enumerated one by one before the rest are jumped over (a minutely cron missed
/// for a year must not loop for minutes).
const MAX_ENUMERATED: usize = 1_440;
/// How far ahead `due` puts the next slot of a cadence that has none.
const HORIZON_DAYS: u32 = 366 * 9;
/// Longer than any daylight-saving shift: how far around an instant the local-time mapping may
/// be out of order.
const SHIFT_WINDOW: Duration = Duration::hours(3);

/// What the scheduler does with a schedule at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The slot to fire, if any.
    pub fire: Option<DateTime<Utc>>,
    /// Missed slots to record as skipped, oldest first; at most [`SKIPPED_KEPT`] (the newest).
    pub skipped: Vec<DateTime<Utc>>,
    /// How many slots are skipped (a lower bound once more than [`MAX_ENUMERATED`] were missed).
    pub skipped_count: u64,
    /// The first slot after `now`.
    pub next: DateTime<Utc>,
}

/// A cadence in a timezone: the instants it fires at.
#[derive(Debug, Clone)]
pub struct Timetable {
    cron: CronExpr,
    tz: Tz,
}

impl BackupSchedule {
    pub fn timetable(&self) -> Result<Timetable, ScheduleError> {
        Timetable::new(&self.cadence, &self.timezone)
    }
}

impl Timetable {
    pub fn new(cadence: &Cadence, timezone: &str) -> Result<Timetable, ScheduleError> {
        let t = Timetable {
            cron: cadence.cron()?,
            tz: parse_timezone(timezone)?,
        };
        let epoch = NaiveDate::from_ymd_opt(2024, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| ScheduleError::Cadence("no date".into()))?;
        if t.cron.next_local(epoch).is_none() {
            return Err(ScheduleError::Cadence(
                "the cadence never fires (no such date)".into(),
            ));
        }
        Ok(t)
    }

    /// The instant a wall-clock time fires at: the earlier of a repeated time, and a time in a
    /// gap shifted forward by the gap.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            LocalResult::None => {
                // The offset in force before the gap, read a day earlier.
                let before = self
                    .tz
                    .offset_from_utc_datetime(&(local - Duration::days(1)))
                    .fix();
                (local - Duration::seconds(i64::from(before.local_minus_utc()))).and_utc()
            }
        }
    }

    fn offset_at(&self, at: DateTime<Utc>) -> i32 {
        self.tz
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz).naive_local();
        // A shifted gap time fires later than its wall-clock neighbours, so start a little
        // earlier and, near an offset change, keep the earliest slot of a short window.
        let mut best: Option<DateTime<Utc>> = None;
        let mut stop_at: Option<NaiveDateTime> = None;
        for next in self.cron.local_times_after(local - SHIFT_WINDOW) {
            if stop_at.is_some_and(|s| next > s) {
                return best;
            }
            let at = self.instant(next);
            if at <= after {
                continue;
            }
            if best.is_none_or(|b| at < b) {
                best = Some(at);
            }
            if stop_at.is_none() {
                let steady = self.offset_at(after - SHIFT_WINDOW)
                    == self.offset_at(at + SHIFT_WINDOW)
                    && matches!(self.tz.from_local_datetime(&next), LocalResult::Single(_));
                if steady {
                    return best;
                }
                stop_at = Some(next + SHIFT_WINDOW);
            }
        }
        None
    }

    /// The missed-slot policy at `now` for a schedule whose next slot is `next_fire_at`.
    pub fn due(&self, next_fire_at: DateTime<Utc>, now: DateTime<Utc>) -> Due {
        let far = || now + Duration::days(i64::from(HORIZON_DAYS));
        if next_fire_at > now {
            return Due {
                fire: None,
                skipped: Vec::new(),
                skipped_count: 0,
                next: next_fire_at,
            };
        }
        let mut slots = vec![next_fire_at];
        let mut extra = 0u64;
        let mut last = next_fire_at;
        while let Some(s) = self.next_after(last).filter(|s| *s <= now) {
            if slots.len() >= MAX_ENUMERATED {
                // Jump to the grace window; the slots in between are counted as one batch.
                extra = u64::try_from(slots.len()).unwrap_or(u64::MAX);
                slots.clear();
                let window_start = (now - GRACE - Duration::minutes(1)).max(s);
                if window_start > s {
                    slots.extend(self.next_after(window_start).filter(|x| *x <= now));
                } else {
                    slots.push(s);
                }
                last = slots.last().copied().unwrap_or(now);
                while let Some(t) = self.next_after(last).filter(|t| *t <= now) {
                    slots.push(t);
                    last = t;
                }
                break;
            }
            slots.push(s);
            last = s;
        }
        let latest = slots.last().copied().unwrap_or(next_fire_at);
        let fire = (now - latest <= GRACE).then_some(latest);
        if fire.is_some() {
            slots.pop();
        }
        let skipped_count = extra + u64::try_from(slots.len()).unwrap_or(u64::MAX);
        let keep_from = slots.len().saturating_sub(SKIPPED_KEPT);
        Due {
            fire,
            skipped: slots.split_off(keep_from),
            skipped_count,
            next: self.next_after(now).unwrap_or_else(far),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Weekday;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    fn daily(at: &str, tz: &str) -> Timetable {
        Timetable::new(&Cadence::Daily { at: at.into() }, tz).expect("valid")
    }

    fn cron(expr: &str, tz: &str) -> Timetable {
        Timetable::new(&Cadence::Cron { expr: expr.into() }, tz).expect("valid")
    }

    fn slots(t: &Timetable, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        while let Some(next) = t.next_after(at).filter(|n| *n <= until) {
            out.push(next);
            at = next;
        }
        out
    }

    #[test]
    fn daily_0230_berlin_fires_once_per_day_across_both_transitions() {
        let t = daily("02:30", "Europe/Berlin");
        let spring = slots(&t, utc("2026-03-27T00:00:00Z"), utc("2026-03-31T00:00:00Z"));
        assert_eq!(
            spring,
            vec![
                utc("2026-03-27T01:30:00Z"),
                utc("2026-03-28T01:30:00Z"),
                // 02:30 does not exist on 29 March: shifted by the gap to 03:30 CEST.
                utc("2026-03-29T01:30:00Z"),
                utc("2026-03-30T00:30:00Z"),
            ]
        );
        let autumn = slots(&t, utc("2026-10-23T00:00:00Z"), utc("2026-10-27T00:00:00Z"));
        assert_eq!(
            autumn,
            vec![
                utc("2026-10-23T00:30:00Z"),
                utc("2026-10-24T00:30:00Z"),
                // 02:30 happens twice on 25 October: only the first (CEST) fires.
                utc("2026-10-25T00:30:00Z"),
                utc("2026-10-26T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn a_quarter_hourly_cron_through_the_spring_gap_fires_each_instant_once() {
        let t = cron("*/15 * * * *", "Europe/Berlin");
        let s = slots(&t, utc("2026-03-29T00:30:00Z"), utc("2026-03-29T01:30:00Z"));
        // 01:45 CET, then 03:00, 03:15, 03:30 CEST: the gap's wall times fold into them.
        assert_eq!(
            s,
            vec![
                utc("2026-03-29T00:45:00Z"),
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-29T01:15:00Z"),
                utc("2026-03-29T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn standard_cron_semantics() {
        // Weekdays at 09:00: 1-5 is Monday to Friday (2026-11-28 is a Saturday).
        let t = cron("0 9 * * 1-5", "UTC");
        assert_eq!(
            t.next_after(utc("2026-11-27T10:00:00Z")),
            Some(utc("2026-11-30T09:00:00Z"))
        );
        // Sunday as 0, 7 and by name.
        for e in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun"] {
            assert_eq!(
                cron(e, "UTC").next_after(utc("2026-11-24T00:00:00Z")),
                Some(utc("2026-11-29T00:00:00Z")),
                "{e}"
            );
        }
        // Both day fields restricted: either matches (the 1st, or any Friday).
        let t = cron("0 0 1 * 5", "UTC");
        assert_eq!(
            t.next_after(utc("2026-11-24T00:00:00Z")),
            Some(utc("2026-11-27T00:00:00Z"))
        );
        assert_eq!(
            t.next_after(utc("2026-11-28T00:00:00Z")),
            Some(utc("2026-12-01T00:00:00Z"))
        );
        // Leap day.
        assert_eq!(
            cron("0 0 29 feb *", "UTC").next_after(utc("2026-11-24T00:00:00Z")),
            Some(utc("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn a_due_slot_fires_and_the_next_one_is_after_now() {
        let t = cron("0 * * * *", "UTC");
        let d = t.due(utc("2026-11-24T05:00:00Z"), utc("2026-11-24T05:00:00Z"));
        assert_eq!(d.fire, Some(utc("2026-11-24T05:00:00Z")));
        assert!(d.skipped.is_empty());
        assert_eq!(d.next, utc("2026-11-24T06:00:00Z"));
        let early = t.due(utc("2026-11-24T06:00:00Z"), utc("2026-11-24T05:59:00Z"));
        assert_eq!(early.fire, None);
        assert_eq!(early.next, utc("2026-11-24T06:00:00Z"));
    }

    #[test]
    fn missed_slots_fire_the_latest_within_grace_and_skip_the_rest() {
        let t = cron("0 * * * *", "UTC");
        // Down from 01:00 to 05:20: 05:00 is 20 minutes old and fires; 01:00-04:00 are skipped.
        let d = t.due(utc("2026-11-24T01:00:00Z"), utc("2026-11-24T05:20:00Z"));
        assert_eq!(d.fire, Some(utc("2026-11-24T05:00:00Z")));
        assert_eq!(d.skipped_count, 4);
        assert_eq!(d.skipped.first(), Some(&utc("2026-11-24T01:00:00Z")));
        assert_eq!(d.next, utc("2026-11-24T06:00:00Z"));
        // At 05:40 the latest slot is past the grace window: nothing fires.
        let d = t.due(utc("2026-11-24T01:00:00Z"), utc("2026-11-24T05:40:00Z"));
        assert_eq!(d.fire, None);
        assert_eq!(d.skipped_count, 5);
    }

    #[test]
    fn a_minutely_cron_missed_for_a_year_fires_once_and_keeps_a_short_list() {
        let t = cron("* * * * *", "UTC");
        let d = t.due(utc("2025-11-24T00:00:00Z"), utc("2026-11-24T05:20:00Z"));
        assert_eq!(d.fire, Some(utc("2026-11-24T05:20:00Z")));
        assert_eq!(d.skipped.len(), SKIPPED_KEPT);
        assert!(d.skipped_count > u64::try_from(MAX_ENUMERATED).expect("small"));
        assert!(d.skipped.iter().all(|s| *s < utc("2026-11-24T05:20:00Z")));
        assert_eq!(d.next, utc("2026-11-24T05:21:00Z"));
    }

    fn cadence() -> impl Strategy<Value = Cadence> {
        prop_oneof![
            (0u32..60).prop_map(|minute| Cadence::Hourly { minute }),
            (0u32..24, 0u32..60).prop_map(|(h, m)| Cadence::Daily {
                at: format!("{h:02}:{m:02}")
            }),
            (0u32..24, 0u32..60, 0usize..7).prop_map(|(h, m, d)| Cadence::Weekly {
                weekday: [
                    Weekday::Monday,
                    Weekday::Tuesday,
                    Weekday::Wednesday,
                    Weekday::Thursday,
                    Weekday::Friday,
                    Weekday::Saturday,
                    Weekday::Sunday
                ][d],
                at: format!("{h:02}:{m:02}")
            }),
            (1u32..30, 0u32..24).prop_map(|(step, h)| Cadence::Cron {
                expr: format!("*/{step} {h},{} * * *", (h + 7) % 24)
            }),
        ]
    }

    fn zone() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("UTC"),
            Just("Europe/Berlin"),
            Just("America/New_York"),
            Just("Australia/Lord_Howe"),
            Just("Asia/Kolkata"),
        ]
    }

    proptest! {
        #[test]
        fn slots_increase_and_map_back_to_the_cadence(
            c in cadence(),
            tz in zone(),
            start in 1_767_225_600i64..1_798_761_600,
        ) {
            let t = Timetable::new(&c, tz).expect("valid");
            let tzv: Tz = tz.parse().expect("tz");
            let mut at = Utc.timestamp_opt(start, 0).single().expect("valid");
            for _ in 0..40 {
                let next = t.next_after(at).expect("a next slot");
                prop_assert!(next > at);
                let local = next.with_timezone(&tzv).naive_local();
                // Either the wall time matches, or it is a gap time shifted forward by the gap.
                let matches = t.cron.matches(local);
                let shifted = t.offset_at(next) != t.offset_at(next - SHIFT_WINDOW);
                prop_assert!(matches || shifted, "{next} ({local}) is not a slot of {c:?} in {tz}");
                at = next;
            }
        }

        #[test]
        fn due_never_fires_more_than_one_slot_or_a_stale_one(
            c in cadence(),
            tz in zone(),
            start in 1_767_225_600i64..1_798_761_600,
            down in 0i64..200_000,
        ) {
            let t = Timetable::new(&c, tz).expect("valid");
            let first = t.next_after(Utc.timestamp_opt(start, 0).single().expect("valid")).expect("slot");
            let now = first + Duration::minutes(down);
            let d = t.due(first, now);
            if let Some(f) = d.fire {
                prop_assert!(f <= now && now - f <= GRACE);
            }
            prop_assert!(d.next > now);
            prop_assert!(d.skipped.len() <= SKIPPED_KEPT);
            prop_assert!(d.skipped.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
