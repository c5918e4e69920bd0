//! A tar (optionally gzipped) of a buildstats tree: the HTTP endpoint's body.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Component;

use super::{BuildFiles, MAX_FILE_BYTES, MAX_TAR_BYTES, TaskFile, check_found};
use crate::import::{ImportBatch, ImportError, Limited, Options, Skipped};

/// Reads a tar, gzip-compressed or not (detected from the magic bytes), of a buildstats
/// tree. Stops with an error once more than [`MAX_TAR_BYTES`] have been decompressed.
pub fn parse_tar(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_tar_limited(input, opts, sink, MAX_TAR_BYTES)
}

pub(super) fn parse_tar_limited(
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
    let mut archive = ::tar::Archive::new(Limited::new(raw, limit));

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::buildstats::tests::{collect, tar_of};

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
}
