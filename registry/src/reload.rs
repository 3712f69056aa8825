//! Reloading users, groups, rules, token keys and TLS certificates while serving: on `SIGHUP`,
//! and when one of the files changes (modification time and size polled every
//! [`POLL_INTERVAL`]). Established connections are untouched; a configuration that fails to
//! load is logged and the previous one stays.
//!
//! May call: `crate::auth`, `crate::tls`, `berth_config`. Called by: `main`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_config::RegistryConfig;

use crate::auth::Auth;
use crate::tls::TlsAcceptor;

/// How often the files are looked at.
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);

/// What to reload, and how to read the configuration again.
pub struct Reloader {
    /// Re-reads the configuration (file, environment, flags).
    pub load: Box<dyn Fn() -> anyhow::Result<RegistryConfig> + Send + Sync>,
    /// The configuration file, if any (watched too).
    pub config_file: Option<PathBuf>,
    /// The authenticator, with `[auth]`.
    pub auth: Option<Arc<Auth>>,
    /// The TLS acceptor, with `[tls]`.
    pub tls: Option<Arc<TlsAcceptor>>,
}

type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

impl Reloader {
    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.config_file.iter().cloned().collect();
        if let Some(a) = &self.auth {
            v.extend(a.watched_files());
        }
        if let Some(t) = &self.tls {
            v.extend(t.watched_files());
        }
        v
    }

    fn stamp(&self) -> Stamp {
        self.files()
            .into_iter()
            .map(|p| {
                let m = std::fs::metadata(&p)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                (p, m)
            })
            .collect()
    }

    /// Reloads everything now.
    pub fn reload(&self, why: &str) {
        let config = match (self.load)() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    why,
                    "reload failed: keeping the previous configuration"
                );
                return;
            }
        };
        if let (Some(auth), Some(cfg)) = (&self.auth, &config.auth) {
            match auth.reload(cfg) {
                Ok(()) => tracing::info!(
                    why,
                    users = auth.state().users.len(),
                    "reloaded users, rules and token keys"
                ),
                Err(e) => {
                    tracing::error!(error = %e, why, "reloading [auth] failed: keeping the previous one")
                }
            }
        }
        if let (Some(tls), Some(cfg)) = (&self.tls, &config.tls) {
            match tls.reload(Some(cfg)) {
                Ok(()) => tracing::info!(why, "reloaded the TLS certificate"),
                Err(e) => {
                    tracing::error!(error = %e, why, "reloading [tls] failed: keeping the previous certificate")
                }
            }
        }
    }

    /// Runs forever: reloads on `SIGHUP` and when a watched file changes.
    pub async fn run(self) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler; reloading on file changes only");
                None
            }
        };
        let mut last = self.stamp();
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.tick().await;
        loop {
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hup_recv => {
                    self.reload("SIGHUP");
                    last = self.stamp();
                }
                _ = tick.tick() => {
                    let now = self.stamp();
                    if now != last {
                        self.reload("file changed");
                        last = self.stamp();
                    }
                }
            }
        }
    }
}
