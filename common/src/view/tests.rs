//! Hand-written URLs: how each key reads, the canonical string written back, and the
//! errors of malformed values. The round trip over generated views is in `round_trip.rs`,
//! the engine mapping and drill-down tests in `engine.rs`.

use super::*;

/// Reads `input`, expects the default view changed by `edit`, and expects `canonical` as
/// the query string written back (which must read back to the same view).
fn check(input: &str, edit: fn(&mut ViewState), canonical: &str) {
    let got = ViewState::from_query_string(input).unwrap_or_else(|e| panic!("{input}: {e}"));
    let mut want = ViewState::default();
    edit(&mut want);
    assert_eq!(got, want, "reading {input}");
    assert_eq!(got.to_query_string(), canonical, "writing {input}");
    assert_eq!(ViewState::from_query_string(canonical).unwrap(), want, "rereading {canonical}");
}

fn inc(dim: Dim, values: &[&str]) -> DimFilter {
    DimFilter { dim, include: values.iter().map(|v| v.to_string()).collect(), exclude: vec![] }
}

fn exc(dim: Dim, values: &[&str]) -> DimFilter {
    DimFilter { dim, include: vec![], exclude: values.iter().map(|v| v.to_string()).collect() }
}

fn tag(key: &str) -> Dim {
    Dim::Tag(key.to_owned())
}

fn metric(name: &str) -> Value {
    Value::Metric(name.to_owned())
}

#[test]
fn bare_url_is_the_default_view() {
    check("", |_| {}, "");
    check("?", |_| {}, "");
    let v = ViewState::default();
    assert_eq!((v.from.as_str(), v.to.as_str()), ("now-30d", "now"));
    assert_eq!(
        (v.measure, v.bucket, v.view, v.page),
        (ViewMeasure::Count, Some(TimeBucket::Day), ViewKind::Line, 1)
    );
    // Spelling out a default writes nothing.
    check("from=now-30d&to=now&measure=count&bucket=day&view=line&page=1", |_| {}, "");
}

#[test]
fn time_range() {
    check("?from=now-7d&to=now", |v| v.from = "now-7d".into(), "from=now-7d");
    check(
        "from=now-1M/M&to=now-1M/M",
        |v| (v.from, v.to) = ("now-1M/M".into(), "now-1M/M".into()),
        "from=now-1M/M&to=now-1M/M",
    );
    check("from=1709251200000", |v| v.from = "1709251200000".into(), "from=1709251200000");
    check(
        "from=2024-03-01T00:00:00Z",
        |v| v.from = "2024-03-01T00:00:00Z".into(),
        "from=2024-03-01T00:00:00Z",
    );
    // A literal `+` is a space in a query string; an offset must be written %2B.
    check(
        "from=2024-03-01T00:00:00%2B01:00",
        |v| v.from = "2024-03-01T00:00:00+01:00".into(),
        "from=2024-03-01T00:00:00%2B01:00",
    );
    let range = ViewState::from_query_string("from=now-7d").unwrap().time_range(1_710_000_000_000).unwrap();
    assert_eq!(
        range,
        crate::TimeRange { from_ms: 1_710_000_000_000 - 7 * 86_400_000, to_ms: 1_710_000_000_000 }
    );
}

#[test]
fn dimension_filters() {
    check(
        "not-result=cancelled&var-worker=a&var-worker=b",
        |v| v.filters = vec![inc(Dim::Worker, &["a", "b"]), exc(Dim::Result, &["cancelled"])],
        "var-worker=a&var-worker=b&not-result=cancelled",
    );
    check(
        "var-builder=x&not-builder=y&var-source=s",
        |v| {
            v.filters = vec![
                inc(Dim::Source, &["s"]),
                DimFilter { dim: Dim::Builder, include: vec!["x".into()], exclude: vec!["y".into()] },
            ]
        },
        "var-source=s&var-builder=x&not-builder=y",
    );
    // Empty value: jobs without a worker.
    check("var-worker=", |v| v.filters = vec![inc(Dim::Worker, &[""])], "var-worker=");
    // Tags with dots and spaces, ordered by key after the fixed dimensions.
    check(
        "var-tag.os.name=linux&var-tag.build+type=opt+debug&var-project=core",
        |v| {
            v.filters = vec![
                inc(Dim::Project, &["core"]),
                inc(tag("build type"), &["opt debug"]),
                inc(tag("os.name"), &["linux"]),
            ]
        },
        "var-project=core&var-tag.build+type=opt+debug&var-tag.os.name=linux",
    );
    // Values with the query string's own delimiters, `+`, `%` and `#`.
    check(
        "var-branch=a%26b%3Dc%2Cd!e",
        |v| v.filters = vec![inc(Dim::Branch, &["a&b=c,d!e"])],
        "var-branch=a%26b%3Dc%2Cd!e",
    );
    check(
        "var-branch=1%2B1%25%23",
        |v| v.filters = vec![inc(Dim::Branch, &["1+1%#"])],
        "var-branch=1%2B1%25%23",
    );
    check(
        "var-branch=release/1.0",
        |v| v.filters = vec![inc(Dim::Branch, &["release/1.0"])],
        "var-branch=release/1.0",
    );
    // A tag key with `=` and `&` is encoded in the key.
    check("var-tag.a%3Db%26c=1", |v| v.filters = vec![inc(tag("a=b&c"), &["1"])], "var-tag.a%3Db%26c=1");
    // Unicode, encoded or raw; a stray `%` is itself.
    check(
        "var-worker=f%C3%BCr-%E2%9C%93",
        |v| v.filters = vec![inc(Dim::Worker, &["für-✓"])],
        "var-worker=f%C3%BCr-%E2%9C%93",
    );
    check("var-worker=für", |v| v.filters = vec![inc(Dim::Worker, &["für"])], "var-worker=f%C3%BCr");
    check("var-worker=100%", |v| v.filters = vec![inc(Dim::Worker, &["100%"])], "var-worker=100%25");
}

#[test]
fn numeric_ranges() {
    check(
        "range-duration=600..",
        |v| v.ranges = vec![range(Value::Duration, Some(600.0), None)],
        "range-duration=600..",
    );
    check(
        "range-metric.size=..1e9&range-queue_wait=1.5..2.5",
        |v| {
            v.ranges =
                vec![range(Value::QueueWait, Some(1.5), Some(2.5)), range(metric("size"), None, Some(1e9))]
        },
        "range-queue_wait=1.5..2.5&range-metric.size=..1000000000",
    );
    check(
        "range-cpu_seconds=-1..-0.5",
        |v| v.ranges = vec![range(Value::CpuSeconds, Some(-1.0), Some(-0.5))],
        "range-cpu_seconds=-1..-0.5",
    );
    // The last range of a value wins.
    check(
        "range-duration=1..2&range-duration=3..",
        |v| v.ranges = vec![range(Value::Duration, Some(3.0), None)],
        "range-duration=3..",
    );
}

fn range(value: Value, min: Option<f64>, max: Option<f64>) -> RangeFilter {
    RangeFilter { value, min, max }
}

#[test]
fn measure_group_bucket_view() {
    let p95 = |v: &mut ViewState| v.measure = ViewMeasure::Stat { stat: Stat::P95, value: Value::Duration };
    check("measure=p95(duration)", p95, "measure=p95(duration)");
    check("measure=p95%28duration%29", p95, "measure=p95(duration)");
    check(
        "measure=stddev(metric.build_size_bytes)",
        |v| v.measure = ViewMeasure::Stat { stat: Stat::Stddev, value: metric("build_size_bytes") },
        "measure=stddev(metric.build_size_bytes)",
    );
    check(
        "measure=max(metric.a(b))",
        |v| v.measure = ViewMeasure::Stat { stat: Stat::Max, value: metric("a(b)") },
        "measure=max(metric.a(b))",
    );
    check("measure=cpu_hours", |v| v.measure = ViewMeasure::CpuHours, "measure=cpu_hours");
    check("measure=failures", |v| v.measure = ViewMeasure::Failures, "measure=failures");
    check("group=worker,builder", |v| v.group = vec![Dim::Worker, Dim::Builder], "group=worker,builder");
    check(
        "group=tag.a%2Cb,tag.MACHINE",
        |v| v.group = vec![tag("a,b"), tag("MACHINE")],
        "group=tag.a%2Cb,tag.MACHINE",
    );
    check("group=", |_| {}, "");
    check("bucket=none", |v| v.bucket = None, "bucket=none");
    check("bucket=week", |v| v.bucket = Some(TimeBucket::Week), "bucket=week");
    check("view=stacked_bar", |v| v.view = ViewKind::StackedBar, "view=stacked_bar");
    // The last of a repeated single-valued key wins.
    check("view=bar&view=pivot", |v| v.view = ViewKind::Pivot, "view=pivot");
}

#[test]
fn sort_hide_page() {
    fn sort(key: SortKey, descending: bool) -> Option<ViewSort> {
        Some(ViewSort { key, descending })
    }
    check("sort=-measure", |v| v.sort = sort(SortKey::Measure, true), "sort=-measure");
    check("sort=key", |v| v.sort = sort(SortKey::Key, false), "sort=key");
    check("sort=-duration", |v| v.sort = sort(SortKey::Value(Value::Duration), true), "sort=-duration");
    check("sort=tag.os", |v| v.sort = sort(SortKey::Dim(tag("os")), false), "sort=tag.os");
    check("sort=-metric.x", |v| v.sort = sort(SortKey::Value(metric("x")), true), "sort=-metric.x");
    check(
        "hide=a&hide=b%26c&hide=",
        |v| v.hidden = vec!["a".into(), "b&c".into(), "".into()],
        "hide=a&hide=b%26c&hide=",
    );
    check("page=3", |v| v.page = 3, "page=3");
}

#[test]
fn unknown_keys_are_ignored() {
    check(
        "format=csv&view=jobs&orgId=1&refresh=5s&var&x-worker=1&=&&utm_source=mail",
        |v| v.view = ViewKind::Jobs,
        "view=jobs",
    );
}

#[test]
fn every_key_in_its_order() {
    check(
        "page=2&hide=x&sort=-measure&view=heatmap&bucket=hour&group=worker&measure=failure_rate&range-duration=..60\
         &not-tag.k=v&var-worker=w&to=now-1d&from=now-8d",
        |v| {
            v.from = "now-8d".into();
            v.to = "now-1d".into();
            v.filters = vec![inc(Dim::Worker, &["w"]), exc(tag("k"), &["v"])];
            v.ranges = vec![range(Value::Duration, None, Some(60.0))];
            v.measure = ViewMeasure::FailureRate;
            v.group = vec![Dim::Worker];
            v.bucket = Some(TimeBucket::Hour);
            v.view = ViewKind::Heatmap;
            v.sort = Some(ViewSort { key: SortKey::Measure, descending: true });
            v.hidden = vec!["x".into()];
            v.page = 2;
        },
        "from=now-8d&to=now-1d&var-worker=w&not-tag.k=v&range-duration=..60&measure=failure_rate&group=worker\
         &bucket=hour&view=heatmap&sort=-measure&hide=x&page=2",
    );
}

/// Reading `input` fails on `key` with `value`, and the message mentions `needle`.
fn check_err(input: &str, key: &str, value: &str, needle: &str) {
    let e = ViewState::from_query_string(input).expect_err(input);
    assert_eq!((e.key.as_str(), e.value.as_str()), (key, value), "{input}: {e}");
    assert!(e.expected.contains(needle), "{input}: `{}` lacks `{needle}`", e.expected);
    assert!(e.to_string().starts_with(&format!("`{key}={value}`: ")), "{e}");
}

#[test]
fn malformed_values_name_key_value_and_what_is_allowed() {
    for (input, key, value, needle) in [
        ("from=yesterday", "from", "yesterday", "now-7d"),
        ("to=now-7x", "to", "now-7x", "unknown unit `x`"),
        ("from=", "from", "", "empty"),
        ("from=2024-03-01T00:00:00+01:00", "from", "2024-03-01T00:00:00 01:00", "not a time"),
        ("measure=p96(duration)", "measure", "p96(duration)", "p95"),
        ("measure=p95(durations)", "measure", "p95(durations)", "queue_wait"),
        ("measure=p95(metric.)", "measure", "p95(metric.)", "metric.NAME"),
        ("measure=", "measure", "", "success_rate"),
        ("group=worker,builder,branch", "group", "worker,builder,branch", "at most 2"),
        ("group=worker,worker", "group", "worker,worker", "twice"),
        ("group=wroker", "group", "wroker", "`wroker` is not a dimension"),
        ("group=worker,", "group", "worker,", "`` is not a dimension"),
        ("bucket=fortnight", "bucket", "fortnight", "hour, day, week, month, none"),
        ("view=pie", "view", "pie", "stacked_bar"),
        ("sort=-colour", "sort", "-colour", "descending"),
        ("sort=", "sort", "", "measure"),
        ("page=0", "page", "0", "1 or more"),
        ("page=x", "page", "x", "page number"),
        ("page=-1", "page", "-1", "page number"),
        ("var-wroker=a", "var-wroker", "a", "`wroker` is not a dimension"),
        ("not-tag.=a", "not-tag.", "a", "tag.KEY"),
        ("var-result=succes", "var-result", "succes", "success, warnings"),
        ("var-result=", "var-result", "", "a job result"),
        ("range-duration=abc", "range-duration", "abc", "MIN..MAX"),
        ("range-duration=5..1", "range-duration", "5..1", "MIN ≤ MAX"),
        ("range-duration=..", "range-duration", "..", "either one optional"),
        ("range-duration=1..inf", "range-duration", "1..inf", "finite"),
        ("range-duration=NaN..", "range-duration", "NaN..", "finite"),
        ("range-size=1..2", "range-size", "1..2", "`size` is not a value"),
    ] {
        check_err(input, key, value, needle);
    }
    // The first bad value is reported even when good ones follow.
    check_err("view=pivot&page=0&view=nope", "page", "0", "1 or more");
}
