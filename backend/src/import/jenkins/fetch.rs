//! Pulling a Jenkins job's builds through the remote-access API, newest first, a range at a
//! time: `api/json?tree=allBuilds[...]{M,N}` (`builds` stops at the newest 100).
//!
//! Incremental by build number (see [`Mark`]); each range is one batch, so one transaction.

use std::borrow::Cow;

use super::{At, read, to_job};
use crate::import::json::{Stream, decode_slice};
use crate::import::pull::{Auth, Client, Mark, PullOptions};
use crate::import::{ImportBatch, ImportError, Skipped};

/// The build fields a pull asks for: what [`super::parse`] reads.
const FIELDS: &str = "number,result,timestamp,duration,building,builtOn,url,fullDisplayName,\
    actions[parameters[name,value],causes[shortDescription],lastBuiltRevision[SHA1,branch[name]],queuingDurationMillis]";

/// The JSON API URL of builds `from..to` (newest first, `to` exclusive) of the job at
/// `job_url` (`https://ci/job/team/job/app/`, with or without `api/json` and a query).
pub fn api_url(job_url: &str, from: usize, to: usize) -> Result<String, ImportError> {
    let mut url = job_base(job_url)?;
    url.set_query(Some(&format!("tree=allBuilds[{FIELDS}]{{{from},{to}}}")));
    Ok(url.into())
}

/// `…/job/x/api/json`, without a query.
fn job_base(job_url: &str) -> Result<reqwest::Url, ImportError> {
    let mut url = reqwest::Url::parse(job_url).map_err(|e| ImportError::new(job_url, e.to_string()))?;
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/api/json").unwrap_or(path).trim_end_matches('/').to_owned();
    url.set_path(&format!("{path}/api/json"));
    Ok(url)
}

/// Pulls the builds of the job at `job_url` numbered at or after `since`, `page_size` a
/// request, and returns the mark for the next pull. `opts.token` is `USER:API_TOKEN`, sent
/// as basic auth.
pub async fn fetch(
    job_url: &str,
    since: Option<i64>,
    opts: &PullOptions,
    sink: &mut impl AsyncFnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<Option<i64>, ImportError> {
    let client = Client::new(Auth::basic(opts.token.as_ref())?, opts, job_url)?;
    let source = opts.source.as_deref().unwrap_or("jenkins");
    // The job's name first: a page's builds may come before its name.
    let mut name_url = job_base(job_url)?;
    name_url.set_query(Some("tree=fullName,name"));
    let name_url = String::from(name_url);
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Names {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        full_name: Option<String>,
    }
    let names: Names = decode_slice(&client.get(&name_url).await?.body, &name_url)?;
    let job_name = names.full_name.or(names.name);

    let size = opts.page_size.max(1);
    let mut mark = Mark::new(since);
    let mut from = 0;
    loop {
        let url = api_url(job_url, from, from + size)?;
        let body = client.get(&url).await?.body;
        let mut batch = ImportBatch::default();
        let mut count = 0;
        let mut s = Stream::new(&body[..], &url);
        read(&mut s, &mut |at: At<'_>, build, _| {
            count += 1;
            if !mark.take(build.number, !build.building.unwrap_or(false)) {
                return Ok(());
            }
            let number = build.number;
            let name = job_name.as_deref().map(Cow::Borrowed).or_else(|| build.job_name());
            let job = match name {
                Some(name) => to_job(source, &name, build),
                None => Err(super::NO_NAME.to_owned()),
            };
            match job {
                Ok(job) => batch.jobs.push(job),
                Err(reason) => batch.skipped.push(Skipped {
                    at: format!("{job_url}: {}[{}] (#{number})", at.list.unwrap_or(""), from + at.index),
                    reason,
                }),
            }
            Ok(())
        })?;
        sink(batch).await?;
        if count < size || mark.reached() {
            return Ok(mark.next());
        }
        from += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls() {
        for job in [
            "https://ci.example.org/job/team/job/app/",
            "https://ci.example.org/job/team/job/app",
            "https://ci.example.org/job/team/job/app/api/json?tree=builds[number]",
        ] {
            let url = api_url(job, 100, 200).unwrap();
            assert!(
                url.starts_with("https://ci.example.org/job/team/job/app/api/json?tree=allBuilds[number,"),
                "{url}"
            );
            assert!(url.ends_with("queuingDurationMillis]]{100,200}"), "{url}");
        }
    }
}
