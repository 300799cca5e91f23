//! Time zones: IANA names, conversion of instants for display, and local date-times typed by
//! a user turned into instants, refusing those a daylight-saving change skips.

use std::fmt;

use time::{OffsetDateTime, PrimitiveDateTime};
use time_tz::{OffsetDateTimeExt, OffsetResult, PrimitiveDateTimeExt, Tz};

/// A known IANA time zone.
#[derive(Clone, Copy)]
pub struct TimeZone(&'static Tz);

/// A time zone name that is not in the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone \"{0}\": use an IANA name such as UTC or Europe/Berlin")]
pub struct UnknownTimeZone(pub String);

/// Why a local date and time does not name one instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    /// The clocks jump over this time when daylight saving starts.
    #[error("{time} does not exist in {zone}: the clocks skip it for daylight saving time")]
    Skipped { time: String, zone: String },
}

impl TimeZone {
    /// UTC.
    pub fn utc() -> Self {
        Self(time_tz::timezones::db::UTC)
    }

    /// Looks up a zone by IANA name (`Europe/Berlin`, `UTC`) or Windows name; [`name`]
    /// then gives its canonical IANA name (`UTC` becomes `Etc/UTC`).
    ///
    /// [`name`]: TimeZone::name
    pub fn parse(name: &str) -> Result<Self, UnknownTimeZone> {
        let name = name.trim();
        time_tz::timezones::get_by_name(name)
            .map(Self)
            .ok_or_else(|| UnknownTimeZone(name.to_owned()))
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        time_tz::TimeZone::name(self.0)
    }

    /// The instant as wall-clock time in this zone.
    pub fn local(&self, instant: OffsetDateTime) -> OffsetDateTime {
        instant.to_timezone(self.0)
    }

    /// The instant a wall-clock time in this zone names. In the hour repeated when daylight
    /// saving ends, the earlier of the two instants; in the hour skipped when it starts, an
    /// error.
    pub fn instant(&self, local: PrimitiveDateTime) -> Result<OffsetDateTime, LocalTimeError> {
        match local.assume_timezone(self.0) {
            OffsetResult::Some(t) => Ok(t),
            OffsetResult::Ambiguous(a, b) => Ok(a.min(b)),
            OffsetResult::None => Err(LocalTimeError::Skipped {
                time: format_local(local),
                zone: self.name().to_owned(),
            }),
        }
    }

    /// All IANA names, sorted, for pickers.
    pub fn all_names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = time_tz::timezones::iter()
            .map(time_tz::TimeZone::name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for TimeZone {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

fn format_local(t: PrimitiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn known_names_parse_and_unknown_ones_do_not() {
        assert_eq!(
            TimeZone::parse("Europe/Berlin").map(|t| t.name()),
            Ok("Europe/Berlin")
        );
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(TimeZone::parse("").is_err());
    }

    #[test]
    fn skipped_local_time_is_refused() {
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        // 2026-03-29 02:30 does not exist in Berlin: clocks go from 02:00 to 03:00.
        let err = berlin.instant(datetime!(2026-03-29 02:30));
        assert!(matches!(err, Err(LocalTimeError::Skipped { .. })));
    }

    #[test]
    fn repeated_local_time_takes_the_earlier_instant() {
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        // 2026-10-25 02:30 happens twice in Berlin; the first is still summer time (+02:00).
        let t = berlin.instant(datetime!(2026-10-25 02:30));
        assert_eq!(t, Ok(datetime!(2026-10-25 00:30 UTC)));
    }

    #[test]
    fn ordinary_local_time_round_trips() {
        let ny = TimeZone::parse("America/New_York").unwrap();
        let t = ny.instant(datetime!(2026-07-01 09:15)).ok();
        assert_eq!(t, Some(datetime!(2026-07-01 13:15 UTC)));
        let back = t.map(|t| ny.local(t));
        assert_eq!(back.map(|b| (b.hour(), b.minute())), Some((9, 15)));
    }
}
