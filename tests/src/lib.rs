//! Shared harness for the end-to-end tests: the real release server binary on a free port
//! with a temporary SQLite store, the real built frontend (`dist/`), and headless Chromium
//! through chromedriver.
//!
//! `cargo xtask test` builds what these need first. Run alone, a missing piece is an error
//! that says how to build it, never a silent skip.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `data-testid` hooks the tests read, in one place.
pub mod testid {
    pub const JOB_COUNT: &str = "job-count";
    pub const CHART: &str = "chart";
    pub const STATUS: &str = "status";
    pub const RECOMPUTE_MS: &str = "recompute-ms";
    // The explorer.
    pub const REDRAW_MS: &str = "redraw-ms";
    pub const PIVOT_TABLE: &str = "pivot-table";
    pub const JOB_LIST: &str = "job-list";
    pub const EXPORT_CSV: &str = "export-csv";
    pub const COPY_LINK: &str = "copy-link";
    pub const COPIED_LINK: &str = "copied-link";
    pub const VIEW_ERROR: &str = "view-error";
    pub const MEASURE: &str = "measure";
    pub const GROUP_1: &str = "group-1";
    pub const GROUP_2: &str = "group-2";
    // The tests page.
    pub const TESTS_TABLE: &str = "tests-table";
    pub const TEST_ROW: &str = "test-row";
    pub const TEST_HISTORY: &str = "test-history";
    pub const HISTORY_SUMMARY: &str = "history-summary";
    pub const INTERMITTENT_COUNT: &str = "intermittent-count";
    pub const TESTS_COUNT: &str = "tests-count";
    // The metrics page.
    pub const METRIC_SELECT: &str = "metric-select";
    pub const METRICS_TABLE: &str = "metrics-table";
    pub const BUCKET_ROW: &str = "bucket-row";
    pub const SAMPLE_COUNT: &str = "sample-count";

    /// A CSS selector for a test id.
    pub fn css(id: &str) -> String {
        format!("[data-testid=\"{id}\"]")
    }
}

/// A process killed when dropped.
pub struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real server on a free port over a fresh store.
pub struct Server {
    pub url: String,
    _process: Process,
    _dir: tempfile::TempDir,
    binary: PathBuf,
    store: String,
}

impl Server {
    pub fn start() -> Result<Server> {
        let root = root();
        // The debug build `cargo test` already made; BUILDSCOPE_BIN picks another.
        let binary = std::env::var_os("BUILDSCOPE_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/debug/buildscope"));
        // `dist/` as `cargo xtask test` builds it; BUILDSCOPE_DIST picks another build.
        let dist =
            std::env::var_os("BUILDSCOPE_DIST").map(PathBuf::from).unwrap_or_else(|| root.join("dist"));
        if !binary.exists() || !dist.join("index.html").exists() {
            bail!(
                "the server binary ({}) and the built frontend (dist/) are needed: run `cargo xtask test`",
                binary.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let store = format!("sqlite://{}", dir.path().join("store.sqlite").display());
        let mut child = Command::new(&binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--log", "warn", "--static-dir"])
            .arg(&dist)
            .arg("--database-url")
            .arg(&store)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the server")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let url = line.trim().rsplit(' ').next().unwrap_or("").trim_end_matches('/').to_owned();
        if !url.starts_with("http://") {
            bail!("server did not say where it listens: {line:?}");
        }
        Ok(Server { url, _process: Process(child), _dir: dir, binary, store })
    }

    /// Loads the demo farm's jobs (`buildscope demo --jobs-only`) into this server's store,
    /// ending now.
    pub fn demo(&self, jobs: u64, days: u32) -> Result<()> {
        let status = Command::new(&self.binary)
            .args([
                "demo",
                "--log",
                "warn",
                "--jobs-only",
                "--jobs",
                &jobs.to_string(),
                "--days",
                &days.to_string(),
            ])
            .args(["--database-url", &self.store])
            .stdout(Stdio::null())
            .status()
            .context("running `buildscope demo`")?;
        if !status.success() {
            bail!("`buildscope demo` failed: {status}");
        }
        Ok(())
    }

    /// Posts a body to an API path (`/api/v1/import/junit?job=ci/1` ...), failing on an error
    /// status; returns the JSON answer.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Result<serde_json::Value> {
        let r = reqwest::Client::new().post(format!("{}{path}", self.url)).body(body).send().await?;
        if !r.status().is_success() {
            bail!("POST {path} failed: {} {}", r.status(), r.text().await?);
        }
        Ok(r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Posts jobs (a JSON array) to the ingest API.
    pub async fn ingest(&self, jobs: &serde_json::Value) -> Result<()> {
        let r = reqwest::Client::new().post(format!("{}/api/v1/jobs", self.url)).json(jobs).send().await?;
        if !r.status().is_success() {
            bail!("ingest failed: {} {}", r.status(), r.text().await?);
        }
        Ok(())
    }
}

/// Headless Chromium driven over WebDriver.
pub struct Browser {
    pub client: Client,
    _driver: Process,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Result<Browser> {
        // reqwest and fantoccini both bring rustls with different crypto back-ends; name
        // one. (WebDriver itself is plain HTTP on loopback.)
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port()?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (apt-get install chromium-driver, or run `cargo xtask test`)")?;
        let driver = Process(driver);
        let profile = tempfile::tempdir()?;
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                // Headless as root; no background traffic on a closed network.
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::rustls()?
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => bail!("chromedriver did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Ok(Browser { client, _driver: driver, _profile: profile })
    }

    /// Waits until the element with this test id has text for which `done` holds, and
    /// returns it.
    pub async fn wait_text(&self, id: &str, done: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(el) = self.client.find(Locator::Css(&testid::css(id))).await {
                last = el.text().await.unwrap_or_default();
                if done(&last) {
                    return Ok(last);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("timed out waiting on [data-testid={id}]; last text {last:?}")
    }

    /// Saves a screenshot under `target/screenshots/NAME.png` for a person to look at.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = root().join("target/screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    /// Sets the browser window's size in CSS pixels (the harness starts at 1280 × 900).
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.client.set_window_size(width, height).await?;
        Ok(())
    }

    /// Ends the browser session (and with it the Chromium process).
    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }

    /// Runs asynchronous JavaScript (it calls `arguments[0]` with its result) and returns
    /// the value.
    pub async fn js_async(&self, script: &str) -> Result<serde_json::Value> {
        Ok(self.client.execute_async(script, vec![]).await?)
    }

    /// The page's URL after the host: path and query string.
    pub async fn path(&self) -> Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Runs JavaScript in the page and returns its value.
    pub async fn js(&self, script: &str) -> Result<serde_json::Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
