//! Resolving names in a query to the table's columns, and reading values row by row.

use crate::job::CPU_SECONDS_METRIC;
use crate::table::{DimColumn, JobTable, Offsets};

use super::query::{QueryError, TimeField, Value};

/// Where a [`Value`] comes from in the table. Reading gives seconds or the metric's unit,
/// NaN where the job does not have the value (NaN never stands for a measurement: ingest
/// rejects non-finite numbers).
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Duration(&'a Offsets),
    QueueWait(&'a Offsets),
    CpuSeconds { reported: Option<&'a [f64]>, run: &'a Offsets },
    Metric(&'a [f64]),
}

impl<'a> Source<'a> {
    pub(crate) fn resolve(table: &'a JobTable, value: &Value) -> Result<Self, QueryError> {
        Ok(match value {
            Value::Duration => Source::Duration(&table.run),
            Value::QueueWait => Source::QueueWait(&table.queue),
            Value::CpuSeconds => Source::CpuSeconds {
                reported: table.metric(CPU_SECONDS_METRIC).map(|m| &m.values[..]),
                run: &table.run,
            },
            Value::Metric(name) => Source::Metric(
                &table.metric(name).ok_or_else(|| QueryError::UnknownMetric(name.clone()))?.values,
            ),
        })
    }

    /// The value of one row, NaN when absent.
    #[inline]
    pub(crate) fn get(&self, row: usize) -> f64 {
        match *self {
            Source::Duration(run) => seconds(run.get(row), 1),
            Source::QueueWait(queue) => seconds(queue.get(row), 2),
            Source::CpuSeconds { reported, run } => match reported.map(|r| r[row]) {
                Some(v) if !v.is_nan() => v,
                _ => seconds(run.get(row), 1),
            },
            Source::Metric(values) => values[row],
        }
    }

    /// The values of `rows`, in order. The match sits outside the loop so each arm is a
    /// tight loop of its own.
    pub(crate) fn gather(&self, rows: &[u32]) -> Vec<f64> {
        match *self {
            Source::Duration(run) => run.gather(rows, |d| seconds(d, 1)),
            Source::QueueWait(queue) => queue.gather(rows, |q| seconds(q, 2)),
            Source::Metric(values) => rows.iter().map(|&r| values[r as usize]).collect(),
            Source::CpuSeconds { .. } => rows.iter().map(|&r| self.get(r as usize)).collect(),
        }
    }
}

/// Seconds of a queue or run code (see [`JobTable::queue`]): codes below `markers` mean
/// unknown (NaN); others are `markers` + ms. Dividing the integer milliseconds is what
/// `Job::duration_ms` / 1000 gives, so the engine and row-wise code agree to the bit.
#[inline]
fn seconds(code: u64, markers: u64) -> f64 {
    if code < markers { f64::NAN } else { (code - markers) as f64 / 1000.0 }
}

pub(crate) fn dim<'a>(table: &'a JobTable, name: &str) -> Result<&'a DimColumn, QueryError> {
    table.dim(name).ok_or_else(|| QueryError::UnknownDim(name.to_owned()))
}

pub(crate) fn dim_index(table: &JobTable, name: &str) -> Result<usize, QueryError> {
    table.dims.iter().position(|d| d.name == name).ok_or_else(|| QueryError::UnknownDim(name.to_owned()))
}

/// The instant of `field` of a row, epoch ms.
#[inline]
pub(crate) fn instant(table: &JobTable, field: TimeField, row: usize) -> Option<i64> {
    match field {
        TimeField::Time => Some(table.time[row]).filter(|&t| t != crate::table::NO_TIME),
        TimeField::Requested => table.requested_ms(row),
        TimeField::Started => table.started_ms(row),
        TimeField::Finished => table.finished_ms(row),
    }
}
