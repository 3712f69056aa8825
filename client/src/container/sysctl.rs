//! `--sysctl KEY=VALUE`: Docker's rules for which kernel parameters a container may set, and
//! the spec's `linux.sysctl` (the runtime writes them in the container's namespaces).
//!
//! Only namespaced parameters are allowed (docker/cli `opts.ValidateSysctl`): the IPC ones
//! (`kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`, `kernel.shmall`,
//! `kernel.shmmax`, `kernel.shmmni`, `kernel.shm_rmid_forced`, `fs.mqueue.*`; refused with
//! `--ipc host` by [`super::namespaces`]) and the network ones (`net.*`), which need a network
//! namespace of the container's own: they are refused with `--network host` and when
//! `--network container:NAME` joins the host's. The list is the runtime's
//! ([`berth_runtime::spec::sysctl_namespace`]), which refuses them again where the namespace is
//! the host's.
//!
//! Calls nothing else in the crate.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use berth_runtime::spec::Network;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A `--sysctl` Docker refuses.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Not namespaced, or no `=` (the CLI's wording).
    #[error("invalid argument \"{0}\" for \"--sysctl\" flag: sysctl '{0}' is not allowed")]
    NotAllowed(String),
    /// A `net.*` parameter with `--network host` (the wording of runc, which refuses it for
    /// Docker).
    #[error("Error response from daemon: sysctl \"{0}\" not allowed in host network namespace")]
    HostNetwork(String),
}

/// `--sysctl` values as Docker's `HostConfig.Sysctls` (a later value for a key wins).
///
/// # Errors
/// A value without `=`, or a parameter that is not namespaced.
pub fn parse(values: &[String]) -> Result<BTreeMap<String, String>, SysctlError> {
    let mut out = BTreeMap::new();
    for v in values {
        let (key, value) = v
            .split_once('=')
            .ok_or_else(|| SysctlError::NotAllowed(v.clone()))?;
        let allowed = matches!(
            berth_runtime::spec::sysctl_namespace(key),
            Some(LinuxNamespaceType::Ipc | LinuxNamespaceType::Network)
        );
        // The runtime writes under /proc/sys: no key may leave it.
        let safe = !key.contains('/') && !key.split('.').any(str::is_empty);
        if !allowed || !safe {
            return Err(SysctlError::NotAllowed(v.clone()));
        }
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(out)
}

/// Refuses `net.*` parameters when the container shares the host's network namespace:
/// `--network host`, or a joined namespace (`--network container:NAME` of a host-network
/// container) that is this process's own, as runc checks.
///
/// # Errors
/// [`SysctlError::HostNetwork`].
pub fn check_network(
    sysctls: &BTreeMap<String, String>,
    network: Network,
    joined: Option<&Path>,
) -> Result<(), SysctlError> {
    let Some(k) = sysctls.keys().find(|k| k.starts_with("net.")) else {
        return Ok(());
    };
    let id = |p: &Path| fs_err::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let host_netns = joined.is_some_and(|p| {
        let theirs = id(p);
        theirs.is_none() || theirs == id(Path::new("/proc/self/ns/net"))
    });
    if network == Network::Host || host_netns {
        return Err(SysctlError::HostNetwork(k.clone()));
    }
    Ok(())
}

/// Sets `linux.sysctl` (nothing when there are none).
pub fn apply(spec: &mut Spec, sysctls: &BTreeMap<String, String>) {
    if sysctls.is_empty() {
        return;
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut all = linux.sysctl().clone().unwrap_or_default();
    all.extend(sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
    linux.set_sysctl(Some(all));
    spec.set_linux(Some(linux));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_parameters_pass() {
        let ok = parse(&[
            "net.ipv4.ip_forward=1".into(),
            "kernel.shmmax=1048576".into(),
            "fs.mqueue.msg_max=20".into(),
            "kernel.sem=250 32000 32 128".into(),
            "net.ipv4.ip_forward=0".into(),
        ])
        .unwrap();
        assert_eq!(ok["net.ipv4.ip_forward"], "0");
        assert_eq!(ok["kernel.sem"], "250 32000 32 128");
        for bad in [
            "kernel.hostname=x",
            "vm.swappiness=1",
            "net.ipv4.ip_forward",
            "net/../x=1",
            "net..x=1",
        ] {
            assert_eq!(
                parse(&[bad.into()]).unwrap_err().to_string(),
                format!("invalid argument \"{bad}\" for \"--sysctl\" flag: sysctl '{bad}' is not allowed")
            );
        }
        let net = parse(&["net.core.somaxconn=1024".into()]).unwrap();
        assert!(check_network(&net, Network::Bridge, None).is_ok());
        assert!(check_network(&net, Network::None, None).is_ok());
        assert_eq!(
            check_network(&net, Network::Host, None).unwrap_err().to_string(),
            "Error response from daemon: sysctl \"net.core.somaxconn\" not allowed in host network namespace"
        );
        // A joined namespace that is the host's own.
        let own = Path::new("/proc/self/ns/net");
        assert!(check_network(&net, Network::None, Some(own)).is_err());
        let ipc = parse(&["kernel.shmmax=1".into()]).unwrap();
        assert!(check_network(&ipc, Network::Host, None).is_ok());
    }
}
