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

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read};
use std::path::{Component, Path};

use common::records::{JobKey, MetricSample};
use common::{Job, JobResult, Step, Timestamp};

use super::{ImportBatch, ImportError, Limited, Options, Skipped};

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

/// Reads a buildstats directory: the `buildstats/` base or one build directory under it.
/// Each build is handed to `sink` as one batch (its job and its samples).
pub fn parse_dir(
    path: &Path,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let shown = path.display().to_string();
    let io_err = |p: &Path, e: std::io::Error| ImportError::new(p.display().to_string(), e.to_string());
    if !path.is_dir() {
        return Err(ImportError::new(&shown, "not a directory"));
    }
    let dirs = if is_build_dir(path) {
        vec![path.to_path_buf()]
    } else {
        sorted_entries(path)
            .map_err(|e| io_err(path, e))?
            .into_iter()
            .filter(|p| p.is_dir() && is_build_dir(p))
            .collect()
    };
    check_found(dirs.len(), opts, &shown)?;
    for dir in dirs {
        let mut build =
            BuildFiles { name: file_name(&dir), path: dir.display().to_string(), ..BuildFiles::default() };
        for entry in sorted_entries(&dir).map_err(|e| io_err(&dir, e))? {
            let name = file_name(&entry);
            if entry.is_dir() {
                for task in sorted_entries(&entry).map_err(|e| io_err(&entry, e))? {
                    let task_name = file_name(&task);
                    if task.is_file() && task_name.starts_with("do_") {
                        let text = read_file(&task)?;
                        build.tasks.push(TaskFile { recipe_dir: name.clone(), task: task_name, text });
                    } else {
                        build.skip(format!("{name}/{task_name}"), "not a task file");
                    }
                }
            } else if name == "build_stats" {
                build.build_stats = Some(read_file(&entry)?);
            } else {
                build.skip(name, "host statistics and other files are not imported");
            }
        }
        sink(build.into_batch(opts)?)?;
    }
    Ok(())
}

/// Reads a tar, gzip-compressed or not (detected from the magic bytes), of a buildstats
/// tree. Stops with an error once more than [`MAX_TAR_BYTES`] have been decompressed.
pub fn parse_tar(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_tar_limited(input, opts, sink, MAX_TAR_BYTES)
}

fn parse_tar_limited(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
    limit: u64,
) -> Result<(), ImportError> {
    let origin = if opts.origin.is_empty() { "tar".to_owned() } else { opts.origin.clone() };
    let tar_err = |e: std::io::Error| ImportError::new(&origin, format!("broken tar: {e}"));
    let head = input.fill_buf().map_err(tar_err)?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let raw: Box<dyn Read + '_> =
        if gzip { Box::new(flate2::bufread::MultiGzDecoder::new(input)) } else { Box::new(input) };
    let mut archive = tar::Archive::new(Limited::new(raw, limit));

    let mut builds: BTreeMap<String, BuildFiles> = BTreeMap::new();
    let mut stray = Vec::new();
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(tar_err)?;
        let parts: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let shown = parts.join("/");
        let Some(name) = parts.last().cloned() else {
            continue;
        };
        let (build_dir, recipe) = if name == "build_stats" && parts.len() >= 2 {
            (parts[..parts.len() - 1].join("/"), None)
        } else if name.starts_with("do_") && parts.len() >= 3 {
            (parts[..parts.len() - 2].join("/"), Some(parts[parts.len() - 2].clone()))
        } else {
            stray.push(Skipped { at: shown, reason: "not a build_stats or task file".into() });
            continue;
        };
        if entry.header().size().unwrap_or(0) > MAX_FILE_BYTES {
            return Err(ImportError::new(
                format!("{origin}: {shown}"),
                format!("larger than {MAX_FILE_BYTES} bytes"),
            ));
        }
        let mut bytes = Vec::new();
        entry.by_ref().take(MAX_FILE_BYTES).read_to_end(&mut bytes).map_err(tar_err)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ImportError::new(format!("{origin}: {shown}"), "not UTF-8 text"))?;
        let build = builds.entry(build_dir.clone()).or_insert_with(|| BuildFiles {
            name: build_dir.rsplit('/').next().unwrap_or_default().to_owned(),
            path: format!("{origin}: {build_dir}"),
            ..BuildFiles::default()
        });
        match recipe {
            None => build.build_stats = Some(text),
            Some(recipe_dir) => build.tasks.push(TaskFile { recipe_dir, task: name, text }),
        }
    }
    check_found(builds.len(), opts, &origin)?;
    let mut first = true;
    for build in builds.into_values() {
        let mut batch = build.into_batch(opts)?;
        if std::mem::take(&mut first) {
            batch.skipped.append(&mut stray);
        }
        sink(batch)?;
    }
    Ok(())
}

fn check_found(builds: usize, opts: &Options, at: &str) -> Result<(), ImportError> {
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
struct BuildFiles {
    /// The build directory's name: BUILDNAME, a timestamp.
    name: String,
    /// Where it was read from, for messages.
    path: String,
    build_stats: Option<String>,
    tasks: Vec<TaskFile>,
    skipped: Vec<Skipped>,
}

struct TaskFile {
    /// `PF`: `name-[epoch_]version-revision`.
    recipe_dir: String,
    task: String,
    text: String,
}

impl BuildFiles {
    fn skip(&mut self, what: String, reason: &str) {
        self.skipped.push(Skipped { at: format!("{}/{what}", self.path), reason: reason.into() });
    }

    fn into_batch(mut self, opts: &Options) -> Result<ImportBatch, ImportError> {
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

/// What the build-level `build_stats` file says.
#[derive(Default)]
struct BuildStats {
    started: Option<Timestamp>,
    elapsed_ms: Option<i64>,
    failed_task: Option<String>,
    tags: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
}

/// Bitbake's build-configuration header names → tag keys.
const BUILD_CONFIG_TAGS: [(&str, &str); 11] = [
    ("BB_VERSION", "bitbake_version"),
    ("BUILD_SYS", "build_sys"),
    ("NATIVELSBSTRING", "host_distro"),
    ("TARGET_SYS", "target_sys"),
    ("MACHINE", "machine"),
    ("DISTRO", "distro"),
    ("DISTRO_VERSION", "distro_version"),
    ("TUNE_FEATURES", "tune_features"),
    ("TARGET_FPU", "target_fpu"),
    ("IMAGE", "image"),
    ("BUILD_TYPE", "build_type"),
];

fn parse_build_stats(text: &str) -> Result<BuildStats, (usize, String)> {
    let mut s = BuildStats::default();
    // Bitbake prints layers that share a revision as bare names followed by one `= "..."`
    // line; the bare names wait here for that value.
    let mut pending_layers: Vec<&str> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some((name, value)) = config_line(line) {
            let key = match BUILD_CONFIG_TAGS.iter().find(|(k, _)| *k == name) {
                Some((_, tag)) => (*tag).to_owned(),
                // Layer lines: `meta-poky = "scarthgap:1f2e3d..."`.
                None if value.contains(':') => {
                    for layer in pending_layers.drain(..) {
                        s.tags.insert(format!("layer.{layer}"), value.to_owned());
                    }
                    format!("layer.{name}")
                }
                None => name.to_ascii_lowercase(),
            };
            if !value.is_empty() {
                s.tags.insert(key, value.to_owned());
            }
            continue;
        }
        if is_config_name(line.trim()) && !line.contains(':') {
            pending_layers.push(line.trim());
            continue;
        }
        pending_layers.clear();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Host Info" => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                for (tag, i) in [("host_os", 0), ("host", 1), ("host_kernel", 2)] {
                    if let Some(v) = parts.get(i) {
                        s.tags.insert(tag.into(), (*v).to_owned());
                    }
                }
            }
            "Build Started" => {
                s.started = Some(epoch(value).map_err(|m| (n, format!("Build Started: {m}")))?)
            }
            "Elapsed time" => {
                s.elapsed_ms = Some(seconds(value).map_err(|m| (n, format!("Elapsed time: {m}")))?)
            }
            "CPU usage" => {
                let pct = number(value.trim_end_matches('%')).map_err(|m| (n, format!("CPU usage: {m}")))?;
                s.metrics.insert("cpu_usage_pct".into(), pct);
            }
            "Uncompressed Rootfs size" => {
                if let Some(bytes) = value.split_whitespace().next().and_then(human_size) {
                    s.metrics.insert("rootfs_size_bytes".into(), bytes);
                }
            }
            // `<PF> at task: <task>`: the first failure is the interesting one.
            "Failed at" if s.failed_task.is_none() => {
                if let Some((pf, task)) = value.split_once(" at task") {
                    let task = task.trim_start_matches(':').trim();
                    s.failed_task = Some(format!("{}:{task}", split_pf(pf.trim()).0));
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// `NAME = "value"` (bitbake's build configuration header), else `None`.
fn config_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    is_config_name(name).then_some((name, value.trim()))
}

fn is_config_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
}

/// One task file.
#[derive(Default)]
struct Task {
    started: Option<Timestamp>,
    ended: Option<Timestamp>,
    elapsed_s: Option<f64>,
    status: Option<String>,
    io: BTreeMap<String, f64>,
    rusage: BTreeMap<String, f64>,
    child: BTreeMap<String, f64>,
}

impl Task {
    /// User + system time of the task and its children (buildstats.py's `cputime`).
    fn cpu_seconds(&self) -> Option<f64> {
        let own = self.rusage.get("ru_utime")? + self.rusage.get("ru_stime")?;
        let child = self.child.get("ru_utime").unwrap_or(&0.0) + self.child.get("ru_stime").unwrap_or(&0.0);
        Some(own + child)
    }

    fn rusage_sum(&self, key: &str) -> Option<f64> {
        Some(self.rusage.get(key)? + self.child.get(key).unwrap_or(&0.0))
    }

    /// `(sample name, unit, value)` for what this task measured.
    fn measurements(&self) -> Vec<(&'static str, &'static str, f64)> {
        let wall = self
            .elapsed_s
            .or_else(|| Some((self.ended?.as_millis() - self.started?.as_millis()) as f64 / 1000.0));
        let rss = match (self.rusage.get("ru_maxrss"), self.child.get("ru_maxrss")) {
            (Some(a), Some(b)) => Some(a.max(*b)),
            (a, b) => a.or(b).copied(),
        };
        [
            ("task.wall_seconds", "s", wall),
            ("task.cpu_seconds", "s", self.cpu_seconds().map(round_ms)),
            ("task.read_bytes", "bytes", self.io.get("read_bytes").copied()),
            ("task.write_bytes", "bytes", self.io.get("write_bytes").copied()),
            ("task.read_ops", "ops", self.rusage_sum("ru_inblock")),
            ("task.write_ops", "ops", self.rusage_sum("ru_oublock")),
            ("task.max_rss_kib", "KiB", rss),
        ]
        .into_iter()
        .filter_map(|(n, u, v)| Some((n, u, v?)))
        .collect()
    }
}

fn parse_task(text: &str) -> Result<Task, (usize, String)> {
    let mut t = Task::default();
    let mut ended_line = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let num = |v: &str| number(v).map_err(|m| (n, format!("{key}: {m}")));
        match key {
            "Started" => t.started = Some(epoch(value).map_err(|m| (n, format!("Started: {m}")))?),
            "Ended" => {
                t.ended = Some(epoch(value).map_err(|m| (n, format!("Ended: {m}")))?);
                ended_line = n;
            }
            "Elapsed time" => {
                t.elapsed_s = Some(num(value.trim_end_matches("seconds").trim())?);
            }
            "Status" => t.status = Some(value.to_owned()),
            _ => {
                if let Some(io) = key.strip_prefix("IO ") {
                    t.io.insert(io.trim().to_owned(), num(value)?);
                } else if let Some(ru) = key.strip_prefix("rusage ") {
                    t.rusage.insert(ru.trim().to_owned(), num(value)?);
                } else if let Some(ru) = key.strip_prefix("Child rusage ") {
                    t.child.insert(ru.trim().to_owned(), num(value)?);
                }
            }
        }
    }
    if let (Some(s), Some(e)) = (t.started, t.ended)
        && e < s
    {
        return Err((ended_line, format!("Ended {e} is before Started {s}")));
    }
    Ok(t)
}

/// Splits `PF` (`name-[epoch_]version-revision`) into the recipe name and the rest, as
/// `buildstats.py`'s `split_nevr` does: the version starts at the last `-` followed by a
/// digit, or at the last `-` when none is.
fn split_pf(pf: &str) -> (&str, &str) {
    let Some((nev, _rev)) = pf.rsplit_once('-') else {
        return (pf, "");
    };
    let digit_start = nev.match_indices('-').rev().map(|(i, _)| i).find(|&i| {
        let v = &nev[i + 1..];
        let v = match v.split_once('_') {
            Some((epoch, rest))
                if !epoch.is_empty() && epoch.len() <= 5 && epoch.bytes().all(|b| b.is_ascii_digit()) =>
            {
                rest
            }
            _ => v,
        };
        v.starts_with(|c: char| c.is_ascii_digit())
    });
    match digit_start.or_else(|| nev.rfind('-')) {
        Some(i) if i > 0 => (&pf[..i], &pf[i + 1..]),
        _ => (nev, &pf[nev.len() + 1..]),
    }
}

fn number(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{}` is not a number", cut(s, 60))),
    }
}

fn epoch(s: &str) -> Result<Timestamp, String> {
    Timestamp::from_epoch_seconds(number(s)?)
}

/// `1234.56 seconds` → ms.
fn seconds(s: &str) -> Result<i64, String> {
    let secs = number(s.trim_end_matches("seconds").trim())?;
    if secs < 0.0 {
        return Err(format!("{secs} is negative"));
    }
    Ok((secs * 1000.0).round() as i64)
}

/// `du -sh` sizes: `512K`, `1.2G`, `900` (bytes).
fn human_size(s: &str) -> Option<f64> {
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1024.0),
        'M' => (&s[..s.len() - 1], 1024.0 * 1024.0),
        'G' => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
        'T' => (&s[..s.len() - 1], 1024.0f64.powi(4)),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult).round())
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn is_build_dir(p: &Path) -> bool {
    if p.join("build_stats").is_file() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(p) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.path().is_dir()
            && std::fs::read_dir(e.path())
                .map(|mut tasks| {
                    tasks.any(|t| t.is_ok_and(|t| t.file_name().to_string_lossy().starts_with("do_")))
                })
                .unwrap_or(false)
    })
}

fn sorted_entries(p: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut v: Vec<_> = std::fs::read_dir(p)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read_file(p: &Path) -> Result<String, ImportError> {
    let err = |m: String| ImportError::new(p.display().to_string(), m);
    let f = std::fs::File::open(p).map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    String::from_utf8(bytes).map_err(|_| err("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an in-memory tar of `files`.
    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, text) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn collect(
        run: impl FnOnce(&mut dyn FnMut(ImportBatch) -> Result<(), ImportError>) -> Result<(), ImportError>,
    ) -> Result<Vec<ImportBatch>, ImportError> {
        let mut out = Vec::new();
        run(&mut |b| {
            out.push(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// One line per fact: the job, its tags, metrics and steps, then the samples, then the
    /// skipped files.
    fn render(batches: &[ImportBatch]) -> String {
        let mut out = Vec::new();
        let t = |t: Option<Timestamp>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
        for b in batches {
            for j in &b.jobs {
                out.push(format!(
                    "job {}:{} builder={} worker={} {} {} {}",
                    j.source,
                    j.id,
                    j.builder,
                    j.worker.as_deref().unwrap_or("-"),
                    t(j.started_at),
                    t(j.finished_at),
                    j.result
                ));
                out.extend(j.tags.iter().map(|(k, v)| format!("  tag {k}={v}")));
                out.extend(j.metrics.iter().map(|(k, v)| format!("  metric {k}={v}")));
                out.extend(j.steps.iter().map(|s| {
                    format!(
                        "  step {} {} {} {}",
                        s.name,
                        t(s.started_at),
                        t(s.finished_at),
                        s.result.map_or("-".into(), |r| r.to_string())
                    )
                }));
            }
            for s in &b.samples {
                let job = s.job.as_ref().map(|j| format!("{}:{}", j.source, j.id)).unwrap_or_default();
                out.push(format!(
                    "  sample {} {} {} {}/{}/{} {} {job}",
                    s.name,
                    s.value,
                    s.unit.as_deref().unwrap_or(""),
                    s.tags["recipe"],
                    s.tags["version"],
                    s.tags["task"],
                    t(Some(s.time))
                ));
            }
            out.extend(b.skipped.iter().map(|s| format!("  skipped {}: {}", s.at, s.reason)));
        }
        out.join("\n")
    }

    /// Parses a tar of `files` and compares the rendering (or `error: ...`) with `expected`.
    fn check(files: &[(&str, &str)], expected: &str) {
        let tar = tar_of(files);
        let got = match collect(|sink| parse_tar(&mut &tar[..], &Options::default(), sink)) {
            Ok(b) => render(&b),
            Err(e) => format!("error: {e}"),
        };
        let expected: Vec<&str> = expected.trim().lines().map(str::trim).collect();
        let got: Vec<&str> = got.lines().map(str::trim).collect();
        assert_eq!(got.join("\n"), expected.join("\n"));
    }

    const TASK: &str = "Event: TaskStarted \nStarted: 1709294500.00 \nzlib-1.3.1-r0: do_compile\nElapsed time: 2.50 seconds\n\
        IO read_bytes: 4096\nIO write_bytes: 8192\nrusage ru_utime: 0.5\nrusage ru_stime: 0.25\nrusage ru_maxrss: 1000\n\
        rusage ru_inblock: 3\nrusage ru_oublock: 4\nChild rusage ru_utime: 1.5\nChild rusage ru_stime: 0.75\n\
        Child rusage ru_maxrss: 3000\nChild rusage ru_inblock: 10\nChild rusage ru_oublock: 20\nStatus: PASSED \nEnded: 1709294502.50 \n";

    #[test]
    fn one_task_build() {
        check(
            &[
                ("tmp/buildstats/20240301120000/build_stats", "Host Info: Linux b1 6.8.0 #1 SMP x86_64 \nBuild Started: 1709294400.00 \nMACHINE = \"qemuarm64\"\nElapsed time: 200.00 seconds \n"),
                ("tmp/buildstats/20240301120000/zlib-1.3.1-r0/do_compile", TASK),
            ],
            "job yocto:20240301120000 builder=bitbake worker=b1 2024-03-01T12:00:00Z 2024-03-01T12:03:20Z success
               tag host=b1
               tag host_kernel=6.8.0
               tag host_os=Linux
               tag machine=qemuarm64
               metric cpu_seconds=3
               metric tasks=1
               metric tasks_failed=0
               step zlib:do_compile 2024-03-01T12:01:40Z 2024-03-01T12:01:42.500Z success
               sample task.wall_seconds 2.5 s zlib/1.3.1-r0/do_compile 2024-03-01T12:01:42.500Z yocto:20240301120000
               sample task.cpu_seconds 3 s zlib/1.3.1-r0/do_compile 2024-03-01T12:01:42.500Z yocto:20240301120000
               sample task.read_bytes 4096 bytes zlib/1.3.1-r0/do_compile 2024-03-01T12:01:42.500Z yocto:20240301120000
               sample task.write_bytes 8192 bytes zlib/1.3.1-r0/do_compile 2024-03-01T12:01:42.500Z yocto:20240301120000
               sample task.read_ops 13 ops zlib/1.3.1-r0/do_compile 2024-03-01T12:01:42.500Z yocto:20240301120000
               sample task.write_ops 24 ops zlib/1.3.1-r0/do_compile 2024-03-01T12:01:42.500Z yocto:20240301120000
               sample task.max_rss_kib 3000 KiB zlib/1.3.1-r0/do_compile 2024-03-01T12:01:42.500Z yocto:20240301120000",
        );
    }

    #[test]
    fn unfinished_build_without_build_stats_is_running() {
        check(
            &[
                ("20240301120000/zlib-1.3.1-r0/do_fetch", "Event: TaskStarted \nStarted: 1709294500.00 \n"),
                ("README", "x"),
            ],
            "job yocto:20240301120000 builder=bitbake worker=- 2024-03-01T12:01:40Z - running
               metric tasks=1
               metric tasks_failed=0
               step zlib:do_fetch 2024-03-01T12:01:40Z - running
               skipped README: not a build_stats or task file",
        );
    }

    #[test]
    fn bad_files_are_named() {
        for (files, want) in [
            (
                vec![("b/r-1-r0/do_x", "Started: soon \n")],
                "error: tar: b/r-1-r0/do_x: line 1: Started: `soon` is not a number",
            ),
            (
                vec![("b/r-1-r0/do_x", "Started: 1709294500000.00 \n")],
                "error: tar: b/r-1-r0/do_x: line 1: Started: epoch seconds 1709294500000 is after 2100 (looks like epoch milliseconds; epoch seconds expected)",
            ),
            (
                vec![("b/r-1-r0/do_x", "Started: 1709294500 \nStatus: MAYBE \n")],
                "error: tar: b/r-1-r0/do_x: Status `MAYBE` is not PASSED or FAILED",
            ),
            (
                vec![("b/r-1-r0/do_x", "Started: 1709294500 \nEnded: 1709294400 \n")],
                "error: tar: b/r-1-r0/do_x: line 2: Ended 2024-03-01T12:00:00Z is before Started 2024-03-01T12:01:40Z",
            ),
            (
                vec![("b/r-1-r0/do_x", "Started: 1709294500 \nrusage ru_utime: lots\n")],
                "error: tar: b/r-1-r0/do_x: line 2: rusage ru_utime: `lots` is not a number",
            ),
            (
                vec![("b/build_stats", "Build Started: 1709294500 \nElapsed time: -3 seconds\n")],
                "error: tar: b/build_stats: line 2: Elapsed time: -3 is negative",
            ),
            (
                vec![("b/build_stats", "Host Info: Linux h\n")],
                "error: tar: b: started_at: a job needs started_at or requested_at to place it in time",
            ),
            (
                vec![("notes.txt", "hello")],
                "error: tar: no buildstats found: expected <BUILDNAME>/build_stats or <BUILDNAME>/<recipe>/do_* files",
            ),
        ] {
            check(&files, want);
        }
        let e = collect(|sink| {
            parse_tar(&mut &b"not a tar at all, just text that goes on"[..], &Options::default(), sink)
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("tar: "), "{e}");
        let mut truncated = tar_of(&[("b/r-1-r0/do_x", TASK)]);
        truncated.truncate(700);
        let e = collect(|sink| parse_tar(&mut &truncated[..], &Options::default(), sink)).unwrap_err();
        assert!(e.to_string().starts_with("tar: broken tar"), "{e}");
    }

    #[test]
    fn recipe_names() {
        for (pf, name, version) in [
            ("gcc-cross-x86_64-13.2.0-r0", "gcc-cross-x86_64", "13.2.0-r0"),
            ("linux-yocto-6.6.21+git-r0", "linux-yocto", "6.6.21+git-r0"),
            ("ncurses-1_6.4-r0", "ncurses", "1_6.4-r0"),
            ("core-image-minimal-1.0-r0", "core-image-minimal", "1.0-r0"),
            ("packagegroup-core-boot-1.0-r17", "packagegroup-core-boot", "1.0-r17"),
            ("foo-git-r0", "foo", "git-r0"),
            ("plain", "plain", ""),
        ] {
            assert_eq!(split_pf(pf), (name, version), "{pf}");
        }
    }

    #[test]
    fn fixture_directory_and_its_tar_gz_agree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildstats/buildstats");
        let from_dir = collect(|sink| parse_dir(&root, &Options::default(), sink)).unwrap();
        assert_eq!(from_dir.len(), 2);
        let (ok, failed) = (&from_dir[0].jobs[0], &from_dir[1].jobs[0]);
        assert_eq!(
            (ok.id.as_str(), ok.result, ok.builder.as_str()),
            ("20240301120000", JobResult::Success, "core-image-minimal")
        );
        assert_eq!(ok.tags["machine"], "qemux86-64");
        assert_eq!(ok.tags["layer.meta"], "scarthgap:1f2e3d4c5b6a79880796a5b4c3d2e1f0a9b8c7d6");
        assert_eq!(ok.tags["bitbake_version"], "2.8.0");
        assert_eq!(ok.metrics["rootfs_size_bytes"], 23.0 * 1024.0 * 1024.0);
        assert_eq!(ok.duration_ms(), Some(1_800_500));
        assert_eq!(ok.steps.len(), 5);
        assert_eq!(ok.steps[0].name, "busybox:do_fetch");
        assert!(from_dir[0].samples.iter().all(|s| s.job.as_ref().is_some_and(|j| j.id == ok.id)));
        assert_eq!(
            (failed.result, failed.tags["failed_task"].as_str()),
            (JobResult::Failure, "linux-yocto:do_compile")
        );
        let deploy = failed.steps.iter().find(|s| s.name == "linux-yocto:do_deploy").unwrap();
        assert_eq!((deploy.started_at, deploy.result), (None, Some(JobResult::Failure)));
        assert_eq!(from_dir[1].skipped.len(), 1, "{:?}", from_dir[1].skipped);

        // A build directory on its own gives the same job.
        let one = collect(|sink| parse_dir(&root.join("20240301120000"), &Options::default(), sink)).unwrap();
        assert_eq!(one[0].jobs, from_dir[0].jobs);

        // The same tree as a .tar.gz gives the same jobs and samples.
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        b.append_dir_all("tmp/buildstats", &root).unwrap();
        let gz = b.into_inner().unwrap().finish().unwrap();
        let from_tar = collect(|sink| parse(&mut &gz[..], &Options::default(), sink)).unwrap();
        assert_eq!(
            from_tar.iter().map(|b| &b.jobs).collect::<Vec<_>>(),
            from_dir.iter().map(|b| &b.jobs).collect::<Vec<_>>()
        );
        assert_eq!(from_tar[0].samples, from_dir[0].samples);

        // Overrides: a source, or a whole key for a single build.
        let opts = Options { source: Some("yocto-ab".into()), ..Default::default() };
        let b = collect(|sink| parse_dir(&root, &opts, sink)).unwrap();
        assert_eq!(b[1].jobs[0].source, "yocto-ab");
        let opts = Options {
            job: Some(JobKey { source: "ab".into(), id: "nightly-42".into() }),
            ..Default::default()
        };
        let e = collect(|sink| parse_dir(&root, &opts, sink)).unwrap_err();
        assert_eq!(e.message, "2 builds found, but a job key was given for one");
        let b = collect(|sink| parse_dir(&root.join("20240302080000"), &opts, sink)).unwrap();
        assert_eq!(
            (b[0].jobs[0].id.as_str(), b[0].samples[0].job.as_ref().unwrap().id.as_str()),
            ("nightly-42", "nightly-42")
        );
    }

    #[test]
    fn decompression_is_limited() {
        let big = "0".repeat(300_000);
        let tar = tar_of(&[("b/r-1-r0/do_x", &big)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 2000, "{}", gz.len());
        let e =
            collect(|sink| parse_tar_limited(&mut &gz[..], &Options::default(), sink, 100_000)).unwrap_err();
        assert_eq!(e.to_string(), "tar: broken tar: decompressed input is larger than the 100000 byte limit");
        let huge = tar_of(&[("b/r-1-r0/do_x", &"x".repeat(MAX_FILE_BYTES as usize + 1))]);
        let e = collect(|sink| parse_tar(&mut &huge[..], &Options::default(), sink)).unwrap_err();
        assert_eq!(e.to_string(), format!("tar: b/r-1-r0/do_x: larger than {MAX_FILE_BYTES} bytes"));
    }

    #[test]
    fn random_bytes_and_truncation_never_panic() {
        use super::super::influx::noise::{Lcg, mutate};
        let tar = tar_of(&[
            ("b/build_stats", "Build Started: 1709294400 \nFailed at: x-1-r0 at task: do_y\n"),
            ("b/zlib-1.3.1-r0/do_compile", TASK),
        ]);
        let mut rng = Lcg(3);
        for round in 0..600 {
            let mut bytes = tar.clone();
            if round % 3 == 0 {
                bytes.truncate(rng.below(bytes.len() + 1));
            } else {
                // Mutate inside the file contents, where the text parsers see it.
                let mut text = TASK.as_bytes().to_vec();
                mutate(&mut rng, &mut text, b":. \n0123456789e-");
                let text = String::from_utf8_lossy(&text).into_owned();
                bytes = tar_of(&[("b/zlib-1.3.1-r0/do_compile", &text), ("b/build_stats", &text)]);
            }
            let _ = collect(|sink| parse_tar(&mut &bytes[..], &Options::default(), sink));
        }
    }
}
