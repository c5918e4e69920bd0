//! The engine's benchmark suite on the demo farm (issue 4's query list).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-engine cargo bench -p buildscope-common --bench engine -- \
//!     --warm-up-time 1 --measurement-time 3
//! ```
//! `BUILDSCOPE_BENCH_JOBS` sets the farm size (default 1,000,000); `BUILDSCOPE_BENCH_WIRE`
//! names a file to write the encoded table to, for measuring compressed sizes with the
//! command-line compressors. The same queries in WASM (V8): `benches/wasm/`.

use std::hint::black_box;

use common::demo::{DemoConfig, DemoFarm};
use common::engine::{self, Filter, Measure, Query, Sort, SortBy, TimeBucket, TimeField, TopK, Value};
use common::table::{JobTable, TableBuilder};
use criterion::Criterion;

fn main() {
    let jobs: usize =
        std::env::var("BUILDSCOPE_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let started = std::time::Instant::now();
    let (table, rogue) = farm(jobs);
    let bytes = table.encode();
    eprintln!(
        "{jobs} jobs: generated in {:.1} s; wire {} bytes ({:.2} bytes/job before HTTP compression); table ≈ {:.1} bytes/job in memory",
        started.elapsed().as_secs_f64(),
        bytes.len(),
        bytes.len() as f64 / jobs as f64,
        heap_bytes(&table) as f64 / jobs as f64,
    );
    for d in table.dims.iter().chain([&table.ids.prefixes]) {
        eprintln!("  dim {}: {} values", d.name, d.values.len() - 1);
    }
    for m in &table.metrics {
        eprintln!("  metric {}: {} set", m.name, m.values.iter().filter(|v| !v.is_nan()).count());
    }
    if let Ok(path) = std::env::var("BUILDSCOPE_BENCH_WIRE") {
        std::fs::write(path, &bytes).expect("writing the wire file");
    }

    let mut c = Criterion::default().sample_size(20).configure_from_args();
    let mut g = c.benchmark_group(format!("engine/{}k", jobs / 1000));
    // The browser keeps the decoded table, so dropping it is not part of decoding.
    g.bench_function("decode", |b| b.iter_with_large_drop(|| JobTable::decode(black_box(&bytes)).unwrap()));

    let last_month = table.time_ms(table.len - 1) - 30 * 86_400_000;
    let broad = vec![
        Filter::Time { field: TimeField::Time, from_ms: Some(last_month), to_ms: None },
        Filter::NotIn { dim: "result".into(), values: vec!["cancelled".into()] },
        Filter::Contains { dim: "worker".into(), text: "linux".into() },
    ];
    let one_worker = vec![Filter::Eq { dim: "worker".into(), value: rogue }];
    g.bench_function("filter", |b| b.iter(|| engine::select(&table, black_box(&broad)).unwrap()));

    let stats = vec![
        Measure::Count,
        Measure::Mean(Value::Duration),
        Measure::Quantile { value: Value::Duration, p: 0.5 },
        Measure::Quantile { value: Value::Duration, p: 0.95 },
        Measure::FailureRate,
    ];
    let by_builder = |filters: &Vec<Filter>| Query {
        filters: filters.clone(),
        dims: vec!["builder".into()],
        measures: stats.clone(),
        ..Query::default()
    };
    let queries = [
        ("filter+group builder: count/mean/p50/p95/failure (broad filter)", by_builder(&broad)),
        ("filter+group builder: count/mean/p50/p95/failure (one worker)", by_builder(&one_worker)),
        ("group builder: count/mean/p50/p95/failure (no filter)", by_builder(&Vec::new())),
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
    ];
    for (name, query) in &queries {
        let answer = engine::run(&table, query).unwrap();
        eprintln!("{name}: {} selected, {} groups", answer.selected, answer.len());
        g.bench_function(*name, |b| b.iter(|| engine::run(&table, black_box(query)).unwrap()));
    }
    g.finish();
    c.final_summary();
}

/// The demo farm over 90 days, streamed into a table, and its rogue worker's name.
fn farm(jobs: usize) -> (JobTable, String) {
    let farm = DemoFarm::new(DemoConfig { jobs, days: 90, ..DemoConfig::default() });
    let rogue = farm.rogue_worker().to_owned();
    let mut b = TableBuilder::default();
    for job in farm {
        b.push(&job);
    }
    (b.finish(), rogue)
}

/// Heap bytes the table's columns hold (capacity of every vector and string).
fn heap_bytes(t: &JobTable) -> usize {
    let dim = |d: &common::table::DimColumn| d.codes.heap_bytes() + d.values.heap_bytes();
    t.dims.iter().map(dim).sum::<usize>()
        + dim(&t.ids.prefixes)
        + t.ids.numbers.heap_bytes()
        + t.time.capacity() * 8
        + t.queue.heap_bytes()
        + t.run.heap_bytes()
        + t.metrics.iter().map(|m| m.values.capacity() * 8).sum::<usize>()
}
