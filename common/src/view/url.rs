//! The query-string form of a [`ViewState`] (the grammar is in the parent module).
//!
//! Encoding is done here rather than with `form_urlencoded` because `group` needs the raw
//! value: its separating commas are literal and a comma inside a tag key is `%2C`, which a
//! decode-first parser cannot tell apart. Decoding is what `form_urlencoded` does (`+` is a
//! space, `%XX` a byte, a stray `%` itself, invalid UTF-8 replaced).

use std::fmt::Write as _;

use super::{
    Dim, RangeFilter, SortKey, Stat, TimeBucket, ViewError, ViewKind, ViewMeasure, ViewSort, ViewState,
    parse_value, value_name,
};
use crate::job::JobResult;
use crate::time::parse_time_expr;

const DIMS_EXPECTED: &str = "source, project, branch, builder, worker, revision, result or tag.KEY";
const VALUES_EXPECTED: &str = "duration, queue_wait, cpu_seconds or metric.NAME";
const BUCKETS: [(&str, Option<TimeBucket>); 5] = [
    ("hour", Some(TimeBucket::Hour)),
    ("day", Some(TimeBucket::Day)),
    ("week", Some(TimeBucket::Week)),
    ("month", Some(TimeBucket::Month)),
    ("none", None),
];
/// Any instant: time expressions are checked for syntax only, which does not depend on it.
const SYNTAX_NOW_MS: i64 = 1_700_000_000_000;

impl ViewState {
    /// The query string of this view, without `?`: only what differs from the default, in
    /// the grammar's key order, so equal views give equal strings.
    pub fn to_query_string(&self) -> String {
        let default = ViewState::default();
        let mut out = String::new();
        if self.from != default.from {
            pair(&mut out, "from", &self.from);
        }
        if self.to != default.to {
            pair(&mut out, "to", &self.to);
        }
        for f in &self.filters {
            let name = f.dim.name();
            for v in &f.include {
                pair(&mut out, &format!("var-{name}"), v);
            }
            for v in &f.exclude {
                pair(&mut out, &format!("not-{name}"), v);
            }
        }
        for r in &self.ranges {
            pair(&mut out, &format!("range-{}", value_name(&r.value)), &range_text(r));
        }
        if self.measure != default.measure {
            pair(&mut out, "measure", &self.measure.to_string());
        }
        if !self.group.is_empty() {
            // Written raw: the commas between dimensions stay literal.
            separate(&mut out);
            out.push_str("group=");
            for (i, dim) in self.group.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(&dim.name(), &mut out);
            }
        }
        if self.bucket != default.bucket {
            let (name, _) = BUCKETS.iter().find(|(_, b)| *b == self.bucket).expect("every bucket is listed");
            pair(&mut out, "bucket", name);
        }
        if self.view != default.view {
            pair(&mut out, "view", self.view.as_str());
        }
        if let Some(sort) = &self.sort {
            pair(&mut out, "sort", &format!("{}{}", if sort.descending { "-" } else { "" }, sort.key));
        }
        for label in &self.hidden {
            pair(&mut out, "hide", label);
        }
        if self.page != default.page {
            pair(&mut out, "page", &self.page.to_string());
        }
        out
    }

    /// Reads a query string (with or without the leading `?`). Unknown keys are ignored;
    /// a malformed value of a known key is an error naming it.
    pub fn from_query_string(query: &str) -> Result<ViewState, ViewError> {
        let mut view = ViewState::default();
        let query = query.strip_prefix('?').unwrap_or(query);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key);
            let value = decode(raw_value);
            let bad = |expected: &str| ViewError::new(&key, &value, expected);
            match key.as_str() {
                "from" | "to" => {
                    parse_time_expr(&value, SYNTAX_NOW_MS, key == "to").map_err(|e| bad(&e))?;
                    *(if key == "from" { &mut view.from } else { &mut view.to }) = value;
                }
                "measure" => view.measure = parse_measure(&value).ok_or_else(|| bad(&measure_expected()))?,
                "group" => view.group = parse_group(raw_value).map_err(|e| bad(&e))?,
                "bucket" => {
                    let (_, b) = BUCKETS
                        .iter()
                        .find(|(name, _)| *name == value)
                        .ok_or_else(|| bad("one of hour, day, week, month, none"))?;
                    view.bucket = *b;
                }
                "view" => {
                    view.view = ViewKind::ALL.into_iter().find(|k| k.as_str() == value).ok_or_else(|| {
                        bad(&format!("one of {}", ViewKind::ALL.map(ViewKind::as_str).join(", ")))
                    })?;
                }
                "sort" => view.sort = Some(parse_sort(&value).ok_or_else(|| bad(&sort_expected()))?),
                "hide" => view.hidden.push(value),
                "page" => {
                    view.page = value
                        .parse()
                        .ok()
                        .filter(|&p| p >= 1)
                        .ok_or_else(|| bad("a page number, 1 or more"))?;
                }
                _ => {
                    if let Some((prefix, name)) = key.split_once('-')
                        && matches!(prefix, "var" | "not" | "range")
                    {
                        read_prefixed(&mut view, prefix, name, &key, value)?;
                    }
                    // Anything else is someone else's (`format`, a tracking parameter).
                }
            }
        }
        Ok(view)
    }
}

fn separate(out: &mut String) {
    if !out.is_empty() {
        out.push('&');
    }
}

fn pair(out: &mut String, key: &str, value: &str) {
    separate(out);
    encode(key, out);
    out.push('=');
    encode(value, out);
}

/// `var-DIM`, `not-DIM` and `range-VALUE`.
fn read_prefixed(
    view: &mut ViewState,
    prefix: &str,
    name: &str,
    key: &str,
    value: String,
) -> Result<(), ViewError> {
    if prefix == "range" {
        let v = parse_value(name).ok_or_else(|| {
            ViewError::new(
                key,
                &value,
                format!("`{name}` is not a value: use range-VALUE with VALUE {VALUES_EXPECTED}"),
            )
        })?;
        let (min, max) = parse_range(&value).ok_or_else(|| {
            ViewError::new(
                key,
                &value,
                "MIN..MAX with finite numbers, either one optional, MIN ≤ MAX (`60..600`, `60..`)",
            )
        })?;
        let range = RangeFilter { value: v, min, max };
        match view.ranges.binary_search_by(|r| r.value.cmp(&range.value)) {
            Ok(i) => view.ranges[i] = range,
            Err(i) => view.ranges.insert(i, range),
        }
        return Ok(());
    }
    let dim = Dim::parse(name).ok_or_else(|| {
        ViewError::new(
            key,
            &value,
            format!("`{name}` is not a dimension: use {prefix}-DIM with DIM {DIMS_EXPECTED}"),
        )
    })?;
    if dim == Dim::Result && value.parse::<JobResult>().is_err() {
        let names = JobResult::ALL.map(JobResult::as_str).join(", ");
        return Err(ViewError::new(key, &value, format!("a job result: one of {names}")));
    }
    let filter = view.filter_mut(&dim);
    if prefix == "var" { &mut filter.include } else { &mut filter.exclude }.push(value);
    Ok(())
}

fn measure_expected() -> String {
    let plain: Vec<&str> = ViewMeasure::PLAIN.iter().map(|(n, _)| *n).collect();
    let stats = Stat::ALL.map(Stat::as_str).join(", ");
    format!(
        "one of {}, or STAT(VALUE) with STAT one of {stats} and VALUE {VALUES_EXPECTED}",
        plain.join(", ")
    )
}

fn sort_expected() -> String {
    format!(
        "`-` for descending, then key, measure, time, a value ({VALUES_EXPECTED}) or a dimension ({DIMS_EXPECTED})"
    )
}

fn parse_measure(text: &str) -> Option<ViewMeasure> {
    if let Some((_, m)) = ViewMeasure::PLAIN.iter().find(|(name, _)| *name == text) {
        return Some(m.clone());
    }
    let (stat, value) = text.strip_suffix(')')?.split_once('(')?;
    let stat = Stat::ALL.into_iter().find(|s| s.as_str() == stat)?;
    Some(ViewMeasure::Stat { stat, value: parse_value(value)? })
}

/// The raw `group` value: dimensions separated by literal commas.
fn parse_group(raw: &str) -> Result<Vec<Dim>, String> {
    let mut group = Vec::new();
    for item in raw.split(',').filter(|_| !raw.is_empty()) {
        let name = decode(item);
        let dim =
            Dim::parse(&name).ok_or_else(|| format!("`{name}` is not a dimension: use {DIMS_EXPECTED}"))?;
        if group.contains(&dim) {
            return Err(format!("`{name}` is given twice"));
        }
        group.push(dim);
    }
    if group.len() > crate::engine::MAX_DIMS {
        return Err(format!("at most {} dimensions, comma-separated", crate::engine::MAX_DIMS));
    }
    Ok(group)
}

fn parse_sort(text: &str) -> Option<ViewSort> {
    let (descending, name) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let key = match name {
        "key" => SortKey::Key,
        "measure" => SortKey::Measure,
        "time" => SortKey::Time,
        _ => parse_value(name).map(SortKey::Value).or_else(|| Dim::parse(name).map(SortKey::Dim))?,
    };
    Some(ViewSort { key, descending })
}

pub(super) fn range_text(r: &RangeFilter) -> String {
    let bound = |b: Option<f64>| b.map(|x| x.to_string()).unwrap_or_default();
    format!("{}..{}", bound(r.min), bound(r.max))
}

/// `MIN..MAX`; `None` when malformed, unbounded both ways or reversed.
fn parse_range(text: &str) -> Option<(Option<f64>, Option<f64>)> {
    let (lo, hi) = text.split_once("..")?;
    let bound = |s: &str| -> Option<Option<f64>> {
        let s = s.trim();
        if s.is_empty() {
            return Some(None);
        }
        s.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some)
    };
    let (min, max) = (bound(lo)?, bound(hi)?);
    match (min, max) {
        (None, None) => None,
        (Some(a), Some(b)) if a > b => None,
        bounds => Some(bounds),
    }
}

/// Percent-encodes `s` onto `out`: unreserved characters and `! ( ) * : / @` stay, space
/// becomes `+`, every other byte (`&`, `=`, `+`, `,`, `%`, `#`, non-ASCII) is `%XX`.
pub(super) fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b'!' | b'(' | b')' | b'*' | b':' | b'/' | b'@' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Decodes one component: `+` is a space, `%XX` a byte; anything else is taken as it is.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|&c| (c as char).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if hex(i + 1).is_some() && hex(i + 2).is_some() => {
                out.push((hex(i + 1).unwrap() * 16 + hex(i + 2).unwrap()) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
