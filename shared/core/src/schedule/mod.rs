//! Schedules: what a schedule is and how it is validated; when it fires is the `timetable`
//! module's, and reading cron expressions the `cron` module's.
//!
//! A schedule fires a backup or a drift check each slot ([`ScheduleKind`]); both kinds share
//! the model, the strict (schedule, slot) identity, daylight saving and the missed-slot policy.
//! Only a backup schedule has a retention (a drift check writes no backup set).
//!
//! - this module: the schedule model ([`BackupSchedule`], [`ScheduleKind`], [`Cadence`],
//!   [`Retention`], [`SkippedSlot`]), validation ([`scope_types`], [`parse_timezone`], each cadence read as a
//!   cron expression) and the backup types a schedule covers by default ([`BACKUP_TYPES`]);
//! - `cron`: 5-field cron expressions on the `croner` crate, walked as local wall-clock minutes;
//! - `timetable`: [`Timetable`] maps those wall times to instants across daylight-saving
//!   changes, and [`Timetable::due`] is the missed-slot policy.
//!
//! In short: a local time that happens twice fires once, at its earlier instant; one that does
//! not exist (the spring gap) fires shifted forward by the gap; of the slots missed while the
//! scheduler was down or the schedule disabled, the latest fires if at most [`GRACE`] old and
//! the rest are recorded as skipped.
//!
//! Every cadence is a cron expression underneath (`daily` at 02:30 is `30 2 * * *`). They are
//! parsed by `croner` rather than the `cron` crate: croner numbers day-of-week from 0 = Sunday
//! (7 is Sunday too) and matches either day field when both restrict, as standard cron does;
//! the `cron` crate starts at 1 = Sunday and requires both. The few places where this crate
//! still decides for croner are listed in `cron`'s docs.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::batch::Targets;
use crate::ids::{RunId, ScheduleId, TenantId, WorkspaceId};
use crate::operation::{
    BackupScheduledParams, DriftScheduledParams, OperationParams, OperationType,
};
use crate::reason::ReasonCode;

mod cron;
mod timetable;

use cron::CronExpr;
pub use timetable::{Due, GRACE, Timetable};

// Every object type a backup covers by default lives in the object-type catalogue.
pub use crate::object_type::BACKUP_TYPES;

/// How many skipped slots a schedule keeps listed (it also counts all of them).
pub const SKIPPED_KEPT: usize = 20;
pub const KEEP_LAST_MAX: u32 = 1000;
pub const KEEP_DAYS_MAX: u32 = 3650;
/// The default minimum interval between two slots of a backup schedule, in minutes.
pub const MIN_INTERVAL_MINUTES_DEFAULT: u32 = 60;
/// The most a drift schedule's minimum interval is, in minutes: a drift schedule can always be
/// hourly, whatever minimum a deployment sets for backups (see [`ScheduleKind::min_interval`]).
pub const DRIFT_MIN_INTERVAL_MINUTES_MAX: u32 = 60;
/// How far the minimum-interval check walks a cadence: a leap year and its wrap into the next.
const INTERVAL_HORIZON_DAYS: i64 = 367;
/// At most this many slots are walked (a cadence that fires this often at or above the
/// minimum spans the horizon anyway at any minimum of an hour or more).
const INTERVAL_MAX_SLOTS: usize = 10_000;

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
    #[error("{0}")]
    TooFrequent(String),
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
            ScheduleError::TooFrequent(_) => ReasonCode::ScheduleTooFrequent,
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
    Hourly {
        #[serde(deserialize_with = "crate::params::whole_number::required")]
        minute: u32,
    },
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::params::whole_number::option"
    )]
    pub keep_last: Option<u32>,
    /// Keep backup sets younger than N days (1 to 3650).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::params::whole_number::option"
    )]
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

/// What a schedule's slots start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// A backup of the schedule's types (`backup_schedule.scheduled`), then its retention.
    #[default]
    Backup,
    /// A drift check of the schedule's types against the tenant's latest complete backup set
    /// (`drift.scheduled`). It writes no backup set, so it has no retention.
    DriftCheck,
}

impl ScheduleKind {
    pub const ALL: [ScheduleKind; 2] = [ScheduleKind::Backup, ScheduleKind::DriftCheck];

    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Backup => "backup",
            ScheduleKind::DriftCheck => "drift_check",
        }
    }

    /// The minimum interval between two slots of a schedule of this kind, given the
    /// deployment's minimum for backups: a backup schedule's is that; a drift schedule's is
    /// that but at most [`DRIFT_MIN_INTERVAL_MINUTES_MAX`]. A drift check writes no backup set
    /// and no snapshot of an unchanged object (Graph reads, bounded by the tenant's throttle
    /// budget, and one active check per tenant), so what limits backups' storage does not
    /// apply to it, while a deployment that lowers the backups' minimum lowers it too.
    pub fn min_interval(self, backup_minimum_minutes: u32) -> u32 {
        match self {
            ScheduleKind::Backup => backup_minimum_minutes,
            ScheduleKind::DriftCheck => backup_minimum_minutes.min(DRIFT_MIN_INTERVAL_MINUTES_MAX),
        }
    }

    /// The type of a slot's run (a workspace schedule's children).
    pub fn scheduled_type(self) -> OperationType {
        match self {
            ScheduleKind::Backup => OperationType::BackupScheduleScheduled,
            ScheduleKind::DriftCheck => OperationType::DriftScheduled,
        }
    }

    /// The params of `schedule`'s run for `slot`: strict per (schedule, slot).
    pub fn scheduled_params(self, schedule: ScheduleId, slot: DateTime<Utc>) -> OperationParams {
        let backup_schedule_id = schedule.ulid();
        match self {
            ScheduleKind::Backup => {
                OperationParams::BackupScheduleScheduled(BackupScheduledParams {
                    backup_schedule_id,
                    scheduled_for: slot,
                })
            }
            ScheduleKind::DriftCheck => OperationParams::DriftScheduled(DriftScheduledParams {
                backup_schedule_id,
                scheduled_for: slot,
            }),
        }
    }
}

/// What a schedule backs up: one tenant, or (a workspace schedule) the workspace's active
/// tenants that its targets name when each slot fires, as one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleScope<'a> {
    Tenant(TenantId),
    Workspace(&'a Targets),
}

/// A schedule as stored and served: a tenant's, or a workspace's over its tenants; of backups
/// or of drift checks (the name is the one it had when every schedule was a backup's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSchedule {
    pub id: ScheduleId,
    /// What its slots start; chosen at creation, never changed. A schedule stored before
    /// kinds existed reads as a backup schedule.
    #[serde(default)]
    pub kind: ScheduleKind,
    pub workspace_id: WorkspaceId,
    /// The tenant of a tenant's schedule; absent on a workspace schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// The tenants a workspace schedule backs up (`all` or a tag); absent on a tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Targets>,
    pub name: String,
    pub cadence: Cadence,
    /// IANA timezone name the cadence is read in.
    pub timezone: String,
    /// Registry object types in scope.
    pub types: Vec<String>,
    /// A backup schedule's retention; a drift schedule has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
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
    /// A workspace schedule's last slot's batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_batch_id: Option<crate::ids::BatchId>,
    /// The most recent skipped slots, oldest first, at most [`SKIPPED_KEPT`].
    #[serde(default)]
    pub skipped: Vec<SkippedSlot>,
    /// Every slot ever skipped.
    #[serde(default)]
    pub skipped_total: u64,
}

static NO_TENANTS: Targets = Targets::Tenants(Vec::new());

impl BackupSchedule {
    /// Whose backups the schedule fires. A stored schedule has exactly one of the two; one
    /// without either (never written) reads as a workspace schedule of no tenant.
    pub fn scope(&self) -> ScheduleScope<'_> {
        match (&self.tenant_id, &self.targets) {
            (Some(t), _) => ScheduleScope::Tenant(*t),
            (None, Some(targets)) => ScheduleScope::Workspace(targets),
            (None, None) => ScheduleScope::Workspace(&NO_TENANTS),
        }
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

impl Cadence {
    /// The cadence as the cron expression it is underneath, validated.
    fn cron(&self) -> Result<CronExpr, ScheduleError> {
        let expr = match self {
            Cadence::Cron { expr } => expr.clone(),
            Cadence::Hourly { minute } => {
                if *minute > 59 {
                    return Err(ScheduleError::Cadence("minute must be 0 to 59".into()));
                }
                format!("{minute} * * * *")
            }
            Cadence::Daily { at } => {
                let t = parse_at(at)?;
                format!("{} {} * * *", t.minute(), t.hour())
            }
            Cadence::Weekly { weekday, at } => {
                let t = parse_at(at)?;
                let day = weekday.number_from_sunday();
                format!("{} {} * * {day}", t.minute(), t.hour())
            }
        };
        CronExpr::parse(&expr).map_err(|e| ScheduleError::Cadence(e.to_string()))
    }
}

impl Cadence {
    /// Refuses a cadence two of whose consecutive slots are less than `minimum_minutes` apart.
    ///
    /// The gap is measured in wall-clock time, the cadence's own frequency: a daylight-saving
    /// change that moves two slots closer together in UTC does not make a cadence too frequent.
    /// The slots walked are those of [`INTERVAL_HORIZON_DAYS`] from 2024-01-01 (a leap year,
    /// so every day of the year and the wrap into the next are seen), at most
    /// [`INTERVAL_MAX_SLOTS`] of them. A minimum of one minute or less passes every cadence.
    pub fn check_min_interval(&self, minimum_minutes: u32) -> Result<(), ScheduleError> {
        if minimum_minutes <= 1 {
            return Ok(());
        }
        let minimum = Duration::minutes(i64::from(minimum_minutes));
        let cron = self.cron()?;
        let Some(start) = NaiveDate::from_ymd_opt(2024, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
        else {
            return Ok(());
        };
        let end = start + Duration::days(INTERVAL_HORIZON_DAYS);
        let mut previous: Option<NaiveDateTime> = None;
        for slot in cron
            .local_times_after(start - Duration::minutes(1))
            .take(INTERVAL_MAX_SLOTS)
            .take_while(|t| *t <= end)
        {
            if let Some(p) = previous
                && slot - p < minimum
            {
                return Err(ScheduleError::TooFrequent(format!(
                    "the cadence fires {} minute(s) apart (e.g. at {} and {}); the minimum interval between two slots is {minimum_minutes} minutes",
                    (slot - p).num_minutes(),
                    p.format("%a %H:%M"),
                    slot.format("%a %H:%M"),
                )));
            }
            previous = Some(slot);
        }
        Ok(())
    }
}

/// `HH:MM`, 24-hour.
fn parse_at(at: &str) -> Result<NaiveTime, ScheduleError> {
    let ok = at.len() == 5 && at.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(at, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| ScheduleError::Cadence(format!("`{at}` is not a time of day as HH:MM")))
}

/// Every timezone name [`parse_timezone`] accepts (the IANA names chrono-tz carries), for the
/// API document's enum.
pub fn timezone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::Timezone(name.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn cadences_firing_more_often_than_the_minimum_are_refused() {
        let cron = |e: &str| Cadence::Cron { expr: e.into() };
        for e in [
            "* * * * *",
            "*/30 * * * *",
            "0,59 * * * *",
            "0 0,23 * * *",
            // Only on Feb 29, half an hour apart.
            "0,30 12 29 2 *",
        ] {
            let err = cron(e).check_min_interval(61).expect_err(e);
            assert_eq!(err.code(), ReasonCode::ScheduleTooFrequent, "{e}");
            assert!(err.to_string().contains("61 minutes"), "{err}");
        }
        // 23:00 to 00:00 is exactly an hour.
        assert_eq!(cron("0 0,23 * * *").check_min_interval(60), Ok(()));
        for ok in [
            Cadence::Hourly { minute: 17 },
            Cadence::Daily { at: "02:30".into() },
            Cadence::Weekly {
                weekday: Weekday::Sunday,
                at: "23:59".into(),
            },
            cron("0 */2 * * *"),
            cron("0 0 29 2 *"),
            cron("0 4 * * 1"),
        ] {
            assert_eq!(ok.check_min_interval(60), Ok(()), "{ok:?}");
        }
        assert!(cron("0 */2 * * *").check_min_interval(121).is_err());
        assert_eq!(cron("* * * * *").check_min_interval(1), Ok(()));
        assert_eq!(cron("*/30 * * * *").check_min_interval(30), Ok(()));
        assert_eq!(
            cron("61 * * * *")
                .check_min_interval(60)
                .map_err(|e| e.code()),
            Err(ReasonCode::ScheduleInvalidCadence)
        );
    }

    #[test]
    fn a_kind_names_its_slots_type_and_old_schedules_read_as_backups() {
        use crate::{Click, Identity, LockKind, OperationType, TenantId, WorkspaceId};
        let (ws, tenant, id) = (WorkspaceId::new(), TenantId::new(), ScheduleId::new());
        let slot = chrono::TimeZone::with_ymd_and_hms(&Utc, 2027, 3, 28, 1, 0, 0)
            .single()
            .expect("a time");
        for kind in ScheduleKind::ALL {
            let params = kind.scheduled_params(id, slot);
            assert_eq!(params.operation(), kind.scheduled_type());
            let a = Identity::derive(ws, tenant, &params, &Click::Nonce(ulid::Ulid::new()));
            let b = Identity::derive(ws, tenant, &params, &Click::Nonce(ulid::Ulid::new()));
            assert_eq!((a.lock, &a), (LockKind::Strict, &b), "{kind:?}");
            let later = kind.scheduled_params(id, slot + Duration::hours(1));
            let c = Identity::derive(ws, tenant, &later, &Click::Nonce(ulid::Ulid::new()));
            assert_ne!(a, c);
            assert_eq!(
                serde_json::to_value(kind).expect("serializes"),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(
            ScheduleKind::DriftCheck.scheduled_type(),
            OperationType::DriftScheduled
        );
        // A backup and a drift check of one schedule and slot are different identities.
        let backup = ScheduleKind::Backup.scheduled_params(id, slot);
        let drift = ScheduleKind::DriftCheck.scheduled_params(id, slot);
        let n = Click::Nonce(ulid::Ulid::new());
        assert_ne!(
            Identity::derive(ws, tenant, &backup, &n),
            Identity::derive(ws, tenant, &drift, &n)
        );
        assert_eq!(ScheduleKind::default(), ScheduleKind::Backup);
        assert_eq!(ScheduleKind::Backup.min_interval(240), 240);
        assert_eq!(ScheduleKind::DriftCheck.min_interval(240), 60);
        assert_eq!(ScheduleKind::DriftCheck.min_interval(1), 1);
        let hourly = Cadence::Hourly { minute: 0 };
        assert!(
            hourly
                .check_min_interval(ScheduleKind::Backup.min_interval(240))
                .is_err()
        );
        assert_eq!(
            hourly.check_min_interval(ScheduleKind::DriftCheck.min_interval(240)),
            Ok(())
        );
        assert!(serde_json::from_value::<ScheduleKind>(serde_json::json!("drift")).is_err());
    }

    /// A workspace drift schedule's slot batch is retried as drift checks of the same scope
    /// (its children's strict identities would only find the failed runs again).
    #[test]
    fn a_drift_slots_batch_is_retried_as_drift_checks() {
        use crate::batch::{Batch, Targets, retried};
        use crate::{Initiator, OperationType, WorkspaceId};
        let slot = chrono::TimeZone::with_ymd_and_hms(&Utc, 2027, 1, 1, 3, 0, 0)
            .single()
            .expect("a time");
        let params = ScheduleKind::DriftCheck.scheduled_params(ScheduleId::new(), slot);
        let mut batch = Batch::new(
            WorkspaceId::new(),
            params.operation(),
            params.to_value(),
            Targets::All,
            Vec::new(),
            Initiator::Scheduler,
        );
        batch.scope = Some(vec!["deviceConfigurations".into()]);
        let (ty, params) = retried(&batch);
        assert_eq!(ty, OperationType::DriftCheck);
        assert!(crate::batch::check_batchable(ty, Some(&params)).is_ok());
        assert!(OperationParams::parse(ty, Some(params)).is_ok());
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
}
