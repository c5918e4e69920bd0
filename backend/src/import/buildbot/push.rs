//! The HttpStatusPush reporter's posts: the build dict, sent when a build starts and again
//! when it finishes.

use super::{RestBuild, RestPages, jobs_from_pages, source_for_url};
use crate::import::json::decode_slice;
use crate::import::{ImportBatch, ImportError, Options};

/// Parses one HttpStatusPush POST body (the build dict). A start-of-build post yields a
/// `running` job, the finish post the same `(source, id)` with its result.
pub fn parse_push(body: &[u8]) -> Result<ImportBatch, ImportError> {
    parse_push_with(body, &Options { origin: "push".into(), ..Options::default() })
}

/// [`parse_push`] with an origin for error messages and an optional source override.
pub fn parse_push_with(body: &[u8], opts: &Options) -> Result<ImportBatch, ImportError> {
    let build: RestBuild = decode_slice(body, &opts.origin)?;
    Ok(push_batch(build, opts))
}

/// The job of one pushed build, filed under its master's source unless `opts` names one.
pub(super) fn push_batch(build: RestBuild, opts: &Options) -> ImportBatch {
    let source = opts.source.clone().unwrap_or_else(|| match &build.url {
        Some(url) => source_for_url(url),
        None => "buildbot".to_owned(),
    });
    let buildid = build.buildid;
    let pages = RestPages { builds: vec![build], ..RestPages::default() };
    let mut batch = jobs_from_pages(&pages, &source, None);
    for s in &mut batch.skipped {
        s.at = format!("buildid {buildid}");
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::test_support::{assert_lines, fixture, run, summarize};
    use super::*;

    #[test]
    fn push_start_then_finish_share_a_key() {
        let start = parse_push(&fixture("buildbot/push-start.json")).unwrap();
        assert_lines(&summarize(&start), "106 linux-x86_64 running w=- q=1700001190 s=1700001200 f=-");
        let finish = parse_push(&fixture("buildbot/push-finish.json")).unwrap();
        assert_lines(
            &summarize(&finish),
            "106 linux-x86_64 failure w=linux-worker-1 q=1700001190 s=1700001200 f=1700001900 [git:success test:failure]",
        );
        let (s, f) = (&start.jobs[0], &finish.jobs[0]);
        assert_eq!((&s.source, &s.id), (&f.source, &f.id));
        assert_eq!(s.source, "buildbot:buildbot.example.org:8010");
        assert_eq!(s.url.as_deref(), Some("http://buildbot.example.org:8010/#/builders/1/builds/19"));
        // Branch and revision come from the buildset's source stamp when there are no properties.
        assert_eq!(s.branch.as_deref(), Some("main"));
        assert_eq!(s.revision.as_deref(), Some("9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"));
        // The file importer recognises a push payload too, with its steps.
        for name in ["push-start.json", "push-finish.json"] {
            let body = fixture(&format!("buildbot/{name}"));
            let from_file = run(parse, &body, None).unwrap();
            assert_eq!(from_file.jobs, parse_push(&body).unwrap().jobs, "{name}");
        }
    }

    #[test]
    fn bad_posts_are_named() {
        let e = parse_push(b"{\"buildid\": 3, \"number\": 1, \"builderid\": true}").unwrap_err();
        assert_eq!(e.to_string(), "push: builderid: invalid type: boolean `true`, expected i64");
        let e = parse_push(b"").unwrap_err();
        assert_eq!(e.to_string(), "push: EOF while parsing a value at line 1 column 1");
    }
}
