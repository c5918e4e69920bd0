//! The SQLite store's metric samples: keys, replacement, links to jobs, and rows written
//! before migration 0002.

use std::collections::BTreeMap;

use common::records::{JobKey, MetricSample};
use common::{Job, JobResult, TimeRange, Timestamp};
use sqlx::sqlite::SqliteConnectOptions;

use super::SqliteStore;
use crate::store::{Counts, Records, Store};

const ALL_TIME: TimeRange = TimeRange { from_ms: 0, to_ms: i64::MAX };

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("store.sqlite").display())
}

fn sample(
    name: &str,
    tags: &[(&str, &str)],
    time_ms: i64,
    value: f64,
    job: Option<(&str, &str)>,
) -> MetricSample {
    MetricSample {
        name: name.into(),
        value,
        unit: None,
        time: Timestamp::from_millis(time_ms),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        job: job.map(|(source, id)| JobKey { source: source.into(), id: id.into() }),
    }
}

fn job(source: &str, id: &str, builder: &str, number: Option<&str>, started_ms: i64) -> Job {
    Job {
        source: source.into(),
        id: id.into(),
        builder: builder.into(),
        project: None,
        branch: None,
        revision: None,
        worker: None,
        requested_at: None,
        started_at: Some(Timestamp::from_millis(started_ms)),
        finished_at: Some(Timestamp::from_millis(started_ms + 1000)),
        result: JobResult::Success,
        url: None,
        tags: number.map(|n| BTreeMap::from([("buildnumber".to_owned(), n.to_owned())])).unwrap_or_default(),
        metrics: BTreeMap::new(),
        steps: Vec::new(),
    }
}

async fn write_samples(store: &SqliteStore, samples: &[MetricSample]) -> Counts {
    store.write(Records { samples, ..Default::default() }).await.unwrap().samples
}

#[tokio::test]
async fn samples_are_keyed_by_name_tags_and_time_and_the_last_write_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&url(&dir)).await.unwrap();
    let build = [("builder_name", "linux"), ("build_number", "7"), ("step", "compile")];
    let batch = [
        sample("steps.duration", &build, 1000, 1.0, Some(("bb", "linux/7"))),
        sample("steps.duration", &build[..2], 1000, 2.0, None),
        // Only one of the two build tags: an ordinary tag set.
        sample("steps.duration", &[("builder_name", "linux")], 1000, 3.0, None),
        sample("steps.duration", &[], 1000, 4.0, None),
        sample("steps.duration", &build, 1000, 5.0, Some(("bb", "linux/7"))),
        sample("other", &build, 1000, 6.0, None),
    ];
    assert_eq!(write_samples(&store, &batch).await, Counts { inserted: 5, updated: 1 });
    let got = store.samples("steps.duration", ALL_TIME).await.unwrap();
    let mut want: Vec<MetricSample> = batch[1..5].to_vec();
    want.sort_by_key(|s| serde_json::to_string(&s.tags).unwrap());
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|s| serde_json::to_string(&s.tags).unwrap());
    assert_eq!(got_sorted, want);
    // Writing them again replaces each one.
    assert_eq!(write_samples(&store, &batch).await, Counts { inserted: 0, updated: 6 });
    assert_eq!(store.samples("steps.duration", ALL_TIME).await.unwrap().len(), 4);
    // Batches longer than one multi-row insert, with a key taken twice in one of them.
    let mut many: Vec<MetricSample> =
        (0..300).map(|i| sample("load", &[("host", "h")], i, i as f64, None)).collect();
    assert_eq!(write_samples(&store, &many[..150]).await, Counts { inserted: 150, updated: 0 });
    many.push(sample("load", &[("host", "h")], 10, -1.0, None));
    assert_eq!(write_samples(&store, &many).await, Counts { inserted: 150, updated: 151 });
    let load = store.samples("load", ALL_TIME).await.unwrap();
    assert_eq!(load.len(), 300);
    assert_eq!((load[10].value, load[11].value), (-1.0, 11.0));
}

#[tokio::test]
async fn links_resolve_to_the_job_of_the_build_whichever_arrives_first() {
    for jobs_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&url(&dir)).await.unwrap();
        let jobs = [
            job("bb", "1041", "linux", Some("7"), 5_000),
            // The same number in another source is not the build.
            job("other", "9", "linux", Some("8"), 5_000),
            // An explicit link to a stored job stays as it is.
            job("bb", "linux/8", "linux", None, 5_000),
        ];
        let samples = [
            sample(
                "t.duration",
                &[("builder_name", "linux"), ("build_number", "7")],
                1_000,
                1.0,
                Some(("bb", "linux/7")),
            ),
            sample(
                "t.duration",
                &[("builder_name", "linux"), ("build_number", "8")],
                2_000,
                2.0,
                Some(("bb", "linux/8")),
            ),
            sample(
                "t.duration",
                &[("builder_name", "linux"), ("build_number", "9")],
                3_000,
                3.0,
                Some(("bb", "linux/9")),
            ),
            sample("t.duration", &[("host", "a")], 4_000, 4.0, None),
        ];
        let write_jobs = store.write(Records { jobs: &jobs, ..Default::default() });
        if jobs_first {
            write_jobs.await.unwrap();
            write_samples(&store, &samples).await;
        } else {
            write_samples(&store, &samples).await;
            write_jobs.await.unwrap();
        }
        let links: Vec<Option<String>> = store
            .samples("t.duration", ALL_TIME)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.job.map(|j| format!("{}:{}", j.source, j.id)))
            .collect();
        let want = ["bb:1041", "bb:linux/8", "bb:linux/9"].map(|s| Some(s.to_owned()));
        assert_eq!(links, [&want[..], &[None]].concat(), "jobs first: {jobs_first}");
    }
}

#[tokio::test]
async fn samples_written_before_migration_0002_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    // A store as migration 0001 left it, with samples in its one-row-per-sample table.
    let migrations = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/0001_jobs.sql"),
        migrations.path().join("0001_jobs.sql"),
    )
    .unwrap();
    let options: SqliteConnectOptions = url(&dir).parse().unwrap();
    let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true)).await.unwrap();
    sqlx::migrate::Migrator::new(migrations.path()).await.unwrap().run(&pool).await.unwrap();
    sqlx::raw_sql(
        r#"INSERT INTO names (id, value) VALUES (1, 'steps.duration'), (2, 'bb'), (3, 'linux'), (4, 'cpu.load');
           INSERT INTO jobs (source_id, ext_id, builder_id, t, result, tags)
               VALUES (2, '1041', 3, 5000, 0, '{"buildnumber":"7"}');
           INSERT INTO metric_samples (name_id, tags, time, value, unit, job_source_id, job_ext_id) VALUES
               (1, '{"build_number":"7","builder_name":"linux","step":"compile"}', 1000, 1.5, 's', 2, 'linux/7'),
               (1, '{"build_number":"7","builder_name":"linux","step":"tést \"x\""}', 1000, 2.5, NULL, 2, 'linux/7'),
               (4, '{"host":"wéb \"1\""}', 1000, 0.5, NULL, NULL, NULL),
               (4, '{}', 2000, 0.25, NULL, NULL, NULL);"#,
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteStore::open(&url(&dir)).await.unwrap();
    let steps = store.samples("steps.duration", ALL_TIME).await.unwrap();
    let build = [("builder_name", "linux"), ("build_number", "7")];
    let mut want = vec![
        sample("steps.duration", &[build[0], build[1], ("step", "compile")], 1000, 1.5, Some(("bb", "1041"))),
        sample(
            "steps.duration",
            &[build[0], build[1], ("step", "tést \"x\"")],
            1000,
            2.5,
            Some(("bb", "1041")),
        ),
    ];
    want[0].unit = Some("s".into());
    assert_eq!(steps, want);
    let load = store.samples("cpu.load", ALL_TIME).await.unwrap();
    assert_eq!(
        load,
        [
            sample("cpu.load", &[("host", "wéb \"1\"")], 1000, 0.5, None),
            sample("cpu.load", &[], 2000, 0.25, None)
        ]
    );
    // Migrated series are found again: rewriting the samples replaces them.
    assert_eq!(write_samples(&store, &want).await, Counts { inserted: 0, updated: 2 });
    assert_eq!(write_samples(&store, &load).await, Counts { inserted: 0, updated: 2 });
}
