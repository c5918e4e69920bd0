//! Mozilla BuildAPI "buildjson" dumps: `builds-4hr.js`, the daily `builds-YYYY-MM-DD.js`
//! (gzipped or not), and the `builds-pending.js` / `builds-running.js` snapshots.
//!
//! Dumps are big (a day is hundreds of MB), so the parser streams: a small scanner walks
//! the top-level object member by member and cuts each `builds` element out of the stream
//! as raw bytes, serde_json deserializes that slice, and jobs leave in batches of
//! [`BATCH_JOBS`]. Memory stays bounded by one batch, the largest single record and the
//! builder and slave maps. (Deserializing straight from the reader through a
//! `DeserializeSeed` was the first version: byte-at-a-time reads and eager path tracking
//! held it to ~45 MB/s; slices parse several times faster and path tracking is only paid
//! again for a record that fails.)
//!
//! **Keys.** BuildAPI's finished, running and pending records describe the same work under
//! different ids; what they share is the *build request*. As in Treeherder
//! (`treeherder/etl/buildapi.py`) a job's `id` is the id of the request that ran (the last
//! of `request_ids`; the earlier ones were coalesced into it), so a pending request, its
//! running build and the finished build are one `(source, id)` that moves from `pending`
//! to `running` to its result. A `retry` build gets `<request>-retry-<endtime>`, since the
//! request is re-queued and will run again under its own id. A build without request ids
//! falls back to `build-<id>`. The BuildAPI build id is kept in the `build_id` tag. The
//! source is `buildapi`.
//!
//! **Slaves after builds.** The producer writes JSON with sorted keys, so `builders`
//! precedes `builds` but `slaves` comes after it. The worker name normally comes from the
//! `slavename` property, which real builds carry; only a build that lacks it (or lacks the
//! `buildername` property while the `builders` map is still unseen) is held back until the
//! end of the document and resolved against the maps then. A two-pass read was rejected:
//! the input may be a gzip stream or an HTTP body that cannot be rewound. The held-back
//! builds are capped at [`MAX_DEFERRED`]; past that they are emitted as they are (without a
//! worker, or skipped for want of a builder), so memory stays bounded on any input.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{BufRead, BufReader};

use common::job::MAX_NAME_LEN;
use common::{Job, JobResult, Step, Timestamp};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::buildbot::result_from_code;
use super::json::{join_path, without_position};
use super::{ImportBatch, ImportError, Limited, Options, Skipped, insert_tag};

/// Jobs per batch handed to the sink.
pub const BATCH_JOBS: usize = 10_000;
/// Most builds held back waiting for a later `builders`/`slaves` map.
pub const MAX_DEFERRED: usize = 100_000;
/// Default cap on decompressed size: a gzip bomb stops here instead of filling memory/disk.
pub const MAX_DECOMPRESSED_BYTES: u64 = 8 << 30;

/// Parses a dump (plain or gzip, detected by its magic bytes), calling `sink` per batch.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_limited(input, opts, MAX_DECOMPRESSED_BYTES, sink)
}

/// [`parse`] with an explicit limit on the decompressed size of gzip input.
pub fn parse_limited(
    input: &mut dyn BufRead,
    opts: &Options,
    max_decompressed: u64,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let head = input.fill_buf().map_err(|e| ImportError::new(&opts.origin, format!("read failed: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(input);
        let limited = Limited::new(gz, max_decompressed);
        parse_json(BufReader::with_capacity(1 << 16, limited), opts, sink)
    } else {
        parse_json(input, opts, sink)
    }
}

fn parse_json<R: BufRead>(
    reader: R,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut ctx = Ctx {
        source: opts.source.clone().unwrap_or_else(|| "buildapi".to_owned()),
        builders: HashMap::new(),
        slaves: HashMap::new(),
        saw_builders: false,
        saw_slaves: false,
        batch: ImportBatch::default(),
        deferred: Vec::new(),
        sink,
        sink_error: None,
    };
    let mut scan = Scanner { r: reader, line: 1 };
    let result = read_top(&mut scan, &mut ctx);
    if let Some(e) = ctx.sink_error.take() {
        return Err(e);
    }
    result.map_err(|(at, message)| {
        let at = if at.is_empty() { opts.origin.clone() } else { format!("{}: {at}", opts.origin) };
        ImportError::new(at, message)
    })?;
    ctx.finish()
}

/// Where (a JSON path, "" for the document) and what went wrong.
type Failure = (String, String);

/// Reads the top-level object. Each `builds` element is cut out of the stream as raw bytes
/// and deserialized from that slice: serde_json is several times faster on a slice than on
/// a reader, and error paths cost nothing until there is an error (then the element is
/// parsed again with path tracking). The other members are small and parsed whole.
fn read_top<R: BufRead>(scan: &mut Scanner<R>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let mut raw = Vec::new();
    match scan.skip_ws()? {
        Some(b'{') => scan.bump(1),
        _ => {
            return Err(scan.expected("a BuildAPI dump object (with `builds`, `pending` or `running`)"));
        }
    }
    let mut first = true;
    loop {
        match scan.skip_ws()? {
            Some(b'}') => {
                scan.bump(1);
                break;
            }
            Some(b',') if !first => scan.bump(1),
            _ if first => {}
            _ => return Err(scan.expected("`,` or `}` after a member")),
        }
        first = false;
        if scan.skip_ws()? != Some(b'"') {
            return Err(scan.expected("a member name"));
        }
        raw.clear();
        scan.take_value(&mut raw, "")?;
        let key: String = serde_json::from_slice(&raw).map_err(|e| (String::new(), without_position(&e)))?;
        if scan.skip_ws()? != Some(b':') {
            return Err(scan.expected("`:` after a member name"));
        }
        scan.bump(1);
        scan.skip_ws()?;
        if key == "builds" {
            read_builds(scan, ctx)?;
            continue;
        }
        raw.clear();
        scan.take_value(&mut raw, &key)?;
        match key.as_str() {
            "pending" | "running" => {
                let running = key == "running";
                let mut de = serde_json::Deserializer::from_slice(&raw);
                let mut track = serde_path_to_error::Track::new();
                let result = Queue { ctx: &mut *ctx, running }
                    .deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
                if ctx.sink_error.is_some() {
                    return Err((String::new(), "import aborted".to_owned()));
                }
                result.map_err(|e| (join_path(&key, &track.path().to_string()), without_position(&e)))?;
            }
            "builders" => {
                let builders: HashMap<String, RawBuilder> = typed_member(&raw, &key)?;
                for (id, b) in builders {
                    if let (Ok(id), Some(name)) = (id.parse(), b.name) {
                        ctx.builders.insert(id, name);
                    }
                }
                ctx.saw_builders = true;
            }
            "slaves" => {
                let slaves: HashMap<String, Option<String>> = typed_member(&raw, &key)?;
                for (id, name) in slaves {
                    if let (Ok(id), Some(name)) = (id.parse(), name) {
                        ctx.slaves.insert(id, name);
                    }
                }
                ctx.saw_slaves = true;
            }
            // `masters`, `starttime`, `endtime`: nothing a job needs.
            _ => {}
        }
    }
    match scan.skip_ws()? {
        None => Ok(()),
        Some(_) => Err(scan.expected("the end of the input (trailing characters)")),
    }
}

/// The `builds` array, element by element.
fn read_builds<R: BufRead>(scan: &mut Scanner<R>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    if scan.skip_ws()? != Some(b'[') {
        return Err(scan.expected_at("builds", "a list of builds"));
    }
    scan.bump(1);
    let mut raw = Vec::new();
    let mut index = 0;
    loop {
        match scan.skip_ws()? {
            Some(b']') => {
                scan.bump(1);
                return Ok(());
            }
            Some(b',') if index > 0 => {
                scan.bump(1);
                scan.skip_ws()?;
            }
            _ if index == 0 => {}
            _ => {
                return Err(scan.expected_at(&format!("builds[{index}]"), "`,` or `]` after a build"));
            }
        }
        raw.clear();
        scan.take_value(&mut raw, &format!("builds[{index}]"))?;
        let build = match serde_json::from_slice::<RawBuild>(&raw) {
            Ok(build) => build,
            Err(first) => {
                // Parse again, now tracking the path, to say where in the record.
                let de = &mut serde_json::Deserializer::from_slice(&raw);
                let (path, message) = match serde_path_to_error::deserialize::<_, RawBuild>(de) {
                    Err(e) => (e.path().to_string(), without_position(e.inner())),
                    Ok(_) => (String::new(), without_position(&first)),
                };
                return Err((join_path(&format!("builds[{index}]"), &path), message));
            }
        };
        ctx.take_build(index, build).map_err(|()| (String::new(), "import aborted".to_owned()))?;
        index += 1;
    }
}

/// Deserializes one (small) top-level member, naming the path of a type error.
fn typed_member<T: serde::de::DeserializeOwned>(raw: &[u8], key: &str) -> Result<T, Failure> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de)
        .map_err(|e| (join_path(key, &e.path().to_string()), without_position(e.inner())))
}

/// Cuts JSON values out of a byte stream without parsing them: it tracks only strings,
/// escapes and bracket depth, which is all it takes to find where a value ends.
struct Scanner<R> {
    r: R,
    /// Current line, for error messages.
    line: u64,
}

impl<R: BufRead> Scanner<R> {
    fn bump(&mut self, n: usize) {
        self.r.consume(n);
    }

    /// Skips whitespace; returns the next byte without consuming it (`None` at the end).
    fn skip_ws(&mut self) -> Result<Option<u8>, Failure> {
        loop {
            let buf = self.r.fill_buf().map_err(|e| (String::new(), format!("read failed: {e}")))?;
            if buf.is_empty() {
                return Ok(None);
            }
            let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.line += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            let next = buf.get(n).copied();
            self.r.consume(n);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    fn expected(&self, what: &str) -> Failure {
        self.expected_at("", what)
    }

    fn expected_at(&self, at: &str, what: &str) -> Failure {
        (at.to_owned(), format!("expected {what} at line {}", self.line))
    }

    /// Appends the value starting at the next byte (which is not whitespace) to `out`.
    fn take_value(&mut self, out: &mut Vec<u8>, at: &str) -> Result<(), Failure> {
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escaped = false;
        let mut scalar = false;
        let mut started = false;
        loop {
            let buf = self.r.fill_buf().map_err(|e| (at.to_owned(), format!("read failed: {e}")))?;
            if buf.is_empty() {
                if scalar && started {
                    return Ok(());
                }
                return Err((
                    at.to_owned(),
                    format!("EOF while parsing a value at line {}: the input is truncated", self.line),
                ));
            }
            let mut end = None;
            let mut i = 0;
            while i < buf.len() {
                let c = buf[i];
                if in_str {
                    if escaped {
                        escaped = false;
                    } else if c == b'\\' {
                        escaped = true;
                    } else if c == b'"' {
                        in_str = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    } else if c == b'\n' {
                        self.line += 1;
                    }
                } else if scalar {
                    if matches!(c, b',' | b']' | b'}') || c.is_ascii_whitespace() {
                        end = Some(i);
                        break;
                    }
                } else {
                    match c {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth == 0 => {
                            return Err((
                                at.to_owned(),
                                format!("unexpected `{}` at line {}", c as char, self.line),
                            ));
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                        b'\n' => self.line += 1,
                        _ if depth == 0 => scalar = true,
                        _ => {}
                    }
                }
                started = true;
                i += 1;
            }
            let n = end.unwrap_or(buf.len());
            out.extend_from_slice(&buf[..n]);
            self.r.consume(n);
            if end.is_some() {
                return Ok(());
            }
        }
    }
}

/// Parser state shared by the nested seeds.
struct Ctx<'s> {
    source: String,
    builders: HashMap<i64, String>,
    slaves: HashMap<i64, String>,
    saw_builders: bool,
    saw_slaves: bool,
    batch: ImportBatch,
    /// Builds waiting for a map that comes later in the document, with their index.
    deferred: Vec<(usize, RawBuild)>,
    sink: &'s mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
    /// The sink's own error, which aborts parsing and is returned as is.
    sink_error: Option<ImportError>,
}

impl Ctx<'_> {
    fn take_build(&mut self, index: usize, build: RawBuild) -> Result<(), ()> {
        let builder_later = build.props.get("buildername").is_none()
            && build.builder_id.is_some_and(|id| !self.builders.contains_key(&id))
            && !self.saw_builders;
        let worker_later =
            build.props.get("slavename").is_none() && build.slave_id.is_some() && !self.saw_slaves;
        if (builder_later || worker_later) && self.deferred.len() < MAX_DEFERRED {
            self.deferred.push((index, build));
            return Ok(());
        }
        self.convert(index, build);
        self.flush_if_full()
    }

    fn convert(&mut self, index: usize, build: RawBuild) {
        match build_job(&self.source, &self.builders, &self.slaves, build) {
            Ok(job) => self.batch.jobs.push(job),
            Err(reason) => self.batch.skipped.push(Skipped { at: format!("builds[{index}]"), reason }),
        }
    }

    fn push(&mut self, at: impl FnOnce() -> String, job: Result<Job, String>) {
        match job {
            Ok(job) => self.batch.jobs.push(job),
            Err(reason) => self.batch.skipped.push(Skipped { at: at(), reason }),
        }
    }

    /// Hands a full batch to the sink; on the sink's error, keeps it and returns `Err`.
    fn flush_if_full(&mut self) -> Result<(), ()> {
        if self.batch.jobs.len() + self.batch.skipped.len() < BATCH_JOBS {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        (self.sink)(batch).map_err(|e| self.sink_error = Some(e))
    }

    fn finish(mut self) -> Result<(), ImportError> {
        for (index, build) in std::mem::take(&mut self.deferred) {
            self.convert(index, build);
            if self.batch.jobs.len() >= BATCH_JOBS {
                (self.sink)(std::mem::take(&mut self.batch))?;
            }
        }
        (self.sink)(std::mem::take(&mut self.batch))
    }
}

/// One element of `builds` (`buildapi/scripts/reporter.py`).
#[derive(Deserialize)]
struct RawBuild {
    id: Option<i64>,
    #[serde(default)]
    builder_id: Option<i64>,
    #[serde(default)]
    slave_id: Option<i64>,
    #[serde(default)]
    starttime: Option<Timestamp>,
    #[serde(default)]
    endtime: Option<Timestamp>,
    #[serde(default)]
    requesttime: Option<Timestamp>,
    #[serde(default)]
    result: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    buildnumber: Option<i64>,
    #[serde(default)]
    request_ids: Option<Vec<i64>>,
    #[serde(default, rename = "properties")]
    props: Props,
    #[serde(default)]
    steps: Option<Vec<RawStep>>,
}

#[derive(Deserialize)]
struct RawStep {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    starttime: Option<Timestamp>,
    /// Spelled so by the producer; `endtime` accepted too.
    #[serde(default, alias = "endtime")]
    enddtime: Option<Timestamp>,
    #[serde(default)]
    status: Option<i64>,
}

#[derive(Deserialize)]
struct RawBuilder {
    #[serde(default)]
    name: Option<String>,
}

/// A build's properties, keeping only scalar values (as text): lists and objects
/// (`request_times`, `testresults` ...) are skipped without being built in memory.
#[derive(Default)]
struct Props(Vec<(String, String)>);

impl Props {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

impl<'de> Deserialize<'de> for Props {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Props;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a properties object")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Props, E> {
                Ok(Props::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Props, A::Error> {
                let mut props = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if let Scalar(Some(value)) = map.next_value()? {
                        props.push((key, value));
                    }
                }
                Ok(Props(props))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON scalar as text; `None` for null, lists and objects (which are skipped).
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(Some(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

fn build_job(
    source: &str,
    builders: &HashMap<i64, String>,
    slaves: &HashMap<i64, String>,
    b: RawBuild,
) -> Result<Job, String> {
    let builder = match (b.props.get("buildername"), b.builder_id) {
        (Some(name), _) => name.to_owned(),
        (None, Some(id)) => {
            builders.get(&id).cloned().ok_or_else(|| format!("builder_id {id} is not in `builders`"))?
        }
        (None, None) => return Err("no buildername property and no builder_id".into()),
    };
    let result = match b.result {
        Some(code) => result_from_code(code).ok_or_else(|| format!("unknown result code {code}"))?,
        None if b.endtime.is_none() => JobResult::Running,
        None => return Err("finished (has an endtime) but has no result".into()),
    };
    let request_ids = b.request_ids.unwrap_or_default();
    let id = match (request_ids.last(), b.id) {
        (Some(rid), _) if result == JobResult::Retry => match b.endtime {
            Some(end) => format!("{rid}-retry-{}", end.as_millis() / 1000),
            None => format!("{rid}-retry"),
        },
        (Some(rid), _) => rid.to_string(),
        (None, Some(id)) => format!("build-{id}"),
        (None, None) => return Err("no request_ids and no id".into()),
    };
    let worker = b
        .props
        .get("slavename")
        .map(str::to_owned)
        .or_else(|| b.slave_id.and_then(|id| slaves.get(&id).cloned()));
    let project = b.props.get("project").map(str::to_owned);
    let branch = b.props.get("branch").map(str::to_owned);
    let revision = b.props.get("revision").or_else(|| b.props.get("got_revision")).map(str::to_owned);
    let mut tags = BTreeMap::new();
    for (key, value) in b.props.0 {
        if !key.is_empty() && key.len() <= MAX_NAME_LEN && !value.is_empty() && value.len() <= MAX_NAME_LEN {
            tags.insert(key, value);
        }
    }
    if let Some(id) = b.id {
        insert_tag(&mut tags, "build_id", id.to_string());
    }
    if let Some(n) = b.buildnumber {
        insert_tag(&mut tags, "buildnumber", n.to_string());
    }
    if let Some(reason) = &b.reason {
        insert_tag(&mut tags, "reason", reason);
    }
    if !request_ids.is_empty() {
        let ids: Vec<String> = request_ids.iter().map(i64::to_string).collect();
        insert_tag(&mut tags, "request_ids", ids.join(","));
    }
    let mut metrics = BTreeMap::new();
    if request_ids.len() > 1 {
        metrics.insert("coalesced_requests".to_owned(), (request_ids.len() - 1) as f64);
    }
    let started_at = b.starttime;
    let job = Job {
        source: source.to_owned(),
        id,
        builder,
        project,
        branch,
        revision,
        worker,
        // Scheduler and master clocks differ; a request time after the start says nothing
        // about queueing and is dropped rather than the build.
        requested_at: b.requesttime.filter(|r| started_at.is_none_or(|s| *r <= s)),
        started_at,
        finished_at: if result.is_finished() { b.endtime } else { None },
        result,
        url: None,
        tags,
        metrics,
        steps: b
            .steps
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| {
                Some(Step {
                    name: s.name.filter(|n| !n.is_empty())?,
                    started_at: s.starttime,
                    finished_at: s.enddtime,
                    result: s.status.and_then(result_from_code),
                })
            })
            .collect(),
    };
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

/// `pending`/`running`: `{branch: {revision: [request, ...]}}`.
struct Queue<'a, 's> {
    ctx: &'a mut Ctx<'s>,
    running: bool,
}

impl<'de> DeserializeSeed<'de> for Queue<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Queue<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of branches")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(branch) = map.next_key::<String>()? {
            map.next_value_seed(Revisions { ctx: &mut *self.ctx, running: self.running, branch })?;
        }
        Ok(())
    }
}

struct Revisions<'a, 's> {
    ctx: &'a mut Ctx<'s>,
    running: bool,
    branch: String,
}

impl<'de> DeserializeSeed<'de> for Revisions<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Revisions<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of revisions")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(revision) = map.next_key::<String>()? {
            let requests: Vec<RawQueued> = map.next_value()?;
            for (i, q) in requests.into_iter().enumerate() {
                let kind = if self.running { "running" } else { "pending" };
                let job = queued_job(&self.ctx.source, self.running, &self.branch, &revision, q);
                self.ctx.push(|| format!("{kind}.{}.{revision}[{i}]", self.branch), job);
            }
            self.ctx.flush_if_full().map_err(|()| A::Error::custom("import aborted"))?;
        }
        Ok(())
    }
}

/// A request in `builds-pending.js` or a build in `builds-running.js`.
#[derive(Deserialize)]
struct RawQueued {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    buildername: Option<String>,
    #[serde(default)]
    submitted_at: Option<Timestamp>,
    #[serde(default)]
    start_time: Option<Timestamp>,
    #[serde(default)]
    request_ids: Option<Vec<i64>>,
    #[serde(default)]
    number: Option<i64>,
    #[serde(default)]
    claimed_by_name: Option<String>,
}

fn queued_job(
    source: &str,
    running: bool,
    branch: &str,
    revision: &str,
    q: RawQueued,
) -> Result<Job, String> {
    let builder = q.buildername.filter(|b| !b.is_empty()).ok_or("no buildername")?;
    // Pending entries are requests (`id` is the request id); running ones are builds whose
    // last request id is the request that runs.
    let request =
        if running { q.request_ids.as_ref().and_then(|ids| ids.last().copied()).or(q.id) } else { q.id };
    let id = request.ok_or("no request id")?.to_string();
    let mut tags = BTreeMap::new();
    if let Some(master) = &q.claimed_by_name {
        insert_tag(&mut tags, "master", master);
    }
    if let Some(n) = q.number {
        insert_tag(&mut tags, "buildnumber", n.to_string());
    }
    let started_at = if running { q.start_time } else { None };
    let job = Job {
        source: source.to_owned(),
        id,
        builder,
        project: None,
        branch: Some(branch.to_owned()).filter(|b| !b.is_empty()),
        revision: Some(revision.to_owned()).filter(|r| !r.is_empty()),
        worker: None,
        requested_at: q.submitted_at.filter(|r| started_at.is_none_or(|s| *r <= s)),
        started_at,
        finished_at: None,
        result: if running { JobResult::Running } else { JobResult::Pending },
        url: None,
        tags,
        metrics: BTreeMap::new(),
        steps: Vec::new(),
    };
    job.validate().map_err(|e| e.to_string())?;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::super::buildbot::test_support::{assert_lines, fixture, no_panics, run, summarize};
    use super::*;

    fn check(input: &[u8], expected: &str) {
        assert_lines(&summarize(&run(parse, input, None).unwrap()), expected);
    }

    fn check_err(input: &[u8], at: &str, message: &str) {
        let e = run(parse, input, None).unwrap_err();
        assert!(e.at == at && e.message.contains(message), "{e}");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    const FOUR_HOURS: &str = "
        24526180 Linux x86-64 mozilla-central build success w=bld-linux64-ec2-301 q=1376385600 s=1376385700 f=1376387500
        24526182-retry-1376388100 Ubuntu VM 12.04 x64 mozilla-central opt test mochitest-1 retry w=tst-linux64-spot-005 q=1376387600 s=1376387700 f=1376388100
        24526184 WINNT 5.2 mozilla-central build failure w=b-2008-ix-0042 q=1376387000 s=1376387100 f=1376388400
        24526185 Linux x86-64 mozilla-central build running w=bld-linux64-ec2-302 q=1376387900 s=1376388100 f=-
        24526186 Linux x86-64 mozilla-central build exception w=bld-linux64-ec2-303 q=- s=1376388300 f=1376389300 [clobber:success compile:exception]
        24526181 Ubuntu VM 12.04 x64 mozilla-central opt test mochitest-1 warnings w=tst-linux64-spot-001 q=1376385000 s=1376387800 f=1376389000
        skip builds[3]: unknown result code 8
    ";

    #[test]
    fn four_hour_dump_plain_and_gzipped() {
        check(&fixture("buildapi/builds-4hr.js"), FOUR_HOURS);
        check(&fixture("buildapi/builds-2013-08-13.js.gz"), FOUR_HOURS);
        let batch = run(parse, &fixture("buildapi/builds-4hr.js"), None).unwrap();
        let j = &batch.jobs[0];
        assert_eq!(j.source, "buildapi");
        assert_eq!(
            (j.branch.as_deref(), j.revision.as_deref()),
            (Some("mozilla-central"), Some("0123456789ab"))
        );
        assert_eq!(j.tags["build_id"], "27000001");
        assert_eq!(j.tags["platform"], "linux64");
        assert!(!j.tags.contains_key("comments"), "a 3 kB property is not a tag");
        assert!(!j.tags.contains_key("request_times"), "object-valued properties are not tags");
        let coalesced = batch.jobs.iter().find(|j| j.id == "24526181").unwrap();
        assert_eq!(coalesced.tags["request_ids"], "24526170,24526181");
        assert_eq!(coalesced.metrics["coalesced_requests"], 1.0);
    }

    #[test]
    fn pending_then_running_then_finished_share_a_key() {
        check(
            &fixture("buildapi/builds-pending.js"),
            "
            24526190 Linux x86-64 mozilla-central leak test build pending w=- q=1376388000 s=- f=-
            24526191 Rev5 MacOSX Lion 10.7 try opt test xpcshell pending w=- q=1376388050 s=- f=-
            skip pending.try.abcdef012345[1]: no buildername
            ",
        );
        check(
            &fixture("buildapi/builds-running.js"),
            "24526190 Linux x86-64 mozilla-central leak test build running w=- q=1376388000 s=1376388500 f=-",
        );
        let finished = r#"{"builds":[{"id":27000011,"properties":{"buildername":"Linux x86-64 mozilla-central leak test build","slavename":"bld-1"},"request_ids":[24526190],"requesttime":1376388000,"starttime":1376388500,"endtime":1376389000,"result":0}]}"#;
        check(
            finished.as_bytes(),
            "24526190 Linux x86-64 mozilla-central leak test build success w=bld-1 q=1376388000 s=1376388500 f=1376389000",
        );
    }

    /// `n` finished builds in the producer's shape.
    fn synthetic_dump(n: usize) -> Vec<u8> {
        let mut out =
            Vec::from(&br#"{"builders":{"1":{"name":"b1","master_id":1,"slaves":[1]}},"builds":["#[..]);
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            write!(
                out,
                r#"{{"builder_id":1,"buildnumber":{i},"endtime":{end},"id":{id},"master_id":1,"properties":{{"branch":"mozilla-central","buildername":"Linux x86-64 mozilla-central build {k}","buildid":"20130813092104","buildnumber":{i},"builduid":"5b0f2bd3a7f54ab0b8d1f6b4f7d0b1c2","log_url":"http://ftp.mozilla.org/pub/mozilla.org/firefox/tinderbox-builds/mozilla-central-linux64/1376385600/x-build{i}.txt.gz","master":"http://buildbot-master69.bb.releng.use1.mozilla.com:8001/","platform":"linux64","product":"firefox","project":"","repo_path":"mozilla-central","request_ids":[{id}],"request_times":{{"{id}":1376385600}},"revision":"0123456789abcdef0123456789abcdef01234567","scheduler":"mozilla-central-linux64","slavename":"bld-linux64-ec2-{k}","stage_platform":"linux64","who":"someone@example.com"}},"reason":"scheduler","request_ids":[{id}],"requesttime":1376385600,"result":{r},"slave_id":1,"starttime":1376385700}}"#,
                end = 1376387500 + i % 1000,
                id = 27_000_000 + i,
                k = i % 50,
                r = i % 7,
            )
            .unwrap();
        }
        out.extend_from_slice(br#"],"slaves":{"1":"bld-1"},"starttime":1376375600}"#);
        out
    }

    #[test]
    fn streams_in_batches() {
        let dump = synthetic_dump(25_000);
        let opts = Options { origin: "big.js".into(), ..Options::default() };
        let mut sizes = Vec::new();
        parse(&mut &dump[..], &opts, &mut |b| {
            sizes.push(b.jobs.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, [10_000, 10_000, 5_000]);
        // The sink's error stops the parse and comes back unchanged.
        let e =
            parse(&mut &dump[..], &opts, &mut |_| Err(ImportError::new("store", "disk full"))).unwrap_err();
        assert_eq!(e.to_string(), "store: disk full");
    }

    /// Throughput on a ~100 MB dump: `cargo test --release -p buildscope --lib
    /// import::buildapi::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        // CPU time of this thread (Linux), so the figure means something on a shared machine.
        let cpu = || {
            let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
            stat.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).unwrap_or(0.0) / 1e9
        };
        let dump = synthetic_dump(100_000);
        for (name, input) in [("plain", dump.clone()), ("gzip", gzip(&dump))] {
            let (start, start_cpu) = (std::time::Instant::now(), cpu());
            let mut jobs = 0;
            parse(&mut &input[..], &Options::default(), &mut |b| {
                jobs += b.jobs.len();
                Ok(())
            })
            .unwrap();
            let (wall, busy) = (start.elapsed().as_secs_f64(), cpu() - start_cpu);
            let mb = dump.len() as f64 / 1e6;
            println!(
                "{name}: {mb:.1} MB (uncompressed), {jobs} jobs: wall {wall:.2} s = {:.0} MB/s; \
                 CPU {busy:.2} s = {:.0} MB/s, {:.0} jobs/CPU-s",
                mb / wall,
                mb / busy,
                jobs as f64 / busy
            );
        }
    }

    #[test]
    fn bad_input_is_named() {
        let four = fixture("buildapi/builds-4hr.js");
        let cut = String::from_utf8_lossy(&four).find("27000003").unwrap();
        let e = run(parse, &four[..cut], None).unwrap_err();
        assert!(e.at.starts_with("input.json: builds[2]") && e.message.contains("EOF while parsing"), "{e}");
        check_err(
            br#"{"builds":[{"id":1,"starttime":1376385700000,"endtime":1376385800,"result":0}]}"#,
            "input.json: builds[0].starttime",
            "looks like epoch milliseconds",
        );
        check_err(
            br#"{"builds":[{"id":1,"starttime":"soon"}]}"#,
            "input.json: builds[0].starttime",
            "not an RFC 3339",
        );
        check_err(br#"{"builds":[{"id":"one"}]}"#, "input.json: builds[0].id", "expected i64");
        check_err(br#"{"builds":{}}"#, "input.json: builds", "expected a list of builds");
        check_err(
            br#"{"pending":{"try":{"abc":[{"id":1,"submitted_at":[]}]}}}"#,
            "input.json: pending.try.abc[0].submitted_at",
            "",
        );
        check_err(br#"[]"#, "input.json", "a BuildAPI dump object");
        check_err(br#"{"builds":[]} x"#, "input.json", "trailing characters");
        assert!(run(parse, &gzip(b"{\"builds\":[")[..20], None).is_err());
        // Unknown results and oversized names are the records' problem, not the file's.
        let long = "n".repeat(5000);
        check(
            format!(r#"{{"builds":[{{"id":1,"properties":{{"buildername":"{long}"}},"starttime":1376385700,"result":0}}]}}"#)
                .as_bytes(),
            "skip builds[0]: builder: longer than 1024 bytes",
        );
    }

    #[test]
    fn gzip_is_size_limited_while_decompressing() {
        let mut big = Vec::from(&b"{\"builds\":[], \"x\":\""[..]);
        big.resize(10 << 20, b' ');
        big.extend_from_slice(b"\"}");
        let bomb = gzip(&big);
        assert!(bomb.len() < 100_000);
        let opts = Options { origin: "bomb.js.gz".into(), ..Options::default() };
        let e = parse_limited(&mut &bomb[..], &opts, 1 << 20, &mut |_| Ok(())).unwrap_err();
        assert!(e.message.contains("larger than the 1048576 byte limit"), "{e}");
        parse_limited(&mut &bomb[..], &opts, 11 << 20, &mut |_| Ok(())).unwrap();
    }

    #[test]
    fn random_damage_never_panics() {
        no_panics(
            parse,
            &[
                &fixture("buildapi/builds-4hr.js"),
                &fixture("buildapi/builds-pending.js"),
                &fixture("buildapi/builds-running.js"),
                &fixture("buildapi/builds-2013-08-13.js.gz"),
            ],
        );
    }
}
