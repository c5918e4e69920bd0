//! The import endpoints end to end over the real router and a fresh SQLite file: every
//! kind imports its fixture, re-importing stores nothing twice, and bad input is named
//! without losing what was stored.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use buildscope::AppState;
use buildscope::store::Store;
use common::TimeRange;
use common::records::JobKey;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn app() -> (Router, tempfile::TempDir) {
    let (app, _, dir) = app_and_store().await;
    (app, dir)
}

async fn app_and_store() -> (Router, std::sync::Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
    let store = buildscope::store::open(&url.parse().unwrap()).await.unwrap();
    let app = buildscope::router(AppState { store: store.clone(), static_dir: dir.path().to_owned() });
    (app, store, dir)
}

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

async fn post(app: &Router, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let res = app.clone().oneshot(Request::post(uri).body(Body::from(body)).unwrap()).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (status, value)
}

async fn get(app: &Router, uri: &str) -> Value {
    let res = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{uri}");
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

fn inserted(report: &Value, what: &str) -> u64 {
    report["report"][what]["inserted"].as_u64().unwrap()
}

fn updated(report: &Value, what: &str) -> u64 {
    report["report"][what]["updated"].as_u64().unwrap()
}

/// Imports a fixture twice: the first time stores `what`, the second only updates.
async fn check_idempotent(kind: &str, query: &str, path: &str, what: &str) {
    check_idempotent_body(kind, query, fixture(path), what).await
}

async fn check_idempotent_body(kind: &str, query: &str, body: Vec<u8>, what: &str) {
    let (app, _dir) = app().await;
    let uri = format!("/api/v1/import/{kind}{query}");
    let (status, first) = post(&app, &uri, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{kind}: {first}");
    let n = inserted(&first, what);
    assert!(n > 0, "{kind} stored no {what}: {first}");
    let (status, second) = post(&app, &uri, body).await;
    assert_eq!(status, StatusCode::OK, "{kind}: {second}");
    assert_eq!((inserted(&second, what), updated(&second, what)), (0, n), "{kind}: {second}");
}

#[tokio::test]
async fn every_kind_imports_its_fixture_once() {
    // Saved REST responses of one master, as a JSON array of pages.
    let pages: Vec<Value> = ["builders", "workers", "builds", "buildrequests", "steps"]
        .iter()
        .map(|p| serde_json::from_slice(&fixture(&format!("buildbot/rest/{p}.json"))).unwrap())
        .collect();
    check_idempotent_body("buildbot", "", serde_json::to_vec(&pages).unwrap(), "jobs").await;
    check_idempotent("buildapi", "", "buildapi/builds-4hr.js", "jobs").await;
    check_idempotent("buildapi", "", "buildapi/builds-2013-08-13.js.gz", "jobs").await;
    check_idempotent("jenkins", "", "jenkins/allBuilds.json", "jobs").await;
    check_idempotent("github", "", "github/jobs.json", "jobs").await;
    check_idempotent("gitlab", "", "gitlab/jobs.json", "jobs").await;
    check_idempotent("junit", "?job=ci/42", "junit/surefire.xml", "tests").await;
    // Points without a timestamp take the time of the write (as in InfluxDB), so only
    // timestamped points are idempotent.
    let points = b"cpu,host=w1 load=0.5,busy=true 1700000000\ncpu,host=w2 load=15i 1700000000\n".to_vec();
    check_idempotent_body("influx", "?precision=s", points, "samples").await;
    check_idempotent("csv", "", "csv/jobs.csv", "jobs").await;
}

#[tokio::test]
async fn buildbot_statistics_lines_import() {
    let (app, _dir) = app().await;
    let (status, report) = post(&app, "/api/v1/import/influx", fixture("influx/buildbot-stats.lp")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(inserted(&report, "samples"), 15, "{report}");
    assert_eq!(report["report"]["skipped"], 4, "string fields are skipped with a reason: {report}");
}

#[tokio::test]
async fn buildbot_push_updates_the_running_build() {
    let (app, _dir) = app().await;
    let (status, start) =
        post(&app, "/api/v1/hooks/buildbot?source=bb", fixture("buildbot/push-start.json")).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    assert_eq!(inserted(&start, "jobs"), 1);
    let (status, finish) =
        post(&app, "/api/v1/hooks/buildbot?source=bb", fixture("buildbot/push-finish.json")).await;
    assert_eq!(status, StatusCode::OK, "{finish}");
    assert_eq!((inserted(&finish, "jobs"), updated(&finish, "jobs")), (0, 1));
    let jobs = get(&app, "/api/v1/jobs?format=json&from=0&to=now&source=bb").await;
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_ne!(jobs[0]["result"], "running");
}

#[tokio::test]
async fn influx_write_endpoints_answer_like_influxdb() {
    let (app, _dir) = app().await;
    let line = b"build-times,builder_name=linux,build_number=7 duration=42.5 1700000000\n".to_vec();
    let (status, _) = post(&app, "/write?db=bb&precision=s", line.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post(&app, "/api/v2/write?bucket=bb&precision=s", line).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) =
        post(&app, "/write?db=bb", b"ok value=1 1700000000000000000\nbroken line here\n".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("line 2"), "{body}");
}

#[tokio::test]
async fn bad_input_is_named_and_earlier_data_kept() {
    let (app, _dir) = app().await;
    let (_, ok) = post(&app, "/api/v1/import/jenkins", fixture("jenkins/allBuilds.json")).await;
    let stored = inserted(&ok, "jobs");
    let mut truncated = fixture("jenkins/allBuilds.json");
    truncated.truncate(truncated.len() / 2);
    let (status, body) = post(&app, "/api/v1/import/jenkins?source=other", truncated).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert!(body["error"]["message"].as_str().unwrap().contains("upload"), "{body}");
    let health = get(&app, "/api/v1/health").await;
    assert_eq!(health["jobs"].as_u64().unwrap(), stored, "the failed import wrote nothing");

    let (status, body) = post(&app, "/api/v1/import/junit", fixture("junit/pytest.xml")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "JUnit needs a job: {body}");
    let (status, _) = post(&app, "/api/v1/import/nope", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = post(&app, "/api/v1/import/junit?job=nojob", vec![]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("SOURCE/ID"), "{body}");
}

#[tokio::test]
async fn exported_csv_imports_back_to_the_same_jobs() {
    let (app, _dir) = app().await;
    post(&app, "/api/v1/import/gitlab", fixture("gitlab/jobs.json")).await;
    let before = get(&app, "/api/v1/jobs?format=json&from=0&to=now").await;
    let res = app
        .clone()
        .oneshot(Request::get("/api/v1/jobs?format=csv&from=0&to=now").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csv = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    let (app2, _dir2) = self::app().await;
    let (status, report) = post(&app2, "/api/v1/import/csv", csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let after = get(&app2, "/api/v1/jobs?format=json&from=0&to=now").await;
    assert_eq!(before, after);
}

/// The saved REST pages of one master, as `/api/v1/import/buildbot` takes them.
fn buildbot_pages() -> Vec<u8> {
    let pages: Vec<Value> = ["builders", "workers", "builds", "buildrequests", "steps"]
        .iter()
        .map(|p| serde_json::from_slice(&fixture(&format!("buildbot/rest/{p}.json"))).unwrap())
        .collect();
    serde_json::to_vec(&pages).unwrap()
}

#[tokio::test]
async fn samples_link_to_the_buildbot_job_of_their_build_in_either_order() {
    // Build 17 of linux-x86_64 is buildid 101 in the fixture; build 99 is not there.
    let points = b"build-times,builder_name=linux-x86_64,build_number=17 duration=600 1700000700\n\
                   build-times,builder_name=linux-x86_64,build_number=99 duration=5 1700000800\n"
        .to_vec();
    let all_time = TimeRange { from_ms: 0, to_ms: i64::MAX };
    let links = |store: std::sync::Arc<dyn Store>| async move {
        let samples = store.samples("build-times.duration", all_time).await.unwrap();
        samples.into_iter().map(|s| (s.tags["build_number"].clone(), s.job)).collect::<Vec<_>>()
    };
    let key = |id: &str| Some(JobKey { source: "buildbot".into(), id: id.into() });
    let want = vec![("17".to_owned(), key("101")), ("99".to_owned(), key("linux-x86_64/99"))];

    for jobs_first in [true, false] {
        let (app, store, _dir) = app_and_store().await;
        if jobs_first {
            let (status, report) = post(&app, "/api/v1/import/buildbot", buildbot_pages()).await;
            assert_eq!(status, StatusCode::OK, "{report}");
        }
        let (status, report) = post(&app, "/api/v1/import/influx?precision=s", points.clone()).await;
        assert_eq!((status, inserted(&report, "samples")), (StatusCode::OK, 2), "{report}");
        if !jobs_first {
            // Before the job is stored, the link is the one the line protocol implies.
            assert_eq!(links(store.clone()).await[0].1, key("linux-x86_64/17"));
            let (status, report) = post(&app, "/api/v1/import/buildbot", buildbot_pages()).await;
            assert_eq!(status, StatusCode::OK, "{report}");
        }
        assert_eq!(links(store).await, want, "jobs first: {jobs_first}");
    }
}

/// `lines` lines of `#` padding, 64 KiB each, with one point before and one after.
fn padded_points(lines: usize) -> (Body, u64) {
    let mut pad = vec![b'#'; 64 << 10];
    *pad.last_mut().unwrap() = b'\n';
    let pad = Bytes::from(pad);
    let first = Bytes::from_static(b"big,host=a v=1 1700000000\n");
    let last = Bytes::from_static(b"big,host=a v=2 1700000001\n");
    let len = (first.len() + last.len() + lines * pad.len()) as u64;
    let chunks = std::iter::once(first).chain(std::iter::repeat_n(pad, lines)).chain(std::iter::once(last));
    (Body::from_stream(futures_util::stream::iter(chunks.map(Ok::<_, std::io::Error>))), len)
}

#[tokio::test]
async fn line_protocol_streams_past_the_body_limit() {
    let (app, _dir) = app().await;
    let lines = (buildscope::routes::BODY_LIMIT_BYTES >> 16) + 64;
    let (body, len) = padded_points(lines);
    assert!(len > buildscope::routes::BODY_LIMIT_BYTES as u64);
    let res = app
        .clone()
        .oneshot(Request::post("/api/v1/import/influx?precision=s").body(body).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let report: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(inserted(&report, "samples"), 2, "{report}");

    let (body, _) = padded_points(lines);
    let res =
        app.clone().oneshot(Request::post("/write?db=bb&precision=s").body(body).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Kinds parsed from the whole document keep the limit.
    let (body, _) = padded_points(lines);
    let res = app.clone().oneshot(Request::post("/api/v1/import/jenkins").body(body).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
