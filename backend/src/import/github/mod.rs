//! GitHub Actions REST responses: workflow jobs (`{"jobs": [...]}` from
//! `/actions/runs/{id}/jobs`) and workflow runs (`{"workflow_runs": [...]}` from
//! `/actions/runs`), one response or a JSON array of saved pages.
//!
//! A Buildscope job is a GitHub *job* (one runner executing one job of a workflow):
//! `source` `github`, `id` the job id (unique across GitHub), builder
//! `<workflow name> / <job name>`. Runs are imported too, for repositories where only runs
//! were saved, but under their own source `github-runs` and ids `run-<id>-<attempt>`, so
//! counting jobs never counts a run as well. `created_at` is the request time, so queue
//! time is `started_at - created_at` as GitHub defines it.

//!
//! Records stream: each element of `jobs`/`workflow_runs` is read, converted and batched on
//! its own ([`crate::import::json`]). [`fetch`] pulls runs and their jobs page by page.

mod fetch;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use common::{Job, JobResult, Step, Timestamp};
use serde::Deserialize;

pub use self::fetch::fetch;
use super::json::{Stream, decode, locate};
use super::{Batcher, ImportBatch, ImportError, Options, Skipped, insert_tag};

/// Parses saved GitHub Actions API responses, handing records to `sink` in batches.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let sources = Sources::new(opts.source.as_deref());
    let mut out = Batcher::new(sink);
    let mut s = Stream::new(input, &opts.origin);
    read(&mut s, &mut |at, record| {
        let (id, job) = sources.convert(record);
        out.push(|| at.label(id), job)
    })?;
    out.finish()
}

/// The sources jobs and runs are filed under: `github` and `github-runs`, or both the
/// caller's.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'s> {
    jobs: &'s str,
    runs: &'s str,
}

impl<'s> Sources<'s> {
    pub fn new(source: Option<&'s str>) -> Self {
        Sources { jobs: source.unwrap_or("github"), runs: source.unwrap_or("github-runs") }
    }

    /// The record's id and its job (or why it has none).
    pub fn convert(&self, record: Record<'_>) -> (i64, Result<Job, String>) {
        match record {
            Record::Job(job) => (job.id, job_to_job(self.jobs, job)),
            Record::Run(run) => (run.id, run_to_job(self.runs, run)),
        }
    }
}

/// One element of a response's `jobs` or `workflow_runs`.
pub(crate) enum Record<'a> {
    Job(GhJob<'a>),
    Run(GhRun<'a>),
}

/// Where a record was: `[page].list[index]`.
#[derive(Clone, Copy)]
pub(crate) struct At {
    /// Index of the page in a saved list of pages.
    page: Option<usize>,
    list: &'static str,
    index: usize,
}

impl At {
    /// `jobs[3] (id 42)`, the label of a skipped record.
    pub fn label(&self, id: i64) -> String {
        format!("{self} (id {id})")
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.page {
            write!(f, "[{p}].")?;
        }
        write!(f, "{}[{}]", self.list, self.index)
    }
}

/// How many records a response held, and how many its listing has in all.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub records: usize,
    /// `total_count` (of the last page, for a list of pages).
    pub total: Option<u64>,
}

/// Walks saved GitHub Actions responses (one page object, or a list of them) and calls
/// `each` with every job and run.
pub(crate) fn read<R: BufRead>(
    s: &mut Stream<'_, R>,
    each: &mut dyn for<'b> FnMut(At, Record<'b>) -> Result<(), ImportError>,
) -> Result<Counts, ImportError> {
    let mut counts = Counts::default();
    match s.peek()? {
        Some(b'[') => s.array(|s, p| read_page(s, Some(p), &mut counts, each))?,
        Some(b'{') => read_page(s, None, &mut counts, each)?,
        _ => return Err(s.error("expected a GitHub Actions response (an object or a list of them)")),
    }
    s.end()?;
    Ok(counts)
}

fn read_page<R: BufRead>(
    s: &mut Stream<'_, R>,
    page: Option<usize>,
    counts: &mut Counts,
    each: &mut dyn for<'b> FnMut(At, Record<'b>) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let origin = s.origin();
    let prefix = page.map(|p| format!("[{p}]")).unwrap_or_default();
    if s.peek()? != Some(b'{') {
        let mut e = s.error("expected a jobs or runs response object");
        e.at = locate(origin, &prefix);
        return Err(e);
    }
    let mut lists = 0;
    s.object(|s, key| {
        let list = match key {
            "jobs" => "jobs",
            "workflow_runs" => "workflow_runs",
            "total_count" => {
                counts.total = decode(&s.raw()?, origin, &format_args!("{prefix}.total_count"))?;
                return Ok(());
            }
            _ => return s.skip(),
        };
        if s.null()? {
            return Ok(());
        }
        lists += 1;
        let dot = if prefix.is_empty() { "" } else { "." };
        s.list(&format!("{prefix}{dot}{list}"), |s, index| {
            let at = At { page, list, index };
            let raw = s.raw()?;
            let record = match list {
                "jobs" => Record::Job(decode(&raw, origin, &at)?),
                _ => Record::Run(decode(&raw, origin, &at)?),
            };
            counts.records += 1;
            each(at, record)
        })
    })?;
    if lists == 0 {
        return Err(ImportError::new(
            locate(origin, &prefix),
            "neither `jobs` nor `workflow_runs`: not a GitHub Actions jobs or runs response",
        ));
    }
    Ok(())
}

fn push(batch: &mut ImportBatch, at: impl FnOnce() -> String, job: Result<Job, String>) {
    match job {
        Ok(job) => batch.jobs.push(job),
        Err(reason) => batch.skipped.push(Skipped { at: at(), reason }),
    }
}

/// A workflow job (`GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs`).
#[derive(Deserialize)]
pub(crate) struct GhJob<'a> {
    id: i64,
    #[serde(default)]
    run_id: Option<i64>,
    #[serde(default)]
    run_attempt: Option<i64>,
    #[serde(default)]
    workflow_name: Option<String>,
    name: String,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    head_sha: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    created_at: Option<Timestamp>,
    #[serde(default)]
    started_at: Option<Timestamp>,
    #[serde(default)]
    completed_at: Option<Timestamp>,
    #[serde(default)]
    #[serde(borrow)]
    steps: Option<Vec<GhStep<'a>>>,
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    runner_name: Option<String>,
    #[serde(default)]
    runner_group_name: Option<String>,
}

#[derive(Deserialize)]
struct GhStep<'a> {
    name: String,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    conclusion: Option<Cow<'a, str>>,
    #[serde(default)]
    started_at: Option<Timestamp>,
    #[serde(default)]
    completed_at: Option<Timestamp>,
}

/// A workflow run (`GET /repos/{owner}/{repo}/actions/runs`).
#[derive(Deserialize)]
pub(crate) struct GhRun<'a> {
    id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    head_sha: Option<String>,
    #[serde(default)]
    run_number: Option<i64>,
    #[serde(default)]
    run_attempt: Option<i64>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    created_at: Option<Timestamp>,
    #[serde(default)]
    updated_at: Option<Timestamp>,
    #[serde(default)]
    run_started_at: Option<Timestamp>,
    #[serde(default)]
    repository: Option<Repository>,
    /// Where the run's jobs are listed (the pull follows it).
    #[serde(default)]
    jobs_url: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    full_name: Option<String>,
}

/// Status + conclusion → result. `timed_out` counts as a failure (the job ran out of its
/// own time budget), `startup_failure` as an exception (the workflow never ran),
/// `neutral`/`action_required`/`stale` as skipped; the raw conclusion is kept as a tag.
fn map_result(status: &str, conclusion: Option<&str>) -> Result<JobResult, String> {
    Ok(match (status, conclusion) {
        ("completed", Some(c)) => match c {
            "success" => JobResult::Success,
            "failure" | "timed_out" => JobResult::Failure,
            "cancelled" => JobResult::Cancelled,
            "skipped" | "neutral" | "action_required" | "stale" => JobResult::Skipped,
            "startup_failure" => JobResult::Exception,
            other => return Err(format!("unknown conclusion `{other}`")),
        },
        ("completed", None) => return Err("completed without a conclusion".into()),
        ("in_progress", _) => JobResult::Running,
        ("queued" | "waiting" | "requested" | "pending", _) => JobResult::Pending,
        (other, _) => return Err(format!("unknown status `{other}`")),
    })
}

fn job_to_job(source: &str, j: GhJob<'_>) -> Result<Job, String> {
    let result = map_result(&j.status, j.conclusion.as_deref())?;
    let mut tags = BTreeMap::new();
    let mut labels = j.labels.unwrap_or_default();
    labels.sort();
    insert_tag(&mut tags, "labels", labels.join(","));
    if let Some(c) = j.conclusion {
        insert_tag(&mut tags, "conclusion", c);
    }
    if let Some(g) = j.runner_group_name {
        insert_tag(&mut tags, "runner_group", g);
    }
    if let Some(run) = j.run_id {
        insert_tag(&mut tags, "run_id", run.to_string());
    }
    if let Some(attempt) = j.run_attempt {
        insert_tag(&mut tags, "run_attempt", attempt.to_string());
    }
    let builder = match j.workflow_name.filter(|w| !w.is_empty()) {
        Some(workflow) => format!("{workflow} / {}", j.name),
        None => j.name,
    };
    let (started_at, finished_at) = times(result, j.started_at, j.completed_at);
    let job = Job {
        source: source.to_owned(),
        id: j.id.to_string(),
        builder,
        project: j.html_url.as_deref().and_then(repo_from_url),
        branch: j.head_branch,
        revision: j.head_sha,
        worker: j.runner_name.filter(|r| !r.is_empty()),
        requested_at: j.created_at.filter(|c| started_at.is_none_or(|s| *c <= s)),
        started_at,
        finished_at,
        result,
        url: j.html_url,
        tags,
        metrics: BTreeMap::new(),
        steps: j
            .steps
            .unwrap_or_default()
            .into_iter()
            .map(|s| Step {
                result: s
                    .status
                    .as_deref()
                    .and_then(|status| map_result(status, s.conclusion.as_deref()).ok()),
                name: s.name,
                started_at: s.started_at,
                finished_at: s.completed_at,
            })
            .collect(),
    };
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

fn run_to_job(source: &str, r: GhRun<'_>) -> Result<Job, String> {
    let status = r.status.as_deref().ok_or("no status")?;
    let result = map_result(status, r.conclusion.as_deref())?;
    let builder = r.name.or(r.path).filter(|n| !n.is_empty()).ok_or("no workflow name")?;
    let mut tags = BTreeMap::new();
    for (key, value) in [
        ("event", r.event),
        ("conclusion", r.conclusion),
        ("run_number", r.run_number.map(|n| n.to_string())),
    ] {
        if let Some(value) = value {
            insert_tag(&mut tags, key, value);
        }
    }
    // Runs have no completion time; `updated_at` of a completed run is when it completed.
    let (started_at, finished_at) = times(result, r.run_started_at, r.updated_at);
    let job = Job {
        source: source.to_owned(),
        id: format!("run-{}-{}", r.id, r.run_attempt.unwrap_or(1)),
        builder,
        project: r.repository.and_then(|repo| repo.full_name),
        branch: r.head_branch,
        revision: r.head_sha,
        worker: None,
        requested_at: r.created_at.filter(|c| started_at.is_none_or(|s| *c <= s)),
        started_at,
        finished_at,
        result,
        url: r.html_url,
        tags,
        metrics: BTreeMap::new(),
        steps: Vec::new(),
    };
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

/// Start and end as the result allows: a queued job has not started (GitHub may still fill
/// `started_at`), an unfinished one has not ended, one cancelled before it started has
/// neither.
fn times(
    result: JobResult,
    started: Option<Timestamp>,
    ended: Option<Timestamp>,
) -> (Option<Timestamp>, Option<Timestamp>) {
    match result {
        JobResult::Pending => (None, None),
        JobResult::Running => (started, None),
        _ if started.is_none() => (None, None),
        _ => (started, ended),
    }
}

/// `https://github.com/owner/repo/actions/runs/1/job/2` → `owner/repo`.
fn repo_from_url(url: &str) -> Option<String> {
    let path = url.split("://").nth(1)?.split_once('/')?.1;
    let mut parts = path.split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    (!owner.is_empty() && !repo.is_empty()).then(|| format!("{owner}/{repo}"))
}

#[cfg(test)]
mod tests {
    use super::super::buildbot::test_support::{assert_lines, fixture, no_panics, run, summarize};
    use super::*;

    fn check(input: &[u8], expected: &str) {
        assert_lines(&summarize(&run(parse, input, None).unwrap()), expected);
    }

    fn check_err(input: &str, at: &str, message: &str) {
        let e = run(parse, input.as_bytes(), None).unwrap_err();
        assert!(e.at == at && e.message.contains(message), "{e}");
    }

    #[test]
    fn workflow_jobs() {
        check(
            &fixture("github/jobs.json"),
            "
            21000000001 CI / build (ubuntu-latest) success w=GitHub Actions 12 q=1709294400 s=1709294410 f=1709294700 [Set up job:success Checkout:success Build:success Complete job:success]
            21000000002 CI / test (windows-latest) failure w=GitHub Actions 13 q=1709294400 s=1709294460 f=1709295000 [Set up job:success Run tests:failure Post Checkout:skipped]
            21000000003 CI / lint cancelled w=- q=1709294400 s=- f=-
            21000000004 CI / e2e (self-hosted) running w=gpu-runner-2 q=1709294400 s=1709294800 f=- [Set up job:success Run e2e:running]
            21000000005 CI / deploy pending w=- q=1709294400 s=- f=-
            21000000006 CI / bench failure w=perf-1 q=1709294400 s=1709294500 f=1709298100
            skip jobs[6] (id 21000000007): unknown conclusion `exploded`
            ",
        );
        let batch = run(parse, &fixture("github/jobs.json"), None).unwrap();
        let j = &batch.jobs[0];
        assert_eq!(j.source, "github");
        assert_eq!(j.project.as_deref(), Some("octo-org/buildscope"));
        assert_eq!(j.tags["labels"], "ubuntu-latest");
        assert_eq!(batch.jobs[3].tags["labels"], "gpu,linux,self-hosted");
        assert_eq!(batch.jobs[5].tags["conclusion"], "timed_out");
    }

    #[test]
    fn workflow_runs_in_saved_pages() {
        check(
            &fixture("github/runs.json"),
            "
            run-9100000001-1 CI success w=- q=1709294400 s=1709294400 f=1709295100
            run-9100000001-2 CI failure w=- q=1709294400 s=1709296000 f=1709296600
            run-9100000002-1 Nightly running w=- q=1709300000 s=1709300005 f=-
            run-9100000003-1 Release pending w=- q=1709301000 s=- f=-
            ",
        );
        let batch = run(parse, &fixture("github/runs.json"), None).unwrap();
        assert!(batch.jobs.iter().all(|j| j.source == "github-runs"));
        assert_eq!(batch.jobs[0].project.as_deref(), Some("octo-org/buildscope"));
        assert_eq!(batch.jobs[0].tags["event"], "push");
    }

    #[test]
    fn bad_input_is_named() {
        check_err(r#"{"total_count":1,"jobs":[{"id":1,"#, "input.json", "EOF while parsing");
        check_err(
            r#"{"jobs":[{"id":1,"name":"x","status":"completed","created_at":1709294400000}]}"#,
            "input.json: jobs[0].created_at",
            "looks like epoch milliseconds",
        );
        check_err(
            r#"{"jobs":[{"id":1,"name":"x","status":"completed","started_at":"yesterday"}]}"#,
            "input.json: jobs[0].started_at",
            "not an RFC 3339",
        );
        check_err(
            r#"{"jobs":[{"id":"1","name":"x","status":"queued"}]}"#,
            "input.json: jobs[0].id",
            "expected i64",
        );
        check_err(
            r#"[{"jobs":[]},{"workflow_runs":{}}]"#,
            "input.json: [1].workflow_runs",
            "expected a sequence",
        );
        check_err(r#"{"total_count":0}"#, "input.json", "neither `jobs` nor `workflow_runs`");
        check(
            br#"{"jobs":[{"id":3,"name":"n","status":"in_progress","started_at":"2024-03-01T12:00:00Z","labels":null,"steps":null}]}"#,
            "3 n running w=- q=- s=1709294400 f=-",
        );
        let long = "s".repeat(2000);
        check(
            format!(r#"{{"jobs":[{{"id":1,"name":"{long}","status":"queued","created_at":"2024-03-01T12:00:00Z"}},{{"id":2,"name":"x","status":"done"}}]}}"#).as_bytes(),
            "
            skip jobs[0] (id 1): builder: longer than 1024 bytes
            skip jobs[1] (id 2): unknown status `done`
            ",
        );
    }

    #[test]
    fn random_damage_never_panics() {
        no_panics(parse, &[&fixture("github/jobs.json"), &fixture("github/runs.json")]);
    }
}
