//! CSV of jobs → [`Job`]s.
//!
//! The header names the columns: the job fields `source,id,builder,project,branch,revision,
//! worker,requested_at,started_at,finished_at,result,url`, `tag.KEY` columns (tags) and
//! `metric.NAME` columns (metrics), in any order. `duration_s` and `queue_s`, which the CSV
//! export derives, are accepted and ignored so an exported file re-imports unchanged. Any
//! other column is an error that names it.
//!
//! Empty cells are absent values. Times are RFC 3339 or epoch seconds; results use the
//! snake_case names (`success`, `failure`, ...). A text cell starting with `'` followed by
//! `=`, `+`, `-`, `@`, tab or CR has the quote removed: that is how the export defuses
//! spreadsheet formulas (ci-formats.md §6.2).

use std::collections::BTreeMap;
use std::io::BufRead;

use common::{Job, JobResult, Timestamp};

use super::{ImportBatch, ImportError, Options};

/// Jobs per batch handed to the sink.
pub const BATCH_JOBS: usize = 1000;

/// Parses a CSV of jobs, handing them to `sink` in batches of [`BATCH_JOBS`]. `opts.source`,
/// when set, replaces the `source` column (which may then be absent).
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let at = |line: u64, field: Option<&str>| -> String {
        let mut s = if opts.origin.is_empty() {
            format!("line {line}")
        } else {
            format!("{}: line {line}", opts.origin)
        };
        if let Some(f) = field {
            s.push_str(&format!(", column `{f}`"));
        }
        s
    };
    let mut reader = ::csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(input);
    let headers = reader.headers().map_err(|e| csv_error(e, &at))?.clone();
    let columns = Columns::from_header(&headers, opts.source.is_some())
        .map_err(|m| ImportError::new(at(1, None), m))?;

    let mut batch = ImportBatch::default();
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(e, &at)),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let job =
            columns.job(&record, opts).map_err(|(field, m)| ImportError::new(at(line, Some(&field)), m))?;
        job.validate().map_err(|e| ImportError::new(at(line, Some(&e.field)), e.message))?;
        batch.jobs.push(job);
        if batch.jobs.len() >= BATCH_JOBS {
            sink(std::mem::take(&mut batch))?;
        }
    }
    if !batch.jobs.is_empty() {
        sink(batch)?;
    }
    Ok(())
}

/// What each column of the file holds.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    Source,
    Id,
    Builder,
    Project,
    Branch,
    Revision,
    Worker,
    RequestedAt,
    StartedAt,
    FinishedAt,
    Result,
    Url,
    Tag(String),
    Metric(String),
    /// `duration_s`, `queue_s`: written by the export, recomputed from the times.
    Derived,
}

struct Columns {
    columns: Vec<(String, Column)>,
}

impl Columns {
    fn from_header(headers: &::csv::StringRecord, source_given: bool) -> Result<Columns, String> {
        let mut columns = Vec::new();
        let mut unknown = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, name) in headers.iter().enumerate() {
            // The export may write a byte-order mark; Excel adds one when saving.
            let name = if i == 0 { name.trim_start_matches('\u{feff}') } else { name };
            let name = name.trim();
            let col = match name {
                "source" => Column::Source,
                "id" => Column::Id,
                "builder" => Column::Builder,
                "project" => Column::Project,
                "branch" => Column::Branch,
                "revision" => Column::Revision,
                "worker" => Column::Worker,
                "requested_at" => Column::RequestedAt,
                "started_at" => Column::StartedAt,
                "finished_at" => Column::FinishedAt,
                "result" => Column::Result,
                "url" => Column::Url,
                "duration_s" | "queue_s" => Column::Derived,
                _ => match (name.strip_prefix("tag."), name.strip_prefix("metric.")) {
                    (Some(k), _) if !k.is_empty() => Column::Tag(k.to_owned()),
                    (_, Some(m)) if !m.is_empty() => Column::Metric(m.to_owned()),
                    _ => {
                        unknown.push(format!("`{name}`"));
                        continue;
                    }
                },
            };
            if !seen.insert(name.to_owned()) {
                return Err(format!("column `{name}` appears twice"));
            }
            columns.push((name.to_owned(), col));
        }
        if !unknown.is_empty() {
            return Err(format!(
                "unknown column{} {}: expected job fields (source, id, builder, project, branch, revision, \
                 worker, requested_at, started_at, finished_at, result, url), tag.KEY or metric.NAME",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", ")
            ));
        }
        let has = |c: &Column| columns.iter().any(|(_, x)| x == c);
        let mut missing: Vec<&str> = Vec::new();
        if !source_given && !has(&Column::Source) {
            missing.push("source");
        }
        for (c, name) in [(Column::Id, "id"), (Column::Builder, "builder"), (Column::Result, "result")] {
            if !has(&c) {
                missing.push(name);
            }
        }
        if !has(&Column::StartedAt) && !has(&Column::RequestedAt) {
            missing.push("started_at or requested_at");
        }
        if !missing.is_empty() {
            return Err(format!("missing column(s): {}", missing.join(", ")));
        }
        Ok(Columns { columns })
    }

    /// Builds the job of one record; on error returns the column name and the problem.
    fn job(&self, record: &::csv::StringRecord, opts: &Options) -> Result<Job, (String, String)> {
        let mut job = Job {
            source: opts.source.clone().unwrap_or_default(),
            id: String::new(),
            builder: String::new(),
            project: None,
            branch: None,
            revision: None,
            worker: None,
            requested_at: None,
            started_at: None,
            finished_at: None,
            result: JobResult::Success,
            url: None,
            tags: BTreeMap::new(),
            metrics: BTreeMap::new(),
            steps: Vec::new(),
        };
        let mut result = None;
        for ((name, col), cell) in self.columns.iter().zip(record.iter()) {
            let err = |m: String| (name.clone(), m);
            let text = cell.trim();
            let value = (!text.is_empty()).then(|| unquote_formula(text).to_owned());
            match col {
                Column::Source => {
                    if opts.source.is_none() {
                        job.source = value.unwrap_or_default();
                    }
                }
                Column::Id => job.id = value.unwrap_or_default(),
                Column::Builder => job.builder = value.unwrap_or_default(),
                Column::Project => job.project = value,
                Column::Branch => job.branch = value,
                Column::Revision => job.revision = value,
                Column::Worker => job.worker = value,
                Column::Url => job.url = value,
                Column::RequestedAt => job.requested_at = time(text).map_err(err)?,
                Column::StartedAt => job.started_at = time(text).map_err(err)?,
                Column::FinishedAt => job.finished_at = time(text).map_err(err)?,
                Column::Result => {
                    if !text.is_empty() {
                        result = Some(text.parse::<JobResult>().map_err(err)?);
                    }
                }
                Column::Tag(key) => {
                    if let Some(v) = value {
                        job.tags.insert(key.clone(), v);
                    }
                }
                Column::Metric(m) => {
                    if !text.is_empty() {
                        let v: f64 = text
                            .parse()
                            .ok()
                            .filter(|v: &f64| v.is_finite())
                            .ok_or_else(|| err(format!("`{}` is not a finite number", short(text))))?;
                        job.metrics.insert(m.clone(), v);
                    }
                }
                Column::Derived => {}
            }
        }
        job.result = result.ok_or_else(|| ("result".to_owned(), "must not be empty".to_owned()))?;
        Ok(job)
    }
}

/// An empty cell, RFC 3339, or epoch seconds.
fn time(text: &str) -> Result<Option<Timestamp>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(secs) => Timestamp::from_epoch_seconds(secs),
        Err(_) => Timestamp::parse_rfc3339(&short(text)),
    }
    .map(Some)
}

/// Undoes the export's formula guard: `'=x` → `=x`.
fn unquote_formula(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => s,
    }
}

/// At most 80 bytes of a cell, for messages.
fn short(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_owned();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn csv_error(e: ::csv::Error, at: &dyn Fn(u64, Option<&str>) -> String) -> ImportError {
    let line = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        ::csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields, but the header has {expected_len}")
        }
        ::csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8", err.field() + 1)
        }
        ::csv::ErrorKind::Io(io) => format!("read failed: {io}"),
        _ => e.to_string(),
    };
    ImportError::new(at(line.max(1), None), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], opts: &Options) -> Result<Vec<Job>, ImportError> {
        let mut jobs = Vec::new();
        parse(&mut &input[..], opts, &mut |b| {
            jobs.extend(b.jobs);
            Ok(())
        })?;
        Ok(jobs)
    }

    /// Parses `input` and compares the jobs as JSON lines (or `error: ...`) with `expected`.
    fn check(input: &str, expected: &str) {
        let got = match run(input.as_bytes(), &Options::default()) {
            Ok(jobs) => jobs.iter().map(|j| serde_json::to_string(j).unwrap()).collect::<Vec<_>>().join("\n"),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected.trim(), "input:\n{input}");
    }

    const HEADER: &str = "source,id,builder,started_at,result";

    #[test]
    fn reads_every_field() {
        check(
            "source,id,builder,project,branch,revision,worker,requested_at,started_at,finished_at,result,url,\
             tag.MACHINE,metric.cpu_seconds,duration_s,queue_s\n\
             bb,17,linux,fw,main,abc123,w1,2024-03-01T12:00:00Z,1709294410,2024-03-01T12:01:40.5Z,failure,\
             http://ci/17,qemux86-64,55.5,90.5,10\n\
             bb,18,linux,,,,,,2024-03-01T12:00:00Z,,running,,,,,\n",
            r#"{"source":"bb","id":"17","builder":"linux","project":"fw","branch":"main","revision":"abc123","worker":"w1","requested_at":"2024-03-01T12:00:00Z","started_at":"2024-03-01T12:00:10Z","finished_at":"2024-03-01T12:01:40.500Z","result":"failure","url":"http://ci/17","tags":{"MACHINE":"qemux86-64"},"metrics":{"cpu_seconds":55.5}}
{"source":"bb","id":"18","builder":"linux","started_at":"2024-03-01T12:00:00Z","result":"running"}"#,
        );
    }

    #[test]
    fn quoting_crlf_bom_and_formula_guard() {
        check(
            "\u{feff}source,id,builder,started_at,result,tag.note\r\n\
             bb,\"1\",\"a, \"\"quoted\"\" builder\",1709294400,success,'=SUM(A1)\r\n",
            r#"{"source":"bb","id":"1","builder":"a, \"quoted\" builder","started_at":"2024-03-01T12:00:00Z","result":"success","tags":{"note":"=SUM(A1)"}}"#,
        );
    }

    #[test]
    fn errors_name_line_and_field() {
        for (input, want) in [
            (
                "source,id,builder,started_at,result,colour,sizes\n",
                "line 1: unknown columns `colour`, `sizes`: expected job fields",
            ),
            ("id,builder,result\n", "line 1: missing column(s): source, started_at or requested_at"),
            ("source,id,id,builder,started_at,result\n", "line 1: column `id` appears twice"),
            (
                "\nbb,1,b,1709294400,success\nbb,2,b,1709294400,green\n",
                "line 3, column `result`: unknown result `green`",
            ),
            (
                "\nbb,1,b,1709294400000,success\n",
                "line 2, column `started_at`: epoch seconds 1709294400000 is after 2100 (looks like epoch milliseconds",
            ),
            (
                "\nbb,1,b,yesterday,success\n",
                "line 2, column `started_at`: `yesterday` is not an RFC 3339 timestamp",
            ),
            ("\nbb,1,b,1709294400\n", "line 2: 4 fields, but the header has 5"),
            ("\nbb,,b,1709294400,success\n", "line 2, column `id`: must not be empty"),
            ("\nbb,1,b,,success\n", "line 2, column `started_at`: a job needs started_at"),
            ("\nbb,1,b,1709294400,\n", "line 2, column `result`: must not be empty"),
        ] {
            let input = input.replacen('\n', &format!("{HEADER}\n"), usize::from(input.starts_with('\n')));
            let e = run(input.as_bytes(), &Options::default()).unwrap_err().to_string();
            assert!(e.starts_with(want), "{input}\n got: {e}\nwant: {want}");
        }
        let e = run(
            b"source,id,builder,started_at,result,metric.x\nbb,1,b,1709294400,success,NaN\n",
            &Options::default(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "line 2, column `metric.x`: `NaN` is not a finite number");
        let e =
            run(b"source,id,builder,started_at,result\nbb,1,\xff,1709294400,success\n", &Options::default())
                .unwrap_err();
        assert_eq!(e.to_string(), "line 2: field 3 is not valid UTF-8");
        let huge = format!("{HEADER}\nbb,1,{},1709294400,success\n", "b".repeat(5000));
        let e = run(huge.as_bytes(), &Options::default()).unwrap_err();
        assert_eq!(e.to_string(), "line 2, column `builder`: longer than 1024 bytes");
    }

    #[test]
    fn source_option_overrides_and_batches() {
        let mut text = String::from("id,builder,started_at,result\n");
        for i in 0..(BATCH_JOBS + 3) {
            text.push_str(&format!("{i},b,{},success\n", 1_709_294_400 + i));
        }
        let opts =
            Options { source: Some("imported".into()), origin: "jobs.csv".into(), ..Default::default() };
        let mut sizes = Vec::new();
        parse(&mut text.as_bytes(), &opts, &mut |b| {
            assert!(b.jobs.iter().all(|j| j.source == "imported"));
            sizes.push(b.jobs.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, [BATCH_JOBS, 3]);
        let e = run(b"id,builder,started_at,result\n1,b,x,success\n", &opts).unwrap_err();
        assert!(e.to_string().starts_with("jobs.csv: line 2, column `started_at`"), "{e}");
    }

    #[test]
    fn fixture_imports_and_round_trips() {
        let text = include_str!("../../tests/fixtures/csv/jobs.csv");
        let jobs = run(text.as_bytes(), &Options::default()).unwrap();
        assert_eq!(jobs.len(), 6);
        assert!(jobs.iter().any(|j| j.result == JobResult::Warnings && j.tags.contains_key("platform")));
        // Writing the jobs back out as the export does and reading them again gives the same jobs.
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.write_record(
            "source,id,builder,project,branch,revision,worker,requested_at,started_at,finished_at,result,url,\
             duration_s,queue_s,tag.platform,metric.cpu_seconds"
                .split(','),
        )
        .unwrap();
        let opt = |t: &Option<String>| t.clone().unwrap_or_default();
        let ts = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
        let secs = |ms: Option<i64>| ms.map(|d| (d as f64 / 1000.0).to_string()).unwrap_or_default();
        for j in &jobs {
            // The export's formula guard on text cells.
            let guard = |s: String| {
                if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s }
            };
            w.write_record([
                j.source.clone(),
                j.id.clone(),
                guard(j.builder.clone()),
                opt(&j.project),
                guard(opt(&j.branch)),
                opt(&j.revision),
                opt(&j.worker),
                ts(j.requested_at),
                ts(j.started_at),
                ts(j.finished_at),
                j.result.to_string(),
                opt(&j.url),
                secs(j.duration_ms()),
                secs(j.queue_ms()),
                j.tags.get("platform").cloned().unwrap_or_default(),
                j.metrics.get("cpu_seconds").map(f64::to_string).unwrap_or_default(),
            ])
            .unwrap();
        }
        let out = w.into_inner().unwrap();
        assert_eq!(run(&out, &Options::default()).unwrap(), jobs);
    }

    #[test]
    fn random_bytes_never_panic() {
        use super::super::influx::noise::{Lcg, mutate};
        let seed = include_bytes!("../../tests/fixtures/csv/jobs.csv");
        let mut rng = Lcg(7);
        for _ in 0..2000 {
            let mut bytes = seed.to_vec();
            mutate(&mut rng, &mut bytes, b",\"\n\r'.-:0Tz");
            let _ = run(&bytes, &Options::default());
        }
    }
}
