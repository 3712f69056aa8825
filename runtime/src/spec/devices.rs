//! Devices in the spec: Docker's default device cgroup ([`default_device_rules`]), `--device`
//! ([`add_device`]) and `--privileged`'s every device ([`allow_all_devices`]).
//!
//! The default list is moby's (`oci/defaults.go`: deny `a` rwm) followed by what runc appends
//! to every container (`libcontainer/specconv/spec_linux.go`, `AllowedDevices`, runc 1.2.4+,
//! which put tun/tap back): `mknod` of any char and block device, and rwm on `/dev/null`,
//! `random`, `full`, `tty`, `zero`, `urandom`, `/dev/pts/*`, `/dev/ptmx` and `/dev/net/tun`.
//! `/dev/console` (5:1) is not in it: Docker's containers get their terminal as a pts.
//!
//! `add_device` and `allow_all_devices` stat host device nodes: the only host reads here.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{major, minor};
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    Spec,
};

use super::{Result, SpecError};

/// A device cgroup rule as a table row: (allow, type, major, minor, access); `None` is `*`.
pub type RuleRow = (bool, char, Option<i64>, Option<i64>, &'static str);

/// Docker's default device rules.
pub const DEFAULT_DEVICE_RULES: [RuleRow; 12] = [
    (false, 'a', None, None, "rwm"),
    (true, 'c', None, None, "m"),
    (true, 'b', None, None, "m"),
    (true, 'c', Some(1), Some(3), "rwm"),
    (true, 'c', Some(1), Some(8), "rwm"),
    (true, 'c', Some(1), Some(7), "rwm"),
    (true, 'c', Some(5), Some(0), "rwm"),
    (true, 'c', Some(1), Some(5), "rwm"),
    (true, 'c', Some(1), Some(9), "rwm"),
    (true, 'c', Some(136), None, "rwm"),
    (true, 'c', Some(5), Some(2), "rwm"),
    (true, 'c', Some(10), Some(200), "rwm"),
];

fn device_type(c: char) -> LinuxDeviceType {
    match c {
        'b' => LinuxDeviceType::B,
        'c' => LinuxDeviceType::C,
        _ => LinuxDeviceType::A,
    }
}

fn cgroup_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup> {
    let mut rule = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access)
        .build()?;
    rule.set_major(major);
    rule.set_minor(minor);
    Ok(rule)
}

/// [`DEFAULT_DEVICE_RULES`] as `linux.resources.devices`.
///
/// # Errors
/// oci-spec refusing a value.
pub fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>> {
    DEFAULT_DEVICE_RULES
        .iter()
        .map(|&(allow, typ, major, minor, access)| {
            cgroup_rule(allow, device_type(typ), major, minor, access)
        })
        .collect()
}

/// Docker's `validDeviceMode`: a non-empty mix of `r`, `w`, `m`, each at most once.
fn valid_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.chars().all(|c| "rwm".contains(c))
        && mode
            .chars()
            .enumerate()
            .all(|(i, c)| !mode[..i].contains(c))
}

/// `--device SRC[:DST][:PERMS]` as Docker's CLI reads it (`validateLinuxPath`,
/// `parseLinuxDevice`): (host path, container path, permissions).
///
/// # Errors
/// [`SpecError::InvalidDevice`] with Docker's reason.
pub fn parse_device(arg: &str) -> Result<(String, String, String)> {
    let bad = |reason: String| SpecError::InvalidDevice {
        arg: arg.to_owned(),
        reason,
    };
    let parts: Vec<&str> = arg.split(':').collect();
    if parts.len() > 3 || parts[0].is_empty() {
        return Err(bad(format!("bad format for path: {arg}")));
    }
    let src = parts[0].to_owned();
    let (dst, mode) = match parts[..] {
        [_] => (src.clone(), "rwm"),
        [_, m] if valid_mode(m) => (src.clone(), m),
        [_, d] => (d.to_owned(), "rwm"),
        [_, d, m] if valid_mode(m) => (d.to_owned(), m),
        [_, _, m] => return Err(bad(format!("bad mode specified: {m}"))),
        _ => unreachable!("1 to 3 parts"),
    };
    if !dst.starts_with('/') {
        return Err(bad(format!("{dst} is not an absolute path")));
    }
    Ok((src, dst, mode.to_owned()))
}

/// A host device node as a `linux.devices` entry at `path`, or `None` for anything else
/// (`lstat`: a symlink is no device).
fn device_at(host: &Path, path: PathBuf) -> std::io::Result<Option<LinuxDevice>> {
    let meta = std::fs::symlink_metadata(host)?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    let dev = LinuxDeviceBuilder::default()
        .path(path)
        .typ(typ)
        .major(i64::try_from(major(rdev)).unwrap_or(i64::MAX))
        .minor(i64::try_from(minor(rdev)).unwrap_or(i64::MAX))
        .file_mode(meta.mode() & 0o7777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()
        .map_err(std::io::Error::other)?;
    Ok(Some(dev))
}

/// Directories `--privileged` does not take devices from (containerd's `HostDevices`).
const SKIPPED_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// The devices under the host directory `dir`, mapped below `dest`, in name order. With
/// `host_rules`, the directories of [`SKIPPED_DIRS`] and `console` are left out.
fn devices_below(dir: &Path, dest: &Path, host_rules: bool, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let name = e.file_name();
        let (host, target) = (e.path(), dest.join(&name));
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if !(host_rules && SKIPPED_DIRS.iter().any(|s| name == *s)) {
                devices_below(&host, &target, host_rules, out);
            }
        } else if host_rules && name == "console" {
            continue;
        } else if let Ok(Some(d)) = device_at(&host, target) {
            out.push(d);
        }
    }
}

fn push_devices(spec: &mut Spec, devices: Vec<LinuxDevice>, rules: Vec<LinuxDeviceCgroup>) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut all = linux.devices().clone().unwrap_or_default();
    all.extend(devices);
    linux.set_devices(Some(all));
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut cgroup = resources.devices().clone().unwrap_or_default();
    cgroup.extend(rules);
    resources.set_devices(Some(cgroup));
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
}

/// `--device`: the host device at SRC (a symlink is followed; a directory gives every device
/// below it) appears at DST in the container with the host's mode and owner, and the device
/// cgroup allows PERMS on it (moby's `DevicesFromPath`).
///
/// # Errors
/// [`SpecError::InvalidDevice`] for a malformed argument, [`SpecError::DeviceInfo`] when SRC
/// is missing or holds no device.
pub fn add_device(spec: &mut Spec, arg: &str) -> Result<()> {
    let (src, dst, mode) = parse_device(arg)?;
    let info = |reason: String| SpecError::DeviceInfo {
        path: src.clone(),
        reason,
    };
    let errno = |e: &std::io::Error| {
        let text = e.raw_os_error().map_or_else(
            || e.to_string(),
            |n| nix::errno::Errno::from_raw(n).desc().to_owned(),
        );
        // Go's wording: lower case.
        let mut c = text.chars();
        c.next()
            .map(|f| f.to_lowercase().chain(c).collect())
            .unwrap_or_default()
    };
    let mut host = PathBuf::from(&src);
    if std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
        if let Ok(real) = std::fs::canonicalize(&host) {
            host = real;
        }
    }
    let mut devices = Vec::new();
    match device_at(&host, PathBuf::from(&dst)) {
        Ok(Some(d)) => devices.push(d),
        Ok(None) if host.is_dir() => devices_below(&host, Path::new(&dst), false, &mut devices),
        Ok(None) => {}
        Err(e) => return Err(info(errno(&e))),
    }
    if devices.is_empty() {
        return Err(info("not a device node".to_owned()));
    }
    let rules = devices
        .iter()
        .map(|d| cgroup_rule(true, d.typ(), Some(d.major()), Some(d.minor()), &mode))
        .collect::<Result<Vec<_>>>()?;
    push_devices(spec, devices, rules);
    Ok(())
}

/// The host's devices under `dev` for `--privileged` (containerd's `HostDevices`): every char
/// and block node, skipping `pts`, `shm`, `fd`, `mqueue`, `.lxc`, `.lxd-mounts`, `.udev` and
/// `console`.
#[must_use]
pub fn host_devices(dev: &Path) -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    devices_below(dev, Path::new("/dev"), true, &mut out);
    out
}

/// `--privileged`'s devices (moby's `WithDevices`): the device cgroup allows everything
/// (`a *:* rwm` replaces the list) and every host device under `/dev` ([`host_devices`]) is
/// added to `linux.devices`.
///
/// # Errors
/// oci-spec refusing a value.
pub fn allow_all_devices(spec: &mut Spec) -> Result<()> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_devices(Some(vec![cgroup_rule(
        true,
        LinuxDeviceType::A,
        None,
        None,
        "rwm",
    )?]));
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    push_devices(spec, host_devices(Path::new("/dev")), Vec::new());
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::cgroups::devices::from_spec;

    #[test]
    fn default_rules_are_dockers() {
        let lines: Vec<String> = default_device_rules()
            .unwrap()
            .iter()
            .map(|r| {
                let d = from_spec(r).unwrap();
                format!("{} {}", if d.allow { "allow" } else { "deny" }, d.v1_line())
            })
            .collect();
        assert_eq!(
            lines,
            [
                "deny a",
                "allow c *:* m",
                "allow b *:* m",
                "allow c 1:3 rwm",
                "allow c 1:8 rwm",
                "allow c 1:7 rwm",
                "allow c 5:0 rwm",
                "allow c 1:5 rwm",
                "allow c 1:9 rwm",
                "allow c 136:* rwm",
                "allow c 5:2 rwm",
                "allow c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn build_sets_the_default_rules_and_apply_limits_keeps_them() {
        let t = tempfile::tempdir().unwrap();
        let opts = crate::spec::RunOptions {
            hostname: "h".into(),
            env: vec![],
            workdir: None,
            user: None,
            entrypoint: None,
            command: vec!["sh".into()],
            network: crate::spec::Network::None,
            etc_files: vec![],
        };
        let mut spec = crate::spec::build(None, &opts, t.path()).unwrap();
        let limits = crate::spec::ResourceLimits {
            memory: Some(1 << 20),
            ..Default::default()
        };
        crate::spec::apply_limits(&mut spec, "/berth/x", &limits).unwrap();
        let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(
            r.devices().clone().unwrap(),
            default_device_rules().unwrap()
        );
        assert!(r.memory().is_some());
    }

    #[rstest]
    #[case::plain("/dev/fuse", Ok(("/dev/fuse", "/dev/fuse", "rwm")))]
    #[case::renamed("/dev/fuse:/dev/fuse2", Ok(("/dev/fuse", "/dev/fuse2", "rwm")))]
    #[case::perms("/dev/sda:rwm", Ok(("/dev/sda", "/dev/sda", "rwm")))]
    #[case::read_only("/dev/sda:r", Ok(("/dev/sda", "/dev/sda", "r")))]
    #[case::all_three("/dev/sda:/dev/xvda:r", Ok(("/dev/sda", "/dev/xvda", "r")))]
    #[case::bad_mode("/dev/sda:/dev/xvda:rx", Err("bad mode specified: rx"))]
    #[case::twice("/dev/sda:/dev/xvda:rr", Err("bad mode specified: rr"))]
    #[case::relative("/dev/sda:xvda", Err("xvda is not an absolute path"))]
    #[case::empty(":/dev/xvda", Err("bad format for path: :/dev/xvda"))]
    #[case::too_many("/a:/b:r:w", Err("bad format for path: /a:/b:r:w"))]
    fn device_flag_parses_like_docker(
        #[case] arg: &str,
        #[case] want: std::result::Result<(&str, &str, &str), &str>,
    ) {
        match (parse_device(arg), want) {
            (Ok((s, d, m)), Ok(w)) => assert_eq!((s.as_str(), d.as_str(), m.as_str()), w),
            (Err(SpecError::InvalidDevice { reason, .. }), Err(w)) => assert_eq!(reason, w),
            (got, _) => panic!("{arg}: {got:?}"),
        }
    }

    fn spec() -> Spec {
        let mut s = Spec::default();
        let mut linux = s.linux().clone().unwrap();
        let mut r = linux.resources().clone().unwrap();
        r.set_devices(Some(default_device_rules().unwrap()));
        linux.set_resources(Some(r));
        s.set_linux(Some(linux));
        s
    }

    #[test]
    fn device_flag_adds_node_and_rule() {
        let mut s = spec();
        add_device(&mut s, "/dev/null:/dev/mynull:rw").unwrap();
        let linux = s.linux().as_ref().unwrap();
        let dev = linux.devices().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(dev.path(), Path::new("/dev/mynull"));
        assert_eq!(
            (dev.typ(), dev.major(), dev.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(dev.file_mode(), Some(0o666));
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules.len(), DEFAULT_DEVICE_RULES.len() + 1);
        assert_eq!(
            from_spec(rules.last().unwrap()).unwrap().v1_line(),
            "c 1:3 rw"
        );
    }

    #[test]
    fn device_flag_errors_read_like_docker() {
        let mut s = spec();
        let e = add_device(&mut s, "/dev/nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error gathering device information while adding custom device \"/dev/nope\": no such file or directory"
        );
        let e = add_device(&mut s, "/etc/hostname").unwrap_err();
        assert!(e.to_string().ends_with(": not a device node"), "{e}");
        // Nothing was added.
        assert!(s.linux().as_ref().unwrap().devices().is_none());
    }

    #[test]
    fn privileged_allows_everything_and_lists_host_devices() {
        let mut s = spec();
        allow_all_devices(&mut s).unwrap();
        let linux = s.linux().as_ref().unwrap();
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules.len(), 1);
        let d = from_spec(&rules[0]).unwrap();
        assert_eq!((d.allow, d.v1_line()), (true, "a".to_owned()));
        let devs = linux.devices().clone().unwrap_or_default();
        let paths: Vec<_> = devs.iter().map(|d| d.path().clone()).collect();
        assert!(paths.contains(&PathBuf::from("/dev/null")), "{paths:?}");
        assert!(!paths.iter().any(|p| p.starts_with("/dev/pts")));
        assert!(!paths.contains(&PathBuf::from("/dev/console")));
    }
}
