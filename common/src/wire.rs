//! The data API's compact columnar encoding of a [`JobTable`].
//!
//! A hand-rolled byte layout rather than a serde format, because decoding is on the
//! browser's critical path (issue 4: a million jobs in ≤ 20 ms of WASM) and a generic
//! deserializer pays a visitor call and a bounds-checked push per value. The columns are
//! chosen to make small numbers: times are deltas between consecutive (time-sorted) rows,
//! durations and queue waits are offsets, codes of small dictionaries are single bytes and
//! those of large ones (revisions) deltas from the previous row. A column of integers is
//! fixed-width, the narrowest of 1, 2, 4 or 8 bytes that holds its largest value (zigzag
//! for signed ones): decoding is a load per value rather than a branch per byte (varints
//! decoded 1M jobs in ~30 ms of WASM, above the 20 ms budget), and HTTP compression (brotli
//! or gzip, negotiated) squeezes out the zero high bytes, which the browser undoes natively.
//!
//! Layout, every count a varint:
//! ```text
//! version len unit_ms
//! dims: count, then per dim: name, dictionary (count, strings), codes
//! id prefixes (a dim), id number base (zigzag varint), id number codes (zigzag deltas)
//! time (zigzag deltas), queue codes, run codes (see `JobTable::queue`, in `unit_ms`)
//! metrics: count, then per metric: name, rows set, row gaps, kind byte, values
//! ```
//! Header numbers are LEB128 varints. A string is its byte length and UTF-8 bytes. An
//! integer column is a width byte and `len × width` bytes. Codes are a kind byte (0 one
//! byte per row, 1 integer column, 2 integer column of zigzag deltas) and the codes.

use crate::table::{Codes, DimColumn, IdColumn, JobTable, MetricColumn, NO_TIME, Strings};

mod codec;

use codec::{Reader, Writer, bytes_below, deltas, offsets, unzigzag, width, zigzag};

/// Media type of the encoding, served by `GET /api/v1/jobs` by default.
pub const CONTENT_TYPE: &str = "application/vnd.buildscope.jobs";
/// Format version; a decoder refuses other versions.
pub const VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Truncated input, a bad varint or bad UTF-8 (the postcard error names which).
    #[error("not a Buildscope job table: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("job table format version {0} is not supported (expected {VERSION})")]
    Version(u32),
    #[error("job table is inconsistent: {0}")]
    Inconsistent(&'static str),
}

const CODES_BYTES: u8 = 0;
const CODES_PLAIN: u8 = 1;
const CODES_DELTA: u8 = 2;
const VALUES_INTS: u8 = 0;
const VALUES_FLOATS: u8 = 1;

impl JobTable {
    /// Encodes the table for the wire.
    pub fn encode(&self) -> Vec<u8> {
        let len = self.len;
        let unit = time_unit(self);
        let u = |ms: i64| ms / unit;
        let mut w = Writer::default();
        w.uvarint(u64::from(VERSION));
        w.uvarint(len as u64);
        w.uvarint(unit as u64);
        w.uvarint(self.dims.len() as u64);
        for d in &self.dims {
            encode_dim(&mut w, d);
        }
        encode_dim(&mut w, &self.ids.prefixes);
        w.ivarint(self.ids.base);
        w.uints(deltas((0..len).map(|row| self.ids.numbers.get(row) as i64)));
        // NO_TIME stays itself so it survives the unit; such rows sort first.
        w.uints(deltas(self.time.iter().map(|&t| if t == NO_TIME { t } else { u(t) })));
        // The table's queue and run codes, with the offsets in units.
        let offset = |code: u64, markers: u64| {
            if code < markers { code } else { (code - markers) / unit as u64 + markers }
        };
        w.uints((0..len).map(|row| offset(self.queue.get(row), 2)).collect());
        w.uints((0..len).map(|row| offset(self.run.get(row), 1)).collect());
        w.uvarint(self.metrics.len() as u64);
        for m in &self.metrics {
            encode_metric(&mut w, m);
        }
        w.buf
    }

    /// Decodes what [`JobTable::encode`] produced.
    pub fn decode(bytes: &[u8]) -> Result<JobTable, WireError> {
        let mut r = Reader::new(bytes);
        let version = r.uvarint()?;
        if version != u64::from(VERSION) {
            return Err(WireError::Version(u32::try_from(version).unwrap_or(u32::MAX)));
        }
        let len = usize::try_from(r.uvarint()?).map_err(|_| WireError::Inconsistent("length"))?;
        // Every row takes at least one byte in each of the time columns, which bounds the
        // allocations a forged length can cause.
        if len > bytes.len() {
            return Err(WireError::Inconsistent("length exceeds the input"));
        }
        let unit = r.uvarint()? as i64;
        let n_dims = r.uvarint()? as usize;
        let dims =
            (0..n_dims.min(bytes.len())).map(|_| decode_dim(&mut r, len)).collect::<Result<Vec<_>, _>>()?;
        if dims.len() < crate::table::FIXED_DIMS.len() {
            return Err(WireError::Inconsistent("fixed dimensions missing"));
        }
        if dims[crate::table::dim::RESULT]
            .values
            .iter()
            .skip(1)
            .any(|v| v.parse::<crate::job::JobResult>().is_err())
        {
            return Err(WireError::Inconsistent("unknown result name"));
        }
        let prefixes = decode_dim(&mut r, len)?;
        let base = r.ivarint()?;
        let numbers = offsets(&r.uints(len)?, |prev, z| {
            *prev = prev.wrapping_add(unzigzag(z));
            *prev as u64
        });
        let (times, queues, runs) = (r.uints(len)?, r.uints(len)?, r.uints(len)?);
        let (mut t, mut out_of_order) = (0i64, false);
        let time = times.map(|z| {
            let delta = unzigzag(z);
            // The engine relies on rows being in time order (binary-searched ranges); the
            // only step down allowed is from rows without a time, which sort first.
            out_of_order |= delta < 0 && t != NO_TIME && t != 0;
            t = t.wrapping_add(delta);
            if t == NO_TIME { t } else { t.wrapping_mul(unit) }
        });
        if out_of_order {
            return Err(WireError::Inconsistent("rows out of time order"));
        }
        let unit = unit as u64;
        let queue = offsets(&queues, |_, q| if q < 2 { q } else { (q - 2).wrapping_mul(unit) + 2 });
        let run = offsets(&runs, |_, d| if d < 1 { d } else { (d - 1).wrapping_mul(unit) + 1 });
        if (0..len).any(|row| run.get(row) > 0 && queue.get(row) == 1) {
            return Err(WireError::Inconsistent("finished without a start"));
        }
        let n_metrics = r.uvarint()? as usize;
        let metrics =
            (0..n_metrics.min(bytes.len())).map(|_| decode_metric(&mut r, len)).collect::<Result<_, _>>()?;
        Ok(JobTable { len, dims, ids: IdColumn { prefixes, base, numbers }, time, queue, run, metrics })
    }
}

/// 1000 when every time, queue wait and duration is a whole second, else 1.
fn time_unit(table: &JobTable) -> i64 {
    let all_whole = table.time.iter().all(|&t| t == NO_TIME || t % 1000 == 0)
        && (0..table.len).all(|row| {
            let q = table.queue.get(row);
            let d = table.run.get(row);
            (q < 2 || (q - 2).is_multiple_of(1000)) && (d < 1 || (d - 1).is_multiple_of(1000))
        });
    if all_whole { 1000 } else { 1 }
}

fn encode_dim(w: &mut Writer, d: &DimColumn) {
    w.str(&d.name);
    w.uvarint(d.values.len() as u64 - 1);
    for v in d.values.iter().skip(1) {
        w.str(v);
    }
    if let Codes::U8(codes) = &d.codes {
        w.buf.push(CODES_BYTES);
        w.buf.extend_from_slice(codes);
        return;
    }
    // Large dictionaries in first-seen order (revisions) have codes close to the previous
    // row's; others (branches) do not. Take whichever is smaller.
    let plain: Vec<u64> = d.codes.to_u32s().into_iter().map(u64::from).collect();
    let delta = deltas(plain.iter().map(|&c| c as i64));
    let (kind, column) =
        if width(&delta) < width(&plain) { (CODES_DELTA, delta) } else { (CODES_PLAIN, plain) };
    w.buf.push(kind);
    w.uints(column);
}

fn decode_dim(r: &mut Reader, len: usize) -> Result<DimColumn, WireError> {
    let name = r.string()?;
    let n = r.uvarint()? as usize;
    let mut values = Strings::default();
    values.push("");
    for _ in 0..n {
        values.push(r.str()?);
    }
    values.shrink_to_fit();
    let kind = r.byte()?;
    let card = values.len();
    let out_of_range = || WireError::Inconsistent("dictionary code out of range");
    let codes = match kind {
        CODES_BYTES => {
            let codes = r.take(len)?;
            if !bytes_below(codes, card) {
                return Err(out_of_range());
            }
            Codes::U8(codes.to_vec())
        }
        CODES_PLAIN | CODES_DELTA => {
            let column = r.uints(len)?;
            let (mut prev, mut bad) = (0i64, false);
            let mut code = |v: u64| {
                let c = if kind == CODES_PLAIN {
                    v
                } else {
                    prev = prev.wrapping_add(unzigzag(v));
                    prev as u64
                };
                bad |= c >= card as u64;
                c
            };
            // Straight into the table's width: no second pass to narrow.
            let codes = if card <= 1 << 8 {
                Codes::U8(column.map(|v| code(v) as u8))
            } else if card <= 1 << 16 {
                Codes::U16(column.map(|v| code(v) as u16))
            } else {
                Codes::U32(column.map(|v| code(v) as u32))
            };
            if bad {
                return Err(out_of_range());
            }
            codes
        }
        _ => return Err(WireError::Inconsistent("unknown code kind")),
    };
    Ok(DimColumn { name, values, codes })
}

fn encode_metric(w: &mut Writer, m: &MetricColumn) {
    w.str(&m.name);
    let present: Vec<(usize, f64)> =
        m.values.iter().copied().enumerate().filter(|(_, v)| !v.is_nan()).collect();
    w.uvarint(present.len() as u64);
    w.uints(
        deltas(present.iter().map(|&(row, _)| row as i64)).into_iter().map(|z| unzigzag(z) as u64).collect(),
    );
    // Integers below 2^53 are exact in f64 and travel as varints.
    if present.iter().all(|(_, v)| v.fract() == 0.0 && v.abs() < 9.0e15) {
        w.buf.push(VALUES_INTS);
        w.uints(present.iter().map(|&(_, v)| zigzag(v as i64)).collect());
    } else {
        w.buf.push(VALUES_FLOATS);
        w.uints(present.iter().map(|&(_, v)| v.to_bits()).collect());
    }
}

fn decode_metric(r: &mut Reader, len: usize) -> Result<MetricColumn, WireError> {
    let name = r.string()?;
    let n = r.uvarint()? as usize;
    if n > len {
        return Err(WireError::Inconsistent("more metric values than rows"));
    }
    let mut gaps = r.uints(n)?;
    let kind = r.byte()?;
    let mut column = r.uints(n)?;
    let mut values = vec![f64::NAN; len];
    let mut row = 0usize;
    for _ in 0..n {
        row = row.wrapping_add(gaps.next() as usize);
        let v = match kind {
            VALUES_INTS => unzigzag(column.next()) as f64,
            VALUES_FLOATS => f64::from_bits(column.next()),
            _ => return Err(WireError::Inconsistent("unknown value kind")),
        };
        *values.get_mut(row).ok_or(WireError::Inconsistent("metric row out of range"))? = v;
    }
    Ok(MetricColumn { name, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;

    fn jobs() -> Vec<Job> {
        serde_json::from_str(
            r#"[
            {"source":"bb","id":12,"builder":"linux","worker":"w1","revision":"abc","result":"success",
             "requested_at":1700000000,"started_at":1700000010,"finished_at":1700000100,
             "tags":{"platform":"linux64"},"metrics":{"build_size_bytes":123456789}},
            {"source":"gh","id":"run-5","builder":"mac","result":"pending","requested_at":1700000005},
            {"source":"bb","id":"007","builder":"linux","result":"running","started_at":1700000001.5,
             "metrics":{"ratio":0.25}},
            {"source":"bb","id":11,"builder":"win","branch":"main","result":"failure",
             "started_at":1700000010,"finished_at":1700000020,"tags":{"MACHINE":"qemux86"}}
        ]"#,
        )
        .unwrap()
    }

    #[test]
    fn round_trips_every_field() {
        let input = jobs();
        let table = JobTable::from_jobs(&input);
        let back = JobTable::decode(&table.encode()).unwrap();
        assert_eq!(back, table);
        let mut rows: Vec<Job> = (0..back.len).map(|r| back.job(r)).collect();
        let mut expected = input;
        let key = |j: &Job| (j.time(), j.source.clone(), j.id.clone());
        expected.sort_by_key(key);
        rows.sort_by_key(key);
        assert_eq!(rows, expected);
    }

    #[test]
    fn rows_are_time_ordered() {
        let table = JobTable::from_jobs(&jobs());
        let times: Vec<i64> = (0..table.len).map(|r| table.time_ms(r)).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(table.ids.get(0), "007");
    }

    #[test]
    fn empty_table_round_trips() {
        let table = JobTable::from_jobs(&[]);
        assert_eq!(JobTable::decode(&table.encode()).unwrap(), table);
    }

    #[test]
    fn unusual_rows_round_trip() {
        const DAY: i64 = 86_400_000;
        let t = 1_700_000_000_123;
        let mut b = crate::table::TableBuilder::default();
        let fixed = |builder| [Some("s"), None, None, Some(builder), None, None, Some("success")];
        // No time at all (ingest refuses it, the builder does not), a queue and a run longer
        // than u32 milliseconds, and an id number far from the others.
        b.push_row(fixed("none"), "a", None, None, None, &[], &[]);
        b.push_row(fixed("slow"), "b7", Some(t - 60 * DAY), Some(t), Some(t + 70 * DAY), &[], &[("x", 0.5)]);
        b.push_row(fixed("big"), "99999999999999", Some(t), Some(t + 1), None, &[("k", "v")], &[]);
        let table = b.finish();
        assert!(matches!(table.queue, crate::table::Offsets::U64(_)));
        let back = JobTable::decode(&table.encode()).unwrap();
        assert_eq!(back, table);
        assert_eq!(back.job(0).time(), None);
        assert_eq!(back.duration_ms(1), Some(70 * DAY));
        assert_eq!(back.ids.get(2), "99999999999999");
        let q = crate::engine::Query {
            bucket: Some(crate::engine::TimeBucket::Month),
            measures: vec![crate::engine::Measure::Count],
            ..Default::default()
        };
        assert_eq!(crate::engine::run(&back, &q).unwrap().rows, vec![2]);
    }

    #[test]
    fn byte_codes_are_checked_against_the_dictionary() {
        for card in [1usize, 2, 5, 100, 127, 128, 129, 200, 256] {
            for bad in [card, 127, 128, 200, 255].into_iter().filter(|&b| b >= card && b < 256) {
                for at in [0, 7, 8, 20] {
                    let mut bytes = vec![(card - 1) as u8; 21];
                    assert!(bytes_below(&bytes, card), "card {card}");
                    bytes[at] = bad as u8;
                    assert!(!bytes_below(&bytes, card), "card {card}, byte {bad} at {at}");
                }
            }
        }
    }

    #[test]
    fn rejects_garbage_and_versions() {
        assert!(matches!(
            JobTable::decode(b"\x05garbage"),
            Err(WireError::Malformed(_) | WireError::Version(_))
        ));
        let mut bytes = JobTable::from_jobs(&jobs()).encode();
        bytes[0] = 9;
        assert!(matches!(JobTable::decode(&bytes), Err(WireError::Version(9))));
        bytes.truncate(bytes.len() / 2);
        assert!(JobTable::decode(&bytes).is_err());
    }
}
