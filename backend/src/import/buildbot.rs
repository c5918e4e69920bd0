//! Buildbot (0.9 and later): REST Data API v2 responses, pulled with [`fetch`] or saved to a
//! file, and the HttpStatusPush reporter's build dict ([`parse_push`]).
//!
//! A job is one Buildbot *build*: `id` is the master's `buildid` (unique per master
//! database), `source` is `buildbot:<host[:port]>` of the master when known (the pull's base
//! URL, the push's build `url`), so the start post, the finish post and a later pull all land
//! on the same `(source, id)`. Without a URL (a saved REST response) the source is
//! `buildbot`; pass [`Options::source`] to line it up with pulled data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::{Job, JobResult, Step, Timestamp};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ImportBatch, ImportError, Options, Skipped, insert_tag, scalar_text};

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
    pub properties: Option<BTreeMap<String, Value>>,
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
    let prop = |name: &str| props.and_then(|p| p.get(name)).and_then(property_text).filter(|v| !v.is_empty());
    let stamp = build.buildset.as_ref().and_then(|b| b.sourcestamps.first());
    let mut tags = BTreeMap::new();
    if let Some(props) = props {
        for (name, value) in props {
            if let Some(text) = property_text(value) {
                insert_tag(&mut tags, name, text);
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

/// A property's value as tag text: properties are `[value, source]` pairs; scalars become
/// text, lists and objects are not dimensions and are left out.
fn property_text(value: &Value) -> Option<String> {
    let value = match value {
        Value::Array(pair) if pair.len() == 2 => &pair[0],
        other => other,
    };
    scalar_text(value)
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

/// Parses a saved REST response, several merged into one object, a JSON array of them, or
/// one HttpStatusPush payload. Calls `sink` once.
pub fn parse(
    input: &mut dyn std::io::BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let value = read_json(input, opts)?;
    let batch = match value {
        Value::Object(ref map) if map.contains_key("buildid") => push_batch(value, opts)?,
        Value::Array(items) => {
            let mut pages = RestPages::default();
            for (i, item) in items.into_iter().enumerate() {
                pages.extend(typed(item, &format!("{}: [{i}]", opts.origin))?);
            }
            jobs_from_pages(&pages, opts.source.as_deref().unwrap_or("buildbot"), None)
        }
        value => {
            let pages: RestPages = typed(value, &opts.origin)?;
            jobs_from_pages(&pages, opts.source.as_deref().unwrap_or("buildbot"), None)
        }
    };
    sink(batch)
}

/// Parses one HttpStatusPush POST body (the build dict). A start-of-build post yields a
/// `running` job, the finish post the same `(source, id)` with its result.
pub fn parse_push(body: &[u8]) -> Result<ImportBatch, ImportError> {
    parse_push_with(body, &Options { origin: "push".into(), ..Options::default() })
}

/// [`parse_push`] with an origin for error messages and an optional source override.
pub fn parse_push_with(body: &[u8], opts: &Options) -> Result<ImportBatch, ImportError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ImportError::new(&opts.origin, e.to_string()))?;
    push_batch(value, opts)
}

fn push_batch(value: Value, opts: &Options) -> Result<ImportBatch, ImportError> {
    let build: RestBuild = typed(value, &opts.origin)?;
    let source = opts.source.clone().unwrap_or_else(|| match &build.url {
        Some(url) => source_for_url(url),
        None => "buildbot".to_owned(),
    });
    let pages = RestPages { builds: vec![build], ..RestPages::default() };
    let mut batch = jobs_from_pages(&pages, &source, None);
    for s in &mut batch.skipped {
        s.at = format!("buildid {}", pages.builds[0].buildid);
    }
    Ok(batch)
}

/// Reads a whole JSON document (the formats that are not streamed).
pub(crate) fn read_json(input: &mut dyn std::io::BufRead, opts: &Options) -> Result<Value, ImportError> {
    let mut body = Vec::new();
    input.read_to_end(&mut body).map_err(|e| ImportError::new(&opts.origin, format!("read failed: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| ImportError::new(&opts.origin, e.to_string()))
}

/// Deserializes a JSON value, naming the path of the first type error.
pub(crate) fn typed<T: DeserializeOwned>(value: Value, origin: &str) -> Result<T, ImportError> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(origin, e))
}

/// `origin: builds[3].started_at` + the serde message.
pub(crate) fn path_error<E: std::fmt::Display>(
    origin: &str,
    e: serde_path_to_error::Error<E>,
) -> ImportError {
    let at =
        if e.path().iter().next().is_none() { origin.to_owned() } else { format!("{origin}: {}", e.path()) };
    ImportError::new(at, e.inner().to_string())
}

/// Settings for [`fetch`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Overrides the `buildbot:<host>` source.
    pub source: Option<String>,
    /// `limit` per request.
    pub page_size: usize,
    /// Stop after this many finished builds; call again with the returned mark for more.
    pub max_builds: usize,
    /// Fetch each build's steps (one request per build).
    pub steps: bool,
    pub timeout: Duration,
    /// Refuse any single response larger than this.
    pub max_response_bytes: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            source: None,
            page_size: 200,
            max_builds: 20_000,
            steps: true,
            timeout: Duration::from_secs(60),
            max_response_bytes: 64 << 20,
        }
    }
}

/// Pulls from a Buildbot master's REST API: builders, workers, finished builds (with all
/// properties) completed at or after `since_complete_at`, the currently running builds,
/// their build requests (for queue time) and steps. Returns the jobs and the new high-water
/// mark (the latest `complete_at` seen), to pass back on the next run.
///
/// The filter is `complete_at__ge`, not `__gt`: a build finishing later within the mark's
/// second would otherwise be missed for good; the few boundary builds fetched again
/// re-import idempotently. Running builds come in as `running` every time and are replaced
/// when they finish.
pub async fn fetch(
    base_url: &str,
    since_complete_at: Option<i64>,
    opts: &FetchOptions,
) -> Result<(ImportBatch, Option<i64>), ImportError> {
    let client = reqwest::Client::builder()
        .timeout(opts.timeout)
        .build()
        .map_err(|e| ImportError::new(base_url, format!("HTTP client: {e}")))?;
    let api = Arc::new(Api {
        client,
        root: format!("{}/api/v2", base_url.trim_end_matches('/')),
        opts: opts.clone(),
    });
    let mut pages = RestPages::default();
    api.get_all("builders", usize::MAX, &mut pages).await?;
    api.get_all("workers", usize::MAX, &mut pages).await?;
    let finished = match since_complete_at {
        Some(since) => format!("builds?complete_at__ge={since}&order=complete_at&property=*"),
        None => "builds?complete__eq=true&order=complete_at&property=*".to_owned(),
    };
    api.get_all(&finished, opts.max_builds, &mut pages).await?;
    let high_water = pages
        .builds
        .iter()
        .filter_map(|b| b.complete_at)
        .map(|t| t.as_millis().div_euclid(1000))
        .max()
        .or(since_complete_at);
    api.get_all("builds?complete__eq=false&order=buildid&property=*", usize::MAX, &mut pages).await?;

    let mut request_ids: Vec<i64> = pages.builds.iter().filter_map(|b| b.buildrequestid).collect();
    request_ids.sort_unstable();
    request_ids.dedup();
    for chunk in request_ids.chunks(50) {
        let filter: Vec<String> = chunk.iter().map(|id| format!("buildrequestid__eq={id}")).collect();
        api.get_all(&format!("buildrequests?{}", filter.join("&")), usize::MAX, &mut pages).await?;
    }
    if opts.steps {
        let mut ids = pages.builds.iter().map(|b| b.buildid).collect::<Vec<_>>().into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < STEP_CONCURRENCY {
                let Some(id) = ids.next() else { break };
                let api = Arc::clone(&api);
                running.spawn(async move {
                    let mut steps = RestPages::default();
                    let result = api.get_all(&format!("builds/{id}/steps"), usize::MAX, &mut steps).await;
                    result.map(|()| (id, steps.steps))
                });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (id, mut steps) =
                done.map_err(|e| ImportError::new(base_url, format!("step fetch failed: {e}")))??;
            for step in &mut steps {
                step.buildid.get_or_insert(id);
            }
            pages.steps.extend(steps);
        }
    }
    let source = opts.source.clone().unwrap_or_else(|| source_for_url(base_url));
    Ok((jobs_from_pages(&pages, &source, Some(base_url)), high_water))
}

/// One master's API root and the client to reach it; shared by the concurrent step fetches.
struct Api {
    client: reqwest::Client,
    root: String,
    opts: FetchOptions,
}

/// Step lists fetched at once (one request per build).
const STEP_CONCURRENCY: usize = 8;

/// A REST envelope: the collections plus `meta.total`. (Not `#[serde(flatten)]`: that
/// would lose the paths in type errors.)
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    builders: Vec<RestBuilder>,
    #[serde(default)]
    workers: Vec<RestWorker>,
    #[serde(default)]
    builds: Vec<RestBuild>,
    #[serde(default)]
    buildrequests: Vec<RestBuildRequest>,
    #[serde(default)]
    steps: Vec<RestStep>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    total: Option<usize>,
}

impl Api {
    /// Pages through `path` with `limit`/`offset` until a short page, `meta.total` or `max`
    /// items, appending everything to `into`.
    async fn get_all(&self, path: &str, max: usize, into: &mut RestPages) -> Result<(), ImportError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let limit = self.opts.page_size.max(1);
        let mut offset = 0;
        while offset < max {
            let url = format!("{}/{path}{sep}limit={limit}&offset={offset}", self.root);
            let page: Envelope = self.get_json(&url).await?;
            let total = page.meta.and_then(|m| m.total);
            let page = RestPages {
                builders: page.builders,
                workers: page.workers,
                builds: page.builds,
                buildrequests: page.buildrequests,
                steps: page.steps,
            };
            let n = page.len();
            into.extend(page);
            offset += n;
            let total_reached = total.is_some_and(|t| offset >= t);
            if n < limit || total_reached {
                break;
            }
        }
        Ok(())
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, ImportError> {
        let fail = |message: String| ImportError::new(url, message);
        let mut resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(format!("request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(format!("reading the response: {e}")))? {
            if body.len() + chunk.len() > self.opts.max_response_bytes {
                return Err(fail(format!("response larger than {} bytes", self.opts.max_response_bytes)));
            }
            body.extend_from_slice(&chunk);
        }
        let de = &mut serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(de).map_err(|e| path_error(url, e))
    }
}

/// Helpers the importer tests share: a one-line-per-record summary to compare against, and a
/// no-panic loop over random and truncated inputs.
#[cfg(test)]
pub(crate) mod test_support {
    use std::fmt::Write as _;

    use common::Timestamp;

    use crate::import::{ImportBatch, ImportError, Options};

    fn secs(t: Option<Timestamp>) -> String {
        t.map_or("-".into(), |t| {
            let ms = t.as_millis();
            if ms % 1000 == 0 { (ms / 1000).to_string() } else { format!("{}", ms as f64 / 1000.0) }
        })
    }

    /// `id builder result w=worker q=requested s=started f=finished [steps]`, then
    /// `skip at: reason` lines; times in epoch seconds.
    pub fn summarize(batch: &ImportBatch) -> String {
        let mut out = String::new();
        for j in &batch.jobs {
            let steps: Vec<String> = j
                .steps
                .iter()
                .map(|s| format!("{}:{}", s.name, s.result.map_or("-", |r| r.as_str())))
                .collect();
            writeln!(
                out,
                "{} {} {} w={} q={} s={} f={}{}",
                j.id,
                j.builder,
                j.result,
                j.worker.as_deref().unwrap_or("-"),
                secs(j.requested_at),
                secs(j.started_at),
                secs(j.finished_at),
                if steps.is_empty() { String::new() } else { format!(" [{}]", steps.join(" ")) },
            )
            .unwrap();
            j.validate().unwrap();
        }
        for s in &batch.skipped {
            writeln!(out, "skip {}: {}", s.at, s.reason).unwrap();
        }
        out
    }

    /// Compares ignoring leading indentation, so expectations can be indented raw strings.
    pub fn assert_lines(got: &str, expected: &str) {
        let want: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let got_lines: Vec<&str> = got.lines().collect();
        assert_eq!(got_lines, want, "\ngot:\n{got}");
    }

    pub type Parser = fn(
        &mut dyn std::io::BufRead,
        &Options,
        &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
    ) -> Result<(), ImportError>;

    /// Runs a parser to the end, collecting every batch into one.
    pub fn run(parse: Parser, input: &[u8], source: Option<&str>) -> Result<ImportBatch, ImportError> {
        let opts =
            Options { origin: "input.json".into(), source: source.map(str::to_owned), ..Options::default() };
        let mut all = ImportBatch::default();
        parse(&mut &input[..], &opts, &mut |b| {
            all.jobs.extend(b.jobs);
            all.skipped.extend(b.skipped);
            Ok(())
        })?;
        Ok(all)
    }

    /// Feeds the parser every kind of damage to the seeds (truncations, flipped bytes,
    /// spliced pieces, plain noise) from a fixed-seed generator: it must return, not panic.
    pub fn no_panics(parse: Parser, seeds: &[&[u8]]) {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for seed in seeds {
            for cut in (0..seed.len()).step_by((seed.len() / 200).max(1)) {
                let _ = run(parse, &seed[..cut], None);
            }
            for _ in 0..300 {
                let mut bytes = seed.to_vec();
                for _ in 0..(next() % 8 + 1) {
                    let i = (next() as usize) % bytes.len().max(1);
                    match next() % 4 {
                        0 if !bytes.is_empty() => bytes[i] = next() as u8,
                        1 if !bytes.is_empty() => {
                            bytes.remove(i);
                        }
                        2 => {
                            const JSONISH: &[u8] = b"{}[]\",:0-9e.";
                            bytes.insert(i.min(bytes.len()), JSONISH[(next() as usize) % JSONISH.len()]);
                        }
                        _ => {
                            let j = (next() as usize) % seed.len().max(1);
                            let piece = &seed[j..(j + 40).min(seed.len())];
                            let at = i.min(bytes.len());
                            bytes.splice(at..at, piece.iter().copied());
                        }
                    }
                }
                let _ = run(parse, &bytes, None);
            }
        }
        for len in [0, 1, 2, 10, 100, 1000] {
            let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = run(parse, &noise, None);
        }
    }

    pub fn fixture(path: &str) -> Vec<u8> {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, RawQuery, State};
    use axum::routing::get;
    use serde_json::{Value, json};

    use super::test_support::{assert_lines, fixture, no_panics, run, summarize};
    use super::*;

    const REST: [&str; 5] = ["builders", "workers", "builds", "buildrequests", "steps"];

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

    const ALL_BUILDS: &str = "
        101 linux-x86_64 success w=linux-worker-1 q=1700000000 s=1700000100 f=1700000700 [git:success compile:success test:success]
        102 win64-debug failure w=win-worker-7 q=1700000150 s=1700000200 f=1700000900 [git:success compile:failure]
        103 linux-x86_64 warnings w=linux-worker-9 q=1700000260 s=1700000300 f=1700000900 [git:success compile:success test:warnings]
        105 win64-debug cancelled w=win-worker-7 q=1700000100 s=1700000950 f=1700001100 [git:cancelled]
        106 linux-x86_64 running w=linux-worker-1 q=1700001190 s=1700001200 f=- [git:success compile:running]
        skip builds[3] (buildid 104): unknown result code 9
        skip builds[6] (buildid 107): builder 77 is unknown
    ";

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
    }

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
        // The file importer recognises a push payload too.
        check(
            &fixture("buildbot/push-start.json"),
            "106 linux-x86_64 running w=- q=1700001190 s=1700001200 f=-",
        );
    }

    #[test]
    fn bad_input_is_named() {
        check_err(r#"{"builds":[{"buildid":1,"number":"#, "input.json", "EOF while parsing");
        check_err(
            r#"{"builds":[{"buildid":"x","number":1,"builderid":1}]}"#,
            "builds[0].buildid",
            "expected i64",
        );
        check_err(
            r#"{"builds":[{"buildid":1,"number":1,"builderid":1,"started_at":1700000100000}]}"#,
            "input.json: builds[0].started_at",
            "looks like epoch milliseconds",
        );
        check_err(r#"[{"builders":[{"builderid":1}]}]"#, "input.json: [0]", "missing field `name`");
        let e = parse_push(b"{\"buildid\": 3, \"number\": 1, \"builderid\": true}").unwrap_err();
        assert!(e.to_string().contains("builderid"), "{e}");
        assert!(parse_push(b"").is_err());
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

    /// A Buildbot master's REST API over the fixture collections, with the filters, ordering
    /// and paging `fetch` uses; records every request.
    #[derive(Clone)]
    struct FakeMaster {
        data: Arc<Mutex<Vec<(String, Vec<Value>)>>>,
        hits: Arc<Mutex<Vec<String>>>,
    }

    impl FakeMaster {
        async fn start() -> (FakeMaster, String) {
            let data = REST
                .iter()
                .map(|n| {
                    let v: Value =
                        serde_json::from_slice(&fixture(&format!("buildbot/rest/{n}.json"))).unwrap();
                    (n.to_string(), v[n].as_array().unwrap().clone())
                })
                .collect();
            let master = FakeMaster { data: Arc::new(Mutex::new(data)), hits: Arc::default() };
            let app = axum::Router::new()
                .route("/api/v2/{collection}", get(collection))
                .route("/api/v2/builds/{id}/steps", get(build_steps))
                .with_state(master.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (master, url)
        }

        fn set_build(&self, build: Value) {
            let mut data = self.data.lock().unwrap();
            let builds = &mut data.iter_mut().find(|(n, _)| n == "builds").unwrap().1;
            builds.retain(|b| b["buildid"] != build["buildid"]);
            builds.push(build);
        }

        fn take_hits(&self) -> Vec<String> {
            std::mem::take(&mut self.hits.lock().unwrap())
        }

        fn serve(
            &self,
            name: &str,
            query: Option<String>,
            keep: impl Fn(&Value) -> bool,
        ) -> axum::Json<Value> {
            let query = query.unwrap_or_default();
            self.hits.lock().unwrap().push(format!("{name}?{query}"));
            let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
            let data = self.data.lock().unwrap();
            let mut items: Vec<Value> = data.iter().find(|(n, _)| n == name).unwrap().1.clone();
            items
                .retain(|item| keep(item) && params.iter().all(|(k, v)| matches_filter(item, k, v, &params)));
            if let Some((_, field)) = params.iter().find(|(k, _)| *k == "order") {
                items.sort_by_key(|i| i[*field].as_i64());
            }
            if !params.iter().any(|(k, _)| *k == "property") {
                items.iter_mut().for_each(|i| drop(i.as_object_mut().unwrap().remove("properties")));
            }
            let num = |key: &str, default: usize| {
                params.iter().find(|(k, _)| *k == key).map_or(default, |(_, v)| v.parse().unwrap())
            };
            let total = items.len();
            let page: Vec<Value> =
                items.into_iter().skip(num("offset", 0)).take(num("limit", usize::MAX)).collect();
            axum::Json(json!({ name: page, "meta": {"total": total} }))
        }
    }

    /// Buildbot's `field__op=value` filters (repeated `__eq` is IN), for the ops `fetch` uses.
    fn matches_filter(item: &Value, key: &str, value: &str, all: &[(&str, &str)]) -> bool {
        if ["limit", "offset", "order", "property", "field"].contains(&key) {
            return true;
        }
        let (field, op) = key.split_once("__").unwrap_or((key, "eq"));
        let have = &item[field];
        let want: Value = serde_json::from_str(value).unwrap_or(Value::String(value.into()));
        match op {
            "eq" => all
                .iter()
                .any(|(k, v)| *k == key && serde_json::from_str::<Value>(v).ok().as_ref() == Some(have)),
            "ge" => have.as_i64().is_some_and(|h| h >= want.as_i64().unwrap()),
            "gt" => have.as_i64().is_some_and(|h| h > want.as_i64().unwrap()),
            other => panic!("filter op {other} not faked"),
        }
    }

    async fn collection(
        State(m): State<FakeMaster>,
        Path(name): Path<String>,
        RawQuery(q): RawQuery,
    ) -> axum::Json<Value> {
        m.serve(&name, q, |_| true)
    }

    async fn build_steps(
        State(m): State<FakeMaster>,
        Path(id): Path<i64>,
        RawQuery(q): RawQuery,
    ) -> axum::Json<Value> {
        let mut steps = m.serve("steps", q, |s| s["buildid"] == id);
        // The nested endpoint's steps carry their buildid anyway; drop it to prove `fetch`
        // does not depend on it.
        for s in steps.0["steps"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("buildid");
        }
        steps
    }

    #[tokio::test]
    async fn pulls_pages_then_only_what_is_new() {
        let (master, url) = FakeMaster::start().await;
        let opts = FetchOptions { page_size: 2, ..FetchOptions::default() };
        let (batch, mark) = fetch(&url, None, &opts).await.unwrap();
        // Finished builds in `complete_at` order, then the running one.
        assert_lines(&summarize(&batch), &ALL_BUILDS.replace("builds[6]", "builds[5]"));
        assert_eq!(mark, Some(1_700_001_150));
        assert!(batch.jobs.iter().all(|j| j.source == format!("buildbot:{}", &url[7..url.len() - 1])));
        assert!(batch.jobs[0].url.as_deref().unwrap().ends_with("/#/builders/1/builds/17"));
        let hits = master.take_hits();
        let finished: Vec<&String> = hits.iter().filter(|h| h.contains("complete__eq=true")).collect();
        assert_eq!(finished.len(), 3, "6 finished builds in pages of 2: {hits:#?}");
        assert!(finished.iter().all(|h| h.contains("property=*")));

        // Build 106 finishes, 108 is new; the re-run asks only for builds completed since.
        let builds: Value = serde_json::from_slice(&fixture("buildbot/rest/builds.json")).unwrap();
        let mut b106 = builds["builds"][5].clone();
        b106["complete"] = json!(true);
        b106["complete_at"] = json!(1_700_001_900);
        b106["results"] = json!(0);
        master.set_build(b106);
        let mut b108 = builds["builds"][0].clone();
        b108["buildid"] = json!(108);
        b108["number"] = json!(20);
        b108["buildrequestid"] = json!(507);
        b108["started_at"] = json!(1_700_002_600);
        b108["complete_at"] = json!(1_700_002_700);
        master.set_build(b108);
        let (batch, mark) = fetch(&url, mark, &opts).await.unwrap();
        assert_lines(
            &summarize(&batch),
            "
            106 linux-x86_64 success w=linux-worker-1 q=1700001190 s=1700001200 f=1700001900 [git:success compile:running]
            108 linux-x86_64 success w=linux-worker-1 q=1700002500 s=1700002600 f=1700002700
            skip builds[0] (buildid 107): builder 77 is unknown
            ",
        );
        assert_eq!(mark, Some(1_700_002_700));
        let hits = master.take_hits();
        assert!(hits.iter().any(|h| h.starts_with("builds?complete_at__ge=1700001150&")), "{hits:#?}");
        assert!(
            hits.iter().any(|h| h.contains("buildrequestid__eq=506&buildrequestid__eq=507")),
            "{hits:#?}"
        );

        // Nothing new: the mark stays.
        let (_, again) = fetch(&url, mark, &opts).await.unwrap();
        assert_eq!(again, mark);
    }

    #[tokio::test]
    async fn pull_errors_name_the_url() {
        let (_master, url) = FakeMaster::start().await;
        let e = fetch(&format!("{url}nope"), None, &FetchOptions::default()).await.unwrap_err();
        assert!(e.at.contains("/nope/api/v2/builders") && e.message.contains("404"), "{e}");
        let e = fetch("http://127.0.0.1:1", None, &FetchOptions::default()).await.unwrap_err();
        assert!(e.message.contains("request failed"), "{e}");
    }
}
