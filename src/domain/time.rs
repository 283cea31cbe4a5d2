//! Points in time as GMS sees them: milliseconds since the Unix epoch, written on the wire
//! as ISO 8601 in UTC (`2013-08-01T11:00:00.000Z`).

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch. Stored as a plain `u64`, so big-endian keys built from it
/// sort in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus `secs` seconds, saturating instead of overflowing.
    pub fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// Parses an ISO 8601 / RFC 3339 date-time such as `2026-11-21T15:30:00.000Z` or
    /// `2026-11-21T15:30:00+01:00`.
    ///
    /// # Errors
    /// A message saying what a valid value looks like.
    pub fn parse_iso(input: &str) -> Result<Self, String> {
        let parsed = OffsetDateTime::parse(input.trim(), &Rfc3339).map_err(|_| {
            format!(
                "`{input}` is not an ISO 8601 date-time: write it like 2026-11-21T15:30:00.000Z"
            )
        })?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(millis)
            .map(Self)
            .map_err(|_| format!("`{input}` is before 1970: give a time after the Unix epoch"))
    }

    /// The GMS wire form: `2026-11-21T15:30:00.000Z`.
    pub fn to_iso(self) -> String {
        match self.iso_text() {
            Some(text) => text.as_str().to_string(),
            // Beyond year 9999: cannot come from parse_iso, but never panic on stored data.
            None => format!("{}ms", self.0),
        }
    }

    /// [`Timestamp::to_iso`]'s text on the stack, for a reply that writes thousands of times
    /// (availability) without a string each; `None` beyond year 9999, where `to_iso` writes
    /// milliseconds instead. Up to then every text is 24 bytes, so texts sort as times do.
    pub fn iso_text(self) -> Option<IsoText> {
        let nanos = i128::from(self.0) * 1_000_000;
        let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
        let year = u32::try_from(at.year()).ok().filter(|year| *year <= 9999)?;
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for digit in text[at..at + width].iter_mut().rev() {
                // A digit: value % 10 is below 10.
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, u32::from(u8::from(at.month())));
        put(8, 2, u32::from(at.day()));
        put(11, 2, u32::from(at.hour()));
        put(14, 2, u32::from(at.minute()));
        put(17, 2, u32::from(at.second()));
        put(20, 3, u32::from(at.millisecond()));
        Some(IsoText(text))
    }
}

/// A time's GMS wire form up to year 9999 (`2026-11-21T15:30:00.000Z`), held on the stack:
/// see [`Timestamp::iso_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoText([u8; 24]);

impl IsoText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

/// A time plus a duration (to the millisecond), saturating instead of overflowing.
impl std::ops::Add<std::time::Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, duration: std::time::Duration) -> Timestamp {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_keeps_milliseconds() {
        let cases = [
            "2013-08-01T11:00:00.000Z",
            "2026-11-21T15:30:00.123Z",
            "1970-01-01T00:00:00.000Z",
        ];
        for case in cases {
            let parsed = Timestamp::parse_iso(case).expect(case);
            assert_eq!(parsed.to_iso(), case, "round trip of {case}");
        }
    }

    /// The stack text is the formatted text it replaced, at every field's edges and far ones.
    #[test]
    fn iso_text_writes_what_formatting_wrote() {
        let formatted = |millis: u64| {
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .expect("before year 10000");
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second(),
                at.millisecond()
            )
        };
        let last = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let mut cases = vec![0, 1, 999, 59_999, 86_399_999, 951_782_400_000, last];
        let mut seed: u64 = 0x5eed;
        for _ in 0..10_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            cases.push(seed % (last + 1));
        }
        for millis in cases {
            let at = Timestamp::from_millis(millis);
            assert_eq!(at.to_iso(), formatted(millis), "{millis}");
        }
        assert_eq!(
            Timestamp::from_millis(last).to_iso(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(Timestamp::from_millis(last + 1).iso_text(), None);
        assert_eq!(
            Timestamp::from_millis(last + 1).to_iso(),
            "253402300800000ms"
        );
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let parsed = Timestamp::parse_iso("2026-11-21T16:30:00+01:00").unwrap();
        assert_eq!(parsed.to_iso(), "2026-11-21T15:30:00.000Z");
    }

    #[test]
    fn bad_dates_are_rejected_with_an_example() {
        for case in [
            "",
            "tomorrow",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let err = Timestamp::parse_iso(case).expect_err(case);
            assert!(
                err.contains("2026-11-21T15:30:00.000Z") || err.contains("1970"),
                "{case}: {err}"
            );
        }
    }
}
