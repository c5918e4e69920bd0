//! The pivot view: rows = the first group dimension, columns = the second, cells = the
//! measure, with row, column and grand totals; and its CSV.

use super::{SortKey, ViewMeasure, ViewSort};
use crate::engine::{Answer, Key, Part};
use crate::export::guard;

/// A laid-out pivot. Cells hold the answer's group index, so a click can drill down.
#[derive(Clone, Debug, PartialEq)]
pub struct Pivot {
    /// Name of the row dimension (`None`: a single "all jobs" row).
    pub row_dim: Option<String>,
    /// Name of the column dimension (`None`: a single value column).
    pub col_dim: Option<String>,
    pub rows: Vec<Line>,
    pub columns: Vec<Line>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
    /// Per row, the total over its columns (when there are columns to total).
    pub row_totals: Vec<Cell>,
    /// Per column, the total over all rows (when there are rows to total).
    pub col_totals: Vec<Cell>,
    pub total: Cell,
}

/// A row or column header.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub key: Key,
}

/// One number of the pivot: the measure (scaled for display) and how many jobs it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cell {
    pub value: Option<f64>,
    pub jobs: u64,
    /// The answer's group; `None` for a combination without jobs.
    pub group: Option<usize>,
}

impl Pivot {
    /// Lays out an answer computed with totals over up to two dimensions and one measure;
    /// rows sorted by `sort` (`key` or `measure`, the latter by row total), key order else.
    pub fn new(answer: &Answer, measure: &ViewMeasure, sort: Option<&ViewSort>) -> Pivot {
        let scale = measure.scale();
        let name = |p: usize| match answer.parts.get(p) {
            Some(Part::Dim { name, .. }) => Some(name.clone()),
            Some(Part::Bucket(b)) => Some(format!("{b:?}").to_lowercase()),
            None => None,
        };
        let (row_dim, col_dim) = (name(0), name(1));
        let lines = |part: usize| -> Vec<Line> {
            let mut keys: Vec<(Key, usize)> = Vec::new();
            if part < answer.parts.len() {
                for g in 0..answer.len() {
                    let k = answer.keys[part][g];
                    if k != Key::All && !keys.iter().any(|(x, _)| *x == k) {
                        keys.push((k, g));
                    }
                }
            }
            keys.sort_by_key(|(k, _)| *k);
            keys.into_iter().map(|(key, g)| Line { label: answer.label(part, g).into_owned(), key }).collect()
        };
        let (mut rows, columns) = (lines(0), lines(1));
        let cell = |g: usize| Cell {
            value: answer.values[0][g].map(|v| v * scale),
            jobs: answer.rows[g],
            group: Some(g),
        };
        let at: std::collections::HashMap<(Key, Key), usize> = (0..answer.len())
            .map(|g| {
                let part = |p: usize| answer.keys.get(p).map_or(Key::All, |k| k[g]);
                ((part(0), part(1)), g)
            })
            .collect();
        let find = |r: Key, c: Key| at.get(&(r, c)).copied();
        let row_keys: Vec<Key> =
            if rows.is_empty() { vec![Key::All] } else { rows.iter().map(|l| l.key).collect() };
        let col_keys: Vec<Key> = columns.iter().map(|l| l.key).collect();
        let get = |r: Key, c: Key| find(r, c).map(cell).unwrap_or_default();
        let mut table: Vec<(Line, Vec<Cell>, Cell)> = row_keys
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                let line = rows.get(i).cloned().unwrap_or(Line { label: "All jobs".into(), key: Key::All });
                let cells: Vec<Cell> = if col_keys.is_empty() {
                    vec![get(r, Key::All)]
                } else {
                    col_keys.iter().map(|&c| get(r, c)).collect()
                };
                let total = if col_keys.is_empty() { Cell::default() } else { get(r, Key::All) };
                (line, cells, total)
            })
            .collect();
        match sort {
            Some(ViewSort { key: SortKey::Measure, descending }) => {
                let of =
                    |t: &(Line, Vec<Cell>, Cell)| if col_keys.is_empty() { t.1[0].value } else { t.2.value };
                table.sort_by(|a, b| {
                    let o = match (of(a), of(b)) {
                        (Some(x), Some(y)) => x.total_cmp(&y),
                        (Some(_), None) => std::cmp::Ordering::Greater,
                        (None, Some(_)) => std::cmp::Ordering::Less,
                        (None, None) => std::cmp::Ordering::Equal,
                    };
                    let o = if *descending { o.reverse() } else { o };
                    o.then_with(|| a.0.key.cmp(&b.0.key))
                });
            }
            Some(ViewSort { key: SortKey::Key, descending: true }) => table.reverse(),
            _ => {}
        }
        let has_rows = !answer.parts.is_empty();
        let col_totals: Vec<Cell> =
            if has_rows { col_keys.iter().map(|&c| get(Key::All, c)).collect() } else { Vec::new() };
        let total = get(Key::All, Key::All);
        rows = table.iter().map(|t| t.0.clone()).collect();
        let cells = table.iter().map(|t| t.1.clone()).collect();
        let row_totals = table.iter().map(|t| t.2).collect();
        Pivot { row_dim, col_dim, rows, columns, cells, row_totals, col_totals, total }
    }

    /// The pivot as CSV (RFC 4180, CRLF): a header row (`row \ column` dimension names, the
    /// column labels, `Total`), one row per pivot row, then the totals row. Empty cells for
    /// combinations without a value; text guarded against formula injection.
    pub fn to_csv(&self, measure: &ViewMeasure) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
        let corner = match (&self.row_dim, &self.col_dim) {
            (Some(r), Some(c)) => format!("{r} \\ {c}"),
            (Some(r), None) => r.clone(),
            (None, _) => String::new(),
        };
        let has_columns = !self.columns.is_empty();
        let mut header = vec![guard(&corner).into_owned()];
        if has_columns {
            header.extend(self.columns.iter().map(|c| guard(&c.label).into_owned()));
            header.push("Total".into());
        } else {
            header.push(guard(&measure.to_string()).into_owned());
        }
        let write = |w: &mut csv::Writer<Vec<u8>>, record: Vec<String>| {
            w.write_record(&record).expect("writing to a Vec cannot fail")
        };
        write(&mut w, header);
        for (i, line) in self.rows.iter().enumerate() {
            let mut record = vec![guard(&line.label).into_owned()];
            record.extend(self.cells[i].iter().map(|c| number(c.value)));
            if has_columns {
                record.push(number(self.row_totals[i].value));
            }
            write(&mut w, record);
        }
        if self.row_dim.is_some() {
            let mut record = vec!["Total".to_owned()];
            if has_columns {
                record.extend(self.col_totals.iter().map(|c| number(c.value)));
            }
            record.push(number(self.total.value));
            write(&mut w, record);
        }
        w.into_inner().expect("flushing a Vec cannot fail")
    }
}

/// A cell as CSV text: the shortest form that reads back as the same number; empty for none.
pub(super) fn number(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::{ViewKind, ViewState};
    use super::*;
    use crate::demo::{DemoConfig, generate};
    use crate::engine;
    use crate::table::JobTable;

    fn pivot_of(url: &str) -> (Pivot, ViewState, Vec<crate::Job>, i64) {
        let config = DemoConfig { jobs: 3000, days: 10, ..Default::default() };
        let jobs = generate(config);
        let table = JobTable::from_jobs(&jobs);
        let view = ViewState::from_query_string(url).unwrap();
        assert_eq!(view.view, ViewKind::Pivot);
        let answer = engine::run(&table, &view.to_engine_query(&table, config.end_ms).unwrap()).unwrap();
        (Pivot::new(&answer, &view.measure, view.sort.as_ref()), view, jobs, config.end_ms)
    }

    #[test]
    fn cells_and_totals_are_the_counts_by_hand() {
        let (p, _, jobs, now) = pivot_of("view=pivot&group=builder,result&from=now-5d");
        let in_range: Vec<&crate::Job> = jobs
            .iter()
            .filter(|j| {
                j.started_at
                    .or(j.requested_at)
                    .is_some_and(|t| t.as_millis() >= now - 5 * 86_400_000 && t.as_millis() <= now)
            })
            .collect();
        let count = |b: Option<&str>, r: Option<&str>| {
            in_range
                .iter()
                .filter(|j| b.is_none_or(|b| j.builder == b) && r.is_none_or(|r| j.result.as_str() == r))
                .count() as f64
        };
        assert_eq!((p.row_dim.as_deref(), p.col_dim.as_deref()), (Some("builder"), Some("result")));
        assert!(p.rows.len() > 2 && p.columns.len() > 2);
        for (i, row) in p.rows.iter().enumerate() {
            for (j, col) in p.columns.iter().enumerate() {
                let want = count(Some(&row.label), Some(&col.label));
                assert_eq!(p.cells[i][j].value.unwrap_or(0.0), want, "{} × {}", row.label, col.label);
            }
            assert_eq!(p.row_totals[i].value, Some(count(Some(&row.label), None)));
        }
        for (j, col) in p.columns.iter().enumerate() {
            assert_eq!(p.col_totals[j].value, Some(count(None, Some(&col.label))));
        }
        assert_eq!(p.total.value, Some(in_range.len() as f64));
        // The CSV: header, one line per row, totals; CRLF.
        let csv = String::from_utf8(p.to_csv(&ViewMeasure::Count)).unwrap();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.len(), p.rows.len() + 3, "header + rows + total + final empty");
        assert!(lines[0].starts_with("builder \\ result,"));
        assert!(lines[0].ends_with(",Total"));
        assert!(lines[p.rows.len() + 1].starts_with("Total,"));
        assert_eq!(lines.last(), Some(&""));
    }

    #[test]
    fn rows_sort_by_total_and_one_dimension_has_one_column() {
        let (p, _, _, _) = pivot_of("view=pivot&group=worker&sort=-measure&measure=failure_rate");
        assert!(p.columns.is_empty());
        assert!(p.cells.iter().all(|c| c.len() == 1));
        let values: Vec<f64> = p.cells.iter().map(|c| c[0].value.unwrap_or(f64::NEG_INFINITY)).collect();
        assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
        assert!(p.total.value.is_some());
        let csv = String::from_utf8(p.to_csv(&ViewMeasure::FailureRate)).unwrap();
        assert!(csv.starts_with("worker,failure_rate\r\n"));
        // No dimension at all: one cell.
        let (p, _, jobs, _) = pivot_of("view=pivot&from=now-100d");
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.cells[0][0].value, Some(jobs.len() as f64));
    }

    #[test]
    fn labels_that_look_like_formulas_are_guarded() {
        let p = Pivot {
            row_dim: Some("worker".into()),
            col_dim: None,
            rows: vec![Line { label: "=cmd".into(), key: Key::Value(0) }],
            columns: vec![],
            cells: vec![vec![Cell { value: Some(2.5), jobs: 2, group: Some(0) }]],
            row_totals: vec![Cell::default()],
            col_totals: vec![],
            total: Cell { value: Some(2.5), jobs: 2, group: Some(1) },
        };
        let csv = String::from_utf8(p.to_csv(&ViewMeasure::Count)).unwrap();
        assert_eq!(csv, "worker,count\r\n'=cmd,2.5\r\nTotal,2.5\r\n");
    }
}
