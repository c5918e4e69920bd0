//! GitLab CI job lists (`GET /projects/:id/jobs`, `/pipelines/:id/jobs`): a JSON array of
//! jobs, a single job, or an array of saved pages (arrays).
//!
//! A Buildscope job is a GitLab job: `source` `gitlab`, `id` the job id (unique within a
//! GitLab instance), builder the job name, project the path from `web_url`. The request
//! time is `started_at - queued_duration` when GitLab reports the queue time: `created_at`
//! is when the pipeline created the job, which for later stages includes waiting for the
//! earlier ones rather than for a runner.

//!
//! Jobs stream: each element is read, converted and batched on its own
//! ([`crate::import::json`]). [`fetch`] pulls pipelines and their jobs, or a jobs listing,
//! page by page.

mod fetch;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use common::job::MAX_NAME_LEN;
use common::{Job, JobResult, Timestamp};
use serde::Deserialize;

pub use self::fetch::fetch;
use super::json::{Stream, decode};
use super::{Batcher, ImportBatch, ImportError, Options};

/// Parses a GitLab jobs response, handing jobs to `sink` in batches.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let source = opts.source.as_deref().unwrap_or("gitlab");
    let mut out = Batcher::new(sink);
    let mut s = Stream::new(input, &opts.origin);
    read(&mut s, &mut |at, job| {
        let id = job.id;
        out.push(|| at.label(id), to_job(source, job))
    })?;
    out.finish()
}

/// Where a job was: `[page][index]`, `[index]`, or nothing for a single job.
#[derive(Clone, Copy)]
pub(crate) struct At {
    page: Option<usize>,
    index: Option<usize>,
}

impl At {
    /// `[3] (id 42)`, the label of a skipped job.
    pub fn label(&self, id: i64) -> String {
        let at = self.to_string();
        if at.is_empty() { format!("(id {id})") } else { format!("{at} (id {id})") }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in [self.page, self.index].into_iter().flatten() {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

/// Walks a jobs response (a list of jobs, a list of such pages, or one job) and calls
/// `each` with every job. Returns how many there were.
pub(crate) fn read<R: BufRead>(
    s: &mut Stream<'_, R>,
    each: &mut dyn for<'b> FnMut(At, GlJob<'b>) -> Result<(), ImportError>,
) -> Result<usize, ImportError> {
    let origin = s.origin();
    let mut count = 0;
    let mut job = |s: &mut Stream<'_, R>, at: At| -> Result<(), ImportError> {
        let raw = s.raw()?;
        count += 1;
        each(at, decode(&raw, origin, &at)?)
    };
    match s.peek()? {
        Some(b'[') => s.array(|s, i| match s.peek()? {
            // A saved page: a list of jobs.
            Some(b'[') => s.array(|s, j| job(s, At { page: Some(i), index: Some(j) })),
            _ => job(s, At { page: None, index: Some(i) }),
        })?,
        _ => job(s, At { page: None, index: None })?,
    }
    s.end()?;
    Ok(count)
}

/// A CI job (`GET /projects/:id/jobs`, `/projects/:id/pipelines/:pipeline_id/jobs`).
#[derive(Deserialize)]
pub(crate) struct GlJob<'a> {
    id: i64,
    name: String,
    #[serde(default)]
    stage: Option<String>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(default)]
    failure_reason: Option<String>,
    #[serde(default)]
    allow_failure: Option<bool>,
    #[serde(default)]
    created_at: Option<Timestamp>,
    #[serde(default)]
    started_at: Option<Timestamp>,
    #[serde(default)]
    finished_at: Option<Timestamp>,
    #[serde(default)]
    queued_duration: Option<f64>,
    /// Seconds; stands in for `finished_at` when a trimmed response lacks it.
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    runner: Option<Runner>,
    #[serde(default)]
    pipeline: Option<Pipeline>,
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    tag: Option<bool>,
    #[serde(default)]
    web_url: Option<String>,
    #[serde(default)]
    commit: Option<Commit>,
    #[serde(default)]
    tag_list: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Runner {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct Pipeline {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    project_id: Option<i64>,
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    sha: Option<String>,
}

#[derive(Deserialize)]
struct Commit {
    #[serde(default)]
    id: Option<String>,
}

/// Failure reasons that blame the infrastructure rather than the job's script.
const INFRA_FAILURES: &[&str] = &[
    "runner_system_failure",
    "stuck_or_timeout_failure",
    "api_failure",
    "runner_unsupported",
    "scheduler_failure",
    "data_integrity_failure",
    "archived_failure",
    "unmet_prerequisites",
    "stale_schedule",
    "missing_dependency_failure",
    "forward_deployment_failure",
];

/// GitLab status → result. A failure the pipeline allows shows as "passed with warnings"
/// in GitLab, hence `warnings`; infrastructure failure reasons are `exception`; a manual
/// job that nobody started is `skipped`.
fn map_result(status: &str, allow_failure: bool, failure_reason: Option<&str>) -> Result<JobResult, String> {
    Ok(match status {
        "success" => JobResult::Success,
        "failed" if allow_failure => JobResult::Warnings,
        "failed" if failure_reason.is_some_and(|r| INFRA_FAILURES.contains(&r)) => JobResult::Exception,
        "failed" => JobResult::Failure,
        "canceled" | "canceling" => JobResult::Cancelled,
        "skipped" | "manual" => JobResult::Skipped,
        "running" => JobResult::Running,
        "created"
        | "waiting_for_resource"
        | "preparing"
        | "pending"
        | "scheduled"
        | "waiting_for_callback" => JobResult::Pending,
        other => return Err(format!("unknown status `{other}`")),
    })
}

fn to_job(source: &str, j: GlJob<'_>) -> Result<Job, String> {
    let result = map_result(&j.status, j.allow_failure.unwrap_or(false), j.failure_reason.as_deref())?;
    let (started_at, finished_at) = match result {
        JobResult::Pending => (None, None),
        JobResult::Running => (j.started_at, None),
        // Cancelled or skipped before it started.
        _ if j.started_at.is_none() => (None, None),
        _ => {
            let from_duration = j.started_at.zip(j.duration.filter(|d| d.is_finite() && *d >= 0.0));
            let computed = from_duration
                .map(|(s, d)| Timestamp::from_millis(s.as_millis() + (d * 1000.0).round() as i64));
            (j.started_at, j.finished_at.or(computed))
        }
    };
    let queued = j.queued_duration.filter(|q| q.is_finite() && *q >= 0.0);
    let requested_at = match (started_at, queued) {
        (Some(start), Some(q)) => {
            Some(Timestamp::from_millis(start.as_millis() - (q * 1000.0).round() as i64))
        }
        _ => j.created_at.filter(|c| started_at.is_none_or(|s| *c <= s)),
    };
    let pipeline = j.pipeline;
    let mut tags = BTreeMap::new();
    let mut tag = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty() && v.len() <= MAX_NAME_LEN) {
            tags.insert(key.to_owned(), v);
        }
    };
    tag("stage", j.stage);
    tag("status", Some(j.status.into_owned()));
    tag("failure_reason", j.failure_reason);
    tag("pipeline_id", pipeline.as_ref().and_then(|p| p.id).map(|id| id.to_string()));
    tag("runner_id", j.runner.as_ref().and_then(|r| r.id).map(|id| id.to_string()));
    tag("runner_tags", j.tag_list.map(|t| t.join(",")));
    if j.tag == Some(true) {
        tag("ref_type", Some("tag".into()));
    }
    let project = j
        .web_url
        .as_deref()
        .and_then(project_from_url)
        .or_else(|| pipeline.as_ref().and_then(|p| p.project_id).map(|id| id.to_string()));
    let job = Job {
        source: source.to_owned(),
        id: j.id.to_string(),
        builder: j.name,
        project,
        branch: j.git_ref.or_else(|| pipeline.as_ref().and_then(|p| p.git_ref.clone())),
        revision: pipeline.as_ref().and_then(|p| p.sha.clone()).or_else(|| j.commit.and_then(|c| c.id)),
        worker: j
            .runner
            .and_then(|r| r.description.filter(|d| !d.is_empty()).or(r.id.map(|id| format!("runner-{id}")))),
        requested_at,
        started_at,
        finished_at,
        result,
        url: j.web_url,
        tags,
        metrics: BTreeMap::new(),
        steps: Vec::new(),
    };
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

/// `https://gitlab.example.com/group/sub/project/-/jobs/42` → `group/sub/project`.
fn project_from_url(url: &str) -> Option<String> {
    let path = url.split("://").nth(1)?.split_once('/')?.1;
    let (project, _) = path.split_once("/-/")?;
    (!project.is_empty()).then(|| project.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::buildbot::test_support::{assert_lines, fixture, no_panics, run, summarize};
    use super::*;

    fn check(input: &[u8], expected: &str) {
        assert_lines(&summarize(&run(parse, input, None).unwrap()), expected);
    }

    fn check_err(input: &str, at: &str, message: &str) {
        let e = run(parse, input.as_bytes(), None).unwrap_err();
        assert!(e.at == at && e.message.contains(message), "{e}");
    }

    const JOBS: &str = "
        8001 compile success w=shared-runner-1 q=1709294405.5 s=1709294410 f=1709294530
        8002 rspec 1/2 failure w=shared-runner-2 q=1709294530 s=1709294540 f=1709294900
        8003 rubocop warnings w=shared-runner-1 q=1709294535 s=1709294540 f=1709294600
        8004 rspec 2/2 exception w=runner-77 q=1709294240 s=1709294540 f=1709298140
        8005 deploy-staging skipped w=- q=1709294400 s=- f=-
        8006 pages cancelled w=- q=1709294400 s=- f=-
        8007 integration running w=k8s-runner q=1709294900 s=1709294910 f=-
        8008 deploy-production pending w=- q=1709294400 s=- f=-
        skip [8] (id 8009): unknown status `exploded`
    ";

    #[test]
    fn pipeline_jobs() {
        check(&fixture("gitlab/jobs.json"), JOBS);
        let batch = run(parse, &fixture("gitlab/jobs.json"), None).unwrap();
        let j = &batch.jobs[1];
        assert_eq!(j.source, "gitlab");
        assert_eq!(j.project.as_deref(), Some("acme/platform/api"));
        assert_eq!(j.branch.as_deref(), Some("main"));
        assert_eq!(j.revision.as_deref(), Some("6104942438c14ec7bd21c6cd5bd995272b3faff6"));
        assert_eq!(j.tags["stage"], "test");
        assert_eq!(j.tags["failure_reason"], "script_failure");
        assert_eq!(j.tags["runner_tags"], "docker,linux");
        assert_eq!(batch.jobs[3].tags["failure_reason"], "stuck_or_timeout_failure");
    }

    #[test]
    fn saved_pages_and_single_jobs() {
        let jobs: Vec<Value> = serde_json::from_slice(&fixture("gitlab/jobs.json")).unwrap();
        let pages = serde_json::to_vec(&[&jobs[..4], &jobs[4..]]).unwrap();
        let expected = JOBS.replace("[8] (id 8009)", "[1][4] (id 8009)");
        check(&pages, &expected);
        check(
            &serde_json::to_vec(&jobs[0]).unwrap(),
            "8001 compile success w=shared-runner-1 q=1709294405.5 s=1709294410 f=1709294530",
        );
        // A trimmed response without `finished_at` still gets an end from `duration`.
        check(
            br#"{"id":5,"name":"t","status":"success","started_at":"2024-03-01T12:00:00Z","duration":12.5}"#,
            "5 t success w=- q=- s=1709294400 f=1709294412.5",
        );
        // Nulls where lists usually are.
        check(
            br#"{"id":6,"name":"t","status":"failed","started_at":"2024-03-01T12:00:00Z","tag_list":null,"runner":null,"pipeline":null}"#,
            "6 t failure w=- q=- s=1709294400 f=-",
        );
    }

    #[test]
    fn bad_input_is_named() {
        check_err(
            r#"[{"id":1,"name":"x","status":"success","started_at":"2024-03-01"#,
            "input.json",
            "EOF while parsing",
        );
        check_err(
            r#"[{"id":1,"name":"x","status":"success"},{"id":2,"name":"y","status":"success","started_at":1709294400000}]"#,
            "input.json: [1].started_at",
            "looks like epoch milliseconds",
        );
        check_err(
            r#"[{"id":1,"name":"x","status":"success","queued_duration":"x"}]"#,
            "input.json: [0].queued_duration",
            "expected f64",
        );
        check_err(r#"[{"id":1,"name":"x","status":200}]"#, "input.json: [0].status", "expected a string");
        check_err(r#"[[{"id":1}]]"#, "input.json: [0][0]", "missing field `name`");
        let long = "r".repeat(1500);
        check(
            format!(r#"[{{"id":1,"name":"x","status":"success","ref":"{long}","started_at":"2024-03-01T12:00:00Z"}},{{"id":2,"name":"y","status":"success"}}]"#).as_bytes(),
            "
            skip [0] (id 1): branch: longer than 1024 bytes
            skip [1] (id 2): started_at: a job needs started_at or requested_at to place it in time
            ",
        );
    }

    #[test]
    fn random_damage_never_panics() {
        no_panics(parse, &[&fixture("gitlab/jobs.json")]);
    }
}
