//! The HTTP pulls end to end: a real local HTTP server plays GitHub Actions, GitLab and
//! Jenkins (their paging headers and ranges, their authentication), `run::pull` writes into
//! a fresh SQLite file. Each pull must take every page, a second pull only what is new
//! (plus the boundary record), and a failing page must be named without losing what was
//! stored before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use buildscope::import::pull::{PullOptions, Token};
use buildscope::import::run::{self, ImportReport, Kind};
use buildscope::store::Store;
use serde_json::{Value, json};

/// A CI system's records, newest first: GitHub runs, GitLab pipelines or Jenkins builds,
/// each with its jobs (ids and whether finished).
struct Item {
    id: i64,
    done: bool,
    jobs: Vec<(i64, bool)>,
}

#[derive(Default)]
struct Ci {
    base: String,
    items: Vec<Item>,
    /// `path?query` of every request, and its credentials header.
    hits: Vec<String>,
    auth: Vec<String>,
    /// Requests whose `path?query` contains the text get the fault instead.
    fault: Option<(String, Fault)>,
}

#[derive(Clone, Copy)]
enum Fault {
    Status500,
    BadJson,
}

type Shared = Arc<Mutex<Ci>>;

impl Ci {
    fn set(&mut self, id: i64, done: bool, jobs: &[(i64, bool)]) {
        let item = Item { id, done, jobs: jobs.to_vec() };
        match self.items.iter_mut().find(|i| i.id == id) {
            Some(old) => *old = item,
            None => {
                self.items.push(item);
                self.items.sort_by_key(|i| -i.id);
            }
        }
    }

    fn item(&self, id: i64) -> &Item {
        self.items.iter().find(|i| i.id == id).expect("known item")
    }
}

async fn start() -> (Shared, String, Arc<dyn Store>, tempfile::TempDir) {
    let ci: Shared = Arc::default();
    let app = axum::Router::new().fallback(serve).with_state(ci.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    ci.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.sqlite").display());
    let store = buildscope::store::open(&url.parse().unwrap()).await.unwrap();
    (ci, base, store, dir)
}

fn take_hits(ci: &Shared) -> Vec<String> {
    std::mem::take(&mut ci.lock().unwrap().hits)
}

fn opts(token: &str) -> PullOptions {
    PullOptions { page_size: 2, token: Some(Token::new(token)), ..PullOptions::default() }
}

/// Jobs (and runs) inserted and updated.
fn counts(report: &ImportReport) -> (u64, u64) {
    assert_eq!(report.error, None, "{}", report.summary());
    assert_eq!(report.skipped, 0, "{}", report.summary());
    (report.jobs.inserted, report.jobs.updated)
}

/// 1 March 2024 plus `n` hours, in RFC 3339.
fn time(n: i64) -> String {
    jiff::Timestamp::from_second(1_709_294_400 + n * 3600).unwrap().to_string()
}

async fn serve(State(ci): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut ci = ci.lock().unwrap();
    let (path, query) = (uri.path().to_owned(), uri.query().unwrap_or("").to_owned());
    let target = format!("{path}?{query}");
    ci.hits.push(target.clone());
    let auth = ["authorization", "private-token"].iter().find_map(|h| headers.get(*h));
    ci.auth.push(auth.map_or(String::new(), |v| v.to_str().unwrap().to_owned()));
    match ci.fault {
        Some((ref needle, Fault::Status500)) if target.contains(needle.as_str()) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "{\"message\": \"database is on fire\"}")
                .into_response();
        }
        Some((ref needle, Fault::BadJson)) if target.contains(needle.as_str()) => {
            return "[{\"id\": 1,, }]".into_response();
        }
        _ => {}
    }
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let num = |key: &str, default: usize| params.get(key).map_or(default, |v| v.parse().unwrap());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments[..] {
        ["repos", "o", "r", "actions", "runs"] => {
            let runs: Vec<Value> = ci.items.iter().map(|r| github_run(&ci.base, r)).collect();
            github_page(&ci.base, &path, "workflow_runs", runs, num("per_page", 30), num("page", 1))
        }
        ["repos", "o", "r", "actions", "runs", id, "jobs"] => {
            let run = ci.item(id.parse().unwrap());
            let jobs: Vec<Value> = run.jobs.iter().map(|&(j, done)| github_job(run.id, j, done)).collect();
            github_page(&ci.base, &path, "jobs", jobs, num("per_page", 30), num("page", 1))
        }
        ["api", "v4", "projects", "7", "pipelines"] => {
            let pipelines: Vec<Value> = ci.items.iter().map(gitlab_pipeline).collect();
            gitlab_page(pipelines, num("per_page", 20), num("page", 1))
        }
        ["api", "v4", "projects", "7", "pipelines", id, "jobs"] => {
            assert_eq!(params.get("include_retried").map(String::as_str), Some("true"));
            let p = ci.item(id.parse().unwrap());
            let jobs: Vec<Value> = p.jobs.iter().rev().map(|&(j, done)| gitlab_job(p.id, j, done)).collect();
            gitlab_page(jobs, num("per_page", 20), num("page", 1))
        }
        // A project's jobs with keyset pagination: the next page is in `Link`.
        ["api", "v4", "projects", "7", "jobs"] => {
            let before = params.get("id_before").map_or(i64::MAX, |v| v.parse().unwrap());
            let mut jobs: Vec<(i64, i64, bool)> =
                ci.items.iter().flat_map(|p| p.jobs.iter().map(|&(j, done)| (p.id, j, done))).collect();
            jobs.sort_by_key(|&(_, j, _)| -j);
            let per_page = num("per_page", 20);
            let page: Vec<(i64, i64, bool)> =
                jobs.into_iter().filter(|&(_, j, _)| j < before).take(per_page + 1).collect();
            let more = page.len() > per_page;
            let page = &page[..page.len().min(per_page)];
            let body: Vec<Value> = page.iter().map(|&(p, j, done)| gitlab_job(p, j, done)).collect();
            let mut resp = axum::Json(body).into_response();
            if more {
                let next = format!(
                    "<{}{path}?per_page={per_page}&pagination=keyset&id_before={}>; rel=\"next\"",
                    ci.base,
                    page.last().unwrap().1
                );
                resp.headers_mut().insert("link", next.parse().unwrap());
            }
            resp
        }
        ["job", "team", "job", "app", "api", "json"] => {
            let tree = params.get("tree").expect("tree=");
            if tree == "fullName,name" {
                return axum::Json(json!({"_class": "WorkflowJob", "fullName": "team/app", "name": "app"}))
                    .into_response();
            }
            let range = tree.rsplit_once('{').unwrap().1.trim_end_matches('}');
            let (m, n) = range.split_once(',').unwrap();
            let (m, n): (usize, usize) = (m.parse().unwrap(), n.parse().unwrap());
            let builds: Vec<Value> =
                ci.items.iter().skip(m).take(n - m).map(|b| jenkins_build(&ci.base, b)).collect();
            axum::Json(json!({"_class": "WorkflowJob", "allBuilds": builds})).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

/// One page of a GitHub listing with its `Link` header.
fn github_page(
    base: &str,
    path: &str,
    key: &str,
    items: Vec<Value>,
    per_page: usize,
    page: usize,
) -> Response {
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let body: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut resp = axum::Json(json!({"total_count": total, key: body})).into_response();
    let link = |p: usize, rel: &str| format!("<{base}{path}?per_page={per_page}&page={p}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    if !links.is_empty() {
        resp.headers_mut().insert("link", links.join(", ").parse().unwrap());
    }
    resp
}

/// One page of a GitLab listing with its offset-pagination headers.
fn gitlab_page(items: Vec<Value>, per_page: usize, page: usize) -> Response {
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let body: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut resp = axum::Json(body).into_response();
    let next = if page < pages { (page + 1).to_string() } else { String::new() };
    for (name, value) in [
        ("x-next-page", next),
        ("x-page", page.to_string()),
        ("x-per-page", per_page.to_string()),
        ("x-total", total.to_string()),
        ("x-total-pages", pages.to_string()),
    ] {
        resp.headers_mut().insert(name, value.parse().unwrap());
    }
    resp
}

fn github_run(base: &str, r: &Item) -> Value {
    json!({
        "id": r.id, "name": "CI", "path": ".github/workflows/ci.yml", "head_branch": "main",
        "head_sha": "3f786850e387550fdab836ed7e6dc881de23001b", "run_number": r.id, "run_attempt": 1,
        "event": "push", "status": if r.done { "completed" } else { "in_progress" },
        "conclusion": if r.done { Some("success") } else { None },
        "html_url": format!("https://github.com/o/r/actions/runs/{}", r.id),
        "created_at": time(r.id), "updated_at": time(r.id + 1), "run_started_at": time(r.id),
        "jobs_url": format!("{base}/repos/o/r/actions/runs/{}/jobs", r.id),
        "repository": {"full_name": "o/r"},
    })
}

fn github_job(run: i64, id: i64, done: bool) -> Value {
    json!({
        "id": id, "run_id": run, "run_attempt": 1, "workflow_name": "CI", "name": format!("job {}", id % 10),
        "head_branch": "main", "html_url": format!("https://github.com/o/r/actions/runs/{run}/job/{id}"),
        "status": if done { "completed" } else { "in_progress" },
        "conclusion": if done { Some("success") } else { None },
        "created_at": time(run), "started_at": time(run), "completed_at": if done { Some(time(run + 1)) } else { None },
        "labels": ["ubuntu-latest"], "runner_name": "GitHub Actions 1", "steps": [],
    })
}

fn gitlab_pipeline(p: &Item) -> Value {
    json!({
        "id": p.id, "iid": p.id - 100, "project_id": 7, "status": if p.done { "success" } else { "running" },
        "ref": "main", "sha": "6104942438c14ec7bd21c6cd5bd995272b3faff6",
        "web_url": format!("https://gitlab.example.com/acme/app/-/pipelines/{}", p.id),
    })
}

fn gitlab_job(pipeline: i64, id: i64, done: bool) -> Value {
    json!({
        "id": id, "name": format!("job {}", id % 10), "stage": "test", "status": if done { "success" } else { "running" },
        "created_at": time(pipeline), "started_at": time(pipeline), "finished_at": if done { Some(time(pipeline + 1)) } else { None },
        "queued_duration": 1.5, "pipeline": {"id": pipeline, "project_id": 7, "ref": "main", "sha": "6104942438c1"},
        "web_url": format!("https://gitlab.example.com/acme/app/-/jobs/{id}"),
        "runner": {"id": 1, "description": "runner-1"}, "tag_list": ["docker"],
    })
}

fn jenkins_build(base: &str, b: &Item) -> Value {
    json!({
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": b.id,
        "result": if b.done { Some("SUCCESS") } else { None }, "building": !b.done,
        "timestamp": (1_709_294_400 + b.id * 3600) * 1000, "duration": if b.done { 60_000 } else { 0 },
        "url": format!("{base}/job/team/job/app/{}/", b.id),
        "actions": [{"_class": "hudson.model.CauseAction", "causes": [{"shortDescription": "Started by timer"}]}, {}],
    })
}

#[tokio::test]
async fn github_pulls_every_page_then_only_what_is_new() {
    let (ci, base, store, _dir) = start().await;
    {
        let mut ci = ci.lock().unwrap();
        for run in 101..=105 {
            // Run 104 is still going: one of its jobs runs.
            let done = run != 104;
            ci.set(run, done, &[(run * 10 + 1, true), (run * 10 + 2, done), (run * 10 + 3, true)]);
        }
    }
    let url = format!("{base}/repos/o/r/actions/runs");
    let key = run::high_water_key(Kind::Github, &url, None);

    let report = run::pull(store.clone(), Kind::Github, &url, &opts("ghp_t0ken")).await;
    assert_eq!(counts(&report), (5 + 15, 0), "5 runs and their 15 jobs");
    assert_eq!(store.job_count().await.unwrap(), 20);
    let hits = take_hits(&ci);
    let run_pages: Vec<&String> = hits.iter().filter(|h| h.contains("/runs?")).collect();
    assert_eq!(run_pages.len(), 3, "5 runs in pages of 2: {hits:#?}");
    assert_eq!(hits.iter().filter(|h| h.contains("/jobs?")).count(), 10, "3 jobs per run in pages of 2");
    assert!(ci.lock().unwrap().auth.iter().all(|a| a == "Bearer ghp_t0ken"));
    assert_eq!(store.high_water(&key).await.unwrap(), Some(104), "the oldest unfinished run");
    let job = store.job("github", "1042").await.unwrap().unwrap();
    assert_eq!((job.result.as_str(), job.builder.as_str()), ("running", "CI / job 2"));
    let run_job = store.job("github-runs", "run-105-1").await.unwrap().unwrap();
    assert_eq!(run_job.project.as_deref(), Some("o/r"));

    // Run 104 finishes and run 106 comes: the next pull reads down to run 104 and no further.
    {
        let mut ci = ci.lock().unwrap();
        ci.set(104, true, &[(1041, true), (1042, true), (1043, true)]);
        ci.set(106, true, &[(1061, true), (1062, true)]);
    }
    let report = run::pull(store.clone(), Kind::Github, &url, &opts("ghp_t0ken")).await;
    assert_eq!(counts(&report), (1 + 2, 2 * (1 + 3)), "106 is new; 105 and 104 come again");
    let hits = take_hits(&ci);
    assert!(hits.iter().all(|h| !h.contains("page=3")), "{hits:#?}");
    let runs_with_jobs: Vec<&str> = hits
        .iter()
        .filter(|h| h.contains("/jobs?"))
        .map(|h| &h[h.find("runs/").unwrap() + 5..][..3])
        .collect();
    assert!(runs_with_jobs.iter().all(|r| ["104", "105", "106"].contains(r)), "{hits:#?}");
    assert_eq!(store.job("github", "1042").await.unwrap().unwrap().result.as_str(), "success");
    assert_eq!(store.high_water(&key).await.unwrap(), Some(106));

    // Nothing new: one page of runs, and the boundary run's jobs again.
    let report = run::pull(store.clone(), Kind::Github, &url, &opts("ghp_t0ken")).await;
    assert_eq!(counts(&report), (0, 3));
    assert_eq!(take_hits(&ci).len(), 1 + 1);
    assert_eq!(store.job_count().await.unwrap(), 23);
}

#[tokio::test]
async fn gitlab_pulls_pipelines_and_their_jobs_then_only_what_is_new() {
    let (ci, base, store, _dir) = start().await;
    {
        let mut ci = ci.lock().unwrap();
        for p in 201..=205 {
            let done = p != 203;
            ci.set(p, done, &[(p * 10 + 1, true), (p * 10 + 2, true), (p * 10 + 3, done)]);
        }
    }
    let url = format!("{base}/api/v4/projects/7/pipelines");
    let report = run::pull(store.clone(), Kind::Gitlab, &url, &opts("glpat-t0ken")).await;
    assert_eq!(counts(&report), (15, 0), "the jobs of 5 pipelines");
    let hits = take_hits(&ci);
    assert_eq!(hits.iter().filter(|h| h.contains("/pipelines?")).count(), 3, "{hits:#?}");
    assert_eq!(hits.iter().filter(|h| h.contains("/jobs?")).count(), 10, "{hits:#?}");
    assert!(ci.lock().unwrap().auth.iter().all(|a| a == "glpat-t0ken"), "sent as PRIVATE-TOKEN");
    let job = store.job("gitlab", "2033").await.unwrap().unwrap();
    assert_eq!((job.result.as_str(), job.project.as_deref()), ("running", Some("acme/app")));

    {
        let mut ci = ci.lock().unwrap();
        ci.set(203, true, &[(2031, true), (2032, true), (2033, true)]);
        ci.set(206, true, &[(2061, true)]);
    }
    let report = run::pull(store.clone(), Kind::Gitlab, &url, &opts("glpat-t0ken")).await;
    assert_eq!(counts(&report), (1, 9), "206 is new; 205, 204 and 203 come again");
    let hits = take_hits(&ci);
    // 203 ends page 2, so page 3 is read to see that nothing older is wanted.
    assert_eq!(hits.iter().filter(|h| h.contains("/pipelines?")).count(), 3, "{hits:#?}");
    assert_eq!(hits.iter().filter(|h| h.contains("/jobs?")).count(), 1 + 2 + 2 + 2, "{hits:#?}");
    assert_eq!(store.job("gitlab", "2033").await.unwrap().unwrap().result.as_str(), "success");
    let key = run::high_water_key(Kind::Gitlab, &url, None);
    assert_eq!(store.high_water(&key).await.unwrap(), Some(206));

    // A project's jobs listing pages by `Link` (keyset) and is incremental by job id.
    let jobs_url = format!("{base}/api/v4/projects/7/jobs?pagination=keyset");
    let report = run::pull(store.clone(), Kind::Gitlab, &jobs_url, &opts("glpat-t0ken")).await;
    assert_eq!(counts(&report), (0, 16));
    assert_eq!(take_hits(&ci).len(), 8, "16 jobs in pages of 2");
    ci.lock().unwrap().set(207, true, &[(2071, true)]);
    let report = run::pull(store.clone(), Kind::Gitlab, &jobs_url, &opts("glpat-t0ken")).await;
    assert_eq!(counts(&report), (1, 1), "2071 is new, 2061 the boundary");
    assert_eq!(take_hits(&ci).len(), 2, "the page with both, then one that reaches below");
}

#[tokio::test]
async fn jenkins_pulls_ranges_then_only_what_is_new() {
    let (ci, base, store, _dir) = start().await;
    {
        let mut ci = ci.lock().unwrap();
        for n in 1..=7 {
            ci.set(n, n != 6, &[]);
        }
    }
    let url = format!("{base}/job/team/job/app/");
    let mut o = opts("alice:11e7");
    o.page_size = 3;
    let report = run::pull(store.clone(), Kind::Jenkins, &url, &o).await;
    assert_eq!(counts(&report), (7, 0));
    let hits = take_hits(&ci);
    assert_eq!(hits.len(), 1 + 3, "the name, then {{0,3}} {{3,6}} {{6,9}}: {hits:#?}");
    assert!(hits[3].ends_with("]{6,9}"), "{hits:#?}");
    // alice:11e7 in base64.
    assert!(ci.lock().unwrap().auth.iter().all(|a| a == "Basic YWxpY2U6MTFlNw=="));
    let build = store.job("jenkins", "team/app#6").await.unwrap().unwrap();
    assert_eq!((build.result.as_str(), build.tags["cause"].as_str()), ("running", "Started by timer"));

    {
        let mut ci = ci.lock().unwrap();
        ci.set(6, true, &[]);
        ci.set(8, true, &[]);
        ci.set(9, true, &[]);
    }
    let report = run::pull(store.clone(), Kind::Jenkins, &url, &o).await;
    assert_eq!(counts(&report), (2, 2), "8 and 9 are new; 7 and 6 come again");
    assert_eq!(take_hits(&ci).len(), 1 + 2);
    assert_eq!(store.job("jenkins", "team/app#6").await.unwrap().unwrap().result.as_str(), "success");

    let e = run::pull(store.clone(), Kind::Jenkins, &url, &opts("no-colon")).await.error.unwrap();
    assert!(e.contains("USER:API_TOKEN"), "{e}");
}

#[tokio::test]
async fn a_failing_page_is_named_and_loses_nothing() {
    let (ci, base, store, _dir) = start().await;
    {
        let mut ci = ci.lock().unwrap();
        for run in 101..=106 {
            ci.set(run, true, &[(run * 10 + 1, true)]);
        }
        ci.fault = Some(("page=3".into(), Fault::Status500));
    }
    let url = format!("{base}/repos/o/r/actions/runs");
    let key = run::high_water_key(Kind::Github, &url, None);
    let report = run::pull(store.clone(), Kind::Github, &url, &opts("t")).await;
    let e = report.error.clone().unwrap();
    assert!(
        e.starts_with(&format!(
            "{url}?per_page=2&page=3: HTTP 500 Internal Server Error: database is on fire"
        )),
        "{e}"
    );
    assert_eq!(report.jobs.inserted, 8, "pages 1 and 2: 4 runs and their jobs");
    assert_eq!(store.job_count().await.unwrap(), 8);
    assert_eq!(store.high_water(&key).await.unwrap(), None, "the mark waits for a whole pull");

    // Bad JSON on page 3: named with where in the body.
    ci.lock().unwrap().fault = Some(("page=3".into(), Fault::BadJson));
    let e = run::pull(store.clone(), Kind::Github, &url, &opts("t")).await.error.unwrap();
    assert_eq!(e, format!("{url}?per_page=2&page=3: expected a member name at line 1 column 11"));

    // A failing job list costs its page, not the pages before it.
    ci.lock().unwrap().fault = Some(("runs/102/jobs".into(), Fault::BadJson));
    let report = run::pull(store.clone(), Kind::Github, &url, &opts("t")).await;
    let e = report.error.unwrap();
    assert!(
        e.starts_with(&format!("{base}/repos/o/r/actions/runs/102/jobs?per_page=2: expected a member")),
        "{e}"
    );
    assert_eq!((report.jobs.inserted, report.jobs.updated), (0, 8));

    // Fixed: the next pull takes everything, and the mark is set.
    ci.lock().unwrap().fault = None;
    let report = run::pull(store.clone(), Kind::Github, &url, &opts("t")).await;
    assert_eq!(counts(&report), (4, 8));
    assert_eq!(store.job_count().await.unwrap(), 12);
    assert_eq!(store.high_water(&key).await.unwrap(), Some(106));

    // GitLab and Jenkins name their failing pages too, and keep what came before.
    {
        let mut ci = ci.lock().unwrap();
        ci.fault = Some(("pipelines/103/jobs".into(), Fault::Status500));
    }
    let gl = format!("{base}/api/v4/projects/7/pipelines");
    let report = run::pull(store.clone(), Kind::Gitlab, &gl, &opts("t")).await;
    let e = report.error.clone().unwrap();
    assert!(e.starts_with(&format!("{gl}/103/jobs?per_page=2&include_retried=true: HTTP 500")), "{e}");
    assert_eq!(report.jobs.inserted, 2, "the jobs of the first page's pipelines: {}", report.summary());
    ci.lock().unwrap().fault = Some(("{3,6}".into(), Fault::BadJson));
    let jk = format!("{base}/job/team/job/app/");
    let report =
        run::pull(store.clone(), Kind::Jenkins, &jk, &PullOptions { page_size: 3, ..opts("a:b") }).await;
    let e = report.error.clone().unwrap();
    assert!(
        e.contains("/job/team/job/app/api/json?tree=allBuilds[") && e.contains("at line 1 column 11"),
        "{e}"
    );
    assert_eq!(report.jobs.inserted, 3, "{}", report.summary());
    assert_eq!(store.high_water(&run::high_water_key(Kind::Jenkins, &jk, None)).await.unwrap(), None);
}
