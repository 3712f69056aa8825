//! `berth-registry`: an OCI Distribution v1.1 registry on local disk.
//!
//! Layers, top to bottom: [`api`] (HTTP, thin handlers) → [`service`] (registry logic) →
//! [`storage`] (path-keyed driver). [`route`] and [`digest`] are pure helpers. The binary
//! (`main.rs`) parses arguments, loads `berth_config::RegistryConfig` and calls [`app`].

pub mod api;
pub mod digest;
pub mod route;
pub mod service;
pub mod storage;

use std::sync::Arc;

pub use api::router;
pub use berth_config::RegistryConfig;
pub use service::Registry;

/// A registry on the filesystem driver at `config.data_dir`, and its router.
///
/// # Errors
/// When the data directory cannot be created.
pub fn app(config: RegistryConfig) -> Result<(Arc<Registry>, axum::Router), storage::StorageError> {
    let driver = storage::fs::FsDriver::new(&config.data_dir)?;
    let registry = Arc::new(Registry::new(Arc::new(driver), config));
    Ok((registry.clone(), router(registry)))
}
