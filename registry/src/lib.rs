//! `berth-registry`: an OCI Distribution v1.1 registry on local disk.
//!
//! Layers, top to bottom: [`api`] (HTTP, thin handlers) → [`service`] (registry logic) →
//! [`storage`] (path-keyed driver). [`route`] and [`digest`] are pure helpers. The binary
//! (`main.rs`) parses arguments, loads `berth_config::RegistryConfig` and calls [`app`].
//! [`auth`] is a layer in front of the API (and the token server beside it); [`tls`] turns
//! accepted TCP streams into TLS streams.

pub mod api;
pub mod auth;
pub mod digest;
pub mod gc;
pub mod metrics;
pub mod mirror;
pub mod notify;
pub mod operate;
pub mod reload;
pub mod route;
pub mod server;
pub mod service;
pub mod storage;
pub mod tls;

use std::sync::Arc;

pub use api::router;
pub use berth_config::RegistryConfig;
pub use service::Registry;

/// Why [`app`] could not build the registry.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The data directory is unusable.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Users, rules or token keys could not be loaded.
    #[error("cannot load the [auth] configuration")]
    Auth(#[from] auth::AuthError),
    /// The mirror's cache directory or an upstream could not be set up.
    #[error(transparent)]
    Mirror(#[from] mirror::MirrorSetupError),
}

/// A registry on the filesystem driver at `config.data_dir`, and its router (with the auth
/// layer when `config.auth` is set).
///
/// # Errors
/// When the data directory cannot be created or the auth files cannot be loaded.
pub fn app(config: RegistryConfig) -> Result<(Arc<Registry>, axum::Router), AppError> {
    let (registry, _, router) = app_with_auth(config)?;
    Ok((registry, router))
}

/// What [`app_with_auth`] builds: the registry, its authentication (when configured) and the
/// router serving both.
pub type App = (Arc<Registry>, Option<Arc<auth::Auth>>, axum::Router);

/// [`app`], also returning the [`auth::Auth`] handle (to reload it).
///
/// # Errors
/// As [`app`].
pub fn app_with_auth(config: RegistryConfig) -> Result<App, AppError> {
    let driver = storage::fs::FsDriver::new(&config.data_dir)?;
    let auth = match &config.auth {
        Some(a) => Some(Arc::new(auth::Auth::new(
            a,
            &config.data_dir,
            config.tls.is_some(),
        )?)),
        None => None,
    };
    // One set of upload/download slots for local and mirrored content.
    let slots = service::slots::Slots::new(&config.limits);
    let mirror = mirror::Mirror::from_config(&config, slots.clone())?;
    let registry = Arc::new(Registry::with_slots(
        Arc::new(metrics::TimedDriver(driver)),
        config,
        slots,
    ));
    if let Some(m) = mirror {
        let _ = registry.mirror.set(m);
    }
    let router = api::router_with_auth(registry.clone(), auth.clone());
    let router = operate::instrument(router, &registry);
    Ok((registry, auth, router))
}
