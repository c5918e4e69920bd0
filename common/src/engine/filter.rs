//! Filters to a selection: the ascending list of row indices that pass every filter.
//!
//! A row list rather than a bitmap because every later stage (grouping, gathering values,
//! measures) walks the selected rows only, so its cost follows the selection's size, and a
//! narrow filter on a million jobs leaves a few thousand rows to touch.

use super::column::{self, Source};
use super::query::{Filter, QueryError, TimeField};
use crate::table::{Codes, JobTable, NO_TIME};

/// The rows that passed a query's filters, ascending (and so in time order, which the time
/// bucketing relies on; only [`select`] makes one). Computed once and reused by every
/// measure, subtotal and top-k pass of the query; keep it to rerun other groupings over the
/// same filters with [`crate::engine::run_on`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    rows: Vec<u32>,
}

impl Selection {
    /// The selected row indices, ascending.
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Evaluates `filters` (AND) over the table.
pub fn select(table: &JobTable, filters: &[Filter]) -> Result<Selection, QueryError> {
    let (mut lo, mut hi) = (0, table.len);
    let mut tests = Vec::new();
    for f in filters {
        match f {
            // Rows are sorted by row time, so a row-time range is a slice of rows.
            Filter::Time { field: TimeField::Time, from_ms, to_ms } => {
                let time = |r: usize| table.time[r];
                // Rows without a time sort first and never pass.
                lo = lo.max(partition_point(lo, hi, |r| time(r) == NO_TIME));
                if let Some(from) = from_ms {
                    lo = lo.max(partition_point(lo, hi, |r| time(r) < *from));
                }
                if let Some(to) = to_ms {
                    hi = hi.min(partition_point(lo, hi, |r| time(r) <= *to)).max(lo);
                }
            }
            other => tests.push(Test::compile(table, other)?),
        }
    }
    // Cheap code lookups first: they shrink the list the costlier tests walk.
    tests.sort_by_key(|t| !matches!(t, Test::Codes { .. }));
    let mut tests = tests.into_iter();
    let rows = match tests.next() {
        None => (lo as u32..hi as u32).collect(),
        Some(first) => {
            // Branch-free append: write every row, advance only past those that pass.
            let mut rows = vec![0; hi - lo];
            let mut n = 0;
            for r in lo..hi {
                rows[n] = r as u32;
                n += usize::from(first.passes(r));
            }
            rows.truncate(n);
            for t in tests {
                rows.retain(|&r| t.passes(r as usize));
            }
            rows
        }
    };
    Ok(Selection { rows })
}

/// Narrows `selection` by more filters (AND): what [`select`] would give for the
/// selection's filters plus `more`, at the cost of walking the selected rows only.
pub fn refine(table: &JobTable, selection: &Selection, more: &[Filter]) -> Result<Selection, QueryError> {
    let tests = more.iter().map(|f| Test::compile(table, f)).collect::<Result<Vec<_>, _>>()?;
    let rows =
        selection.rows.iter().copied().filter(|&r| tests.iter().all(|t| t.passes(r as usize))).collect();
    Ok(Selection { rows })
}

/// One compiled filter (row-time ranges also compile to one, for [`refine`]).
enum Test<'a> {
    /// Passes when `accept[codes[row]]`: every dimension filter becomes a lookup table
    /// over the dictionary, so strings are compared once per distinct value, not per row.
    Codes {
        codes: &'a Codes,
        accept: Vec<bool>,
    },
    Range {
        source: Source<'a>,
        min: f64,
        max: f64,
    },
    Time {
        table: &'a JobTable,
        field: TimeField,
        from: i64,
        to: i64,
    },
}

impl<'a> Test<'a> {
    fn compile(table: &'a JobTable, filter: &Filter) -> Result<Self, QueryError> {
        let codes = |dim: &str, pass: &dyn Fn(&str) -> bool| -> Result<Test<'a>, QueryError> {
            let d = column::dim(table, dim)?;
            Ok(Test::Codes { codes: &d.codes, accept: d.values.iter().map(pass).collect() })
        };
        match filter {
            Filter::Eq { dim, value } => codes(dim, &|v| v == value),
            Filter::In { dim, values } => codes(dim, &|v| values.iter().any(|x| x == v)),
            Filter::NotIn { dim, values } => codes(dim, &|v| !values.iter().any(|x| x == v)),
            Filter::Contains { dim, text } => {
                let needle = text.to_lowercase();
                codes(dim, &|v| !v.is_empty() && v.to_lowercase().contains(&needle))
            }
            Filter::Range { value, min, max } => {
                let bound = |b: Option<f64>, default: f64| match b {
                    Some(v) if v.is_nan() => Err(QueryError::BadBound(format!("{value:?}"))),
                    Some(v) => Ok(v),
                    None => Ok(default),
                };
                Ok(Test::Range {
                    source: Source::resolve(table, value)?,
                    min: bound(*min, f64::NEG_INFINITY)?,
                    max: bound(*max, f64::INFINITY)?,
                })
            }
            Filter::Time { field, from_ms, to_ms } => Ok(Test::Time {
                table,
                field: *field,
                from: from_ms.unwrap_or(i64::MIN),
                to: to_ms.unwrap_or(i64::MAX),
            }),
        }
    }

    #[inline]
    fn passes(&self, row: usize) -> bool {
        match self {
            Test::Codes { codes, accept } => accept[codes.get(row) as usize],
            // NaN (absent) fails both comparisons.
            Test::Range { source, min, max } => {
                let v = source.get(row);
                v >= *min && v <= *max
            }
            Test::Time { table, field, from, to } => {
                column::instant(table, *field, row).is_some_and(|t| (*from..=*to).contains(&t))
            }
        }
    }
}

/// First row in `lo..hi` for which `pred` is false, assuming it is true then false.
fn partition_point(mut lo: usize, mut hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) { lo = mid + 1 } else { hi = mid }
    }
    lo
}
