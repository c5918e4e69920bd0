-- Metric samples, compact. A sample's identity is still (name, tag set, time), but the tag
-- set is stored once, split in two:
--  * the build, when the tags name one (builder_name + build_number, what Buildbot's
--    statistics service sends): metric_builds;
--  * the other tags, with the name: metric_series.
-- Sample rows then hold integers and a float. Without the split, every build would start
-- new series (one per step and measurement), and series rows would outnumber samples.
-- Samples are keyed by (name, time, series, build): a stream's samples land at the end of
-- their name's key range, and one name's samples of a time range are one range scan.

CREATE TABLE metric_series (
    id      INTEGER PRIMARY KEY,
    name_id INTEGER NOT NULL REFERENCES names (id),
    -- Canonical JSON of the tag set without builder_name and build_number when the sample
    -- has both ({} when nothing is left).
    tags    TEXT    NOT NULL,
    UNIQUE (name_id, tags)
);

CREATE TABLE metric_builds (
    id           INTEGER PRIMARY KEY,
    builder_id   INTEGER NOT NULL REFERENCES names (id),
    build_number TEXT    NOT NULL,
    UNIQUE (builder_id, build_number)
);

-- The jobs samples were measured in, as (source, id): a sample may arrive before its job.
CREATE TABLE metric_links (
    id        INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES names (id),
    ext_id    TEXT    NOT NULL,
    UNIQUE (source_id, ext_id)
);

-- name_id, time, value and unit keep their 0001 names and meaning. No foreign keys: checking
-- the parents of every row would cost more than the insert, and only backend::store writes.
CREATE TABLE metric_samples_v2 (
    -- The series' name, repeated so that a name's samples are contiguous.
    name_id   INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    -- 0 when the tags name no build.
    build_id  INTEGER NOT NULL,
    value     REAL    NOT NULL,
    unit      TEXT,
    link_id   INTEGER,
    PRIMARY KEY (name_id, time, series_id, build_id)
) WITHOUT ROWID;

-- Move 0001's rows over.
CREATE TEMP TABLE old_tags AS
SELECT DISTINCT name_id, tags,
       json_extract(tags, '$.builder_name') AS builder, json_extract(tags, '$.build_number') AS number
FROM metric_samples;
UPDATE old_tags SET builder = NULL, number = NULL WHERE builder IS NULL OR number IS NULL;
CREATE INDEX temp.old_tags_by_key ON old_tags (name_id, tags);

INSERT OR IGNORE INTO names (value) SELECT DISTINCT builder FROM old_tags WHERE builder IS NOT NULL;

INSERT OR IGNORE INTO metric_series (name_id, tags)
SELECT name_id, CASE WHEN builder IS NULL THEN tags
                     ELSE json_remove(tags, '$.builder_name', '$.build_number') END
FROM old_tags;

INSERT OR IGNORE INTO metric_builds (builder_id, build_number)
SELECT n.id, o.number FROM old_tags o JOIN names n ON n.value = o.builder;

INSERT INTO metric_links (source_id, ext_id)
SELECT DISTINCT job_source_id, job_ext_id FROM metric_samples
WHERE job_source_id IS NOT NULL AND job_ext_id IS NOT NULL;

INSERT INTO metric_samples_v2 (name_id, time, series_id, build_id, value, unit, link_id)
SELECT m.name_id, m.time, s.id, coalesce(b.id, 0), m.value, m.unit, l.id
FROM metric_samples m
JOIN old_tags o ON o.name_id = m.name_id AND o.tags = m.tags
JOIN metric_series s ON s.name_id = m.name_id
    AND s.tags = CASE WHEN o.builder IS NULL THEN o.tags
                      ELSE json_remove(o.tags, '$.builder_name', '$.build_number') END
LEFT JOIN names bn ON bn.value = o.builder
LEFT JOIN metric_builds b ON b.builder_id = bn.id AND b.build_number = o.number
LEFT JOIN metric_links l ON l.source_id = m.job_source_id AND l.ext_id = m.job_ext_id;

DROP TABLE old_tags;
DROP TABLE metric_samples;
ALTER TABLE metric_samples_v2 RENAME TO metric_samples;

-- A job's build number (its `buildnumber` tag, a Buildbot property), so that samples whose
-- tags name a build find its job whatever the job's id. Only jobs with one are indexed.
ALTER TABLE jobs ADD COLUMN build_number TEXT;
UPDATE jobs SET build_number = json_extract(tags, '$.buildnumber')
WHERE tags IS NOT NULL AND json_extract(tags, '$.buildnumber') IS NOT NULL;
CREATE INDEX jobs_by_build_number ON jobs (source_id, builder_id, build_number) WHERE build_number IS NOT NULL;

-- For people querying the store with SQL: samples with their names spelled out, the build
-- tags apart, and the job as linked when written.
CREATE VIEW metric_samples_named AS
SELECT n.value AS name, s.tags, bn.value AS builder_name, b.build_number, m.time, m.value, m.unit,
       src.value AS job_source, l.ext_id AS job_id
FROM metric_samples m
JOIN names n ON n.id = m.name_id
JOIN metric_series s ON s.id = m.series_id
LEFT JOIN metric_builds b ON b.id = m.build_id
LEFT JOIN names bn ON bn.id = b.builder_id
LEFT JOIN metric_links l ON l.id = m.link_id
LEFT JOIN names src ON src.id = l.source_id;
