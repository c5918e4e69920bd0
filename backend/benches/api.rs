//! Server benchmark: ingest throughput through `POST /api/v1/jobs` and the size and time of
//! `GET /api/v1/jobs`, over the real router, a real TCP socket and a real SQLite file.
//!
//! `cargo bench -p buildscope --bench api [-- JOBS]` (default 1,000,000 demo jobs). Prints a
//! Markdown table for the README.

use std::time::Instant;

use buildscope::AppState;
use buildscope::store::{self};
use common::demo::{DemoConfig, DemoFarm};

const BATCH: usize = 10_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs: usize =
        std::env::args().skip(1).find_map(|a| a.replace('_', "").parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let store = store::open(&url.parse().map_err(anyhow::Error::msg)?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState { store, static_dir: dir.path().join("dist") };
    tokio::spawn(buildscope::serve(listener, state, std::future::pending()));

    eprintln!("generating {jobs} demo jobs as JSON batches of {BATCH}...");
    let config = DemoConfig { jobs, ..DemoConfig::default() };
    let mut farm = DemoFarm::new(config);
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut json_bytes = 0;
    loop {
        let batch: Vec<common::Job> = farm.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let body = serde_json::to_vec(&batch)?;
        json_bytes += body.len();
        bodies.push(body);
    }

    // The parse-and-validate share of ingest, on its own.
    let started = Instant::now();
    for body in &bodies {
        buildscope::ingest::parse_jobs(body)?;
    }
    let parse_s = started.elapsed().as_secs_f64();

    // Two clients post at once (two CI masters, say): one request's JSON is parsed while
    // the other's transaction is written.
    let client = reqwest::Client::builder().no_gzip().no_brotli().build()?;
    let started = Instant::now();
    let (odd, even): (Vec<_>, Vec<_>) = bodies.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let post_all = |half: Vec<(usize, Vec<u8>)>| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            for (_, body) in half {
                let r = client
                    .post(format!("{base}/api/v1/jobs"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "ingest failed: {}", r.text().await?);
            }
            anyhow::Ok(())
        })
    };
    let (a, b) = (post_all(odd), post_all(even));
    a.await??;
    b.await??;
    let ingest_s = started.elapsed().as_secs_f64();

    println!("| measure ({jobs} demo jobs, steps included) | value |");
    println!("|---|---|");
    println!(
        "| ingest, POST /api/v1/jobs, batches of {BATCH}, 2 clients | {:.0} jobs/s ({:.1} s, {:.0} MB JSON) |",
        jobs as f64 / ingest_s,
        ingest_s,
        json_bytes as f64 / 1e6
    );
    println!(
        "| of which parsing + validating the JSON | {:.0} jobs/s ({:.1} s) |",
        jobs as f64 / parse_s,
        parse_s
    );
    if std::env::var_os("BENCH_INGEST_ONLY").is_some() {
        return Ok(());
    }

    let range = "from=2026-09-01T00:00:00Z&to=2026-11-02T00:00:00Z";
    for (format, encoding) in
        [("columnar", "br"), ("columnar", "gzip"), ("columnar", "identity"), ("json", "br"), ("csv", "gzip")]
    {
        let mut times = Vec::new();
        let mut size = 0;
        let mut timing = String::new();
        for _ in 0..3 {
            let started = Instant::now();
            let r = client
                .get(format!("{base}/api/v1/jobs?{range}&format={format}"))
                .header("accept-encoding", encoding)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "GET failed: {}", r.status());
            timing = r
                .headers()
                .get("server-timing")
                .map(|v| v.to_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            size = r.bytes().await?.len();
            times.push(started.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| GET /api/v1/jobs format={format}, {encoding} | {:.2} bytes/job, {:.2} s (median of 3; {timing}) |",
            size as f64 / jobs as f64,
            times[1]
        );
    }
    Ok(())
}
