-- Strings that repeat across jobs (sources, builders, projects, branches, revisions,
-- workers, metric names) are stored once and referenced by id: the jobs table stays narrow
-- and reading a million jobs moves integers, not text.
CREATE TABLE names (
    id    INTEGER PRIMARY KEY,
    value TEXT NOT NULL UNIQUE
);

CREATE TABLE jobs (
    pk           INTEGER PRIMARY KEY,
    source_id    INTEGER NOT NULL REFERENCES names (id),
    ext_id       TEXT    NOT NULL,
    builder_id   INTEGER NOT NULL REFERENCES names (id),
    project_id   INTEGER REFERENCES names (id),
    branch_id    INTEGER REFERENCES names (id),
    revision_id  INTEGER REFERENCES names (id),
    worker_id    INTEGER REFERENCES names (id),
    -- Times are UTC epoch milliseconds.
    requested_at INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    -- The job's place in time: started_at, else requested_at. Range queries use it.
    t            INTEGER NOT NULL,
    -- common::JobResult::code()
    result       INTEGER NOT NULL,
    url          TEXT,
    -- JSON objects: {"platform": "linux64"} and {"build_size_bytes": 123}.
    tags         TEXT,
    metrics      TEXT,
    -- JSON array of common::Step. Steps are read per job (or with json_each), never
    -- joined in bulk, and a column costs a fraction of a row per step on ingest.
    steps        TEXT,
    UNIQUE (source_id, ext_id)
);

CREATE INDEX jobs_by_time ON jobs (t);

-- Test results and metric samples refer to their job by (source, id) rather than by key,
-- so a JUnit report or a metric may arrive before the job record does.
CREATE TABLE test_results (
    source_id   INTEGER NOT NULL REFERENCES names (id),
    job_ext_id  TEXT    NOT NULL,
    suite       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    duration_ms INTEGER,
    message     TEXT,
    PRIMARY KEY (source_id, job_ext_id, suite, name)
) WITHOUT ROWID;

CREATE TABLE metric_samples (
    name_id       INTEGER NOT NULL REFERENCES names (id),
    -- Canonical JSON of the tag set ({} when none), part of the point's identity.
    tags          TEXT    NOT NULL,
    time          INTEGER NOT NULL,
    value         REAL    NOT NULL,
    unit          TEXT,
    job_source_id INTEGER REFERENCES names (id),
    job_ext_id    TEXT,
    PRIMARY KEY (name_id, tags, time)
) WITHOUT ROWID;

CREATE INDEX metric_samples_by_time ON metric_samples (time);

-- Incremental importers remember how far they got per source (e.g. Buildbot complete_at).
CREATE TABLE import_state (
    source     TEXT PRIMARY KEY,
    high_water INTEGER NOT NULL
);

-- For people querying the store with SQL: jobs with their names spelled out.
CREATE VIEW jobs_named AS
SELECT j.pk, s.value AS source, j.ext_id AS id, b.value AS builder, p.value AS project,
       br.value AS branch, r.value AS revision, w.value AS worker,
       j.requested_at, j.started_at, j.finished_at, j.result, j.url, j.tags, j.metrics, j.steps
FROM jobs j
JOIN names s ON s.id = j.source_id
JOIN names b ON b.id = j.builder_id
LEFT JOIN names p ON p.id = j.project_id
LEFT JOIN names br ON br.id = j.branch_id
LEFT JOIN names r ON r.id = j.revision_id
LEFT JOIN names w ON w.id = j.worker_id;
