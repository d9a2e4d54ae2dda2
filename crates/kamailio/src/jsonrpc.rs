//! A minimal JSON-RPC 2.0 client for Kamailio's `jsonrpcs` module served over HTTP by `xhttp`.
//!
//! Blocking (the actuator trait is synchronous and runs on a blocking thread), with one global
//! timeout per call. Error messages name the method and the endpoint, never the parameters: those
//! are subscriber data (line ids, addresses).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// Largest response body read (an `htable.dump` of a large table can be big).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Kamailio could not be reached or did not answer in time.
    #[error("Kamailio JSON-RPC at {url} unreachable ({method}): {detail}")]
    Unavailable {
        /// The endpoint.
        url: String,
        /// The method called.
        method: String,
        /// The transport error.
        detail: String,
    },
    /// Kamailio answered with a JSON-RPC error object.
    #[error("Kamailio JSON-RPC {method} failed: {code} {message}")]
    Server {
        /// The method called.
        method: String,
        /// The error code (Kamailio uses HTTP-like codes: 404 key not found, 500 …).
        code: i64,
        /// The error message.
        message: String,
    },
    /// The answer was not a JSON-RPC 2.0 response.
    #[error("Kamailio JSON-RPC {method}: unexpected answer: {detail}")]
    BadResponse {
        /// The method called.
        method: String,
        /// What was wrong.
        detail: String,
    },
}

/// A JSON-RPC endpoint, e.g. `http://127.0.0.1:5071/RPC`.
pub struct RpcClient {
    url: String,
    agent: ureq::Agent,
    next_id: AtomicU64,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client with a timeout for each whole call (connect, send, answer).
    pub fn new(url: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent("mamori")
            .build()
            .into();
        RpcClient { url: url.to_owned(), agent, next_id: AtomicU64::new(1) }
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` with positional `params` and returns its `result`.
    pub fn call(&self, method: &str, params: &[&str]) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string();
        let unavailable =
            |detail: String| RpcError::Unavailable { url: self.url.clone(), method: method.to_owned(), detail };
        let mut resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| unavailable(format!("reading the answer: {e}")))?;
        let bad = |detail: String| RpcError::BadResponse { method: method.to_owned(), detail };
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) if status.is_success() => return Err(bad(format!("not JSON ({e})"))),
            Err(_) => return Err(bad(format!("HTTP {status} from {}", self.url))),
        };
        if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError::Server {
                method: method.to_owned(),
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err.get("message").and_then(Value::as_str).unwrap_or("(no message)").to_owned(),
            });
        }
        if !status.is_success() {
            return Err(bad(format!("HTTP {status} from {}", self.url)));
        }
        if value.get("id").and_then(Value::as_u64) != Some(id) {
            return Err(bad("the answer's id doesn't match the request's".into()));
        }
        value.get("result").cloned().ok_or_else(|| bad("no result".into()))
    }
}
