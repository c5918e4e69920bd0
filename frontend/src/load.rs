//! Loading the job table of a time range, with progress.
//!
//! The body is read chunk by chunk from the response stream so the page can say how much
//! has arrived. The browser decompresses (brotli/gzip) before the stream, so the server
//! sends the decoded size in `x-decoded-length`: `Content-Length` is the compressed size,
//! or absent.

use std::sync::Arc;

use common::JobTable;
use gloo_net::http::Request;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::api::{ApiError, error_from};

/// A decoded table and the absolute range it covers.
pub struct Loaded {
    pub table: JobTable,
    pub from_ms: i64,
    pub to_ms: i64,
    /// The instant `now` stood for when the range was resolved; the view's relative times
    /// are resolved at this instant until the next load, so numbers do not drift.
    pub now_ms: i64,
    /// Bytes received (decoded) and milliseconds spent decoding them.
    pub bytes: u64,
    pub decode_ms: f64,
}

impl Loaded {
    /// Whether this table holds every job of `[from_ms, to_ms]`.
    pub fn covers(&self, from_ms: i64, to_ms: i64) -> bool {
        self.from_ms <= from_ms && to_ms <= self.to_ms
    }
}

/// Bytes received so far, and the total when the server said it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    pub received: u64,
    pub total: Option<u64>,
}

/// `GET /api/v1/jobs?from=MS&to=MS` in the columnar encoding, decoded. `progress` is
/// called after every chunk.
pub async fn jobs(
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
    progress: impl Fn(Progress),
) -> Result<Arc<Loaded>, ApiError> {
    let response = Request::get("/api/v1/jobs")
        .query([("from", from_ms.to_string()), ("to", to_ms.to_string())])
        .header("accept", common::wire::CONTENT_TYPE)
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    if !response.ok() {
        return Err(error_from(response).await);
    }
    let total = response.headers().get("x-decoded-length").and_then(|v| v.parse::<u64>().ok());
    let mut body = Vec::with_capacity(total.unwrap_or(0).min(1 << 30) as usize);
    let stream = response.body().ok_or_else(|| ApiError::Body("the answer has no body".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader = stream
        .get_reader()
        .dyn_into()
        .map_err(|_| ApiError::Body("the body cannot be read as a stream".into()))?;
    progress(Progress { received: 0, total });
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| ApiError::Network(format!("{e:?}")))?;
        let done =
            js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into())
            .map_err(|_| ApiError::Body("a chunk without bytes".into()))?;
        let bytes: js_sys::Uint8Array =
            value.dyn_into().map_err(|_| ApiError::Body("a chunk that is not bytes".into()))?;
        let at = body.len();
        body.resize(at + bytes.length() as usize, 0);
        bytes.copy_to(&mut body[at..]);
        progress(Progress { received: body.len() as u64, total });
    }
    let started = crate::pages::explorer::now_ms();
    let table = JobTable::decode(&body)
        .map_err(|e| ApiError::Body(format!("the job table could not be decoded: {e}")))?;
    let decode_ms = crate::pages::explorer::now_ms() - started;
    Ok(Arc::new(Loaded { table, from_ms, to_ms, now_ms, bytes: body.len() as u64, decode_ms }))
}
