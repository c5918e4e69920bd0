//! Request and response bodies of the HTTP API (see docs/API.md).

use serde::{Deserialize, Serialize};

/// Answer to `POST /api/v1/jobs`: how many records were new and how many replaced a job
/// already stored under the same `(source, id)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    pub inserted: u64,
    pub updated: u64,
}

/// The one error envelope every 4xx and 5xx carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong. For a bad record in a batch, `index` is its position in the array and
/// `field` the offending field (`steps[2].finished_at`, `tags.MACHINE`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable kind: `invalid_record`, `malformed_json`, `bad_query`,
    /// `body_too_large`, `not_found`, `internal`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `GET /api/v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub jobs: u64,
}

/// Encodings of `GET /api/v1/jobs`, chosen with `format=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobsFormat {
    /// The compact columnar table of [`crate::wire`] (default).
    #[default]
    Columnar,
    /// A JSON array of job records.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}
