//! The benchmark's farm and queries (issue 4's list), in one place: the native bench
//! (`engine.rs`), the WASM module (`wasm/`) and the browser runner's cross-check against
//! DuckDB (`tests/src/bin/engine_bench.rs`) include this file, so all three time and compare
//! exactly the same work.

use common::demo::{DemoConfig, DemoFarm};
use common::engine::{Filter, Measure, Query, Sort, SortBy, TimeBucket, TimeField, TopK, Value};
use common::table::{JobTable, TableBuilder};

/// The demo farm over 90 days, streamed into a table, and its rogue worker's name.
pub fn farm(jobs: usize) -> (JobTable, String) {
    let farm = DemoFarm::new(DemoConfig { jobs, days: 90, ..DemoConfig::default() });
    let rogue = farm.rogue_worker().to_owned();
    let mut b = TableBuilder::default();
    for job in farm {
        b.push(&job);
    }
    (b.finish(), rogue)
}

/// "Broad" filter: the last 30 days before `last_ms`, not cancelled, worker ~ linux.
pub fn broad_filter(last_ms: i64) -> Vec<Filter> {
    vec![
        Filter::Time { field: TimeField::Time, from_ms: Some(last_ms - 30 * 86_400_000), to_ms: None },
        Filter::NotIn { dim: "result".into(), values: vec!["cancelled".into()] },
        Filter::Contains { dim: "worker".into(), text: "linux".into() },
    ]
}

/// Group by builder: count, mean, p50, p95 of duration, failure rate.
pub fn by_builder(filters: Vec<Filter>) -> Query {
    Query {
        filters,
        dims: vec!["builder".into()],
        measures: vec![
            Measure::Count,
            Measure::Mean(Value::Duration),
            Measure::Quantile { value: Value::Duration, p: 0.5 },
            Measure::Quantile { value: Value::Duration, p: 0.95 },
            Measure::FailureRate,
        ],
        ..Query::default()
    }
}

/// The by-builder queries' filters, in order: broad, one (rogue) worker, none.
pub fn by_builder_filters(last_ms: i64, rogue: &str) -> [Vec<Filter>; 3] {
    [broad_filter(last_ms), vec![Filter::Eq { dim: "worker".into(), value: rogue.to_owned() }], Vec::new()]
}

/// Every timed query with its name, in the order the reports list them.
pub fn queries(table: &JobTable, rogue: &str) -> Vec<(&'static str, Query)> {
    let [broad, one_worker, none] = by_builder_filters(table.time_ms(table.len - 1), rogue);
    vec![
        ("filter+group builder: count/mean/p50/p95/failure (broad filter)", by_builder(broad)),
        ("filter+group builder: count/mean/p50/p95/failure (one worker)", by_builder(one_worker)),
        ("group builder: count/mean/p50/p95/failure (no filter)", by_builder(none)),
        (
            "pivot builder x day: success rate + totals",
            Query {
                dims: vec!["builder".into()],
                bucket: Some(TimeBucket::Day),
                measures: vec![Measure::SuccessRate],
                totals: true,
                ..Query::default()
            },
        ),
        (
            "heatmap worker x day: count, failure rate",
            Query {
                dims: vec!["worker".into()],
                bucket: Some(TimeBucket::Day),
                measures: vec![Measure::Count, Measure::FailureRate],
                ..Query::default()
            },
        ),
        (
            "top-20 workers by failure rate + other",
            Query {
                dims: vec!["worker".into()],
                measures: vec![Measure::FailureRate, Measure::Count],
                top: Some(TopK { part: 0, k: 20, by: 0, ascending: false, other: true }),
                sort: Sort { by: SortBy::Measure(0), descending: true },
                ..Query::default()
            },
        ),
    ]
}
