//! CSV export of job rows, shared by the server (`format=csv`) and the browser's export
//! button so both write byte-identical files.
//!
//! RFC 4180 with CRLF line ends and a header row. Text cells that a spreadsheet would
//! evaluate as a formula (leading `=`, `+`, `-`, `@`, tab or CR) get a leading `'` (OWASP's
//! advice); numeric cells are written as numbers and never guarded.

use std::collections::BTreeSet;

use crate::job::Job;

/// The fixed columns, in order. Then `duration_s`, `queue_s`, one `tag.KEY` column per tag
/// key and one `metric.NAME` column per metric present in the rows (sorted).
pub const FIXED_COLUMNS: [&str; 12] = [
    "source",
    "id",
    "builder",
    "project",
    "branch",
    "revision",
    "worker",
    "requested_at",
    "started_at",
    "finished_at",
    "result",
    "url",
];

/// Guards a text cell against spreadsheet formula injection.
pub fn guard(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Writes jobs as CSV.
pub fn jobs_csv(jobs: &[Job]) -> Vec<u8> {
    let tag_keys: BTreeSet<&str> = jobs.iter().flat_map(|j| j.tags.keys().map(String::as_str)).collect();
    let metric_names: BTreeSet<&str> =
        jobs.iter().flat_map(|j| j.metrics.keys().map(String::as_str)).collect();
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let header = FIXED_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(["duration_s".into(), "queue_s".into()])
        .chain(tag_keys.iter().map(|k| format!("tag.{k}")))
        .chain(metric_names.iter().map(|m| format!("metric.{m}")));
    w.write_record(header.map(|h| guard(&h).into_owned())).expect("writing to a Vec cannot fail");
    let mut record: Vec<String> = Vec::new();
    for j in jobs {
        record.clear();
        let text = |s: Option<&str>| guard(s.unwrap_or("")).into_owned();
        let time = |t: Option<crate::Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
        let secs = |ms: Option<i64>| ms.map(|ms| number(ms as f64 / 1000.0)).unwrap_or_default();
        record.extend([
            text(Some(&j.source)),
            text(Some(&j.id)),
            text(Some(&j.builder)),
            text(j.project.as_deref()),
            text(j.branch.as_deref()),
            text(j.revision.as_deref()),
            text(j.worker.as_deref()),
            time(j.requested_at),
            time(j.started_at),
            time(j.finished_at),
            j.result.as_str().to_owned(),
            text(j.url.as_deref()),
            secs(j.duration_ms()),
            secs(j.queue_ms()),
        ]);
        record.extend(tag_keys.iter().map(|k| text(j.tags.get(*k).map(String::as_str))));
        record.extend(metric_names.iter().map(|m| j.metrics.get(*m).map(|v| number(*v)).unwrap_or_default()));
        w.write_record(&record).expect("writing to a Vec cannot fail");
    }
    w.into_inner().expect("flushing a Vec cannot fail")
}

/// Shortest text that parses back to the same number (`90`, `0.25`, `1e21`).
fn number(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rfc4180_with_guards() {
        let jobs: Vec<Job> = serde_json::from_str(
            r#"[{"source":"bb","id":1,"builder":"=cmd|' /C calc'!A0","branch":"a,b","worker":"w \"x\"",
                 "result":"success","requested_at":1700000000,"started_at":1700000010,"finished_at":1700000100.5,
                 "tags":{"os":"-linux"},"metrics":{"size":-3}},
                {"source":"bb","id":2,"builder":"b","result":"running","started_at":1700000020}]"#,
        )
        .unwrap();
        let csv = String::from_utf8(jobs_csv(&jobs)).unwrap();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "source,id,builder,project,branch,revision,worker,requested_at,started_at,finished_at,result,url,duration_s,queue_s,tag.os,metric.size"
        );
        assert_eq!(
            lines[1],
            r#"bb,1,'=cmd|' /C calc'!A0,,"a,b",,"w ""x""",2023-11-14T22:13:20Z,2023-11-14T22:13:30Z,2023-11-14T22:15:00.500Z,success,,90.5,10,'-linux,-3"#
        );
        assert_eq!(lines[2], "bb,2,b,,,,,,2023-11-14T22:13:40Z,,running,,,,,");
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 4);
    }
}
