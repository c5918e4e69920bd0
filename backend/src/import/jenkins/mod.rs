//! Jenkins remote-access JSON: a job's
//! `api/json?tree=allBuilds[number,result,timestamp,duration,building,builtOn,url,queueId,actions[...]]`
//! (or `builds[...]`), a bare array of builds, or one build's `api/json`.
//!
//! A job is one Jenkins build: `source` is `jenkins`, `id` is `<job full name>#<number>`
//! (build numbers are per job). The job name comes from the caller ([`parse_with_job`]),
//! else the document's `fullName`/`name`, else the build's URL (`/job/a/job/b/42/` →
//! `a/b`). Times are epoch milliseconds; a value that is plainly seconds is refused with a
//! hint.
//!
//! Builds stream: each element of `allBuilds`/`builds` is read, converted and batched on its
//! own ([`crate::import::json`]), so a dump of any length parses in bounded memory. Jenkins
//! writes `fullName` before the builds; when a document has it after them, builds that name
//! their job themselves (`url`) keep that name and the others wait for the document's (at
//! most [`MAX_DEFERRED`] of them).

mod fetch;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use common::time::{MAX_RECORD_MS, MIN_RECORD_MS};
use common::{Job, JobResult, Timestamp};
use serde::{Deserialize, Deserializer};

pub use self::fetch::{api_url, fetch};
use super::json::{Lenient, Members, ScalarText, Stream, decode};
use super::{Batcher, ImportBatch, ImportError, Options, insert_tag};

/// Builds whose job name may come later in the document, held back at most.
const MAX_DEFERRED: usize = 10_000;

/// Parses a Jenkins JSON document, handing builds to `sink` in batches.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_with_job(input, opts, None, sink)
}

/// [`parse`] for builds whose document does not name their job (a saved build list).
pub fn parse_with_job(
    input: &mut dyn BufRead,
    opts: &Options,
    job_name: Option<&str>,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let source = opts.source.as_deref().unwrap_or("jenkins");
    let mut out = Batcher::new(sink);
    // Builds that name no job themselves, while the document's name is still unknown.
    let mut deferred: Vec<(String, Vec<u8>)> = Vec::new();
    let mut s = Stream::new(input, &opts.origin);
    let doc_name = read(&mut s, &mut |at, build, doc_name| {
        let name = job_name.map(Cow::Borrowed).or(doc_name.map(Cow::Borrowed)).or_else(|| build.job_name());
        match name {
            Some(name) => {
                let number = build.number;
                out.push(|| at.label(number), to_job(source, &name, build))
            }
            None if doc_name.is_none() && deferred.len() < MAX_DEFERRED && at.list.is_some() => {
                deferred.push((at.to_string(), at.raw.to_vec()));
                Ok(())
            }
            None => {
                let number = build.number;
                out.push(|| at.label(number), Err(NO_NAME.to_owned()))
            }
        }
    })?;
    for (label, raw) in deferred {
        let build: Build<'_> = super::json::decode_slice(&raw, &opts.origin)?;
        let at = format!("{label} (#{})", build.number);
        let job = match &doc_name {
            Some(name) => to_job(source, name, build),
            None => Err(NO_NAME.to_owned()),
        };
        out.push(|| at, job)?;
    }
    out.finish()
}

const NO_NAME: &str = "no job name (pass one, or include `url` in tree=)";

/// Where a build was in the document, and its raw bytes (to hold it back).
pub(crate) struct At<'r> {
    /// `allBuilds`, `builds`, or `None` for a bare list or a single build.
    list: Option<&'static str>,
    index: usize,
    raw: &'r [u8],
}

impl At<'_> {
    /// `allBuilds[3] (#42)`, the label of a skipped build.
    fn label(&self, number: i64) -> String {
        format!("{self} (#{number})")
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.list.unwrap_or(""), self.index)
    }
}

/// What [`read`] calls with each build, where it was, and the job name so far.
pub(crate) type EachBuild<'e> =
    dyn for<'b> FnMut(At<'b>, Build<'b>, Option<&str>) -> Result<(), ImportError> + 'e;

/// Walks a Jenkins document (a job's `allBuilds`/`builds`, a bare list of builds, or one
/// build) and calls `each` with every build and the job name the document has given so
/// far. Returns the document's job name (`fullName`, else `name`).
pub(crate) fn read<R: BufRead>(
    s: &mut Stream<'_, R>,
    each: &mut EachBuild<'_>,
) -> Result<Option<String>, ImportError> {
    let origin = s.origin();
    let mut element =
        |s: &mut Stream<'_, R>, list: Option<&'static str>, index: usize, name: Option<&str>| {
            let raw = s.raw()?;
            let at = At { list, index, raw: raw.bytes };
            let build: Build<'_> = decode(&raw, origin, &at)?;
            each(at, build, name)
        };
    match s.peek()? {
        Some(b'[') => {
            s.array(|s, i| element(s, None, i, None))?;
            s.end()?;
            return Ok(None);
        }
        Some(b'{') => {}
        _ => return Err(s.error("expected a Jenkins job, build or list of builds")),
    }
    let (mut name, mut full_name) = (None::<String>, None::<String>);
    let mut list = None;
    let mut rest = Members::default();
    s.object(|s, key| {
        match key {
            "allBuilds" | "builds" if list.is_none() => {
                if s.null()? {
                    return Ok(());
                }
                let key = if key == "allBuilds" { "allBuilds" } else { "builds" };
                list = Some(key);
                let doc = full_name.as_deref().or(name.as_deref()).map(str::to_owned);
                s.list(key, |s, i| element(s, Some(key), i, doc.as_deref()))
            }
            "name" | "fullName" => {
                let raw = s.raw()?;
                let value: Option<String> = decode(&raw, origin, &key)?;
                *(if key == "name" { &mut name } else { &mut full_name }) = value;
                Ok(())
            }
            // Kept while the document may still turn out to be a single build.
            _ if list.is_none() => {
                rest.push(key, &s.raw()?);
                Ok(())
            }
            _ => s.skip(),
        }
    })?;
    s.end()?;
    if list.is_none() {
        if !rest.has("number") {
            return Err(ImportError::new(origin, "no `allBuilds` or `builds` list (tree= must select one)"));
        }
        let raw = rest.raw();
        let build: Build<'_> = decode(&raw, origin, &"")?;
        each(At { list: None, index: 0, raw: raw.bytes }, build, None)?;
    }
    Ok(full_name.or(name))
}

/// One build, as `tree=allBuilds[...]` selects it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Build<'a> {
    pub number: i64,
    #[serde(default, borrow)]
    result: Option<Cow<'a, str>>,
    #[serde(default)]
    timestamp: Option<EpochMillis>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    pub building: Option<bool>,
    #[serde(default)]
    built_on: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default, borrow)]
    full_display_name: Option<Cow<'a, str>>,
    /// Plugin records (`{}` for those the tree did not select), read by the fields they have.
    #[serde(default)]
    actions: Option<Vec<AnyAction>>,
}

impl Build<'_> {
    /// The job the build itself names: from its URL (`/job/a/job/b/42/` → `a/b`), else its
    /// display name (`a » b #42`).
    fn job_name(&self) -> Option<Cow<'static, str>> {
        self.url
            .as_deref()
            .and_then(job_from_url)
            .or_else(|| self.full_display_name.as_deref().and_then(job_from_display_name))
            .map(Cow::Owned)
    }
}

/// What Buildscope reads from an `actions[]` entry; which plugin wrote it does not matter
/// (the `_class` is absent when `tree=` does not select it). A field of another shape is
/// ignored, not an error.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Action {
    /// Build parameters (`ParametersAction`).
    #[serde(default)]
    parameters: Lenient<Vec<Parameter>>,
    /// Why the build ran (`CauseAction`).
    #[serde(default)]
    causes: Lenient<Vec<Cause>>,
    /// The git plugin's `BuildData`.
    #[serde(default)]
    last_built_revision: Lenient<Revision>,
    /// The metrics plugin's `TimeInQueueAction`.
    #[serde(default)]
    queuing_duration_millis: Lenient<i64>,
}

#[derive(Deserialize)]
struct Parameter {
    #[serde(default)]
    name: Lenient<String>,
    #[serde(default)]
    value: ScalarText,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cause {
    #[serde(default)]
    short_description: Lenient<String>,
}

#[derive(Deserialize)]
struct Revision {
    #[serde(default, rename = "SHA1")]
    sha1: Lenient<String>,
    #[serde(default)]
    branch: Lenient<Vec<BranchName>>,
}

#[derive(Deserialize)]
struct BranchName {
    #[serde(default)]
    name: Lenient<String>,
}

/// An `actions[]` element: an [`Action`] if it is an object, else nothing (`null`).
struct AnyAction(Option<Action>);

impl<'de> Deserialize<'de> for AnyAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AnyAction;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an action object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AnyAction, A::Error> {
                Action::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|a| AnyAction(Some(a)))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<AnyAction, E> {
                Ok(AnyAction(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<AnyAction, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(AnyAction(None))
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<AnyAction, E> {
                Ok(AnyAction(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<AnyAction, E> {
                Ok(AnyAction(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<AnyAction, E> {
                Ok(AnyAction(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<AnyAction, E> {
                Ok(AnyAction(None))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<AnyAction, E> {
                Ok(AnyAction(None))
            }
        }
        d.deserialize_any(V)
    }
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

fn to_job(source: &str, job_name: &str, b: Build<'_>) -> Result<Job, String> {
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
    for action in b.actions.into_iter().flatten().filter_map(|a| a.0) {
        read_action(action, &mut job);
    }
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

/// Picks what Buildscope uses out of one `actions[]` entry: build parameters, the first
/// cause, the git plugin's built revision, and the metrics plugin's time in queue.
fn read_action(action: Action, job: &mut Job) {
    for p in action.parameters.0.into_iter().flatten() {
        if let (Some(name), Some(value)) = (p.name.0, p.value.0) {
            insert_tag(&mut job.tags, &name, value);
        }
    }
    if let Some(cause) =
        action.causes.0.and_then(|c| c.into_iter().next()).and_then(|c| c.short_description.0)
    {
        insert_tag(&mut job.tags, "cause", cause);
    }
    if let Some(rev) = action.last_built_revision.0.filter(|_| job.revision.is_none()) {
        job.revision = rev.sha1.0;
        job.branch = rev
            .branch
            .0
            .and_then(|b| b.into_iter().next())
            .and_then(|b| b.name.0)
            .map(|b| b.trim_start_matches("refs/remotes/").trim_start_matches("origin/").to_owned());
    }
    if let (Some(queued), Some(start)) = (action.queuing_duration_millis.0, job.started_at)
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
    fn document_shapes() {
        // The job's name after its builds: builds that name no job wait for it.
        check(
            br#"{"builds":[{"number":2,"result":"SUCCESS","timestamp":1700000000000,"duration":1000},
                           {"number":1,"result":"SUCCESS","timestamp":1700000000000,"duration":1000,"url":"https://ci/job/u/1/"}],
                "fullName":"f/x","name":"x"}"#,
            "
            u#1 u success w=- q=- s=1700000000 f=1700000001
            f/x#2 f/x success w=- q=- s=1700000000 f=1700000001
            ",
        );
        // A null list is no list; the first list is the one read.
        check(
            br#"{"name":"x","allBuilds":null,"builds":[{"number":4,"building":true,"timestamp":1700000000000}],"allBuilds":[{"number":5}]}"#,
            "x#4 x running w=- q=- s=1700000000 f=-",
        );
        check_err(r#"{"name":"x","builds":null}"#, "input.json", "no `allBuilds`");
        // One build's own api/json, whatever the order of its members.
        check(
            br#"{"actions":[{"parameters":[{"name":"N","value":3},{"name":"F","value":{"file":1}}]}, null, "odd",
                 {"causes":"not a list","lastBuiltRevision":{"SHA1":"abc","branch":[{"name":"origin/dev"}]}}],
                 "result":"FAILURE","number":9,"timestamp":1700000000000,"duration":2000,"url":"https://ci/job/one/9/"}"#,
            "one#9 one failure w=- q=- s=1700000000 f=1700000002",
        );
        let one = run(parse, br#"{"actions":[{"parameters":[{"name":"N","value":3}]},{"lastBuiltRevision":{"SHA1":"abc","branch":[{"name":"origin/dev"}]}}],"result":"SUCCESS","number":9,"timestamp":1700000000000,"url":"https://ci/job/one/9/"}"#, None).unwrap();
        let j = &one.jobs[0];
        assert_eq!(
            (j.tags["N"].as_str(), j.revision.as_deref(), j.branch.as_deref()),
            ("3", Some("abc"), Some("dev"))
        );
        // Members nobody reads are still checked.
        check_err(
            r#"{"name":"x","allBuilds":[],"url":tru}"#,
            "input.json",
            "`tru` is not a JSON value at line 1 column 34",
        );
        check_err(r#"{"name":5,"allBuilds":[]}"#, "input.json: name", "expected a string");
        check_err(
            r#"{"name":"x","allBuilds":[]} []"#,
            "input.json",
            "trailing characters at line 1 column 29",
        );
    }

    #[test]
    fn big_lists_come_in_batches() {
        let builds: Vec<String> = (1..=25_000)
            .map(|n| format!(r#"{{"number":{n},"result":"SUCCESS","timestamp":1700000000000,"duration":1}}"#))
            .collect();
        let doc = format!(r#"{{"fullName":"big","allBuilds":[{}]}}"#, builds.join(","));
        let opts = Options { origin: "big.json".into(), ..Options::default() };
        let mut sizes = Vec::new();
        parse(&mut doc.as_bytes(), &opts, &mut |b| {
            sizes.push(b.jobs.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, [10_000, 10_000, 5_000]);
    }

    #[test]
    fn random_damage_never_panics() {
        no_panics(parse, &[&fixture("jenkins/allBuilds.json")]);
    }
}
