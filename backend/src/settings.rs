//! Command line and environment: one typed struct per command.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::import::pull::Token;

/// Buildscope: explore what your CI build farm is doing.
#[derive(Parser, Debug)]
#[command(name = "buildscope", version, about)]
pub struct Cli {
    /// Where jobs are stored: `sqlite://PATH` (created if missing).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://buildscope.sqlite", global = true)]
    pub database_url: DatabaseUrl,
    /// Log filter in RUST_LOG syntax, e.g. `info` or `buildscope=debug,tower_http=debug`.
    #[arg(long, env = "BUILDSCOPE_LOG", default_value = "info", global = true)]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the API and the browser app.
    Serve(ServeArgs),
    /// Load the deterministic demo farm into the store.
    Demo(DemoArgs),
    /// Store jobs from a JSON file (the `POST /api/v1/jobs` format), or `-` for stdin.
    Ingest {
        /// Path of a JSON array of jobs, or `-`.
        file: PathBuf,
    },
    /// Import what a CI system emits: buildbot, buildapi, jenkins, github, gitlab, junit,
    /// buildstats, influx or csv.
    Import(ImportArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    /// Input format.
    pub kind: String,
    /// A file, a directory (buildstats), `-` for stdin, or an http(s) URL. URLs of a
    /// Buildbot master (its base URL), a Jenkins job, GitHub Actions runs or jobs
    /// (`…/actions/runs`), GitLab pipelines or jobs (`…/projects/ID/pipelines`) are pulled
    /// page by page, each run taking only what is new since the last; other URLs are
    /// downloaded and parsed.
    pub input: String,
    /// Source name to file the records under (default: per format, e.g. `jenkins`).
    #[arg(long)]
    pub source: Option<String>,
    /// The job a JUnit report belongs to, as SOURCE/ID.
    #[arg(long)]
    pub job: Option<String>,
    /// Unit of line-protocol timestamps: ns, us, ms or s.
    #[arg(long, default_value = "ns")]
    pub precision: String,
    /// Credentials for a URL: GitHub and Buildbot take a bearer token, GitLab a
    /// PRIVATE-TOKEN, Jenkins USER:API_TOKEN (basic auth). Hidden in logs.
    #[arg(long, env = "BUILDSCOPE_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BUILDSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory holding the built frontend (`trunk build` output).
    #[arg(long, env = "BUILDSCOPE_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,
    /// Load the demo farm first if the store holds no jobs.
    #[arg(long)]
    pub demo_if_empty: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// How many jobs to generate.
    #[arg(long, default_value_t = 200_000)]
    pub jobs: usize,
    /// Random seed: the same seed and end time give the same farm.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of history, ending at the current hour.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Do nothing if the store already holds jobs.
    #[arg(long)]
    pub if_empty: bool,
    /// Jobs only: no test results or metric samples (quicker for large farms).
    #[arg(long)]
    pub jobs_only: bool,
}

/// A database URL. Its `Debug` hides any password so settings can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("sqlite:") || s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl(s.to_owned()))
        } else {
            Err(format!("`{s}` is not a database URL: use sqlite://PATH"))
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // postgres://user:secret@host/db -> postgres://user:***@host/db
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let creds = &self.0[scheme + 3..at];
                let user = creds.split(':').next().unwrap_or("");
                write!(f, "{}{}:***{}", &self.0[..scheme + 3], user, &self.0[at..])
            }
            _ => f.write_str(&self.0),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_debug_hides_the_password() {
        let url: DatabaseUrl = "postgres://bob:hunter2@db:5432/ci".parse().unwrap();
        assert_eq!(format!("{url:?}"), "postgres://bob:***@db:5432/ci");
        let url: DatabaseUrl = "sqlite://data/x.sqlite".parse().unwrap();
        assert_eq!(format!("{url:?}"), "sqlite://data/x.sqlite");
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn import_token_debug_hides_the_secret() {
        let cli =
            Cli::parse_from(["buildscope", "import", "github", "https://x/runs", "--token", "ghp_s3cret"]);
        let shown = format!("{cli:?}");
        assert!(!shown.contains("s3cret") && shown.contains("Token(***)"), "{shown}");
    }
}
