//! `--uts` and `--ipc`: which of a new container's namespaces are the host's (Docker's
//! `HostConfig.UTSMode` and `IpcMode`), checked with Docker's words and applied to its spec.
//!
//! With `--uts host` the container keeps the host's UTS namespace: the host's hostname, no
//! `-h`. With `--ipc host` it keeps the host's IPC namespace and sees the host's `/dev/shm`;
//! `--ipc none` keeps a private namespace without a `/dev/shm` mount. Sysctls of a namespace the
//! container shares with the host are refused: they would change the host's values.
//!
//! Calls nothing else of the container layer.

use oci_spec::runtime::{LinuxNamespaceType, MountBuilder, Spec};

/// A mode Docker refuses, or a combination it refuses.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    /// `--uts` other than `host`.
    #[error("--uts: invalid UTS mode")]
    Uts,
    /// `--ipc` other than Docker's modes.
    #[error("--ipc: invalid IPC mode")]
    Ipc,
    /// `--ipc container:NAME`.
    #[error("--ipc {0}: sharing another container's IPC namespace is not supported; use `host`, `private`, `shareable` or `none`")]
    IpcContainer(String),
    /// `-h` with `--uts host`.
    #[error("Error response from daemon: conflicting options: hostname and the UTS mode")]
    Hostname,
    /// An IPC sysctl with `--ipc host`.
    #[error(
        "Error response from daemon: sysctl \"{0}\" is not allowed in the hosts ipc namespace"
    )]
    HostIpcSysctl(String),
    /// Building the `/dev/shm` mount.
    #[error(transparent)]
    Spec(#[from] oci_spec::OciSpecError),
}

/// `--ipc`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpcMode {
    /// A namespace of its own with a private `/dev/shm` (Docker's default).
    #[default]
    Private,
    /// As private here (Docker lets other containers join it).
    Shareable,
    /// A namespace of its own, no `/dev/shm` mount.
    None,
    /// The host's namespace and `/dev/shm`.
    Host,
}

impl IpcMode {
    /// Docker's name (`HostConfig.IpcMode`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Shareable => "shareable",
            Self::None => "none",
            Self::Host => "host",
        }
    }
}

/// The namespace modes of `run`/`create`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    /// `--uts host`.
    pub uts_host: bool,
    /// `--ipc`.
    pub ipc: IpcMode,
}

impl Modes {
    /// `--uts` and `--ipc` as given.
    ///
    /// # Errors
    /// A mode Docker does not have, or `--ipc container:NAME`.
    pub fn parse(uts: Option<&str>, ipc: Option<&str>) -> Result<Self, ModeError> {
        let uts_host = match uts.unwrap_or("") {
            "" => false,
            "host" => true,
            _ => return Err(ModeError::Uts),
        };
        let ipc = match ipc.unwrap_or("") {
            "" | "private" => IpcMode::Private,
            "shareable" => IpcMode::Shareable,
            "none" => IpcMode::None,
            "host" => IpcMode::Host,
            other
                if other
                    .strip_prefix("container:")
                    .is_some_and(|n| !n.is_empty()) =>
            {
                return Err(ModeError::IpcContainer(other.to_owned()))
            }
            _ => return Err(ModeError::Ipc),
        };
        Ok(Self { uts_host, ipc })
    }

    /// Refuses `-h` with `--uts host`, and sysctls of the host's IPC namespace.
    ///
    /// # Errors
    /// [`ModeError::Hostname`], [`ModeError::HostIpcSysctl`].
    pub fn check<'a>(
        self,
        hostname: Option<&str>,
        mut sysctls: impl Iterator<Item = &'a String>,
    ) -> Result<(), ModeError> {
        if self.uts_host && hostname.is_some() {
            return Err(ModeError::Hostname);
        }
        if self.ipc == IpcMode::Host {
            if let Some(k) = sysctls
                .find(|k| berth_runtime::spec::sysctl_namespace(k) == Some(LinuxNamespaceType::Ipc))
            {
                return Err(ModeError::HostIpcSysctl(k.clone()));
            }
        }
        Ok(())
    }

    /// Drops the namespaces shared with the host from `spec` (and its hostname with them), and
    /// makes `/dev/shm` the host's (`host`) or leaves it out (`none`).
    ///
    /// # Errors
    /// oci-spec refusing the mount.
    pub fn apply(self, spec: &mut Spec) -> Result<(), ModeError> {
        let shared: Vec<LinuxNamespaceType> = [
            self.uts_host.then_some(LinuxNamespaceType::Uts),
            (self.ipc == IpcMode::Host).then_some(LinuxNamespaceType::Ipc),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(mut linux) = spec.linux().clone() {
            if let Some(ns) = linux.namespaces().clone() {
                linux.set_namespaces(Some(
                    ns.into_iter()
                        .filter(|n| !shared.contains(&n.typ()))
                        .collect(),
                ));
            }
            spec.set_linux(Some(linux));
        }
        if self.uts_host {
            spec.set_hostname(None);
        }
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        let shm = std::path::Path::new("/dev/shm");
        match self.ipc {
            IpcMode::Host => {
                for m in &mut mounts {
                    if m.destination() == shm {
                        *m = MountBuilder::default()
                            .destination("/dev/shm")
                            .typ("bind")
                            .source("/dev/shm")
                            .options(vec!["rbind".to_owned(), "rprivate".to_owned()])
                            .build()?;
                    }
                }
            }
            IpcMode::None => mounts.retain(|m| m.destination() != shm),
            IpcMode::Private | IpcMode::Shareable => {}
        }
        spec.set_mounts(Some(mounts));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        berth_runtime::spec::build(
            None,
            &berth_runtime::spec::RunOptions {
                hostname: "c1".into(),
                env: Vec::new(),
                workdir: None,
                user: None,
                entrypoint: None,
                command: vec!["true".into()],
                network: berth_runtime::spec::Network::None,
                etc_files: Vec::new(),
            },
            std::path::Path::new("/nonexistent/rootfs"),
        )
        .unwrap()
    }

    fn namespaces(s: &Spec) -> Vec<LinuxNamespaceType> {
        s.linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    fn shm(s: &Spec) -> Option<oci_spec::runtime::Mount> {
        s.mounts()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.destination() == std::path::Path::new("/dev/shm"))
    }

    #[test]
    fn modes_are_parsed_with_dockers_words() {
        assert_eq!(Modes::parse(None, None).unwrap(), Modes::default());
        let m = Modes::parse(Some("host"), Some("host")).unwrap();
        assert!(m.uts_host);
        assert_eq!(m.ipc, IpcMode::Host);
        for (ipc, want) in [
            ("private", IpcMode::Private),
            ("shareable", IpcMode::Shareable),
            ("none", IpcMode::None),
        ] {
            assert_eq!(Modes::parse(None, Some(ipc)).unwrap().ipc, want);
        }
        assert_eq!(
            Modes::parse(Some("private"), None).unwrap_err().to_string(),
            "--uts: invalid UTS mode"
        );
        assert_eq!(
            Modes::parse(None, Some("shared")).unwrap_err().to_string(),
            "--ipc: invalid IPC mode"
        );
        assert!(matches!(
            Modes::parse(None, Some("container:db")),
            Err(ModeError::IpcContainer(_))
        ));
        assert!(matches!(
            Modes::parse(None, Some("container:")),
            Err(ModeError::Ipc)
        ));
    }

    #[test]
    fn conflicts_are_refused() {
        let host = Modes::parse(Some("host"), Some("host")).unwrap();
        assert!(matches!(
            host.check(Some("h"), std::iter::empty()),
            Err(ModeError::Hostname)
        ));
        let sysctls = ["kernel.shmmax".to_owned()];
        assert_eq!(
            host.check(None, sysctls.iter()).unwrap_err().to_string(),
            "Error response from daemon: sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace"
        );
        let net = ["net.ipv4.ip_forward".to_owned()];
        assert!(host.check(None, net.iter()).is_ok());
        assert!(Modes::default().check(Some("h"), sysctls.iter()).is_ok());
    }

    #[test]
    fn host_modes_drop_the_namespaces_and_share_dev_shm() {
        let mut s = spec();
        Modes::default().apply(&mut s).unwrap();
        assert_eq!(s, spec(), "the defaults change nothing");
        Modes::parse(Some("host"), Some("host"))
            .unwrap()
            .apply(&mut s)
            .unwrap();
        let ns = namespaces(&s);
        assert!(!ns.contains(&LinuxNamespaceType::Uts), "{ns:?}");
        assert!(!ns.contains(&LinuxNamespaceType::Ipc), "{ns:?}");
        assert!(ns.contains(&LinuxNamespaceType::Pid), "{ns:?}");
        assert_eq!(s.hostname(), &None);
        let m = shm(&s).unwrap();
        assert_eq!(m.typ().as_deref(), Some("bind"));
        assert_eq!(
            m.source().as_deref(),
            Some(std::path::Path::new("/dev/shm"))
        );
        let mut s = spec();
        Modes::parse(None, Some("none"))
            .unwrap()
            .apply(&mut s)
            .unwrap();
        assert!(shm(&s).is_none());
        assert!(namespaces(&s).contains(&LinuxNamespaceType::Ipc));
    }
}
