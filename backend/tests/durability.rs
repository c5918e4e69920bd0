//! Kill the real server with SIGKILL while it ingests; every acknowledged batch must be there
//! after a restart, and the batch in flight must be there whole or not at all.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Job;
use common::api::{Health, IngestReport};
use serde_json::json;

const BATCH: usize = 2_000;

fn start(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_buildscope"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .args(["--static-dir", "/nonexistent", "--log", "warn"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().trim_end_matches('/').to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (child, url)
}

fn batch(n: usize) -> serde_json::Value {
    let jobs: Vec<_> = (0..BATCH)
        .map(|i| {
            let t = 1_700_000_000 + (n * BATCH + i) as i64;
            json!({"source": "kill", "id": n * BATCH + i, "builder": format!("b{}", i % 7), "result": "success",
                   "started_at": t, "finished_at": t + 30,
                   "steps": [{"name": "compile", "started_at": t, "finished_at": t + 30}]})
        })
        .collect();
    json!(jobs)
}

#[tokio::test]
async fn acknowledged_jobs_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.sqlite");
    let (mut child, url) = start(&db);
    let client = reqwest::Client::new();

    // Acknowledge a few batches, then keep one in flight while the process is killed.
    let mut acknowledged = 0;
    for n in 0..5 {
        let r = client.post(format!("{url}/api/v1/jobs")).json(&batch(n)).send().await.unwrap();
        assert!(r.status().is_success());
        assert_eq!(r.json::<IngestReport>().await.unwrap().inserted, BATCH as u64);
        acknowledged += BATCH;
    }
    let in_flight = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.post(format!("{url}/api/v1/jobs")).json(&batch(5)).send().await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let in_flight_acknowledged = matches!(in_flight.await.unwrap(), Ok(r) if r.status().is_success());

    let (mut child, url) = start(&db);
    let health: Health =
        client.get(format!("{url}/api/v1/health")).send().await.unwrap().json().await.unwrap();
    let stored = health.jobs as usize;
    let rows: Vec<Job> = client
        .get(format!("{url}/api/v1/jobs?format=json&from=0&to=now"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(rows.len(), stored);
    assert!(
        stored == acknowledged || stored == acknowledged + BATCH,
        "the in-flight batch is all or nothing: {stored} stored, {acknowledged} acknowledged"
    );
    if in_flight_acknowledged {
        assert_eq!(stored, acknowledged + BATCH);
    }
    let mut ids: Vec<usize> = rows.iter().map(|j| j.id.parse().unwrap()).collect();
    ids.sort_unstable();
    assert!(ids.iter().copied().eq(0..stored), "every acknowledged id is there exactly once");
}
