//! Group ids: each selected row gets a dense group number from its key parts (dimension
//! codes and a time-bucket index), so every measure is an array indexed by group.

use std::collections::HashMap;

use super::query::TimeBucket;
use crate::table::JobTable;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Part code of the "other" bucket of a top-k part, and of a rolled-up part in a subtotal.
/// Dictionary codes and bucket indices stay far below them.
pub(crate) const OTHER: u32 = u32::MAX - 1;
pub(crate) const ALL: u32 = u32::MAX;

/// Most key parts a group has: two dimensions and a time bucket.
pub(crate) const MAX_PARTS: usize = 3;

pub(crate) type KeyCodes = [u32; MAX_PARTS];

impl TimeBucket {
    /// A running number of the bucket containing `ms` (hours, days, weeks or months since
    /// the epoch), so consecutive buckets have consecutive numbers.
    pub fn index(self, ms: i64) -> i64 {
        match self {
            TimeBucket::Hour => ms.div_euclid(HOUR_MS),
            TimeBucket::Day => ms.div_euclid(DAY_MS),
            // 1970-01-01 was a Thursday: shifting by 3 days puts Mondays at multiples of 7.
            TimeBucket::Week => (ms.div_euclid(DAY_MS) + 3).div_euclid(7),
            TimeBucket::Month => {
                let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
                y * 12 + (m - 1)
            }
        }
    }

    /// The first instant (epoch ms) of the bucket numbered `index`.
    pub fn start_ms(self, index: i64) -> i64 {
        match self {
            TimeBucket::Hour => index * HOUR_MS,
            TimeBucket::Day => index * DAY_MS,
            TimeBucket::Week => (index * 7 - 3) * DAY_MS,
            TimeBucket::Month => days_from_civil(index.div_euclid(12), index.rem_euclid(12) + 1, 1) * DAY_MS,
        }
    }
}

/// Bucket codes of `rows` (bucket number minus the first), the number of buckets
/// spanned, and the first bucket number. `rows` ascend, so their times do too (the table is
/// time-sorted): the first and last rows bound the buckets, and the bucket of the previous
/// row is remembered, so each row costs one comparison and the calendar arithmetic runs
/// once per bucket.
pub(crate) fn bucket_codes(table: &JobTable, rows: &[u32], bucket: TimeBucket) -> (Vec<u32>, u32, i64) {
    let (Some(&first), Some(&last)) = (rows.first(), rows.last()) else { return (Vec::new(), 1, 0) };
    let base = bucket.index(table.time_ms(first as usize));
    let card = bucket.index(table.time_ms(last as usize)) - base + 1;
    let (mut start, mut end, mut code) = (i64::MAX, i64::MIN, 0u32);
    let codes = rows
        .iter()
        .map(|&r| {
            let t = table.time_ms(r as usize);
            if !(start..end).contains(&t) {
                let i = bucket.index(t);
                start = bucket.start_ms(i);
                end = bucket.start_ms(i + 1);
                code = (i - base) as u32;
            }
            code
        })
        .collect();
    (codes, card as u32, base)
}

/// Rows assigned to groups.
pub(crate) struct Groups {
    /// Group of each selected row.
    pub of_row: Vec<u32>,
    /// Part codes of each group (unused parts are [`ALL`]).
    pub keys: Vec<KeyCodes>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Combines per-row part codes (each `< cards[i]`) into group ids. With no parts there is exactly one group, even when no row is selected.
pub(crate) fn group(parts: &[&[u32]], cards: &[u32], n_rows: usize) -> Groups {
    if parts.is_empty() {
        return Groups { of_row: vec![0; n_rows], keys: vec![[ALL; MAX_PARTS]] };
    }
    let space = cards.iter().try_fold(1u64, |acc, &c| acc.checked_mul(u64::from(c.max(1))));
    match space {
        // The composite code is a u32, and the lookup array should not dwarf the rows.
        Some(space) if space <= (1 << 20).max(2 * n_rows as u64).min(u64::from(u32::MAX)) => {
            dense(parts, cards, space as usize, n_rows)
        }
        _ => hashed(parts, n_rows),
    }
}

/// Groups by the composite code itself (specialised by part count, so the loop is plain
/// arithmetic), then numbers the slots that occur in slot order.
fn dense(parts: &[&[u32]], cards: &[u32], space: usize, n_rows: usize) -> Groups {
    let mut of_row: Vec<u32> = match *parts {
        [a] => a.to_vec(),
        [a, b] => a.iter().zip(b).map(|(&a, &b)| a * cards[1] + b).collect(),
        [a, b, c] => (0..n_rows).map(|i| (a[i] * cards[1] + b[i]) * cards[2] + c[i]).collect(),
        _ => unreachable!("at most {MAX_PARTS} key parts"),
    };
    let mut id = vec![u32::MAX; space];
    for &s in &of_row {
        id[s as usize] = 0;
    }
    let mut keys = Vec::new();
    for (s, slot) in id.iter_mut().enumerate() {
        if *slot == 0 {
            *slot = keys.len() as u32;
            let mut k = [ALL; MAX_PARTS];
            let mut rest = s as u32;
            for p in (0..parts.len()).rev() {
                k[p] = rest % cards[p];
                rest /= cards[p];
            }
            keys.push(k);
        }
    }
    for s in of_row.iter_mut() {
        *s = id[*s as usize];
    }
    Groups { of_row, keys }
}

/// Groups by hashing the key codes, for key spaces too large for a lookup array
/// (revision × builder, say).
fn hashed(parts: &[&[u32]], n_rows: usize) -> Groups {
    let mut ids: HashMap<KeyCodes, u32> = HashMap::new();
    let mut keys = Vec::new();
    let of_row = (0..n_rows)
        .map(|i| {
            let mut k = [ALL; MAX_PARTS];
            for (slot, p) in k.iter_mut().zip(parts) {
                *slot = p[i];
            }
            let next = ids.len() as u32;
            *ids.entry(k).or_insert_with(|| {
                keys.push(k);
                next
            })
        })
        .collect();
    Groups { of_row, keys }
}

/// Coarser groups that keep only the parts in `keep` (bit i = part i), the others
/// becoming [`ALL`]: the keys of one subtotal level, and the coarse group of each fine group.
pub(crate) fn roll_up(groups: &Groups, keep: u32) -> (Vec<KeyCodes>, Vec<u32>) {
    merge(groups, |mut k| {
        for (i, c) in k.iter_mut().enumerate() {
            if keep & (1 << i) == 0 {
                *c = ALL;
            }
        }
        k
    })
}

/// Groups whose code for `part` is not kept merged into one [`OTHER`] group per rest of
/// the key (top-k with an "other" bucket), and the new group of each old group.
pub(crate) fn other(groups: &Groups, part: usize, keep: &[bool]) -> (Vec<KeyCodes>, Vec<u32>) {
    merge(groups, |mut k| {
        if !keep[k[part] as usize] {
            k[part] = OTHER;
        }
        k
    })
}

/// Groups by `coarse` of each group's key: the new keys in first-seen order, and the new
/// group of each old one.
fn merge(groups: &Groups, coarse: impl Fn(KeyCodes) -> KeyCodes) -> (Vec<KeyCodes>, Vec<u32>) {
    let mut ids: HashMap<KeyCodes, u32> = HashMap::new();
    let mut keys = Vec::new();
    let map = groups
        .keys
        .iter()
        .map(|&k| {
            let k = coarse(k);
            let next = ids.len() as u32;
            *ids.entry(k).or_insert_with(|| {
                keys.push(k);
                next
            })
        })
        .collect();
    (keys, map)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bucket: TimeBucket, at: &str, start: &str) {
        let ms = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let i = bucket.index(ms(at));
        assert_eq!(bucket.start_ms(i), ms(start), "{bucket:?} {at}");
        assert_eq!(bucket.index(ms(start)), i, "{bucket:?} {start}");
        assert!(bucket.start_ms(i + 1) > ms(at));
    }

    #[test]
    fn utc_buckets() {
        check(TimeBucket::Hour, "2024-03-13T10:30:45.5Z", "2024-03-13T10:00:00Z");
        check(TimeBucket::Day, "2024-03-13T23:59:59.999Z", "2024-03-13T00:00:00Z");
        check(TimeBucket::Week, "2024-03-13T10:30:00Z", "2024-03-11T00:00:00Z");
        check(TimeBucket::Week, "2024-03-11T00:00:00Z", "2024-03-11T00:00:00Z");
        check(TimeBucket::Week, "2024-03-10T23:59:59Z", "2024-03-04T00:00:00Z");
        check(TimeBucket::Week, "1970-01-01T00:00:00Z", "1969-12-29T00:00:00Z");
        check(TimeBucket::Month, "2024-02-29T12:00:00Z", "2024-02-01T00:00:00Z");
        check(TimeBucket::Month, "2023-12-31T23:59:59Z", "2023-12-01T00:00:00Z");
        check(TimeBucket::Month, "1969-12-15T00:00:00Z", "1969-12-01T00:00:00Z");
        check(TimeBucket::Month, "2100-01-01T00:00:00Z", "2100-01-01T00:00:00Z");
    }

    #[test]
    fn civil_round_trip() {
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
