//! `berth info` (also `system info`) and `berth version`: what this berth is and what it
//! manages, in Docker's shape, from the store, the container states, the host and the daemon
//! configuration. Both build one JSON document with Docker's field names (so `--format
//! '{{.DockerRootDir}}'` and `{{json .}}` work as with Docker) and print it as Docker does.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::cli::{InfoArgs, VersionArgs};
use crate::container::Status;
use crate::context::Ctx;

/// berth's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `os/arch` in Go's names.
fn os_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// `PRETTY_NAME` of `/etc/os-release`.
fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Docker's `units.BytesSize` with two decimals: `23.54GiB`.
fn bytes_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    let text = format!("{v:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", UNITS[i])
}

/// The cgroup version of the host (`1` for v1 and hybrid, `2` for pure v2), or `""`.
fn cgroup_version() -> &'static str {
    match berth_runtime::cgroups::detect_host() {
        Ok(berth_runtime::cgroups::Layout::Unified { .. }) => "2",
        Ok(berth_runtime::cgroups::Layout::Legacy { .. }) => "1",
        Err(_) => "",
    }
}

/// The document behind `info`.
fn info_document(ctx: &Ctx) -> anyhow::Result<Value> {
    let root = ctx.store.root();
    let containers = crate::container::list(root);
    let running = containers
        .iter()
        .filter(|(_, s)| s.status() == Status::Running)
        .count();
    let images = ctx.store.images()?.len();
    let uname = nix::sys::utsname::uname()?;
    let mut insecure: Vec<String> = vec!["127.0.0.0/8".into()];
    insecure.extend(
        ctx.daemon
            .insecure_registries
            .iter()
            .map(ToString::to_string),
    );
    let ncpu = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Ok(json!({
        "ID": "",
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": containers.len() - running,
        "Images": images,
        "Driver": "overlayfs",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": operating_system(),
        "OSType": "linux",
        "Architecture": uname.machine().to_string_lossy(),
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "Name": uname.nodename().to_string_lossy(),
        "DockerRootDir": root.display().to_string(),
        "ServerVersion": VERSION,
        "DefaultRuntime": "berth",
        "Runtimes": {"berth": {"path": "integrated (no daemon)"}},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "RegistryConfig": {
            "InsecureRegistryCIDRs": insecure,
            "Mirrors": ctx.daemon.registry_mirrors,
            "MirrorMap": ctx.daemon.registry_mirror_map,
            "MirrorsOnly": ctx.daemon.registry_mirrors_only,
            "MaxConcurrentDownloads": ctx.daemon.max_concurrent_downloads,
            "MaxConcurrentUploads": ctx.daemon.max_concurrent_uploads,
        },
        "DaemonConfig": ctx.daemon.source.as_ref().map(|p| p.display().to_string()),
        "DaemonConfigFromDocker": ctx.daemon.from_docker,
        "Warnings": ctx.daemon.warnings,
    }))
}

/// Docker's `info` text for the document.
fn info_text(d: &Value, debug: bool) -> String {
    let s = |k: &str| match &d[k] {
        Value::String(v) => v.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Client: Berth\n Version:    {VERSION}\n Context:    default\n Debug Mode: {debug}\n"
    );
    let _ = writeln!(out, "Server:");
    let _ = writeln!(out, " Containers: {}", s("Containers"));
    let _ = writeln!(out, "  Running: {}", s("ContainersRunning"));
    let _ = writeln!(out, "  Paused: 0");
    let _ = writeln!(out, "  Stopped: {}", s("ContainersStopped"));
    let _ = writeln!(out, " Images: {}", s("Images"));
    let _ = writeln!(
        out,
        " Server Version: {} (berth, no daemon)",
        s("ServerVersion")
    );
    let _ = writeln!(out, " Storage Driver: {}", s("Driver"));
    let _ = writeln!(out, " Logging Driver: {}", s("LoggingDriver"));
    let _ = writeln!(out, " Cgroup Driver: {}", s("CgroupDriver"));
    let _ = writeln!(out, " Cgroup Version: {}", s("CgroupVersion"));
    let _ = writeln!(out, " Runtimes: berth\n Default Runtime: berth");
    let _ = writeln!(out, " Security Options:\n  seccomp\n   Profile: builtin");
    let _ = writeln!(out, " Kernel Version: {}", s("KernelVersion"));
    let _ = writeln!(out, " Operating System: {}", s("OperatingSystem"));
    let _ = writeln!(out, " OSType: linux");
    let _ = writeln!(out, " Architecture: {}", s("Architecture"));
    let _ = writeln!(out, " CPUs: {}", s("NCPU"));
    let mem = d["MemTotal"].as_u64().unwrap_or(0);
    let _ = writeln!(out, " Total Memory: {}", bytes_size(mem));
    let _ = writeln!(out, " Name: {}", s("Name"));
    let _ = writeln!(out, " Berth Root Dir: {}", s("DockerRootDir"));
    match (
        d["DaemonConfig"].as_str(),
        d["DaemonConfigFromDocker"].as_bool(),
    ) {
        (Some(p), Some(true)) => {
            let _ = writeln!(
                out,
                " Daemon Config: {p} (its registry settings only; {} does not exist)",
                berth_config::daemon::DEFAULT_PATH
            );
        }
        (Some(p), _) => {
            let _ = writeln!(out, " Daemon Config: {p}");
        }
        (None, _) => {
            let _ = writeln!(out, " Daemon Config: none (built-in defaults)");
        }
    }
    let _ = writeln!(out, " Debug Mode: false\n Experimental: false");
    let _ = writeln!(out, " Insecure Registries:");
    for r in d["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "  {}", r.as_str().unwrap_or_default());
    }
    let mirrors = d["RegistryConfig"]["Mirrors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !mirrors.is_empty() {
        let _ = writeln!(out, " Registry Mirrors:");
        for m in &mirrors {
            let _ = writeln!(out, "  {}", m.as_str().unwrap_or_default());
        }
    }
    if let Some(map) = d["RegistryConfig"]["MirrorMap"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        let _ = writeln!(out, " Registry Mirror Map:");
        for (host, list) in map {
            let list: Vec<&str> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let _ = writeln!(out, "  {host}: {}", list.join(" "));
        }
    }
    let _ = write!(out, " Live Restore Enabled: false");
    out
}

/// `berth info`.
///
/// # Errors
/// The store cannot be read; a bad template.
pub fn info(ctx: &Ctx, args: &InfoArgs) -> anyhow::Result<()> {
    let doc = info_document(ctx)?;
    let out = match &args.format {
        Some(tpl) => crate::format::render_value(tpl, &doc).map_err(anyhow::Error::msg)?,
        None => info_text(&doc, ctx.printer.is_debug()),
    };
    ctx.printer.data(&out);
    Ok(())
}

/// The document behind `version`.
fn version_document() -> Value {
    json!({
        "Client": {
            "Platform": {"Name": "Berth"},
            "Version": VERSION,
            "ApiVersion": "",
            "Os": "linux",
            "Arch": os_arch().trim_start_matches("linux/"),
            "Context": "default",
        },
        "Server": Value::Null,
    })
}

/// `berth version`: the client only (there is no daemon to ask).
///
/// # Errors
/// A bad template.
pub fn version(ctx: &Ctx, args: &VersionArgs) -> anyhow::Result<()> {
    let doc = version_document();
    let out = match &args.format {
        Some(tpl) => crate::format::render_value(tpl, &doc).map_err(anyhow::Error::msg)?,
        None => format!(
            "Client: Berth\n Version:           {VERSION}\n OS/Arch:           {}\n Context:           default\n Runtime:           integrated (no daemon)",
            os_arch()
        ),
    };
    ctx.printer.data(&out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_like_dockers() {
        assert_eq!(bytes_size(25_275_736_064), "23.54GiB");
        assert_eq!(bytes_size(1024), "1KiB");
        assert_eq!(bytes_size(512), "512B");
    }

    #[test]
    fn version_fields_follow_docker() {
        let d = version_document();
        assert_eq!(
            crate::format::render_value("{{.Client.Version}}", &d).unwrap(),
            VERSION
        );
        assert_eq!(d["Client"]["Os"], "linux");
    }
}
