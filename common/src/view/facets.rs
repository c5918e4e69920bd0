//! Facet counts for the filter panel: per dimension, how many jobs in view have each value,
//! counted under every filter of the view except the dimension's own (the usual faceted
//! search rule, so ticking a second worker does not hide the others' counts).

use super::{Dim, ViewError, ViewState};
use crate::engine::{self, Selection};
use crate::table::{Codes, JobTable};

/// One value of a facet: its label (`""` for jobs without a value) and job count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacetValue {
    pub label: String,
    pub count: u64,
}

/// The values of one dimension, most jobs first (ties by label), cut to a limit; values the
/// view selects or excludes are always listed, first, even when no job in view has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facet {
    pub dim: Dim,
    pub values: Vec<FacetValue>,
    /// Values with at least one job that match the search, listed or not.
    pub matching: usize,
}

/// Counts facets of one view over one table. The selection under all of the view's
/// filters is computed once and shared by every dimension the view does not filter.
pub struct FacetCounter<'t> {
    table: &'t JobTable,
    view: &'t ViewState,
    now_ms: i64,
    all: Selection,
}

impl<'t> FacetCounter<'t> {
    pub fn new(table: &'t JobTable, view: &'t ViewState, now_ms: i64) -> Result<Self, ViewError> {
        let all = select(table, view, now_ms, None)?;
        Ok(FacetCounter { table, view, now_ms, all })
    }

    /// Jobs passing every filter of the view (the job count the page shows).
    pub fn selected(&self) -> usize {
        self.all.len()
    }

    /// The facet of `dim`: values whose label contains `search` (case-insensitive; empty:
    /// all), at most `limit` of them besides the view's own.
    pub fn facet(&self, dim: &Dim, search: &str, limit: usize) -> Result<Facet, ViewError> {
        let Some(column) = self.table.dim(&dim.name()) else {
            return Ok(Facet { dim: dim.clone(), values: Vec::new(), matching: 0 });
        };
        let own = self.view.filter(dim);
        let counts = match own {
            Some(_) => count_codes(
                &column.codes,
                select(self.table, self.view, self.now_ms, Some(dim))?.rows(),
                column.values.len(),
            ),
            None => count_codes(&column.codes, self.all.rows(), column.values.len()),
        };
        let needle = search.trim().to_lowercase();
        let matches = |label: &str| needle.is_empty() || label.to_lowercase().contains(&needle);
        let mut codes: Vec<usize> =
            (0..counts.len()).filter(|&c| counts[c] > 0 && matches(&column.values[c])).collect();
        let matching = codes.len();
        let by_count = |&a: &usize, &b: &usize| {
            counts[b].cmp(&counts[a]).then_with(|| column.values[a].cmp(&column.values[b]))
        };
        if codes.len() > limit {
            codes.select_nth_unstable_by(limit, by_count);
            codes.truncate(limit);
        }
        codes.sort_unstable_by(by_count);
        let chosen: Vec<&String> =
            own.map(|f| f.include.iter().chain(&f.exclude).collect()).unwrap_or_default();
        let mut values: Vec<FacetValue> = chosen
            .iter()
            .map(|label| {
                let code = column.values.iter().position(|v| v == label.as_str());
                FacetValue { label: (*label).clone(), count: code.map_or(0, |c| counts[c]) }
            })
            .collect();
        values.extend(
            codes
                .into_iter()
                .map(|c| FacetValue { label: column.values[c].to_owned(), count: counts[c] })
                .filter(|v| !chosen.iter().any(|l| **l == v.label)),
        );
        Ok(Facet { dim: dim.clone(), values, matching })
    }
}

/// The dimensions of a table, fixed ones first, as [`Dim`]s.
pub fn dims_of(table: &JobTable) -> Vec<Dim> {
    table.dims.iter().filter_map(|d| Dim::parse(&d.name)).collect()
}

fn select(
    table: &JobTable,
    view: &ViewState,
    now_ms: i64,
    except: Option<&Dim>,
) -> Result<Selection, ViewError> {
    let filters = view.engine_filters(table, now_ms, except)?;
    engine::select(table, &filters).map_err(|e| ViewError::new("filters", "", e.to_string()))
}

/// Jobs per dictionary code among `rows`.
fn count_codes(codes: &Codes, rows: &[u32], card: usize) -> Vec<u64> {
    let mut counts = vec![0u64; card];
    match codes {
        Codes::U8(c) => rows.iter().for_each(|&r| counts[c[r as usize] as usize] += 1),
        Codes::U16(c) => rows.iter().for_each(|&r| counts[c[r as usize] as usize] += 1),
        Codes::U32(c) => rows.iter().for_each(|&r| counts[c[r as usize] as usize] += 1),
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DemoConfig, generate};

    #[test]
    fn counts_leave_out_the_dimensions_own_filter_and_match_a_count_by_hand() {
        let config = DemoConfig { jobs: 4000, days: 10, ..Default::default() };
        let jobs = generate(config);
        let table = JobTable::from_jobs(&jobs);
        let now = config.end_ms;
        let view = ViewState::from_query_string(
            "from=now-7d&var-worker=mac-worker-01&var-worker=linux-worker-001&not-result=cancelled",
        )
        .unwrap();
        let counter = FacetCounter::new(&table, &view, now).unwrap();
        let in_range = |j: &&crate::Job| {
            let t = j.started_at.or(j.requested_at).map(|t| t.as_millis());
            t.is_some_and(|t| t >= now - 7 * 86_400_000 && t <= now)
        };
        let by_hand = |keep: &dyn Fn(&crate::Job) -> bool, key: &dyn Fn(&crate::Job) -> String| {
            let mut m = std::collections::BTreeMap::<String, u64>::new();
            for j in jobs.iter().filter(in_range).filter(|j| keep(j)) {
                *m.entry(key(j)).or_default() += 1;
            }
            m
        };
        let not_cancelled = |j: &crate::Job| j.result != crate::JobResult::Cancelled;
        let in_workers =
            |j: &crate::Job| matches!(j.worker.as_deref(), Some("mac-worker-01" | "linux-worker-001"));
        // Builder: every filter applies.
        let want = by_hand(&|j| not_cancelled(j) && in_workers(j), &|j| j.builder.clone());
        let got = counter.facet(&Dim::Builder, "", 1000).unwrap();
        let got_map: std::collections::BTreeMap<String, u64> =
            got.values.iter().map(|v| (v.label.clone(), v.count)).collect();
        assert_eq!(got_map, want);
        assert_eq!(counter.selected() as u64, want.values().sum::<u64>());
        // Worker: its own filter (only "not set") is left out, the result filter is not.
        let want = by_hand(&not_cancelled, &|j| j.worker.clone().unwrap_or_default());
        let got = counter.facet(&Dim::Worker, "", 1000).unwrap();
        let first: Vec<&str> = got.values[..2].iter().map(|v| v.label.as_str()).collect();
        assert_eq!(first, ["mac-worker-01", "linux-worker-001"], "selected values come first");
        let got_map: std::collections::BTreeMap<String, u64> =
            got.values.iter().map(|v| (v.label.clone(), v.count)).collect();
        assert_eq!(got_map, want);
        // Result: the excluded value is listed first with its count.
        let got = counter.facet(&Dim::Result, "", 1000).unwrap();
        assert_eq!(got.values[0].label, "cancelled");
        let want = by_hand(&in_workers, &|j| j.result.as_str().to_owned());
        assert_eq!(got.values[0].count, want["cancelled"]);
        // Most jobs first, ties by label; limit and search.
        let got = counter.facet(&Dim::Builder, "", 3).unwrap();
        assert_eq!(got.values.len(), 3);
        assert!(
            got.values
                .windows(2)
                .all(|w| w[0].count > w[1].count || (w[0].count == w[1].count && w[0].label < w[1].label))
        );
        let all = counter.facet(&Dim::Builder, "", 1000).unwrap();
        assert_eq!(got.values[..], all.values[..3]);
        assert_eq!(got.matching, all.values.len());
        let needle = &all.values[0].label[1..4].to_uppercase();
        let found = counter.facet(&Dim::Builder, needle, 1000).unwrap();
        assert!(!found.values.is_empty());
        assert!(found.values.iter().all(|v| v.label.to_uppercase().contains(needle.as_str())));
        assert_eq!(found.matching, found.values.len());
    }
}
