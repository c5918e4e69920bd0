//! The report endpoints over the real router and a fresh SQLite file: `GET /api/v1/tests`
//! (test results of a range's jobs, dictionary coded), `GET /api/v1/metrics` and
//! `GET /api/v1/samples`, fed through the import endpoints.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use buildscope::AppState;
use common::records::TestOutcome;
use common::reports::{MetricInfo, SampleTable, TestTable, outcome_from_code};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// 2024-03-01T00:00:00Z in epoch seconds.
const MARCH_1: i64 = 1_709_251_200;

async fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
    let store = buildscope::store::open(&url.parse().unwrap()).await.unwrap();
    (buildscope::router(AppState { store, static_dir: dir.path().to_owned() }), dir)
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn post(app: &Router, uri: &str, body: impl Into<Body>) -> Value {
    let (status, body) = send(app, Request::post(uri).body(body.into()).unwrap()).await;
    let text = String::from_utf8_lossy(&body);
    assert!(status.is_success(), "{uri}: {status} {text}");
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

async fn get<T: serde::de::DeserializeOwned>(app: &Router, uri: &str) -> T {
    let (status, body) = send(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::OK, "{uri}: {text}");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}: {text}"))
}

async fn get_error(app: &Router, uri: &str) -> (StatusCode, String) {
    let (status, body) = send(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    (status, v["error"]["message"].as_str().unwrap_or_default().to_owned())
}

/// A JUnit report of `(suite, name, outcome)` cases.
fn junit(cases: &[(&str, &str, char)]) -> String {
    let mut xml = String::from("<testsuite name=\"s\">");
    for (suite, name, o) in cases {
        let inner = match o {
            'F' => "<failure message=\"boom\"/>",
            'E' => "<error message=\"setup\"/>",
            'S' => "<skipped/>",
            _ => "",
        };
        xml.push_str(&format!(
            "<testcase classname=\"{suite}\" name=\"{name}\" time=\"0.5\">{inner}</testcase>"
        ));
    }
    xml + "</testsuite>"
}

/// Three jobs on two builders and one source, plus one job of another source; JUnit reports
/// for all but the third, and one for a job that is not stored.
async fn seed_tests(app: &Router) {
    let job = |source: &str, id: &str, builder: &str, worker: Option<&str>, at: i64, rev: &str| {
        json!({"source": source, "id": id, "builder": builder, "worker": worker, "revision": rev,
               "started_at": MARCH_1 + at, "finished_at": MARCH_1 + at + 60, "result": "success"})
    };
    let jobs = json!([
        job("ci", "1", "linux", Some("w1"), 3_600, "r1"),
        job("ci", "2", "win", None, 7_200, "r1"),
        job("ci", "3", "linux", Some("w2"), 10_800, "r2"),
        job("other", "9", "linux", Some("w1"), 14_400, "r2"),
    ]);
    post(app, "/api/v1/jobs", jobs.to_string()).await;
    for (job, cases) in [
        ("ci/1", vec![("a.Login", "test_ok", 'P'), ("a.Login", "test_bad", 'F')]),
        ("ci/2", vec![("a.Login", "test_ok", 'E'), ("a.Login", "test_bad", 'S')]),
        ("other/9", vec![("a.Login", "test_ok", 'P')]),
        ("ci/404", vec![("a.Login", "test_ok", 'P')]),
    ] {
        post(app, &format!("/api/v1/import/junit?job={job}"), junit(&cases)).await;
    }
}

/// The table's rows spelled out: (source, id, builder, worker, test, outcome), table order.
fn rows(t: &TestTable) -> Vec<(String, String, String, Option<String>, String, TestOutcome)> {
    t.check().unwrap();
    let jobs = t.job_of_rows();
    (0..t.len())
        .map(|r| {
            let j = jobs[r] as usize;
            (
                t.sources[t.jobs.source[j] as usize].clone(),
                t.jobs.id[j].clone(),
                t.builders[t.jobs.builder[j] as usize].clone(),
                t.jobs.worker[j].map(|w| t.workers[w as usize].clone()),
                t.test_name(t.results.test[r] as usize),
                outcome_from_code(t.results.outcome[r]).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn tests_of_a_range_are_coded_with_their_jobs() {
    let (app, _dir) = app().await;
    seed_tests(&app).await;
    let range = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z";
    let t: TestTable = get(&app, &format!("/api/v1/tests?{range}")).await;
    let s = |v: &str| v.to_owned();
    use TestOutcome::*;
    // Job order is time order; within a job, suite and name order. Job 3 has no report and
    // the report of the unstored job ci/404 has no time, so neither appears.
    assert_eq!(
        rows(&t),
        [
            (s("ci"), s("1"), s("linux"), Some(s("w1")), s("a.Login::test_bad"), Failed),
            (s("ci"), s("1"), s("linux"), Some(s("w1")), s("a.Login::test_ok"), Passed),
            (s("ci"), s("2"), s("win"), None, s("a.Login::test_bad"), Skipped),
            (s("ci"), s("2"), s("win"), None, s("a.Login::test_ok"), Error),
            (s("other"), s("9"), s("linux"), Some(s("w1")), s("a.Login::test_ok"), Passed),
        ]
    );
    assert_eq!(
        t.jobs.time_ms,
        [(MARCH_1 + 3_600) * 1000, (MARCH_1 + 7_200) * 1000, (MARCH_1 + 14_400) * 1000]
    );
    assert_eq!(t.results.duration_ms, [Some(500); 5]);
    // Repeated strings are sent once.
    assert_eq!((t.builders.len(), t.suites.len(), t.names.len(), t.tests.name.len()), (2, 1, 2, 2));
    assert_eq!(t.revisions, ["r1", "r2"]);

    let only_ci: TestTable = get(&app, &format!("/api/v1/tests?{range}&source=ci")).await;
    assert_eq!(only_ci.len(), 4);
    let ok: TestTable = get(&app, &format!("/api/v1/tests?{range}&test=LOGIN::test_o")).await;
    assert!(rows(&ok).iter().all(|r| r.4 == "a.Login::test_ok") && ok.len() == 3, "{ok:?}");
    let early: TestTable = get(&app, "/api/v1/tests?from=2024-03-01T00:00:00Z&to=2024-03-01T01:30:00Z").await;
    assert_eq!(early.len(), 2);
    let nothing: TestTable = get(&app, &format!("/api/v1/tests?{range}&source=nosuch")).await;
    assert!(nothing.is_empty() && nothing.jobs.id.is_empty());
    let none_in_2020: TestTable = get(&app, "/api/v1/tests?from=2020-01-01&to=2020-01-02").await;
    assert!(none_in_2020.is_empty());

    let (status, message) = get_error(&app, "/api/v1/tests?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("yesterday"), "{message}");
}

#[tokio::test]
async fn metrics_and_their_samples() {
    let (app, _dir) = app().await;
    let lines = "\
build_size,builder_name=linux,build_number=7 bytes=100 1709290800\n\
build_size,builder_name=linux,build_number=8 bytes=300 1709294400\n\
build_size,builder_name=win,build_number=3 bytes=200 1709298000\n\
cpu,host=w1 load=0.5 1709290800\n";
    post(&app, "/api/v1/import/influx?precision=s", lines).await;

    let metrics: Vec<MetricInfo> = get(&app, "/api/v1/metrics").await;
    let summary: Vec<(&str, u64, i64, i64)> =
        metrics.iter().map(|m| (m.name.as_str(), m.samples, m.first_ms, m.last_ms)).collect();
    assert_eq!(
        summary,
        [
            ("build_size.bytes", 3, 1_709_290_800_000, 1_709_298_000_000),
            ("cpu.load", 1, 1_709_290_800_000, 1_709_290_800_000),
        ]
    );
    let later: Vec<MetricInfo> = get(&app, "/api/v1/metrics?from=2024-03-01T11:30:00Z").await;
    assert_eq!(
        later.iter().map(|m| (m.name.as_str(), m.samples)).collect::<Vec<_>>(),
        [("build_size.bytes", 2)]
    );

    let range = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z";
    let s: SampleTable = get(&app, &format!("/api/v1/samples?name=build_size.bytes&{range}")).await;
    s.check().unwrap();
    assert_eq!(s.name, "build_size.bytes");
    assert_eq!(s.value, [100.0, 300.0, 200.0]);
    assert_eq!(s.time_ms, [1_709_290_800_000, 1_709_294_400_000, 1_709_298_000_000]);
    // build_number is a tag, so each point has its own tag set.
    assert_eq!(s.tag_sets.len(), 3);
    assert_eq!(s.tag_sets[s.tags[2] as usize]["builder_name"], "win");
    assert_eq!(s.job(0).map(|j| j.id), Some("linux/7".to_owned()));

    let empty: SampleTable = get(&app, &format!("/api/v1/samples?name=nosuch&{range}")).await;
    assert!(empty.is_empty());
    let (status, message) = get_error(&app, "/api/v1/samples?from=now-1d").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("name"), "{message}");
    let (status, _) = get_error(&app, "/api/v1/metrics?from=now&to=now-1d").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
