//! `--group-add` and `--shm-size`: spec edits to the process's supplementary groups and to the
//! `/dev/shm` mount, as the Docker daemon makes them.
//!
//! `--group-add` names are looked up in the image's `/etc/group` (through `berth_runtime::user`,
//! which never leaves the root file system), numbers are taken as GIDs, and the result is added
//! after the user's own groups (moby `daemon/oci_linux.go`, `getUser`). `--shm-size` replaces the
//! `size=` of `/dev/shm` (default 64 MiB).
//!
//! Calls only `berth_runtime`.

use std::path::Path;

use berth_runtime::user::{additional_groups_in, UserError};
use oci_spec::runtime::Spec;

/// Docker's `/dev/shm` size when `--shm-size` is not given (`HostConfig.ShmSize`).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// Adds the `--group-add` groups to `process.user.additionalGids` (each once).
///
/// # Errors
/// A group name the image does not have, a GID out of range, an unreadable `/etc/group`.
pub fn add_groups(spec: &mut Spec, rootfs: &Path, groups: &[String]) -> Result<(), UserError> {
    if groups.is_empty() {
        return Ok(());
    }
    let added = additional_groups_in(rootfs, groups)?;
    if let Some(mut process) = spec.process().clone() {
        let mut user = process.user().clone();
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        for gid in added {
            if !gids.contains(&gid) {
                gids.push(gid);
            }
        }
        user.set_additional_gids(Some(gids));
        process.set_user(user);
        spec.set_process(Some(process));
    }
    Ok(())
}

/// Sets the `size=` option of the `/dev/shm` mount to `bytes`.
pub fn set_shm_size(spec: &mut Spec, bytes: i64) {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mut mounts {
        if m.destination() == Path::new("/dev/shm") {
            let mut options: Vec<String> = m
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !o.starts_with("size="))
                .collect();
            // The kernel rounds up to pages; `k` keeps the option exact and short.
            options.push(if bytes % 1024 == 0 {
                format!("size={}k", bytes / 1024)
            } else {
                format!("size={bytes}")
            });
            m.set_options(Some(options));
        }
    }
    spec.set_mounts(Some(mounts));
}

#[cfg(test)]
mod tests {
    use berth_runtime::spec::{build, Network, RunOptions};

    use super::*;

    fn spec(rootfs: &Path) -> Spec {
        let opts = RunOptions {
            hostname: "h".into(),
            env: vec![],
            workdir: None,
            user: Some("1000:1000".into()),
            entrypoint: None,
            command: vec!["sh".into()],
            network: Network::None,
            etc_files: vec![],
        };
        build(None, &opts, rootfs).unwrap()
    }

    #[test]
    fn groups_are_added_once_after_the_users_own() {
        let t = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(t.path().join("etc")).unwrap();
        fs_err::write(t.path().join("etc/group"), "audio:x:63:\n").unwrap();
        let mut s = spec(t.path());
        add_groups(
            &mut s,
            t.path(),
            &["audio".into(), "1000".into(), "7".into()],
        )
        .unwrap();
        let gids = s
            .process()
            .as_ref()
            .unwrap()
            .user()
            .additional_gids()
            .clone();
        assert_eq!(gids.unwrap(), [1000, 63, 7]);
        assert!(add_groups(&mut s, t.path(), &["nope".into()]).is_err());
    }

    #[test]
    fn shm_size_replaces_the_default() {
        let t = tempfile::tempdir().unwrap();
        let mut s = spec(t.path());
        set_shm_size(&mut s, 128 << 20);
        let shm = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .unwrap()
            .options()
            .clone()
            .unwrap();
        assert_eq!(shm.iter().filter(|o| o.starts_with("size=")).count(), 1);
        assert!(shm.contains(&"size=131072k".to_owned()), "{shm:?}");
    }
}
