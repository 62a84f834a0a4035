//! Backup schedules: what a schedule is, how it is validated, and when it fires.
//!
//! Slots are computed in the schedule's local wall time and then mapped to instants:
//! - a local time that happens twice (the autumn repeat) fires once, at its earlier instant;
//! - a local time that does not exist (the spring gap) fires shifted forward by the gap
//!   (02:30 on the spring-forward day in Europe/Berlin fires at 03:30 CEST).
//!
//! Missed slots (the scheduler was down, or the schedule was re-enabled) follow one policy,
//! [`Timetable::due`]: of the slots in `[next_fire_at, now]`, the latest fires if it is at most
//! [`GRACE`] old; every other one is recorded as skipped. A schedule never fires a burst.
//!
//! Cron expressions are standard 5-field cron (minute hour day-of-month month day-of-week, minute
//! precision). They are parsed here rather than by the `cron` crate, whose day-of-week numbering
//! starts at 1 = Sunday and which requires day-of-month AND day-of-week to match, where standard
//! cron matches either when both are restricted.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::ids::{RunId, ScheduleId, TenantId, WorkspaceId};
use crate::reason::ReasonCode;

// Every object type a backup covers by default lives in the object-type catalogue.
pub use crate::object_type::BACKUP_TYPES;

/// How late a missed slot may still fire. Older missed slots are recorded as skipped.
pub const GRACE: Duration = Duration::minutes(30);
/// How many skipped slots a schedule keeps listed (it also counts all of them).
pub const SKIPPED_KEPT: usize = 20;
/// Missed slots enumerated one by one before the rest are jumped over (a minutely cron missed
/// for a year must not loop for minutes).
const MAX_ENUMERATED: usize = 1_440;
/// How far ahead a cadence must have a slot (a cron for 30 February has none).
const HORIZON_DAYS: u32 = 366 * 9;
/// Longer than any daylight-saving shift: how far around an instant the local-time mapping may
/// be out of order.
const SHIFT_WINDOW: Duration = Duration::hours(3);

pub const KEEP_LAST_MAX: u32 = 1000;
pub const KEEP_DAYS_MAX: u32 = 3650;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Cadence(String),
    #[error("`{0}` is not an IANA timezone name")]
    Timezone(String),
    #[error("`{0}` is not a backup-capable object type")]
    UnknownType(String),
    #[error("{0}")]
    Retention(String),
}

impl ScheduleError {
    /// The stable code a client branches on.
    pub fn code(&self) -> ReasonCode {
        match self {
            ScheduleError::Invalid(_) => ReasonCode::ScheduleInvalid,
            ScheduleError::Cadence(_) => ReasonCode::ScheduleInvalidCadence,
            ScheduleError::Timezone(_) => ReasonCode::ScheduleUnknownTimezone,
            ScheduleError::UnknownType(_) => ReasonCode::ScheduleUnknownType,
            ScheduleError::Retention(_) => ReasonCode::ScheduleInvalidRetention,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    fn number_from_sunday(self) -> u32 {
        match self {
            Weekday::Sunday => 0,
            Weekday::Monday => 1,
            Weekday::Tuesday => 2,
            Weekday::Wednesday => 3,
            Weekday::Thursday => 4,
            Weekday::Friday => 5,
            Weekday::Saturday => 6,
        }
    }
}

/// When a schedule fires, in its timezone's wall time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Cadence {
    /// Standard 5-field cron: minute hour day-of-month month day-of-week.
    Cron { expr: String },
    /// Every hour at this minute.
    Hourly { minute: u32 },
    /// Every day at `HH:MM`.
    Daily { at: String },
    /// Every week on this day at `HH:MM`.
    Weekly { weekday: Weekday, at: String },
}

/// Which backup sets of the schedule to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Keep the newest N backup sets (1 to 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep backup sets younger than N days (1 to 3650).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_days: Option<u32>,
}

impl Retention {
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.keep_last.is_none() && self.keep_days.is_none() {
            return Err(ScheduleError::Retention(
                "retention needs keep_last, keep_days or both".into(),
            ));
        }
        if let Some(n) = self.keep_last
            && !(1..=KEEP_LAST_MAX).contains(&n)
        {
            return Err(ScheduleError::Retention(format!(
                "keep_last must be 1 to {KEEP_LAST_MAX}"
            )));
        }
        if let Some(n) = self.keep_days
            && !(1..=KEEP_DAYS_MAX).contains(&n)
        {
            return Err(ScheduleError::Retention(format!(
                "keep_days must be 1 to {KEEP_DAYS_MAX}"
            )));
        }
        Ok(())
    }
}

/// A slot the scheduler did not fire, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSlot {
    #[serde(with = "crate::time")]
    pub slot: DateTime<Utc>,
    pub reason: ReasonCode,
}

/// A tenant's backup schedule as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSchedule {
    pub id: ScheduleId,
    pub workspace_id: WorkspaceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub cadence: Cadence,
    /// IANA timezone name the cadence is read in.
    pub timezone: String,
    /// Registry object types in scope.
    pub types: Vec<String>,
    pub retention: Retention,
    pub enabled: bool,
    /// The next slot the scheduler will consider (kept while disabled: re-enabling applies the
    /// missed-slot policy from here).
    #[serde(with = "crate::time")]
    pub next_fire_at: DateTime<Utc>,
    /// Bumped by every change through the API; the scheduler fires what it read or nothing.
    pub version: u64,
    pub created_by: String,
    #[serde(with = "crate::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time")]
    pub updated_at: DateTime<Utc>,
    #[serde(default, with = "crate::time::option")]
    pub last_fired_slot: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_run_id: Option<RunId>,
    /// The most recent skipped slots, oldest first, at most [`SKIPPED_KEPT`].
    #[serde(default)]
    pub skipped: Vec<SkippedSlot>,
    /// Every slot ever skipped.
    #[serde(default)]
    pub skipped_total: u64,
}

impl BackupSchedule {
    pub fn timetable(&self) -> Result<Timetable, ScheduleError> {
        Timetable::new(&self.cadence, &self.timezone)
    }
}

/// Validates a scope: every name a backup type, none twice; `None` is every backup type. The
/// result is in registry order.
pub fn scope_types(types: Option<&[String]>) -> Result<Vec<String>, ScheduleError> {
    let Some(types) = types else {
        return Ok(BACKUP_TYPES.iter().map(|t| (*t).to_owned()).collect());
    };
    if types.is_empty() {
        return Err(ScheduleError::Invalid(
            "`types` must not be empty; omit it to cover every backup type".into(),
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if !BACKUP_TYPES.contains(&t.as_str()) {
            return Err(ScheduleError::UnknownType(t.chars().take(128).collect()));
        }
        if types[..i].contains(t) {
            return Err(ScheduleError::Invalid(format!(
                "type `{t}` is listed twice"
            )));
        }
    }
    Ok(BACKUP_TYPES
        .iter()
        .filter(|b| types.iter().any(|t| t == *b))
        .map(|t| (*t).to_owned())
        .collect())
}

/// The set of wall-clock minutes a cadence matches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days_of_month: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, 0 = Sunday.
    days_of_week: u8,
    /// A field starting with `*` does not restrict; when both day fields restrict, either
    /// matching is enough (standard cron).
    dom_any: bool,
    dow_any: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn parse_field(
    field: &str,
    what: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
) -> Result<u64, ScheduleError> {
    let bad = || ScheduleError::Cadence(format!("cron {what} field `{field}` is invalid"));
    let value = |s: &str| -> Result<u32, ScheduleError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(u32::try_from(i).map_err(|_| bad())? + name_base);
        }
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u32 = s.parse().map_err(|_| bad())?;
        if n < min || n > max {
            return Err(ScheduleError::Cadence(format!(
                "cron {what} value {n} is outside {min}-{max}"
            )));
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s >= 1 && *s <= max)
                    .ok_or_else(bad)?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(bad());
            }
            (a, b)
        } else {
            let a = value(range)?;
            // `a/n` means from a to the end, every n.
            if item.contains('/') { (a, max) } else { (a, a) }
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Fields {
    fn cron(expr: &str) -> Result<Fields, ScheduleError> {
        if expr.len() > 200 {
            return Err(ScheduleError::Cadence("cron expression is too long".into()));
        }
        let parts: Vec<&str> = expr.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = parts.as_slice() else {
            return Err(ScheduleError::Cadence(
                "cron needs 5 fields: minute hour day-of-month month day-of-week".into(),
            ));
        };
        let dow_bits = parse_field(dow, "day-of-week", 0, 7, &DAYS, 0)?;
        // 7 is Sunday too.
        let dow_bits = (dow_bits | (dow_bits >> 7)) & 0x7f;
        Ok(Fields {
            minutes: parse_field(minute, "minute", 0, 59, &[], 0)?,
            hours: u32::try_from(parse_field(hour, "hour", 0, 23, &[], 0)?).unwrap_or(0),
            days_of_month: u32::try_from(parse_field(dom, "day-of-month", 1, 31, &[], 0)?)
                .unwrap_or(0),
            months: u16::try_from(parse_field(month, "month", 1, 12, &MONTHS, 1)?).unwrap_or(0),
            days_of_week: u8::try_from(dow_bits).unwrap_or(0),
            dom_any: dom.starts_with('*'),
            dow_any: dow.starts_with('*'),
        })
    }

    fn at(minute: u32, hour: Option<u32>, weekday: Option<Weekday>) -> Fields {
        Fields {
            minutes: 1 << minute,
            hours: hour.map_or(0x00ff_ffff, |h| 1 << h),
            days_of_month: !0 << 1,
            months: 0x1ffe,
            days_of_week: weekday.map_or(0x7f, |d| 1 << d.number_from_sunday()),
            dom_any: true,
            dow_any: weekday.is_none(),
        }
    }

    fn of(cadence: &Cadence) -> Result<Fields, ScheduleError> {
        match cadence {
            Cadence::Cron { expr } => Fields::cron(expr),
            Cadence::Hourly { minute } => {
                if *minute > 59 {
                    return Err(ScheduleError::Cadence("minute must be 0 to 59".into()));
                }
                Ok(Fields::at(*minute, None, None))
            }
            Cadence::Daily { at } => {
                let t = parse_at(at)?;
                Ok(Fields::at(t.minute(), Some(t.hour()), None))
            }
            Cadence::Weekly { weekday, at } => {
                let t = parse_at(at)?;
                Ok(Fields::at(t.minute(), Some(t.hour()), Some(*weekday)))
            }
        }
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << d.day()) != 0;
        let dow = self.days_of_week & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.dom_any || self.dow_any {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching wall-clock minute strictly after `after`.
    fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut date = start.date();
        for day in 0..HORIZON_DAYS {
            if self.day_matches(date) {
                let (h0, m0) = if day == 0 {
                    (start.hour(), start.minute())
                } else {
                    (0, 0)
                };
                for h in h0..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    let from = if h == h0 { m0 } else { 0 };
                    for m in from..60 {
                        if self.minutes & (1 << m) != 0 {
                            return date.and_hms_opt(h, m, 0);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

/// `HH:MM`, 24-hour.
fn parse_at(at: &str) -> Result<NaiveTime, ScheduleError> {
    let ok = at.len() == 5 && at.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(at, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| ScheduleError::Cadence(format!("`{at}` is not a time of day as HH:MM")))
}

pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::Timezone(name.chars().take(64).collect()))
}

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
    fields: Fields,
    tz: Tz,
}

impl Timetable {
    pub fn new(cadence: &Cadence, timezone: &str) -> Result<Timetable, ScheduleError> {
        let t = Timetable {
            fields: Fields::of(cadence)?,
            tz: parse_timezone(timezone)?,
        };
        let epoch = NaiveDate::from_ymd_opt(2024, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| ScheduleError::Cadence("no date".into()))?;
        if t.fields.next_local(epoch).is_none() {
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
        let mut cursor = local - SHIFT_WINDOW;
        let mut best: Option<DateTime<Utc>> = None;
        let mut stop_at: Option<NaiveDateTime> = None;
        loop {
            let next = self.fields.next_local(cursor)?;
            if stop_at.is_some_and(|s| next > s) {
                return best;
            }
            cursor = next;
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
    fn bad_cadences_and_timezones_are_refused_with_their_code() {
        for e in [
            "",
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "5-1 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "0 0 30 2 *",
        ] {
            let err = Timetable::new(&Cadence::Cron { expr: e.into() }, "UTC")
                .expect_err(e)
                .code();
            assert_eq!(err, ReasonCode::ScheduleInvalidCadence, "{e}");
        }
        for at in ["2:30", "24:00", "02:60", "0230", "02:30:00"] {
            assert!(
                Timetable::new(&Cadence::Daily { at: at.into() }, "UTC").is_err(),
                "{at}"
            );
        }
        assert!(Timetable::new(&Cadence::Hourly { minute: 60 }, "UTC").is_err());
        let err = Timetable::new(&Cadence::Hourly { minute: 0 }, "Mars/Olympus")
            .expect_err("unknown")
            .code();
        assert_eq!(err, ReasonCode::ScheduleUnknownTimezone);
    }

    #[test]
    fn retention_and_scope_are_validated() {
        let r = |keep_last, keep_days| Retention {
            keep_last,
            keep_days,
        };
        assert!(r(None, None).validate().is_err());
        assert!(r(Some(0), None).validate().is_err());
        assert!(r(Some(1001), None).validate().is_err());
        assert!(r(None, Some(3651)).validate().is_err());
        assert!(r(Some(1000), Some(3650)).validate().is_ok());
        assert_eq!(scope_types(None).expect("all").len(), BACKUP_TYPES.len());
        assert_eq!(
            scope_types(Some(&["mobileApps".into(), "deviceConfigurations".into()])),
            Ok(vec!["deviceConfigurations".into(), "mobileApps".into()])
        );
        assert_eq!(
            scope_types(Some(&["users".into()])).map_err(|e| e.code()),
            Err(ReasonCode::ScheduleUnknownType)
        );
        assert!(scope_types(Some(&[])).is_err());
        assert!(scope_types(Some(&["intents".into(), "intents".into()])).is_err());
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
                let matches = t.fields.day_matches(local.date())
                    && t.fields.hours & (1 << local.hour()) != 0
                    && t.fields.minutes & (1 << local.minute()) != 0;
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
