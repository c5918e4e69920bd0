//! The job list's order and paging, and the CSV of the chart views (one line per group).
//!
//! The server's `format=csv` and the browser's job list both order rows with [`job_order`],
//! so the exported file lists the jobs in the order the page shows them.

use std::cmp::Ordering;

use super::histogram::Histogram;
use super::pivot::number;
use super::{SortKey, ViewError, ViewMeasure, ViewSort, ViewState};
use crate::engine::{self, Answer, Part};
use crate::export::guard;
use crate::table::JobTable;

/// Jobs per page of the job list.
pub const PAGE_SIZE: usize = 50;

impl ViewState {
    /// The rows of the job list, in display order: the view's filters (the measure adds
    /// none), ordered by the view's sort.
    pub fn job_rows(&self, table: &JobTable, now_ms: i64) -> Result<Vec<u32>, ViewError> {
        let filters = self.engine_filters(table, now_ms, None)?;
        let selection =
            engine::select(table, &filters).map_err(|e| ViewError::new("filters", "", e.to_string()))?;
        job_order(table, selection.rows(), self.sort.as_ref())
    }

    /// The job list's pages for `jobs` rows (at least 1).
    pub fn pages(jobs: usize) -> u32 {
        jobs.div_ceil(PAGE_SIZE).max(1) as u32
    }
}

/// `rows` (ascending, as a selection gives them) in the job list's order: newest first by
/// default and for `key`/`measure`; by time, a value (jobs without it last) or a dimension's
/// text (jobs without it last) when asked. Ties go newest first.
pub fn job_order(table: &JobTable, rows: &[u32], sort: Option<&ViewSort>) -> Result<Vec<u32>, ViewError> {
    let newest_first = || rows.iter().rev().copied().collect::<Vec<u32>>();
    let Some(sort) = sort else { return Ok(newest_first()) };
    let mut out = match &sort.key {
        SortKey::Key | SortKey::Measure => return Ok(newest_first()),
        SortKey::Time if sort.descending => return Ok(newest_first()),
        SortKey::Time => return Ok(rows.to_vec()),
        SortKey::Value(value) => {
            let values = engine::values(table, value, rows)
                .map_err(|e| ViewError::new("sort", value_text(sort), e.to_string()))?;
            let mut keyed: Vec<(f64, u32)> = values.into_iter().zip(rows.iter().copied()).collect();
            keyed.sort_by(|a, b| {
                let o = match (a.0.is_nan(), b.0.is_nan()) {
                    (false, false) if sort.descending => b.0.total_cmp(&a.0),
                    (false, false) => a.0.total_cmp(&b.0),
                    (false, true) => Ordering::Less,
                    (true, false) => Ordering::Greater,
                    (true, true) => Ordering::Equal,
                };
                o.then(b.1.cmp(&a.1))
            });
            keyed.into_iter().map(|(_, r)| r).collect::<Vec<u32>>()
        }
        SortKey::Dim(dim) => {
            let column = table.dim(&dim.name()).ok_or_else(|| {
                ViewError::new("sort", value_text(sort), format!("no loaded job has `{dim}`"))
            })?;
            // Rank the dictionary once; rows then compare small integers.
            let mut order: Vec<usize> = (1..column.values.len()).collect();
            order.sort_by(|&a, &b| column.values[a].cmp(&column.values[b]));
            let mut rank = vec![u32::MAX; column.values.len()];
            for (i, c) in order.into_iter().enumerate() {
                rank[c] = if sort.descending { (column.values.len() - 1 - i) as u32 } else { i as u32 };
            }
            let mut keyed: Vec<(u32, u32)> =
                rows.iter().map(|&r| (rank[column.codes.get(r as usize) as usize], r)).collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            keyed.into_iter().map(|(_, r)| r).collect()
        }
    };
    out.shrink_to_fit();
    Ok(out)
}

fn value_text(sort: &ViewSort) -> String {
    format!("{}{}", if sort.descending { "-" } else { "" }, sort.key)
}

/// The groups of an answer as CSV, one line per group in answer order: one column per key
/// part (dimension name or bucket unit), the measure, and the job count. Buckets are
/// RFC 3339 instants; values scaled as shown ([`ViewMeasure::scale`]).
pub fn answer_csv(answer: &Answer, measure: &ViewMeasure) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let mut header: Vec<String> = answer
        .parts
        .iter()
        .map(|p| match p {
            Part::Dim { name, .. } => guard(name).into_owned(),
            Part::Bucket(b) => format!("{b:?}").to_lowercase(),
        })
        .collect();
    header.push(guard(&measure.to_string()).into_owned());
    header.push("jobs".into());
    w.write_record(&header).expect("writing to a Vec cannot fail");
    for g in 0..answer.len() {
        let mut record: Vec<String> =
            (0..answer.parts.len()).map(|p| guard(&answer.label(p, g)).into_owned()).collect();
        record.push(number(answer.values[0][g].map(|v| v * measure.scale())));
        record.push(answer.rows[g].to_string());
        w.write_record(&record).expect("writing to a Vec cannot fail");
    }
    w.into_inner().expect("flushing a Vec cannot fail")
}

/// A histogram as CSV: `from,to,jobs` per bin.
pub fn histogram_csv(histogram: &Histogram, value_name: &str) -> Vec<u8> {
    let mut out = format!("{value_name} from,{value_name} to,jobs\r\n");
    for (i, n) in histogram.counts.iter().enumerate() {
        out.push_str(&format!("{},{},{n}\r\n", histogram.edges[i], histogram.edges[i + 1]));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DemoConfig, generate};

    #[test]
    fn job_list_orders_as_asked() {
        let config = DemoConfig { jobs: 2000, days: 5, ..Default::default() };
        let jobs = generate(config);
        let table = JobTable::from_jobs(&jobs);
        let now = config.end_ms;
        let rows = |url: &str| ViewState::from_query_string(url).unwrap().job_rows(&table, now).unwrap();
        let newest = rows("view=jobs&var-result=failure");
        assert!(!newest.is_empty());
        assert!(newest.iter().all(|&r| table.result(r as usize) == crate::JobResult::Failure));
        assert!(newest.windows(2).all(|w| table.time[w[0] as usize] >= table.time[w[1] as usize]));
        let oldest = rows("view=jobs&var-result=failure&sort=time");
        assert_eq!(oldest.iter().rev().copied().collect::<Vec<_>>(), newest);
        let longest = rows("view=jobs&sort=-duration");
        let d = |r: u32| table.duration_ms(r as usize);
        assert!(longest.windows(2).all(|w| match (d(w[0]), d(w[1])) {
            (Some(a), Some(b)) => a >= b,
            (_, None) => true,
            (None, Some(_)) => false,
        }));
        let by_worker = rows("view=jobs&sort=worker");
        let w = |r: u32| table.dims[crate::table::dim::WORKER].get(r as usize);
        assert!(by_worker.windows(2).all(|p| match (w(p[0]), w(p[1])) {
            (Some(a), Some(b)) => a <= b,
            (_, None) => true,
            (None, Some(_)) => false,
        }));
        assert_eq!(by_worker.len(), longest.len());
        assert_eq!(ViewState::pages(0), 1);
        assert_eq!(ViewState::pages(PAGE_SIZE + 1), 2);
    }

    #[test]
    fn answer_csv_has_a_line_per_group() {
        let config = DemoConfig { jobs: 500, days: 3, ..Default::default() };
        let table = JobTable::from_jobs(&generate(config));
        let view = ViewState::from_query_string("group=result&view=bar&measure=cpu_hours").unwrap();
        let answer = engine::run(&table, &view.to_engine_query(&table, config.end_ms).unwrap()).unwrap();
        let csv = String::from_utf8(answer_csv(&answer, &view.measure)).unwrap();
        let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
        assert_eq!(lines[0], "result,cpu_hours,jobs");
        assert_eq!(lines.len(), answer.len() + 1);
        let jobs: u64 =
            lines[1..].iter().map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
        assert_eq!(jobs, answer.selected);
    }
}
