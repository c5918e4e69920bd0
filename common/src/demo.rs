//! The deterministic demo farm: what the run command shows a newcomer, and the data set for
//! tests and benchmarks.
//!
//! A seeded simulation of a believable CI farm: three projects, ~40 builders and a pool of
//! workers per platform. Pushes arrive mostly on weekday mornings (UTC); each push requests
//! a job on every builder of its project; jobs wait first-in first-out for the earliest free
//! worker of their pool, so queue waits emerge from the load instead of being drawn. A few
//! planted stories give the explorer something to find: one builder slowly gets slower
//! ([`DemoFarm::drifting_builder`]), one worker fails several times as often as its peers
//! ([`DemoFarm::rogue_worker`]), and a few flaky builders fail and then pass when the same
//! revision is retriggered.
//!
//! Jobs stream in `requested_at` order and only about an hour of requests is held at a time,
//! so millions of jobs need no more memory than thousands.
//!
//! Same config, same jobs, on every platform: one `Pcg64Mcg` is drawn from in a fixed order
//! and all arithmetic is IEEE-exact (`+ − × ÷ sqrt`, rounding). That is why `exp` and `ln`
//! are written out (module `math` below) rather than taken from `rand_distr`, whose
//! log-normal and exponential samplers call std's, which come from the platform's libm and
//! may round the last bit differently on wasm32 than on Linux.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::job::{Job, JobResult, Step};
use crate::time::Timestamp;

/// 2026-11-01T00:00:00Z, the end of the default period.
pub const DEFAULT_END_MS: i64 = 1_793_491_200_000;

/// The name of the metric build builders report on success: the size of what they built.
pub const BUILD_SIZE_METRIC: &str = "build_size_bytes";

/// What to generate. The default is the farm a newcomer sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoConfig {
    /// Seed of the one random stream everything is drawn from.
    pub seed: u64,
    /// Exactly how many jobs the farm yields.
    pub jobs: usize,
    /// End of the simulated period, UTC epoch ms, rounded down to the second. Jobs requested
    /// in the last hour or so are still running or pending at this instant.
    pub end_ms: i64,
    /// Length of the simulated period in days; 0 counts as 1.
    pub days: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { seed: 42, jobs: 200_000, end_ms: DEFAULT_END_MS, days: 30 }
    }
}

/// A simulated farm that yields exactly `config.jobs` jobs in `requested_at` order.
///
/// Creating one is cheap; the jobs are simulated as they are pulled.
pub struct DemoFarm {
    config: DemoConfig,
    rng: Pcg64Mcg,
    start_s: i64,
    end_s: i64,
    builder_names: Vec<String>,
    builders: Vec<Builder>,
    /// Builder indices of each project, in table order: the order a push requests them in.
    by_project: [Vec<usize>; 3],
    branches: Vec<Branch>,
    worker_names: Vec<String>,
    worker_speed: Vec<f64>,
    rogue: usize,
    drifting: usize,
    /// Per pool, (free at, worker index) of every worker, earliest free first.
    pools: Vec<BinaryHeap<Reverse<(i64, usize)>>>,
    slots: Vec<Slot>,
    next_slot: usize,
    /// Requests of the current slot's pushes, in time order.
    pushed: VecDeque<Request>,
    /// Retriggers of flaky failures, by (requested at, sequence number).
    retriggers: BinaryHeap<Reverse<(i64, u64, Request)>>,
    retrigger_seq: u64,
    next_id: [u64; SOURCES.len()],
    emitted: usize,
}

impl DemoFarm {
    /// Lays out the farm (builders, workers, branches, how many jobs each hour requests);
    /// no job is simulated yet.
    pub fn new(config: DemoConfig) -> DemoFarm {
        let config = DemoConfig { days: config.days.max(1), ..config };
        let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
        let end_s = config.end_ms.div_euclid(1000);
        let start_s = end_s - i64::from(config.days) * DAY_S;

        let mut builder_names = Vec::new();
        let mut builders = Vec::new();
        let mut by_project: [Vec<usize>; 3] = Default::default();
        for group in GROUPS {
            for &(suffix, kind, minutes) in group.builders {
                let name = format!("{}-{}-{suffix}", group.project.name(), group.target);
                by_project[group.project as usize].push(builders.len());
                builders.push(Builder::new(&name, group, suffix, kind, minutes, &mut rng));
                builder_names.push(name);
            }
        }
        let drift_candidates: Vec<usize> = (0..builders.len())
            .filter(|&b| builders[b].project != Project::Firmware)
            .filter(|&b| matches!(builders[b].kind, Kind::Build | Kind::Test))
            .collect();
        let drifting = drift_candidates[rng.random_range(0..drift_candidates.len() as u32) as usize];

        let (slots, rate_hours) = schedule(&mut rng, start_s, end_s, config.jobs);
        let sizes = pool_sizes(&builders, &by_project, config.jobs as f64 / rate_hours);
        let mut worker_names = Vec::new();
        let mut worker_speed = Vec::new();
        let mut pools = Vec::new();
        for (pool, &size) in Pool::ALL.iter().zip(&sizes) {
            let width = pool.digits().max(size.to_string().len());
            let mut free = BinaryHeap::new();
            for n in 1..=size {
                free.push(Reverse((start_s, worker_names.len())));
                worker_names.push(format!("{}-worker-{n:0width$}", pool.name()));
                // Hardware generations differ a little in speed.
                worker_speed.push(0.92 + 0.2 * rng.random::<f64>());
            }
            pools.push(free);
        }
        // Linux is the first and largest pool, so its workers are the first indices.
        let linux = sizes[Pool::Linux as usize];
        let rogue = rng.random_range(0..linux as u32) as usize;

        let branches = branches(&mut rng, start_s, end_s);
        let next_id = [rng.random_range(90_000..120_000), rng.random_range(2_000..9_000)];
        DemoFarm {
            config,
            rng,
            start_s,
            end_s,
            builder_names,
            builders,
            by_project,
            branches,
            worker_names,
            worker_speed,
            rogue,
            drifting,
            pools,
            slots,
            next_slot: 0,
            pushed: VecDeque::new(),
            retriggers: BinaryHeap::new(),
            retrigger_seq: 0,
            next_id,
            emitted: 0,
        }
    }

    /// The configuration, with `days` at least 1.
    pub fn config(&self) -> &DemoConfig {
        &self.config
    }

    /// Every builder's name, grouped by project.
    pub fn builders(&self) -> &[String] {
        &self.builder_names
    }

    /// Every worker's name, grouped by pool. There are more when more jobs a day are asked
    /// for, so queues stay believable.
    pub fn workers(&self) -> &[String] {
        &self.worker_names
    }

    /// The worker that fails several times as often as its peers.
    pub fn rogue_worker(&self) -> &str {
        &self.worker_names[self.rogue]
    }

    /// The builder whose run time creeps up over the period.
    pub fn drifting_builder(&self) -> &str {
        &self.builder_names[self.drifting]
    }
}

impl Iterator for DemoFarm {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        if self.emitted >= self.config.jobs {
            return None;
        }
        let request = self.next_request()?;
        self.emitted += 1;
        Some(self.run(request))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.config.jobs - self.emitted;
        (left, Some(left))
    }
}

impl ExactSizeIterator for DemoFarm {}

impl std::iter::FusedIterator for DemoFarm {}

/// All jobs of the farm `config` describes, in `requested_at` order.
pub fn generate(config: DemoConfig) -> Vec<Job> {
    DemoFarm::new(config).collect()
}

const DAY_S: i64 = 86_400;
const HOUR_S: i64 = 3_600;

/// The CI instances: core and web build on Buildbot, firmware on Jenkins.
const SOURCES: [&str; 2] = ["buildbot-main", "jenkins-fw"];

/// How much more often jobs on the rogue worker fail or hit an exception.
const ROGUE_FACTOR: f64 = 5.0;
/// Extra failure probability of a flaky builder, on top of its kind's.
const FLAKY_EXTRA: f64 = 0.05;
/// Share of a flaky builder's failures that someone retriggers (and that then pass).
const RETRIGGERED: f64 = 0.75;
/// Builders with an intermittently failing test.
const FLAKY: [&str; 3] =
    ["core-linux64-tsan-test", "web-linux64-e2e-firefox", "firmware-qemuarm64-testimage"];
/// How much slower the drifting builder is at the end of the period than at the start.
const DRIFT: f64 = 0.4;
/// How much build sizes grow over the period.
const SIZE_GROWTH: f64 = 0.12;
/// Pushes per hour at the weekday morning peak, relative to [`hourly_rate`]'s other hours.
const PEAK_RATE: f64 = 3.0;
/// Pools are sized so the weekday morning peak asks for this much more than they can run;
/// the queue it builds drains in the afternoon.
const PEAK_OVERLOAD: f64 = 1.15;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Project {
    Core,
    Web,
    Firmware,
}

impl Project {
    const ALL: [Project; 3] = [Project::Core, Project::Web, Project::Firmware];

    fn name(self) -> &'static str {
        match self {
            Project::Core => "core",
            Project::Web => "web",
            Project::Firmware => "firmware",
        }
    }

    /// Index into [`SOURCES`].
    fn source(self) -> usize {
        match self {
            Project::Core | Project::Web => 0,
            Project::Firmware => 1,
        }
    }

    /// Share of pushes. Firmware pushes are rarer: each one requests long image builds.
    fn push_share(self) -> f64 {
        match self {
            Project::Core => 0.5,
            Project::Web => 0.42,
            Project::Firmware => 0.08,
        }
    }

    /// The current and the previous release branch.
    fn releases(self) -> [&'static str; 2] {
        match self {
            Project::Core => ["release/4.2", "release/4.1"],
            Project::Web => ["release/2026.10", "release/2026.09"],
            Project::Firmware => ["release/walnascar", "release/scarthgap"],
        }
    }

    /// Topics of short-lived feature branches.
    fn topics(self) -> &'static [&'static str] {
        match self {
            Project::Core => &[
                "async-io",
                "simd-hash",
                "parser-rewrite",
                "lto",
                "arena-alloc",
                "msvc-warnings",
                "zstd-1.6",
                "plugin-api",
                "faster-link",
                "arm64-atomics",
            ],
            Project::Web => &[
                "dark-mode",
                "login-timeout",
                "i18n",
                "bundle-split",
                "a11y-forms",
                "react-19",
                "csp-headers",
                "search-page",
                "flaky-e2e",
                "vite-7",
            ],
            Project::Firmware => &[
                "ota-delta",
                "kernel-6.12",
                "secure-boot",
                "wifi-fw",
                "tiny-init",
                "rauc-bundle",
                "openssl-3.5",
                "systemd-258",
                "u-boot-2026.07",
                "sbom",
            ],
        }
    }
}

/// Worker pools, one per platform family; firmware images build on big Yocto machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    Linux,
    Win,
    Mac,
    Yocto,
}

impl Pool {
    const ALL: [Pool; 4] = [Pool::Linux, Pool::Win, Pool::Mac, Pool::Yocto];

    fn name(self) -> &'static str {
        match self {
            Pool::Linux => "linux",
            Pool::Win => "win",
            Pool::Mac => "mac",
            Pool::Yocto => "yocto",
        }
    }

    /// Least digits in worker numbers (`linux-worker-017`, `win-worker-04`).
    fn digits(self) -> usize {
        match self {
            Pool::Linux => 3,
            Pool::Win | Pool::Mac | Pool::Yocto => 2,
        }
    }
}

/// What a builder does, which decides its steps, how often it fails and whether it reports
/// [`BUILD_SIZE_METRIC`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Build,
    Test,
    Lint,
    Docs,
    E2e,
    Image,
    TestImage,
    Sdk,
}

impl Kind {
    /// Step names and their typical share of the run. At least 4 steps, so a job that stops
    /// in its main step (index 2 or later) still has 3.
    fn steps(self) -> &'static [(&'static str, f64)] {
        match self {
            Kind::Build => &[
                ("checkout", 0.04),
                ("configure", 0.06),
                ("compile", 0.7),
                ("package", 0.1),
                ("upload", 0.1),
            ],
            Kind::Test => {
                &[("checkout", 0.05), ("fetch-artifacts", 0.1), ("test", 0.77), ("collect-results", 0.08)]
            }
            Kind::Lint => &[("checkout", 0.15), ("install-tools", 0.25), ("lint", 0.5), ("report", 0.1)],
            Kind::Docs => {
                &[("checkout", 0.1), ("install-tools", 0.2), ("build-docs", 0.55), ("publish", 0.15)]
            }
            Kind::E2e => {
                &[("checkout", 0.05), ("install-deps", 0.15), ("e2e-tests", 0.7), ("upload-report", 0.1)]
            }
            Kind::Image => {
                &[("checkout", 0.02), ("setup-build-env", 0.03), ("bitbake", 0.85), ("deploy", 0.1)]
            }
            Kind::TestImage => {
                &[("checkout", 0.02), ("setup-build-env", 0.03), ("bitbake", 0.45), ("testimage", 0.5)]
            }
            Kind::Sdk => {
                &[("checkout", 0.02), ("setup-build-env", 0.03), ("populate-sdk", 0.8), ("deploy", 0.15)]
            }
        }
    }

    /// The step where failures and warnings happen.
    fn main_step(self) -> usize {
        match self {
            Kind::TestImage => 3,
            _ => 2,
        }
    }

    fn failure_rate(self) -> f64 {
        match self {
            Kind::Docs => 0.015,
            Kind::Build | Kind::Image | Kind::Sdk => 0.025,
            Kind::Lint => 0.03,
            Kind::Test => 0.035,
            Kind::E2e | Kind::TestImage => 0.045,
        }
    }

    fn warnings_rate(self) -> f64 {
        match self {
            Kind::Build | Kind::Lint => 0.07,
            Kind::Image | Kind::Sdk => 0.05,
            Kind::Test | Kind::Docs | Kind::E2e | Kind::TestImage => 0.02,
        }
    }

    /// Typical size of what the builder produces, in MB, if it reports one.
    fn size_mb(self) -> Option<(f64, f64)> {
        match self {
            Kind::Build => Some((50.0, 140.0)),
            Kind::Image => Some((120.0, 240.0)),
            Kind::Sdk => Some((220.0, 260.0)),
            _ => None,
        }
    }
}

/// Builders of one project on one platform (or, for firmware, one Yocto `MACHINE`).
struct Group {
    project: Project,
    target: &'static str,
    pool: Pool,
    /// Name suffix, kind, typical run time in minutes.
    builders: &'static [(&'static str, Kind, f64)],
}

/// The farm's builders. Run times are short on the whole: with ~6 700 jobs a day the
/// average job must take about four minutes for ~60 workers to keep up.
const GROUPS: &[Group] = {
    use Kind::*;
    use Pool::*;
    use Project::*;
    &[
        Group {
            project: Core,
            target: "linux64",
            pool: Linux,
            builders: &[
                ("build", Build, 4.0),
                ("debug-build", Build, 3.0),
                ("test", Test, 3.0),
                ("debug-test", Test, 4.0),
                ("asan-test", Test, 5.5),
                ("tsan-test", Test, 5.5),
                ("coverage-test", Test, 4.0),
                ("lint", Lint, 1.0),
                ("docs", Docs, 1.5),
            ],
        },
        Group {
            project: Core,
            target: "win64",
            pool: Win,
            builders: &[("build", Build, 5.0), ("debug-build", Build, 4.0), ("test", Test, 3.5)],
        },
        Group {
            project: Core,
            target: "mac64",
            pool: Mac,
            builders: &[("build", Build, 3.0), ("test", Test, 3.0)],
        },
        Group {
            project: Core,
            target: "mac-arm64",
            pool: Mac,
            builders: &[("build", Build, 2.0), ("test", Test, 2.0)],
        },
        Group {
            project: Web,
            target: "linux64",
            pool: Linux,
            builders: &[
                ("build", Build, 2.5),
                ("test", Test, 2.0),
                ("lint", Lint, 1.0),
                ("e2e-chrome", E2e, 4.0),
                ("e2e-firefox", E2e, 5.0),
                ("storybook", Docs, 1.0),
                ("a11y-test", Test, 2.0),
            ],
        },
        Group {
            project: Web,
            target: "win64",
            pool: Win,
            builders: &[("build", Build, 2.5), ("e2e-edge", E2e, 5.0)],
        },
        Group { project: Web, target: "mac-arm64", pool: Mac, builders: &[("e2e-safari", E2e, 5.0)] },
        // Image builds reuse the shared state cache, so most are short; booting the images
        // and running their tests is what takes long.
        Group {
            project: Firmware,
            target: "qemux86-64",
            pool: Yocto,
            builders: &[
                ("image", Image, 9.5),
                ("tiny-image", Image, 5.0),
                ("debug-image", Image, 11.0),
                ("testimage", TestImage, 36.0),
                ("sdk", Sdk, 14.5),
            ],
        },
        Group {
            project: Firmware,
            target: "qemuarm64",
            pool: Yocto,
            builders: &[("image", Image, 11.0), ("testimage", TestImage, 44.0), ("sdk", Sdk, 16.0)],
        },
        Group { project: Firmware, target: "qemuriscv64", pool: Yocto, builders: &[("image", Image, 13.0)] },
        Group {
            project: Firmware,
            target: "raspberrypi4-64",
            pool: Yocto,
            builders: &[("image", Image, 10.5)],
        },
        Group {
            project: Firmware,
            target: "beaglebone-yocto",
            pool: Yocto,
            builders: &[("image", Image, 9.0)],
        },
        Group { project: Firmware, target: "genericx86-64", pool: Yocto, builders: &[("image", Image, 9.5)] },
    ]
};

struct Builder {
    project: Project,
    pool: Pool,
    kind: Kind,
    base_s: f64,
    flaky: bool,
    /// Size of what it builds at the start of the period, in bytes.
    size_bytes: Option<f64>,
    tags: BTreeMap<String, String>,
}

impl Builder {
    fn new(name: &str, group: &Group, suffix: &str, kind: Kind, minutes: f64, rng: &mut Pcg64Mcg) -> Builder {
        let mut tags = BTreeMap::new();
        let build_type = if suffix.contains("debug") { "debug" } else { "opt" };
        tags.insert("build_type".to_owned(), build_type.to_owned());
        if group.project == Project::Firmware {
            let distro = if suffix.contains("tiny") { "poky-tiny" } else { "poky" };
            tags.insert("platform".to_owned(), "linux64".to_owned());
            tags.insert("MACHINE".to_owned(), group.target.to_owned());
            tags.insert("DISTRO".to_owned(), distro.to_owned());
        } else {
            tags.insert("platform".to_owned(), group.target.to_owned());
        }
        let size_bytes = kind.size_mb().map(|(lo, hi)| (lo + (hi - lo) * rng.random::<f64>()) * 1e6);
        Builder {
            project: group.project,
            pool: group.pool,
            kind,
            base_s: minutes * 60.0,
            flaky: FLAKY.contains(&name),
            size_bytes,
            tags,
        }
    }
}

/// A branch of a project, open from `open` to `close` (epoch seconds).
struct Branch {
    name: String,
    project: Project,
    feature: bool,
    open: i64,
    close: i64,
}

/// Per project: `main`, the current and the previous release, then about one feature branch
/// a day, each open for one to four days.
fn branches(rng: &mut Pcg64Mcg, start_s: i64, end_s: i64) -> Vec<Branch> {
    let mut branches = Vec::new();
    let days = (end_s - start_s) / DAY_S;
    for project in Project::ALL {
        let [current, previous] = project.releases();
        for name in ["main", current, previous] {
            branches.push(Branch {
                name: name.to_owned(),
                project,
                feature: false,
                open: i64::MIN,
                close: i64::MAX,
            });
        }
        let topics = project.topics();
        for _ in 0..days.max(3) {
            let topic = topics[rng.random_range(0..topics.len() as u32) as usize];
            let prefix = if rng.random::<f64>() < 0.7 { "feature" } else { "fix" };
            let issue = rng.random_range(100..2_000_u32);
            let open = rng.random_range(start_s - 2 * DAY_S..end_s);
            let close = open + rng.random_range(DAY_S..4 * DAY_S);
            let name = format!("{prefix}/{topic}-{issue}");
            branches.push(Branch { name, project, feature: true, open, close });
        }
    }
    branches
}

/// A UTC hour (clipped to the period) and how many jobs have been requested by its end.
#[derive(Clone, Copy, Debug)]
struct Slot {
    start: i64,
    end: i64,
    target: usize,
}

/// Splits the period into hours and shares `jobs` among them by [`hourly_rate`], with some
/// day-to-day and hour-to-hour noise. Also returns the total rate-hours, i.e. how many
/// hours at rate 1 the period is worth.
fn schedule(rng: &mut Pcg64Mcg, start_s: i64, end_s: i64, jobs: usize) -> (Vec<Slot>, f64) {
    let mut slots = Vec::new();
    let mut weights = Vec::new();
    let mut day = i64::MIN;
    let mut busyness = 1.0;
    let mut t = start_s;
    while t < end_s {
        let end = ((t.div_euclid(HOUR_S) + 1) * HOUR_S).min(end_s);
        if t.div_euclid(DAY_S) != day {
            day = t.div_euclid(DAY_S);
            busyness = lognormal(rng, 0.1);
        }
        // 1970-01-01 was a Thursday; Monday is 0.
        let weekday = (day + 3).rem_euclid(7);
        let hour = t.rem_euclid(DAY_S) / HOUR_S;
        let rate = hourly_rate(weekday, hour) * busyness * lognormal(rng, 0.1);
        weights.push(rate * (end - t) as f64 / HOUR_S as f64);
        slots.push(Slot { start: t, end, target: 0 });
        t = end;
    }
    let total: f64 = weights.iter().sum();
    let mut so_far = 0.0;
    for (slot, weight) in slots.iter_mut().zip(&weights) {
        so_far += weight;
        slot.target = ((jobs as f64 * so_far / total).floor() as usize).min(jobs);
    }
    if let Some(last) = slots.last_mut() {
        last.target = jobs;
    }
    (slots, total)
}

/// Relative push rate by UTC weekday (Monday 0) and hour: quiet nights and weekends, a
/// strong peak from 09:00 to 11:00 on weekdays and a busy afternoon.
fn hourly_rate(weekday: i64, hour: i64) -> f64 {
    if weekday >= 5 {
        return 0.3;
    }
    match hour {
        0..=5 => 0.25,
        6 | 7 => 0.7,
        8 => 1.6,
        9 | 10 => PEAK_RATE,
        11 | 12 => 2.0,
        13..=16 => 1.8,
        17..=19 => 1.1,
        _ => 0.5,
    }
}

/// Workers per pool: enough that the weekday morning peak overloads the pool by
/// [`PEAK_OVERLOAD`] and no more, so queue waits spike then and vanish at night, at any
/// number of jobs a day. `jobs_per_rate_hour` is the jobs requested in an hour at rate 1.
fn pool_sizes(builders: &[Builder], by_project: &[Vec<usize>; 3], jobs_per_rate_hour: f64) -> [usize; 4] {
    let jobs_per_push: f64 =
        Project::ALL.iter().map(|&p| p.push_share() * by_project[p as usize].len() as f64).sum();
    let mut busy_s = [0.0; 4];
    for builder in builders {
        let share_of_jobs = builder.project.push_share() / jobs_per_push;
        busy_s[builder.pool as usize] += share_of_jobs * builder.base_s;
    }
    busy_s.map(|s| {
        ((s * jobs_per_rate_hour * PEAK_RATE / HOUR_S as f64 / PEAK_OVERLOAD).ceil() as usize).max(3)
    })
}

/// One job to run: who asked for it, when, for what. `Ord` only so that it can ride in the
/// retrigger heap, where `(at, sequence number)` decide the order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    at: i64,
    builder: usize,
    branch: usize,
    revision: String,
    retrigger: bool,
}

impl DemoFarm {
    /// The earliest of the current slot's pushes and the pending retriggers. `None` only
    /// after the last slot, by when [`DemoFarm::fill_slot`] has made sure the count is met.
    fn next_request(&mut self) -> Option<Request> {
        while self.pushed.is_empty() && self.next_slot < self.slots.len() {
            self.fill_slot();
        }
        let retrigger_first = match (self.retriggers.peek(), self.pushed.front()) {
            (Some(Reverse((at, ..))), Some(push)) => *at < push.at,
            _ => false,
        };
        if retrigger_first {
            self.retriggers.pop().map(|Reverse((.., request))| request)
        } else {
            self.pushed.pop_front()
        }
    }

    /// Draws the next slot's pushes: enough to bring the jobs requested so far to the
    /// slot's target. Retriggers count too, so the last slot lands on the exact total.
    fn fill_slot(&mut self) {
        let slot = self.slots[self.next_slot];
        self.next_slot += 1;
        let mut wanted = slot.target.saturating_sub(self.emitted);
        let mut pushes = Vec::new();
        while wanted > 0 {
            let u: f64 = self.rng.random();
            let project = if u < Project::Core.push_share() {
                Project::Core
            } else if u < Project::Core.push_share() + Project::Web.push_share() {
                Project::Web
            } else {
                Project::Firmware
            };
            let at = self.rng.random_range(slot.start..slot.end);
            wanted = wanted.saturating_sub(self.by_project[project as usize].len());
            pushes.push((at, project));
        }
        pushes.sort_by_key(|&(at, _)| at);
        for (at, project) in pushes {
            let branch = self.pick_branch(project, at);
            let revision = format!(
                "{:016x}{:016x}{:08x}",
                self.rng.random::<u64>(),
                self.rng.random::<u64>(),
                self.rng.random::<u32>()
            );
            for &builder in &self.by_project[project as usize] {
                let revision = revision.clone();
                self.pushed.push_back(Request { at, builder, branch, revision, retrigger: false });
            }
        }
    }

    /// Most pushes go to `main`, a few backports to the releases, the rest to whichever
    /// feature branches are open at `at`.
    fn pick_branch(&mut self, project: Project, at: i64) -> usize {
        let first = self.branches.iter().position(|b| b.project == project).expect("every project has main");
        let u: f64 = self.rng.random();
        if u < 0.55 {
            return first;
        } else if u < 0.63 {
            return first + 1;
        } else if u < 0.66 {
            return first + 2;
        }
        let open = |b: &Branch| b.project == project && b.feature && b.open <= at && at < b.close;
        let count = self.branches.iter().filter(|b| open(b)).count();
        if count == 0 {
            return first;
        }
        let k = self.rng.random_range(0..count as u32) as usize;
        self.branches.iter().enumerate().filter(|(_, b)| open(b)).nth(k).map_or(first, |(i, _)| i)
    }

    /// Queues `request` on its pool, runs it, and describes it as seen at the end of the
    /// period.
    fn run(&mut self, request: Request) -> Job {
        let builder = &self.builders[request.builder];
        let kind = builder.kind;
        let Reverse((free_at, worker)) =
            self.pools[builder.pool as usize].pop().expect("pools are never empty");
        let start = request.at.max(free_at);
        let progress = (request.at - self.start_s) as f64 / (self.end_s - self.start_s) as f64;

        let outcome = if request.retrigger {
            JobResult::Success
        } else {
            draw_outcome(&mut self.rng, kind, builder.flaky, worker == self.rogue)
        };
        let drift = if request.builder == self.drifting { 1.0 + DRIFT * progress } else { 1.0 };
        let nominal_s = builder.base_s * drift * self.worker_speed[worker] * lognormal(&mut self.rng, 0.25);
        let bounds = step_bounds(&mut self.rng, kind, outcome, start, nominal_s);
        let finish = *bounds.last().expect("at least one step");
        self.pools[builder.pool as usize].push(Reverse((finish, worker)));

        let finished = finish <= self.end_s;
        if finished
            && builder.flaky
            && outcome == JobResult::Failure
            && self.rng.random::<f64>() < RETRIGGERED
        {
            // Someone notices, suspects the test rather than the change, and clicks rebuild.
            let at = finish + 60 + exponential(&mut self.rng, 15.0 * 60.0).round() as i64;
            let retrigger = Request { at, retrigger: true, ..request.clone() };
            self.retriggers.push(Reverse((at, self.retrigger_seq, retrigger)));
            self.retrigger_seq += 1;
        }

        let started = start < self.end_s;
        let result = if !started {
            JobResult::Pending
        } else if !finished {
            JobResult::Running
        } else {
            outcome
        };
        let last_step = bounds.len() - 2;
        let mut steps = Vec::new();
        for (i, &(name, _)) in kind.steps().iter().enumerate().take(last_step + 1) {
            let (from, to) = (bounds[i], bounds[i + 1]);
            if from >= self.end_s {
                break;
            }
            let done = to <= self.end_s;
            let step_result = match outcome {
                JobResult::Warnings if i == kind.main_step() => JobResult::Warnings,
                JobResult::Success | JobResult::Warnings => JobResult::Success,
                _ if i == last_step => outcome,
                _ => JobResult::Success,
            };
            steps.push(Step {
                name: name.to_owned(),
                started_at: Some(at_s(from)),
                finished_at: done.then(|| at_s(to)),
                result: done.then_some(step_result),
            });
        }
        let mut metrics = BTreeMap::new();
        if let (JobResult::Success, Some(size)) = (result, builder.size_bytes) {
            let bytes = size * (1.0 + SIZE_GROWTH * progress) * (1.0 + 0.01 * standard_normal(&mut self.rng));
            metrics.insert(BUILD_SIZE_METRIC.to_owned(), bytes.round());
        }

        let source = builder.project.source();
        let id = self.next_id[source];
        self.next_id[source] += 1;
        let name = &self.builder_names[request.builder];
        let url = match source {
            0 => format!("https://ci.example.com/builders/{name}/builds/{id}"),
            _ => format!("https://jenkins.example.com/job/{name}/{id}/"),
        };
        Job {
            source: SOURCES[source].to_owned(),
            id: id.to_string(),
            builder: name.clone(),
            project: Some(builder.project.name().to_owned()),
            branch: Some(self.branches[request.branch].name.clone()),
            revision: Some(request.revision),
            worker: started.then(|| self.worker_names[worker].clone()),
            requested_at: Some(at_s(request.at)),
            started_at: started.then(|| at_s(start)),
            finished_at: finished.then(|| at_s(finish)),
            result,
            url: Some(url),
            tags: builder.tags.clone(),
            metrics,
            steps,
        }
    }
}

/// How a job will end, before the period's end cuts it short. The rogue worker's jobs fail
/// and hit exceptions [`ROGUE_FACTOR`] times as often.
fn draw_outcome(rng: &mut Pcg64Mcg, kind: Kind, flaky: bool, rogue: bool) -> JobResult {
    let trouble = if rogue { ROGUE_FACTOR } else { 1.0 };
    let failure = (kind.failure_rate() + if flaky { FLAKY_EXTRA } else { 0.0 }) * trouble;
    let u: f64 = rng.random();
    let mut edge = 0.0;
    for (p, result) in [
        (failure, JobResult::Failure),
        (0.004 * trouble, JobResult::Exception),
        (0.002, JobResult::Retry),
        (0.006, JobResult::Cancelled),
        (kind.warnings_rate(), JobResult::Warnings),
    ] {
        edge += p;
        if u < edge {
            return result;
        }
    }
    JobResult::Success
}

/// Start of each step that runs, then the end of the last (epoch seconds). The steps tile
/// the run. A job that does not pass stops part-way through its main step (failures) or a
/// step after set-up (exceptions, retries, cancellations), so it has at least 3 steps.
fn step_bounds(rng: &mut Pcg64Mcg, kind: Kind, outcome: JobResult, start: i64, nominal_s: f64) -> Vec<i64> {
    let steps = kind.steps();
    let last = match outcome {
        JobResult::Success | JobResult::Warnings => steps.len() - 1,
        JobResult::Failure => kind.main_step(),
        _ => rng.random_range(2..steps.len() as u32) as usize,
    };
    let jitter: Vec<f64> =
        steps.iter().map(|&(_, share)| share * (0.75 + 0.5 * rng.random::<f64>())).collect();
    let total: f64 = jitter.iter().sum();
    let mut bounds = Vec::with_capacity(last + 2);
    bounds.push(start);
    let mut elapsed = 0.0;
    for (i, share) in jitter.iter().enumerate().take(last + 1) {
        let mut step_s = nominal_s * share / total;
        if i == last && last + 1 < steps.len() {
            step_s *= 0.05 + 0.95 * rng.random::<f64>();
        }
        elapsed += step_s;
        bounds.push(start + elapsed.round() as i64);
    }
    bounds
}

fn at_s(epoch_s: i64) -> Timestamp {
    Timestamp::from_millis(epoch_s * 1000)
}

/// A log-normal factor with median 1.
fn lognormal(rng: &mut Pcg64Mcg, sigma: f64) -> f64 {
    math::exp(sigma * standard_normal(rng))
}

/// Marsaglia's polar method: needs only `ln` and `sqrt`.
fn standard_normal(rng: &mut Pcg64Mcg) -> f64 {
    loop {
        let u = 2.0 * rng.random::<f64>() - 1.0;
        let v = 2.0 * rng.random::<f64>() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * math::ln(s) / s).sqrt();
        }
    }
}

fn exponential(rng: &mut Pcg64Mcg, mean: f64) -> f64 {
    -mean * math::ln(1.0 - rng.random::<f64>())
}

/// `exp` and `ln` from IEEE-exact operations only, so every platform computes the same
/// bits. Accurate to a few ulps, which is plenty for a simulation.
mod math {
    use std::f64::consts::{LN_2, SQRT_2};

    /// Natural logarithm of a positive, finite, normal `x`.
    pub fn ln(x: f64) -> f64 {
        debug_assert!(x >= f64::MIN_POSITIVE && x.is_finite(), "ln({x})");
        // x = m · 2^e with m in [√½, √2), then ln m = 2 atanh((m − 1)/(m + 1)).
        let bits = x.to_bits();
        let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
        if m > SQRT_2 {
            m /= 2.0;
            e += 1;
        }
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        let (mut term, mut sum) = (s, 0.0);
        for k in 0..12 {
            sum += term / f64::from(2 * k + 1);
            term *= s2;
        }
        2.0 * sum + e as f64 * LN_2
    }

    /// e^x, for |x| up to 700.
    pub fn exp(x: f64) -> f64 {
        let x = x.clamp(-700.0, 700.0);
        // x = k ln 2 + r with |r| ≤ ½ ln 2, then e^x = 2^k · e^r.
        // ln 2 in two parts (fdlibm's): k · LN2_HI is exact, so r keeps its precision.
        const LN2_HI: f64 = 6.931_471_803_691_238e-1;
        const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
        let k = (x / LN_2).round();
        let r = (x - k * LN2_HI) - k * LN2_LO;
        let (mut term, mut sum) = (1.0, 1.0);
        for n in 1..16 {
            term *= r / f64::from(n);
            sum += term;
        }
        sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::OnceLock;

    use super::*;

    /// 2026-11-04T11:00:00Z, a Wednesday morning: the farm is busy at the end of the period.
    const WEDNESDAY_11H_MS: i64 = 1_793_790_000_000;

    fn small(seed: u64) -> DemoConfig {
        DemoConfig { seed, jobs: 40_000, end_ms: WEDNESDAY_11H_MS, days: 30 }
    }

    /// The farm most tests look at, generated once.
    fn farm() -> &'static (DemoFarm, Vec<Job>) {
        static FARM: OnceLock<(DemoFarm, Vec<Job>)> = OnceLock::new();
        FARM.get_or_init(|| (DemoFarm::new(small(7)), generate(small(7))))
    }

    fn median(mut values: Vec<f64>) -> f64 {
        assert!(!values.is_empty(), "median of nothing");
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    fn ms(t: Option<Timestamp>) -> i64 {
        t.expect("time set").as_millis()
    }

    #[test]
    fn same_seed_same_jobs_other_seed_other_jobs() {
        let config = DemoConfig { jobs: 3_000, ..small(1) };
        let first = generate(config);
        assert_eq!(first, generate(config));
        assert_ne!(first, generate(DemoConfig { seed: 2, ..config }));
    }

    /// Pins the stream: run on wasm32 too, it shows both platforms generate the same bytes.
    /// A deliberate change to the generator updates the constant.
    #[test]
    fn output_is_pinned() {
        let config = DemoConfig { jobs: 2_000, ..DemoConfig::default() };
        let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
        for job in DemoFarm::new(config) {
            for byte in serde_json::to_vec(&job).unwrap() {
                fnv = (fnv ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        assert_eq!(fnv, 304_352_238_080_184_502, "FNV-1a of the first 2 000 jobs' JSON");
    }

    #[test]
    fn yields_exactly_the_jobs_asked_for() {
        for (jobs, days) in [(0, 30), (1, 30), (41, 1), (999, 0), (5_000, 3), (12_345, 30)] {
            let farm = DemoFarm::new(DemoConfig { jobs, days, ..small(3) });
            assert_eq!(farm.len(), jobs);
            assert_eq!(farm.count(), jobs, "{jobs} jobs over {days} days");
        }
    }

    #[test]
    fn every_job_validates_in_whole_seconds() {
        for job in &farm().1 {
            job.validate().unwrap_or_else(|e| panic!("{e}: {job:?}"));
            let step_times = job.steps.iter().flat_map(|s| [s.started_at, s.finished_at]);
            for t in
                [job.requested_at, job.started_at, job.finished_at].into_iter().chain(step_times).flatten()
            {
                assert_eq!(t.as_millis() % 1000, 0, "{t} in {job:?}");
            }
            let url = job.url.as_deref().expect("url");
            assert!(url.contains(&format!("/{}/", job.builder)) && url.contains(&job.id), "{url}");
        }
    }

    #[test]
    fn steps_tile_finished_runs() {
        for job in farm().1.iter().filter(|j| j.result.is_finished()) {
            assert!((3..=5).contains(&job.steps.len()), "{job:?}");
            assert_eq!(job.steps[0].started_at, job.started_at);
            for pair in job.steps.windows(2) {
                assert_eq!(pair[0].finished_at, pair[1].started_at, "{job:?}");
            }
            let last = job.steps.last().expect("steps");
            assert_eq!(last.finished_at, job.finished_at);
            if job.result == JobResult::Warnings {
                assert!(job.steps.iter().any(|s| s.result == Some(JobResult::Warnings)), "{job:?}");
            } else {
                assert_eq!(last.result, Some(job.result), "{job:?}");
            }
        }
    }

    #[test]
    fn ids_are_unique_per_source() {
        let mut seen = HashSet::new();
        for job in &farm().1 {
            assert!(seen.insert((&job.source, &job.id)), "{} {} twice", job.source, job.id);
        }
        let sources: HashSet<&str> = farm().1.iter().map(|j| j.source.as_str()).collect();
        assert_eq!(sources, HashSet::from(["buildbot-main", "jenkins-fw"]));
    }

    #[test]
    fn requested_in_order_within_the_period() {
        let jobs = &farm().1;
        let (end, start) = (WEDNESDAY_11H_MS, WEDNESDAY_11H_MS - 30 * 86_400_000);
        for pair in jobs.windows(2) {
            assert!(pair[0].requested_at <= pair[1].requested_at, "{:?} then {:?}", pair[0], pair[1]);
        }
        assert!(jobs.iter().all(|j| (start..end).contains(&ms(j.requested_at))));
        // The period is used to its end, not filled early.
        assert!(ms(jobs.last().unwrap().requested_at) > end - 3_600_000);
        assert!(ms(jobs[0].requested_at) < start + 6 * 3_600_000);
    }

    #[test]
    fn rogue_worker_fails_several_times_as_often_as_the_median_worker() {
        let (farm, jobs) = farm();
        let mut by_worker: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for job in jobs.iter().filter(|j| j.result.is_finished()) {
            let entry = by_worker.entry(job.worker.as_deref().unwrap()).or_default();
            entry.0 += f64::from(u8::from(job.result.is_failed()));
            entry.1 += 1.0;
        }
        assert_eq!(by_worker.len(), farm.workers().len(), "every worker ran jobs");
        let rate = |w: &str| by_worker[w].0 / by_worker[w].1;
        let median_rate = median(farm.workers().iter().map(|w| rate(w)).collect());
        let rogue = rate(farm.rogue_worker());
        assert!(rogue >= 3.0 * median_rate, "rogue {rogue:.3}, median {median_rate:.3}");
    }

    #[test]
    fn drifting_builder_slows_down() {
        let (farm, jobs) = farm();
        let (start, end) = (WEDNESDAY_11H_MS - 30 * 86_400_000, WEDNESDAY_11H_MS);
        let five_days = 5 * 86_400_000;
        let durations = |from: i64, to: i64| -> Vec<f64> {
            jobs.iter()
                .filter(|j| j.builder == farm.drifting_builder() && j.result == JobResult::Success)
                .filter(|j| (from..to).contains(&ms(j.requested_at)))
                .map(|j| j.duration_ms().unwrap() as f64)
                .collect()
        };
        let early = median(durations(start, start + five_days));
        let late = median(durations(end - five_days, end));
        assert!(late >= 1.2 * early, "early {early} ms, late {late} ms");
    }

    #[test]
    fn weekday_mornings_queue_longer_than_weekends() {
        let mut morning = Vec::new();
        let mut weekend = Vec::new();
        for job in &farm().1 {
            let (Some(requested), Some(wait)) = (job.requested_at, job.queue_ms()) else { continue };
            let day = requested.as_millis().div_euclid(86_400_000);
            let hour = requested.as_millis().rem_euclid(86_400_000) / 3_600_000;
            match (day + 3).rem_euclid(7) {
                5 | 6 => weekend.push(wait as f64),
                _ if (9..11).contains(&hour) => morning.push(wait as f64),
                _ => {}
            }
        }
        let (morning, weekend) = (median(morning), median(weekend));
        assert!(morning >= 60_000.0 && morning > 5.0 * weekend, "morning {morning} ms, weekend {weekend} ms");
    }

    #[test]
    fn flaky_failures_pass_on_a_retrigger_of_the_same_revision() {
        let jobs = &farm().1;
        let mut failed: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        let mut recovered = 0;
        for job in jobs {
            let key = (job.builder.as_str(), job.revision.as_deref().unwrap());
            match job.result {
                JobResult::Failure => {
                    failed.insert(key, ms(job.finished_at));
                }
                JobResult::Success if failed.get(&key).is_some_and(|&f| f < ms(job.requested_at)) => {
                    recovered += 1
                }
                _ => {}
            }
        }
        assert!(recovered >= 5, "{recovered} failures passed on a retrigger");
    }

    #[test]
    fn build_builders_report_their_size_on_success() {
        let jobs = &farm().1;
        let sized: Vec<&Job> = jobs.iter().filter(|j| j.metrics.contains_key(BUILD_SIZE_METRIC)).collect();
        assert!(sized.len() > jobs.len() / 10, "{} of {} jobs", sized.len(), jobs.len());
        for job in sized {
            let bytes = job.metrics[BUILD_SIZE_METRIC];
            assert_eq!(job.result, JobResult::Success);
            assert!(
                job.builder.ends_with("build")
                    || job.builder.ends_with("image")
                    || job.builder.ends_with("sdk")
            );
            assert!((45e6..330e6).contains(&bytes) && bytes.fract() == 0.0, "{bytes}");
        }
    }

    #[test]
    fn the_last_hour_is_live_and_older_jobs_finished() {
        let jobs = &farm().1;
        let recent = |j: &&Job| ms(j.requested_at) >= WEDNESDAY_11H_MS - 3 * 3_600_000;
        let count = |r: JobResult| jobs.iter().filter(recent).filter(|j| j.result == r).count();
        assert!(count(JobResult::Running) > 0 && count(JobResult::Pending) > 0);
        assert!(jobs.iter().filter(|j| !recent(j)).all(|j| j.result.is_finished()));
    }

    #[test]
    fn farm_shape() {
        let farm = DemoFarm::new(DemoConfig::default());
        assert!((38..=42).contains(&farm.builders().len()));
        assert!((50..=70).contains(&farm.workers().len()), "{} workers", farm.workers().len());
        assert!(farm.workers().iter().any(|w| w == "linux-worker-017"));
        assert!(farm.workers().iter().any(|w| w == "win-worker-04"));
        assert!(farm.workers().contains(&farm.rogue_worker().to_owned()));
        assert!(farm.builders().contains(&"firmware-qemux86-64-image".to_owned()));
        let million = DemoFarm::new(DemoConfig { jobs: 1_000_000, ..DemoConfig::default() });
        let ratio = million.workers().len() as f64 / farm.workers().len() as f64;
        assert!((4.5..=5.5).contains(&ratio), "{ratio}");
    }

    #[test]
    fn math_matches_std() {
        for x in [1e-300, 1e-10, 0.3, 0.7, 1.0, 1.5, 2.0, 10.0, 1e10, 1e300] {
            assert!((math::ln(x) - x.ln()).abs() <= 1e-14 * x.ln().abs().max(1.0), "ln {x}");
        }
        for x in [-700.0, -20.0, -1.0, -1e-9, 0.0, 0.25, 1.0, 5.5, 300.0, 700.0] {
            assert!((math::exp(x) - x.exp()).abs() <= 1e-14 * x.exp(), "exp {x}");
        }
    }

    #[test]
    #[ignore = "a million jobs: run with --release"]
    fn a_million_jobs_stream() {
        let config = DemoConfig { jobs: 1_000_000, ..DemoConfig::default() };
        let mut count = 0;
        for job in DemoFarm::new(config) {
            job.validate().unwrap();
            count += 1;
        }
        assert_eq!(count, 1_000_000);
    }
}
