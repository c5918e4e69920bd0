//! Instants and time ranges.
//!
//! Everything is UTC milliseconds since the Unix epoch. Records arrive with RFC 3339 strings
//! or epoch seconds; URLs use Grafana's time syntax (`now-7d`, epoch ms, RFC 3339).

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{RoundMode, Timestamp as JiffTimestamp, ToSpan, Unit, Zoned, ZonedRound};
use serde::{Deserialize, Serialize};

/// Earliest instant accepted in a record: 1990-01-01. Anything earlier is almost certainly a
/// unit mistake or a zero value.
pub const MIN_RECORD_MS: i64 = 631_152_000_000;
/// Latest instant accepted in a record: 2100-01-01. Epoch *milliseconds* passed where seconds
/// are expected land far beyond it, so the error can say so.
pub const MAX_RECORD_MS: i64 = 4_102_444_800_000;

/// A UTC instant with millisecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// From epoch seconds as found in Buildbot, BuildAPI and Yocto records (fractions kept
    /// to the millisecond). Rejects values outside 1990–2100 with a message that names the
    /// likely unit mistake.
    pub fn from_epoch_seconds(secs: f64) -> Result<Self, String> {
        if !secs.is_finite() {
            return Err("epoch seconds must be a finite number".into());
        }
        let ms = (secs * 1000.0).round();
        if ms > MAX_RECORD_MS as f64 {
            let hint = if ms / 1000.0 < MAX_RECORD_MS as f64 {
                " (looks like epoch milliseconds; epoch seconds expected)"
            } else if ms / 1_000_000.0 < MAX_RECORD_MS as f64 {
                " (looks like epoch microseconds; epoch seconds expected)"
            } else {
                ""
            };
            return Err(format!("epoch seconds {secs} is after 2100{hint}"));
        }
        if ms < MIN_RECORD_MS as f64 {
            return Err(format!("epoch seconds {secs} is before 1990"));
        }
        Ok(Timestamp(ms as i64))
    }

    /// From an RFC 3339 string (`2024-03-01T12:00:00Z`, any offset, fractions allowed).
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        let ts: JiffTimestamp =
            s.parse().map_err(|e| format!("`{s}` is not an RFC 3339 timestamp or epoch seconds: {e}"))?;
        let ms = ts.as_millisecond();
        if !(MIN_RECORD_MS..=MAX_RECORD_MS).contains(&ms) {
            return Err(format!("`{s}` is outside 1990–2100"));
        }
        Ok(Timestamp(ms))
    }

    /// RFC 3339 in UTC, with milliseconds only when they are not zero.
    pub fn to_rfc3339(self) -> String {
        match JiffTimestamp::from_millisecond(self.0) {
            Ok(ts) if self.0 % 1000 == 0 => format!("{ts:.0}"),
            Ok(ts) => format!("{ts:.3}"),
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string or epoch seconds")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_epoch_seconds(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                match v.parse::<f64>() {
                    Ok(secs) => Timestamp::from_epoch_seconds(secs),
                    Err(_) => Timestamp::parse_rfc3339(v),
                }
                .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses one end of a Grafana-style time range into epoch ms.
///
/// Accepts `now`, `now-7d`, `now+1h`, `now-1M/M` (rounding, to the start of the unit, or to
/// its end when `round_up`, as Grafana does for `to`), epoch milliseconds, RFC 3339, and a
/// bare date `2024-03-01`. Units: `s m h d w M y` (`m` minute, `M` month). Calendar units
/// are UTC.
pub fn parse_time_expr(expr: &str, now_ms: i64, round_up: bool) -> Result<i64, String> {
    let s = expr.trim();
    if s.is_empty() {
        return Err("empty time".into());
    }
    if let Some(rest) = s.strip_prefix("now") {
        return parse_relative(rest, now_ms, round_up).map_err(|e| format!("`{s}`: {e}"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|e| format!("`{s}`: {e}"));
    }
    if let Ok(ts) = s.parse::<JiffTimestamp>() {
        return Ok(ts.as_millisecond());
    }
    if let Ok(date) = s.parse::<jiff::civil::Date>() {
        let day = date.to_zoned(TimeZone::UTC).map_err(|e| e.to_string())?;
        let ms = day.timestamp().as_millisecond();
        return Ok(if round_up { ms + DAY_MS - 1 } else { ms });
    }
    Err(format!("`{s}` is not a time: use now, now-7d, now-24h, epoch milliseconds or RFC 3339"))
}

const DAY_MS: i64 = 86_400_000;

fn parse_relative(mut rest: &str, now_ms: i64, round_up: bool) -> Result<i64, String> {
    let now = JiffTimestamp::from_millisecond(now_ms).map_err(|e| e.to_string())?;
    let mut t: Zoned = now.to_zoned(TimeZone::UTC);
    while !rest.is_empty() {
        let op = rest.as_bytes()[0];
        rest = &rest[1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = if digits == 0 { 1 } else { rest[..digits].parse().map_err(|_| "number too large")? };
        if op == b'/' && digits > 0 {
            return Err("rounding takes a unit only, like /d".into());
        }
        rest = &rest[digits..];
        let unit = rest.chars().next().ok_or("missing unit after the number")?;
        rest = &rest[unit.len_utf8()..];
        let unit = time_unit(unit)?;
        t = match op {
            b'+' | b'-' => {
                let n = if op == b'-' { -n } else { n };
                t.checked_add(n.span_of(unit)).map_err(|e| e.to_string())?
            }
            b'/' => round_to(&t, unit, round_up)?,
            other => return Err(format!("unexpected `{}`", other as char)),
        };
    }
    Ok(t.timestamp().as_millisecond())
}

fn time_unit(c: char) -> Result<Unit, String> {
    Ok(match c {
        's' => Unit::Second,
        'm' => Unit::Minute,
        'h' => Unit::Hour,
        'd' => Unit::Day,
        'w' => Unit::Week,
        'M' => Unit::Month,
        'y' => Unit::Year,
        other => return Err(format!("unknown unit `{other}` (use s m h d w M y)")),
    })
}

/// Start of the unit containing `t`, or the last millisecond of it when `round_up`.
fn round_to(t: &Zoned, unit: Unit, round_up: bool) -> Result<Zoned, String> {
    let round = || -> Result<Zoned, jiff::Error> {
        let start = match unit {
            // Grafana weeks start on Monday (ISO).
            Unit::Week => {
                t.start_of_day()?.checked_sub(i64::from(t.weekday().to_monday_zero_offset()).days())?
            }
            Unit::Month => t.first_of_month()?.start_of_day()?,
            Unit::Year => t.first_of_year()?.start_of_day()?,
            small => t.round(ZonedRound::new().smallest(small).mode(RoundMode::Trunc))?,
        };
        if !round_up {
            return Ok(start);
        }
        start.checked_add(1_i64.span_of(unit))?.checked_sub(1.millisecond())
    };
    round().map_err(|e| e.to_string())
}

/// `n` of a calendar or clock unit as a span.
trait SpanOf {
    fn span_of(self, unit: Unit) -> jiff::Span;
}

impl SpanOf for i64 {
    fn span_of(self, unit: Unit) -> jiff::Span {
        match unit {
            Unit::Second => self.seconds(),
            Unit::Minute => self.minutes(),
            Unit::Hour => self.hours(),
            Unit::Day => self.days(),
            Unit::Week => self.weeks(),
            Unit::Month => self.months(),
            _ => self.years(),
        }
    }
}

/// A resolved time range `[from_ms, to_ms]`, both inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    /// Resolves Grafana-style `from`/`to` expressions at `now_ms`.
    pub fn parse(from: &str, to: &str, now_ms: i64) -> Result<TimeRange, String> {
        let from_ms = parse_time_expr(from, now_ms, false).map_err(|e| format!("from: {e}"))?;
        let to_ms = parse_time_expr(to, now_ms, true).map_err(|e| format!("to: {e}"))?;
        if to_ms < from_ms {
            return Err(format!("to ({to}) is before from ({from})"));
        }
        Ok(TimeRange { from_ms, to_ms })
    }

    pub fn contains(&self, ms: i64) -> bool {
        (self.from_ms..=self.to_ms).contains(&ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-03-13T10:30:45.500Z, a Wednesday.
    const NOW: i64 = 1_710_325_845_500;

    fn check(expr: &str, round_up: bool, expected: &str) {
        let got = parse_time_expr(expr, NOW, round_up).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let want: JiffTimestamp = expected.parse().unwrap();
        assert_eq!(got, want.as_millisecond(), "{expr} -> {}", JiffTimestamp::from_millisecond(got).unwrap());
    }

    #[test]
    fn grafana_relative_times() {
        check("now", false, "2024-03-13T10:30:45.5Z");
        check("now-7d", false, "2024-03-06T10:30:45.5Z");
        check("now-24h", false, "2024-03-12T10:30:45.5Z");
        check("now-5m", false, "2024-03-13T10:25:45.5Z");
        check("now+1h", false, "2024-03-13T11:30:45.5Z");
        check("now/d", false, "2024-03-13T00:00:00Z");
        check("now/d", true, "2024-03-13T23:59:59.999Z");
        check("now/w", false, "2024-03-11T00:00:00Z");
        check("now-1M/M", false, "2024-02-01T00:00:00Z");
        check("now-1M/M", true, "2024-02-29T23:59:59.999Z");
        check("now/y", false, "2024-01-01T00:00:00Z");
        check("now/h", false, "2024-03-13T10:00:00Z");
    }

    #[test]
    fn absolute_times() {
        check("1710325845500", false, "2024-03-13T10:30:45.5Z");
        check("2024-03-01T12:00:00+01:00", false, "2024-03-01T11:00:00Z");
        check("2024-03-01", false, "2024-03-01T00:00:00Z");
        check("2024-03-01", true, "2024-03-01T23:59:59.999Z");
    }

    #[test]
    fn bad_times_say_why() {
        for (bad, needle) in [
            ("now-7x", "unknown unit `x`"),
            ("now-7", "missing unit"),
            ("yesterday", "not a time"),
            ("now/3d", "unit only"),
            ("", "empty"),
        ] {
            let e = parse_time_expr(bad, NOW, false).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let e = TimeRange::parse("now", "now-1d", NOW).unwrap_err();
        assert!(e.contains("before"), "{e}");
    }

    #[test]
    fn record_timestamps() {
        assert_eq!(Timestamp::from_epoch_seconds(1_700_000_000.25).unwrap().as_millis(), 1_700_000_000_250);
        let e = Timestamp::from_epoch_seconds(1_700_000_000_000.0).unwrap_err();
        assert!(e.contains("looks like epoch milliseconds"), "{e}");
        let e = Timestamp::from_epoch_seconds(1_700_000_000_000_000.0).unwrap_err();
        assert!(e.contains("microseconds"), "{e}");
        assert!(Timestamp::from_epoch_seconds(12.0).is_err());
        assert!(Timestamp::parse_rfc3339("2024-13-01T00:00:00Z").is_err());
        let t = Timestamp::parse_rfc3339("2024-03-01T12:00:00.250+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-01T11:00:00.250Z");
        assert_eq!(Timestamp::from_millis(1_709_290_800_000).to_rfc3339(), "2024-03-01T11:00:00Z");
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
