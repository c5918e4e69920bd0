//! Helpers the importer tests share: a one-line-per-record summary to compare against, and a
//! no-panic loop over random and truncated inputs.

use std::fmt::Write as _;

use common::Timestamp;

use crate::import::{ImportBatch, ImportError, Options};

fn secs(t: Option<Timestamp>) -> String {
    t.map_or("-".into(), |t| {
        let ms = t.as_millis();
        if ms % 1000 == 0 { (ms / 1000).to_string() } else { format!("{}", ms as f64 / 1000.0) }
    })
}

/// `id builder result w=worker q=requested s=started f=finished [steps]`, then
/// `skip at: reason` lines; times in epoch seconds.
pub fn summarize(batch: &ImportBatch) -> String {
    let mut out = String::new();
    for j in &batch.jobs {
        let steps: Vec<String> =
            j.steps.iter().map(|s| format!("{}:{}", s.name, s.result.map_or("-", |r| r.as_str()))).collect();
        writeln!(
            out,
            "{} {} {} w={} q={} s={} f={}{}",
            j.id,
            j.builder,
            j.result,
            j.worker.as_deref().unwrap_or("-"),
            secs(j.requested_at),
            secs(j.started_at),
            secs(j.finished_at),
            if steps.is_empty() { String::new() } else { format!(" [{}]", steps.join(" ")) },
        )
        .unwrap();
        j.validate().unwrap();
    }
    for s in &batch.skipped {
        writeln!(out, "skip {}: {}", s.at, s.reason).unwrap();
    }
    out
}

/// Compares ignoring leading indentation, so expectations can be indented raw strings.
pub fn assert_lines(got: &str, expected: &str) {
    let want: Vec<&str> = expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(got_lines, want, "\ngot:\n{got}");
}

pub type Parser = fn(
    &mut dyn std::io::BufRead,
    &Options,
    &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError>;

/// Runs a parser to the end, collecting every batch into one.
pub fn run(parse: Parser, input: &[u8], source: Option<&str>) -> Result<ImportBatch, ImportError> {
    let opts =
        Options { origin: "input.json".into(), source: source.map(str::to_owned), ..Options::default() };
    let mut all = ImportBatch::default();
    parse(&mut &input[..], &opts, &mut |b| {
        all.jobs.extend(b.jobs);
        all.skipped.extend(b.skipped);
        Ok(())
    })?;
    Ok(all)
}

/// Feeds the parser every kind of damage to the seeds (truncations, flipped bytes,
/// spliced pieces, plain noise) from a fixed-seed generator: it must return, not panic.
pub fn no_panics(parse: Parser, seeds: &[&[u8]]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for seed in seeds {
        for cut in (0..seed.len()).step_by((seed.len() / 200).max(1)) {
            let _ = run(parse, &seed[..cut], None);
        }
        for _ in 0..300 {
            let mut bytes = seed.to_vec();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % bytes.len().max(1);
                match next() % 4 {
                    0 if !bytes.is_empty() => bytes[i] = next() as u8,
                    1 if !bytes.is_empty() => {
                        bytes.remove(i);
                    }
                    2 => {
                        const JSONISH: &[u8] = b"{}[]\",:0-9e.";
                        bytes.insert(i.min(bytes.len()), JSONISH[(next() as usize) % JSONISH.len()]);
                    }
                    _ => {
                        let j = (next() as usize) % seed.len().max(1);
                        let piece = &seed[j..(j + 40).min(seed.len())];
                        let at = i.min(bytes.len());
                        bytes.splice(at..at, piece.iter().copied());
                    }
                }
            }
            let _ = run(parse, &bytes, None);
        }
    }
    for len in [0, 1, 2, 10, 100, 1000] {
        let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = run(parse, &noise, None);
    }
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}
/// The Buildbot REST fixture collections, in the order a merged file holds them.
pub const REST: [&str; 5] = ["builders", "workers", "builds", "buildrequests", "steps"];

/// What the REST fixtures hold, as [`summarize`] shows it.
pub const ALL_BUILDS: &str = "
    101 linux-x86_64 success w=linux-worker-1 q=1700000000 s=1700000100 f=1700000700 [git:success compile:success test:success]
    102 win64-debug failure w=win-worker-7 q=1700000150 s=1700000200 f=1700000900 [git:success compile:failure]
    103 linux-x86_64 warnings w=linux-worker-9 q=1700000260 s=1700000300 f=1700000900 [git:success compile:success test:warnings]
    105 win64-debug cancelled w=win-worker-7 q=1700000100 s=1700000950 f=1700001100 [git:cancelled]
    106 linux-x86_64 running w=linux-worker-1 q=1700001190 s=1700001200 f=- [git:success compile:running]
    skip builds[3] (buildid 104): unknown result code 9
    skip builds[6] (buildid 107): builder 77 is unknown
";
