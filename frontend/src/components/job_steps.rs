//! One job's steps (or build tasks), fetched on demand: `GET /api/v1/jobs/{source}/{id}`.
//! Long lists (a Yocto build has thousands of recipe tasks) show the longest first.

use common::Job;
use gloo_net::http::Request;
use leptos::prelude::*;

use crate::api::{ApiError, error_from};
use crate::format::{seconds, utc_minute};

/// Steps listed before "longest first" kicks in, and how many are listed then.
const IN_ORDER_UP_TO: usize = 40;

async fn job(source: &str, id: &str) -> Result<Job, ApiError> {
    let path =
        format!("/api/v1/jobs/{}/{}", js_sys::encode_uri_component(source), js_sys::encode_uri_component(id));
    let response = Request::get(&path).send().await.map_err(|e| ApiError::Network(e.to_string()))?;
    if !response.ok() {
        return Err(error_from(response).await);
    }
    let text = response.text().await.map_err(|e| ApiError::Body(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| ApiError::Body(e.to_string()))
}

/// The steps of job `(source, id)` as a table with a duration bar per step.
#[component]
pub fn JobSteps(source: String, id: String) -> impl IntoView {
    let title = format!("Steps of {source} / {id}");
    let loaded = LocalResource::new(move || {
        let (source, id) = (source.clone(), id.clone());
        async move { job(&source, &id).await }
    });
    view! {
        <section class="job-steps" data-testid="job-steps">
            <h3>{title}</h3>
            {move || match loaded.get() {
                None => view! { <p class="muted">"Loading steps…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="chart-failure">{e.to_string()}</p> }.into_any(),
                Some(Ok(job)) if job.steps.is_empty() => {
                    view! { <p class="muted">"This job was recorded without steps."</p> }.into_any()
                }
                Some(Ok(job)) => steps_table(&job).into_any(),
            }}
        </section>
    }
}

fn steps_table(job: &Job) -> impl IntoView + use<> {
    let duration = |s: &common::Step| match (s.started_at, s.finished_at) {
        (Some(a), Some(b)) => Some((b.as_millis() - a.as_millis()) as f64 / 1000.0),
        _ => None,
    };
    let mut steps: Vec<&common::Step> = job.steps.iter().collect();
    let total = steps.len();
    let longest_first = total > IN_ORDER_UP_TO;
    if longest_first {
        steps.sort_by(|a, b| duration(b).unwrap_or(-1.0).total_cmp(&duration(a).unwrap_or(-1.0)));
        steps.truncate(IN_ORDER_UP_TO);
    }
    let longest = steps.iter().filter_map(|s| duration(s)).fold(0.0f64, f64::max);
    let rows = steps
        .into_iter()
        .map(|s| {
            let d = duration(s);
            let width = d.filter(|_| longest > 0.0).map(|d| format!("width: {:.1}%", 100.0 * d / longest));
            let result = s.result.map(|r| r.as_str().to_owned()).unwrap_or_default();
            view! {
                <tr>
                    <td>{s.name.clone()}</td>
                    <td class="nowrap">{s.started_at.map(|t| utc_minute(t.as_millis())).unwrap_or_default()}</td>
                    <td class="num">{d.map(seconds).unwrap_or_default()}</td>
                    <td class="bar-cell"><span class="bar" style=width.unwrap_or_default()></span></td>
                    <td>{(!result.is_empty()).then(|| view! { <span class=format!("badge result-{result}")>{result.clone()}</span> })}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {longest_first.then(|| view! {
            <p class="muted">{format!("The {IN_ORDER_UP_TO} longest of {total} steps.")}</p>
        })}
        <table class="jobs steps">
            <thead><tr><th>"Step"</th><th>"Started (UTC)"</th><th>"Duration"</th><th></th><th>"Result"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
