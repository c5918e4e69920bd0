//! Per-endpoint tests: the real router over a fresh SQLite file per test, driven in-process
//! with `tower::ServiceExt::oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use buildscope::AppState;
use buildscope::store;
use common::api::{ErrorBody, Health, IngestReport};
use common::{Job, JobTable};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Server {
    app: Router,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
    let store = store::open(&url.parse().unwrap()).await.unwrap();
    let static_dir = dir.path().join("dist");
    std::fs::create_dir(&static_dir).unwrap();
    std::fs::write(static_dir.join("index.html"), "<html>app</html>").unwrap();
    Server { app: buildscope::router(AppState { store, static_dir }), _dir: dir }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn error(&self) -> common::api::ErrorDetail {
        self.json::<ErrorBody>().error
    }
}

impl Server {
    async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply { status, content_type, body }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn post(&self, uri: &str, body: impl Into<Body>) -> Reply {
        let req =
            Request::post(uri).header(header::CONTENT_TYPE, "application/json").body(body.into()).unwrap();
        self.send(req).await
    }

    async fn ingest(&self, jobs: &Value) -> Reply {
        self.post("/api/v1/jobs", jobs.to_string()).await
    }

    async fn count(&self) -> u64 {
        self.get("/api/v1/health").await.json::<Health>().jobs
    }
}

/// Jobs spread over three days of March 2024, from two sources.
fn fixture() -> Value {
    let day = 1_709_251_200; // 2024-03-01T00:00:00Z
    json!([
        {"source": "bb", "id": 1, "builder": "linux-build", "project": "core", "branch": "main",
         "revision": "a1", "worker": "w1", "result": "success",
         "requested_at": day + 100, "started_at": day + 160, "finished_at": day + 760,
         "url": "https://ci.example.com/builds/1",
         "tags": {"platform": "linux64"}, "metrics": {"build_size_bytes": 1234567},
         "steps": [{"name": "compile", "started_at": day + 160, "finished_at": day + 700, "result": "success"},
                   {"name": "test", "started_at": day + 700, "finished_at": day + 760, "result": "success"}]},
        {"source": "bb", "id": 2, "builder": "linux-test", "project": "core", "branch": "main",
         "revision": "a1", "worker": "w2", "result": "failure",
         "requested_at": day + 86_400, "started_at": day + 86_460, "finished_at": day + 87_000},
        {"source": "gh", "id": "run-9", "builder": "lint", "result": "running",
         "started_at": "2024-03-03T10:00:00Z", "tags": {"platform": "=HYPERLINK(\"x\")"}},
        {"source": "gh", "id": "run-10", "builder": "lint", "result": "pending",
         "requested_at": "2024-03-03T11:00:00Z"}
    ])
}

const RANGE: &str = "from=2024-03-01T00:00:00Z&to=2024-03-04T00:00:00Z";

#[tokio::test]
async fn ingest_then_reingest_updates_instead_of_duplicating() {
    let s = server().await;
    let r = s.ingest(&fixture()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json::<IngestReport>(), IngestReport { inserted: 4, updated: 0 });
    let r = s.ingest(&fixture()).await;
    assert_eq!(r.json::<IngestReport>(), IngestReport { inserted: 0, updated: 4 });
    assert_eq!(s.count().await, 4);

    // A changed record replaces the stored one, steps included.
    let mut changed = fixture();
    changed[0]["result"] = json!("warnings");
    changed[0]["steps"] = json!([{"name": "only", "started_at": 1_709_251_300}]);
    let r = s.ingest(&json!([changed[0]])).await;
    assert_eq!(r.json::<IngestReport>(), IngestReport { inserted: 0, updated: 1 });
    let job: Job = s.get("/api/v1/jobs/bb/1").await.json();
    assert_eq!(job.result, common::JobResult::Warnings);
    assert_eq!(job.steps.len(), 1);
    assert_eq!(s.count().await, 4);
}

#[tokio::test]
async fn concurrent_ingests_all_succeed() {
    let s = server().await;
    let batches = (0..8).map(|b| {
        let jobs: Vec<Value> = (0..200)
            .map(|i| {
                json!({"source": "par", "id": b * 1000 + i, "builder": format!("b{b}"), "result": "success",
                            "started_at": 1_709_251_200 + i})
            })
            .collect();
        let app = s.app.clone();
        tokio::spawn(async move {
            let req = Request::post("/api/v1/jobs").body(Body::from(json!(jobs).to_string())).unwrap();
            app.oneshot(req).await.unwrap().status()
        })
    });
    for handle in batches.collect::<Vec<_>>() {
        assert_eq!(handle.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(s.count().await, 8 * 200);
}

#[tokio::test]
async fn duplicate_keys_within_one_batch_keep_the_last() {
    let s = server().await;
    let mut a = fixture()[0].clone();
    a["result"] = json!("failure");
    let b = fixture()[0].clone();
    let r = s.ingest(&json!([a, b])).await;
    assert_eq!(r.json::<IngestReport>(), IngestReport { inserted: 1, updated: 1 });
    let job: Job = s.get("/api/v1/jobs/bb/1").await.json();
    assert_eq!(job.result, common::JobResult::Success);
}

#[tokio::test]
async fn bad_records_are_named_and_nothing_is_stored() {
    let s = server().await;
    let good = fixture()[0].clone();
    let with = |field: &str, value: Value| {
        let mut bad = fixture()[1].clone();
        if value.is_null() {
            bad.as_object_mut().unwrap().remove(field);
        } else {
            bad[field] = value;
        }
        json!([good, bad])
    };
    let cases = [
        (with("builder", Value::Null), "builder", "missing field `builder`"),
        (with("finished_at", json!(1_709_251_200)), "finished_at", "before started_at"),
        (with("result", json!("green")), "result", "unknown variant `green`"),
        (with("started_at", json!("2024-02-30T00:00:00Z")), "started_at", "RFC 3339"),
        (with("started_at", json!(1_709_251_200_000_i64)), "started_at", "epoch milliseconds"),
    ];
    for (body, field, needle) in cases {
        let r = s.ingest(&body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let e = r.error();
        assert_eq!((e.code.as_str(), e.index, e.field.as_deref()), ("invalid_record", Some(1), Some(field)));
        assert!(e.message.contains(needle), "{}", e.message);
        assert!(e.message.starts_with("record 1, field"), "{}", e.message);
    }
    assert_eq!(s.count().await, 0, "a rejected batch stores nothing");

    let r = s.post("/api/v1/jobs", "[{\"source\": ").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error().code, "malformed_json");
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let s = server().await;
    let body = vec![b' '; buildscope::routes::BODY_LIMIT_BYTES + 1];
    let r = s.post("/api/v1/jobs", body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let e = r.error();
    assert_eq!(e.code, "body_too_large");
    assert!(e.message.contains("64 MiB"), "{}", e.message);
}

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

#[tokio::test]
async fn time_range_and_source_narrow_the_rows() {
    let s = server().await;
    s.ingest(&fixture()).await;
    let rows = |q: String| {
        let s = &s;
        async move {
            let r = s.get(&format!("/api/v1/jobs?format=json&{q}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
            r.json::<Vec<Job>>()
        }
    };
    assert_eq!(ids(&rows(RANGE.into()).await), ["1", "2", "run-9", "run-10"]);
    // Day two only, in epoch milliseconds as Grafana writes them.
    let day2 = "from=1709337600000&to=1709423999999".to_owned();
    assert_eq!(ids(&rows(day2).await), ["2"]);
    assert_eq!(ids(&rows(format!("{RANGE}&source=gh")).await), ["run-9", "run-10"]);
    assert_eq!(ids(&rows(format!("{RANGE}&source=gh,bb")).await).len(), 4);
    assert!(rows(format!("{RANGE}&source=nope")).await.is_empty());
    // Relative ranges resolve against now: March 2024 is outside the last 7 days.
    assert!(rows("from=now-7d&to=now".into()).await.is_empty());

    let r = s.get("/api/v1/jobs?from=yesterday").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().message.contains("from: `yesterday` is not a time"), "{}", r.error().message);
}

#[tokio::test]
async fn a_views_filters_and_sort_narrow_json_and_csv_like_the_job_list() {
    let s = server().await;
    s.ingest(&fixture()).await;
    let rows = |q: &str| {
        let uri = format!("/api/v1/jobs?format=json&{RANGE}&{q}");
        let s = &s;
        async move {
            let r = s.get(&uri).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&r.body));
            r.json::<Vec<Job>>()
        }
    };
    // The job list's default order is newest first.
    assert_eq!(ids(&rows("var-project=core").await), ["2", "1"]);
    assert_eq!(ids(&rows("not-source=bb&view=pivot&group=builder").await), ["run-10", "run-9"]);
    assert_eq!(ids(&rows("range-duration=500..&sort=duration").await), ["2", "1"]);
    assert_eq!(ids(&rows("var-tag.platform=linux64").await), ["1"]);
    // Drawing keys alone do not narrow.
    assert_eq!(rows("measure=p95(duration)&view=bar").await.len(), 4);
    let csv = s.get(&format!("/api/v1/jobs?format=csv&{RANGE}&var-worker=w2")).await;
    let text = String::from_utf8(csv.body).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).unwrap().starts_with("bb,2,linux-test,"), "{text}");
    // A malformed view is named.
    let r = s.get(&format!("/api/v1/jobs?format=csv&{RANGE}&sort=sideways")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().message.contains("sort=sideways"), "{}", r.error().message);
}

#[tokio::test]
async fn the_ci_link_redirects_to_the_jobs_url() {
    let s = server().await;
    s.ingest(&fixture()).await;
    let r = s.send(Request::get("/api/v1/jobs/bb/1/ci").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    let res = s
        .app
        .clone()
        .oneshot(Request::get("/api/v1/jobs/bb/1/ci").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.headers()[header::LOCATION], "https://ci.example.com/builds/1");
    let r = s.get("/api/v1/jobs/bb/2/ci").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error().message.contains("without a link"), "{}", r.error().message);
    assert_eq!(s.get("/api/v1/jobs/bb/99/ci").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn columnar_json_and_csv_agree() {
    let s = server().await;
    s.ingest(&fixture()).await;
    let r = s.get(&format!("/api/v1/jobs?{RANGE}")).await;
    assert_eq!(r.content_type, common::wire::CONTENT_TYPE);
    let table = JobTable::decode(&r.body).unwrap();
    let from_table: Vec<Job> = (0..table.len).map(|row| table.job(row)).collect();

    let mut rows: Vec<Job> = s.get(&format!("/api/v1/jobs?format=json&{RANGE}")).await.json();
    assert_eq!(rows[0].url.as_deref(), Some("https://ci.example.com/builds/1"));
    for row in &mut rows {
        row.url = None; // the columnar table leaves urls to the detail endpoint
    }
    assert_eq!(from_table, rows);

    let r = s.get(&format!("/api/v1/jobs?format=csv&{RANGE}")).await;
    assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
    let csv = String::from_utf8(r.body).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 6, "header, 4 rows, and the final CRLF");
    assert!(lines[0].starts_with("source,id,builder,"));
    assert!(lines[0].ends_with(",duration_s,queue_s,tag.platform,metric.build_size_bytes"));
    assert!(lines[1].starts_with("bb,1,linux-build,core,main,a1,w1,2024-03-01T00:01:40Z,"));
    assert!(lines[1].ends_with(",600,60,linux64,1234567"), "{}", lines[1]);
    assert!(lines[3].contains(",\"'=HYPERLINK(\"\"x\"\")\","), "formula guarded: {}", lines[3]);
}

#[tokio::test]
async fn job_detail_has_steps_and_unknown_paths_are_json_404() {
    let s = server().await;
    s.ingest(&fixture()).await;
    let job: Job = s.get("/api/v1/jobs/bb/1").await.json();
    let sent: Job = serde_json::from_value(fixture()[0].clone()).unwrap();
    assert_eq!(job.steps, sent.steps, "steps come back with their times and results");
    assert_eq!(job, sent);
    assert_eq!(job.url.as_deref(), Some("https://ci.example.com/builds/1"));
    let r = s.get("/api/v1/jobs/bb/404").await;
    assert_eq!((r.status, r.error().code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let r = s.get("/api/v1/nope").await;
    assert_eq!((r.status, r.error().code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn any_other_path_serves_the_app_so_permalinks_load() {
    let s = server().await;
    for path in ["/", "/explore?from=now-7d&group=worker"] {
        let r = s.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body, b"<html>app</html>", "{path}");
    }
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let s = server().await;
    s.ingest(&fixture()).await;
    for encoding in ["br", "gzip"] {
        let req = Request::get(format!("/api/v1/jobs?format=json&{RANGE}"))
            .header(header::ACCEPT_ENCODING, encoding)
            .body(Body::empty())
            .unwrap();
        let res = s.app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.headers()[header::CONTENT_ENCODING], encoding);
    }
}
