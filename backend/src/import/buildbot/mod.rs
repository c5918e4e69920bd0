//! Buildbot (0.9 and later): REST Data API v2 responses, pulled with [`fetch`] or saved to a
//! file ([`parse`]), and the HttpStatusPush reporter's build dict ([`parse_push`]).
//!
//! A job is one Buildbot *build*: `id` is the master's `buildid` (unique per master
//! database), `source` is `buildbot:<host[:port]>` of the master when known (the pull's base
//! URL, the push's build `url`), so the start post, the finish post and a later pull all land
//! on the same `(source, id)`. Without a URL (a saved REST response) the source is
//! `buildbot`; pass [`Options::source`](super::Options::source) to line it up with pulled data.
//!
//! This module holds the REST resources and turns them into jobs; `rest` reads saved
//! responses, `push` the reporter's posts, `fetch` pulls from a master.

mod fetch;
mod push;
mod rest;
#[cfg(test)]
pub(crate) mod test_support;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use common::{Job, JobResult, Step, Timestamp};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use self::fetch::{FetchOptions, fetch};
pub use self::push::{parse_push, parse_push_with};
pub use self::rest::parse;
use super::json::ScalarText;
use super::{ImportBatch, Skipped, insert_tag};

/// Buildbot's result codes (`buildbot/process/results.py`): 0 success … 6 cancelled. Also
/// used by Mozilla BuildAPI dumps, which carry the same codes.
pub(crate) fn result_from_code(code: i64) -> Option<JobResult> {
    Some(match code {
        0 => JobResult::Success,
        1 => JobResult::Warnings,
        2 => JobResult::Failure,
        3 => JobResult::Skipped,
        4 => JobResult::Exception,
        5 => JobResult::Retry,
        6 => JobResult::Cancelled,
        _ => return None,
    })
}

/// REST API collections, each under its plural name as in the API's envelope
/// (`{"builds": [...], "meta": {"total": N}}`). Several pages, or responses for different
/// resources, merge into one value.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RestPages {
    #[serde(default)]
    pub builders: Vec<RestBuilder>,
    #[serde(default)]
    pub workers: Vec<RestWorker>,
    #[serde(default)]
    pub builds: Vec<RestBuild>,
    #[serde(default)]
    pub buildrequests: Vec<RestBuildRequest>,
    #[serde(default)]
    pub steps: Vec<RestStep>,
}

impl RestPages {
    fn len(&self) -> usize {
        self.builders.len()
            + self.workers.len()
            + self.builds.len()
            + self.buildrequests.len()
            + self.steps.len()
    }

    fn extend(&mut self, other: RestPages) {
        self.builders.extend(other.builders);
        self.workers.extend(other.workers);
        self.builds.extend(other.builds);
        self.buildrequests.extend(other.buildrequests);
        self.steps.extend(other.steps);
    }
}

/// `builder` resource (`spec/types/builder.raml`).
#[derive(Debug, Clone, Deserialize)]
pub struct RestBuilder {
    pub builderid: i64,
    pub name: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `worker` resource (`spec/types/worker.raml`).
#[derive(Debug, Clone, Deserialize)]
pub struct RestWorker {
    pub workerid: i64,
    pub name: String,
}

/// `buildrequest` resource; only what the job needs (the queue start).
#[derive(Debug, Clone, Deserialize)]
pub struct RestBuildRequest {
    pub buildrequestid: i64,
    #[serde(default)]
    pub submitted_at: Option<Timestamp>,
}

/// `step` resource (`spec/types/step.raml`).
#[derive(Debug, Clone, Deserialize)]
pub struct RestStep {
    #[serde(default)]
    pub buildid: Option<i64>,
    #[serde(default)]
    pub number: i64,
    pub name: String,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub complete_at: Option<Timestamp>,
    #[serde(default)]
    pub results: Option<i64>,
}

/// `build` resource (`spec/types/build.raml`), plus what HttpStatusPush adds to it.
#[derive(Debug, Clone, Deserialize)]
pub struct RestBuild {
    pub buildid: i64,
    pub number: i64,
    pub builderid: i64,
    #[serde(default)]
    pub buildrequestid: Option<i64>,
    #[serde(default)]
    pub workerid: Option<i64>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub complete: Option<bool>,
    #[serde(default)]
    pub complete_at: Option<Timestamp>,
    #[serde(default)]
    pub results: Option<i64>,
    /// `{name: [value, source]}`; only present when requested (`property=*`).
    #[serde(default)]
    pub properties: Option<BTreeMap<String, Property>>,
    /// HttpStatusPush only: the build's page.
    #[serde(default)]
    pub url: Option<String>,
    /// HttpStatusPush only.
    #[serde(default)]
    pub builder: Option<RestBuilder>,
    /// HttpStatusPush only.
    #[serde(default)]
    pub buildrequest: Option<RestBuildRequest>,
    /// HttpStatusPush only.
    #[serde(default)]
    pub buildset: Option<PushBuildset>,
    /// HttpStatusPush only, when the reporter was configured to send them.
    #[serde(default)]
    pub steps: Option<Vec<RestStep>>,
}

/// The `buildset` a push payload carries; its source stamps give branch and revision when
/// the build has no such properties.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PushBuildset {
    #[serde(default)]
    pub sourcestamps: Vec<SourceStamp>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SourceStamp {
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
}

/// Turns fetched REST pages into jobs. `source` labels every job; `base_url` (the master's
/// web root) builds each job's link.
pub fn jobs_from_pages(pages: &RestPages, source: &str, base_url: Option<&str>) -> ImportBatch {
    let builders: HashMap<i64, &RestBuilder> = pages.builders.iter().map(|b| (b.builderid, b)).collect();
    let workers: HashMap<i64, &str> = pages.workers.iter().map(|w| (w.workerid, w.name.as_str())).collect();
    let requests: HashMap<i64, Option<Timestamp>> =
        pages.buildrequests.iter().map(|r| (r.buildrequestid, r.submitted_at)).collect();
    let mut steps: HashMap<i64, Vec<&RestStep>> = HashMap::new();
    for step in &pages.steps {
        if let Some(buildid) = step.buildid {
            steps.entry(buildid).or_default().push(step);
        }
    }
    let mut batch = ImportBatch::default();
    for (i, build) in pages.builds.iter().enumerate() {
        let at = format!("builds[{i}] (buildid {})", build.buildid);
        let Some(builder) = builders.get(&build.builderid).copied().or(build.builder.as_ref()) else {
            batch.skipped.push(Skipped { at, reason: format!("builder {} is unknown", build.builderid) });
            continue;
        };
        let requested = build
            .buildrequestid
            .and_then(|id| requests.get(&id).copied().flatten())
            .or_else(|| build.buildrequest.as_ref().and_then(|r| r.submitted_at));
        let worker = build.workerid.and_then(|id| workers.get(&id).copied());
        let url = build.url.clone().or_else(|| {
            base_url.map(|base| {
                format!(
                    "{}/#/builders/{}/builds/{}",
                    base.trim_end_matches('/'),
                    build.builderid,
                    build.number
                )
            })
        });
        let build_steps: Vec<&RestStep> = match &build.steps {
            Some(inline) => inline.iter().collect(),
            None => steps.remove(&build.buildid).unwrap_or_default(),
        };
        let parts = Parts { source, builder, worker, requested, url, steps: build_steps };
        match to_job(build, parts) {
            Ok(job) => batch.jobs.push(job),
            Err(reason) => batch.skipped.push(Skipped { at, reason }),
        }
    }
    batch
}

/// What a build's job needs besides the build itself, looked up elsewhere.
struct Parts<'a> {
    source: &'a str,
    builder: &'a RestBuilder,
    worker: Option<&'a str>,
    requested: Option<Timestamp>,
    url: Option<String>,
    steps: Vec<&'a RestStep>,
}

fn to_job(build: &RestBuild, parts: Parts<'_>) -> Result<Job, String> {
    let result = match build.results {
        Some(code) => result_from_code(code).ok_or_else(|| format!("unknown result code {code}"))?,
        None if build.complete_at.is_none() && build.complete != Some(true) => JobResult::Running,
        None => return Err("complete but has no result".into()),
    };
    let props = build.properties.as_ref();
    let prop =
        |name: &str| props.and_then(|p| p.get(name)).and_then(|p| p.0.clone()).filter(|v| !v.is_empty());
    let stamp = build.buildset.as_ref().and_then(|b| b.sourcestamps.first());
    let mut tags = BTreeMap::new();
    if let Some(props) = props {
        for (name, value) in props {
            if let Some(text) = &value.0 {
                insert_tag(&mut tags, name, text.as_str());
            }
        }
    }
    if let Some(builder_tags) = parts.builder.tags.as_ref().filter(|t| !t.is_empty()) {
        insert_tag(&mut tags, "builder_tags", builder_tags.join(","));
    }
    let mut steps: Vec<&RestStep> = parts.steps;
    steps.sort_by_key(|s| s.number);
    let started_at = build.started_at;
    let job = Job {
        source: parts.source.to_owned(),
        id: build.buildid.to_string(),
        builder: parts.builder.name.clone(),
        project: prop("project").or_else(|| stamp.and_then(|s| s.project.clone()).filter(|p| !p.is_empty())),
        branch: prop("branch").or_else(|| stamp.and_then(|s| s.branch.clone())),
        revision: prop("got_revision")
            .or_else(|| prop("revision"))
            .or_else(|| stamp.and_then(|s| s.revision.clone())),
        worker: parts.worker.map(str::to_owned).or_else(|| prop("workername")).or_else(|| prop("slavename")),
        // Masters and the database clock can disagree by a little; a request "after" its
        // build's start says nothing about queueing, so it is dropped rather than the build.
        requested_at: parts.requested.filter(|r| started_at.is_none_or(|s| *r <= s)),
        started_at,
        finished_at: if result.is_finished() { build.complete_at } else { None },
        result,
        url: parts.url,
        tags,
        metrics: BTreeMap::new(),
        steps: steps
            .into_iter()
            .map(|s| Step {
                name: s.name.clone(),
                started_at: s.started_at,
                finished_at: s.complete_at,
                result: match s.results {
                    Some(code) => result_from_code(code),
                    None if s.complete_at.is_none() && s.started_at.is_some() => Some(JobResult::Running),
                    None => None,
                },
            })
            .collect(),
    };
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

/// A build property's value as tag text. Properties are `[value, source]` pairs; a scalar
/// value becomes text, lists and objects are not dimensions and give `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Property(pub Option<String>);

impl<'de> Deserialize<'de> for Property {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Property;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [value, source] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Property, A::Error> {
                let value = seq.next_element::<ScalarText>()?;
                let source = seq.next_element::<IgnoredAny>()?;
                let mut more = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    more = true;
                }
                Ok(Property(match (value, source, more) {
                    (Some(value), Some(_), false) => value.0,
                    _ => None,
                }))
            }
            // Anything but a pair: a bare scalar is its own value.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Property, E> {
                Ok(Property(Some(v.to_owned())))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Property, E> {
                Ok(Property(Some(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Property, E> {
                Ok(Property(Some(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Property, E> {
                Ok(Property(serde_json::Number::from_f64(v).map(|n| n.to_string())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Property, E> {
                Ok(Property(Some(v.to_string())))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Property, E> {
                Ok(Property(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Property, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Property(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `buildbot:<host[:port]>` for a master URL, or `buildbot` when it has no host.
pub fn source_for_url(url: &str) -> String {
    match reqwest::Url::parse(url).ok().and_then(|u| {
        let host = u.host_str()?.to_owned();
        Some(match u.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }) {
        Some(host) => format!("buildbot:{host}"),
        None => "buildbot".to_owned(),
    }
}
