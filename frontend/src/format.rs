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

/// A bucket's start as an axis label: `2024-03-01 11:00` for hours, the date otherwise
/// (`2024-03` for months).
pub fn bucket_label(bucket: common::engine::TimeBucket, ms: i64) -> String {
    match bucket {
        common::engine::TimeBucket::Hour => utc_minute(ms),
        common::engine::TimeBucket::Month => utc_date(ms)[..7].to_owned(),
        _ => utc_date(ms),
    }
}

/// A number for labels: at most 3 significant decimals, thousands as `k`, millions as `M`.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{x:.3}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{unit}")
}

/// A measure value for a table cell: rates as percentages, others with up to 3 decimals
/// and thousands separators.
pub fn measure_value(measure: &common::view::ViewMeasure, v: Option<f64>) -> String {
    use common::view::ViewMeasure;
    let Some(v) = v else { return "–".to_owned() };
    match measure {
        ViewMeasure::SuccessRate | ViewMeasure::FailureRate => format!("{:.1}%", v * 100.0),
        ViewMeasure::Count | ViewMeasure::Failures => thousands(v as u64),
        _ if v.abs() >= 1000.0 => {
            let whole = thousands(v.abs().round() as u64);
            if v < 0.0 { format!("-{whole}") } else { whole }
        }
        _ => {
            let text = format!("{v:.3}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
    }
}

/// Seconds as `1h 02m`, `3m 05s`, `12.4s`.
pub fn seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{}h {:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    } else if s >= 60.0 {
        format!("{}m {:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

/// Bytes as `1.2 MB`.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0} KB", n / 1e3)
    } else {
        format!("{n} B")
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
        assert_eq!(short_number(1500.0), "1500");
        assert_eq!(short_number(15000.0), "15k");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(seconds(3725.0), "1h 02m");
        assert_eq!(seconds(65.0), "1m 05s");
        assert_eq!(bytes(1_234_567), "1.2 MB");
        use common::view::ViewMeasure;
        assert_eq!(measure_value(&ViewMeasure::SuccessRate, Some(0.9512)), "95.1%");
        assert_eq!(measure_value(&ViewMeasure::Count, Some(12345.0)), "12,345");
        assert_eq!(measure_value(&ViewMeasure::CpuHours, Some(2.5)), "2.5");
    }
}
