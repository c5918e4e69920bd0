use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use super::random::math;
use super::*;
use crate::job::JobResult;
use crate::time::Timestamp;

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
        for t in [job.requested_at, job.started_at, job.finished_at].into_iter().chain(step_times).flatten() {
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
            job.builder.ends_with("build") || job.builder.ends_with("image") || job.builder.ends_with("sdk")
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
