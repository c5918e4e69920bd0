//! Pulling from the GitLab REST API (v4): a project's pipelines page by page with the jobs
//! of each, or a jobs listing page by page.
//!
//! Pages come `per_page` at a time; the next one is where the `Link: rel="next"` header
//! points (keyset pagination) or the `X-Next-Page` header's page number (offset
//! pagination; empty on the last page). The project listings (`/pipelines`, `/jobs`) come
//! newest first, so they are incremental by id (see [`Mark`]); each page, with the jobs of
//! its pipelines, is one batch, so one transaction.

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;

use super::{At, read, to_job};
use crate::import::json::{Stream, decode};
use crate::import::pull::{
    Auth, Client, Mark, PullOptions, Response, header, link_next, path_of, with_default_param, with_param,
};
use crate::import::{ImportBatch, ImportError, Skipped};

/// Statuses after which a pipeline or job no longer changes (a `manual` pipeline waits for
/// someone, maybe for ever, so it counts as done; starting it makes it `running`, but only
/// a pull that still reaches it sees that).
const SETTLED: [&str; 5] = ["success", "failed", "canceled", "skipped", "manual"];

/// Pulls `url`: a project's pipelines (`/projects/:id/pipelines`, filters in the query
/// allowed) with the jobs of each (retried ones included: each ran), a project's jobs
/// (`/projects/:id/jobs`), or a pipeline's jobs. The project listings take records at or
/// after `since` (an id) and return the mark for the next pull. `opts.token` goes as
/// `PRIVATE-TOKEN`.
pub async fn fetch(
    url: &str,
    since: Option<i64>,
    opts: &PullOptions,
    sink: &mut impl AsyncFnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<Option<i64>, ImportError> {
    let client = Client::new(opts.token.clone().map_or(Auth::None, Auth::PrivateToken), opts, url)?;
    let per_page = opts.page_size.clamp(1, 100).to_string();
    let path = path_of(url)?;
    let pipelines = path.ends_with("/pipelines");
    // `/projects/:id/jobs` is newest first; a pipeline's jobs are few and fetched whole.
    let project_jobs = path.ends_with("/jobs") && !path.contains("/pipelines/");
    let incremental = pipelines || project_jobs;
    let source = opts.source.as_deref().unwrap_or("gitlab");
    let mut mark = Mark::new(since);
    let mut next = Some(with_default_param(url, "per_page", &per_page)?);
    while let Some(page_url) = next.take() {
        let response = client.get(&page_url).await?;
        let mut batch = ImportBatch::default();
        if pipelines {
            let mut wanted = Vec::new();
            let mut s = Stream::new(&response.body[..], &page_url);
            s.array(|s, i| {
                let raw = s.raw()?;
                let p: Pipeline<'_> = decode(&raw, &page_url, &format_args!("[{i}]"))?;
                if mark.take(p.id, SETTLED.contains(&p.status.as_ref())) {
                    wanted.push(p.id);
                }
                Ok(())
            })?;
            s.end()?;
            let base = url_without_query(url)?;
            let lists: Vec<ImportBatch> = stream::iter(wanted)
                .map(|id| {
                    let client = &client;
                    let jobs_url = format!("{base}/{id}/jobs?per_page={per_page}&include_retried=true");
                    async move { jobs_of(client, &jobs_url, source).await }
                })
                .buffered(opts.concurrency.max(1))
                .try_collect()
                .await?;
            for jobs in lists {
                batch.jobs.extend(jobs.jobs);
                batch.skipped.extend(jobs.skipped);
            }
        } else {
            read_jobs(&response, &page_url, source, incremental.then_some(&mut mark), &mut batch)?;
        }
        sink(batch).await?;
        if mark.reached() {
            break;
        }
        next = next_page(&response, &page_url)?;
    }
    Ok(if incremental { mark.next() } else { None })
}

/// A pipeline as the list gives it.
#[derive(Deserialize)]
struct Pipeline<'a> {
    id: i64,
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
}

/// All pages of one jobs listing, converted.
async fn jobs_of(client: &Client, url: &str, source: &str) -> Result<ImportBatch, ImportError> {
    let mut batch = ImportBatch::default();
    let mut next = Some(url.to_owned());
    while let Some(page_url) = next.take() {
        let response = client.get(&page_url).await?;
        read_jobs(&response, &page_url, source, None, &mut batch)?;
        next = next_page(&response, &page_url)?;
    }
    Ok(batch)
}

/// Converts one page of jobs into `batch`; with a mark, only the jobs it takes.
fn read_jobs(
    response: &Response,
    page_url: &str,
    source: &str,
    mut mark: Option<&mut Mark>,
    batch: &mut ImportBatch,
) -> Result<(), ImportError> {
    let mut s = Stream::new(&response.body[..], page_url);
    read(&mut s, &mut |at: At, job| {
        if let Some(mark) = mark.as_deref_mut()
            && !mark.take(job.id, SETTLED.contains(&job.status.as_ref()))
        {
            return Ok(());
        }
        let id = job.id;
        match to_job(source, job) {
            Ok(job) => batch.jobs.push(job),
            Err(reason) => {
                batch.skipped.push(Skipped { at: format!("{page_url}: {}", at.label(id)), reason })
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// The next page: the `Link: rel="next"` target, else the `X-Next-Page` number.
fn next_page(response: &Response, page_url: &str) -> Result<Option<String>, ImportError> {
    if let Some(link) = link_next(&response.headers) {
        return Ok(Some(link));
    }
    match header(&response.headers, "x-next-page") {
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(with_param(page_url, "page", n)?)),
        Some(n) => Err(ImportError::new(page_url, format!("X-Next-Page `{n}` is not a page number"))),
        None => Ok(None),
    }
}

/// `url` without query or fragment and without a trailing `/`.
fn url_without_query(url: &str) -> Result<String, ImportError> {
    let mut parsed = reqwest::Url::parse(url).map_err(|e| ImportError::new(url, e.to_string()))?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    Ok(String::from(parsed).trim_end_matches('/').to_owned())
}
