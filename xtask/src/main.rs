//! The README's commands: `cargo xtask run` and `cargo xtask test` (plus `bench`).
//!
//! Each installs what is missing (and skips what is there), builds, and runs. Versions
//! that must match are read from the repository, not repeated here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// trunk 0.22 needs a newer rustc than the project's 1.95.
const TRUNK_VERSION: &str = "0.21.14";
/// Debian packages: the browser and driver for the browser tests. (No wasm-opt: Debian's
/// binaryen 108 breaks wasm-bindgen 0.2.130's externref table, so the build skips it.)
const TEST_PACKAGES: &[&str] = &["chromium", "chromium-driver"];

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    std::env::set_current_dir(&root)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup(false),
        Some("build") => {
            setup(false)?;
            build_frontend()?;
            cargo(&["build", "--release", "-p", "buildscope"])
        }
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\
                 \n  run     set up, build, load the demo farm if the store is empty, serve on http://127.0.0.1:8080\
                 \n  test    set up (with Chromium), build, run every test tier\
                 \n  bench   run the benchmarks whose numbers the README shows\
                 \n  setup   only install what is missing\
                 \n  build   set up and build the frontend and the server in release mode"
            );
            std::process::exit(2);
        }
    }
}

fn run(extra: &[String]) -> Result<()> {
    setup(false)?;
    build_frontend()?;
    cargo(&["build", "--release", "-p", "buildscope"])?;
    std::fs::create_dir_all("data")?;
    let mut cmd = Command::new("target/release/buildscope");
    if std::env::var_os("DATABASE_URL").is_none() {
        cmd.env("DATABASE_URL", "sqlite://data/buildscope.sqlite");
    }
    cmd.args(["serve", "--demo-if-empty"]).args(extra);
    status(&mut cmd)
}

fn test(extra: &[String]) -> Result<()> {
    setup(true)?;
    build_frontend()?;
    // The browser tests drive the server binary (debug, shared with the test build) and
    // the release frontend.
    cargo(&["build", "-p", "buildscope"])?;
    let mut args = vec!["test", "--workspace", "--exclude", "buildscope-frontend", "--exclude", "xtask"];
    args.extend(extra.iter().map(String::as_str));
    let native = cargo_test(&args, &[]);
    // The engine's property tests again, compiled to wasm32 and run in headless Chromium:
    // the browser must compute what the server and the tests compute.
    let wasm = cargo_test(
        &["test", "-p", "buildscope-common", "--target", "wasm32-unknown-unknown", "--lib", "engine::tests"],
        &[
            ("CHROMEDRIVER", "/usr/bin/chromedriver"),
            ("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner"),
        ],
    );
    let (native, wasm) = (native?, wasm?);
    println!(
        "\ntests: {} passed, {} failed, {} skipped",
        native.passed + wasm.passed,
        native.failed + wasm.failed,
        native.ignored + wasm.ignored
    );
    if !(native.ok && wasm.ok) {
        bail!("some tests failed");
    }
    Ok(())
}

/// What one `cargo test` run reported.
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    ok: bool,
}

/// Runs `cargo test`, passing its output through, and totals every test binary's
/// `test result:` line, so the caller can end with one line for the whole run.
fn cargo_test(args: &[&str], env: &[(&str, &str)]) -> Result<Totals> {
    use std::io::{BufRead, BufReader};
    eprintln!("+ cargo {}", args.join(" "));
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let mut totals = Totals { passed: 0, failed: 0, ignored: 0, ok: false };
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |what: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim().strip_suffix(what)?.trim().rsplit(' ').next()?.parse::<u64>().ok()
                    })
                    .unwrap_or(0)
            };
            totals.passed += count("passed");
            totals.failed += count("failed");
            totals.ignored += count("ignored");
        }
    }
    totals.ok = child.wait()?.success();
    Ok(totals)
}

/// Every benchmark behind the README's numbers: the server (ingest, data API), the
/// importers, the engine natively, the engine against DuckDB-WASM in headless Chromium,
/// and the explorer's input-to-screen time at 1M jobs.
/// Extra arguments go to the server benchmark (e.g. the job count).
fn bench(extra: &[String]) -> Result<()> {
    setup(true)?;
    let mut args = vec!["bench", "-p", "buildscope", "--bench", "api", "--"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)?;
    cargo(&[
        "bench",
        "-p",
        "buildscope",
        "--bench",
        "importers",
        "--",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "3",
    ])?;
    cargo(&[
        "bench",
        "-p",
        "buildscope-common",
        "--bench",
        "engine",
        "--",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "3",
    ])?;
    // The browser benchmark's wasm is its own workspace; build it into ours.
    let wasm_target = std::env::current_dir()?.join("target/engine-wasm-bench");
    status(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
            .current_dir("common/benches/wasm")
            .env("CARGO_TARGET_DIR", &wasm_target),
    )?;
    status(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "run",
                "--release",
                "-p",
                "buildscope-tests",
                "--bin",
                "engine-bench",
                "--",
                "1000000",
                "11",
            ])
            .env(
                "ENGINE_WASM",
                wasm_target.join("wasm32-unknown-unknown/release/buildscope_engine_wasm_bench.wasm"),
            ),
    )?;
    // The explorer at 1M jobs: input to result on screen, per change, in Chromium, against
    // the release server and the release frontend.
    build_frontend()?;
    cargo(&["build", "--release", "-p", "buildscope"])?;
    status(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "test",
                "--release",
                "-p",
                "buildscope-tests",
                "--test",
                "explorer",
                "changes_redraw_quickly_at_scale",
            ])
            .args(["--", "--nocapture"])
            .env("BUILDSCOPE_BIN", std::env::current_dir()?.join("target/release/buildscope"))
            .env("BUILDSCOPE_SCALE_JOBS", "1000000")
            .env("BUILDSCOPE_SCALE_BUDGET_MS", "100"),
    )
}

/// Installs what is missing: the wasm32 target, trunk, the wasm-bindgen CLI matching
/// Cargo.lock, npm packages, and (for tests) Chromium with its driver.
fn setup(for_tests: bool) -> Result<()> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        status(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    if !output("trunk", &["--version"]).unwrap_or_default().contains(TRUNK_VERSION) {
        cargo(&["install", "trunk", "--version", TRUNK_VERSION, "--locked"])?;
    }
    let bindgen = locked_version("wasm-bindgen")?;
    if !output("wasm-bindgen", &["--version"]).unwrap_or_default().contains(&bindgen) {
        // Not --locked: the CLI's lock file names a crate version the registry lacks.
        cargo(&["install", "wasm-bindgen-cli", "--version", &bindgen])?;
    }
    let mut packages: Vec<&str> = Vec::new();
    if for_tests && (which("chromium").is_none() || which("chromedriver").is_none()) {
        packages.extend(TEST_PACKAGES);
    }
    if !packages.is_empty() {
        apt_install(&packages)?;
    }
    if npm_stale() {
        status(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]))?;
    }
    Ok(())
}

/// Whether `node_modules` is missing or older than `package-lock.json`.
fn npm_stale() -> bool {
    let modified = |p: &str| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified("node_modules/.package-lock.json"), modified("package-lock.json")) {
        (Some(installed), Some(wanted)) => installed < wanted,
        _ => true,
    }
}

fn build_frontend() -> Result<()> {
    status(Command::new("trunk").args(["build", "--release", "--offline"]))
}

/// The version of `package` that Cargo.lock pins.
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string("Cargo.lock").context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"")
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_owned());
        }
    }
    bail!("{package} is not in Cargo.lock")
}

fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("installing Debian packages: {}", packages.join(" "));
    // As root (CI, containers) apt-get runs directly; otherwise through sudo.
    let root = output("id", &["-u"]).unwrap_or_default().trim() == "0";
    let apt = |args: &[&str]| {
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.arg("apt-get");
        }
        status(cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(packages);
    apt(&args)
}

fn cargo(args: &[&str]) -> Result<()> {
    status(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(args))
}

fn status(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let st = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed with {st}");
    }
    Ok(())
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
