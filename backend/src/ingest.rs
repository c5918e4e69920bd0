//! Parsing and validating a batch of job records (the `POST /api/v1/jobs` body and
//! `buildscope ingest FILE`): all or nothing, and an error that names the record and field.

use common::Job;
use serde_path_to_error::Segment;

/// Why a batch was refused: which record (index in the array), which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct RecordError {
    pub index: Option<usize>,
    pub field: Option<String>,
    pub message: String,
    /// The body is not JSON of the right shape at all (as opposed to one bad record).
    pub malformed: bool,
}

impl RecordError {
    /// The stable error code for the API envelope.
    pub fn code(&self) -> &'static str {
        if self.malformed { "malformed_json" } else { "invalid_record" }
    }

    fn describe(&self) -> String {
        match (self.index, &self.field) {
            (Some(i), Some(f)) => format!("record {i}, field `{f}`: {}", self.message),
            (Some(i), None) => format!("record {i}: {}", self.message),
            (None, _) => self.message.clone(),
        }
    }
}

/// Parses a JSON array of jobs and validates every one. The first problem found is returned;
/// nothing is stored unless the whole batch is good.
pub fn parse_jobs(body: &[u8]) -> Result<Vec<Job>, RecordError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let jobs: Vec<Job> = serde_path_to_error::deserialize(de).map_err(|e| {
        let mut index = None;
        let mut fields = Vec::new();
        for segment in e.path().iter() {
            match segment {
                Segment::Seq { index: i } if index.is_none() && fields.is_empty() => index = Some(*i),
                Segment::Seq { index: i } => fields.push(format!("[{i}]")),
                Segment::Map { key } | Segment::Enum { variant: key } => fields.push(key.clone()),
                Segment::Unknown => {}
            }
        }
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde reports a missing field at the record itself; name it as the field.
        if fields.is_empty()
            && let Some(name) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next())
        {
            fields.push(name.to_owned());
        }
        let field = (!fields.is_empty()).then(|| fields.join(".").replace(".[", "["));
        let malformed = index.is_none() || inner.is_syntax() || inner.is_eof();
        RecordError { index, field, message, malformed }
    })?;
    for (i, job) in jobs.iter().enumerate() {
        job.validate().map_err(|e| RecordError {
            index: Some(i),
            field: Some(e.field),
            message: e.message,
            malformed: false,
        })?;
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, index: Option<usize>, field: Option<&str>, needle: &str) {
        let e = parse_jobs(body.as_bytes()).unwrap_err();
        assert_eq!((e.index, e.field.as_deref()), (index, field), "{e}");
        assert!(e.to_string().contains(needle), "{e} lacks {needle}");
    }

    const OK: &str = r#"{"source":"s","id":1,"builder":"b","result":"success","started_at":1700000000}"#;

    #[test]
    fn names_record_and_field() {
        check(
            &format!("[{OK},{{\"source\":\"s\",\"id\":2,\"result\":\"success\",\"started_at\":1700000000}}]"),
            Some(1),
            Some("builder"),
            "missing field `builder`",
        );
        check(
            &format!("[{OK},{OK},{}]", OK.replace("success", "green")),
            Some(2),
            Some("result"),
            "unknown variant `green`",
        );
        check(
            &format!("[{}]", OK.replace("1700000000", "\"yesterday\"")),
            Some(0),
            Some("started_at"),
            "not an RFC 3339",
        );
        check(
            &format!("[{}]", OK.replace("1700000000", "1700000000000")),
            Some(0),
            Some("started_at"),
            "looks like epoch milliseconds",
        );
        check(
            &format!("[{}]", OK.replace("}", r#","finished_at":1600000000}"#)),
            Some(0),
            Some("finished_at"),
            "before started_at",
        );
        check(
            &format!("[{}]", OK.replace("}", r#","tags":{"os":7}}"#)),
            Some(0),
            Some("tags.os"),
            "expected a string",
        );
        check(
            &format!("[{}]", OK.replace("}", r#","colour":"red"}"#)),
            Some(0),
            Some("colour"),
            "unknown field `colour`",
        );
    }

    #[test]
    fn malformed_bodies() {
        for body in ["", "[", "{}", "not json", "[{\"source\""] {
            let e = parse_jobs(body.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "malformed_json", "{body}: {e}");
        }
        assert_eq!(parse_jobs(b"[]").unwrap(), vec![]);
        assert_eq!(parse_jobs(format!("[{OK}]").as_bytes()).unwrap().len(), 1);
    }
}
