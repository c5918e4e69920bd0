//! The tests and metrics pages end to end: jobs, JUnit reports and InfluxDB lines go in
//! through the real server's import endpoints; the pages, in headless Chromium, must show
//! the numbers computed here from the fixture, independently of `common`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use buildscope_tests::{Browser, Server, testid};
use fantoccini::Locator;
use serde_json::{Value, json};

/// 2024-03-01T00:00:00Z in epoch seconds.
const MARCH_1: i64 = 1_709_251_200;
const DAY: i64 = 86_400;
const RANGE: &str = "from=2024-03-01T00:00:00Z&to=2024-03-05T00:00:00Z";

/// Jobs: id, builder, revision, seconds after March 1st.
const JOBS: [(&str, &str, &str, i64); 9] = [
    ("1", "linux", "r1", 36_000),
    ("2", "win", "r1", 36_300),
    ("3", "linux", "r2", DAY + 36_000),
    ("4", "win", "r2", DAY + 36_300),
    ("5", "linux", "r3", 2 * DAY + 36_000),
    ("6", "win", "r3", 2 * DAY + 36_300),
    // A retrigger of r3 on win.
    ("7", "win", "r3", 2 * DAY + 39_600),
    ("8", "linux", "r4", 3 * DAY + 36_000),
    ("9", "win", "r4", 3 * DAY + 36_300),
];

/// Tests (classname, name) and their outcome in each job of [`JOBS`], in order: P passed,
/// F failed, E error, S skipped.
const TESTS: [(&str, &str, &str); 4] = [
    ("app.Login", "test_ok", "PPPPPPPPP"),
    // Flips on linux; skipped on win.
    ("app.Login", "test_flaky", "PSFSPSSFS"),
    // Fails once on win's r3 and passes on its retrigger.
    ("app.Net", "test_timeout", "PPPPPEPPP"),
    // A regression from r3 on: one flip per builder.
    ("app.Db", "test_migrate", "PPPPFFFFF"),
];

fn junit(job: usize) -> String {
    let mut xml = String::from("<testsuites><testsuite name=\"unit\">");
    for (classname, name, outcomes) in TESTS {
        let inner = match outcomes.as_bytes()[job] {
            b'F' => "<failure message=\"assertion failed\"/>",
            b'E' => "<error message=\"connection refused\"/>",
            b'S' => "<skipped/>",
            _ => "",
        };
        xml.push_str(&format!(
            "<testcase classname=\"{classname}\" name=\"{name}\" time=\"0.{job}5\">{inner}</testcase>"
        ));
    }
    xml + "</testsuite></testsuites>"
}

/// What the page should show per test, worked out plainly: (id, runs, failures, flips,
/// failure rate text, intermittent).
fn expected_tests() -> Vec<(String, u32, u32, u32, String, bool)> {
    TESTS
        .iter()
        .map(|(classname, name, outcomes)| {
            let outcomes = outcomes.as_bytes();
            let (mut passes, mut failures) = (0u32, 0u32);
            let mut by_builder: BTreeMap<&str, Vec<(i64, &str, bool)>> = BTreeMap::new();
            for (i, &(_, builder, rev, at)) in JOBS.iter().enumerate() {
                match outcomes[i] {
                    b'P' => passes += 1,
                    b'S' => continue,
                    _ => failures += 1,
                }
                by_builder.entry(builder).or_default().push((at, rev, outcomes[i] == b'P'));
            }
            let (mut flips, mut intermittent) = (0, false);
            for runs in by_builder.values_mut() {
                runs.sort();
                let here = runs.windows(2).filter(|w| w[0].2 != w[1].2).count() as u32;
                let transitions = runs.len().saturating_sub(1) as f64;
                flips += here;
                intermittent |= here >= 2 && f64::from(here) / transitions >= 0.05;
                for a in runs.iter() {
                    intermittent |= runs.iter().any(|b| a.1 == b.1 && a.2 != b.2);
                }
            }
            // Skipped runs count as runs.
            let runs = outcomes.len() as u32;
            let rate = format!("{:.1}%", f64::from(failures) / f64::from(passes + failures) * 100.0);
            (format!("{classname}::{name}"), runs, failures, flips, rate, intermittent)
        })
        .collect()
}

/// InfluxDB lines: (builder, seconds after March 1st, bytes) of `build_size.bytes`.
const SIZES: [(&str, i64, f64); 8] = [
    ("linux", 36_000, 100.0),
    ("linux", 39_600, 300.0),
    ("win", 43_200, 200.0),
    ("linux", DAY + 36_000, 400.0),
    // Nothing on March 3rd.
    ("linux", 3 * DAY + 36_000, 150.0),
    ("win", 3 * DAY + 37_000, 250.0),
    ("linux", 3 * DAY + 38_000, 350.0),
    ("win", 3 * DAY + 39_000, 450.0),
];

fn influx_lines() -> String {
    let mut lines: String = SIZES
        .iter()
        .enumerate()
        .map(|(i, (builder, at, v))| {
            format!("build_size,builder_name={builder},build_number={i} bytes={v} {}\n", MARCH_1 + at)
        })
        .collect();
    lines.push_str(&format!(
        "cpu,host=w1 load=0.5 {}\ncpu,host=w1 load=1.5 {}\n",
        MARCH_1 + 100,
        MARCH_1 + 200
    ));
    lines
}

/// Per UTC day from the first sample's to the last one's: (date, [mean, p50, p95, min, max]),
/// `None` for a day without samples. Percentiles interpolate between ranks as SQL's
/// `percentile_cont`.
fn expected_days() -> Vec<(String, Option<[f64; 5]>)> {
    let mut days: BTreeMap<i64, Vec<f64>> = (0..=3).map(|d| (d, Vec::new())).collect();
    for (_, at, v) in SIZES {
        days.get_mut(&(at / DAY)).unwrap().push(v);
    }
    days.into_iter()
        .map(|(d, mut xs)| {
            let label = format!("2024-03-0{}", d + 1);
            if xs.is_empty() {
                return (label, None);
            }
            xs.sort_by(f64::total_cmp);
            let q = |p: f64| {
                let h = p * (xs.len() - 1) as f64;
                let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
                xs[lo] + (h - lo as f64) * (xs[hi] - xs[lo])
            };
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            (label, Some([mean, q(0.5), q(0.95), xs[0], xs[xs.len() - 1]]))
        })
        .collect()
}

async fn seed(server: &Server) -> Result<()> {
    let jobs: Vec<Value> = JOBS
        .iter()
        .map(|&(id, builder, rev, at)| {
            json!({"source": "ci", "id": id, "builder": builder, "revision": rev, "worker": format!("{builder}-w"),
                   "started_at": MARCH_1 + at, "finished_at": MARCH_1 + at + 300, "result": "success"})
        })
        .collect();
    server.ingest(&json!(jobs)).await?;
    for (i, (id, ..)) in JOBS.iter().enumerate() {
        server.post(&format!("/api/v1/import/junit?job=ci/{id}"), junit(i)).await?;
    }
    server.post("/api/v1/import/influx?precision=s", influx_lines()).await?;
    Ok(())
}

/// The option of the page's chart once it has `series` series, as plain JSON.
async fn chart_option(browser: &Browser, series: usize) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let option = browser
            .js("const el = document.querySelector('[data-testid=\"chart\"]'); \
                 const c = el && echarts.getInstanceByDom(el); \
                 if (!c) return null; const o = c.getOption(); \
                 return {x: o.xAxis[0].data || null, y: o.yAxis[0].data || null, \
                         series: o.series.map(s => ({name: s.name, data: s.data}))};")
            .await?;
        if option["series"].as_array().is_some_and(|s| s.len() == series) {
            return Ok(option);
        }
        if Instant::now() > deadline {
            bail!("the chart never had {series} series: {option}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tests table as (test, runs, failures, flips, failure rate) text.
async fn table_rows(browser: &Browser) -> Result<Vec<[String; 5]>> {
    let rows = browser
        .js("return [...document.querySelectorAll('[data-testid=\"test-row\"]')].map(r => \
             [r.dataset.test, ...['runs', 'failures', 'flips', 'failure-rate'] \
              .map(c => r.querySelector(`[data-col=\"${c}\"]`).textContent)]);")
        .await?;
    Ok(serde_json::from_value(rows)?)
}

/// Screenshots at 1280 and 800 px wide, scrolled so `scroll_to` (a test id) is in view.
async fn screenshots(browser: &Browser, name: &str, scroll_to: Option<&str>) -> Result<()> {
    if let Some(id) = scroll_to {
        browser.js(&format!("document.querySelector('{}').scrollIntoView();", testid::css(id))).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.screenshot(&format!("{name}-1280")).await?;
    browser.resize(800, 900).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    if let Some(id) = scroll_to {
        browser.js(&format!("document.querySelector('{}').scrollIntoView();", testid::css(id))).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.screenshot(&format!("{name}-800")).await?;
    browser.resize(1280, 900).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

#[tokio::test]
async fn tests_and_metrics_pages_show_what_was_imported() -> Result<()> {
    let server = Server::start()?;
    seed(&server).await?;
    let browser = Browser::start().await?;
    let c = &browser.client;
    let expected = expected_tests();

    // Every test, in the page's default order (most flips first, then failure rate).
    c.goto(&format!("{}/tests?{RANGE}&show=all", server.url)).await?;
    browser.wait_text(testid::TESTS_COUNT, |t| t == "4").await?;
    let mut shown = table_rows(&browser).await?;
    shown.sort();
    let mut want_rows: Vec<[String; 5]> = expected
        .iter()
        .map(|(id, runs, failures, flips, rate, _)| {
            [id.clone(), runs.to_string(), failures.to_string(), flips.to_string(), rate.clone()]
        })
        .collect();
    want_rows.sort();
    assert_eq!(shown, want_rows);
    // The one with the most flips comes first.
    let most = expected.iter().map(|e| e.3).max().unwrap();
    let top: Vec<&String> = expected.iter().filter(|e| e.3 == most).map(|e| &e.0).collect();
    assert_eq!(top.len(), 1, "the fixture has one test with the most flips");
    assert_eq!(&table_rows(&browser).await?[0][0], top[0]);

    // The default view lists the intermittent ones only.
    c.goto(&format!("{}/tests?{RANGE}", server.url)).await?;
    let intermittent: Vec<&String> = expected.iter().filter(|e| e.5).map(|e| &e.0).collect();
    browser.wait_text(testid::INTERMITTENT_COUNT, |t| t == intermittent.len().to_string()).await?;
    let mut listed: Vec<String> = table_rows(&browser).await?.into_iter().map(|r| r[0].clone()).collect();
    listed.sort();
    let mut want_listed: Vec<String> = intermittent.iter().map(|s| s.to_string()).collect();
    want_listed.sort();
    assert_eq!(listed, want_listed);

    // Clicking a test puts it in the URL and draws its history: one mark per run, by outcome.
    c.find(Locator::Css("[data-test=\"app.Net::test_timeout\"] a")).await?.click().await?;
    let summary = browser.wait_text(testid::HISTORY_SUMMARY, |t| t.contains("runs")).await?;
    assert!(summary.starts_with("9 runs on 2 builders: 8 passed, 1 failed or error"), "{summary}");
    let url = c.current_url().await?;
    assert!(url.query().unwrap_or("").contains("test=app.Net%3A%3Atest_timeout"), "{url}");
    let option = chart_option(&browser, 4).await?;
    let counts: Vec<(String, usize)> = option["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["data"].as_array().map_or(0, Vec::len)))
        .collect();
    let of = |o: u8| TESTS[2].2.bytes().filter(|&b| b == o).count();
    assert_eq!(
        counts,
        [
            ("Passed".to_owned(), of(b'P')),
            ("Failed".to_owned(), of(b'F')),
            ("Error".to_owned(), of(b'E')),
            ("Skipped".to_owned(), of(b'S'))
        ]
    );
    assert_eq!(option["y"], json!(["linux", "win"]));
    screenshots(&browser, "tests", None).await?;
    screenshots(&browser, "tests-history", Some(testid::TEST_HISTORY)).await?;

    // Empty and broken ranges say so.
    c.goto(&format!("{}/tests?from=2020-01-01&to=2020-01-02", server.url)).await?;
    browser.wait_text(testid::STATUS, |t| t.contains("No test results")).await?;
    c.goto(&format!("{}/tests?from=yesterday", server.url)).await?;
    browser.wait_text(testid::STATUS, |t| t.contains("yesterday")).await?;

    // The metrics page without a metric lists them with their sample counts.
    c.goto(&format!("{}/metrics?{RANGE}", server.url)).await?;
    browser.wait_text(testid::STATUS, |t| t.contains("Choose a metric")).await?;
    let listed = browser
        .js("return [...document.querySelectorAll('[data-testid=\"metric-row\"]')] \
             .map(r => [...r.children].slice(0, 2).map(td => td.textContent));")
        .await?;
    assert_eq!(listed, json!([["build_size.bytes", SIZES.len().to_string()], ["cpu.load", "2"]]));
    screenshots(&browser, "metrics-choose", None).await?;

    // One metric per day: the chart's lines are the day statistics computed here.
    c.goto(&format!("{}/metrics?{RANGE}&metric=build_size.bytes&bucket=day", server.url)).await?;
    browser.wait_text(testid::SAMPLE_COUNT, |t| t == SIZES.len().to_string()).await?;
    let option = chart_option(&browser, 7).await?;
    let days = expected_days();
    assert_eq!(option["x"], json!(days.iter().map(|d| &d.0).collect::<Vec<_>>()));
    let series = option["series"].as_array().unwrap();
    for (k, name) in ["Mean", "p50", "p95", "Min", "Max"].iter().enumerate() {
        let drawn = series.iter().find(|s| s["name"] == *name).unwrap()["data"].as_array().unwrap().clone();
        assert_eq!(drawn.len(), days.len(), "{name}");
        for (d, (label, want)) in drawn.iter().zip(&days) {
            match (d.as_f64(), want) {
                (Some(d), Some(w)) => assert!((d - w[k]).abs() < 1e-9, "{name} {label}: {d} != {}", w[k]),
                (None, None) => {}
                _ => panic!("{name} {label}: drew {d}, expected {want:?}"),
            }
        }
    }
    // The bucket table lists the days newest first, with their counts.
    let counts = browser
        .js("return [...document.querySelectorAll('[data-testid=\"bucket-row\"] [data-col=\"count\"]')] \
             .map(td => td.textContent);")
        .await?;
    assert_eq!(counts, json!(["4", "0", "1", "3"]));
    screenshots(&browser, "metrics", None).await?;
    screenshots(&browser, "metrics-buckets", Some("buckets-table")).await?;

    // A tag narrows the samples.
    c.goto(&format!(
        "{}/metrics?{RANGE}&metric=build_size.bytes&bucket=day&tag=builder_name%3Dwin",
        server.url
    ))
    .await?;
    let win = SIZES.iter().filter(|s| s.0 == "win").count();
    browser.wait_text(testid::SAMPLE_COUNT, |t| t == win.to_string()).await?;

    c.goto(&format!("{}/metrics?from=yesterday&metric=cpu.load", server.url)).await?;
    browser.wait_text(testid::STATUS, |t| t.contains("yesterday")).await?;
    browser.close().await
}
