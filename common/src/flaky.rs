//! Which tests are intermittent: per-test run counts, failure rates and outcome flips over a
//! [`TestTable`], computed the same way in the browser and in tests.
//!
//! A *flip* is a change of outcome between two consecutive decided runs (passed, or failed
//! / error) of the same test on the same builder, in job-time order; skipped runs are left
//! out of the sequence. Flips are counted per builder because a test that always fails on
//! one platform and always passes on another is broken there, not intermittent.
//!
//! A test is *intermittent* when, on one builder, it both passed and failed on the same
//! revision (the code did not change, the outcome did), or when on one builder it flipped at
//! least [`FlakyConfig::min_flips`] times at a rate of at least
//! [`FlakyConfig::min_flip_rate`] per transition. The rate is judged per builder so a test
//! intermittent on one builder of ten is not averaged away by the nine. One flip alone is a change of state (a regression, or its fix), and a
//! regression that is fixed later flips twice in a long run of stable outcomes, so its rate
//! stays low.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::records::TestOutcome;
use crate::reports::{TestTable, outcome_code, outcome_from_code};

/// Thresholds of the intermittent verdict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlakyConfig {
    /// Flips per transition from which flipping counts as intermittent.
    pub min_flip_rate: f64,
    /// Fewest flips that can count as intermittent by rate.
    pub min_flips: u32,
}

impl Default for FlakyConfig {
    /// 5 %: a test failing at random one run in forty flips about that often.
    fn default() -> Self {
        FlakyConfig { min_flip_rate: 0.05, min_flips: 2 }
    }
}

/// One test's record over a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestStats {
    /// Index into [`TestTable::tests`].
    pub test: u32,
    /// `suite::name`.
    pub id: String,
    /// Every result, skipped ones included.
    pub runs: u32,
    pub passes: u32,
    /// Failed and error results.
    pub failures: u32,
    pub skips: u32,
    /// failures / (passes + failures); `None` when every run was skipped.
    pub failure_rate: Option<f64>,
    /// Outcome changes between consecutive decided runs on the same builder.
    pub flips: u32,
    /// Pairs of consecutive decided runs on the same builder: what `flips` is out of.
    pub transitions: u32,
    /// flips / transitions; `None` without a transition.
    pub flip_rate: Option<f64>,
    /// The highest flip rate of one builder among those with at least
    /// [`FlakyConfig::min_flips`] flips; `None` when no builder has that many.
    pub worst_flip_rate: Option<f64>,
    /// Passed and failed on the same builder and revision.
    pub mixed_on_revision: bool,
    pub intermittent: bool,
    /// Time of the latest failed or error run, epoch ms.
    pub last_failure_ms: Option<i64>,
    /// Distinct builders it ran on.
    pub builders: u32,
}

/// One run of a test, for its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Index into [`TestTable::jobs`].
    pub job: u32,
    /// Index into [`TestTable::builders`].
    pub builder: u32,
    pub time_ms: i64,
    pub outcome: TestOutcome,
    pub duration_ms: Option<i64>,
}

/// What the intermittent-tests table sorts by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestSort {
    /// The test's id, alphabetically.
    Test,
    /// Number of runs.
    Runs,
    /// Number of failed and error runs.
    Failures,
    /// Number of flips (the default: the most intermittent first).
    #[default]
    Flips,
    /// Failure rate; tests that never decided sort last.
    FailureRate,
    /// Time of the latest failure; tests that never failed sort last.
    LastFailure,
}

impl TestSort {
    pub const ALL: [TestSort; 6] = [
        TestSort::Test,
        TestSort::Runs,
        TestSort::Failures,
        TestSort::Flips,
        TestSort::FailureRate,
        TestSort::LastFailure,
    ];

    /// The name used in URLs (`sort=failure_rate`).
    pub fn as_str(self) -> &'static str {
        match self {
            TestSort::Test => "test",
            TestSort::Runs => "runs",
            TestSort::Failures => "failures",
            TestSort::Flips => "flips",
            TestSort::FailureRate => "failure_rate",
            TestSort::LastFailure => "last_failure",
        }
    }

    pub fn parse(s: &str) -> Option<TestSort> {
        TestSort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The direction a first click sorts in: names A→Z, numbers largest first.
    pub fn descending_by_default(self) -> bool {
        self != TestSort::Test
    }
}

/// Failed or error: both mean the test did not pass.
fn is_failure(code: u8) -> bool {
    code == outcome_code(TestOutcome::Failed) || code == outcome_code(TestOutcome::Error)
}

const PASSED: u8 = 0;
const SKIPPED: u8 = 3;

/// Every test of the table with its record, most flips first (then failure rate, failures,
/// id). `table` must pass [`TestTable::check`].
pub fn test_stats(table: &TestTable, config: &FlakyConfig) -> Vec<TestStats> {
    let tests = table.tests.name.len();
    let job_of = table.job_of_rows();
    let by_test = rows_by_test(table, tests);
    let mut out = Vec::with_capacity(tests);
    let mut rows: Vec<u32> = Vec::new();
    let mut decided: Vec<(u32, Option<u32>, bool)> = Vec::new();
    for (t, test_rows) in by_test.iter().enumerate() {
        rows.clear();
        rows.extend_from_slice(test_rows);
        if rows.is_empty() {
            continue;
        }
        // Rows are in job-time order; a stable sort by builder keeps that order within
        // each builder.
        let builder_of = |r: u32| table.jobs.builder[job_of[r as usize] as usize];
        rows.sort_by_key(|&r| builder_of(r));
        let mut s = TestStats {
            test: t as u32,
            id: table.test_name(t),
            runs: rows.len() as u32,
            passes: 0,
            failures: 0,
            skips: 0,
            failure_rate: None,
            flips: 0,
            transitions: 0,
            flip_rate: None,
            worst_flip_rate: None,
            mixed_on_revision: false,
            intermittent: false,
            last_failure_ms: None,
            builders: 0,
        };
        let mut previous: Option<(u32, bool)> = None;
        let mut last_builder = None;
        // Flips and transitions of the current builder.
        let mut here = (0u32, 0u32);
        decided.clear();
        for &r in &rows {
            let job = job_of[r as usize] as usize;
            let builder = table.jobs.builder[job];
            if last_builder != Some(builder) {
                s.builders += 1;
                last_builder = Some(builder);
                worst(&mut s.worst_flip_rate, here, config);
                here = (0, 0);
            }
            let code = table.results.outcome[r as usize];
            let failed = is_failure(code);
            match code {
                SKIPPED => {
                    s.skips += 1;
                    continue;
                }
                PASSED => s.passes += 1,
                _ => {
                    s.failures += 1;
                    let t = table.jobs.time_ms[job];
                    s.last_failure_ms = Some(s.last_failure_ms.map_or(t, |l| l.max(t)));
                }
            }
            if let Some((b, was_failed)) = previous
                && b == builder
            {
                let flip = u32::from(was_failed != failed);
                s.transitions += 1;
                s.flips += flip;
                here.0 += flip;
                here.1 += 1;
            }
            previous = Some((builder, failed));
            decided.push((builder, table.jobs.revision[job], failed));
        }
        worst(&mut s.worst_flip_rate, here, config);
        s.mixed_on_revision = mixed_on_revision(&mut decided);
        s.failure_rate = ratio(s.failures, s.passes + s.failures);
        s.flip_rate = ratio(s.flips, s.transitions);
        s.intermittent = s.mixed_on_revision || s.worst_flip_rate.is_some_and(|r| r >= config.min_flip_rate);
        out.push(s);
    }
    sort_stats(&mut out, TestSort::Flips, true);
    out
}

/// Sorts by `key`, ties broken by flips, failure rate, failures (all largest first) and
/// then id, so the order is total and stable across runs.
pub fn sort_stats(stats: &mut [TestStats], key: TestSort, descending: bool) {
    fn opt<T: PartialOrd>(a: Option<T>, b: Option<T>, descending: bool) -> Ordering {
        // Missing values sort last in either direction.
        match (a, b) {
            (Some(a), Some(b)) => {
                let o = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
                if descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let dir = |o: Ordering| if descending { o.reverse() } else { o };
    stats.sort_by(|a, b| {
        let primary = match key {
            TestSort::Test => dir(a.id.cmp(&b.id)),
            TestSort::Runs => dir(a.runs.cmp(&b.runs)),
            TestSort::Failures => dir(a.failures.cmp(&b.failures)),
            TestSort::Flips => dir(a.flips.cmp(&b.flips)),
            TestSort::FailureRate => opt(a.failure_rate, b.failure_rate, descending),
            TestSort::LastFailure => opt(a.last_failure_ms, b.last_failure_ms, descending),
        };
        primary
            .then_with(|| b.flips.cmp(&a.flips))
            .then_with(|| opt(a.failure_rate, b.failure_rate, true))
            .then_with(|| b.failures.cmp(&a.failures))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// The runs of test `test` in job-time order.
pub fn history(table: &TestTable, test: u32) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut row = 0usize;
    for (j, &n) in table.jobs.results.iter().enumerate() {
        for r in row..row + n as usize {
            if table.results.test[r] == test {
                runs.push(Run {
                    job: j as u32,
                    builder: table.jobs.builder[j],
                    time_ms: table.jobs.time_ms[j],
                    outcome: outcome_from_code(table.results.outcome[r]).unwrap_or(TestOutcome::Error),
                    duration_ms: table.results.duration_ms[r],
                });
            }
        }
        row += n as usize;
    }
    runs
}

/// The index of the test whose display id is `id`.
pub fn find_test(table: &TestTable, id: &str) -> Option<u32> {
    (0..table.tests.name.len()).find(|&t| table.test_name(t) == id).map(|t| t as u32)
}

/// Row indices per test, each list in row (job-time) order: a counting sort.
fn rows_by_test(table: &TestTable, tests: usize) -> Vec<Vec<u32>> {
    let mut counts = vec![0usize; tests];
    for &t in &table.results.test {
        counts[t as usize] += 1;
    }
    let mut out: Vec<Vec<u32>> = counts.into_iter().map(Vec::with_capacity).collect();
    for (r, &t) in table.results.test.iter().enumerate() {
        out[t as usize].push(r as u32);
    }
    out
}

/// Whether some (builder, revision) has both a passed and a failed run. Reorders `runs`.
fn mixed_on_revision(runs: &mut [(u32, Option<u32>, bool)]) -> bool {
    runs.sort_unstable();
    runs.windows(2).any(|w| w[0].1.is_some() && w[0].0 == w[1].0 && w[0].1 == w[1].1 && w[0].2 != w[1].2)
}

/// Raises `worst` to the flip rate of one builder's `(flips, transitions)` when it flipped
/// often enough to count.
fn worst(worst: &mut Option<f64>, (flips, transitions): (u32, u32), config: &FlakyConfig) {
    if flips >= config.min_flips.max(1)
        && let Some(rate) = ratio(flips, transitions)
    {
        *worst = Some(worst.map_or(rate, |w| w.max(rate)));
    }
}

fn ratio(a: u32, b: u32) -> Option<f64> {
    (b > 0).then(|| f64::from(a) / f64::from(b))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::reports::TestTableBuilder;

    /// (time, builder, revision, [(test, outcome)]): one job each.
    type Job<'a> = (i64, &'a str, &'a str, &'a [(&'a str, char)]);

    fn outcome(c: char) -> TestOutcome {
        match c {
            'P' => TestOutcome::Passed,
            'F' => TestOutcome::Failed,
            'E' => TestOutcome::Error,
            _ => TestOutcome::Skipped,
        }
    }

    fn table(jobs: &[Job]) -> TestTable {
        let mut b = TestTableBuilder::default();
        for (i, &(t, builder, rev, results)) in jobs.iter().enumerate() {
            b.push_job("ci", &i.to_string(), t, builder, None, Some(rev));
            for &(name, o) in results {
                b.push_result("", name, outcome(o), None);
            }
        }
        b.finish()
    }

    /// The straightforward definition, one test at a time, for comparison.
    fn reference(jobs: &[Job], name: &str) -> (u32, u32, u32, u32, u32, bool) {
        let mut per_builder: BTreeMap<&str, Vec<(i64, char)>> = BTreeMap::new();
        let mut seen: BTreeMap<(&str, &str), (bool, bool)> = BTreeMap::new();
        let (mut passes, mut failures, mut skips) = (0, 0, 0);
        for &(t, builder, rev, results) in jobs {
            for &(_, o) in results.iter().filter(|(n, _)| *n == name) {
                match o {
                    'P' => passes += 1,
                    'S' => skips += 1,
                    _ => failures += 1,
                }
                if o != 'S' {
                    per_builder.entry(builder).or_default().push((t, o));
                    let e = seen.entry((builder, rev)).or_default();
                    if o == 'P' { e.0 = true } else { e.1 = true }
                }
            }
        }
        let (mut flips, mut transitions) = (0, 0);
        for runs in per_builder.values_mut() {
            runs.sort_by_key(|r| r.0);
            for w in runs.windows(2) {
                transitions += 1;
                flips += u32::from((w[0].1 == 'P') != (w[1].1 == 'P'));
            }
        }
        let mixed = seen.values().any(|&(p, f)| p && f);
        (passes, failures, skips, flips, transitions, mixed)
    }

    fn check(jobs: &[Job]) -> Vec<TestStats> {
        let t = table(jobs);
        t.check().unwrap();
        let stats = test_stats(&t, &FlakyConfig::default());
        for s in &stats {
            let (passes, failures, skips, flips, transitions, mixed) = reference(jobs, &s.id);
            assert_eq!(
                (s.passes, s.failures, s.skips, s.flips, s.transitions, s.mixed_on_revision),
                (passes, failures, skips, flips, transitions, mixed),
                "{}",
                s.id
            );
            assert_eq!(s.runs, passes + failures + skips);
        }
        stats
    }

    #[test]
    fn empty_table_has_no_stats() {
        assert!(check(&[]).is_empty());
        assert!(history(&table(&[]), 0).is_empty());
    }

    #[test]
    fn flips_are_counted_per_builder_in_time_order() {
        let jobs: &[Job] = &[
            (1, "linux", "r1", &[("a", 'P'), ("b", 'F')]),
            (2, "win", "r1", &[("a", 'F'), ("b", 'F')]),
            (3, "linux", "r2", &[("a", 'F'), ("b", 'S')]),
            (4, "win", "r2", &[("a", 'F'), ("b", 'F')]),
            (5, "linux", "r3", &[("a", 'P'), ("b", 'F')]),
            (6, "linux", "r4", &[("a", 'E'), ("b", 'F')]),
        ];
        let stats = check(jobs);
        let a = stats.iter().find(|s| s.id == "a").unwrap();
        // linux: P F P E → 3 flips of 3; win: F F → 0 of 1.
        assert_eq!((a.flips, a.transitions, a.builders), (3, 4, 2));
        assert_eq!(a.flip_rate, Some(0.75));
        assert_eq!(a.failure_rate, Some(4.0 / 6.0));
        assert_eq!(a.last_failure_ms, Some(6));
        assert!(a.intermittent && !a.mixed_on_revision);
        let b = stats.iter().find(|s| s.id == "b").unwrap();
        assert_eq!((b.flips, b.skips, b.failure_rate), (0, 1, Some(1.0)));
        assert!(!b.intermittent);
        // Most flips first.
        assert_eq!(stats[0].id, "a");
    }

    #[test]
    fn same_revision_pass_and_fail_is_intermittent() {
        let jobs: &[Job] = &[
            (1, "linux", "r1", &[("a", 'F'), ("b", 'F')]),
            // A retrigger of r1: a passes now, b still fails.
            (2, "linux", "r1", &[("a", 'P'), ("b", 'F')]),
            // Another builder passing b on r1 is a platform difference, not intermittence.
            (3, "win", "r1", &[("b", 'P')]),
        ];
        let stats = check(jobs);
        let a = stats.iter().find(|s| s.id == "a").unwrap();
        assert!(a.mixed_on_revision && a.intermittent);
        let b = stats.iter().find(|s| s.id == "b").unwrap();
        assert!(!b.mixed_on_revision && !b.intermittent);
    }

    #[test]
    fn a_regression_and_its_fix_are_not_intermittent() {
        let mut jobs: Vec<Job> = Vec::new();
        let revs: Vec<String> = (0..60).map(|i| format!("r{i}")).collect();
        for (i, rev) in revs.iter().enumerate() {
            let o: &[(&str, char)] = if (20..30).contains(&i) { &[("a", 'F')] } else { &[("a", 'P')] };
            jobs.push((i as i64, "linux", rev, o));
        }
        let s = &check(&jobs)[0];
        assert_eq!((s.flips, s.transitions), (2, 59));
        assert!(!s.intermittent, "{s:?}");
    }

    #[test]
    fn single_and_skipped_only_runs() {
        let stats = check(&[(1, "linux", "r1", &[("a", 'P'), ("s", 'S')])]);
        let a = stats.iter().find(|s| s.id == "a").unwrap();
        assert_eq!((a.runs, a.transitions, a.flip_rate, a.failure_rate), (1, 0, None, Some(0.0)));
        let s = stats.iter().find(|s| s.id == "s").unwrap();
        assert_eq!((s.runs, s.failure_rate, s.last_failure_ms), (1, None, None));
    }

    #[test]
    fn history_lists_runs_in_time_order() {
        let jobs: &[Job] = &[
            (1, "linux", "r1", &[("a", 'P'), ("b", 'F')]),
            (2, "win", "r1", &[("b", 'S')]),
            (3, "linux", "r2", &[("a", 'E')]),
        ];
        let t = table(jobs);
        let a = find_test(&t, "a").unwrap();
        let h = history(&t, a);
        assert_eq!(
            h.iter().map(|r| (r.time_ms, r.outcome)).collect::<Vec<_>>(),
            [(1, TestOutcome::Passed), (3, TestOutcome::Error)]
        );
        assert_eq!(find_test(&t, "zzz"), None);
    }

    #[test]
    fn sorting_is_total_and_puts_missing_last() {
        let jobs: &[Job] = &[
            (1, "l", "r1", &[("a", 'P'), ("b", 'F'), ("c", 'S')]),
            (2, "l", "r2", &[("a", 'F'), ("b", 'F'), ("c", 'S')]),
        ];
        let mut stats = check(jobs);
        let order = |s: &[TestStats]| s.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        sort_stats(&mut stats, TestSort::FailureRate, true);
        assert_eq!(order(&stats), ["b", "a", "c"]);
        sort_stats(&mut stats, TestSort::FailureRate, false);
        assert_eq!(order(&stats), ["a", "b", "c"]);
        sort_stats(&mut stats, TestSort::LastFailure, true);
        assert_eq!(order(&stats)[2], "c");
        sort_stats(&mut stats, TestSort::Test, false);
        assert_eq!(order(&stats), ["a", "b", "c"]);
        for k in TestSort::ALL {
            assert_eq!(TestSort::parse(k.as_str()), Some(k));
        }
    }
}
