//! Test results and metric samples for the demo farm's jobs, derived from the jobs alone so
//! any batch of them can be extended on its own, deterministically, on every platform.
//!
//! **Tests.** Test builders (a job with a `test`, `e2e-tests` or `testimage` step) run their
//! project's catalog: core unit tests (288 in 8 suites), web unit tests (200), browser e2e
//! tests (100) and Yocto `oeqa.runtime` image tests (80). Unit and e2e catalogs are split
//! into shards and a job runs the shard its (builder, revision) hashes to, so a retrigger of
//! a revision runs the same tests again. Jobs that finished as success or warnings pass every
//! test (a few are skipped on some builders); a failed job fails one test (now and then as an
//! error). Which one:
//! - on the demo's flaky builders and the macOS test builders, most failures are one
//!   planted intermittent test of that builder ([`PLANTED`]); the flaky builders' failures
//!   are retriggered and pass on the same revision, so these tests both flip often and pass
//!   and fail on one revision;
//! - otherwise the failing test is picked by the (builder, revision) hash: a regression on
//!   that revision, stable if the revision is rerun.
//!
//! Only jobs from [`ExtrasConfig::tests_since_ms`] on get test results (the demo keeps a
//! week), which keeps a 200,000-job farm near a million results
//! (1.2 million with the default demo).
//!
//! **Samples.** Every numeric job metric becomes a sample of the same name at the job's
//! finish (`build_size_bytes`, unit bytes), and every job with test results gives
//! [`TEST_RUNTIME_METRIC`] (the sum of its tests' durations, seconds), both tagged with the
//! builder and its platform (or machine).
//!
//! Only integer hashing (SplitMix64 over FNV-1a) decides anything: no floating-point
//! function whose last bit could differ between wasm32 and native.

use std::collections::BTreeMap;

use crate::job::{Job, JobResult};
use crate::records::{JobKey, MetricSample, TestOutcome, TestResult};

/// Total duration of a job's test results, in seconds.
pub const TEST_RUNTIME_METRIC: &str = "test_runtime_seconds";

/// Days of test results the demo keeps, counted back from the end of its period.
pub const TEST_DAYS: i64 = 7;

/// Which tests fail intermittently where: (builder-name fragment, catalog, test index, share
/// of the builder's failed jobs that fail this test, in per mille). A planted test runs in
/// every shard of its builder. The first three are on the demo farm's flaky builders, whose
/// failures are all this test's.
pub const PLANTED: [(&str, Catalog, usize, u64); 6] = [
    // Data race in the scheduler's shutdown path, seen only under ThreadSanitizer.
    ("linux64-tsan-test", Catalog::Core, 4 * 36 + 7, 1000),
    // A payment-form race in Firefox.
    ("e2e-firefox", Catalog::E2e, 3, 1000),
    // SSH into the freshly booted qemuarm64 image sometimes times out.
    ("qemuarm64-testimage", Catalog::Image, 0, 1000),
    // Timer slack on macOS: a sleep-precision test fails when the machine is busy.
    ("mac64-test", Catalog::Core, 7 * 36 + 2, 800),
    ("mac-arm64-test", Catalog::Core, 7 * 36 + 2, 800),
    // A UI test that depends on animation timing.
    ("web-linux64-test", Catalog::Web, 2 * 40 + 5, 900),
];

/// When the demo's test results start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtrasConfig {
    /// Jobs at or after this time (epoch ms) get test results.
    pub tests_since_ms: i64,
}

impl ExtrasConfig {
    /// The last [`TEST_DAYS`] of a demo period ending at `end_ms`.
    pub fn last_week(end_ms: i64) -> ExtrasConfig {
        ExtrasConfig { tests_since_ms: end_ms - TEST_DAYS * 86_400_000 }
    }
}

/// What [`extras`] derives from a batch of jobs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    pub tests: Vec<TestResult>,
    pub samples: Vec<MetricSample>,
}

/// A test catalog: which tests a kind of test job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Catalog {
    /// The core project's unit tests.
    Core,
    /// The web project's unit tests.
    Web,
    /// Browser end-to-end tests.
    E2e,
    /// Yocto runtime tests of a booted image.
    Image,
}

impl Catalog {
    /// Suites, tests per suite, shards.
    fn shape(self) -> (&'static [&'static str], usize, usize) {
        match self {
            Catalog::Core => (
                &[
                    "core.alloc",
                    "core.io",
                    "core.net",
                    "core.parser",
                    "core.sched",
                    "core.crypto",
                    "core.fs",
                    "core.time",
                ],
                36,
                6,
            ),
            Catalog::Web => (&["web.api", "web.auth", "web.ui", "web.forms", "web.router"], 40, 3),
            Catalog::E2e => (&["e2e.checkout", "e2e.login", "e2e.search", "e2e.admin"], 25, 2),
            Catalog::Image => (
                &[
                    "oeqa.runtime.cases.ssh",
                    "oeqa.runtime.cases.ping",
                    "oeqa.runtime.cases.systemd",
                    "oeqa.runtime.cases.opkg",
                    "oeqa.runtime.cases.python",
                    "oeqa.runtime.cases.gcc",
                    "oeqa.runtime.cases.kernelmodule",
                    "oeqa.runtime.cases.date",
                ],
                10,
                1,
            ),
        }
    }

    fn len(self) -> usize {
        let (suites, per, _) = self.shape();
        suites.len() * per
    }

    /// Suite and name of test `i`.
    pub fn test(self, i: usize) -> (&'static str, String) {
        const VERBS: [&str; 9] =
            ["parse", "open", "close", "retry", "reject", "accept", "flush", "resume", "handle"];
        const NOUNS: [&str; 10] = [
            "empty_input",
            "large_input",
            "timeout",
            "unicode",
            "shutdown",
            "reconnect",
            "limits",
            "defaults",
            "nested",
            "concurrent",
        ];
        let (suites, per, _) = self.shape();
        let (suite, k) = (suites[i / per], i % per);
        // (k mod 9, k div 9) differ for every k < 90; the suite's offset varies the nouns.
        let offset = i / per;
        let name = match self {
            Catalog::Image => format!("test_{}_{}", suite.rsplit('.').next().unwrap_or(suite), NOUNS[k % 10]),
            _ => format!("test_{}_{}", VERBS[k % 9], NOUNS[(k / 9 * 2 + offset) % 10]),
        };
        (suite, name)
    }

    /// The catalog a job runs, from its project and steps.
    fn of(job: &Job) -> Option<Catalog> {
        let has = |name: &str| job.steps.iter().any(|s| s.name == name);
        if has("testimage") {
            Some(Catalog::Image)
        } else if has("e2e-tests") {
            Some(Catalog::E2e)
        } else if has("test") {
            match job.project.as_deref() {
                Some("web") => Some(Catalog::Web),
                _ => Some(Catalog::Core),
            }
        } else {
            None
        }
    }
}

/// Test results and samples of `jobs` (any batch of demo jobs).
pub fn extras(jobs: &[Job], config: &ExtrasConfig) -> Extras {
    let mut out = Extras::default();
    for job in jobs {
        let runtime_ms = tests_of(job, config, &mut out.tests);
        samples_of(job, runtime_ms, &mut out.samples);
    }
    out
}

/// Appends the job's test results; returns their total duration in ms when it has any.
fn tests_of(job: &Job, config: &ExtrasConfig, out: &mut Vec<TestResult>) -> Option<i64> {
    let catalog = Catalog::of(job)?;
    let time = job.time()?.as_millis();
    let failed = match job.result {
        JobResult::Success | JobResult::Warnings => false,
        JobResult::Failure => true,
        _ => return None,
    };
    if time < config.tests_since_ms || job.finished_at.is_none() {
        return None;
    }
    let builder = hash_str(&job.builder);
    let revision = hash_str(job.revision.as_deref().unwrap_or(&job.id));
    let run = mix(builder ^ mix(revision));
    let (_, _, shards) = catalog.shape();
    let shard = (run % shards as u64) as usize;
    let planted = PLANTED.iter().find(|(fragment, c, _, _)| *c == catalog && job.builder.contains(fragment));
    let in_shard = |i: usize| i % shards == shard || planted.is_some_and(|p| p.2 == i);
    let skipped = |i: usize| mix(builder ^ (i as u64).wrapping_mul(0x9e37)).is_multiple_of(40);

    // The one test a failed job fails.
    let failing = failed.then(|| {
        let job_draw = mix(hash_str(&job.id) ^ builder);
        match planted {
            Some(&(_, _, i, per_mille)) if job_draw % 1000 < per_mille && !skipped(i) => i,
            _ => {
                let candidates: Vec<usize> =
                    (0..catalog.len()).filter(|&i| in_shard(i) && !skipped(i)).collect();
                candidates[(mix(run ^ 0x5eed) % candidates.len() as u64) as usize]
            }
        }
    });

    let key = JobKey { source: job.source.clone(), id: job.id.clone() };
    let mut total = 0;
    for i in (0..catalog.len()).filter(|&i| in_shard(i)) {
        let (suite, name) = catalog.test(i);
        let base_ms = match catalog {
            Catalog::Core | Catalog::Web => 5 + mix(i as u64 ^ 0xc0de) % 900,
            Catalog::E2e => 2_000 + mix(i as u64 ^ 0xe2e) % 20_000,
            Catalog::Image => 500 + mix(i as u64 ^ 0x1a6e) % 40_000,
        } as i64;
        let jitter = (mix(hash_str(&job.id) ^ i as u64) % 300) as i64;
        let (outcome, duration_ms, message) = if skipped(i) {
            (TestOutcome::Skipped, None, Some("skipped on this platform".to_owned()))
        } else if failing == Some(i) {
            let error = mix(run ^ 0xe770).is_multiple_of(6);
            let (outcome, message) = if error {
                (TestOutcome::Error, "fixture setup failed: connection refused")
            } else {
                (TestOutcome::Failed, "assertion failed: expected Ok(..), got Err(Timeout)")
            };
            (outcome, Some(base_ms * 3 + base_ms * jitter / 1000), Some(message.to_owned()))
        } else {
            (TestOutcome::Passed, Some(base_ms + base_ms * jitter / 1000), None)
        };
        total += duration_ms.unwrap_or(0);
        out.push(TestResult {
            job: key.clone(),
            suite: suite.to_owned(),
            name,
            outcome,
            duration_ms,
            message,
        });
    }
    Some(total)
}

fn samples_of(job: &Job, test_runtime_ms: Option<i64>, out: &mut Vec<MetricSample>) {
    let Some(time) = job.finished_at.or(job.time()) else { return };
    let mut tags = BTreeMap::from([("builder".to_owned(), job.builder.clone())]);
    if let Some(platform) = job.tags.get("MACHINE").or(job.tags.get("platform")) {
        tags.insert("platform".to_owned(), platform.clone());
    }
    let key = JobKey { source: job.source.clone(), id: job.id.clone() };
    let mut push = |name: &str, value: f64, unit: &str| {
        out.push(MetricSample {
            name: name.to_owned(),
            value,
            unit: Some(unit.to_owned()),
            time,
            tags: tags.clone(),
            job: Some(key.clone()),
        })
    };
    for (name, &value) in &job.metrics {
        let unit = if name.ends_with("_bytes") { "bytes" } else { "" };
        push(name, value, unit);
    }
    if let Some(ms) = test_runtime_ms {
        push(TEST_RUNTIME_METRIC, ms as f64 / 1000.0, "s");
    }
}

/// FNV-1a of a string.
fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64's finaliser: a well-mixed 64-bit value of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;
    use crate::demo::{DemoConfig, DemoFarm};
    use crate::flaky::{FlakyConfig, test_stats};
    use crate::reports::TestTableBuilder;

    fn farm(jobs: usize) -> (Vec<Job>, ExtrasConfig) {
        let config = DemoConfig { jobs, days: 14, ..DemoConfig::default() };
        (DemoFarm::new(config).collect(), ExtrasConfig::last_week(config.end_ms))
    }

    #[test]
    fn catalogs_have_unique_names() {
        for c in [Catalog::Core, Catalog::Web, Catalog::E2e, Catalog::Image] {
            let names: HashSet<(&str, String)> = (0..c.len()).map(|i| c.test(i)).collect();
            assert_eq!(names.len(), c.len(), "{c:?}");
        }
        assert_eq!(Catalog::Core.test(4 * 36 + 7).0, "core.sched");
        assert_eq!(Catalog::Core.test(7 * 36 + 2).0, "core.time");
    }

    #[test]
    fn deterministic_and_batch_independent() {
        let (jobs, config) = farm(6_000);
        let whole = extras(&jobs, &config);
        let mut parts = Extras::default();
        for chunk in jobs.chunks(777) {
            let e = extras(chunk, &config);
            parts.tests.extend(e.tests);
            parts.samples.extend(e.samples);
        }
        assert_eq!(whole, parts);
        assert!(!whole.tests.is_empty() && !whole.samples.is_empty());
    }

    #[test]
    fn results_agree_with_their_jobs() {
        let (jobs, config) = farm(20_000);
        let e = extras(&jobs, &config);
        let by_key: BTreeMap<(&str, &str), &Job> = jobs.iter().map(|j| ((&*j.source, &*j.id), j)).collect();
        let mut failed_tests: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for t in &e.tests {
            let job = by_key[&(&*t.job.source, &*t.job.id)];
            assert!(job.time().unwrap().as_millis() >= config.tests_since_ms);
            let failed = matches!(t.outcome, TestOutcome::Failed | TestOutcome::Error);
            *failed_tests.entry((&job.source, &job.id)).or_default() += usize::from(failed);
        }
        // Exactly the failed jobs fail exactly one test.
        for (&(source, id), &n) in &failed_tests {
            let job = by_key[&(source, id)];
            assert_eq!(n, usize::from(job.result == JobResult::Failure), "{source}/{id}");
        }
        let names: BTreeSet<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(TEST_RUNTIME_METRIC) && names.contains("build_size_bytes"), "{names:?}");
    }

    #[test]
    fn planted_tests_are_the_intermittent_ones() {
        let (jobs, config) = farm(40_000);
        let e = extras(&jobs, &config);
        let by_key: BTreeMap<(&str, &str), &Job> = jobs.iter().map(|j| ((&*j.source, &*j.id), j)).collect();
        let mut b = TestTableBuilder::default();
        let mut last = None;
        let mut sorted: Vec<&TestResult> = e.tests.iter().collect();
        sorted.sort_by_key(|t| by_key[&(&*t.job.source, &*t.job.id)].time());
        for t in sorted {
            if last != Some(&t.job) {
                let j = by_key[&(&*t.job.source, &*t.job.id)];
                let time = j.time().unwrap().as_millis();
                b.push_job(&j.source, &j.id, time, &j.builder, j.worker.as_deref(), j.revision.as_deref());
                last = Some(&t.job);
            }
            b.push_result(&t.suite, &t.name, t.outcome, t.duration_ms);
        }
        let table = b.finish();
        let stats = test_stats(&table, &FlakyConfig::default());
        let intermittent: Vec<&str> =
            stats.iter().filter(|s| s.intermittent).map(|s| s.id.as_str()).collect();
        let planted: BTreeSet<String> = PLANTED
            .iter()
            .map(|&(_, c, i, _)| {
                let (suite, name) = c.test(i);
                crate::reports::test_id(suite, &name)
            })
            .collect();
        for p in &planted {
            assert!(intermittent.contains(&p.as_str()), "{p} not in {intermittent:?}");
        }
        assert!(intermittent.len() <= 12, "{} intermittent: {intermittent:?}", intermittent.len());
        // The planted ones flip most.
        for s in &stats[..planted.len()] {
            assert!(planted.contains(&s.id), "{} ranks above the planted tests", s.id);
        }
    }
}
