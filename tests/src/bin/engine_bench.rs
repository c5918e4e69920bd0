//! The engine benchmark in headless Chromium, side by side with DuckDB-WASM (issue 4).
//!
//! ```text
//! (cd common/benches/wasm && cargo build --release --target wasm32-unknown-unknown)
//! cargo run --release -p buildscope-tests --bin engine-bench -- [JOBS] [RUNS]
//! ```
//!
//! It generates the demo farm natively (the same seed and size the wasm module generates,
//! so the same rows), serves the page `common/benches/browser/`, the release wasm of
//! `common/benches/wasm` and the rows as CSV on 127.0.0.1, opens the page in headless
//! Chromium and prints a Markdown table: median (and min) ms per query for each engine and
//! DuckDB ÷ Buildscope. Before timing is trusted, DuckDB's answers are checked against the
//! engine's (computed natively here; the wasm digests equal the native ones): the filter's
//! row count, every query's group count and the by-builder statistics value by value.
//!
//! Environment: `ENGINE_WASM` overrides the wasm path (default
//! `common/benches/wasm/target/wasm32-unknown-unknown/release/…`, or under
//! `$CARGO_TARGET_DIR` when set).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::http::header;
use axum::routing::get;
use buildscope_tests::{Browser, root};
use common::engine;
use common::table::JobTable;
use serde_json::{Value as Json, json};
use tower_http::services::ServeDir;

/// The farm and queries the native and WASM benchmarks use, so DuckDB is checked against
/// exactly what they time.
#[path = "../../../common/benches/queries.rs"]
#[allow(dead_code)]
mod queries;

const WASM_NAME: &str = "buildscope_engine_wasm_bench.wasm";

/// The rows, as the columns DuckDB gets, and the constants the queries need.
struct Data {
    csv: Vec<u8>,
    params: Json,
    table: JobTable,
    rogue: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let jobs: usize =
        args.next().map(|a| a.parse()).transpose().context("JOBS must be a number")?.unwrap_or(1_000_000);
    let runs: usize =
        args.next().map(|a| a.parse()).transpose().context("RUNS must be a number")?.unwrap_or(11);
    let wasm = wasm_path();
    if !wasm.exists() {
        bail!(
            "{} is missing: build it with `(cd common/benches/wasm && cargo build --release --target wasm32-unknown-unknown)`",
            wasm.display()
        );
    }

    if !root().join("node_modules/@duckdb/duckdb-wasm/dist/duckdb-eh.wasm").exists() {
        bail!("node_modules/@duckdb/duckdb-wasm is missing: run `npm ci` at the workspace root");
    }

    let t = Instant::now();
    let data = generate(jobs, runs);
    eprintln!(
        "generated {jobs} jobs natively in {:.1} s ({} MB of CSV)",
        t.elapsed().as_secs_f64(),
        data.csv.len() >> 20
    );

    let wasm_bytes = std::fs::read(&wasm)?;
    let csv = data.csv.clone();
    let params = data.params.to_string();
    let app = Router::new()
        .route(
            "/bench/engine.wasm",
            get(move || async move { ([(header::CONTENT_TYPE, "application/wasm")], wasm_bytes) }),
        )
        .route("/bench/jobs.csv", get(move || async move { ([(header::CONTENT_TYPE, "text/csv")], csv) }))
        .route(
            "/bench/params.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], params) }),
        )
        // The page and duckdb-wasm's bundles from node_modules; nothing comes from a CDN.
        .fallback_service(ServeDir::new(root()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/common/benches/browser/index.html", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    eprintln!("serving {url}");
    let browser = Browser::start().await?;
    eprintln!("headless Chromium is up");
    let outcome = run_page(&browser, &url, jobs).await;
    let _ = browser.close().await;
    server.abort();
    let result = outcome?;

    check(&data, &result)?;
    println!("{}", report(jobs, runs, &result));
    Ok(())
}

fn wasm_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ENGINE_WASM") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|t| t.join("wasm32-unknown-unknown/release").join(WASM_NAME).exists())
        .unwrap_or_else(|| root().join("common/benches/wasm/target"));
    target.join("wasm32-unknown-unknown/release").join(WASM_NAME)
}

/// The demo farm as `common/benches/wasm` makes it (`setup`), its CSV and query constants.
fn generate(jobs: usize, runs: usize) -> Data {
    let (table, rogue) = queries::farm(jobs);
    let last_month_ms = table.time_ms(table.len - 1) - 30 * 86_400_000;
    let dims = ["source", "project", "branch", "builder", "worker", "result"];
    let cols: Vec<_> =
        dims.iter().map(|d| table.dims.iter().find(|c| c.name == *d).expect("fixed dim")).collect();
    let mut csv = String::with_capacity(table.len * 96);
    csv.push_str("source,project,branch,builder,worker,result,time_ms,duration,queue_wait\n");
    for row in 0..table.len {
        for c in &cols {
            push_field(&mut csv, c.get(row).unwrap_or(""));
            csv.push(',');
        }
        if let Some(t) = table.started_ms(row).or(table.requested_ms(row)) {
            write!(csv, "{t}").unwrap();
        }
        csv.push(',');
        // Seconds with millisecond digits, the same f64 the engine computes (ms / 1000).
        if let Some(d) = table.duration_ms(row) {
            write!(csv, "{}", d as f64 / 1000.0).unwrap();
        }
        csv.push(',');
        if let Some(q) = table.queue_ms(row) {
            write!(csv, "{}", q as f64 / 1000.0).unwrap();
        }
        csv.push('\n');
    }
    let params = json!({ "jobs": jobs, "runs": runs, "rogue": rogue, "last_month_ms": last_month_ms });
    Data { csv: csv.into_bytes(), params, table, rogue }
}

fn push_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

async fn run_page(browser: &Browser, url: &str, jobs: usize) -> Result<Json> {
    browser.client.goto(url).await?;
    // About a minute per million jobs covers generation, loading DuckDB and all runs.
    let deadline = Instant::now() + Duration::from_secs(120 + 90 * (jobs as u64).div_ceil(1_000_000));
    let mut last = String::new();
    loop {
        let state = browser.js("return [window.benchResult || null, window.benchError || null, document.getElementById('log').textContent]").await?;
        if let Some(e) = state[1].as_str() {
            bail!("the bench page failed: {e}\n{}", state[2].as_str().unwrap_or(""));
        }
        if !state[0].is_null() {
            return Ok(state[0].clone());
        }
        let log = state[2].as_str().unwrap_or("").to_owned();
        if log.len() > last.len() {
            eprint!("{}", &log[last.len()..]);
            last = log;
        }
        if Instant::now() > deadline {
            bail!("timed out; the page said:\n{last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// DuckDB's answers must be the engine's before their times mean anything.
fn check(data: &Data, result: &Json) -> Result<()> {
    let t = &data.table;
    let last_ms = t.time_ms(t.len - 1);
    let selected = engine::select(t, &queries::broad_filter(last_ms))?.len() as u64;
    ensure!(
        result["check"]["filter"].as_u64() == Some(selected),
        "filter: DuckDB {} rows, engine {selected}",
        result["check"]["filter"]
    );
    for (i, filters) in queries::by_builder_filters(last_ms, &data.rogue).into_iter().enumerate() {
        let q = queries::by_builder(filters);
        let a = engine::run(t, &q)?;
        let rows = result["check"]["groups"][i].as_array().context("by-builder rows")?;
        ensure!(rows.len() == a.len(), "query {i}: DuckDB {} groups, engine {}", rows.len(), a.len());
        for g in 0..a.len() {
            let label = a.label(0, g);
            let row = rows
                .iter()
                .find(|r| r[0].as_str().unwrap_or("(not set)") == label)
                .with_context(|| format!("query {i}: no {label}"))?;
            for (m, v) in a.values.iter().enumerate() {
                let (ours, theirs) = (v[g], row[m + 1].as_f64());
                let same = match (ours, theirs) {
                    (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                    (x, y) => x.is_none() && y.is_none(),
                };
                ensure!(same, "query {i}, {label}, measure {m}: engine {ours:?}, DuckDB {theirs:?}");
            }
        }
    }
    eprintln!(
        "DuckDB's answers equal the engine's (filter count, by-builder count/mean/p50/p95/failure rate)"
    );
    Ok(())
}

fn report(jobs: usize, runs: usize, r: &Json) -> String {
    let ms = |v: &Json| {
        format!(
            "{:.1} (min {:.1})",
            v["median"].as_f64().unwrap_or(f64::NAN),
            v["min"].as_f64().unwrap_or(f64::NAN)
        )
    };
    let mut out = String::new();
    writeln!(
        out,
        "\n{jobs} jobs, {}, median of {runs} runs (engine: {} runs)\n",
        r["userAgent"].as_str().unwrap_or(""),
        r["engineRuns"]
    )
    .unwrap();
    writeln!(out, "| query | Buildscope ms | DuckDB-WASM ms | DuckDB ÷ Buildscope | groups |").unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|").unwrap();
    for q in r["queries"].as_array().into_iter().flatten() {
        let ratio = q["duck"]["median"].as_f64().unwrap_or(f64::NAN)
            / q["engine"]["median"].as_f64().unwrap_or(f64::NAN);
        writeln!(
            out,
            "| {} | {} | {} | {ratio:.1}× | {} |",
            q["name"].as_str().unwrap_or(""),
            ms(&q["engine"]),
            ms(&q["duck"]),
            q["groups"]
        )
        .unwrap();
    }
    writeln!(out, "\nsizes: engine wire {} bytes; DuckDB Arrow IPC {} bytes; CSV load into DuckDB {:.0} ms; engine generate+encode {:.0} ms",
        r["wireBytes"], r["ipcBytes"], r["csvLoadMs"].as_f64().unwrap_or(f64::NAN), r["setupMs"].as_f64().unwrap_or(f64::NAN)).unwrap();
    out
}
