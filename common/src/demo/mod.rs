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
//! are written out (module `random`) rather than taken from `rand_distr`, whose
//! log-normal and exponential samplers call std's, which come from the platform's libm and
//! may round the last bit differently on wasm32 than on Linux.

mod calendar;
mod catalog;
mod random;
mod sim;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use self::calendar::{Branch, Slot, branches, pool_sizes, schedule};
use self::catalog::{Builder, GROUPS, Kind, Pool, Project};
use self::sim::Request;
use crate::job::Job;

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
