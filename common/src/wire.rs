//! The data API's compact columnar encoding of a [`JobTable`].
//!
//! postcard (varint integers) over a column layout chosen to make small numbers: times are
//! deltas between consecutive (time-sorted) rows, durations and queue waits are offsets,
//! high-cardinality dictionary codes are deltas from the previous row. HTTP compression
//! (brotli or gzip, negotiated) does the rest, and the browser undoes it natively.

use serde::{Deserialize, Serialize};

use crate::table::{DimColumn, IdColumn, JobTable, MetricColumn, NO_TIME};

/// Media type of the encoding, served by `GET /api/v1/jobs` by default.
pub const CONTENT_TYPE: &str = "application/vnd.buildscope.jobs";
/// Format version; a decoder refuses other versions.
pub const VERSION: u32 = 1;

/// Dictionaries larger than this have their codes delta-coded (revisions, mostly).
const DELTA_CODES_ABOVE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a Buildscope job table: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("job table format version {0} is not supported (expected {VERSION})")]
    Version(u32),
    #[error("job table is inconsistent: {0}")]
    Inconsistent(&'static str),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    version: u32,
    len: u64,
    /// Every time value below is in this many milliseconds (1000 when all are whole seconds).
    unit_ms: u32,
    dims: Vec<WireDim>,
    id_prefixes: WireDim,
    id_numbers: Vec<i64>,
    /// Row time (started, else requested) as deltas from the previous row.
    time: Vec<i64>,
    /// 0: no request time; 1: requested, not started (the row time is the request); q + 2:
    /// queued for q.
    queue: Vec<u64>,
    /// 0: not finished; d + 1: ran for d.
    duration: Vec<u64>,
    metrics: Vec<WireMetric>,
}

#[derive(Serialize, Deserialize)]
struct WireDim {
    name: String,
    /// Without the leading "" of code 0.
    values: Vec<String>,
    codes: WireCodes,
}

#[derive(Serialize, Deserialize)]
enum WireCodes {
    Plain(Vec<u32>),
    Delta(Vec<i64>),
}

#[derive(Serialize, Deserialize)]
struct WireMetric {
    name: String,
    /// Rows that have a value, as gaps from the previous such row.
    row_gaps: Vec<u32>,
    values: WireValues,
}

#[derive(Serialize, Deserialize)]
enum WireValues {
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

impl JobTable {
    /// Encodes the table for the wire.
    pub fn encode(&self) -> Vec<u8> {
        let len = self.len;
        let unit = time_unit(self);
        let u = |ms: i64| ms / unit;
        let mut time = Vec::with_capacity(len);
        let mut queue = Vec::with_capacity(len);
        let mut duration = Vec::with_capacity(len);
        let mut prev = 0;
        for row in 0..len {
            let t = u(self.time_ms(row));
            time.push(t - prev);
            prev = t;
            queue.push(match (self.requested_ms[row], self.started_ms[row]) {
                (NO_TIME, _) => 0,
                (_, NO_TIME) => 1,
                (r, s) => (u(s) - u(r)) as u64 + 2,
            });
            duration.push(match self.duration_ms(row) {
                Some(d) => u(d) as u64 + 1,
                None => 0,
            });
        }
        let mut prev_id = 0;
        let id_numbers = self
            .ids
            .numbers
            .iter()
            .map(|&n| {
                let d = n - prev_id;
                prev_id = n;
                d
            })
            .collect();
        let wire = Wire {
            version: VERSION,
            len: len as u64,
            unit_ms: unit as u32,
            dims: self.dims.iter().map(encode_dim).collect(),
            id_prefixes: encode_dim(&self.ids.prefixes),
            id_numbers,
            time,
            queue,
            duration,
            metrics: self.metrics.iter().map(encode_metric).collect(),
        };
        postcard::to_allocvec(&wire).expect("encoding into a Vec cannot fail")
    }

    /// Decodes what [`JobTable::encode`] produced.
    pub fn decode(bytes: &[u8]) -> Result<JobTable, WireError> {
        let wire: Wire = postcard::from_bytes(bytes)?;
        if wire.version != VERSION {
            return Err(WireError::Version(wire.version));
        }
        let len = usize::try_from(wire.len).map_err(|_| WireError::Inconsistent("length"))?;
        if [wire.time.len(), wire.queue.len(), wire.duration.len(), wire.id_numbers.len()]
            .iter()
            .any(|&l| l != len)
        {
            return Err(WireError::Inconsistent("column lengths differ"));
        }
        let unit = i64::from(wire.unit_ms);
        let mut requested_ms = Vec::with_capacity(len);
        let mut started_ms = Vec::with_capacity(len);
        let mut finished_ms = Vec::with_capacity(len);
        let mut t = 0i64;
        for row in 0..len {
            t = t.wrapping_add(wire.time[row]);
            let q_units = |q: u64| (q - 2) as i64;
            let (requested, started) = match wire.queue[row] {
                0 => (NO_TIME, t.wrapping_mul(unit)),
                1 => (t.wrapping_mul(unit), NO_TIME),
                q => (t.wrapping_sub(q_units(q)).wrapping_mul(unit), t.wrapping_mul(unit)),
            };
            requested_ms.push(requested);
            started_ms.push(started);
            finished_ms.push(match wire.duration[row] {
                0 => NO_TIME,
                d if started != NO_TIME => started.wrapping_add(((d - 1) as i64).wrapping_mul(unit)),
                _ => return Err(WireError::Inconsistent("finished without a start")),
            });
        }
        let mut prev_id = 0i64;
        let numbers = wire
            .id_numbers
            .iter()
            .map(|&d| {
                prev_id = prev_id.wrapping_add(d);
                prev_id
            })
            .collect();
        let dims = wire.dims.into_iter().map(|d| decode_dim(d, len)).collect::<Result<Vec<_>, _>>()?;
        if dims.len() < crate::table::FIXED_DIMS.len() {
            return Err(WireError::Inconsistent("fixed dimensions missing"));
        }
        let result_dim = &dims[crate::table::dim::RESULT];
        if result_dim.values[1..].iter().any(|v| v.parse::<crate::job::JobResult>().is_err()) {
            return Err(WireError::Inconsistent("unknown result name"));
        }
        Ok(JobTable {
            len,
            dims,
            ids: IdColumn { prefixes: decode_dim(wire.id_prefixes, len)?, numbers },
            requested_ms,
            started_ms,
            finished_ms,
            metrics: wire.metrics.into_iter().map(|m| decode_metric(m, len)).collect::<Result<_, _>>()?,
        })
    }
}

/// 1000 when every time, queue wait and duration is a whole second, else 1.
fn time_unit(table: &JobTable) -> i64 {
    let whole = |v: i64| v == NO_TIME || v % 1000 == 0;
    let all_whole = table.requested_ms.iter().all(|&v| whole(v))
        && table.started_ms.iter().all(|&v| whole(v))
        && table.finished_ms.iter().all(|&v| whole(v));
    if all_whole { 1000 } else { 1 }
}

fn encode_dim(d: &DimColumn) -> WireDim {
    let codes = if d.values.len() > DELTA_CODES_ABOVE {
        let mut prev = 0i64;
        WireCodes::Delta(
            d.codes
                .iter()
                .map(|&c| {
                    let delta = i64::from(c) - prev;
                    prev = i64::from(c);
                    delta
                })
                .collect(),
        )
    } else {
        WireCodes::Plain(d.codes.clone())
    };
    WireDim { name: d.name.clone(), values: d.values[1..].to_vec(), codes }
}

fn decode_dim(d: WireDim, len: usize) -> Result<DimColumn, WireError> {
    let mut values = Vec::with_capacity(d.values.len() + 1);
    values.push(String::new());
    values.extend(d.values);
    let codes = match d.codes {
        WireCodes::Plain(codes) => codes,
        WireCodes::Delta(deltas) => {
            let mut prev = 0i64;
            deltas
                .into_iter()
                .map(|delta| {
                    prev += delta;
                    prev as u32
                })
                .collect()
        }
    };
    if codes.len() != len {
        return Err(WireError::Inconsistent("dimension length differs"));
    }
    if codes.iter().any(|&c| c as usize >= values.len()) {
        return Err(WireError::Inconsistent("dictionary code out of range"));
    }
    Ok(DimColumn { name: d.name, values, codes })
}

fn encode_metric(m: &MetricColumn) -> WireMetric {
    let mut row_gaps = Vec::new();
    let mut present = Vec::new();
    let mut prev = 0usize;
    for (row, &v) in m.values.iter().enumerate() {
        if !v.is_nan() {
            row_gaps.push((row - prev) as u32);
            prev = row;
            present.push(v);
        }
    }
    // Integers below 2^53 are exact in f64 and travel as varints.
    let ints = present.iter().all(|v| v.fract() == 0.0 && v.abs() < 9.0e15);
    let values = if ints {
        WireValues::Ints(present.iter().map(|&v| v as i64).collect())
    } else {
        WireValues::Floats(present)
    };
    WireMetric { name: m.name.clone(), row_gaps, values }
}

fn decode_metric(m: WireMetric, len: usize) -> Result<MetricColumn, WireError> {
    let mut values = vec![f64::NAN; len];
    let present: Vec<f64> = match m.values {
        WireValues::Ints(v) => v.into_iter().map(|i| i as f64).collect(),
        WireValues::Floats(v) => v,
    };
    if present.len() != m.row_gaps.len() {
        return Err(WireError::Inconsistent("metric lengths differ"));
    }
    let mut row = 0usize;
    for (gap, v) in m.row_gaps.into_iter().zip(present) {
        row += gap as usize;
        *values.get_mut(row).ok_or(WireError::Inconsistent("metric row out of range"))? = v;
    }
    Ok(MetricColumn { name: m.name, values })
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
    fn rejects_garbage_and_versions() {
        assert!(matches!(JobTable::decode(b"\x05garbage"), Err(WireError::Malformed(_) | WireError::Version(_))));
        let mut bytes = JobTable::from_jobs(&jobs()).encode();
        bytes[0] = 9;
        assert!(matches!(JobTable::decode(&bytes), Err(WireError::Version(9))));
        bytes.truncate(bytes.len() / 2);
        assert!(JobTable::decode(&bytes).is_err());
    }
}
