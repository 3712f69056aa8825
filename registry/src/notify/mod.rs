//! Notifications: webhooks in the CNCF registry's envelope, from a durable outbox on disk.
//!
//! Composed as distribution's `notifications/` is (listener → envelope → sinks), with a queue
//! on disk in place of its memory queue (distribution#2422: an endpoint that stays down grows
//! that queue without bound):
//!
//! - [`layer`] (the listener) turns successful API requests into [`event::Event`]s: manifest and
//!   blob pushes, pulls (GET), cross-repository mounts, deletes.
//! - [`outbox::Outbox`] keeps one directory per endpoint under `<data_dir>/_notifications/`, one
//!   file per event, written before the response leaves (no fsync: events survive a crash or
//!   restart of the process; a power loss can cost the last seconds). At most `max_pending`
//!   files per endpoint; past it the oldest are dropped and counted.
//! - One delivery task per endpoint ([`Notifier::start`]) POSTs batches of up to 32 events in
//!   file order and deletes them on a 2xx; on failure it waits, doubling from 1 s up to 60 s,
//!   and tries again forever. Memory per endpoint is one batch, whatever the backlog.
//!
//! May call `crate::service` for the registry's configuration only.

pub mod event;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use berth_config::registry_ops::NotificationEndpoint;
use berth_config::RegistryConfig;

use self::event::{Actor, Event, RequestInfo, Source, Target};
use self::outbox::Outbox;
use crate::api::identity::Identity;
use crate::route::Route;

/// Content type of a notification request body.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v2+json";

/// Events per POST.
const BATCH: usize = 32;

/// The configured endpoints and their outboxes.
pub struct Notifier {
    endpoints: Vec<(NotificationEndpoint, Arc<Outbox>)>,
    source: Source,
}

impl Notifier {
    /// Opens the outboxes of `config.ops.notifications`; `None` when there are none.
    ///
    /// # Errors
    /// When an outbox directory cannot be created.
    pub fn new(config: &RegistryConfig) -> std::io::Result<Option<Arc<Self>>> {
        if config.ops.notifications.is_empty() {
            return Ok(None);
        }
        let mut endpoints = Vec::new();
        for (i, e) in config.ops.notifications.iter().enumerate() {
            let dir = config
                .data_dir
                .join("_notifications")
                .join(outbox::endpoint_dir_name(i, &e.url));
            endpoints.push((e.clone(), Arc::new(Outbox::open(dir, i, e.max_pending)?)));
        }
        Ok(Some(Arc::new(Self {
            endpoints,
            source: Source {
                addr: config.addr.to_string(),
                instance_id: uuid::Uuid::new_v4().to_string(),
            },
        })))
    }

    /// Queues `event` for every endpoint that wants its action.
    pub fn publish(&self, mut event: Event) {
        event.source = self.source.clone();
        for (e, outbox) in &self.endpoints {
            if e.events.contains(&event.action) {
                if let Err(err) = outbox.push(&event) {
                    tracing::warn!(url = e.url, error = %err, "cannot queue a notification");
                }
            }
        }
    }

    /// Starts one delivery task per endpoint on the current runtime.
    pub fn start(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let client = match reqwest::Client::builder().build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the notification HTTP client");
                return Vec::new();
            }
        };
        self.endpoints
            .iter()
            .map(|(e, outbox)| tokio::spawn(deliver(client.clone(), e.clone(), outbox.clone())))
            .collect()
    }
}

async fn deliver(client: reqwest::Client, endpoint: NotificationEndpoint, outbox: Arc<Outbox>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let o = outbox.clone();
        let batch = tokio::task::spawn_blocking(move || o.peek(BATCH))
            .await
            .unwrap_or_else(|_| Ok(Vec::new()));
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(url = endpoint.url, error = %e, "cannot read the notification outbox");
                Vec::new()
            }
        };
        if batch.is_empty() {
            // Woken by the next push, or at the latest in a second.
            let _ = tokio::time::timeout(Duration::from_secs(1), outbox.wake.notified()).await;
            continue;
        }
        let mut body = Vec::from(&b"{\"events\":["[..]);
        for (i, (_, bytes)) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(bytes);
        }
        body.extend_from_slice(b"]}");
        let mut req = client
            .post(&endpoint.url)
            .timeout(Duration::from_secs(endpoint.timeout_secs))
            .header(header::CONTENT_TYPE.as_str(), ENVELOPE_MEDIA_TYPE);
        for (k, v) in &endpoint.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let result = req.body(body).send().await;
        let ok = match &result {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::warn!(url = endpoint.url, status = %r.status(), retry_in_secs = backoff.as_secs(), "notification endpoint refused events");
                false
            }
            Err(e) => {
                tracing::warn!(url = endpoint.url, error = %e, retry_in_secs = backoff.as_secs(), "notification endpoint unreachable");
                false
            }
        };
        let index = outbox.index;
        if ok {
            backoff = Duration::from_secs(1);
            let names: Vec<String> = batch.into_iter().map(|(n, _)| n).collect();
            let count = names.len();
            let o = outbox.clone();
            let _ = tokio::task::spawn_blocking(move || o.remove(&names)).await;
            for _ in 0..count {
                crate::metrics::global().notification(index, "delivered");
            }
        } else {
            crate::metrics::global().notification(index, "failed");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }
}

/// What a successful request did, as an event action and target.
fn classify(
    method: &Method,
    route: &Route,
    status: u16,
    query: Option<&str>,
) -> Option<(&'static str, String, Option<String>)> {
    use Route::{Blob, Manifest, Upload, UploadStart};
    let ok = (200..300).contains(&status);
    if !ok {
        return None;
    }
    match (method, route) {
        (&Method::PUT, Manifest { name, reference }) => {
            Some(("push", name.clone(), Some(reference.clone())))
        }
        (
            &Method::GET,
            Manifest { name, reference }
            | Blob {
                name,
                digest: reference,
            },
        ) => Some(("pull", name.clone(), Some(reference.clone()))),
        (
            &Method::DELETE,
            Manifest { name, reference }
            | Blob {
                name,
                digest: reference,
            },
        ) => Some(("delete", name.clone(), Some(reference.clone()))),
        (&Method::PUT, Upload { name, .. }) => Some(("push", name.clone(), None)),
        (&Method::POST, UploadStart { name }) if status == 201 => {
            let mount = query
                .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "mount"));
            Some((if mount { "mount" } else { "push" }, name.clone(), None))
        }
        _ => None,
    }
}

/// The listener (`axum::middleware::from_fn_with_state`).
pub async fn layer(
    axum::extract::State(notifier): axum::extract::State<Arc<Notifier>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let route = uri
        .path()
        .strip_prefix("/v2/")
        .and_then(|rest| crate::route::parse(rest).ok());
    let Some(route) = route else {
        return next.run(req).await;
    };
    let (host, user_agent, request_type, request_len) = {
        let header_str = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (
            header_str(header::HOST).unwrap_or_default(),
            header_str(header::USER_AGENT).unwrap_or_default(),
            header_str(header::CONTENT_TYPE),
            header_str(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok()),
        )
    };
    let addr = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    let Some((action, repository, reference)) =
        classify(&method, &route, resp.status().as_u16(), uri.query())
    else {
        return resp;
    };
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let digest = h("docker-content-digest")
        .or_else(|| reference.clone().filter(|r| r.contains(':')))
        .unwrap_or_default();
    let is_manifest = matches!(route, Route::Manifest { .. });
    let tag = reference.filter(|r| is_manifest && !r.contains(':'));
    let (media_type, size) = if method == Method::PUT && is_manifest {
        (request_type.unwrap_or_default(), request_len.unwrap_or(0))
    } else if method == Method::GET {
        (
            h("content-type").unwrap_or_default(),
            h("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        )
    } else {
        (
            String::from(if is_manifest {
                ""
            } else {
                "application/octet-stream"
            }),
            0,
        )
    };
    let kind = if is_manifest { "manifests" } else { "blobs" };
    let url = if digest.is_empty() {
        String::new()
    } else {
        format!("http://{host}/v2/{repository}/{kind}/{digest}")
    };
    let event = Event {
        id: uuid::Uuid::new_v4().to_string(),
        timestamp: event::rfc3339_now(),
        action: action.to_owned(),
        target: Target {
            media_type,
            size,
            digest,
            length: size,
            repository,
            url,
            tag,
        },
        request: RequestInfo {
            // The access log (inside this layer) names the request on the response.
            id: h("x-request-id").unwrap_or_default(),
            addr,
            host,
            method: method.to_string(),
            useragent: user_agent,
        },
        actor: Actor {
            name: resp.extensions().get::<Identity>().map(|i| i.0.clone()),
        },
        source: Source::default(),
    };
    notifier.publish(event);
    resp
}
