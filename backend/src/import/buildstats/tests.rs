//! Whole-build tests: files in, one rendered line per fact out.

use std::path::Path;

use common::Timestamp;
use common::records::JobKey;

use super::*;

/// Builds an in-memory tar of `files`.
pub(super) fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut h = ::tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

pub(super) fn collect(
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
    let mut b = ::tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
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
    let opts =
        Options { job: Some(JobKey { source: "ab".into(), id: "nightly-42".into() }), ..Default::default() };
    let e = collect(|sink| parse_dir(&root, &opts, sink)).unwrap_err();
    assert_eq!(e.message, "2 builds found, but a job key was given for one");
    let b = collect(|sink| parse_dir(&root.join("20240302080000"), &opts, sink)).unwrap();
    assert_eq!(
        (b[0].jobs[0].id.as_str(), b[0].samples[0].job.as_ref().unwrap().id.as_str()),
        ("nightly-42", "nightly-42")
    );
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
