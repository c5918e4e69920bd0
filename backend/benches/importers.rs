//! Importer benchmarks: how fast each parser turns its format into records, and what a
//! whole import into SQLite costs.
//!
//! `cargo bench -p buildscope --bench importers` (criterion options after `--`, e.g.
//! `-- --warm-up-time 1 --measurement-time 3`, or a filter such as `-- influx`).
//!
//! Every input is generated here, deterministically, from the demo farm
//! ([`common::demo::DemoFarm`]) rendered into the shape each system emits (the fixtures in
//! `backend/tests/fixtures/<kind>/` are the models). Parsers run through
//! [`Kind::parse`] with a sink that counts records and drops the batches, so the parser is
//! measured, not the store; the `store` group adds the SQLite write through
//! [`run::import`]: 4.8 MB of line protocol from memory, and about 100 MB streamed from a
//! file (`-- store` runs just these). Criterion reports MB/s of input (`Throughput::Bytes`);
//! records/s is printed per benchmark and again in the Markdown table at the end, for the
//! README.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use buildscope::import::run::{self, Kind};
use buildscope::import::{ImportBatch, ImportError, Options};
use common::demo::{DemoConfig, DemoFarm};
use common::records::JobKey;
use common::{Job, JobResult};
use criterion::{Criterion, Throughput};
use serde_json::{Value, json};

/// "Now" for every parse, so points without a timestamp are stable too.
const NOW_MS: i64 = common::demo::DEFAULT_END_MS;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut table = Table::default();

    let buildapi = buildapi_dump(24_000);
    let buildapi_gz = gzip(&buildapi);
    let inputs: Vec<(&str, Kind, Vec<u8>, Option<u64>)> = vec![
        ("buildbot", Kind::Buildbot, buildbot_rest(6_000), None),
        ("buildapi", Kind::Buildapi, buildapi.clone(), None),
        // Throughput in decompressed bytes, so it compares with the plain dump.
        ("buildapi.gz", Kind::Buildapi, buildapi_gz, Some(buildapi.len() as u64)),
        ("jenkins", Kind::Jenkins, jenkins(6_000), None),
        ("github", Kind::Github, github(3_000), None),
        ("gitlab", Kind::Gitlab, gitlab(3_000), None),
        ("junit", Kind::Junit, junit(20_000), None),
        ("buildstats", Kind::Buildstats, buildstats_tar(2, 300), None),
        ("influx", Kind::Influx, line_protocol(40_000), None),
        ("csv", Kind::Csv, csv(20_000), None),
    ];
    drop(buildapi);

    for (name, kind, input, decompressed) in &inputs {
        parser_group(&mut c, &mut table, name, *kind, input, *decompressed);
    }
    let small = line_protocol(5_000);
    store_group(&mut c, &mut table, "influx_to_sqlite", small.len() as u64, &|| {
        Box::new(std::io::Cursor::new(small.clone()))
    });
    drop(small);
    // About 100 MB, streamed from a file as `buildscope import influx FILE` reads it.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("points.lp");
    let bytes = {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("create the input file"));
        for part in 0..21 {
            out.write_all(&line_protocol_part(5_000, part)).expect("write the input file");
        }
        out.flush().expect("write the input file");
        std::fs::metadata(&file).expect("input file").len()
    };
    store_group(&mut c, &mut table, "influx_file_to_sqlite", bytes, &|| {
        Box::new(std::io::BufReader::new(std::fs::File::open(&file).expect("open the input file")))
    });

    c.final_summary();
    table.print();
}

/// Options as the CLI would build them; JUnit needs the job its report belongs to.
fn options(name: &str) -> Options {
    Options {
        origin: format!("bench.{name}"),
        job: (name == "junit").then(|| JobKey { source: "bench".into(), id: "1".into() }),
        now_ms: NOW_MS,
        ..Default::default()
    }
}

/// What one parse produced.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Count {
    jobs: u64,
    tests: u64,
    samples: u64,
    steps: u64,
    skipped: u64,
}

impl Count {
    /// Records as the import report counts them: jobs, test results and samples.
    fn records(&self) -> u64 {
        self.jobs + self.tests + self.samples
    }
}

fn parse(kind: Kind, mut input: &[u8], opts: &Options) -> Result<Count, ImportError> {
    let mut count = Count::default();
    let mut sink = |batch: ImportBatch| -> Result<(), ImportError> {
        count.jobs += batch.jobs.len() as u64;
        count.steps += batch.jobs.iter().map(|j| j.steps.len() as u64).sum::<u64>();
        count.tests += batch.tests.len() as u64;
        count.samples += batch.samples.len() as u64;
        count.skipped += batch.skipped.len() as u64;
        drop(black_box(batch));
        Ok(())
    };
    kind.parse(&mut input, opts, &mut sink)?;
    Ok(count)
}

/// Time spent and iterations run, over every call criterion makes (warm-up included).
#[derive(Default)]
struct Clock {
    iters: u64,
    elapsed: Duration,
}

impl Clock {
    fn per_iter_s(&self) -> f64 {
        self.elapsed.as_secs_f64() / self.iters.max(1) as f64
    }
}

fn parser_group(
    c: &mut Criterion,
    table: &mut Table,
    name: &str,
    kind: Kind,
    input: &[u8],
    decompressed: Option<u64>,
) {
    let opts = options(name);
    let count = parse(kind, input, &opts)
        .unwrap_or_else(|e| panic!("{name}: the generated input does not parse: {e}"));
    assert!(count.records() > 0, "{name}: no records from the generated input");
    let bytes = decompressed.unwrap_or(input.len() as u64);
    eprintln!(
        "{name}: {:.1} MB in ({:.1} MB on the wire): {} jobs ({} steps), {} tests, {} samples, {} skipped",
        bytes as f64 / 1e6,
        input.len() as f64 / 1e6,
        count.jobs,
        count.steps,
        count.tests,
        count.samples,
        count.skipped
    );

    let clock = Rc::new(RefCell::new(Clock::default()));
    let mut group = c.benchmark_group(name.replace('.', "_"));
    group.throughput(Throughput::Bytes(bytes));
    if bytes > 10_000_000 {
        group.sample_size(10);
    }
    let timed = Rc::clone(&clock);
    group.bench_function("parse", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let got = parse(kind, black_box(input), &opts).expect("parsed once already");
                debug_assert_eq!(got, count);
            }
            let elapsed = started.elapsed();
            let mut clock = timed.borrow_mut();
            clock.iters += iters;
            clock.elapsed += elapsed;
            elapsed
        })
    });
    group.finish();
    let clock = clock.borrow();
    let row =
        Row { name: name.to_owned(), wire: input.len() as u64, bytes, count, per_iter_s: clock.per_iter_s() };
    eprintln!(
        "{name}: {:.0} records/s, {:.1} MB/s (mean of {} parses)",
        row.records_per_s(),
        row.mb_per_s(),
        clock.iters
    );
    table.rows.push(row);
}

/// Parse and write into a fresh SQLite file per iteration, through the same
/// [`run::import`] the CLI and the HTTP endpoints use. `input` opens the line protocol.
fn store_group(
    c: &mut Criterion,
    table: &mut Table,
    name: &str,
    bytes: u64,
    input: &dyn Fn() -> Box<dyn std::io::BufRead + Send>,
) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut n = 0;
    let mut fresh_store = || {
        n += 1;
        let path = dir.path().join(format!("bench-{n}.sqlite"));
        let url = format!("sqlite://{}", path.display());
        let store = rt
            .block_on(buildscope::store::open(&url.parse().expect("database url")))
            .expect("open the store");
        (store, path)
    };
    let import = |store: std::sync::Arc<dyn buildscope::store::Store>, rt: &tokio::runtime::Runtime| {
        let report = rt.block_on(run::import(store, Kind::Influx, input(), options("store")));
        assert!(report.error.is_none(), "store import failed: {:?}", report.error);
        report
    };

    let (store, path) = fresh_store();
    let started = Instant::now();
    let report = import(store, &rt);
    let first_s = started.elapsed().as_secs_f64();
    let count = Count { samples: report.samples.inserted, skipped: report.skipped, ..Count::default() };
    eprintln!(
        "store {name} (influx → SQLite): {:.1} MB in: {} read, {} samples inserted, {} skipped; \
         database {:.1} MB; first import {:.1} MB/s",
        bytes as f64 / 1e6,
        report.read,
        report.samples.inserted,
        report.skipped,
        std::fs::metadata(&path).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0),
        bytes as f64 / 1e6 / first_s
    );
    let _ = std::fs::remove_file(&path);

    let clock = Rc::new(RefCell::new(Clock::default()));
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    let timed = Rc::clone(&clock);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                // A new database each time: re-importing into the same one would measure
                // updates, not inserts. Opening it (migrations) is not timed.
                let (store, path) = fresh_store();
                let started = Instant::now();
                black_box(import(store, &rt));
                elapsed += started.elapsed();
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            let mut clock = timed.borrow_mut();
            clock.iters += iters;
            clock.elapsed += elapsed;
            elapsed
        })
    });
    group.finish();
    let clock = clock.borrow();
    let row = Row {
        name: format!("influx → SQLite (`store/{name}`)"),
        wire: bytes,
        bytes,
        count,
        per_iter_s: clock.per_iter_s(),
    };
    eprintln!(
        "store {name}: {:.0} records/s, {:.1} MB/s (mean of {} imports)",
        row.records_per_s(),
        row.mb_per_s(),
        clock.iters
    );
    table.rows.push(row);
}

struct Row {
    name: String,
    wire: u64,
    bytes: u64,
    count: Count,
    per_iter_s: f64,
}

impl Row {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.per_iter_s
    }

    fn records_per_s(&self) -> f64 {
        self.count.records() as f64 / self.per_iter_s
    }
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn print(&self) {
        println!();
        println!("| format | input | records per input | MB/s | records/s |");
        println!("|---|---:|---|---:|---:|");
        // Rows a filter (`-- influx`) left unmeasured have no time.
        for r in self.rows.iter().filter(|r| r.per_iter_s > 0.0) {
            let size = if r.wire == r.bytes {
                format!("{:.1} MB", r.bytes as f64 / 1e6)
            } else {
                format!("{:.1} MB ({:.1} MB gzip)", r.bytes as f64 / 1e6, r.wire as f64 / 1e6)
            };
            let c = r.count;
            let mut what = Vec::new();
            for (n, label) in [(c.jobs, "jobs"), (c.tests, "tests"), (c.samples, "samples")] {
                if n > 0 {
                    what.push(format!("{n} {label}"));
                }
            }
            if c.steps > 0 {
                what.push(format!("({} steps)", c.steps));
            }
            println!(
                "| {} | {size} | {} | {:.1} | {} |",
                r.name,
                what.join(" "),
                r.mb_per_s(),
                thousands(r.records_per_s())
            );
        }
        println!();
        println!("MB/s is of decompressed input; means over every timed run (warm-up included).");
    }
}

fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

// ---- Inputs ------------------------------------------------------------------------------

/// `n` demo jobs; the same seed for every format, so inputs never change between runs.
fn demo_jobs(n: usize) -> Vec<Job> {
    DemoFarm::new(DemoConfig { jobs: n, ..DemoConfig::default() }).collect()
}

fn secs(t: Option<common::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(t.as_millis() / 1000))
}

fn rfc3339(t: Option<common::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

/// Buildbot's numeric result codes (0 success ... 6 cancelled).
fn buildbot_code(r: JobResult) -> Value {
    match r {
        JobResult::Success => json!(0),
        JobResult::Warnings => json!(1),
        JobResult::Failure => json!(2),
        JobResult::Skipped => json!(3),
        JobResult::Exception => json!(4),
        JobResult::Retry => json!(5),
        JobResult::Cancelled => json!(6),
        JobResult::Running | JobResult::Pending => Value::Null,
    }
}

/// A small, stable number derived from text: ids for builders and workers.
fn index_of(names: &mut BTreeMap<String, i64>, name: &str, base: i64) -> i64 {
    let next = base + names.len() as i64;
    *names.entry(name.to_owned()).or_insert(next)
}

/// A BuildAPI daily dump (`builds-YYYY-MM-DD.js`) as `buildapi/scripts/reporter.py` writes
/// it: sorted keys, `builders` before `builds`, `slaves` after, full property sets.
fn buildapi_dump(n: usize) -> Vec<u8> {
    let jobs = demo_jobs(n);
    let mut builders = BTreeMap::new();
    let mut slaves = BTreeMap::new();
    for j in &jobs {
        index_of(&mut builders, &j.builder, 100);
        if let Some(w) = &j.worker {
            index_of(&mut slaves, w, 1000);
        }
    }
    let mut out = Vec::with_capacity(n * 2000);
    let builders_json: BTreeMap<String, Value> = builders
        .iter()
        .map(|(name, id)| {
            (id.to_string(), json!({"category": "mozilla-central", "master_id": 69, "name": name, "slaves": [1000, 1001, 1002]}))
        })
        .collect();
    out.extend_from_slice(b"{\"builders\": ");
    serde_json::to_writer(&mut out, &builders_json).unwrap();
    out.extend_from_slice(b", \"builds\": [");
    let mut first = true;
    for (i, j) in jobs.iter().enumerate() {
        if j.started_at.is_none() {
            continue; // pending requests live in builds-pending.js, not in a dump
        }
        let request_id = 24_000_000 + i as i64;
        let mut request_ids = vec![json!(request_id)];
        if i % 7 == 0 {
            request_ids.insert(0, json!(request_id - 3)); // a coalesced request
        }
        let revision = j.revision.clone().unwrap_or_default();
        let build = json!({
            "builder_id": builders[&j.builder],
            "buildnumber": i % 5000,
            "endtime": secs(j.finished_at),
            "id": 27_000_000 + i as i64,
            "master_id": 69,
            "properties": {
                "basedir": format!("/builds/slave/{}", j.builder),
                "branch": j.branch,
                "buildername": j.builder,
                "buildid": "20261013092104",
                "buildnumber": i % 5000,
                "builduid": format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)),
                "comments": format!("Bug {} - Fix the thing in {} r=reviewer", 800_000 + i, j.builder),
                "got_revision": revision,
                "log_url": format!("http://ftp.mozilla.org/pub/mozilla.org/firefox/tinderbox-builds/{}/{}-bm69-build1-build{}.txt.gz", j.branch.as_deref().unwrap_or(""), j.builder, i),
                "master": "http://buildbot-master69.bb.releng.use1.mozilla.com:8001/",
                "packageUrl": format!("http://ftp.mozilla.org/pub/mozilla.org/firefox/tinderbox-builds/{}/firefox-26.0a1.en-US.linux-x86_64.tar.bz2", j.builder),
                "platform": j.tags.get("platform"),
                "product": "firefox",
                "project": j.project,
                "repo_path": j.branch,
                "repository": "",
                "request_ids": request_ids,
                "request_times": {request_id.to_string(): secs(j.requested_at)},
                "revision": revision,
                "scheduler": format!("{}-{}", j.branch.as_deref().unwrap_or(""), j.builder),
                "slavebuilddir": format!("m-cen-l64-{:013}", i),
                "slavename": j.worker,
                "stage_platform": j.tags.get("platform"),
                "who": "someone@example.com",
            },
            "reason": "scheduler",
            "request_ids": request_ids,
            "requesttime": secs(j.requested_at),
            "result": buildbot_code(j.result),
            "slave_id": j.worker.as_ref().map(|w| slaves[w]),
            "starttime": secs(j.started_at),
        });
        if !first {
            out.extend_from_slice(b", ");
        }
        first = false;
        serde_json::to_writer(&mut out, &build).unwrap();
    }
    let slaves_json: BTreeMap<String, &String> =
        slaves.iter().map(|(name, id)| (id.to_string(), name)).collect();
    out.extend_from_slice(b"], \"slaves\": ");
    serde_json::to_writer(&mut out, &slaves_json).unwrap();
    out.extend_from_slice(b", \"starttime\": 1792800000, \"endtime\": 1793491200}\n");
    out
}

fn gzip(input: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(input).unwrap();
    gz.finish().unwrap()
}

/// Buildbot REST API v2 responses merged into one object: builders, workers, build
/// requests, builds with `property=*`, and steps.
fn buildbot_rest(n: usize) -> Vec<u8> {
    let jobs = demo_jobs(n);
    let mut builders = BTreeMap::new();
    let mut workers = BTreeMap::new();
    let (mut builds, mut requests, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    for (i, j) in jobs.iter().enumerate() {
        let builderid = index_of(&mut builders, &j.builder, 1);
        let workerid = j.worker.as_ref().map(|w| index_of(&mut workers, w, 1));
        let buildid = 100_000 + i as i64;
        let brid = 500_000 + i as i64;
        requests.push(json!({
            "buildrequestid": brid, "builderid": builderid, "buildsetid": 300_000 + i, "claimed": j.started_at.is_some(),
            "claimed_at": secs(j.started_at), "claimed_by_masterid": 1, "complete": j.finished_at.is_some(),
            "complete_at": secs(j.finished_at), "priority": 0, "properties": null, "results": buildbot_code(j.result),
            "submitted_at": secs(j.requested_at), "waited_for": false,
        }));
        if j.started_at.is_none() {
            continue;
        }
        let rev = j.revision.clone().unwrap_or_default();
        builds.push(json!({
            "buildid": buildid, "number": i, "builderid": builderid, "buildrequestid": brid, "workerid": workerid,
            "masterid": 1, "started_at": secs(j.started_at), "complete": j.finished_at.is_some(),
            "complete_at": secs(j.finished_at), "results": buildbot_code(j.result),
            "state_string": if j.finished_at.is_some() { "build finished" } else { "building" },
            "properties": {
                "branch": [j.branch, "Build"], "got_revision": [rev, "Git"], "revision": [rev, "Build"],
                "project": [j.project, "Build"], "repository": ["https://git.example.org/buildscope.git", "Build"],
                "buildnumber": [i, "Build"], "workername": [j.worker, "Worker"], "scheduler": ["main-push", "Scheduler"],
                "builddir": [format!("/home/buildbot/workers/{}", j.worker.as_deref().unwrap_or("")), "Worker"],
                "owners": [["alice@example.org"], "Build"],
            },
        }));
        for (n, s) in j.steps.iter().enumerate() {
            steps.push(json!({
                "stepid": buildid * 10 + n as i64, "buildid": buildid, "number": n, "name": s.name,
                "started_at": secs(s.started_at), "complete": s.finished_at.is_some(), "complete_at": secs(s.finished_at),
                "results": s.result.map_or(Value::Null, buildbot_code), "state_string": s.name, "hidden": false, "urls": [],
            }));
        }
    }
    let builders: Vec<Value> = builders
        .iter()
        .map(|(name, id)| json!({"builderid": id, "name": name, "description": null, "masterids": [1], "tags": ["ci"]}))
        .collect();
    let workers: Vec<Value> = workers
        .iter()
        .map(|(name, id)| json!({
            "workerid": id, "name": name, "configured_on": [{"builderid": 1, "masterid": 1}], "connected_to": [{"masterid": 1}],
            "paused": false, "graceful": false, "workerinfo": {"admin": "ops <ops@example.org>", "host": name, "version": "3.11.1"},
        }))
        .collect();
    serde_json::to_vec(&json!({
        "builders": builders, "workers": workers, "buildrequests": requests, "builds": builds, "steps": steps,
        "meta": {"total": jobs.len()},
    }))
    .unwrap()
}

/// Jenkins `api/json?tree=allBuilds[...]` of one multibranch job.
fn jenkins(n: usize) -> Vec<u8> {
    let jobs = demo_jobs(n);
    let base = "https://ci.example.org/job/team/job/app/job/main/";
    let builds: Vec<Value> = jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| j.started_at.is_some())
        .map(|(i, j)| {
            let number = i + 1;
            let result = match j.result {
                JobResult::Success => json!("SUCCESS"),
                JobResult::Warnings => json!("UNSTABLE"),
                JobResult::Failure | JobResult::Exception => json!("FAILURE"),
                JobResult::Skipped => json!("NOT_BUILT"),
                JobResult::Cancelled | JobResult::Retry => json!("ABORTED"),
                JobResult::Running | JobResult::Pending => Value::Null,
            };
            let queue_ms = j.queue_ms().unwrap_or(0);
            json!({
                "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                "actions": [
                    {"_class": "hudson.model.CauseAction", "causes": [{"_class": "hudson.triggers.SCMTrigger$SCMTriggerCause", "shortDescription": "Started by an SCM change"}]},
                    {"_class": "jenkins.metrics.impl.TimeInQueueAction", "blockedDurationMillis": 0, "buildableDurationMillis": queue_ms, "queuingDurationMillis": queue_ms, "waitingDurationMillis": 0},
                    {"_class": "hudson.plugins.git.util.BuildData", "lastBuiltRevision": {"SHA1": j.revision, "branch": [{"SHA1": j.revision, "name": format!("refs/remotes/origin/{}", j.branch.as_deref().unwrap_or("main"))}]}},
                    {},
                ],
                "building": j.finished_at.is_none(),
                "duration": j.duration_ms().unwrap_or(0),
                "estimatedDuration": 93000,
                "fullDisplayName": format!("team \u{bb} app \u{bb} main #{number}"),
                "id": number.to_string(),
                "number": number,
                "queueId": 4000 + i,
                "result": result,
                "timestamp": j.started_at.map(|t| t.as_millis()),
                "url": format!("{base}{number}/"),
                "builtOn": j.worker,
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": "main", "fullName": "team/app/main",
        "url": base, "allBuilds": builds,
    }))
    .unwrap()
}

fn conclusion(r: JobResult) -> Value {
    match r {
        JobResult::Success | JobResult::Warnings => json!("success"),
        JobResult::Failure => json!("failure"),
        JobResult::Exception => json!("failure"),
        JobResult::Skipped => json!("skipped"),
        JobResult::Retry | JobResult::Cancelled => json!("cancelled"),
        JobResult::Running | JobResult::Pending => Value::Null,
    }
}

fn status(r: JobResult) -> &'static str {
    match r {
        JobResult::Pending => "queued",
        JobResult::Running => "in_progress",
        _ => "completed",
    }
}

/// GitHub Actions: saved pages of `/actions/runs/{id}/jobs`, 100 jobs a page.
fn github(n: usize) -> Vec<u8> {
    let jobs = demo_jobs(n);
    let pages: Vec<Value> = jobs
        .chunks(100)
        .enumerate()
        .map(|(p, chunk)| {
            let list: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(k, j)| {
                    let i = p * 100 + k;
                    let id = 21_000_000_000i64 + i as i64;
                    let run = 9_100_000_000i64 + (i / 8) as i64;
                    let steps: Vec<Value> = j
                        .steps
                        .iter()
                        .enumerate()
                        .map(|(n, s)| json!({
                            "name": s.name, "status": if s.finished_at.is_some() { "completed" } else { "in_progress" },
                            "conclusion": s.result.map_or(Value::Null, conclusion), "number": n + 1,
                            "started_at": rfc3339(s.started_at), "completed_at": rfc3339(s.finished_at),
                        }))
                        .collect();
                    json!({
                        "id": id, "run_id": run, "workflow_name": "CI", "head_branch": j.branch,
                        "run_url": format!("https://api.github.com/repos/octo-org/buildscope/actions/runs/{run}"),
                        "run_attempt": 1, "node_id": format!("CR_kwDOABCD{id}"), "head_sha": j.revision,
                        "url": format!("https://api.github.com/repos/octo-org/buildscope/actions/jobs/{id}"),
                        "html_url": format!("https://github.com/octo-org/buildscope/actions/runs/{run}/job/{id}"),
                        "status": status(j.result), "conclusion": conclusion(j.result),
                        "created_at": rfc3339(j.requested_at), "started_at": rfc3339(j.started_at),
                        "completed_at": rfc3339(j.finished_at), "name": j.builder, "steps": steps,
                        "check_run_url": format!("https://api.github.com/repos/octo-org/buildscope/check-runs/{id}"),
                        "labels": [j.tags.get("platform").map_or("ubuntu-latest", String::as_str)],
                        "runner_id": 12, "runner_name": j.worker, "runner_group_id": 1, "runner_group_name": "Default",
                    })
                })
                .collect();
            json!({"total_count": jobs.len(), "jobs": list})
        })
        .collect();
    serde_json::to_vec(&pages).unwrap()
}

/// GitLab: saved pages of `/projects/:id/jobs`, 100 jobs a page.
fn gitlab(n: usize) -> Vec<u8> {
    let jobs = demo_jobs(n);
    let pages: Vec<Value> = jobs
        .chunks(100)
        .enumerate()
        .map(|(p, chunk)| {
            let list: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(k, j)| {
                    let i = p * 100 + k;
                    let status = match j.result {
                        JobResult::Success | JobResult::Warnings => "success",
                        JobResult::Failure | JobResult::Exception => "failed",
                        JobResult::Skipped => "skipped",
                        JobResult::Retry | JobResult::Cancelled => "canceled",
                        JobResult::Running => "running",
                        JobResult::Pending => "pending",
                    };
                    let rfc_gl = |t: Option<common::Timestamp>| t.map_or(Value::Null, |t| json!(t.to_rfc3339()));
                    json!({
                        "commit": {"author_email": "dev@example.com", "author_name": "Dev", "created_at": rfc_gl(j.requested_at),
                                   "id": j.revision, "message": "Speed up the API", "short_id": j.revision, "title": "Speed up the API"},
                        "coverage": null, "archived": false, "allow_failure": j.result == JobResult::Warnings,
                        "created_at": rfc_gl(j.requested_at), "started_at": rfc_gl(j.started_at), "finished_at": rfc_gl(j.finished_at),
                        "erased_at": null, "duration": j.duration_ms().map(|ms| ms as f64 / 1000.0),
                        "queued_duration": j.queue_ms().map(|ms| ms as f64 / 1000.0), "artifacts_file": null, "artifacts": [],
                        "artifacts_expire_at": null, "tag_list": ["docker", "linux"], "id": 8000 + i, "name": j.builder,
                        "pipeline": {"id": 6000 + i / 10, "project_id": 42, "ref": j.branch, "sha": j.revision, "status": "running"},
                        "ref": j.branch,
                        "runner": j.worker.as_ref().map(|w| json!({"id": 1, "description": w, "ip_address": null, "active": true,
                            "paused": false, "is_shared": true, "runner_type": "instance_type", "name": "gitlab-runner", "online": true, "status": "online"})),
                        "runner_manager": null, "stage": j.steps.first().map_or("build", |s| s.name.as_str()), "status": status,
                        "failure_reason": if status == "failed" { json!("script_failure") } else { Value::Null },
                        "tag": false, "web_url": format!("https://gitlab.example.com/acme/platform/api/-/jobs/{}", 8000 + i),
                        "project": {"ci_job_token_scope_enabled": false},
                        "user": {"id": 7, "username": "dev", "name": "Dev", "state": "active"},
                    })
                })
                .collect();
            Value::Array(list)
        })
        .collect();
    serde_json::to_vec(&pages).unwrap()
}

/// One Surefire-style JUnit report of `cases` test cases in suites of 50: mostly passes,
/// some failures with a stack trace, skips and captured output.
fn junit(cases: usize) -> Vec<u8> {
    let mut out = String::with_capacity(cases * 250);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"all\">\n");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for s in 0..cases.div_ceil(50) {
        let suite = format!("com.example.module{}.Feature{}Test", s % 37, s);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{suite}\" time=\"{:.3}\" tests=\"50\" errors=\"0\" skipped=\"0\" failures=\"0\" timestamp=\"2026-10-31T12:00:00\" hostname=\"linux-worker-07\">",
            (next() % 100_000) as f64 / 1000.0
        );
        out.push_str("    <properties>\n      <property name=\"java.version\" value=\"17.0.9\"/>\n      <property name=\"os.name\" value=\"Linux\"/>\n    </properties>\n");
        for c in 0..50.min(cases - s * 50) {
            let time = (next() % 5_000) as f64 / 1000.0;
            let _ = write!(
                out,
                "    <testcase name=\"test{c}_handlesCase{}\" classname=\"{suite}\" time=\"{time:.3}\"",
                next() % 1000
            );
            match next() % 100 {
                0..=2 => {
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"expected: &lt;{c}&gt; but was: &lt;{}&gt;\" type=\"org.opentest4j.AssertionFailedError\"><![CDATA[org.opentest4j.AssertionFailedError: expected: <{c}> but was: <{}>\n\tat org.junit.jupiter.api.AssertionUtils.fail(AssertionUtils.java:55)\n\tat {suite}.test{c}(Feature{s}Test.java:{})\n]]></failure>\n    </testcase>\n",
                        c + 1,
                        c + 1,
                        next() % 400
                    );
                }
                3..=4 => {
                    out.push_str(">\n      <skipped message=\"@Disabled: flaky on CI\"/>\n    </testcase>\n")
                }
                5..=9 => {
                    let _ = write!(
                        out,
                        ">\n      <system-out><![CDATA[setup done in {} ms\nconnection pool: 8 idle\n]]></system-out>\n    </testcase>\n",
                        next() % 300
                    );
                }
                _ => out.push_str("/>\n"),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out.into_bytes()
}

/// A tar of a Yocto `buildstats/` tree: `builds` builds of `recipes` recipes, each with
/// the usual task files.
fn buildstats_tar(builds: usize, recipes: usize) -> Vec<u8> {
    const TASKS: [&str; 8] = [
        "do_fetch",
        "do_unpack",
        "do_patch",
        "do_configure",
        "do_compile",
        "do_install",
        "do_package",
        "do_populate_sysroot",
    ];
    let mut tar = tar::Builder::new(Vec::new());
    let add = |tar: &mut tar::Builder<Vec<u8>>, path: &str, body: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_709_294_400);
        header.set_cksum();
        tar.append_data(&mut header, path, body.as_bytes()).unwrap();
    };
    for b in 0..builds {
        let start = 1_790_000_000 + b as i64 * 86_400;
        let dir = format!("buildstats/20260912{:02}0000", b);
        let mut t = start as f64;
        for r in 0..recipes {
            let recipe = format!("recipe{r}-{}.{}-r0", 1 + r % 5, r % 17);
            let tasks: &[&str] = if r == 0 { &["do_rootfs", "do_image_complete"] } else { &TASKS };
            for task in tasks {
                let elapsed = 0.5 + ((r * 31 + task.len() * 7) % 400) as f64 / 3.0;
                let body = format!(
                    "Event: TaskStarted \nStarted: {t:.2} \n{recipe}: {task}\nElapsed time: {elapsed:.2} seconds\n\
                     utime: 12\nstime: 3\ncutime: 900\ncstime: 120\nIO rchar: 8812331\nIO wchar: 1203311\nIO syscr: 4410\nIO syscw: 1200\n\
                     IO read_bytes: {}\nIO write_bytes: {}\nIO cancelled_write_bytes: 0\n\
                     rusage ru_utime: 0.95\nrusage ru_stime: 0.30\nrusage ru_maxrss: 61440\nrusage ru_minflt: 15530\nrusage ru_majflt: 2\n\
                     rusage ru_inblock: 2048\nrusage ru_oublock: 102400\nrusage ru_nvcsw: 412\nrusage ru_nivcsw: 88\n\
                     Child rusage ru_utime: {:.2}\nChild rusage ru_stime: 31.25\nChild rusage ru_maxrss: 184320\nChild rusage ru_minflt: 995310\n\
                     Child rusage ru_majflt: 0\nChild rusage ru_inblock: 0\nChild rusage ru_oublock: 2048\nChild rusage ru_nvcsw: 11250\n\
                     Child rusage ru_nivcsw: 3301\nStatus: PASSED \nEnded: {:.2} \n",
                    r * 4096,
                    r * 65536,
                    elapsed * 0.8,
                    t + elapsed
                );
                add(&mut tar, &format!("{dir}/{recipe}/{task}"), &body);
                t += elapsed / 4.0;
            }
        }
        let build_stats = format!(
            "Host Info: Linux yocto-builder-2 6.8.0-45-generic #45-Ubuntu SMP PREEMPT_DYNAMIC x86_64 x86_64 \n\
             Build Started: {start}.25 \nBB_VERSION           = \"2.8.0\"\nBUILD_SYS            = \"x86_64-linux\"\n\
             NATIVELSBSTRING      = \"ubuntu-24.04\"\nTARGET_SYS           = \"x86_64-poky-linux\"\nMACHINE              = \"qemux86-64\"\n\
             DISTRO               = \"poky\"\nDISTRO_VERSION       = \"5.0.2\"\nTUNE_FEATURES        = \"m64 core2\"\nTARGET_FPU           = \"\"\n\
             meta                 \nmeta-poky            \nmeta-yocto-bsp       = \"scarthgap:1f2e3d4c5b6a79880796a5b4c3d2e1f0a9b8c7d6\"\n\
             Uncompressed Rootfs size: 23M\t/srv/build/tmp/work/qemux86_64-poky-linux/core-image-minimal/1.0/rootfs\n\
             Elapsed time: {:.2} seconds \nCPU usage: 81.3% \n",
            t - start as f64
        );
        add(&mut tar, &format!("{dir}/build_stats"), &build_stats);
    }
    tar.into_inner().unwrap()
}

/// InfluxDB line protocol as a farm sends it: Buildbot's statistics service (per build and
/// per step, linked to the build by `builder_name`/`build_number`) and host metrics from a
/// telegraf-like collector, nanosecond timestamps.
fn line_protocol(n: usize) -> Vec<u8> {
    line_protocol_of(&demo_jobs(n))
}

/// Part `part` of a larger farm's line protocol: the same jobs shifted `part` × 30
/// days later, so parts written one after another make one long, time-ordered input
/// without holding it all in memory.
fn line_protocol_part(n: usize, part: usize) -> Vec<u8> {
    let shift = part as i64 * 30 * 86_400_000;
    let mut jobs = demo_jobs(n);
    for j in &mut jobs {
        for t in [&mut j.requested_at, &mut j.started_at, &mut j.finished_at] {
            *t = t.map(|t| common::Timestamp::from_millis(t.as_millis() + shift));
        }
        for s in &mut j.steps {
            for t in [&mut s.started_at, &mut s.finished_at] {
                *t = t.map(|t| common::Timestamp::from_millis(t.as_millis() + shift));
            }
        }
        j.id = format!("{part}{:06}", j.id.parse::<u64>().unwrap_or(0));
    }
    line_protocol_of(&jobs)
}

fn line_protocol_of(jobs: &[Job]) -> Vec<u8> {
    let n = jobs.len();
    let mut out = String::with_capacity(n * 800);
    for j in jobs {
        let (Some(start), Some(end)) = (j.started_at, j.finished_at) else { continue };
        let ns = end.as_millis() * 1_000_000;
        let b = &j.builder;
        let id = &j.id;
        let _ = writeln!(
            out,
            "{b}-build-times,builder_name={b},build_number={id} duration={:.1} {ns}",
            (end.as_millis() - start.as_millis()) as f64 / 1000.0
        );
        if let Some(size) = j.metrics.get(common::demo::BUILD_SIZE_METRIC) {
            let _ = writeln!(
                out,
                "{b}-build-size,builder_name={b},build_number={id} name=\"build-size\",value={size}i {ns}"
            );
        }
        for s in &j.steps {
            if let (Some(a), Some(z)) = (s.started_at, s.finished_at) {
                let _ = writeln!(
                    out,
                    "steps,builder_name={b},build_number={id},step={} duration={:.3} {}",
                    s.name,
                    (z.as_millis() - a.as_millis()) as f64 / 1000.0,
                    z.as_millis() * 1_000_000
                );
            }
        }
        if let Some(w) = &j.worker {
            let seed = end.as_millis() as u64;
            let _ = writeln!(
                out,
                "cpu,host={w},cpu=cpu-total usage_user={:.2},usage_system={:.2},usage_idle={:.2} {ns}",
                (seed % 7000) as f64 / 100.0,
                (seed % 1500) as f64 / 100.0,
                100.0 - (seed % 8500) as f64 / 100.0
            );
            let _ = writeln!(
                out,
                "disk,host={w},path=/srv/build used_bytes={}u,inodes_free={}i,readonly=false {ns}",
                400_000_000_000u64 + seed % 1_000_000_000,
                3_211_264 + seed % 1000
            );
            let _ = writeln!(
                out,
                "ccache,host={w},project={} hit\\ rate={:.3},misses={}i {ns}",
                j.project.as_deref().unwrap_or("none"),
                (seed % 1000) as f64 / 1000.0,
                seed % 5000
            );
        }
    }
    out.into_bytes()
}

fn csv(n: usize) -> Vec<u8> {
    common::export::jobs_csv(&demo_jobs(n))
}
