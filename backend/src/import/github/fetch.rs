//! Pulling from the GitHub Actions REST API: a repository's (or a workflow's) runs page by
//! page and, for each run, its jobs; or any jobs listing page by page.
//!
//! Pages come `per_page` at a time and the next one is wherever the `Link: rel="next"`
//! header points (`page=N+1` when a server sends no `Link` header but a full page). A runs
//! listing is incremental by run id (see [`Mark`]); each page of runs, with the jobs of its
//! runs, is one batch, so one transaction.

use futures_util::{StreamExt, TryStreamExt, stream};

use super::{At, Counts, Record, Sources, push, read};
use crate::import::json::Stream;
use crate::import::pull::{
    Auth, Client, Mark, PullOptions, has_links, link_next, path_of, with_default_param, with_param,
};
use crate::import::{ImportBatch, ImportError};

/// Pulls `url`: a runs listing (`/repos/{owner}/{repo}/actions/runs`, or a workflow's
/// `/actions/workflows/{id}/runs`, with any filters in its query) with the jobs of every
/// run, or any other Actions listing (a run's `/jobs`) page by page. Runs at or after
/// `since` (a run id) are taken; the returned mark is for the next pull (runs listings
/// only). `opts.token` goes as `Authorization: Bearer`.
pub async fn fetch(
    url: &str,
    since: Option<i64>,
    opts: &PullOptions,
    sink: &mut impl AsyncFnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<Option<i64>, ImportError> {
    let client = Client::new(opts.token.clone().map_or(Auth::None, Auth::Bearer), opts, url)?;
    let per_page = opts.page_size.clamp(1, 100);
    let runs_listing = path_of(url)?.ends_with("/runs");
    let sources = Sources::new(opts.source.as_deref());
    let mut mark = Mark::new(since);
    let mut next = Some(with_default_param(url, "per_page", &per_page.to_string())?);
    while let Some(page_url) = next.take() {
        let response = client.get(&page_url).await?;
        let mut batch = ImportBatch::default();
        let mut runs = Vec::new();
        let mut s = Stream::new(&response.body[..], &page_url);
        let counts = read(&mut s, &mut |at, record| {
            if let Record::Run(run) = &record {
                let finished = run.status.as_deref() == Some("completed");
                if runs_listing && !mark.take(run.id, finished) {
                    return Ok(());
                }
                runs.push((run.id, run.jobs_url.clone()));
            }
            let (id, job) = sources.convert(record);
            push(&mut batch, || format!("{page_url}: {}", at.label(id)), job);
            Ok(())
        })?;
        // The jobs of this page's runs, a few lists at a time, kept in run order.
        let lists: Vec<ImportBatch> = stream::iter(runs)
            .map(|(id, jobs_url)| {
                let (client, sources, page_url) = (&client, sources, &page_url);
                async move {
                    let jobs_url = match jobs_url {
                        Some(u) => u,
                        None => jobs_url_of(page_url, id)?,
                    };
                    jobs_of(client, &jobs_url, per_page, sources).await
                }
            })
            .buffered(opts.concurrency.max(1))
            .try_collect()
            .await?;
        for jobs in lists {
            batch.jobs.extend(jobs.jobs);
            batch.skipped.extend(jobs.skipped);
        }
        sink(batch).await?;
        if mark.reached() {
            break;
        }
        next = next_page(&response.headers, &page_url, counts)?;
    }
    Ok(if runs_listing { mark.next() } else { None })
}

/// All pages of one jobs listing, converted.
async fn jobs_of(
    client: &Client,
    url: &str,
    per_page: usize,
    sources: Sources<'_>,
) -> Result<ImportBatch, ImportError> {
    let mut batch = ImportBatch::default();
    let mut next = Some(with_default_param(url, "per_page", &per_page.to_string())?);
    while let Some(page_url) = next.take() {
        let response = client.get(&page_url).await?;
        let mut s = Stream::new(&response.body[..], &page_url);
        let counts = read(&mut s, &mut |at: At, record| {
            let (id, job) = sources.convert(record);
            push(&mut batch, || format!("{page_url}: {}", at.label(id)), job);
            Ok(())
        })?;
        next = next_page(&response.headers, &page_url, counts)?;
    }
    Ok(batch)
}

/// Where the `Link: rel="next"` header points; without `Link` headers, `page=N+1` while
/// `total_count` (or a full page, when there is none) says there is more.
fn next_page(
    headers: &reqwest::header::HeaderMap,
    page_url: &str,
    counts: Counts,
) -> Result<Option<String>, ImportError> {
    if let Some(link) = link_next(headers) {
        return Ok(Some(link));
    }
    if has_links(headers) {
        return Ok(None);
    }
    let url = reqwest::Url::parse(page_url).map_err(|e| ImportError::new(page_url, e.to_string()))?;
    let param = |name: &str, default: u64| {
        url.query_pairs().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).unwrap_or(default)
    };
    let (page, per_page) = (param("page", 1), param("per_page", 30));
    let more = match counts.total {
        Some(total) => page.saturating_mul(per_page) < total,
        None => counts.records as u64 >= per_page,
    };
    Ok(if more { Some(with_param(page_url, "page", &(page + 1).to_string())?) } else { None })
}

/// `…/repos/o/r/actions/runs/{id}/jobs` next to a runs listing, for a run without
/// `jobs_url`.
fn jobs_url_of(listing: &str, run_id: i64) -> Result<String, ImportError> {
    let mut url = reqwest::Url::parse(listing).map_err(|e| ImportError::new(listing, e.to_string()))?;
    let path = url.path().to_owned();
    let Some(at) = path.find("/actions/") else {
        return Err(ImportError::new(listing, "not a GitHub Actions URL (no /actions/ in the path)"));
    };
    url.set_path(&format!("{}/actions/runs/{run_id}/jobs", &path[..at]));
    url.set_query(None);
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_next_to_runs() {
        assert_eq!(
            jobs_url_of("https://api.github.com/repos/o/r/actions/workflows/7/runs?branch=main&page=2", 42)
                .unwrap(),
            "https://api.github.com/repos/o/r/actions/runs/42/jobs"
        );
        assert!(jobs_url_of("https://api.github.com/repos/o/r", 1).is_err());
    }
}
