//! What the HTTP pulls share: settings, the secret token, one client that authenticates as
//! each CI system expects and caps every response, the paged APIs' next-page links, and the
//! high-water mark that makes a pull incremental.
//!
//! Each system's pull lives with its parser (`buildbot::fetch`, `jenkins::fetch`,
//! `github::fetch`, `gitlab::fetch`) and hands batches to an async sink; `run::pull` writes
//! them and keeps the mark. The pulls never see the store.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use super::ImportError;

/// Settings of a pull from a CI system's API.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Files the records under this source instead of the format's own.
    pub source: Option<String>,
    /// Credentials, sent the way the system expects (see [`Auth`]).
    pub token: Option<Token>,
    /// Records asked for per page: `per_page` (GitHub and GitLab cap it at 100), the width of
    /// Jenkins' `{M,N}` ranges, Buildbot's `limit`.
    pub page_size: usize,
    /// Requests in flight at once (a page's per-run job lists).
    pub concurrency: usize,
    pub timeout: Duration,
    /// Refuse any single response larger than this.
    pub max_response_bytes: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            source: None,
            token: None,
            page_size: 100,
            concurrency: 8,
            timeout: Duration::from_secs(60),
            max_response_bytes: 64 << 20,
        }
    }
}

/// A secret (API token, `user:token` pair). `Debug` hides it, so settings that hold one can
/// be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Token {
        Token(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Token {
    type Err = String;

    fn from_str(s: &str) -> Result<Token, String> {
        if s.is_empty() { Err("the token is empty".into()) } else { Ok(Token(s.to_owned())) }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// How a token is sent.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// `Authorization: Bearer TOKEN`: GitHub, Buildbot behind a proxy, plain downloads.
    Bearer(Token),
    /// `PRIVATE-TOKEN: TOKEN`: GitLab personal, project and group access tokens.
    PrivateToken(Token),
    /// `Authorization: Basic`: Jenkins, with the token given as `USER:API_TOKEN`.
    Basic(Token),
}

impl Auth {
    /// Jenkins' basic auth from a `USER:API_TOKEN` token.
    pub fn basic(token: Option<&Token>) -> Result<Auth, ImportError> {
        match token {
            None => Ok(Auth::None),
            Some(t) if t.expose().contains(':') => Ok(Auth::Basic(t.clone())),
            Some(_) => Err(ImportError::new("--token", "Jenkins takes the token as USER:API_TOKEN")),
        }
    }
}

/// One response: headers and body.
pub(crate) struct Response {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// An HTTP client for one pull: authentication, timeout, and a cap on every response.
#[derive(Clone)]
pub(crate) struct Client {
    inner: reqwest::Client,
    auth: Auth,
    /// Scheme, host and port of the pull's URL: credentials go there and nowhere else, even
    /// when a response links elsewhere.
    origin: reqwest::Url,
    max_response_bytes: usize,
}

impl Client {
    /// A client for pulling from `base_url`'s server.
    pub fn new(auth: Auth, opts: &PullOptions, base_url: &str) -> Result<Client, ImportError> {
        let origin = reqwest::Url::parse(base_url).map_err(|e| ImportError::new(base_url, e.to_string()))?;
        let inner = reqwest::Client::builder()
            .timeout(opts.timeout)
            .user_agent(concat!("buildscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ImportError::new("HTTP client", e.to_string()))?;
        Ok(Client { inner, auth, origin, max_response_bytes: opts.max_response_bytes })
    }

    /// GETs `url`; any failure (no connection, a status other than 2xx, a body over the
    /// cap) is an error located at the URL, with what the server said when it said
    /// something short.
    pub async fn get(&self, url: &str) -> Result<Response, ImportError> {
        let fail = |message: String| ImportError::new(url, message);
        let parsed = reqwest::Url::parse(url).map_err(|e| fail(e.to_string()))?;
        if parsed.origin() != self.origin.origin() && !matches!(self.auth, Auth::None) {
            return Err(fail(format!(
                "not on {}: the token is only sent to the server the pull started from",
                self.origin.origin().ascii_serialization()
            )));
        }
        let mut request = self.inner.get(parsed).header(reqwest::header::ACCEPT, "application/json");
        request = match &self.auth {
            Auth::None => request,
            Auth::Bearer(t) => request.bearer_auth(t.expose()),
            Auth::PrivateToken(t) => {
                let mut value = HeaderValue::from_str(t.expose())
                    .map_err(|_| fail("the token is not a valid header value".into()))?;
                value.set_sensitive(true);
                request.header("PRIVATE-TOKEN", value)
            }
            Auth::Basic(t) => {
                let (user, password) = t.expose().split_once(':').unwrap_or((t.expose(), ""));
                request.basic_auth(user, Some(password))
            }
        };
        let mut resp = request.send().await.map_err(|e| fail(format!("request failed: {e}")))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(format!("reading the response: {e}")))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(fail(format!("response larger than {} bytes", self.max_response_bytes)));
            }
            body.extend_from_slice(&chunk);
            if !status.is_success() && body.len() > 4096 {
                break;
            }
        }
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}{}", said(&body))));
        }
        Ok(Response { headers: resp.headers().clone(), body })
    }
}

/// `: <what the server said>` for a short text or JSON `message` body, else nothing.
fn said(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    let text = match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    if text.is_empty() || text.len() > 200 || text.contains('<') {
        String::new()
    } else {
        format!(": {}", text.replace('\n', " "))
    }
}

/// The `rel="next"` target of a `Link` header (GitHub, GitLab keyset pagination), if any.
pub(crate) fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let mut parts = link.split(';');
            let target = parts.next()?.trim();
            let is_next = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("rel=").is_some_and(|r| r.trim_matches('"').split(' ').any(|r| r == "next"))
            });
            if is_next && let Some(url) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                return Some(url.to_owned());
            }
        }
    }
    None
}

/// Whether the response has a `Link` header at all (then its lack of `next` means the end).
pub(crate) fn has_links(headers: &HeaderMap) -> bool {
    headers.contains_key(reqwest::header::LINK)
}

/// A header's value as text, if present and not empty (`X-Next-Page` is empty on the last
/// page).
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `url` with query parameter `name` set to `value` (replacing any there).
pub(crate) fn with_param(url: &str, name: &str, value: &str) -> Result<String, ImportError> {
    let mut parsed = reqwest::Url::parse(url).map_err(|e| ImportError::new(url, e.to_string()))?;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut pairs = parsed.query_pairs_mut();
        pairs.clear();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        pairs.append_pair(name, value);
    }
    Ok(parsed.into())
}

/// `url` with `name` set to `value` unless the URL already sets it (the user's choice wins).
pub(crate) fn with_default_param(url: &str, name: &str, value: &str) -> Result<String, ImportError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ImportError::new(url, e.to_string()))?;
    if parsed.query_pairs().any(|(k, _)| k == name) {
        Ok(url.to_owned())
    } else {
        with_param(url, name, value)
    }
}

/// The path of `url` without query or fragment and without a trailing `/`.
pub(crate) fn path_of(url: &str) -> Result<String, ImportError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ImportError::new(url, e.to_string()))?;
    Ok(parsed.path().trim_end_matches('/').to_owned())
}

/// The incremental part of a pull over a list that comes newest first and whose ids grow
/// with time (GitHub run ids, GitLab pipeline and job ids, Jenkins build numbers).
///
/// The mark a pull leaves is the oldest id that was still unfinished, or, when everything
/// was finished, the newest id seen. The next pull takes every record at or above the mark
/// (so unfinished ones come again until they finish, and the boundary record re-imports
/// idempotently) and stops after the first page that reaches below it. A pull that fails
/// part-way leaves the old mark: its pages are stored, and the next pull walks them again.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    since: Option<i64>,
    newest: Option<i64>,
    oldest_open: Option<i64>,
    reached: bool,
}

impl Mark {
    pub fn new(since: Option<i64>) -> Mark {
        Mark { since, newest: None, oldest_open: None, reached: false }
    }

    /// Whether record `id` is new enough to take; notes it for the next mark.
    pub fn take(&mut self, id: i64, finished: bool) -> bool {
        if self.since.is_some_and(|since| id < since) {
            self.reached = true;
            return false;
        }
        self.newest = Some(self.newest.map_or(id, |n| n.max(id)));
        if !finished {
            self.oldest_open = Some(self.oldest_open.map_or(id, |o| o.min(id)));
        }
        true
    }

    /// Whether a record older than the previous mark has been seen: later pages hold only
    /// older ones.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// The mark to keep for the next pull.
    pub fn next(&self) -> Option<i64> {
        self.oldest_open.or(self.newest).or(self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn next_links() {
        let h = headers(&[(
            "link",
            r#"<https://api.github.com/repositories/1/actions/runs?per_page=2&page=2>; rel="next", <https://api.github.com/repositories/1/actions/runs?per_page=2&page=9>; rel="last""#,
        )]);
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://api.github.com/repositories/1/actions/runs?per_page=2&page=2")
        );
        let h = headers(&[
            ("link", r#"<https://x/a?page=1>; rel="prev""#),
            ("link", "<https://x/a?page=3>; rel=next"),
        ]);
        assert_eq!(link_next(&h).as_deref(), Some("https://x/a?page=3"));
        assert!(has_links(&h));
        assert_eq!(link_next(&headers(&[("link", r#"<https://x/a?page=1>; rel="first""#)])), None);
        let h = headers(&[("x-next-page", ""), ("x-total", "7")]);
        assert_eq!((header(&h, "x-next-page"), header(&h, "x-total")), (None, Some("7")));
    }

    #[test]
    fn params() {
        assert_eq!(with_param("https://x/a?page=2&b=c", "page", "3").unwrap(), "https://x/a?b=c&page=3");
        assert_eq!(
            with_default_param("https://x/a?per_page=5", "per_page", "100").unwrap(),
            "https://x/a?per_page=5"
        );
        assert_eq!(with_default_param("https://x/a", "per_page", "100").unwrap(), "https://x/a?per_page=100");
        assert_eq!(
            path_of("https://x/api/v4/projects/3/pipelines/?a=1").unwrap(),
            "/api/v4/projects/3/pipelines"
        );
        assert!(with_param("not a url", "a", "b").unwrap_err().to_string().contains("not a url"));
    }

    #[tokio::test]
    async fn credentials_stay_on_the_pulled_server() {
        let client =
            Client::new(Auth::Bearer(Token::new("t")), &PullOptions::default(), "http://ci.example:8080/a")
                .unwrap();
        let e = client.get("http://elsewhere.example/x").await.err().unwrap();
        assert_eq!(e.at, "http://elsewhere.example/x");
        assert!(e.message.contains("only sent to the server the pull started from"), "{e}");
        let e = Client::new(Auth::None, &PullOptions::default(), "x").err().unwrap();
        assert!(e.message.contains("relative URL"), "{e}");
    }

    #[test]
    fn marks() {
        // First pull: everything, newest first; 7 is still running.
        let mut m = Mark::new(None);
        assert!([9, 8, 7, 6].into_iter().all(|id| m.take(id, id != 7)));
        assert_eq!((m.reached(), m.next()), (false, Some(7)));
        // Next pull takes 7 and up, stops below; all finished now.
        let mut m = Mark::new(Some(7));
        let taken: Vec<i64> = [11, 10, 9, 8, 7, 6, 5].into_iter().filter(|&id| m.take(id, true)).collect();
        assert_eq!((taken, m.reached(), m.next()), (vec![11, 10, 9, 8, 7], true, Some(11)));
        // Nothing at all keeps the old mark.
        assert_eq!(Mark::new(Some(3)).next(), Some(3));
        assert_eq!(format!("{:?}", Token::new("s3cret")), "Token(***)");
    }
}
