//! Small whole-table summaries the overview page draws.

use crate::table::JobTable;

const DAY_MS: i64 = 86_400_000;

/// Jobs and median duration of one UTC day.
#[derive(Clone, Debug, PartialEq)]
pub struct DailyPoint {
    /// Midnight UTC starting the day, epoch ms.
    pub day_ms: i64,
    pub jobs: u64,
    /// Median run time in seconds of the day's finished jobs (lower median of an even
    /// count is not used: the mean of the two middle values, as `percentile_cont(0.5)`).
    pub median_duration_s: Option<f64>,
}

/// One point per UTC day from the first to the last job's day, empty days included.
pub fn daily(table: &JobTable) -> Vec<DailyPoint> {
    if table.len == 0 {
        return Vec::new();
    }
    let day_of = |row: usize| table.time_ms(row).div_euclid(DAY_MS);
    // Rows are time-ordered, so the first and last rows bound the days.
    let (first, last) = (day_of(0), day_of(table.len - 1));
    let mut durations: Vec<Vec<i64>> = vec![Vec::new(); (last - first + 1) as usize];
    let mut counts = vec![0u64; durations.len()];
    for row in 0..table.len {
        let i = (day_of(row) - first) as usize;
        counts[i] += 1;
        if let Some(d) = table.duration_ms(row) {
            durations[i].push(d);
        }
    }
    durations
        .into_iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (mut ds, jobs))| DailyPoint {
            day_ms: (first + i as i64) * DAY_MS,
            jobs,
            median_duration_s: median(&mut ds).map(|ms| ms / 1000.0),
        })
        .collect()
}

/// Median with linear interpolation between the two middle values.
pub fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;

    #[test]
    fn daily_counts_and_medians_with_gaps() {
        let day = 19_700i64 * 86_400; // a UTC midnight, in seconds
        let job = |id: u32, start: i64, secs: Option<i64>| -> Job {
            let finished = secs.map(|s| format!(r#","finished_at":{}"#, start + s)).unwrap_or_default();
            let result = if secs.is_some() { "success" } else { "running" };
            serde_json::from_str(&format!(
                r#"{{"source":"s","id":{id},"builder":"b","result":"{result}","started_at":{start}{finished}}}"#
            ))
            .unwrap()
        };
        let jobs = [
            job(1, day + 10, Some(60)),
            job(2, day + 20, Some(120)),
            job(3, day + 86_399, None),
            job(4, day + 2 * 86_400 + 5, Some(30)),
        ];
        let points = daily(&JobTable::from_jobs(&jobs));
        assert_eq!(points.len(), 3);
        assert_eq!((points[0].jobs, points[0].median_duration_s), (3, Some(90.0)));
        assert_eq!((points[1].jobs, points[1].median_duration_s), (0, None));
        assert_eq!((points[2].jobs, points[2].median_duration_s), (1, Some(30.0)));
        assert_eq!(points[0].day_ms, day * 1000);
        assert!(daily(&JobTable::from_jobs(&[])).is_empty());
    }

    #[test]
    fn median_interpolates() {
        assert_eq!(median(&mut [3, 1, 2]), Some(2.0));
        assert_eq!(median(&mut [4, 1, 2, 3]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
