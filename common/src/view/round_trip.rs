//! The round trip over generated views: every field survives the query string, and equal
//! views give equal strings.

use proptest::prelude::*;

use super::*;
use crate::job::JobResult;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9&=,!%+#?/:;() .~*@'\"\\-]{1,10}", any::<String>(),]
}

fn name() -> impl Strategy<Value = String> {
    text().prop_filter("names are not empty", |s| !s.is_empty())
}

fn dim() -> impl Strategy<Value = Dim> {
    prop_oneof![proptest::sample::select(Dim::FIXED.to_vec()), name().prop_map(Dim::Tag)]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Duration),
        Just(Value::QueueWait),
        Just(Value::CpuSeconds),
        name().prop_map(Value::Metric)
    ]
}

fn bound() -> impl Strategy<Value = Option<f64>> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    proptest::option::of(prop_oneof![POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO, -1e6..1e6f64])
}

fn time_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("now".to_owned()),
        "now-[1-9][0-9]{0,2}[smhdwMy]",
        "now(-[1-9][smhdwMy])?/[smhdwMy]",
        (631_152_000_000i64..4_102_444_800_000).prop_map(|ms| ms.to_string()),
        Just("2024-03-01T12:00:00.250+01:00".to_owned()),
        Just("2024-03-01".to_owned()),
    ]
}

fn measure() -> impl Strategy<Value = ViewMeasure> {
    prop_oneof![
        proptest::sample::select(ViewMeasure::PLAIN.map(|(_, m)| m).to_vec()),
        (proptest::sample::select(Stat::ALL.to_vec()), value())
            .prop_map(|(stat, value)| ViewMeasure::Stat { stat, value }),
    ]
}

fn sort() -> impl Strategy<Value = Option<ViewSort>> {
    let key = prop_oneof![
        Just(SortKey::Key),
        Just(SortKey::Measure),
        Just(SortKey::Time),
        value().prop_map(SortKey::Value),
        dim().prop_map(SortKey::Dim),
    ];
    proptest::option::of((key, any::<bool>()).prop_map(|(key, descending)| ViewSort { key, descending }))
}

fn filters() -> impl Strategy<Value = Vec<DimFilter>> {
    let lists = (proptest::collection::vec(text(), 0..3), proptest::collection::vec(text(), 0..3));
    proptest::collection::btree_map(dim(), lists, 0..4).prop_map(|m| {
        m.into_iter()
            .map(|(dim, (mut include, mut exclude))| {
                if dim == Dim::Result {
                    // Result values are a closed set; pick one per generated string.
                    for v in include.iter_mut().chain(exclude.iter_mut()) {
                        *v = JobResult::ALL[v.len() % JobResult::ALL.len()].as_str().to_owned();
                    }
                }
                DimFilter { dim, include, exclude }
            })
            .filter(|f| !f.include.is_empty() || !f.exclude.is_empty())
            .collect()
    })
}

fn ranges() -> impl Strategy<Value = Vec<RangeFilter>> {
    proptest::collection::btree_map(value(), (bound(), bound()), 0..3).prop_map(|m| {
        m.into_iter()
            .map(|(value, (a, b))| {
                let (min, max) = match (a, b) {
                    (None, None) => (Some(0.0), None),
                    (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
                    bounds => bounds,
                };
                RangeFilter { value, min, max }
            })
            .collect()
    })
}

fn group() -> impl Strategy<Value = Vec<Dim>> {
    proptest::collection::vec(dim(), 0..=2).prop_map(|mut g| {
        g.dedup();
        g
    })
}

fn view_state() -> impl Strategy<Value = ViewState> {
    let bucket = proptest::sample::select(vec![
        None,
        Some(TimeBucket::Hour),
        Some(TimeBucket::Day),
        Some(TimeBucket::Week),
        Some(TimeBucket::Month),
    ]);
    (
        (time_expr(), time_expr()),
        filters(),
        ranges(),
        measure(),
        group(),
        bucket,
        proptest::sample::select(ViewKind::ALL.to_vec()),
        sort(),
        proptest::collection::vec(text(), 0..3),
        prop_oneof![Just(1u32), 1..=u32::MAX],
    )
        .prop_map(|((from, to), filters, ranges, measure, group, bucket, view, sort, hidden, page)| {
            ViewState { from, to, filters, ranges, measure, group, bucket, view, sort, hidden, page }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn query_string_round_trip(v in view_state()) {
        let url = v.to_query_string();
        let back = ViewState::from_query_string(&url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
        prop_assert_eq!(&back, &v, "through {}", url);
        // Equal views, equal strings; and a leading `?` changes nothing.
        prop_assert_eq!(back.to_query_string(), url.clone());
        prop_assert_eq!(ViewState::from_query_string(&format!("?{url}")).unwrap(), v);
        // Only the separators and the encoder's escapes are in the string, so it can be
        // pasted into a URL as it is.
        prop_assert!(url.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!()*:/@+%&=,".contains(&b)), "{}", url);
    }

    #[test]
    fn foreign_keys_do_not_change_the_view(v in view_state(), junk in "[a-z_]{1,8}", val in text()) {
        prop_assume!(!matches!(junk.as_str(), "from" | "to" | "measure" | "group" | "bucket" | "view" | "sort" | "hide" | "page"));
        let mut url = v.to_query_string();
        url.push_str(&format!("&{junk}="));
        super::url::encode(&val, &mut url);
        prop_assert_eq!(ViewState::from_query_string(&url).unwrap(), v);
    }
}
