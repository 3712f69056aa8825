//! `update`: a container's restart policy and resource limits, changed while it runs or not,
//! as Docker's `update` changes them. The limits go into its `config.json` (so every later
//! start has them) and, while it runs, into its cgroups at once; the kernel's refusal (memory
//! below what the container uses, say) leaves `config.json` as it was (a limit written before
//! the refused one, such as v1's memory + swap, may stay in the cgroup).
//!
//! May call [`super::state`], [`super::lock`], [`super::restart`] and `berth_runtime` (the
//! spec's limits, the cgroups).

use std::path::Path;

use berth_runtime::cgroups::{self, CgroupManager as _};
use berth_runtime::spec::ResourceLimits;
use oci_spec::runtime::Spec;

use super::lock::Lock;
use super::restart::RestartPolicy;
use super::state::{self, StateError, Status};

/// A container could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// No such container, or its state cannot be written.
    #[error(transparent)]
    State(#[from] StateError),
    /// `--restart` on a `--rm` container (Docker's message).
    #[error("Error response from daemon: Cannot update container {0}: Restart policy cannot be updated because AutoRemove is enabled for the container")]
    AutoRemove(String),
    /// A limit the spec cannot hold.
    #[error(transparent)]
    Limits(#[from] berth_runtime::spec::SpecError),
    /// `config.json` cannot be read or written.
    #[error("cannot read or write the configuration of container {container}")]
    Spec {
        /// The container's name.
        container: String,
        /// Why.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// The running container's cgroups refused the new limits.
    #[error("Error response from daemon: Cannot update container {container}: the kernel refused the new limits")]
    Cgroups {
        /// The container's name.
        container: String,
        /// Why.
        #[source]
        source: cgroups::CgroupError,
    },
}

/// What to change; `None` and unset limits stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// `--restart`.
    pub restart: Option<RestartPolicy>,
    /// `-m`, `--memory-swap`, `--cpus`, `-c`, `--pids-limit`.
    pub limits: ResourceLimits,
}

/// Updates container `name` (a name or ID).
///
/// # Errors
/// See [`UpdateError`].
pub fn update(data_root: &Path, name: &str, opts: &UpdateOptions) -> Result<(), UpdateError> {
    let (dir, _) = state::find(data_root, name)?;
    let lock = Lock::take(&dir).map_err(StateError::from)?;
    let mut st = state::load(&dir)?;
    if let Some(policy) = opts.restart {
        if st.auto_remove && !policy.is_none() {
            return Err(UpdateError::AutoRemove(name.to_owned()));
        }
    }
    if opts.limits != ResourceLimits::default() {
        let spec_err = |source| UpdateError::Spec {
            container: st.name.clone(),
            source,
        };
        let path = dir.join("config.json");
        let mut spec = Spec::load(&path).map_err(spec_err)?;
        berth_runtime::spec::merge_limits(&mut spec, &opts.limits)?;
        let linux = spec.linux().as_ref();
        let cgroups_path = linux.and_then(|l| l.cgroups_path().clone());
        let resources = linux
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        // Between two runs of a restart policy its cgroups are gone: the next run reads
        // config.json.
        let live = st.status() == Status::Running && !st.restarting;
        if let (true, Some(cg)) = (live, cgroups_path) {
            let cg_err = |source| UpdateError::Cgroups {
                container: st.name.clone(),
                source,
            };
            let layout = cgroups::detect_host().map_err(cg_err)?;
            cgroups::Manager::new(&layout, &cg.to_string_lossy())
                .and_then(|m| m.update(&resources))
                .map_err(cg_err)?;
        }
        // Written whole next to it, then renamed over it: a reader sees the old or the new.
        let json = serde_json::to_vec_pretty(&spec)
            .map_err(|e| spec_err(oci_spec::OciSpecError::Io(std::io::Error::other(e))))?;
        crate::store::Store::write_atomic(&path, &json)
            .map_err(|e| spec_err(oci_spec::OciSpecError::Io(std::io::Error::other(e))))?;
    }
    if let Some(policy) = opts.restart {
        st.restart_policy = policy;
        state::save(&dir, &st, &lock)?;
    }
    Ok(())
}
