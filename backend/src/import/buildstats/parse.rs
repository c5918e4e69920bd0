//! The two text formats: a build's `build_stats` and a task's `do_*` file, both `Key: value`
//! lines.

use std::collections::BTreeMap;

use common::Timestamp;

#[derive(Default)]
pub(super) struct BuildStats {
    pub(super) started: Option<Timestamp>,
    pub(super) elapsed_ms: Option<i64>,
    pub(super) failed_task: Option<String>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) metrics: BTreeMap<String, f64>,
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

pub(super) fn parse_build_stats(text: &str) -> Result<BuildStats, (usize, String)> {
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
pub(super) struct Task {
    pub(super) started: Option<Timestamp>,
    pub(super) ended: Option<Timestamp>,
    pub(super) elapsed_s: Option<f64>,
    pub(super) status: Option<String>,
    pub(super) io: BTreeMap<String, f64>,
    pub(super) rusage: BTreeMap<String, f64>,
    pub(super) child: BTreeMap<String, f64>,
}

impl Task {
    /// User + system time of the task and its children (buildstats.py's `cputime`).
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        let own = self.rusage.get("ru_utime")? + self.rusage.get("ru_stime")?;
        let child = self.child.get("ru_utime").unwrap_or(&0.0) + self.child.get("ru_stime").unwrap_or(&0.0);
        Some(own + child)
    }

    fn rusage_sum(&self, key: &str) -> Option<f64> {
        Some(self.rusage.get(key)? + self.child.get(key).unwrap_or(&0.0))
    }

    /// `(sample name, unit, value)` for what this task measured.
    pub(super) fn measurements(&self) -> Vec<(&'static str, &'static str, f64)> {
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

pub(super) fn parse_task(text: &str) -> Result<Task, (usize, String)> {
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
pub(super) fn split_pf(pf: &str) -> (&str, &str) {
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

pub(super) fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
