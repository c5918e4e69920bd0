//! Saved REST API responses: one envelope (`{"builds": [...], "meta": {...}}`), several
//! merged into one object, a JSON array of envelopes, or one HttpStatusPush payload.
//!
//! The collections are read record by record into typed structs (no `Value` tree), but all
//! of them are kept until the end: a build's builder, worker, request and steps may come in
//! any order, in later envelopes.

use std::io::BufRead;

use serde::de::DeserializeOwned;

use super::{RestBuild, RestPages, jobs_from_pages, push};
use crate::import::json::{Members, Stream, decode, locate};
use crate::import::{ImportBatch, ImportError, Options};

/// Parses a saved REST response, several merged into one object, a JSON array of them, or
/// one HttpStatusPush payload. Calls `sink` once.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut s = Stream::new(input, &opts.origin);
    let mut pages = RestPages::default();
    let batch = match s.peek()? {
        Some(b'[') => {
            s.array(|s, i| read_envelope(s, &format!("[{i}]"), &mut pages, None).map(drop))?;
            None
        }
        Some(b'{') => {
            let mut rest = Members::default();
            let steps = read_envelope(&mut s, "", &mut pages, Some(&mut rest))?;
            // A push payload is one build object; its steps were read as a collection.
            match rest.has("buildid") {
                true => {
                    let mut build: RestBuild = decode(&rest.raw(), &opts.origin, &"")?;
                    if steps {
                        build.steps = Some(std::mem::take(&mut pages.steps));
                    }
                    Some(push::push_batch(build, opts))
                }
                false => None,
            }
        }
        _ => return Err(s.error("expected a Buildbot REST response (an object or a list of them)")),
    };
    s.end()?;
    sink(batch.unwrap_or_else(|| jobs_from_pages(&pages, opts.source.as_deref().unwrap_or("buildbot"), None)))
}

/// Reads one envelope's collections into `pages`, element by element. Other members are
/// kept in `rest` when given, else checked and dropped. Returns whether it had `steps`.
fn read_envelope<R: BufRead>(
    s: &mut Stream<'_, R>,
    at: &str,
    pages: &mut RestPages,
    mut rest: Option<&mut Members>,
) -> Result<bool, ImportError> {
    let origin = s.origin();
    let mut steps = false;
    if s.peek()? != Some(b'{') {
        let mut e = s.error("expected a REST response object");
        e.at = locate(origin, at);
        return Err(e);
    }
    s.object(|s, key| match key {
        "builders" => collection(s, at, key, &mut pages.builders),
        "workers" => collection(s, at, key, &mut pages.workers),
        "builds" => collection(s, at, key, &mut pages.builds),
        "buildrequests" => collection(s, at, key, &mut pages.buildrequests),
        "steps" => {
            steps = true;
            collection(s, at, key, &mut pages.steps)
        }
        _ => match rest.as_deref_mut() {
            Some(rest) => {
                rest.push(key, &s.raw()?);
                Ok(())
            }
            None => s.skip(),
        },
    })?;
    Ok(steps)
}

/// Appends the records of collection `key` (in the envelope at `at`) to `into`.
fn collection<R: BufRead, T: DeserializeOwned>(
    s: &mut Stream<'_, R>,
    at: &str,
    key: &str,
    into: &mut Vec<T>,
) -> Result<(), ImportError> {
    let origin = s.origin();
    let dot = if at.is_empty() { "" } else { "." };
    s.list(&format!("{at}{dot}{key}"), |s, i| {
        into.push(decode(&s.raw()?, origin, &format_args!("{at}{dot}{key}[{i}]"))?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{ALL_BUILDS, REST, assert_lines, fixture, no_panics, run, summarize};
    use super::*;

    fn rest_pages_file() -> Vec<u8> {
        let pages: Vec<Value> = REST
            .iter()
            .map(|n| serde_json::from_slice(&fixture(&format!("buildbot/rest/{n}.json"))).unwrap())
            .collect();
        serde_json::to_vec(&pages).unwrap()
    }

    fn check(input: &[u8], expected: &str) {
        assert_lines(&summarize(&run(parse, input, None).unwrap()), expected);
    }

    fn check_err(input: &str, at: &str, message: &str) {
        let e = run(parse, input.as_bytes(), None).unwrap_err();
        assert!(e.at.contains(at) && e.message.contains(message), "{e}");
    }

    #[test]
    fn saved_rest_pages() {
        check(&rest_pages_file(), ALL_BUILDS);
        let batch = run(parse, &rest_pages_file(), None).unwrap();
        let j = &batch.jobs[0];
        assert_eq!(j.source, "buildbot");
        assert_eq!(j.branch.as_deref(), Some("main"));
        assert_eq!(j.revision.as_deref(), Some("4f3c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"));
        assert_eq!(j.project.as_deref(), Some("buildscope"));
        assert_eq!(j.tags["buildnumber"], "17");
        assert_eq!(j.tags["builder_tags"], "linux,release");
        assert!(!j.tags.contains_key("owners"), "list-valued properties are not tags");
        // A 5 kB property is dropped, not the job.
        assert!(!batch.jobs[1].tags.contains_key("huge_comment"));
        let again = run(parse, &rest_pages_file(), Some("buildbot-main")).unwrap();
        assert!(again.jobs.iter().all(|j| j.source == "buildbot-main"));
        // The same collections merged into one object give the same jobs.
        let mut merged = serde_json::Map::new();
        for page in serde_json::from_slice::<Vec<Value>>(&rest_pages_file()).unwrap() {
            merged.extend(page.as_object().unwrap().clone());
        }
        let one = run(parse, &serde_json::to_vec(&merged).unwrap(), None).unwrap();
        assert_eq!(one.jobs, batch.jobs);
    }

    #[test]
    fn bad_input_is_named() {
        check_err(r#"{"builds":[{"buildid":1,"number":"#, "input.json", "EOF while parsing");
        check_err(
            r#"{"builds":[{"buildid":"x","number":1,"builderid":1}]}"#,
            "input.json: builds[0].buildid",
            "expected i64",
        );
        check_err(
            r#"{"builds":[{"buildid":1,"number":1,"builderid":1,"started_at":1700000100000}]}"#,
            "input.json: builds[0].started_at",
            "looks like epoch milliseconds",
        );
        check_err(
            r#"[{"builders":[{"builderid":1}]}]"#,
            "input.json: [0].builders[0]",
            "missing field `name`",
        );
        check_err(r#"{"builds":{}}"#, "input.json: builds", "expected a sequence");
        check_err(
            r#"[{"builds":[]}, 3]"#,
            "input.json: [1]",
            "expected a REST response object at line 1 column 17",
        );
        check_err(r#"{"builds":[]} {}"#, "input.json", "trailing characters at line 1 column 15");
        check_err(r#"{"buildid":1,"number":true}"#, "input.json: number", "expected i64");
    }

    #[test]
    fn odd_records_are_skipped_with_a_reason() {
        let long = "b".repeat(2000);
        let input = json!({
            "builders": [{"builderid": 1, "name": long}, {"builderid": 2, "name": "ok"}],
            "builds": [
                {"buildid": 1, "number": 1, "builderid": 1, "started_at": 1700000000, "complete_at": 1700000010, "results": 0},
                {"buildid": 2, "number": 2, "builderid": 2, "started_at": 1700000000, "complete": true, "results": null},
                {"buildid": 3, "number": 3, "builderid": 2, "started_at": 1700000100, "complete_at": 1700000010, "results": 0},
                {"buildid": 4, "number": 4, "builderid": 2, "complete": false, "results": null},
                {"buildid": 5, "number": 5, "builderid": 2, "started_at": 1700000000, "results": -1},
            ]
        });
        check(
            input.to_string().as_bytes(),
            "
            skip builds[0] (buildid 1): builder: longer than 1024 bytes
            skip builds[1] (buildid 2): complete but has no result
            skip builds[2] (buildid 3): finished_at: 2023-11-14T22:13:30Z is before started_at 2023-11-14T22:15:00Z
            skip builds[3] (buildid 4): started_at: a job needs started_at or requested_at to place it in time
            skip builds[4] (buildid 5): unknown result code -1
            ",
        );
    }

    #[test]
    fn random_damage_never_panics() {
        no_panics(parse, &[&rest_pages_file(), &fixture("buildbot/push-finish.json")]);
    }
}
