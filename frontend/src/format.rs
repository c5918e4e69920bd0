//! Numbers, instants and ranges as text for people.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The UTC calendar date of an instant, `YYYY-MM-DD`: the chart's x-axis labels.
pub fn utc_date(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_zoned(TimeZone::UTC).date().to_string(),
        Err(_) => ms.to_string(),
    }
}

/// An instant to the minute in UTC, `YYYY-MM-DD HH:MM`.
pub fn utc_minute(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_zoned(TimeZone::UTC).strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The name of a relative range ending now, as in `from=now-7d&to=now` → `Last 7 days`;
/// `None` for anything else, which is then shown by its resolved ends.
pub fn relative_name(from: &str, to: &str) -> Option<String> {
    if to.trim() != "now" {
        return None;
    }
    let amount = from.trim().strip_prefix("now-")?;
    let split = amount.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = amount.split_at(split);
    let n: u64 = n.parse().ok()?;
    let unit = match unit {
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "M" => "month",
        "y" => "year",
        _ => return None,
    };
    Some(if n == 1 { format!("Last {unit}") } else { format!("Last {n} {unit}s") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(utc_date(1_709_290_800_000), "2024-03-01");
        assert_eq!(utc_minute(1_709_290_800_000), "2024-03-01 11:00");
        assert_eq!(relative_name("now-30d", "now").as_deref(), Some("Last 30 days"));
        assert_eq!(relative_name("now-24h", "now").as_deref(), Some("Last 24 hours"));
        assert_eq!(relative_name("now-1w", "now").as_deref(), Some("Last week"));
        assert_eq!(relative_name("now-7d", "now-1d"), None);
        assert_eq!(relative_name("now/d", "now"), None);
    }
}
