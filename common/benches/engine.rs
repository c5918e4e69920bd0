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

use common::engine;
use common::table::JobTable;
use criterion::Criterion;

#[path = "queries.rs"]
mod queries;

fn main() {
    let jobs: usize =
        std::env::var("BUILDSCOPE_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let started = std::time::Instant::now();
    let (table, rogue) = queries::farm(jobs);
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

    let broad = queries::broad_filter(table.time_ms(table.len - 1));
    g.bench_function("filter", |b| b.iter(|| engine::select(&table, black_box(&broad)).unwrap()));

    let queries = queries::queries(&table, &rogue);
    for (name, query) in &queries {
        let answer = engine::run(&table, query).unwrap();
        eprintln!("{name}: {} selected, {} groups", answer.selected, answer.len());
        g.bench_function(*name, |b| b.iter(|| engine::run(&table, black_box(query)).unwrap()));
    }
    g.finish();
    c.final_summary();
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
