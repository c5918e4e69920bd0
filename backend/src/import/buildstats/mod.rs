//! Yocto/OpenEmbedded buildstats → one [`Job`] per build, one [`Step`] per recipe × task,
//! and per-task [`MetricSample`]s.
//!
//! Layout (`meta/classes-global/buildstats.bbclass`): `buildstats/<BUILDNAME>/build_stats`
//! plus `<PF>/<do_task>` files of `Key: value` lines. A directory given to [`parse_dir`] may
//! be the `buildstats/` base (every build under it is imported) or one build directory; a
//! tar (optionally gzipped) given to [`parse_tar`] may hold either, at any depth.
//!
//! What becomes what:
//! - Job key: `opts.job` if given, else `{source: opts.source or "yocto", id: BUILDNAME}` —
//!   the build directory name, a timestamp such as `20240301120000`, so re-importing the same
//!   tree yields the same key. Builder: the image recipe (the one with `do_rootfs`), else
//!   `bitbake`. Worker: the host from `Host Info`.
//! - Tags: `host`, `host_os`, `host_kernel`, `images`, `failed_task`, and the build
//!   configuration when `build_stats` carries bitbake's `NAME = "value"` header lines
//!   (a CI step can append them): `machine`, `distro`, `distro_version`, `bitbake_version`,
//!   `build_sys`, `target_sys`, `host_distro`, `tune_features`, `target_fpu`, `image`,
//!   `build_type`, and `layer.NAME` = `branch:revision` for each layer line.
//! - Job metrics: `cpu_seconds` (sum of the tasks' own and child rusage user+system time, as
//!   `scripts/lib/buildstats.py` computes `cputime`), `cpu_usage_pct`, `rootfs_size_bytes`,
//!   `tasks`, `tasks_failed`.
//! - Steps: `<recipe>:<do_task>` with the recipe name without version (`gcc-cross-x86_64`),
//!   so the same step lines up across builds; Started/Ended and PASSED/FAILED.
//! - Samples, linked to the job, timed at the task's end, tagged `recipe`, `version`, `task`:
//!   `task.wall_seconds`, `task.cpu_seconds`, `task.read_bytes`, `task.write_bytes`,
//!   `task.read_ops`, `task.write_ops`, `task.max_rss_kib`. Samples rather than step fields
//!   because `Step` has no measurements and these are exactly what `buildstats-diff`
//!   compares between builds.
//!
//! Files: `dir` reads a directory, `tar` an archive; both collect each build's files into a
//! `BuildFiles`, which this module turns into a batch; `parse` reads the text files.

mod dir;
mod parse;
mod tar;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use common::records::{JobKey, MetricSample};
use common::{Job, JobResult, Step, Timestamp};

pub use self::dir::parse_dir;
use self::parse::{BuildStats, parse_build_stats, parse_task, round_ms, split_pf};
pub use self::tar::parse_tar;
use super::{ImportBatch, ImportError, Options, Skipped};

/// Source of produced jobs when `opts.source` is not set.
pub const DEFAULT_SOURCE: &str = "yocto";

/// Most bytes a tar may decompress to. A full image build's buildstats are tens of MB.
pub const MAX_TAR_BYTES: u64 = 512 << 20;

/// Largest single buildstats file read; task files are under 2 KB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a tar or tar.gz of a buildstats tree: the body of `POST /api/v1/import/buildstats`.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_tar(input, opts, sink)
}

pub(super) fn check_found(builds: usize, opts: &Options, at: &str) -> Result<(), ImportError> {
    if builds == 0 {
        return Err(ImportError::new(
            at,
            "no buildstats found: expected <BUILDNAME>/build_stats or <BUILDNAME>/<recipe>/do_* files",
        ));
    }
    if builds > 1 && opts.job.is_some() {
        return Err(ImportError::new(at, format!("{builds} builds found, but a job key was given for one")));
    }
    Ok(())
}

/// One build's files, from a directory or a tar.
#[derive(Default)]
pub(super) struct BuildFiles {
    /// The build directory's name: BUILDNAME, a timestamp.
    pub(super) name: String,
    /// Where it was read from, for messages.
    pub(super) path: String,
    pub(super) build_stats: Option<String>,
    pub(super) tasks: Vec<TaskFile>,
    pub(super) skipped: Vec<Skipped>,
}

pub(super) struct TaskFile {
    /// `PF`: `name-[epoch_]version-revision`.
    pub(super) recipe_dir: String,
    pub(super) task: String,
    pub(super) text: String,
}

impl BuildFiles {
    pub(super) fn skip(&mut self, what: String, reason: &str) {
        self.skipped.push(Skipped { at: format!("{}/{what}", self.path), reason: reason.into() });
    }

    pub(super) fn into_batch(mut self, opts: &Options) -> Result<ImportBatch, ImportError> {
        // Tar order is whatever the archiver saw; sort so output does not depend on it.
        self.tasks.sort_by(|a, b| (&a.recipe_dir, &a.task).cmp(&(&b.recipe_dir, &b.task)));
        let key = opts.job.clone().unwrap_or_else(|| JobKey {
            source: opts.source.clone().unwrap_or_else(|| DEFAULT_SOURCE.to_owned()),
            id: self.name.clone(),
        });
        let stats = match &self.build_stats {
            Some(text) => parse_build_stats(text).map_err(|(line, m)| {
                ImportError::new(format!("{}/build_stats: line {line}", self.path), m)
            })?,
            None => BuildStats::default(),
        };

        let mut steps = Vec::new();
        let mut samples = Vec::new();
        let mut images = BTreeSet::new();
        let (mut cpu_total, mut any_cpu, mut failed) = (0.0, false, 0);
        let (mut first_time, mut last_time) = (None::<Timestamp>, None::<Timestamp>);
        for t in &self.tasks {
            let at = format!("{}/{}/{}", self.path, t.recipe_dir, t.task);
            let task =
                parse_task(&t.text).map_err(|(line, m)| ImportError::new(format!("{at}: line {line}"), m))?;
            let (recipe, version) = split_pf(&t.recipe_dir);
            if matches!(t.task.as_str(), "do_rootfs" | "do_image_complete") {
                images.insert(recipe.to_owned());
            }
            let result = match task.status.as_deref() {
                Some("PASSED") => Some(JobResult::Success),
                Some("FAILED") => {
                    failed += 1;
                    Some(JobResult::Failure)
                }
                Some(other) => {
                    return Err(ImportError::new(at, format!("Status `{other}` is not PASSED or FAILED")));
                }
                None if task.started.is_some() && task.ended.is_none() => Some(JobResult::Running),
                None => None,
            };
            for t in [task.started, task.ended].into_iter().flatten() {
                first_time = Some(first_time.map_or(t, |f| f.min(t)));
                last_time = Some(last_time.map_or(t, |l| l.max(t)));
            }
            steps.push(Step {
                name: format!("{recipe}:{}", t.task),
                started_at: task.started,
                finished_at: task.ended,
                result,
            });
            if let Some(cpu) = task.cpu_seconds() {
                cpu_total += cpu;
                any_cpu = true;
            }
            let Some(time) = task.ended.or(task.started) else {
                continue;
            };
            let tags = BTreeMap::from([
                ("recipe".to_owned(), recipe.to_owned()),
                ("version".to_owned(), version.to_owned()),
                ("task".to_owned(), t.task.clone()),
            ]);
            for (name, unit, value) in task.measurements() {
                samples.push(MetricSample {
                    name: name.to_owned(),
                    value,
                    unit: Some(unit.to_owned()),
                    time,
                    tags: tags.clone(),
                    job: Some(key.clone()),
                });
            }
        }
        steps.sort_by(|a, b| {
            (a.started_at.or(a.finished_at), &a.name).cmp(&(b.started_at.or(b.finished_at), &b.name))
        });

        let started_at = stats.started.or(first_time);
        let completed = stats.elapsed_ms.is_some();
        let failed_build = failed > 0 || stats.failed_task.is_some();
        let finished_at = match (started_at, stats.elapsed_ms) {
            (Some(s), Some(ms)) => Some(Timestamp::from_millis(s.as_millis() + ms)),
            (Some(s), None) if failed_build => last_time.filter(|l| *l >= s),
            _ => None,
        };
        let result = if failed_build {
            JobResult::Failure
        } else if completed {
            JobResult::Success
        } else {
            JobResult::Running
        };

        let mut tags = stats.tags;
        if let Some(f) = stats.failed_task {
            tags.insert("failed_task".into(), f);
        }
        if !images.is_empty() {
            tags.insert("images".into(), images.iter().cloned().collect::<Vec<_>>().join(","));
        }
        let mut metrics = stats.metrics;
        if any_cpu {
            metrics.insert(common::job::CPU_SECONDS_METRIC.into(), round_ms(cpu_total));
        }
        metrics.insert("tasks".into(), self.tasks.len() as f64);
        metrics.insert("tasks_failed".into(), f64::from(failed));
        let builder = tags
            .get("image")
            .cloned()
            .or_else(|| images.iter().next().cloned())
            .unwrap_or_else(|| "bitbake".to_owned());
        let job = Job {
            source: key.source,
            id: key.id,
            builder,
            project: None,
            branch: None,
            revision: None,
            worker: tags.get("host").cloned(),
            requested_at: None,
            started_at,
            finished_at,
            result,
            url: None,
            tags,
            metrics,
            steps,
        };
        job.validate().map_err(|e| ImportError::new(&self.path, format!("{}: {}", e.field, e.message)))?;
        Ok(ImportBatch {
            jobs: vec![job],
            tests: Vec::new(),
            samples,
            skipped: std::mem::take(&mut self.skipped),
        })
    }
}
