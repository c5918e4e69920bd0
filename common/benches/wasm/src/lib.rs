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

use common::engine::{self, Filter, Query};
use common::table::JobTable;

#[path = "../../queries.rs"]
mod queries;

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
    let (table, rogue) = queries::farm(jobs as usize);
    let bytes = table.encode();
    let broad = queries::broad_filter(table.time_ms(table.len - 1));
    let queries = queries::queries(&table, &rogue).into_iter().map(|(_, q)| q).collect();
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
