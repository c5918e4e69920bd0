//! The simulation proper: requests queue for a worker of their pool, run their steps and
//! become jobs as seen at the end of the period.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use rand::Rng;
use rand_pcg::Pcg64Mcg;

use super::calendar::Branch;
use super::catalog::{Kind, Project};
use super::random::{exponential, lognormal, standard_normal};
use super::{
    BUILD_SIZE_METRIC, DRIFT, DemoFarm, FLAKY_EXTRA, RETRIGGERED, ROGUE_FACTOR, SIZE_GROWTH, SOURCES,
};
use crate::job::{Job, JobResult, Step};
use crate::time::Timestamp;

/// One job to run: who asked for it, when, for what. `Ord` only so that it can ride in the
/// retrigger heap, where `(at, sequence number)` decide the order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Request {
    at: i64,
    builder: usize,
    branch: usize,
    revision: String,
    retrigger: bool,
}

impl DemoFarm {
    /// The earliest of the current slot's pushes and the pending retriggers. `None` only
    /// after the last slot, by when [`DemoFarm::fill_slot`] has made sure the count is met.
    pub(super) fn next_request(&mut self) -> Option<Request> {
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
    pub(super) fn fill_slot(&mut self) {
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
    pub(super) fn run(&mut self, request: Request) -> Job {
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
