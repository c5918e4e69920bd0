//! The `buildscope` command: serve, load demo data, ingest files.

use std::io::Read;
use std::sync::Arc;

use anyhow::Context;
use buildscope::AppState;
use buildscope::import::pull::PullOptions;
use buildscope::import::run::{self as importer, Kind};
use buildscope::settings::{Cli, Command, DemoArgs, ImportArgs, ServeArgs};
use buildscope::store::{self, Records, Store};
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    tracing::debug!(?cli, "settings");
    let store = store::open(&cli.database_url)
        .await
        .with_context(|| format!("opening the store at {}", cli.database_url))?;
    match cli.command {
        Command::Serve(args) => serve(store, args).await,
        Command::Demo(args) => demo(store.as_ref(), &args).await,
        Command::Import(args) => import(store, args).await,
        Command::Ingest { file } => {
            let mut body = Vec::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut body).context("reading stdin")?;
            } else {
                body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            }
            let jobs =
                buildscope::ingest::parse_jobs(&body).with_context(|| format!("{}", file.display()))?;
            let report = store.write(Records { jobs: &jobs, ..Default::default() }).await?;
            println!(
                "{} jobs: {} inserted, {} updated",
                jobs.len(),
                report.jobs.inserted,
                report.jobs.updated
            );
            Ok(())
        }
    }
}

async fn serve(store: Arc<dyn Store>, args: ServeArgs) -> anyhow::Result<()> {
    if args.demo_if_empty {
        demo(
            store.as_ref(),
            &DemoArgs { jobs: 200_000, seed: 42, days: 30, if_empty: true, jobs_only: false },
        )
        .await?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, static_dir = %args.static_dir.display(), "serving");
    println!("Buildscope is running at http://{addr}/");
    let state = AppState { store, static_dir: args.static_dir };
    buildscope::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Loads the demo farm, ending at the current hour, in batches of 10,000 jobs.
async fn demo(store: &dyn Store, args: &DemoArgs) -> anyhow::Result<()> {
    if args.if_empty && store.job_count().await? > 0 {
        return Ok(());
    }
    let now = jiff::Timestamp::now().as_millisecond();
    let config = common::demo::DemoConfig {
        seed: args.seed,
        jobs: args.jobs,
        days: args.days,
        end_ms: now - now.rem_euclid(3_600_000),
    };
    let started = std::time::Instant::now();
    let mut farm = common::demo::DemoFarm::new(config);
    // Test results for the last week and metric samples, derived from each batch of jobs.
    let extras_config = common::demo_extras::ExtrasConfig::last_week(config.end_ms);
    let (mut total, mut tests, mut samples) = (0, 0, 0);
    loop {
        let batch: Vec<common::Job> = farm.by_ref().take(10_000).collect();
        if batch.is_empty() {
            break;
        }
        total += batch.len();
        let extras = if args.jobs_only {
            common::demo_extras::Extras::default()
        } else {
            common::demo_extras::extras(&batch, &extras_config)
        };
        (tests, samples) = (tests + extras.tests.len(), samples + extras.samples.len());
        store.write(Records { jobs: &batch, tests: &extras.tests, samples: &extras.samples }).await?;
        eprint!("\rdemo: {total}/{} jobs", args.jobs);
    }
    eprintln!(
        "\rdemo: {total} jobs, {tests} test results, {samples} metric samples loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `buildscope import KIND INPUT`: prints what was read and stored; fails if the input broke
/// off (what came before it is stored).
async fn import(store: Arc<dyn Store>, args: ImportArgs) -> anyhow::Result<()> {
    let kind: Kind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let opts =
        importer::options(&args.input, args.source.clone(), args.job.as_deref(), Some(&args.precision))
            .map_err(anyhow::Error::msg)?;
    let is_url = args.input.starts_with("http://") || args.input.starts_with("https://");
    let report = if is_url && kind.pulls() {
        let pull =
            PullOptions { source: args.source.clone(), token: args.token.clone(), ..Default::default() };
        importer::pull(store, kind, &args.input, &pull).await
    } else if is_url {
        let mut request = reqwest::Client::new().get(&args.input);
        if let Some(token) = &args.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await?.error_for_status()?;
        let body = response.bytes().await?;
        importer::import(store, kind, std::io::Cursor::new(body), opts).await
    } else if args.input == "-" {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body).context("reading stdin")?;
        importer::import(store, kind, std::io::Cursor::new(body), opts).await
    } else {
        let path = std::path::PathBuf::from(&args.input);
        if path.is_dir() {
            anyhow::ensure!(
                kind == Kind::Buildstats,
                "{} is a directory; only buildstats reads directories",
                path.display()
            );
            importer::import_with(store, opts, move |opts, sink| {
                buildscope::import::buildstats::parse_dir(&path, opts, sink)
            })
            .await
        } else {
            let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            importer::import(store, kind, std::io::BufReader::with_capacity(1 << 20, file), opts).await
        }
    };
    println!("{}", report.summary());
    if report.error.is_some() {
        std::process::exit(1);
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
