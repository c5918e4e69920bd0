//! The `buildscope` command: serve, load demo data, ingest files.

use std::io::Read;
use std::sync::Arc;

use anyhow::Context;
use buildscope::settings::{Cli, Command, DemoArgs, ServeArgs};
use buildscope::store::{self, Records, Store};
use buildscope::AppState;
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
        Command::Ingest { file } => {
            let mut body = Vec::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut body).context("reading stdin")?;
            } else {
                body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            }
            let jobs = buildscope::ingest::parse_jobs(&body).with_context(|| format!("{}", file.display()))?;
            let report = store.write(Records { jobs: &jobs, ..Default::default() }).await?;
            println!("{} jobs: {} inserted, {} updated", jobs.len(), report.jobs.inserted, report.jobs.updated);
            Ok(())
        }
    }
}

async fn serve(store: Arc<dyn Store>, args: ServeArgs) -> anyhow::Result<()> {
    if args.demo_if_empty {
        demo(store.as_ref(), &DemoArgs { jobs: 200_000, seed: 42, days: 30, if_empty: true }).await?;
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
    let mut total = 0;
    loop {
        let batch: Vec<common::Job> = farm.by_ref().take(10_000).collect();
        if batch.is_empty() {
            break;
        }
        total += batch.len();
        store.write(Records { jobs: &batch, ..Default::default() }).await?;
        eprint!("\rdemo: {total}/{} jobs", args.jobs);
    }
    eprintln!("\rdemo: {total} jobs loaded in {:.1} s", started.elapsed().as_secs_f64());
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
