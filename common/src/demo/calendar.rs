//! When things happen: branches opening and closing, how many jobs each hour requests, and
//! how many workers each pool needs for that load.

use rand::Rng;
use rand_pcg::Pcg64Mcg;

use super::catalog::{Builder, Project};
use super::random::lognormal;
use super::{DAY_S, HOUR_S, PEAK_OVERLOAD, PEAK_RATE};

/// A branch of a project, open from `open` to `close` (epoch seconds).
pub(super) struct Branch {
    pub(super) name: String,
    pub(super) project: Project,
    pub(super) feature: bool,
    pub(super) open: i64,
    pub(super) close: i64,
}

/// Per project: `main`, the current and the previous release, then about one feature branch
/// a day, each open for one to four days.
pub(super) fn branches(rng: &mut Pcg64Mcg, start_s: i64, end_s: i64) -> Vec<Branch> {
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
pub(super) struct Slot {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) target: usize,
}

/// Splits the period into hours and shares `jobs` among them by [`hourly_rate`], with some
/// day-to-day and hour-to-hour noise. Also returns the total rate-hours, i.e. how many
/// hours at rate 1 the period is worth.
pub(super) fn schedule(rng: &mut Pcg64Mcg, start_s: i64, end_s: i64, jobs: usize) -> (Vec<Slot>, f64) {
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
pub(super) fn pool_sizes(
    builders: &[Builder],
    by_project: &[Vec<usize>; 3],
    jobs_per_rate_hour: f64,
) -> [usize; 4] {
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
