//! Jenkins remote-access JSON: a job's
//! `api/json?tree=allBuilds[number,result,timestamp,duration,building,builtOn,url,queueId,actions[...]]`
//! (or `builds[...]`), a bare array of builds, or one build's `api/json`.
//!
//! A job is one Jenkins build: `source` is `jenkins`, `id` is `<job full name>#<number>`
//! (build numbers are per job). The job name comes from the caller ([`parse_with_job`]),
//! else the document's `fullName`/`name`, else the build's URL (`/job/a/job/b/42/` →
//! `a/b`). Times are epoch milliseconds; a value that is plainly seconds is refused with a
//! hint.

use std::collections::BTreeMap;
use std::fmt;

use common::time::{MAX_RECORD_MS, MIN_RECORD_MS};
use common::{Job, JobResult, Timestamp};
use serde::Deserialize;
use serde_json::Value;

use super::buildbot::{read_json, typed};
use super::{ImportBatch, ImportError, Options, Skipped, insert_tag, scalar_text};

/// Parses a Jenkins JSON document, calling `sink` once.
pub fn parse(
    input: &mut dyn std::io::BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_with_job(input, opts, None, sink)
}

/// [`parse`] for builds whose document does not name their job (a saved build list).
pub fn parse_with_job(
    input: &mut dyn std::io::BufRead,
    opts: &Options,
    job_name: Option<&str>,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let value = read_json(input, opts)?;
    let (name, builds, prefix) = match value {
        Value::Array(_) => (None, typed::<Vec<Build>>(value, &opts.origin)?, ""),
        Value::Object(ref map) if map.contains_key("number") => {
            (None, vec![typed::<Build>(value, &opts.origin)?], "")
        }
        value => {
            let doc: Document = typed(value, &opts.origin)?;
            let name = doc.full_name.or(doc.name);
            match (doc.all_builds, doc.builds) {
                (Some(b), _) => (name, b, "allBuilds"),
                (None, Some(b)) => (name, b, "builds"),
                (None, None) => {
                    return Err(ImportError::new(
                        &opts.origin,
                        "no `allBuilds` or `builds` list (tree= must select one)",
                    ));
                }
            }
        }
    };
    let source = opts.source.as_deref().unwrap_or("jenkins");
    let mut batch = ImportBatch::default();
    for (i, build) in builds.into_iter().enumerate() {
        let job = job_name
            .map(str::to_owned)
            .or_else(|| name.clone())
            .or_else(|| build.url.as_deref().and_then(job_from_url))
            .or_else(|| build.full_display_name.as_deref().and_then(job_from_display_name));
        let at = format!("{prefix}[{i}] (#{})", build.number);
        match job
            .ok_or_else(|| "no job name (pass one, or include `url` in tree=)".to_owned())
            .and_then(|job| to_job(source, &job, build))
        {
            Ok(job) => batch.jobs.push(job),
            Err(reason) => batch.skipped.push(Skipped { at, reason }),
        }
    }
    sink(batch)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    all_builds: Option<Vec<Build>>,
    #[serde(default)]
    builds: Option<Vec<Build>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Build {
    number: i64,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    timestamp: Option<EpochMillis>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    building: Option<bool>,
    #[serde(default)]
    built_on: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    full_display_name: Option<String>,
    /// Heterogeneous plugin records (`{}` for those the tree did not select), read by shape.
    #[serde(default)]
    actions: Option<Vec<Value>>,
}

/// Epoch milliseconds, range-checked so that seconds are caught.
struct EpochMillis(Timestamp);

impl<'de> Deserialize<'de> for EpochMillis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = EpochMillis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch milliseconds")
            }
            fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<EpochMillis, E> {
                if ms < MIN_RECORD_MS {
                    let hint = if (MIN_RECORD_MS..=MAX_RECORD_MS).contains(&ms.saturating_mul(1000)) {
                        " (looks like epoch seconds; Jenkins gives epoch milliseconds)"
                    } else {
                        ""
                    };
                    return Err(E::custom(format!("epoch milliseconds {ms} is before 1990{hint}")));
                }
                if ms > MAX_RECORD_MS {
                    return Err(E::custom(format!("epoch milliseconds {ms} is after 2100")));
                }
                Ok(EpochMillis(Timestamp::from_millis(ms)))
            }
            fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<EpochMillis, E> {
                self.visit_i64(i64::try_from(ms).unwrap_or(i64::MAX))
            }
            fn visit_f64<E: serde::de::Error>(self, ms: f64) -> Result<EpochMillis, E> {
                if !ms.is_finite() {
                    return Err(E::custom("epoch milliseconds must be a finite number"));
                }
                self.visit_i64(ms as i64)
            }
        }
        d.deserialize_any(V)
    }
}

fn to_job(source: &str, job_name: &str, b: Build) -> Result<Job, String> {
    let building = b.building.unwrap_or(false);
    let result = match b.result.as_deref() {
        Some("SUCCESS") => JobResult::Success,
        Some("UNSTABLE") => JobResult::Warnings,
        Some("FAILURE") => JobResult::Failure,
        Some("NOT_BUILT") => JobResult::Skipped,
        Some("ABORTED") => JobResult::Cancelled,
        Some(other) => return Err(format!("unknown result `{other}`")),
        None if building => JobResult::Running,
        None => return Err("no result and not building".into()),
    };
    let started_at = b.timestamp.map(|t| t.0);
    let finished_at = match (started_at, b.duration) {
        (Some(start), Some(ms)) if result.is_finished() => {
            Some(Timestamp::from_millis(start.as_millis() + ms))
        }
        _ => None,
    };
    let mut job = Job {
        source: source.to_owned(),
        id: format!("{job_name}#{}", b.number),
        builder: job_name.to_owned(),
        project: None,
        branch: None,
        revision: None,
        // "" means the controller itself ("built-in node"); Pipeline builds have no field.
        worker: b.built_on.map(|w| if w.is_empty() { "built-in".to_owned() } else { w }),
        requested_at: None,
        started_at,
        finished_at,
        result,
        url: b.url,
        tags: BTreeMap::new(),
        metrics: BTreeMap::new(),
        steps: Vec::new(),
    };
    for action in b.actions.iter().flatten() {
        read_action(action, &mut job);
    }
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

/// Picks what Buildscope uses out of one `actions[]` entry, recognised by its fields (the
/// `_class` is absent when `tree=` does not select it): build parameters, the first cause,
/// the git plugin's built revision, and the metrics plugin's time in queue.
fn read_action(action: &Value, job: &mut Job) {
    if let Some(params) = action.get("parameters").and_then(Value::as_array) {
        for p in params {
            if let (Some(name), Some(value)) =
                (p.get("name").and_then(Value::as_str), p.get("value").and_then(scalar_text))
            {
                insert_tag(&mut job.tags, name, value);
            }
        }
    }
    if let Some(cause) = action
        .get("causes")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("shortDescription"))
        .and_then(Value::as_str)
    {
        insert_tag(&mut job.tags, "cause", cause.to_owned());
    }
    if let Some(rev) = action.get("lastBuiltRevision").filter(|_| job.revision.is_none()) {
        job.revision = rev.get("SHA1").and_then(Value::as_str).map(str::to_owned);
        job.branch = rev
            .get("branch")
            .and_then(|b| b.get(0))
            .and_then(|b| b.get("name"))
            .and_then(Value::as_str)
            .map(|b| b.trim_start_matches("refs/remotes/").trim_start_matches("origin/").to_owned());
    }
    if let (Some(queued), Some(start)) =
        (action.get("queuingDurationMillis").and_then(Value::as_i64), job.started_at)
        && queued >= 0
    {
        job.requested_at = Some(Timestamp::from_millis(start.as_millis() - queued));
    }
}

/// `https://ci/job/team/job/app/job/main/42/` → `team/app/main`.
fn job_from_url(url: &str) -> Option<String> {
    let parts: Vec<&str> = url.split('/').collect();
    let names: Vec<&str> =
        parts.windows(2).filter(|w| w[0] == "job" && !w[1].is_empty()).map(|w| w[1]).collect();
    (!names.is_empty()).then(|| names.join("/"))
}

/// `team » app » main #42` → `team/app/main`.
fn job_from_display_name(name: &str) -> Option<String> {
    let (job, _) = name.rsplit_once(" #")?;
    Some(job.split(" » ").collect::<Vec<_>>().join("/")).filter(|j| !j.is_empty())
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
    fn all_builds_of_a_job() {
        check(
            &fixture("jenkins/allBuilds.json"),
            "
            team/app/main#105 team/app/main running w=linux-agent-3 q=1700000590 s=1700000600 f=-
            team/app/main#104 team/app/main cancelled w=linux-agent-2 q=- s=1700000400 f=1700000460
            team/app/main#103 team/app/main warnings w=linux-agent-1 q=1700000280 s=1700000300 f=1700000395.5
            team/app/main#102 team/app/main failure w=built-in q=- s=1700000200 f=1700000260
            team/app/main#101 team/app/main success w=- q=- s=1700000100 f=1700000190
            team/app/main#99 team/app/main skipped w=- q=- s=1699999900 f=1699999900
            skip allBuilds[5] (#100): unknown result `LOST`
            ",
        );
        let batch = run(parse, &fixture("jenkins/allBuilds.json"), None).unwrap();
        let b103 = &batch.jobs[2];
        assert_eq!(b103.source, "jenkins");
        assert_eq!(b103.revision.as_deref(), Some("7f3e9c1d2b4a59687c0d1e2f3a4b5c6d7e8f9a0b"));
        assert_eq!(b103.branch.as_deref(), Some("main"));
        assert_eq!(b103.tags["TARGET"], "linux-x86_64");
        assert_eq!(b103.tags["RUN_SLOW_TESTS"], "true");
        assert_eq!(b103.tags["cause"], "Started by an SCM change");
        assert_eq!(b103.url.as_deref(), Some("https://ci.example.org/job/team/job/app/job/main/103/"));
    }

    #[test]
    fn job_name_from_the_caller_or_the_urls() {
        let builds = r#"[{"number":7,"result":"SUCCESS","timestamp":1700000000000,"duration":1000,"url":"https://ci/job/a/job/b/7/"},
                         {"number":8,"result":"SUCCESS","timestamp":1700000000000,"duration":1000,"fullDisplayName":"a » c #8"},
                         {"number":9,"result":"SUCCESS","timestamp":1700000000000,"duration":1000}]"#;
        check(
            builds.as_bytes(),
            "
            a/b#7 a/b success w=- q=- s=1700000000 f=1700000001
            a/c#8 a/c success w=- q=- s=1700000000 f=1700000001
            skip [2] (#9): no job name (pass one, or include `url` in tree=)
            ",
        );
        let opts = Options { origin: "x".into(), ..Options::default() };
        let mut got = ImportBatch::default();
        parse_with_job(&mut builds.as_bytes(), &opts, Some("nightly"), &mut |b| {
            got = b;
            Ok(())
        })
        .unwrap();
        assert!(got.jobs.iter().all(|j| j.builder == "nightly") && got.jobs.len() == 3);
    }

    #[test]
    fn bad_input_is_named() {
        check_err(
            r#"{"name":"x","allBuilds":[{"number":1,"timestamp":17"#,
            "input.json",
            "EOF while parsing",
        );
        check_err(
            r#"{"name":"x","allBuilds":[{"number":1,"result":"SUCCESS","timestamp":1700000000,"duration":5}]}"#,
            "input.json: allBuilds[0].timestamp",
            "looks like epoch seconds",
        );
        check_err(
            r#"{"name":"x","builds":[{"number":"1"}]}"#,
            "input.json: builds[0].number",
            "expected i64",
        );
        check_err(
            r#"{"name":"x","builds":[{"number":1,"building":"yes"}]}"#,
            "input.json: builds[0].building",
            "expected a boolean",
        );
        check_err(r#"{"name":"x"}"#, "input.json", "no `allBuilds`");
        check(
            br#"{"name":"x","builds":[{"number":1,"timestamp":1700000000000},{"number":2,"result":"SUCCESS","timestamp":1700000000000,"duration":-5000}]}"#,
            "
            skip builds[0] (#1): no result and not building
            skip builds[1] (#2): finished_at: 2023-11-14T22:13:15Z is before started_at 2023-11-14T22:13:20Z
            ",
        );
        check(
            br#"{"name":"x","builds":[{"number":3,"result":"SUCCESS","timestamp":1700000000000,"duration":0,"actions":null}]}"#,
            "x#3 x success w=- q=- s=1700000000 f=1700000000",
        );
        let long = "j".repeat(3000);
        check(
            format!(r#"{{"name":"{long}","builds":[{{"number":1,"result":"SUCCESS","timestamp":1700000000000,"duration":1}}]}}"#)
                .as_bytes(),
            "skip builds[0] (#1): id: longer than 1024 bytes",
        );
    }

    #[test]
    fn random_damage_never_panics() {
        no_panics(parse, &[&fixture("jenkins/allBuilds.json")]);
    }
}
