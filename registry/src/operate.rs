//! Running the registry in operation (issue 11): wires metrics, health, notifications and
//! scheduled GC around the API router, and the `berth-registry gc` command.
//!
//! Calls `crate::gc`, `crate::metrics`, `crate::notify`; `main.rs` calls [`start`] once the
//! listener is bound and [`gc_command`] for the subcommand; `crate::app` calls [`instrument`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::middleware;
use axum::Router;
use berth_config::registry::Overrides;
use berth_config::RegistryConfig;

use crate::gc::{self, GcOptions};
use crate::service::Registry;

/// Adds the notification listener and the metrics layer to `router`, and the ops routes
/// (`/metrics`, `/livez`, `/readyz`, `/_berth/gc`) unless `[metrics] addr` puts them elsewhere.
pub fn instrument(router: Router, registry: &Arc<Registry>) -> Router {
    let mut app = router;
    match crate::notify::Notifier::new(registry.config()) {
        Ok(Some(n)) => {
            let _ = registry.notifier.set(n.clone());
            app = app.layer(middleware::from_fn_with_state(n, crate::notify::layer));
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot open the notification outbox; notifications are off")
        }
    }
    if !registry.config().ops.retention.is_empty() {
        app = app.layer(middleware::from_fn_with_state(
            registry.clone(),
            crate::gc::retention::pull_layer,
        ));
    }
    if registry.config().ops.metrics.addr.is_none() {
        app = app.merge(
            crate::metrics::routes(registry.clone())
                .layer(middleware::from_fn(crate::api::access_log::access_log)),
        );
    }
    app.layer(middleware::from_fn(crate::metrics::layer))
}

/// What [`start`] started; stops it on drop.
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _lock: gc::serving::ServingLock,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Holds the serving lock, starts notification delivery, the GC schedule and the separate
/// metrics listener. `api_addr` is where this server answers.
///
/// # Errors
/// When an offline GC holds the directory or the metrics address cannot be bound.
pub async fn start(registry: Arc<Registry>, api_addr: SocketAddr) -> anyhow::Result<Running> {
    let cfg = registry.config().clone();
    let ops_addr = cfg.ops.metrics.addr.unwrap_or(api_addr);
    let mut url_addr = ops_addr;
    if url_addr.ip().is_unspecified() {
        url_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let _ = registry.gc_gate().admin_token.set(token.clone());
    let lock = gc::serving::hold(&cfg.data_dir, &format!("http://{url_addr}"), &token)
        .with_context(|| format!("cannot lock `{}`", cfg.data_dir.display()))?;
    let mut tasks = Vec::new();
    if let Some(n) = registry.notifier.get() {
        tasks.extend(n.start());
    }
    if cfg.ops.gc.interval_secs > 0 {
        let r = registry.clone();
        let every = Duration::from_secs(cfg.ops.gc.interval_secs);
        let grace = Duration::from_secs(cfg.ops.gc.grace_secs);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let opts = GcOptions {
                    dry_run: false,
                    grace,
                    retention: true,
                };
                match gc::run(r.clone(), opts).await {
                    Ok(rep) => tracing::info!(
                        blobs = rep.blobs.len(),
                        bytes_freed = rep.bytes_freed,
                        tags_removed = rep.retention.tags.len(),
                        manifests_removed = rep.retention.manifests.len(),
                        duration_ms = rep.duration_ms,
                        "garbage collection finished"
                    ),
                    Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
                }
            }
        }));
    }
    if let Some(addr) = cfg.ops.metrics.addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on [metrics] addr {addr}"))?;
        tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "metrics and health listening");
        let app = crate::metrics::routes(registry.clone())
            .layer(middleware::from_fn(crate::api::access_log::access_log))
            .layer(middleware::from_fn(crate::metrics::layer));
        tasks.push(tokio::spawn(async move {
            let svc = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, svc).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        }));
    }
    Ok(Running { tasks, _lock: lock })
}

/// `berth-registry gc`: runs here when no server serves the directory, else asks the server
/// (`POST /_berth/gc`). Returns the JSON report.
///
/// # Errors
/// Configuration, storage or server errors.
pub fn gc_command(
    config_file: Option<&Path>,
    data_dir: Option<std::path::PathBuf>,
    dry_run: bool,
) -> anyhow::Result<String> {
    let env = |k: &str| std::env::var(k).ok();
    let overrides = Overrides {
        data_dir,
        ..Overrides::default()
    };
    let config = RegistryConfig::load(config_file, &env, &overrides)
        .context("cannot load the registry configuration")?;
    let grace = Duration::from_secs(config.ops.gc.grace_secs);
    match gc::serving::offline(&config.data_dir)
        .with_context(|| format!("cannot lock `{}`", config.data_dir.display()))?
    {
        gc::serving::Offline::Exclusive(_lock) => {
            let driver = crate::storage::fs::FsDriver::new(&config.data_dir)?;
            let registry = Registry::new(Arc::new(driver), config);
            let report = gc::run_blocking(
                &registry,
                GcOptions {
                    dry_run,
                    grace,
                    retention: true,
                },
            )?;
            // Compact: a report lists every blob, and may be large.
            Ok(serde_json::to_string(&report)?)
        }
        gc::serving::Offline::Served(url, token) => {
            tracing::info!(
                server = url,
                "a server serves this directory; asking it to collect"
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let resp = reqwest::Client::new()
                    .post(format!("{url}/_berth/gc?dry_run={dry_run}"))
                    .header(crate::metrics::GC_TOKEN_HEADER, token)
                    .send()
                    .await
                    .with_context(|| format!("cannot reach the server at {url}"))?;
                let status = resp.status();
                let text = resp.text().await?;
                anyhow::ensure!(status.is_success(), "the server answered {status}: {text}");
                Ok(text)
            })
        }
    }
}
