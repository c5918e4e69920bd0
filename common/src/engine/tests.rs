//! Known answers for the definitions, and property tests of the engine against the naive
//! reference over generated job tables.

use proptest::prelude::*;
// In wasm32 every `#[test]` here (the property tests included) is a wasm-bindgen test, run
// in headless Chromium by wasm-bindgen-test-runner.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use super::query::*;
use super::reference;
use super::*;
use crate::job::{Job, JobResult};

const BASE_MS: i64 = 1_700_000_000_000;
const DAY_MS: i64 = 86_400_000;

fn job(
    id: usize,
    builder: &str,
    worker: Option<&str>,
    result: JobResult,
    started_s: i64,
    run_s: Option<i64>,
) -> Job {
    let mut j: Job = serde_json::from_str(&format!(
        r#"{{"source":"s","id":{id},"builder":"{builder}","result":"{}","started_at":{}}}"#,
        result.as_str(),
        BASE_MS / 1000 + started_s
    ))
    .unwrap();
    j.worker = worker.map(str::to_owned);
    j.finished_at = run_s.map(|r| Timestamp::from_millis(BASE_MS + (started_s + r) * 1000));
    j
}

/// One group of an answer: key labels, jobs, measures.
type Row = (Vec<String>, u64, Vec<Option<f64>>);

/// An expected group: key labels, jobs, measures.
type Expected<'a> = (&'a [&'a str], u64, &'a [Option<f64>]);

/// Runs `query` and compares the groups in answer order.
fn check(jobs: &[Job], query: Query, expected: &[Expected]) {
    let answer = run(&JobTable::from_jobs(jobs), &query).unwrap();
    let got: Vec<Row> = (0..answer.len())
        .map(|g| {
            let labels = (0..answer.parts.len()).map(|p| answer.label(p, g).into_owned()).collect();
            (labels, answer.rows[g], answer.values.iter().map(|v| v[g]).collect())
        })
        .collect();
    let want: Vec<Row> = expected
        .iter()
        .map(|(k, n, v)| (k.iter().map(|s| s.to_string()).collect(), *n, v.to_vec()))
        .collect();
    assert_eq!(got, want, "{query:?}");
}

fn results_farm() -> Vec<Job> {
    JobResult::ALL
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let finished = r.is_finished().then_some(10 * (i as i64 + 1));
            job(i, if i % 2 == 0 { "even" } else { "odd" }, Some("w"), r, i as i64 * 3600, finished)
        })
        .collect()
}

#[test]
fn success_rate_leaves_out_undecided_jobs() {
    // success, warnings | failure, exception decide; skipped, retry, cancelled, running and
    // pending do not.
    let q = Query {
        measures: vec![Measure::Count, Measure::SuccessRate, Measure::FailureRate],
        ..Query::default()
    };
    check(&results_farm(), q, &[(&[], 9, &[Some(9.0), Some(0.5), Some(0.5)])]);
    let only_cancelled = [job(1, "b", None, JobResult::Cancelled, 0, Some(5))];
    let q = Query { measures: vec![Measure::SuccessRate], ..Query::default() };
    check(&only_cancelled, q, &[(&[], 1, &[None])]);
}

#[test]
fn moments_of_known_values() {
    let runs = [2, 4, 4, 4, 5, 5, 7, 9];
    let jobs: Vec<Job> =
        runs.iter().enumerate().map(|(i, &r)| job(i, "b", None, JobResult::Success, 0, Some(r))).collect();
    let d = || Value::Duration;
    let q = Query {
        measures: vec![
            Measure::Sum(d()),
            Measure::Mean(d()),
            Measure::Min(d()),
            Measure::Max(d()),
            Measure::StddevPop(d()),
            Measure::Quantile { value: d(), p: 0.5 },
            Measure::Quantile { value: d(), p: 0.9 },
        ],
        ..Query::default()
    };
    let p90 = 7.0 + 0.3 * 2.0; // h = 0.9 · 7 = 6.3 between 7 and 9
    check(
        &jobs,
        q,
        &[(&[], 8, &[Some(40.0), Some(5.0), Some(2.0), Some(9.0), Some(2.0), Some(4.5), Some(p90)])],
    );
    let q = Query { measures: vec![Measure::StddevSamp(d()), Measure::StddevPop(d())], ..Query::default() };
    check(&jobs[..1], q.clone(), &[(&[], 1, &[None, Some(0.0)])]);
    check(&[], q, &[(&[], 0, &[None, None])]);
}

#[test]
fn pivot_with_totals_and_top_k() {
    let farm = results_farm();
    let q = Query {
        dims: vec!["builder".into()],
        bucket: Some(TimeBucket::Day),
        measures: vec![Measure::Count],
        totals: true,
        ..Query::default()
    };
    // BASE_MS is 2023-11-14T22:13:20Z: jobs 0 and 1 fall on the 14th, the rest on the 15th.
    let (d14, d15) = ("2023-11-14T00:00:00Z", "2023-11-15T00:00:00Z");
    check(
        &farm,
        q,
        &[
            (&["even", d14], 1, &[Some(1.0)]),
            (&["even", d15], 4, &[Some(4.0)]),
            (&["even", "(all)"], 5, &[Some(5.0)]),
            (&["odd", d14], 1, &[Some(1.0)]),
            (&["odd", d15], 3, &[Some(3.0)]),
            (&["odd", "(all)"], 4, &[Some(4.0)]),
            (&["(all)", d14], 2, &[Some(2.0)]),
            (&["(all)", d15], 7, &[Some(7.0)]),
            (&["(all)", "(all)"], 9, &[Some(9.0)]),
        ],
    );
    let q = Query {
        dims: vec!["result".into()],
        measures: vec![Measure::Max(Value::Duration)],
        top: Some(TopK { part: 0, k: 2, by: 0, ascending: false, other: true }),
        sort: Sort { by: SortBy::Measure(0), descending: true },
        ..Query::default()
    };
    // Durations 10·(i+1) s for the seven finished results: cancelled (70) and retry (60)
    // lead; the rest, running and pending included, are "other".
    check(
        &farm,
        q,
        &[
            (&["cancelled"], 1, &[Some(70.0)]),
            (&["retry"], 1, &[Some(60.0)]),
            (&["(other)"], 7, &[Some(50.0)]),
        ],
    );
}

#[test]
fn filters_and_names() {
    let farm = results_farm();
    let count = |filters: Vec<Filter>| {
        run(&JobTable::from_jobs(&farm), &Query { filters, ..Query::default() }).unwrap().selected
    };
    let s = |v: &str| v.to_owned();
    assert_eq!(count(vec![Filter::Eq { dim: s("builder"), value: s("odd") }]), 4);
    assert_eq!(count(vec![Filter::In { dim: s("result"), values: vec![s("success"), s("failure")] }]), 2);
    assert_eq!(count(vec![Filter::NotIn { dim: s("result"), values: vec![s("success")] }]), 8);
    assert_eq!(count(vec![Filter::Contains { dim: s("result"), text: s("CE") }]), 3); // success, exception, cancelled
    assert_eq!(count(vec![Filter::In { dim: s("project"), values: vec![s("")] }]), 9);
    assert_eq!(count(vec![Filter::Range { value: Value::Duration, min: Some(20.0), max: Some(40.0) }]), 3);
    let t = |h: i64| Some(BASE_MS + h * 3_600_000);
    assert_eq!(count(vec![Filter::Time { field: TimeField::Time, from_ms: t(2), to_ms: t(4) }]), 3);
    assert_eq!(count(vec![Filter::Time { field: TimeField::Finished, from_ms: None, to_ms: t(1) }]), 1);
    let err =
        run(&JobTable::from_jobs(&farm), &Query { dims: vec![s("nope")], ..Query::default() }).unwrap_err();
    assert_eq!(err, QueryError::UnknownDim(s("nope")));
    let q: Query = serde_json::from_str(
        r#"{"filters":[{"op":"in","dim":"worker","values":["w"]}],"dims":["builder"],"bucket":"week",
            "measures":["count",{"quantile":{"value":"duration","p":0.95}},{"mean":{"metric":"size"}}],
            "sort":{"by":{"measure":1},"descending":true}}"#,
    )
    .unwrap();
    assert_eq!(q.measures[2], Measure::Mean(Value::Metric(s("size"))));
}

// ---- property tests against the reference ----

const DIMS: [&str; 7] = ["builder", "worker", "tag.os", "result", "project", "revision", "source"];
const POOL: [&str; 12] = ["", "b0", "b1", "w0", "w2", "linux", "mac", "success", "failure", "p", "r1", "a"];

fn arb_job() -> impl Strategy<Value = Job> {
    let names = (
        0..2usize,
        0..4usize,
        prop::option::of(0..3usize),
        prop::option::of(0..2usize),
        prop::option::of(0..4usize),
    );
    let times = (0..5u8, 0..90 * 86_400i64, 0..2i64, 0..900_000i64, 0..7_200_000i64);
    let extra = (
        0..9u8,
        prop::option::of(0..3usize),
        prop::option::of(-40..40i32),
        prop::option::of(0..4000u32),
        any::<bool>(),
    );
    (names, times, extra).prop_map(
        |((src, b, w, p, r), (shape, at_s, whole, queue, run), (res, os, size, cpu, konst))| {
            let t = BASE_MS + at_s * 1000 + if whole == 0 { 0 } else { at_s % 1000 };
            let ts = |ms: i64| Some(Timestamp::from_millis(ms));
            let (requested, started, finished) = match shape {
                0 => (ts(t), None, None),
                1 => (None, ts(t), None),
                2 => (ts(t - queue), ts(t), None),
                3 => (ts(t - queue), ts(t), ts(t + run)),
                _ => (None, ts(t), ts(t + run)),
            };
            let mut j = Job {
                source: ["a", "b"][src].into(),
                id: String::new(),
                builder: format!("b{b}"),
                project: p.map(|p| ["p", "Q"][p].into()),
                branch: None,
                revision: r.map(|r| format!("r{r}")),
                worker: w.map(|w| format!("w{w}")),
                requested_at: requested,
                started_at: started,
                finished_at: finished,
                result: JobResult::from_code(res).unwrap(),
                url: None,
                tags: Default::default(),
                metrics: Default::default(),
                steps: Vec::new(),
            };
            if let Some(os) = os {
                j.tags.insert("os".into(), ["linux", "mac", "Linux-arm"][os].into());
            }
            if let Some(s) = size {
                j.metrics.insert("size".into(), f64::from(s) * 0.25);
            }
            if let Some(c) = cpu {
                j.metrics.insert("cpu_seconds".into(), f64::from(c) * 0.5);
            }
            if konst {
                j.metrics.insert("const".into(), 3.0);
            }
            j
        },
    )
}

fn arb_jobs() -> impl Strategy<Value = Vec<Job>> {
    prop::collection::vec(arb_job(), 1..120).prop_map(|mut jobs| {
        for (i, j) in jobs.iter_mut().enumerate() {
            j.id = i.to_string();
        }
        // Every tag and metric the queries name exists in the table.
        jobs[0].tags.insert("os".into(), "mac".into());
        for m in ["size", "cpu_seconds", "const"] {
            jobs[0].metrics.entry(m.into()).or_insert(3.0);
        }
        jobs
    })
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Duration),
        Just(Value::QueueWait),
        Just(Value::CpuSeconds),
        Just(Value::Metric("size".into())),
        Just(Value::Metric("const".into())),
    ]
}

fn arb_filter() -> impl Strategy<Value = Filter> {
    let dim = prop::sample::select(&DIMS[..]).prop_map(str::to_owned);
    let val = prop::sample::select(&POOL[..]).prop_map(str::to_owned);
    let vals = prop::collection::vec(val.clone(), 0..3);
    let bound = prop::option::of(-10.0..3000.0f64);
    let instant = prop::option::of((0..95 * DAY_MS).prop_map(|t| BASE_MS + t - DAY_MS));
    let field = prop_oneof![
        Just(TimeField::Time),
        Just(TimeField::Requested),
        Just(TimeField::Started),
        Just(TimeField::Finished)
    ];
    prop_oneof![
        (dim.clone(), val).prop_map(|(dim, value)| Filter::Eq { dim, value }),
        (dim.clone(), vals.clone()).prop_map(|(dim, values)| Filter::In { dim, values }),
        (dim.clone(), vals).prop_map(|(dim, values)| Filter::NotIn { dim, values }),
        (dim, prop::sample::select(&["", "b", "W", "inu", "x", "1"][..]))
            .prop_map(|(dim, t)| Filter::Contains { dim, text: t.into() }),
        (arb_value(), bound.clone(), bound).prop_map(|(value, min, max)| Filter::Range { value, min, max }),
        (field, instant.clone(), instant).prop_map(|(field, from_ms, to_ms)| Filter::Time {
            field,
            from_ms,
            to_ms
        }),
    ]
}

fn arb_query() -> impl Strategy<Value = Query> {
    let dims = prop::sample::subsequence(&DIMS[..], 0..=2).prop_shuffle();
    let bucket = prop::option::of(prop_oneof![
        Just(TimeBucket::Hour),
        Just(TimeBucket::Day),
        Just(TimeBucket::Week),
        Just(TimeBucket::Month)
    ]);
    let p = prop_oneof![Just(0.0), Just(1.0), Just(0.5), 0.0..=1.0f64];
    // The first nine measures add up from finer groups (the engine then merges group
    // states for subtotals and top-k); half the queries stop there.
    let measures = (arb_value(), p.clone(), p, any::<bool>()).prop_map(|(v, p1, p2, mergeable_only)| {
        let mut all = vec![
            Measure::Count,
            Measure::SuccessRate,
            Measure::FailureRate,
            Measure::Failures,
            Measure::Present(v.clone()),
            Measure::Sum(v.clone()),
            Measure::Mean(v.clone()),
            Measure::Min(v.clone()),
            Measure::Max(v.clone()),
            Measure::Distinct("worker".into()),
            Measure::StddevPop(v.clone()),
            Measure::StddevSamp(v.clone()),
            Measure::Quantile { value: v.clone(), p: p1 },
            Measure::Quantile { value: v.clone(), p: p2 },
            Measure::Quantile { value: v, p: 0.95 },
        ];
        all.truncate(if mergeable_only { 9 } else { all.len() });
        all
    });
    let top = prop::option::of((0..3usize, 0..4usize, 0..15usize, any::<bool>(), any::<bool>()));
    let sort = (prop::option::of(0..15usize), any::<bool>());
    (prop::collection::vec(arb_filter(), 0..3), dims, bucket, measures, any::<bool>(), top, sort).prop_map(
        |(filters, dims, bucket, measures, totals, top, (sort_by, descending))| {
            let parts = dims.len() + usize::from(bucket.is_some());
            let n = measures.len();
            let top = top.filter(|_| parts > 0).map(|(part, k, by, ascending, other)| TopK {
                part: part % parts,
                k,
                by: by % n,
                ascending,
                other,
            });
            let by = sort_by.map_or(SortBy::Key, |m| SortBy::Measure(m % n));
            let dims = dims.into_iter().map(str::to_owned).collect();
            Query { filters, dims, bucket, measures, totals, top, sort: Sort { by, descending } }
        },
    )
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference(jobs in arb_jobs(), query in arb_query()) {
        let table = JobTable::from_jobs(&jobs);
        let answer = run(&table, &query).unwrap();
        let expected = reference::answer(&jobs, &query);
        let mut got = reference::Groups::new();
        for g in 0..answer.len() {
            let labels: Vec<String> = (0..answer.parts.len()).map(|p| answer.label(p, g).into_owned()).collect();
            let values: Vec<Option<f64>> = answer.values.iter().map(|v| v[g]).collect();
            prop_assert!(values.iter().flatten().all(|x| x.is_finite()), "non-finite in {values:?}");
            prop_assert!(got.insert(labels.clone(), (answer.rows[g], values)).is_none(), "duplicate group {labels:?}");
        }
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
        for (k, (rows, values)) in &expected {
            let (got_rows, got_values) = &got[k];
            prop_assert_eq!(rows, got_rows, "rows of {:?}", k);
            for (m, (want, have)) in values.iter().zip(got_values).enumerate() {
                prop_assert!(close(*want, *have), "{:?} of {:?}: want {:?}, got {:?}", query.measures[m], k, want, have);
            }
        }
        prop_assert_eq!(answer.selected as usize, select(&table, &query.filters).unwrap().len());
        // The order is the one asked for.
        for b in 1..answer.len() {
            let a = b - 1;
            let (ka, kb) = (answer.key(a), answer.key(b));
            let ordered = match query.sort.by {
                SortBy::Key if query.sort.descending => ka >= kb,
                SortBy::Key => ka <= kb,
                SortBy::Measure(m) => match (answer.values[m][a], answer.values[m][b]) {
                    (Some(x), Some(y)) if x == y => ka <= kb,
                    (Some(x), Some(y)) => (x < y) != query.sort.descending,
                    (x, y) => x.is_some() || y.is_none() && ka <= kb,
                },
            };
            prop_assert!(ordered, "groups {a} and {b} out of order");
        }
        for part in &answer.parts {
            if let Part::Dim { labels, .. } = part {
                prop_assert!(labels.windows(2).all(|w| w[0] < w[1]), "labels not sorted: {labels:?}");
            }
        }
    }

    #[test]
    fn sessions_answer_like_run(jobs in arb_jobs(), q1 in arb_query(), q2 in arb_query(), more in prop::collection::vec(arb_filter(), 0..2)) {
        let table = JobTable::from_jobs(&jobs);
        let mut session = Session::new(&table);
        let narrower = Query { filters: [q1.filters.clone(), more].concat(), ..q2.clone() };
        for q in [&q1, &q1, &narrower, &q2] {
            prop_assert_eq!(session.run(q).unwrap(), run(&table, q).unwrap());
        }
    }

    #[test]
    fn wire_round_trips(jobs in arb_jobs()) {
        let table = JobTable::from_jobs(&jobs);
        prop_assert_eq!(JobTable::decode(&table.encode()).unwrap(), table);
    }

    #[test]
    fn quantiles_match_sorting(mut xs in prop::collection::vec(-50..50i32, 1..300), ps in prop::collection::vec(0.0..=1.0f64, 1..5)) {
        let values: Vec<f64> = xs.iter_mut().map(|x| f64::from(*x) * 0.5).collect();
        let mut keys: Vec<u64> = values.iter().map(|&v| measure::order_key(v)).collect();
        let mut out = vec![0.0; ps.len()];
        measure::quantiles(&mut keys, &ps, &mut out);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for (&p, &got) in ps.iter().zip(&out) {
            let h = p * (sorted.len() - 1) as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(sorted.len() - 1);
            let want = sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]);
            prop_assert!(close(Some(want), Some(got)), "p{p}: want {want}, got {got}");
        }
    }
}
