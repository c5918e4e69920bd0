//! The whole path from store to chart: ingest a small fixture into the real server, open
//! the real frontend in headless Chromium, and check the count and the chart drawn.

use std::collections::BTreeMap;

use buildscope_tests::{Browser, Server, testid};
use serde_json::{Value, json};

const DAY: i64 = 86_400;
const MARCH_1: i64 = 1_709_251_200; // 2024-03-01T00:00:00Z

/// Day offset, start second within the day, duration in seconds (None: still running).
const JOBS: &[(i64, i64, Option<i64>)] = &[
    (0, 3_600, Some(600)),
    (0, 7_200, Some(1_200)),
    (0, 9_000, Some(300)),
    (1, 100, Some(60)),
    (3, 50_000, Some(900)),
    (3, 60_000, Some(2_100)),
    (3, 80_000, None),
];

fn fixture() -> Value {
    let jobs: Vec<Value> = JOBS
        .iter()
        .enumerate()
        .map(|(i, &(day, start, duration))| {
            let started = MARCH_1 + day * DAY + start;
            let mut job = json!({"source": "e2e", "id": i, "builder": "b", "started_at": started,
                                 "result": if duration.is_some() { "success" } else { "running" }});
            if let Some(d) = duration {
                job["finished_at"] = json!(started + d);
            }
            job
        })
        .collect();
    json!(jobs)
}

/// Expected chart: per day from the first to the last job's day, job count and median
/// duration in minutes, computed here independently of `common`.
fn expected() -> (Vec<String>, Vec<Value>, Vec<Value>) {
    let mut days: BTreeMap<i64, (u64, Vec<i64>)> = (0..=3).map(|d| (d, (0, Vec::new()))).collect();
    for &(day, _, duration) in JOBS {
        let e = days.get_mut(&day).unwrap();
        e.0 += 1;
        e.1.extend(duration);
    }
    let labels = (1..=4).map(|d| format!("2024-03-0{d}")).collect();
    let counts = days.values().map(|(n, _)| json!(n)).collect();
    let medians = days
        .values_mut()
        .map(|(_, ds)| {
            ds.sort_unstable();
            match ds.len() {
                0 => Value::Null,
                n if n % 2 == 1 => json!(ds[n / 2] as f64 / 60.0),
                n => json!((ds[n / 2 - 1] + ds[n / 2]) as f64 / 120.0),
            }
        })
        .collect();
    (labels, counts, medians)
}

#[tokio::test]
async fn overview_charts_what_the_store_holds() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.ingest(&fixture()).await?;
    let browser = Browser::start().await?;
    let c = &browser.client;

    c.goto(&format!("{}/?from=2024-03-01T00:00:00Z&to=2024-03-05T00:00:00Z", server.url)).await?;
    let count = browser.wait_text(testid::JOB_COUNT, |t| !t.is_empty()).await?;
    assert_eq!(count, JOBS.len().to_string());

    let option = browser
        .js("const el = document.querySelector('[data-testid=\"chart\"]'); \
             const o = echarts.getInstanceByDom(el).getOption(); \
             return {x: o.xAxis[0].data, jobs: o.series[0].data, median: o.series[1].data};")
        .await?;
    let (labels, counts, medians) = expected();
    assert_eq!(option["x"], json!(labels));
    assert_eq!(option["jobs"], json!(counts));
    let drawn = option["median"].as_array().unwrap();
    assert_eq!(drawn.len(), medians.len());
    for (d, m) in drawn.iter().zip(&medians) {
        match (d.as_f64(), m.as_f64()) {
            (Some(d), Some(m)) => assert!((d - m).abs() < 1e-9, "{d} != {m}"),
            _ => assert_eq!(d, m),
        }
    }
    let ms = browser.wait_text(testid::RECOMPUTE_MS, |t| !t.is_empty()).await?;
    assert!(ms.chars().any(|c| c.is_ascii_digit()), "{ms}");
    browser.screenshot("overview").await?;

    // An empty range says so rather than drawing nothing.
    c.goto(&format!("{}/?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", server.url)).await?;
    browser.wait_text(testid::STATUS, |t| t.contains("No jobs")).await?;
    assert_eq!(browser.wait_text(testid::JOB_COUNT, |t| !t.is_empty()).await?, "0");
    browser.screenshot("overview-empty").await?;

    // A malformed range is a message, not a blank page.
    c.goto(&format!("{}/?from=yesterday", server.url)).await?;
    let status = browser.wait_text(testid::STATUS, |t| t.contains("yesterday")).await?;
    assert!(status.contains("not a time"), "{status}");
    browser.screenshot("overview-error").await?;

    browser.close().await
}
