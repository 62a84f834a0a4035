//! Standard 5-field cron on the `croner` crate: parse an expression, and walk the local
//! wall-clock minutes it selects.
//!
//! croner follows Vixie cron where schedules depend on it: day-of-week counts from 0 = Sunday
//! and 7 is Sunday too, month and weekday names (`jan`, `mon`) are case-insensitive, and when
//! both day fields restrict, a day matching either one is enough. The parser takes exactly five
//! fields (no seconds, no year), so a slot has minute precision.
//!
//! Two cases are settled here rather than left to croner:
//! - A day field starting with `*` without being `*` (as in `*/2`) does not restrict in Vixie
//!   cron, so the other day field must match as well (AND). croner gives that meaning only to a
//!   bare `*`, so such an expression is parsed with croner's `dom_and_dow`.
//! - `a/n` (from `a` to the field's end, every `n`) stays accepted, as before croner, through
//!   croner's `sloppy_ranges`.
//!
//! croner's extensions (`L`, `W`, `#`, `?`, a leading `+`) are refused before croner reads the
//! expression: the API documents standard cron, and a schedule must mean the same to anyone
//! who reads it. Its `@daily`-style nicknames are refused too: they are not five fields.
//!
//! The walk is over `NaiveDateTime`, wall time with no zone: mapping a wall time to an instant
//! (daylight saving) is the timetable's policy, not croner's.

use chrono::NaiveDateTime;
use croner::parser::{CronParser, Seconds, Year};

/// Longer than any sensible expression; refused before parsing.
const MAX_LEN: usize = 200;
const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("cron expression is too long")]
    TooLong,
    #[error("cron needs 5 fields: minute hour day-of-month month day-of-week")]
    FieldCount,
    #[error("cron {field} field `{value}` is invalid: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cron expression `{expr}` is invalid: {reason}")]
    Expression { expr: String, reason: String },
}

/// A parsed cron expression: the set of local wall-clock minutes it selects.
#[derive(Debug, Clone)]
pub struct CronExpr(croner::Cron);

fn parser(dom_and_dow: bool) -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .dom_and_dow(dom_and_dow)
        .build()
}

impl CronExpr {
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        if expr.len() > MAX_LEN {
            return Err(CronError::TooLong);
        }
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [_, _, dom, _, dow] = fields.as_slice() else {
            return Err(CronError::FieldCount);
        };
        for (i, field) in fields.iter().enumerate() {
            standard(i, field)?;
        }
        let parser = parser(dom.starts_with('*') || dow.starts_with('*'));
        let cron = parser
            .parse(expr)
            .map_err(|e| blame(&parser, &fields, &e))?;
        let p = &cron.pattern;
        let components = [&p.minutes, &p.hours, &p.days, &p.months, &p.days_of_week];
        // croner skips empty list items, so `,` parses to a field that matches nothing; refused
        // here rather than by a search that runs to croner's year limit.
        if let Some(i) = components
            .iter()
            .position(|c| c.values().is_empty() && !c.has_modifiers())
        {
            return Err(CronError::Field {
                field: FIELDS[i],
                value: fields[i].to_owned(),
                reason: "it matches no value".into(),
            });
        }
        Ok(CronExpr(cron))
    }

    /// Whether a local wall-clock time is one the expression selects (the timetable's property
    /// test holds slots to it).
    #[cfg(test)]
    pub fn matches(&self, local: NaiveDateTime) -> bool {
        self.0.is_time_matching(&local).unwrap_or(false)
    }

    /// The first selected wall-clock minute strictly after `after`; `None` if there is none
    /// before croner's search limit (the year 5000).
    pub fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        self.0.find_next_occurrence(&after, false).ok()
    }

    /// The selected wall-clock minutes strictly after `after`, in order.
    pub fn local_times_after(&self, after: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> {
        std::iter::successors(self.next_local(after), |t| self.next_local(*t))
    }
}

/// Standard cron syntax only, as the API documents it: lists of `*`, numbers, or names in
/// their own field (`jan` in the month, `mon` in the day of week), as single values or
/// ranges, each with an optional `/step`. croner's extensions (`L`, `W`, `#`, `?`, a leading
/// `+`) and empty list items are refused here, before croner reads them its own way.
fn standard(i: usize, field: &str) -> Result<(), CronError> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let names: &[&str] = match i {
        3 => &MONTHS,
        4 => &DAYS,
        _ => &[],
    };
    let value = |v: &str| {
        !v.is_empty()
            && (v.bytes().all(|b| b.is_ascii_digit())
                || names.contains(&v.to_ascii_lowercase().as_str()))
    };
    let standard = field.split(',').all(|item| {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let step_ok = step.is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
        let range_ok = range == "*"
            || match range.split_once('-') {
                Some((from, to)) => value(from) && value(to),
                None => value(range),
            };
        step_ok && range_ok
    });
    if standard {
        Ok(())
    } else {
        Err(CronError::Field {
            field: FIELDS[i],
            value: field.to_owned(),
            reason: "standard cron takes `*`, numbers and names, in lists, ranges and steps".into(),
        })
    }
}

/// Names the field croner refused, by parsing each alone (the others `*`); the whole expression
/// if no single field is at fault.
fn blame(parser: &CronParser, fields: &[&str], error: &croner::errors::CronError) -> CronError {
    for (i, field) in fields.iter().enumerate() {
        let mut probe = ["*"; 5];
        probe[i] = field;
        if let Err(e) = parser.parse(&probe.join(" ")) {
            return CronError::Field {
                field: FIELDS[i],
                value: (*field).to_owned(),
                reason: e.to_string(),
            };
        }
    }
    CronError::Expression {
        expr: fields.join(" "),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .expect("valid")
    }

    fn next(expr: &str, after: NaiveDateTime) -> Option<NaiveDateTime> {
        CronExpr::parse(expr).expect(expr).next_local(after)
    }

    #[test]
    fn sunday_is_0_7_or_its_name_and_ranges_may_end_on_7() {
        // 2026-11-24 is a Tuesday; the 29th a Sunday.
        for e in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * 6-7"] {
            let first = next(e, at(2026, 11, 24, 0, 0));
            let expected = if e.ends_with("6-7") {
                at(2026, 11, 28, 0, 0)
            } else {
                at(2026, 11, 29, 0, 0)
            };
            assert_eq!(first, Some(expected), "{e}");
        }
        assert_eq!(
            next("0 0 * * 6-7", at(2026, 11, 28, 0, 0)),
            Some(at(2026, 11, 29, 0, 0))
        );
    }

    #[test]
    fn day_fields_are_ored_when_both_restrict_and_anded_when_one_starts_with_a_star() {
        // The 1st or a Friday.
        assert_eq!(
            next("0 0 1 * 5", at(2026, 11, 24, 0, 0)),
            Some(at(2026, 11, 27, 0, 0))
        );
        // `*/2` does not restrict (Vixie): odd days that are Fridays. 27 November 2026 is an
        // odd Friday; 4 December is an even one and is passed over for 11 December.
        let t = CronExpr::parse("0 0 */2 * 5").expect("valid");
        assert_eq!(
            t.next_local(at(2026, 11, 24, 0, 0)),
            Some(at(2026, 11, 27, 0, 0))
        );
        assert_eq!(
            t.next_local(at(2026, 11, 28, 0, 0)),
            Some(at(2026, 12, 11, 0, 0))
        );
        // The same on the other side: the 1st to the 7th that are a Sunday, Tuesday, Thursday or
        // Saturday (Thursday 26 November would match if either were enough).
        assert_eq!(
            next("0 0 1-7 * */2", at(2026, 11, 24, 0, 0)),
            Some(at(2026, 12, 1, 0, 0))
        );
    }

    #[test]
    fn a_start_with_a_step_runs_to_the_end_of_the_field() {
        let t = CronExpr::parse("5/20 * * * *").expect("valid");
        let slots: Vec<_> = t.local_times_after(at(2026, 1, 1, 0, 0)).take(4).collect();
        assert_eq!(
            slots,
            vec![
                at(2026, 1, 1, 0, 5),
                at(2026, 1, 1, 0, 25),
                at(2026, 1, 1, 0, 45),
                at(2026, 1, 1, 1, 5),
            ]
        );
        assert!(t.matches(at(2026, 1, 1, 0, 25)));
        assert!(!t.matches(at(2026, 1, 1, 0, 26)));
    }

    #[test]
    fn seconds_years_and_nicknames_are_not_five_fields() {
        for e in ["0 0 2 * * *", "0 0 2 * * * 2027", "@daily", "* * * *"] {
            assert_eq!(
                CronExpr::parse(e).map(|_| ()),
                Err(CronError::FieldCount),
                "{e}"
            );
        }
    }

    #[test]
    fn refusals_name_the_field_at_fault() {
        let field = |e: &str| match CronExpr::parse(e) {
            Err(CronError::Field { field, .. }) => field,
            other => panic!("{e}: {other:?}"),
        };
        assert_eq!(field("61 * * * *"), "minute");
        assert_eq!(field("* 24 * * *"), "hour");
        assert_eq!(field("* * 0 * *"), "day-of-month");
        assert_eq!(field("* * * 13 *"), "month");
        assert_eq!(field("* * * * 8"), "day-of-week");
        assert_eq!(field(", * * * *"), "minute");
        assert_eq!(
            CronExpr::parse(&"1,".repeat(101)).map(|_| ()),
            Err(CronError::TooLong)
        );
    }

    #[test]
    fn croner_extensions_and_misplaced_names_are_not_standard_cron() {
        for e in [
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 5#3",
            "0 0 ? * *",
            "0 0 1 * +mon",
            "0 0 * * 5L",
            "0 0 * * jan",
            "0 0 * mon *",
            "1,,2 * * * *",
            "/10 * * * *",
        ] {
            assert!(
                matches!(CronExpr::parse(e), Err(CronError::Field { .. })),
                "{e} is refused"
            );
        }
        for e in ["0 0 * jan-mar mon-fri", "*/15 0 1,15 * *", "0 0 * * SUN"] {
            assert!(CronExpr::parse(e).is_ok(), "{e} is standard");
        }
    }
}
