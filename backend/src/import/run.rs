//! Runs an importer into the store: the one path the CLI (`buildscope import KIND`) and the
//! HTTP endpoints (`POST /api/v1/import/KIND`, the Buildbot hook, the InfluxDB write
//! endpoints) share.

use std::io::BufRead;
use std::sync::Arc;

use serde::Serialize;

use super::pull::PullOptions;
use super::{ImportBatch, ImportError, Options, Skipped};
use super::{buildapi, buildbot, buildstats, csv, github, gitlab, influx, jenkins, junit};
use crate::store::{Counts, Records, Store, WriteReport};

/// The input formats, as named in `buildscope import KIND` and `/api/v1/import/KIND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Buildbot REST API v2 responses (or an HttpStatusPush body); a URL pulls from a master.
    Buildbot,
    /// Mozilla BuildAPI dumps (`builds-4hr.js.gz`, daily dumps, pending/running).
    Buildapi,
    /// Jenkins JSON API (`tree=allBuilds[...]`); a job's URL is pulled a range at a time.
    Jenkins,
    /// GitHub Actions workflow runs or jobs; a runs URL is pulled with each run's jobs.
    Github,
    /// GitLab jobs; a pipelines URL is pulled with each pipeline's jobs.
    Gitlab,
    /// JUnit XML test reports of one job.
    Junit,
    /// Yocto/OpenEmbedded buildstats (a tar, or a directory from the CLI).
    Buildstats,
    /// InfluxDB line protocol.
    Influx,
    /// CSV of jobs with a header row.
    Csv,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Buildbot,
        Kind::Buildapi,
        Kind::Jenkins,
        Kind::Github,
        Kind::Gitlab,
        Kind::Junit,
        Kind::Buildstats,
        Kind::Influx,
        Kind::Csv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Buildbot => "buildbot",
            Kind::Buildapi => "buildapi",
            Kind::Jenkins => "jenkins",
            Kind::Github => "github",
            Kind::Gitlab => "gitlab",
            Kind::Junit => "junit",
            Kind::Buildstats => "buildstats",
            Kind::Influx => "influx",
            Kind::Csv => "csv",
        }
    }

    /// Whether a URL of this kind is pulled page by page and incrementally ([`pull`]) rather
    /// than downloaded and parsed.
    pub fn pulls(self) -> bool {
        matches!(self, Kind::Buildbot | Kind::Jenkins | Kind::Github | Kind::Gitlab)
    }

    /// Parses a whole input, handing batches to `sink`.
    pub fn parse(
        self,
        input: &mut dyn BufRead,
        opts: &Options,
        sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        match self {
            Kind::Buildbot => buildbot::parse(input, opts, sink),
            Kind::Buildapi => buildapi::parse(input, opts, sink),
            Kind::Jenkins => jenkins::parse(input, opts, sink),
            Kind::Github => github::parse(input, opts, sink),
            Kind::Gitlab => gitlab::parse(input, opts, sink),
            Kind::Junit => junit::parse(input, opts, sink),
            Kind::Buildstats => buildstats::parse(input, opts, sink),
            Kind::Influx => influx::parse(input, opts, sink),
            Kind::Csv => csv::parse(input, opts, sink),
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown import kind `{s}`, expected one of {}", names.join(", "))
        })
    }
}

/// Builds importer options from the parameters the CLI and the HTTP endpoints share:
/// `source`, `job` (as `SOURCE/ID`) and `precision`.
pub fn options(
    origin: &str,
    source: Option<String>,
    job: Option<&str>,
    precision: Option<&str>,
) -> Result<Options, String> {
    let job = match job {
        None => None,
        Some(key) => {
            let (source, id) = key
                .split_once('/')
                .filter(|(s, i)| !s.is_empty() && !i.is_empty())
                .ok_or_else(|| format!("job: `{key}` is not SOURCE/ID"))?;
            Some(common::records::JobKey { source: source.to_owned(), id: id.to_owned() })
        }
    };
    let precision =
        influx::Precision::parse(precision.unwrap_or("ns")).map_err(|e| format!("precision: {e}"))?;
    Ok(Options {
        origin: origin.to_owned(),
        source,
        job,
        now_ms: jiff::Timestamp::now().as_millisecond(),
        precision,
    })
}

/// Most skip reasons listed in a report; the count is always complete.
const MAX_LISTED_SKIPS: usize = 100;

/// What an import read and stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Records parsed: jobs, test results and samples, plus the skipped ones.
    pub read: u64,
    pub jobs: Counts,
    pub tests: Counts,
    pub samples: Counts,
    pub skipped: u64,
    /// The first skipped records and why.
    pub skipped_examples: Vec<Skipped>,
    /// Set when the input broke off: what was wrong and where. Batches before it are stored
    /// (each in its own transaction); nothing of the failing batch is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ImportReport {
    fn add(&mut self, batch: &ImportBatch, written: WriteReport) {
        self.read +=
            (batch.jobs.len() + batch.tests.len() + batch.samples.len() + batch.skipped.len()) as u64;
        for (total, part) in [
            (&mut self.jobs, written.jobs),
            (&mut self.tests, written.tests),
            (&mut self.samples, written.samples),
        ] {
            total.inserted += part.inserted;
            total.updated += part.updated;
        }
        self.skipped += batch.skipped.len() as u64;
        let room = MAX_LISTED_SKIPS.saturating_sub(self.skipped_examples.len());
        self.skipped_examples.extend(batch.skipped.iter().take(room).cloned());
    }

    /// One line for people: `42 read: 40 jobs inserted, 0 updated ...`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} read", self.read);
        for (what, c) in [("jobs", self.jobs), ("tests", self.tests), ("samples", self.samples)] {
            if c.inserted + c.updated > 0 {
                s += &format!("; {what}: {} inserted, {} updated", c.inserted, c.updated);
            }
        }
        s += &format!("; {} skipped", self.skipped);
        for skip in self.skipped_examples.iter().take(5) {
            s += &format!("\n  skipped {}: {}", skip.at, skip.reason);
        }
        if let Some(e) = &self.error {
            s += &format!("\nstopped: {e}");
        }
        s
    }
}

/// Writes one parsed batch in one transaction.
pub async fn write_batch(store: &dyn Store, batch: &ImportBatch) -> Result<WriteReport, ImportError> {
    store
        .write(Records { jobs: &batch.jobs, tests: &batch.tests, samples: &batch.samples })
        .await
        .map_err(|e| ImportError::new("store", e.to_string()))
}

/// Parses `input` on a blocking thread and writes each batch as it comes, so memory stays
/// bounded by one batch however large the input. A parse error stops the import; the
/// report says what was stored before it.
pub async fn import<R: BufRead + Send + 'static>(
    store: Arc<dyn Store>,
    kind: Kind,
    mut input: R,
    opts: Options,
) -> ImportReport {
    import_with(store, opts, move |opts, sink| kind.parse(&mut input, opts, sink)).await
}

/// [`import`] for any parser: `parse` runs on a blocking thread with a sink that writes
/// each batch in its own transaction.
pub async fn import_with(
    store: Arc<dyn Store>,
    opts: Options,
    parse: impl FnOnce(
        &Options,
        &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
    ) -> Result<(), ImportError>
    + Send
    + 'static,
) -> ImportReport {
    let handle = tokio::runtime::Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        let mut report = ImportReport::default();
        let mut sink = |batch: ImportBatch| -> Result<(), ImportError> {
            let written = handle.block_on(write_batch(store.as_ref(), &batch))?;
            report.add(&batch, written);
            Ok(())
        };
        if let Err(e) = parse(&opts, &mut sink) {
            report.error = Some(e.to_string());
        }
        report
    })
    .await;
    joined.unwrap_or_else(|e| ImportReport {
        error: Some(format!("importer crashed: {e}")),
        ..Default::default()
    })
}

/// Writes batches produced elsewhere (the Buildbot pull, a push hook).
pub async fn import_batch(store: &dyn Store, batch: ImportBatch) -> ImportReport {
    let mut report = ImportReport::default();
    match write_batch(store, &batch).await {
        Ok(written) => report.add(&batch, written),
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

/// Pulls from a CI system's API at `url` into the store, from where the last pull of the
/// same URL (and source) ended: a Buildbot master's base URL, a Jenkins job, GitHub Actions
/// runs or jobs, GitLab pipelines or jobs. Each page (with what hangs off it) is written in
/// its own transaction; the high-water mark moves only when the whole pull succeeded, so a
/// pull that fails part-way keeps what it stored and the next one walks those pages again.
pub async fn pull(store: Arc<dyn Store>, kind: Kind, url: &str, opts: &PullOptions) -> ImportReport {
    let mut report = ImportReport::default();
    if let Err(e) = pull_into(store.as_ref(), kind, url, opts, &mut report).await {
        report.error = Some(e.to_string());
    }
    report
}

async fn pull_into(
    store: &dyn Store,
    kind: Kind,
    url: &str,
    opts: &PullOptions,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let store_err = |e: crate::store::StoreError| ImportError::new("store", e.to_string());
    if kind == Kind::Buildbot {
        return pull_buildbot(store, url, opts, report).await;
    }
    let key = high_water_key(kind, url, opts.source.as_deref());
    let since = store.high_water(&key).await.map_err(store_err)?;
    let mut sink = async |batch: ImportBatch| -> Result<(), ImportError> {
        let written = write_batch(store, &batch).await?;
        report.add(&batch, written);
        Ok(())
    };
    let mark = match kind {
        Kind::Jenkins => jenkins::fetch(url, since, opts, &mut sink).await?,
        Kind::Github => github::fetch(url, since, opts, &mut sink).await?,
        Kind::Gitlab => gitlab::fetch(url, since, opts, &mut sink).await?,
        other => return Err(ImportError::new(url, format!("{} is not pulled from a URL", other.name()))),
    };
    if let Some(mark) = mark.filter(|m| Some(*m) != since) {
        store.set_high_water(&key, mark).await.map_err(store_err)?;
    }
    Ok(())
}

/// Where a pull of `url` got to is kept under `KIND URL` (plus the source when one is
/// given: the same URL imported under two sources is two pulls).
pub fn high_water_key(kind: Kind, url: &str, source: Option<&str>) -> String {
    let url = url.trim_end_matches('/');
    match source {
        Some(source) => format!("{} {url} as {source}", kind.name()),
        None => format!("{} {url}", kind.name()),
    }
}

/// Pulls new builds from a Buildbot master, from where the last pull of that source ended
/// (kept under the source itself), in rounds of at most [`buildbot::FetchOptions::max_builds`].
async fn pull_buildbot(
    store: &dyn Store,
    url: &str,
    opts: &PullOptions,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let store_err = |e: crate::store::StoreError| ImportError::new("store", e.to_string());
    let source = opts.source.clone().unwrap_or_else(|| buildbot::source_for_url(url));
    let fetch_opts = buildbot::FetchOptions {
        source: Some(source.clone()),
        token: opts.token.clone(),
        timeout: opts.timeout,
        max_response_bytes: opts.max_response_bytes,
        ..Default::default()
    };
    loop {
        let since = store.high_water(&source).await.map_err(store_err)?;
        let (batch, mark) = buildbot::fetch(url, since, &fetch_opts).await?;
        let fetched = batch.jobs.len();
        let written = write_batch(store, &batch).await?;
        report.add(&batch, written);
        match mark {
            // Keep going while a full round of history came back and the mark moved.
            Some(mark) if Some(mark) != since => {
                store.set_high_water(&source, mark).await.map_err(store_err)?;
                if fetched < fetch_opts.max_builds {
                    return Ok(());
                }
            }
            _ => return Ok(()),
        }
    }
}
