//! `run`/`create`'s security flags applied to the container's spec: `--cap-add`,
//! `--cap-drop`, `--privileged` and `--security-opt`, with Docker's rules and messages.
//!
//! Capabilities follow moby's `TweakCapabilities`: `ALL` in `--cap-add` gives every capability
//! the kernel knows but those dropped; `ALL` in `--cap-drop` starts from none and adds the
//! added ones; otherwise Docker's default set minus the dropped plus the added. Names are taken
//! with or without `CAP_`, in any case. `--privileged` gives every capability, no seccomp
//! filter, no masked or read-only paths, `/sys` read-write, and every device (the device rules
//! are [`berth_runtime::spec`]'s). Calls only the runtime's spec types (no other module of
//! the crate).

use std::collections::BTreeSet;

use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder, Spec};

/// A capability or `--security-opt` Docker (or Berth) refuses; Docker's daemon wording.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// `--cap-add`/`--cap-drop` names no capability.
    #[error("Error response from daemon: invalid {flag}: unknown capability: {name:?}")]
    UnknownCapability {
        /// `CapAdd` or `CapDrop`.
        flag: &'static str,
        /// The name, normalised (`CAP_` prefix, upper case).
        name: String,
    },
    /// The seccomp profile for the capabilities cannot be built.
    #[error(transparent)]
    Seccomp(#[from] berth_runtime::seccomp::SeccompError),
    /// oci-spec refused the capability sets.
    #[error(transparent)]
    Build(#[from] oci_spec::OciSpecError),
    /// `seccomp=PROFILE`: custom profiles are not supported.
    #[error("Error response from daemon: opening seccomp profile ({0}) failed: custom seccomp profiles are not supported by berth yet; use `seccomp=unconfined` or leave the default")]
    SeccompProfile(String),
    /// `apparmor=PROFILE` on a host that runs AppArmor.
    #[error("Error response from daemon: AppArmor profile `{0}` cannot be applied: berth does not load AppArmor profiles; use `apparmor=unconfined`")]
    AppArmorProfile(String),
    /// `apparmor=PROFILE` on a host without AppArmor.
    #[error("Error response from daemon: AppArmor is not enabled on this host: `--security-opt apparmor={0}` cannot be applied")]
    NoAppArmor(String),
    /// `label=LABEL` on a host that runs SELinux.
    #[error("Error response from daemon: SELinux label `{0}` cannot be applied: berth does not set SELinux labels; use `label=disable`")]
    SelinuxLabel(String),
    /// `label=LABEL` on a host without SELinux.
    #[error("Error response from daemon: SELinux is not enabled on this host: `--security-opt label={0}` cannot be applied")]
    NoSelinux(String),
    /// Any other option.
    #[error("Error response from daemon: invalid --security-opt: {0:?}")]
    Invalid(String),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, SecurityError>;

/// Docker's spelling of a capability name: upper case with the `CAP_` prefix.
fn normalize(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// Every capability this kernel supports that berth itself may pass on (its bounding set:
/// a host may withhold one, e.g. `CAP_SYS_RESOURCE`, and asking for it would fail), as `CAP_…`
/// names.
fn all_supported() -> BTreeSet<String> {
    let bounding = caps::read(None, caps::CapSet::Bounding).unwrap_or_default();
    caps::runtime::thread_all_supported()
        .into_iter()
        .filter(|c| bounding.contains(c))
        .map(|c| c.to_string())
        .collect()
}

/// The capability set for `--cap-add`/`--cap-drop`/`--privileged` (moby's
/// `TweakCapabilities`), as `CAP_…` names.
///
/// # Errors
/// A name that is not a capability, in Docker's words.
pub fn capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<BTreeSet<String>> {
    let all = all_supported();
    if privileged {
        return Ok(all);
    }
    let known = |flag: &'static str, list: &[String]| -> Result<Vec<String>> {
        list.iter()
            .map(|c| {
                let n = normalize(c);
                if n != "ALL" && n.parse::<caps::Capability>().is_err() {
                    return Err(SecurityError::UnknownCapability {
                        flag,
                        name: n.clone(),
                    });
                }
                Ok(n)
            })
            .collect()
    };
    let add = known("CapAdd", cap_add)?;
    let drop = known("CapDrop", cap_drop)?;
    let out: BTreeSet<String> = if add.iter().any(|c| c == "ALL") {
        all.into_iter().filter(|c| !drop.contains(c)).collect()
    } else if drop.iter().any(|c| c == "ALL") {
        add.into_iter().collect()
    } else {
        berth_runtime::spec::DEFAULT_CAPS
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    Ok(out)
}

/// Sets the spec's bounding, effective and permitted sets to `caps` (inheritable and ambient
/// stay empty: CVE-2022-24769), and its seccomp profile (when it has one) to moby's for those
/// capabilities: `--cap-add SYS_PTRACE` also opens `ptrace`, `pidfd_getfd`, …, as in Docker.
///
/// # Errors
/// A name oci-spec does not know; the profile cannot be built.
pub fn set_capabilities(spec: &mut Spec, caps: &BTreeSet<String>) -> Result<()> {
    if let Some(mut linux) = spec.linux().clone() {
        if linux.seccomp().is_some() {
            let names: Vec<&String> = caps.iter().collect();
            linux.set_seccomp(Some(berth_runtime::seccomp::docker_profile(&names)?));
            spec.set_linux(Some(linux));
        }
    }
    let set: std::collections::HashSet<Capability> = caps
        .iter()
        .filter_map(|c| c.trim_start_matches("CAP_").parse().ok())
        .collect();
    let Some(mut process) = spec.process().clone() else {
        return Ok(());
    };
    process.set_capabilities(Some(
        LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .effective(set.clone())
            .permitted(set)
            .inheritable(std::collections::HashSet::new())
            .ambient(std::collections::HashSet::new())
            .build()?,
    ));
    spec.set_process(Some(process));
    Ok(())
}

/// `--privileged`'s changes besides capabilities and devices: no seccomp filter, nothing
/// masked or read-only, `/sys` read-write.
pub fn unconfine(spec: &mut Spec) {
    if let Some(mut linux) = spec.linux().clone() {
        linux.set_seccomp(None);
        linux.set_masked_paths(Some(vec![]));
        linux.set_readonly_paths(Some(vec![]));
        spec.set_linux(Some(linux));
    }
    if let Some(mut mounts) = spec.mounts().clone() {
        for m in &mut mounts {
            if m.destination().as_os_str() == "/sys" {
                let opts: Vec<String> = m
                    .options()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|o| o != "ro")
                    .collect();
                m.set_options(Some(opts));
            }
        }
        spec.set_mounts(Some(mounts));
    }
}

/// Whether the host runs AppArmor (`/sys/module/apparmor/parameters/enabled` is `Y`).
fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y")
}

/// Whether the host runs SELinux.
fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// `--security-opt`: `seccomp=unconfined` drops the default seccomp profile;
/// `no-new-privileges` (or `=true`) sets `process.noNewPrivileges`; `apparmor=unconfined` and
/// `label=disable` are what berth does anyway; other AppArmor profiles and SELinux labels are
/// refused with the reason (berth loads neither).
///
/// # Errors
/// Any other option, in Docker's words.
pub fn apply_security_opts(spec: &mut Spec, opts: &[String]) -> Result<()> {
    for opt in opts {
        let (key, value) = opt
            .split_once(['=', ':'])
            .map_or((opt.as_str(), None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("seccomp", Some("unconfined")) => {
                if let Some(mut linux) = spec.linux().clone() {
                    linux.set_seccomp(None);
                    spec.set_linux(Some(linux));
                }
            }
            ("no-new-privileges", None | Some("true" | "false")) => {
                if let Some(mut p) = spec.process().clone() {
                    p.set_no_new_privileges(Some(value != Some("false")));
                    spec.set_process(Some(p));
                }
            }
            ("seccomp", Some(profile)) => {
                return Err(SecurityError::SeccompProfile(profile.to_owned()))
            }
            ("apparmor", Some("unconfined")) | ("label", Some("disable")) => {}
            ("apparmor", Some(profile)) => {
                if apparmor_enabled() {
                    return Err(SecurityError::AppArmorProfile(profile.to_owned()));
                }
                return Err(SecurityError::NoAppArmor(profile.to_owned()));
            }
            ("label", Some(label)) => {
                if selinux_enabled() {
                    return Err(SecurityError::SelinuxLabel(label.to_owned()));
                }
                return Err(SecurityError::NoSelinux(label.to_owned()));
            }
            _ => return Err(SecurityError::Invalid(opt.clone())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn capabilities_follow_mobys_rules() {
        let default: BTreeSet<String> = berth_runtime::spec::DEFAULT_CAPS
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        assert_eq!(capabilities(&[], &[], false).unwrap(), default);
        let c = capabilities(
            &s(&["sys_ptrace", "CAP_NET_ADMIN"]),
            &s(&["net_raw"]),
            false,
        )
        .unwrap();
        assert!(c.contains("CAP_SYS_PTRACE") && c.contains("CAP_NET_ADMIN"));
        assert!(!c.contains("CAP_NET_RAW"));
        assert_eq!(
            capabilities(&s(&["chown"]), &s(&["all"]), false).unwrap(),
            BTreeSet::from(["CAP_CHOWN".to_owned()])
        );
        let all = capabilities(&s(&["ALL"]), &s(&["SYS_ADMIN"]), false).unwrap();
        assert!(all.contains("CAP_SYS_MODULE") && !all.contains("CAP_SYS_ADMIN"));
        assert!(capabilities(&[], &[], true)
            .unwrap()
            .contains("CAP_SYS_ADMIN"));
        let e = capabilities(&s(&["FOO"]), &[], false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error response from daemon: invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
    }

    #[test]
    fn security_opts_refuse_what_berth_cannot_apply() {
        let mut spec = Spec::default();
        apply_security_opts(&mut spec, &s(&["apparmor=unconfined", "label=disable"])).unwrap();
        for bad in ["apparmor=docker-default", "label=type:svirt_t", "bogus"] {
            let e = apply_security_opts(&mut spec, &s(&[bad])).unwrap_err();
            assert!(
                e.to_string().starts_with("Error response from daemon:"),
                "{e}"
            );
        }
    }
}
