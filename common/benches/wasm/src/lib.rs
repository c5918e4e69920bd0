//! The engine benchmark (issue 4's query list) compiled to wasm32 and timed in V8 by
//! `run.mjs`, plus digests of the wire bytes and of every answer, which must equal the
//! native ones (`cargo test --release -- --nocapture` here prints those):
//!
//! ```text
//! cd common/benches/wasm
//! CARGO_TARGET_DIR=/work/target-engine-wasm cargo build --release --target wasm32-unknown-unknown
//! node run.mjs 1000000 /work/target-engine-wasm/wasm32-unknown-unknown/release/buildscope_engine_wasm_bench.wasm
//! CARGO_TARGET_DIR=/work/target-engine-wasm cargo test --release -- --nocapture
//! ```
//! Raw `extern "C"` exports and one imported clock rather than wasm-bindgen, so it needs no
//! tool beyond node; the in-browser bench against DuckDB-WASM can load the same module.
use std::cell::RefCell;

use common::demo::{DemoConfig, DemoFarm};
use common::engine::{self, Filter, Measure, Query, Sort, SortBy, TimeBucket, TimeField, TopK, Value};
use common::table::{JobTable, TableBuilder};

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    fn now_ms() -> f64;
}

#[cfg(not(target_arch = "wasm32"))]
unsafe fn now_ms() -> f64 {
    0.0
}

struct State {
    bytes: Vec<u8>,
    table: JobTable,
    queries: Vec<Query>,
    filters: Vec<Filter>,
}

thread_local! { static STATE: RefCell<Option<State>> = const { RefCell::new(None) }; }

fn now() -> f64 {
    unsafe { now_ms() }
}

#[unsafe(no_mangle)]
pub extern "C" fn setup(jobs: u32) -> f64 {
    let t = now();
    let farm = DemoFarm::new(DemoConfig { jobs: jobs as usize, days: 90, ..DemoConfig::default() });
    let rogue = farm.rogue_worker().to_owned();
    let mut b = TableBuilder::default();
    for job in farm {
        b.push(&job);
    }
    let table = b.finish();
    let bytes = table.encode();
    let last_month = table.time_ms(table.len - 1) - 30 * 86_400_000;
    let broad = vec![
        Filter::Time { field: TimeField::Time, from_ms: Some(last_month), to_ms: None },
        Filter::NotIn { dim: "result".into(), values: vec!["cancelled".into()] },
        Filter::Contains { dim: "worker".into(), text: "linux".into() },
    ];
    let one_worker = vec![Filter::Eq { dim: "worker".into(), value: rogue }];
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
    let queries = vec![
        by_builder(&broad),
        by_builder(&one_worker),
        by_builder(&Vec::new()),
        Query {
            dims: vec!["builder".into()],
            bucket: Some(TimeBucket::Day),
            measures: vec![Measure::SuccessRate],
            totals: true,
            ..Query::default()
        },
        Query {
            dims: vec!["worker".into()],
            bucket: Some(TimeBucket::Day),
            measures: vec![Measure::Count, Measure::FailureRate],
            ..Query::default()
        },
        Query {
            dims: vec!["worker".into()],
            measures: vec![Measure::FailureRate, Measure::Count],
            top: Some(TopK { part: 0, k: 20, by: 0, ascending: false, other: true }),
            sort: Sort { by: SortBy::Measure(0), descending: true },
            ..Query::default()
        },
    ];
    STATE.with(|s| *s.borrow_mut() = Some(State { bytes, table, queries, filters: broad }));
    now() - t
}

#[unsafe(no_mangle)]
pub extern "C" fn wire_len() -> u32 {
    STATE.with(|s| s.borrow().as_ref().unwrap().bytes.len() as u32)
}

#[unsafe(no_mangle)]
pub extern "C" fn bench_decode() -> f64 {
    STATE.with(|s| {
        let s = s.borrow();
        let st = s.as_ref().unwrap();
        let t = now();
        let table = JobTable::decode(&st.bytes).unwrap();
        let dt = now() - t;
        assert_eq!(table.len, st.table.len);
        dt
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn bench_filter() -> f64 {
    STATE.with(|s| {
        let s = s.borrow();
        let st = s.as_ref().unwrap();
        let t = now();
        let sel = engine::select(&st.table, &st.filters).unwrap();
        let dt = now() - t;
        assert!(sel.len() > 0);
        dt
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn bench_query(i: u32) -> f64 {
    STATE.with(|s| {
        let s = s.borrow();
        let st = s.as_ref().unwrap();
        let t = now();
        let a = engine::run(&st.table, &st.queries[i as usize]).unwrap();
        let dt = now() - t;
        assert!(a.len() > 0);
        dt
    })
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

/// Digest of the wire bytes (i = 99) or of query i's answer over the decoded table.
#[unsafe(no_mangle)]
pub extern "C" fn digest(i: u32) -> u64 {
    STATE.with(|s| {
        let s = s.borrow();
        let st = s.as_ref().unwrap();
        if i == 99 {
            return fnv(&st.bytes);
        }
        let table = JobTable::decode(&st.bytes).unwrap();
        let a = engine::run(&table, &st.queries[i as usize]).unwrap();
        fnv(format!("{a:?}").as_bytes())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn digests() {
        super::setup(1_000_000);
        for i in [99, 0, 1, 2, 3, 4, 5] {
            println!("digest {i}: {:016x}", super::digest(i));
        }
    }
}
