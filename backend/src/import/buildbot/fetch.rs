//! Pulling from a Buildbot master's REST API, incrementally by `complete_at`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{
    RestBuild, RestBuildRequest, RestBuilder, RestPages, RestStep, RestWorker, jobs_from_pages,
    source_for_url,
};
use crate::import::json::decode_slice;
use crate::import::pull::{Auth, Client, PullOptions, Token};
use crate::import::{ImportBatch, ImportError};

/// Settings for [`fetch`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Overrides the `buildbot:<host>` source.
    pub source: Option<String>,
    /// Sent as `Authorization: Bearer` (a master behind an authenticating proxy).
    pub token: Option<Token>,
    /// `limit` per request.
    pub page_size: usize,
    /// Stop after this many finished builds; call again with the returned mark for more.
    pub max_builds: usize,
    /// Fetch each build's steps (one request per build).
    pub steps: bool,
    pub timeout: Duration,
    /// Refuse any single response larger than this.
    pub max_response_bytes: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            source: None,
            token: None,
            page_size: 200,
            max_builds: 20_000,
            steps: true,
            timeout: Duration::from_secs(60),
            max_response_bytes: 64 << 20,
        }
    }
}

/// Pulls from a Buildbot master's REST API: builders, workers, finished builds (with all
/// properties) completed at or after `since_complete_at`, the currently running builds,
/// their build requests (for queue time) and steps. Returns the jobs and the new high-water
/// mark (the latest `complete_at` seen), to pass back on the next run.
///
/// The filter is `complete_at__ge`, not `__gt`: a build finishing later within the mark's
/// second would otherwise be missed for good; the few boundary builds fetched again
/// re-import idempotently. Running builds come in as `running` every time and are replaced
/// when they finish.
pub async fn fetch(
    base_url: &str,
    since_complete_at: Option<i64>,
    opts: &FetchOptions,
) -> Result<(ImportBatch, Option<i64>), ImportError> {
    let auth = opts.token.clone().map_or(Auth::None, Auth::Bearer);
    let client = Client::new(
        auth,
        &PullOptions {
            timeout: opts.timeout,
            max_response_bytes: opts.max_response_bytes,
            ..Default::default()
        },
        base_url,
    )?;
    let api = Arc::new(Api {
        client,
        root: format!("{}/api/v2", base_url.trim_end_matches('/')),
        opts: opts.clone(),
    });
    let mut pages = RestPages::default();
    api.get_all("builders", usize::MAX, &mut pages).await?;
    api.get_all("workers", usize::MAX, &mut pages).await?;
    let finished = match since_complete_at {
        Some(since) => format!("builds?complete_at__ge={since}&order=complete_at&property=*"),
        None => "builds?complete__eq=true&order=complete_at&property=*".to_owned(),
    };
    api.get_all(&finished, opts.max_builds, &mut pages).await?;
    let high_water = pages
        .builds
        .iter()
        .filter_map(|b| b.complete_at)
        .map(|t| t.as_millis().div_euclid(1000))
        .max()
        .or(since_complete_at);
    api.get_all("builds?complete__eq=false&order=buildid&property=*", usize::MAX, &mut pages).await?;

    let mut request_ids: Vec<i64> = pages.builds.iter().filter_map(|b| b.buildrequestid).collect();
    request_ids.sort_unstable();
    request_ids.dedup();
    for chunk in request_ids.chunks(50) {
        let filter: Vec<String> = chunk.iter().map(|id| format!("buildrequestid__eq={id}")).collect();
        api.get_all(&format!("buildrequests?{}", filter.join("&")), usize::MAX, &mut pages).await?;
    }
    if opts.steps {
        let mut ids = pages.builds.iter().map(|b| b.buildid).collect::<Vec<_>>().into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < STEP_CONCURRENCY {
                let Some(id) = ids.next() else { break };
                let api = Arc::clone(&api);
                running.spawn(async move {
                    let mut steps = RestPages::default();
                    let result = api.get_all(&format!("builds/{id}/steps"), usize::MAX, &mut steps).await;
                    result.map(|()| (id, steps.steps))
                });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (id, mut steps) =
                done.map_err(|e| ImportError::new(base_url, format!("step fetch failed: {e}")))??;
            for step in &mut steps {
                step.buildid.get_or_insert(id);
            }
            pages.steps.extend(steps);
        }
    }
    let source = opts.source.clone().unwrap_or_else(|| source_for_url(base_url));
    Ok((jobs_from_pages(&pages, &source, Some(base_url)), high_water))
}

/// One master's API root and the client to reach it; shared by the concurrent step fetches.
struct Api {
    client: Client,
    root: String,
    opts: FetchOptions,
}

/// Step lists fetched at once (one request per build).
const STEP_CONCURRENCY: usize = 8;

/// A REST envelope: the collections plus `meta.total`. (Not `#[serde(flatten)]`: that
/// would lose the paths in type errors.)
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    builders: Vec<RestBuilder>,
    #[serde(default)]
    workers: Vec<RestWorker>,
    #[serde(default)]
    builds: Vec<RestBuild>,
    #[serde(default)]
    buildrequests: Vec<RestBuildRequest>,
    #[serde(default)]
    steps: Vec<RestStep>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    total: Option<usize>,
}

impl Api {
    /// Pages through `path` with `limit`/`offset` until a short page, `meta.total` or `max`
    /// items, appending everything to `into`.
    async fn get_all(&self, path: &str, max: usize, into: &mut RestPages) -> Result<(), ImportError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let limit = self.opts.page_size.max(1);
        let mut offset = 0;
        while offset < max {
            let url = format!("{}/{path}{sep}limit={limit}&offset={offset}", self.root);
            let page = self.get_envelope(&url).await?;
            let total = page.meta.and_then(|m| m.total);
            let page = RestPages {
                builders: page.builders,
                workers: page.workers,
                builds: page.builds,
                buildrequests: page.buildrequests,
                steps: page.steps,
            };
            let n = page.len();
            into.extend(page);
            offset += n;
            let total_reached = total.is_some_and(|t| offset >= t);
            if n < limit || total_reached {
                break;
            }
        }
        Ok(())
    }

    async fn get_envelope(&self, url: &str) -> Result<Envelope, ImportError> {
        let response = self.client.get(url).await?;
        decode_slice(&response.body, url)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, RawQuery, State};
    use axum::http::HeaderMap;
    use axum::routing::get;
    use serde_json::{Value, json};

    use super::super::test_support::{ALL_BUILDS, REST, assert_lines, fixture, summarize};
    use super::*;

    /// Each collection's name and records.
    type Collections = Vec<(String, Vec<Value>)>;

    /// A Buildbot master's REST API over the fixture collections, with the filters, ordering
    /// and paging `fetch` uses; records every request.
    #[derive(Clone)]
    struct FakeMaster {
        data: Arc<Mutex<Collections>>,
        hits: Arc<Mutex<Vec<String>>>,
        /// The `Authorization` header of the last request.
        auth: Arc<Mutex<Option<String>>>,
    }

    impl FakeMaster {
        async fn start() -> (FakeMaster, String) {
            let data = REST
                .iter()
                .map(|n| {
                    let v: Value =
                        serde_json::from_slice(&fixture(&format!("buildbot/rest/{n}.json"))).unwrap();
                    (n.to_string(), v[n].as_array().unwrap().clone())
                })
                .collect();
            let master =
                FakeMaster { data: Arc::new(Mutex::new(data)), hits: Arc::default(), auth: Arc::default() };
            let app = axum::Router::new()
                .route("/api/v2/{collection}", get(collection))
                .route("/api/v2/builds/{id}/steps", get(build_steps))
                .with_state(master.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (master, url)
        }

        fn set_build(&self, build: Value) {
            let mut data = self.data.lock().unwrap();
            let builds = &mut data.iter_mut().find(|(n, _)| n == "builds").unwrap().1;
            builds.retain(|b| b["buildid"] != build["buildid"]);
            builds.push(build);
        }

        fn take_hits(&self) -> Vec<String> {
            std::mem::take(&mut self.hits.lock().unwrap())
        }

        fn serve(
            &self,
            name: &str,
            query: Option<String>,
            keep: impl Fn(&Value) -> bool,
        ) -> axum::Json<Value> {
            let query = query.unwrap_or_default();
            self.hits.lock().unwrap().push(format!("{name}?{query}"));
            let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
            let data = self.data.lock().unwrap();
            let mut items: Vec<Value> = data.iter().find(|(n, _)| n == name).unwrap().1.clone();
            items
                .retain(|item| keep(item) && params.iter().all(|(k, v)| matches_filter(item, k, v, &params)));
            if let Some((_, field)) = params.iter().find(|(k, _)| *k == "order") {
                items.sort_by_key(|i| i[*field].as_i64());
            }
            if !params.iter().any(|(k, _)| *k == "property") {
                items.iter_mut().for_each(|i| drop(i.as_object_mut().unwrap().remove("properties")));
            }
            let num = |key: &str, default: usize| {
                params.iter().find(|(k, _)| *k == key).map_or(default, |(_, v)| v.parse().unwrap())
            };
            let total = items.len();
            let page: Vec<Value> =
                items.into_iter().skip(num("offset", 0)).take(num("limit", usize::MAX)).collect();
            axum::Json(json!({ name: page, "meta": {"total": total} }))
        }
    }

    /// Buildbot's `field__op=value` filters (repeated `__eq` is IN), for the ops `fetch` uses.
    fn matches_filter(item: &Value, key: &str, value: &str, all: &[(&str, &str)]) -> bool {
        if ["limit", "offset", "order", "property", "field"].contains(&key) {
            return true;
        }
        let (field, op) = key.split_once("__").unwrap_or((key, "eq"));
        let have = &item[field];
        let want: Value = serde_json::from_str(value).unwrap_or(Value::String(value.into()));
        match op {
            "eq" => all
                .iter()
                .any(|(k, v)| *k == key && serde_json::from_str::<Value>(v).ok().as_ref() == Some(have)),
            "ge" => have.as_i64().is_some_and(|h| h >= want.as_i64().unwrap()),
            "gt" => have.as_i64().is_some_and(|h| h > want.as_i64().unwrap()),
            other => panic!("filter op {other} not faked"),
        }
    }

    async fn collection(
        State(m): State<FakeMaster>,
        Path(name): Path<String>,
        RawQuery(q): RawQuery,
        headers: HeaderMap,
    ) -> axum::Json<Value> {
        *m.auth.lock().unwrap() = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
        m.serve(&name, q, |_| true)
    }

    async fn build_steps(
        State(m): State<FakeMaster>,
        Path(id): Path<i64>,
        RawQuery(q): RawQuery,
    ) -> axum::Json<Value> {
        let mut steps = m.serve("steps", q, |s| s["buildid"] == id);
        // The nested endpoint's steps carry their buildid anyway; drop it to prove `fetch`
        // does not depend on it.
        for s in steps.0["steps"].as_array_mut().unwrap() {
            s.as_object_mut().unwrap().remove("buildid");
        }
        steps
    }

    #[tokio::test]
    async fn pulls_pages_then_only_what_is_new() {
        let (master, url) = FakeMaster::start().await;
        let opts = FetchOptions { page_size: 2, ..FetchOptions::default() };
        let (batch, mark) = fetch(&url, None, &opts).await.unwrap();
        // Finished builds in `complete_at` order, then the running one.
        assert_lines(&summarize(&batch), &ALL_BUILDS.replace("builds[6]", "builds[5]"));
        assert_eq!(mark, Some(1_700_001_150));
        assert!(batch.jobs.iter().all(|j| j.source == format!("buildbot:{}", &url[7..url.len() - 1])));
        assert!(batch.jobs[0].url.as_deref().unwrap().ends_with("/#/builders/1/builds/17"));
        let hits = master.take_hits();
        let finished: Vec<&String> = hits.iter().filter(|h| h.contains("complete__eq=true")).collect();
        assert_eq!(finished.len(), 3, "6 finished builds in pages of 2: {hits:#?}");
        assert!(finished.iter().all(|h| h.contains("property=*")));

        // Build 106 finishes, 108 is new; the re-run asks only for builds completed since.
        let builds: Value = serde_json::from_slice(&fixture("buildbot/rest/builds.json")).unwrap();
        let mut b106 = builds["builds"][5].clone();
        b106["complete"] = json!(true);
        b106["complete_at"] = json!(1_700_001_900);
        b106["results"] = json!(0);
        master.set_build(b106);
        let mut b108 = builds["builds"][0].clone();
        b108["buildid"] = json!(108);
        b108["number"] = json!(20);
        b108["buildrequestid"] = json!(507);
        b108["started_at"] = json!(1_700_002_600);
        b108["complete_at"] = json!(1_700_002_700);
        master.set_build(b108);
        let (batch, mark) = fetch(&url, mark, &opts).await.unwrap();
        assert_lines(
            &summarize(&batch),
            "
            106 linux-x86_64 success w=linux-worker-1 q=1700001190 s=1700001200 f=1700001900 [git:success compile:running]
            108 linux-x86_64 success w=linux-worker-1 q=1700002500 s=1700002600 f=1700002700
            skip builds[0] (buildid 107): builder 77 is unknown
            ",
        );
        assert_eq!(mark, Some(1_700_002_700));
        let hits = master.take_hits();
        assert!(hits.iter().any(|h| h.starts_with("builds?complete_at__ge=1700001150&")), "{hits:#?}");
        assert!(
            hits.iter().any(|h| h.contains("buildrequestid__eq=506&buildrequestid__eq=507")),
            "{hits:#?}"
        );

        // Nothing new: the mark stays.
        let (_, again) = fetch(&url, mark, &opts).await.unwrap();
        assert_eq!(again, mark);
    }

    #[tokio::test]
    async fn pull_errors_name_the_url() {
        let (_master, url) = FakeMaster::start().await;
        let e = fetch(&format!("{url}nope"), None, &FetchOptions::default()).await.unwrap_err();
        assert!(e.at.contains("/nope/api/v2/builders") && e.message.contains("404"), "{e}");
        let e = fetch("http://127.0.0.1:1", None, &FetchOptions::default()).await.unwrap_err();
        assert!(e.message.contains("request failed"), "{e}");
    }

    #[tokio::test]
    async fn a_token_is_sent_as_bearer() {
        let (master, url) = FakeMaster::start().await;
        fetch(&url, None, &FetchOptions::default()).await.unwrap();
        assert_eq!(*master.auth.lock().unwrap(), None);
        let opts = FetchOptions { token: Some(Token::new("s3cret")), ..FetchOptions::default() };
        fetch(&url, None, &opts).await.unwrap();
        assert_eq!(master.auth.lock().unwrap().as_deref(), Some("Bearer s3cret"));
    }
}
