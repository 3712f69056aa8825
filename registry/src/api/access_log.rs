//! The access log: one line per request, written when its response body is finished or dropped,
//! so it carries the bytes really sent and the whole duration.
//!
//! ```text
//! INFO GET /v2/app/blobs/sha256:… 200 16777216B 5321us client=10.0.0.7:51234 user=alice request_id=5f0c…-0000002a user_agent="docker/27.0"
//! ```
//!
//! Also adds `Docker-Distribution-API-Version` (end-1 asks for it on every answer) and
//! `X-Request-Id` to every response.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use tracing::Instrument;

use super::identity::{Identity, RequestId};

/// A process-unique request id: a random prefix chosen at start and a counter.
fn next_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    format!("{prefix}-{:08x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// What the line says; logged on drop.
struct AccessLine {
    start: Instant,
    method: Method,
    uri: Uri,
    status: u16,
    bytes: u64,
    client: Option<SocketAddr>,
    user: Option<String>,
    request_id: String,
    user_agent: Option<String>,
}

impl Drop for AccessLine {
    fn drop(&mut self) {
        let client = self
            .client
            .map_or_else(|| "-".to_owned(), |a| a.to_string());
        tracing::info!(
            target: "access",
            client = %client,
            user = %self.user.as_deref().unwrap_or("-"),
            request_id = %self.request_id,
            user_agent = ?self.user_agent.as_deref().unwrap_or("-"),
            "{} {} {} {}B {}us",
            self.method,
            self.uri,
            self.status,
            self.bytes,
            self.start.elapsed().as_micros()
        );
    }
}

/// The middleware (`axum::middleware::from_fn`).
pub(crate) async fn access_log(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = next_request_id();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let uri = req.uri().clone();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let span = tracing::info_span!("request", id = %request_id);
    // Slots taken while serving count against this client's address (fairness).
    let mut resp =
        crate::service::slots::as_client(client.map(|c| c.ip()), next.run(req).instrument(span))
            .await;
    let headers = resp.headers_mut();
    headers.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v);
    }
    let mut line = AccessLine {
        start,
        method,
        uri,
        status: resp.status().as_u16(),
        bytes: 0,
        client,
        // The auth layer leaves the identity on the response too, since the request is gone.
        user: resp.extensions().get::<Identity>().map(|i| i.0.clone()),
        request_id,
        user_agent,
    };
    resp.map(|body| {
        Body::new(body.map_frame(move |frame| {
            // The whole line moves into the closure (not just its counter), so it is logged
            // when the body is dropped.
            let line = &mut line;
            if let Some(data) = frame.data_ref() {
                line.bytes += data.len() as u64;
            }
            frame
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_plain() {
        let a = next_request_id();
        let b = next_request_id();
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() || c == '-'), "{a}");
    }
}
