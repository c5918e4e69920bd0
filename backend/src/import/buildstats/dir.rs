//! A buildstats directory on disk (the CLI's `buildscope import buildstats DIR`).

use std::io::Read;
use std::path::Path;

use super::{BuildFiles, MAX_FILE_BYTES, TaskFile, check_found};
use crate::import::{ImportBatch, ImportError, Options};

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
