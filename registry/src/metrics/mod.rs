//! Metrics in the Prometheus text format (0.0.4), health endpoints and the GC trigger.
//!
//! Owns the process-wide counters ([`global`]), the HTTP layer that feeds them ([`layer`]),
//! the timing storage wrapper ([`TimedDriver`]) and the ops routes ([`routes`]: `/metrics`,
//! `/livez`, `/readyz`, `POST /_berth/gc`). May call `crate::service`, `crate::gc` and
//! `crate::mirror` (cache gauges and the upstream probe of `/readyz`).
//!
//! Names follow the CNCF registry where it has one (`registry_http_requests_total`,
//! `registry_http_request_duration_seconds`, `registry_http_request_size_bytes`,
//! `registry_http_response_size_bytes`, `registry_http_in_flight_requests`,
//! `registry_storage_action_seconds`); ours start with `berth_registry_`. Labels are bounded:
//! `handler` is the route template (`manifest`, `blob`, `blob_upload`, …), `method` one of the
//! HTTP methods or `other`, `code` the status class (`2xx`…`5xx`); no repository or digest.
//!
//! Hand-written rather than `prometheus-client`: a dozen fixed families with fixed label sets
//! fit in a few hundred lines, render without a registry of boxed collectors, and add nothing
//! to the dependency tree.

mod driver;
mod routes;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub use driver::TimedDriver;
pub use routes::routes;

/// Header carrying the `POST /_berth/gc` token.
pub const GC_TOKEN_HEADER: &str = "x-berth-gc-token";

const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
const SIZE_BUCKETS: &[f64] = &[
    256.0,
    4096.0,
    65536.0,
    1_048_576.0,
    16_777_216.0,
    268_435_456.0,
    1_073_741_824.0,
];

#[derive(Clone, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len()];
        }
        for (i, b) in buckets.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, buckets: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in buckets.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts.get(i).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Families {
    requests: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    durations: BTreeMap<(&'static str, &'static str), Histogram>,
    request_sizes: BTreeMap<&'static str, Histogram>,
    response_sizes: BTreeMap<&'static str, Histogram>,
    in_flight: BTreeMap<&'static str, i64>,
    storage: BTreeMap<&'static str, Histogram>,
    gc_runs: BTreeMap<&'static str, u64>,
    gc_duration: Histogram,
    notifications: BTreeMap<(usize, &'static str), u64>,
    notifications_pending: BTreeMap<usize, u64>,
    /// Mirror families, keyed by the configured upstream name (bounded by the configuration).
    /// `[manifest, blob]` counts per upstream.
    mirror_hits: BTreeMap<String, [u64; 2]>,
    mirror_misses: BTreeMap<String, [u64; 2]>,
    mirror_upstream_bytes: BTreeMap<String, u64>,
    mirror_upstream_errors: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

/// Gauges read at scrape time by the `/metrics` handler.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScrapeGauges {
    /// Unfinished upload sessions on disk.
    pub uploads_open: u64,
    /// Bytes of upstream content in the mirror's cache (`None`: no mirror configured).
    pub mirror_cached_bytes: Option<u64>,
    /// Blob fills from upstreams in progress.
    pub mirror_fills: Option<u64>,
}

/// Which mirror content a hit or miss was for.
#[derive(Debug, Clone, Copy)]
pub enum MirrorKind {
    /// A manifest or index.
    Manifest,
    /// A blob (config or layer).
    Blob,
}

impl MirrorKind {
    const LABELS: [&'static str; 2] = ["manifest", "blob"];

    fn index(self) -> usize {
        match self {
            Self::Manifest => 0,
            Self::Blob => 1,
        }
    }
}

/// The entry of `upstream` in `map`, allocating its key only the first time.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, upstream: &str) -> &'m mut V {
    if !map.contains_key(upstream) {
        map.insert(upstream.to_owned(), V::default());
    }
    map.get_mut(upstream).expect("just inserted")
}

/// The process-wide metrics.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
    gc_freed_bytes: AtomicU64,
    gc_blobs_deleted: AtomicU64,
    gc_last_success_unix: AtomicU64,
    storage_bytes: AtomicU64,
    blobs: AtomicU64,
    repositories: AtomicU64,
    auth_failures: AtomicU64,
}

/// The metrics of this process.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::default)
}

fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The route template of a path: a fixed, small set.
#[must_use]
pub fn handler_of(path: &str) -> &'static str {
    use crate::route::Route;
    if let Some(rest) = path.strip_prefix("/v2") {
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        return match crate::route::parse(rest) {
            Ok(Route::Base) => "base",
            Ok(Route::Catalog) => "catalog",
            Ok(Route::Tags { .. }) => "tags",
            Ok(Route::Manifest { .. }) => "manifest",
            Ok(Route::Blob { .. }) => "blob",
            Ok(Route::UploadStart { .. }) => "blob_upload",
            Ok(Route::Upload { .. }) => "blob_upload_chunk",
            Ok(Route::Referrers { .. }) => "referrers",
            Err(_) => "unknown",
        };
    }
    match path {
        "/metrics" => "metrics",
        "/livez" | "/readyz" => "health",
        p if p.starts_with("/auth/") => "auth",
        p if p.starts_with("/_berth/") => "admin",
        _ => "unknown",
    }
}

fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Families) -> R) -> R {
        f(&mut self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// One storage driver call.
    pub fn storage_action(&self, action: &'static str, took: Duration) {
        self.with(|f| {
            f.storage
                .entry(action)
                .or_default()
                .observe(DURATION_BUCKETS, took.as_secs_f64());
        });
    }

    /// A GC run ended.
    pub fn gc_finished(
        &self,
        result: &crate::gc::Result<crate::gc::GcReport>,
        took: Duration,
        dry_run: bool,
    ) {
        let outcome = match (result, dry_run) {
            (Err(_), _) => "error",
            (Ok(_), true) => "dry_run",
            (Ok(_), false) => "success",
        };
        self.with(|f| {
            *f.gc_runs.entry(outcome).or_default() += 1;
            f.gc_duration.observe(DURATION_BUCKETS, took.as_secs_f64());
        });
        if let Ok(r) = result {
            if !dry_run {
                self.gc_freed_bytes
                    .fetch_add(r.bytes_freed, Ordering::Relaxed);
                self.gc_blobs_deleted
                    .fetch_add(r.blobs.len() as u64, Ordering::Relaxed);
                self.gc_last_success_unix
                    .store(r.started_unix, Ordering::Relaxed);
                self.storage_bytes.store(r.bytes_kept, Ordering::Relaxed);
                self.blobs
                    .store((r.blobs_marked + r.blobs_young) as u64, Ordering::Relaxed);
            }
            self.repositories
                .store(r.repositories as u64, Ordering::Relaxed);
        }
    }

    /// A notification delivery attempt to endpoint `index` ended with `result`
    /// (`delivered`, `failed`, `dropped`).
    pub fn notification(&self, index: usize, result: &'static str) {
        self.with(|f| *f.notifications.entry((index, result)).or_default() += 1);
    }

    /// Events waiting on disk for endpoint `index`.
    pub fn notifications_pending(&self, index: usize, pending: u64) {
        self.with(|f| {
            f.notifications_pending.insert(index, pending);
        });
    }

    /// A mirrored request was answered from the cache.
    pub fn mirror_hit(&self, upstream: &str, kind: MirrorKind) {
        self.with(|f| entry(&mut f.mirror_hits, upstream)[kind.index()] += 1);
    }

    /// A mirrored request found nothing cached and went to (or joined a fetch from) the upstream.
    pub fn mirror_miss(&self, upstream: &str, kind: MirrorKind) {
        self.with(|f| entry(&mut f.mirror_misses, upstream)[kind.index()] += 1);
    }

    /// `n` bytes of manifest or blob content arrived from `upstream`.
    pub fn mirror_upstream_bytes(&self, upstream: &str, n: u64) {
        self.with(|f| *entry(&mut f.mirror_upstream_bytes, upstream) += n);
    }

    /// An exchange with `upstream` failed; `reason` is one of `unreachable`, `status`,
    /// `not_found`, `unauthorized`, `bad_content`, `cut`.
    pub fn mirror_upstream_error(&self, upstream: &str, reason: &'static str) {
        self.with(|f| {
            *entry(&mut f.mirror_upstream_errors, upstream)
                .entry(reason)
                .or_default() += 1;
        });
    }

    /// The exposition, with the gauges the caller read at scrape time.
    #[must_use]
    pub fn render(&self, gauges: ScrapeGauges) -> String {
        let uploads_open = gauges.uploads_open;
        let mut out = String::with_capacity(8192);
        let f = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "registry_http_requests_total",
            "counter",
            "Requests by route template, method and status class.",
        );
        for ((h, m, c), n) in &f.requests {
            let _ = writeln!(
                out,
                "registry_http_requests_total{{handler=\"{h}\",method=\"{m}\",code=\"{c}\"}} {n}"
            );
        }
        family(
            &mut out,
            "registry_http_request_duration_seconds",
            "histogram",
            "Time to the response headers, by route template and method.",
        );
        for ((h, m), hist) in &f.durations {
            hist.render(
                &mut out,
                "registry_http_request_duration_seconds",
                &format!("handler=\"{h}\",method=\"{m}\""),
                DURATION_BUCKETS,
            );
        }
        family(
            &mut out,
            "registry_http_request_size_bytes",
            "histogram",
            "Request body sizes (Content-Length), by route template.",
        );
        for (h, hist) in &f.request_sizes {
            hist.render(
                &mut out,
                "registry_http_request_size_bytes",
                &format!("handler=\"{h}\""),
                SIZE_BUCKETS,
            );
        }
        family(
            &mut out,
            "registry_http_response_size_bytes",
            "histogram",
            "Response body sizes, by route template.",
        );
        for (h, hist) in &f.response_sizes {
            hist.render(
                &mut out,
                "registry_http_response_size_bytes",
                &format!("handler=\"{h}\""),
                SIZE_BUCKETS,
            );
        }
        family(
            &mut out,
            "registry_http_in_flight_requests",
            "gauge",
            "Requests being served, by route template.",
        );
        for (h, n) in &f.in_flight {
            let _ = writeln!(
                out,
                "registry_http_in_flight_requests{{handler=\"{h}\"}} {n}"
            );
        }
        family(
            &mut out,
            "registry_storage_action_seconds",
            "histogram",
            "Storage driver calls, by action.",
        );
        for (a, hist) in &f.storage {
            hist.render(
                &mut out,
                "registry_storage_action_seconds",
                &format!("driver=\"filesystem\",action=\"{a}\""),
                DURATION_BUCKETS,
            );
        }
        family(
            &mut out,
            "berth_registry_gc_runs_total",
            "counter",
            "Garbage collection runs by result (success, dry_run, error).",
        );
        for (r, n) in &f.gc_runs {
            let _ = writeln!(out, "berth_registry_gc_runs_total{{result=\"{r}\"}} {n}");
        }
        family(
            &mut out,
            "berth_registry_gc_duration_seconds",
            "histogram",
            "Wall time of garbage collection runs.",
        );
        f.gc_duration.render(
            &mut out,
            "berth_registry_gc_duration_seconds",
            "",
            DURATION_BUCKETS,
        );
        let simple = [
            (
                "berth_registry_gc_freed_bytes_total",
                "counter",
                "Bytes of blob content deleted by GC.",
                self.gc_freed_bytes.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_gc_blobs_deleted_total",
                "counter",
                "Blobs deleted by GC.",
                self.gc_blobs_deleted.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_gc_last_success_timestamp_seconds",
                "gauge",
                "Start of the last successful GC run.",
                self.gc_last_success_unix.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_storage_bytes",
                "gauge",
                "Bytes of blob content, as of the last GC run.",
                self.storage_bytes.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_storage_blobs",
                "gauge",
                "Blobs stored, as of the last GC run.",
                self.blobs.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_repositories",
                "gauge",
                "Repositories, as of the last GC run.",
                self.repositories.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_upload_sessions_open",
                "gauge",
                "Unfinished upload sessions.",
                uploads_open,
            ),
            (
                "berth_registry_auth_failures_total",
                "counter",
                "Requests answered 401 (missing or wrong credentials, bad tokens).",
                self.auth_failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, v) in simple {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }
        family(
            &mut out,
            "berth_registry_notifications_total",
            "counter",
            "Notification deliveries by endpoint (its index in the configuration) and result.",
        );
        for ((i, r), n) in &f.notifications {
            let _ = writeln!(
                out,
                "berth_registry_notifications_total{{endpoint=\"{i}\",result=\"{r}\"}} {n}"
            );
        }
        family(
            &mut out,
            "berth_registry_notifications_pending",
            "gauge",
            "Events waiting in the on-disk outbox, by endpoint.",
        );
        for (i, n) in &f.notifications_pending {
            let _ = writeln!(
                out,
                "berth_registry_notifications_pending{{endpoint=\"{i}\"}} {n}"
            );
        }
        if gauges.mirror_cached_bytes.is_some() {
            render_mirror(&mut out, &f, gauges);
        }
        out
    }
}

/// The mirror's families (only when a mirror is configured).
fn render_mirror(out: &mut String, f: &Families, gauges: ScrapeGauges) {
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    for (name, help, map) in [
        (
            "berth_registry_mirror_hits_total",
            "Mirrored requests answered from the cache, by upstream and kind (manifest, blob).",
            &f.mirror_hits,
        ),
        (
            "berth_registry_mirror_misses_total",
            "Mirrored requests not in the cache (fetched from, or joined a fetch from, the upstream).",
            &f.mirror_misses,
        ),
    ] {
        family(out, name, "counter", help);
        for (u, counts) in map {
            for (k, n) in MirrorKind::LABELS.iter().zip(counts) {
                let _ = writeln!(out, "{name}{{upstream=\"{u}\",kind=\"{k}\"}} {n}");
            }
        }
    }
    let name = "berth_registry_mirror_upstream_bytes_total";
    family(
        out,
        name,
        "counter",
        "Bytes of manifests and blobs received from each upstream.",
    );
    for (u, n) in &f.mirror_upstream_bytes {
        let _ = writeln!(out, "{name}{{upstream=\"{u}\"}} {n}");
    }
    let name = "berth_registry_mirror_upstream_errors_total";
    family(
        out,
        name,
        "counter",
        "Failed exchanges with each upstream, by reason (unreachable, status, not_found, unauthorized, bad_content, cut).",
    );
    for (u, reasons) in &f.mirror_upstream_errors {
        for (r, n) in reasons {
            let _ = writeln!(out, "{name}{{upstream=\"{u}\",reason=\"{r}\"}} {n}");
        }
    }
    let name = "berth_registry_mirror_cache_bytes";
    family(
        out,
        name,
        "gauge",
        "Bytes of upstream content in the cache.",
    );
    let _ = writeln!(out, "{name} {}", gauges.mirror_cached_bytes.unwrap_or(0));
    let name = "berth_registry_mirror_fills_in_progress";
    family(
        out,
        name,
        "gauge",
        "Blob downloads from upstreams in progress.",
    );
    let _ = writeln!(out, "{name} {}", gauges.mirror_fills.unwrap_or(0));
}

/// Decrements the in-flight gauge when the request ends (even if the handler is dropped).
struct InFlight(&'static str);

impl Drop for InFlight {
    fn drop(&mut self) {
        global().with(|f| *f.in_flight.entry(self.0).or_default() -= 1);
    }
}

/// The HTTP layer (`axum::middleware::from_fn`).
pub async fn layer(req: Request, next: Next) -> Response {
    let m = global();
    let handler = handler_of(req.uri().path());
    let method = method_label(req.method());
    let request_size = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    m.with(|f| *f.in_flight.entry(handler).or_default() += 1);
    let guard = InFlight(handler);
    let start = Instant::now();
    let resp = next.run(req).await;
    drop(guard);
    let status = resp.status().as_u16();
    let response_size = axum::body::HttpBody::size_hint(resp.body())
        .exact()
        .or_else(|| {
            resp.headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let response_size = response_size as f64;
    m.with(|f| {
        *f.requests
            .entry((handler, method, class(status)))
            .or_default() += 1;
        f.durations
            .entry((handler, method))
            .or_default()
            .observe(DURATION_BUCKETS, start.elapsed().as_secs_f64());
        f.request_sizes
            .entry(handler)
            .or_default()
            .observe(SIZE_BUCKETS, request_size);
        f.response_sizes
            .entry(handler)
            .or_default()
            .observe(SIZE_BUCKETS, response_size);
    });
    if status == 401 {
        m.auth_failures.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_are_templates() {
        assert_eq!(handler_of("/v2/a/b/manifests/latest"), "manifest");
        assert_eq!(handler_of("/v2/a/blobs/uploads/"), "blob_upload");
        assert_eq!(handler_of("/v2/"), "base");
        assert_eq!(handler_of("/metrics"), "metrics");
        assert_eq!(handler_of("/whatever/else"), "unknown");
    }

    #[test]
    fn exposition_has_types() {
        let m = Metrics::default();
        m.storage_action("get", Duration::from_millis(3));
        let text = m.render(ScrapeGauges {
            uploads_open: 2,
            ..ScrapeGauges::default()
        });
        assert!(
            !text.contains("berth_registry_mirror_"),
            "no mirror, no mirror families"
        );
        assert!(text.contains("# TYPE registry_storage_action_seconds histogram"));
        assert!(text.contains("berth_registry_upload_sessions_open 2"));
        assert!(text.contains("registry_storage_action_seconds_bucket{driver=\"filesystem\",action=\"get\",le=\"0.005\"} 1"));
    }

    #[test]
    fn mirror_families_are_labelled_by_upstream_and_kind() {
        let m = Metrics::default();
        m.mirror_hit("docker.io", MirrorKind::Blob);
        m.mirror_hit("docker.io", MirrorKind::Blob);
        m.mirror_miss("ghcr.io", MirrorKind::Manifest);
        m.mirror_upstream_bytes("ghcr.io", 42);
        m.mirror_upstream_error("ghcr.io", "unreachable");
        let text = m.render(ScrapeGauges {
            mirror_cached_bytes: Some(7),
            mirror_fills: Some(1),
            ..ScrapeGauges::default()
        });
        for line in [
            "berth_registry_mirror_hits_total{upstream=\"docker.io\",kind=\"blob\"} 2",
            "berth_registry_mirror_misses_total{upstream=\"ghcr.io\",kind=\"manifest\"} 1",
            "berth_registry_mirror_upstream_bytes_total{upstream=\"ghcr.io\"} 42",
            "berth_registry_mirror_upstream_errors_total{upstream=\"ghcr.io\",reason=\"unreachable\"} 1",
            "berth_registry_mirror_cache_bytes 7",
            "berth_registry_mirror_fills_in_progress 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
