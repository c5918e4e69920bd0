//! Every HTTP call the app makes. The server is on the same origin, so paths are absolute
//! and relative to it.

use std::fmt;

use common::api::ErrorBody;

/// Why a request produced no data, worded for the status line.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiError {
    /// The request never got an answer (server down, network gone).
    Network(String),
    /// The server answered with an error status; `message` is its own sentence when the body
    /// was the JSON error envelope.
    Status { status: u16, code: Option<String>, message: String },
    /// A success status whose body could not be read or decoded.
    Body(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Network(e) => write!(f, "Could not reach the server: {e}"),
            ApiError::Status { message, .. } => f.write_str(message),
            ApiError::Body(e) => write!(f, "The server's answer could not be read: {e}"),
        }
    }
}

/// Reads the JSON error envelope, falling back to the status line when the body is
/// something else (a proxy's HTML page, an empty body).
pub async fn error_from(response: gloo_net::http::Response) -> ApiError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ApiError::Status { status, code: Some(body.error.code), message: body.error.message },
        Err(_) => {
            let reason = response.status_text();
            let reason = if reason.is_empty() { "error".to_owned() } else { reason };
            ApiError::Status { status, code: None, message: format!("The server answered {status} {reason}") }
        }
    }
}
