//! `container inspect`: Docker's document for a container, built from its `state.json`, its
//! OCI runtime spec (`config.json`, also shown whole under the Berth-specific key `OCISpec`, so
//! the plan the container runs is inspectable) and `create.json`, the Docker `Config` values
//! `run` was given that the spec cannot tell back (`Entrypoint` vs `Cmd`, `User` and
//! `WorkingDir` as written, `Binds`). With `size`, Docker's `SizeRw` and `SizeRootFs`.
//!
//! May call [`super::state`], [`super::config`], [`super::logs`] (the log's path),
//! [`crate::volumes`] (its root, disk usage) and [`crate::store`] (the image's size).

use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::config::load_create_config;
use super::state::{self, State, StateError, Status};
use crate::reference::Reference;
use crate::store::Store;

/// A container's document could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No such container.
    #[error(transparent)]
    State(#[from] StateError),
    /// Its `config.json` cannot be read (the error names the path).
    #[error(transparent)]
    ReadSpec(std::io::Error),
    /// Its `config.json` is not a runtime spec.
    #[error(transparent)]
    ParseSpec(serde_json::Error),
    /// Its restart policy cannot be written as JSON.
    #[error(transparent)]
    RestartPolicy(serde_json::Error),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, InspectError>;

/// What to add to the document (`inspect`'s flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct InspectOptions {
    /// `--size`: `SizeRw` and `SizeRootFs`.
    pub size: bool,
}

/// The document of the container `name` (a name or ID) of `store`.
///
/// # Errors
/// No such container ([`InspectError::State`]); an unreadable `config.json`.
pub fn inspect(store: &Store, name: &str, opts: InspectOptions) -> Result<Value> {
    let (dir, state) = state::find(store.root(), name)?;
    let mut doc = document(store.root(), &dir, &state)?;
    if opts.size {
        add_sizes(store, &mut doc, &dir, &state);
    }
    Ok(doc)
}

/// Go's zero `time.Time`, which Docker prints for a time that has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One entry of Docker's `Mounts`, from an OCI bind mount: a volume when its source is a
/// volume's `_data` under the data root, else a bind. The container's own `/etc` files are no
/// mounts to Docker.
#[must_use]
pub fn mount_points(data_root: &Path, dir: &Path, spec: &Spec) -> Vec<Value> {
    let volumes = crate::volumes::root(data_root);
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("bind"))
        .filter_map(|m| {
            let source = m.source().as_ref()?;
            if source.starts_with(dir) {
                return None;
            }
            let options = m.options().clone().unwrap_or_default();
            let rw = !options.iter().any(|o| o == "ro");
            let destination = m.destination().display().to_string();
            let volume = source
                .strip_prefix(&volumes)
                .ok()
                .filter(|rest| rest.ends_with("_data"))
                .and_then(|rest| rest.iter().next())
                .map(|n| n.to_string_lossy().into_owned());
            Some(match volume {
                Some(name) => json!({
                    "Type": "volume",
                    "Name": name,
                    "Source": source,
                    "Destination": destination,
                    "Driver": "local",
                    "Mode": if rw { "z" } else { "ro" },
                    "RW": rw,
                    "Propagation": "",
                }),
                None => json!({
                    "Type": "bind",
                    "Source": source,
                    "Destination": destination,
                    "Mode": if rw { "" } else { "ro" },
                    "RW": rw,
                    "Propagation": "rprivate",
                }),
            })
        })
        .collect()
}

/// `HostConfig` limits from the spec's `linux.resources`: `Memory` bytes, `NanoCpus`
/// (quota / period in billionths), `PidsLimit` (`null` when unset, as Docker's API gives it).
fn limits(spec: &Spec) -> (i64, i64, Option<i64>) {
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let memory = resources
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|m| *m > 0)
        .unwrap_or(0);
    let nano_cpus = resources
        .and_then(|r| r.cpu().as_ref())
        .and_then(|c| match (c.quota(), c.period()) {
            (Some(q), Some(p)) if q > 0 && p > 0 => {
                i64::try_from(i128::from(q) * 1_000_000_000 / i128::from(p)).ok()
            }
            _ => None,
        })
        .unwrap_or(0);
    let pids = resources
        .and_then(|r| r.pids().as_ref())
        .map(oci_spec::runtime::LinuxPids::limit);
    (memory, nano_cpus, pids)
}

/// `HostConfig.MemorySwap` and `CpuShares` from the spec's resources (0: not set).
fn swap_and_shares(spec: &Spec) -> (i64, u64) {
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let swap = resources
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.swap())
        .unwrap_or(0);
    let shares = resources
        .and_then(|r| r.cpu().as_ref())
        .and_then(|c| c.shares())
        .unwrap_or(0);
    (swap, shares)
}

/// Docker's inspect document for the container in `dir`.
///
/// # Errors
/// An unreadable `config.json`.
pub fn document(data_root: &Path, dir: &Path, state: &State) -> Result<Value> {
    let spec_path = dir.join("config.json");
    // The file as written (a `Spec` round trip would reorder its capability sets).
    let spec_json: Value =
        serde_json::from_slice(&fs_err::read(&spec_path).map_err(InspectError::ReadSpec)?)
            .map_err(InspectError::ParseSpec)?;
    let spec: Spec = serde_json::from_value(spec_json.clone()).map_err(InspectError::ParseSpec)?;
    let create = load_create_config(dir, state);
    let status = state.status();
    let running = status == Status::Running;
    let restarting = running && state.restarting;
    let pid = state
        .init
        .filter(|i| running && !restarting && i.alive())
        .map_or(0, |i| i.pid);
    let status_name = state.state_name();
    let exit_code = match status {
        Status::Created => 0,
        Status::Running if !restarting => 0,
        _ => state.exit_code(),
    };
    let process = spec.process().as_ref();
    let argv = process.and_then(|p| p.args().clone()).unwrap_or_default();
    let (path, args) = argv
        .split_first()
        .map_or((String::new(), &[][..]), |(p, a)| (p.clone(), a));
    let env = process.and_then(|p| p.env().clone()).unwrap_or_default();
    let (memory, nano_cpus, pids_limit) = limits(&spec);
    let (memory_swap, cpu_shares) = swap_and_shares(&spec);
    let restart =
        serde_json::to_value(state.restart_policy).map_err(InspectError::RestartPolicy)?;
    let restart_policy = json!({
        "Name": restart["Name"],
        "MaximumRetryCount": restart.get("MaximumRetryCount").cloned().unwrap_or(json!(0)),
    });
    let rootfs = dir.join("rootfs");
    let mut doc = json!({
        "Id": state.id,
        "Created": state.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": status_name,
            "Running": running,
            "Paused": state.is_paused(),
            "Restarting": restarting,
            "OOMKilled": state.oom_killed,
            "Dead": false,
            "Pid": pid,
            "ExitCode": exit_code,
            "Error": "",
            "StartedAt": state.started_at.as_deref().unwrap_or(ZERO_TIME),
            "FinishedAt": state.finished_at.as_deref().unwrap_or(ZERO_TIME),
        },
        "Image": state.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": super::logs::log_path(dir, &state.id),
        "Name": format!("/{}", state.name),
        "RestartCount": state.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": create.binds,
            "NetworkMode": create.network_mode,
            "RestartPolicy": restart_policy,
            "LogConfig": state.log_config,
            "AutoRemove": state.auto_remove,
            "Memory": memory,
            "MemorySwap": memory_swap,
            "CpuShares": cpu_shares,
            "NanoCpus": nano_cpus,
            "PidsLimit": pids_limit,
            "PortBindings": port_bindings(state),
            "Dns": state.network.as_ref().map(|n| n.dns.clone()).unwrap_or_default(),
            "Links": state.network.as_ref().map(|n| n.links.clone()).filter(|l| !l.is_empty()),
            "Privileged": create.privileged,
            "CapAdd": (!create.cap_add.is_empty()).then_some(&create.cap_add),
            "CapDrop": (!create.cap_drop.is_empty()).then_some(&create.cap_drop),
            "SecurityOpt": (!create.security_opt.is_empty()).then_some(&create.security_opt),
            "Devices": create.devices.iter().map(|d| device_mapping(d)).collect::<Vec<_>>(),
            "ReadonlyRootfs": create.readonly_rootfs,
            "GroupAdd": (!create.group_add.is_empty()).then_some(&create.group_add),
            "ShmSize": create.shm_size.unwrap_or(super::groups::DEFAULT_SHM_SIZE),
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "MergedDir": rootfs,
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
            },
        },
        "Mounts": mount_points(data_root, dir, &spec),
        "Config": {
            "Hostname": spec.hostname().clone().unwrap_or_default(),
            "Domainname": "",
            "User": create.user,
            "Tty": process.and_then(|p| p.terminal()).unwrap_or(false),
            "Env": env,
            "Cmd": create.cmd,
            "Image": if state.image_name.is_empty() { &state.image } else { &state.image_name },
            "WorkingDir": create.working_dir,
            "Entrypoint": create.entrypoint,
            "Labels": create.labels,
        },
        "NetworkSettings": network_settings(state, &create.network_mode),
        "OCISpec": spec_json,
    });
    // Docker leaves these out when unset (`omitempty`).
    if !create.tmpfs.is_empty() {
        doc["HostConfig"]["Tmpfs"] = json!(create.tmpfs);
    }
    doc["HostConfig"]["UTSMode"] = json!(create.uts_mode);
    doc["HostConfig"]["IpcMode"] = json!(if create.ipc_mode.is_empty() {
        "private"
    } else {
        create.ipc_mode.as_str()
    });
    if create.init {
        doc["HostConfig"]["Init"] = json!(true);
    }
    if !create.sysctls.is_empty() {
        doc["HostConfig"]["Sysctls"] = json!(create.sysctls);
    }
    if let Some(s) = &create.stop_signal {
        doc["Config"]["StopSignal"] = json!(s);
    }
    if let Some(t) = create.stop_timeout {
        doc["Config"]["StopTimeout"] = json!(t);
    }
    Ok(doc)
}

/// Docker's `HostConfig.PortBindings`: what `-p`/`-P` asked for, by `PORT/PROTO` (an empty
/// `HostPort` for "any free port").
fn port_bindings(state: &State) -> Value {
    let mut out = serde_json::Map::new();
    for b in state.network.iter().flat_map(|n| n.port_bindings.iter()) {
        let host_port = match b.host_ports {
            (0, 0) => String::new(),
            (a, z) if a == z => a.to_string(),
            (a, z) => format!("{a}-{z}"),
        };
        let entry = json!({
            "HostIp": b.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "HostPort": host_port,
        });
        if let Some(Value::Array(list)) = out.get_mut(&b.key()) {
            list.push(entry);
        } else {
            out.insert(b.key(), json!([entry]));
        }
    }
    Value::Object(out)
}

/// Docker's `HostConfig.Devices` entry for a `--device` argument.
fn device_mapping(arg: &str) -> Value {
    let parts: Vec<&str> = arg.split(':').collect();
    let perms = |p: &str| p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) && !p.is_empty();
    let (host, inner, perm) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p, ..] => (*h, *c, *p),
        [] => ("", "", "rwm"),
    };
    json!({"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perm})
}

/// Docker's `NetworkSettings`: the bridge endpoint (address, gateway, MAC-less) and published
/// ports while the container runs, empty values otherwise; `Networks` also has the networks
/// `network connect` added.
fn network_settings(state: &State, mode: &str) -> Value {
    let net = state.network.clone().unwrap_or_default();
    let ip = net.ip_address.map(|a| a.to_string()).unwrap_or_default();
    let gateway = net.gateway.map(|a| a.to_string()).unwrap_or_default();
    let prefix = net.ip_prefix_len.unwrap_or(0);
    let mut ports = serde_json::Map::new();
    for port in &net.exposed_ports {
        ports.insert(port.clone(), Value::Null);
    }
    for (port, bindings) in &net.ports {
        ports.insert(port.clone(), json!(bindings));
    }
    let endpoint = json!({
        "Gateway": gateway,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "IPAMConfig": net.ipv4_address.map(|a| json!({"IPv4Address": a.to_string()})),
    });
    let mut networks = serde_json::Map::new();
    networks.insert(mode.to_owned(), endpoint);
    for c in &net.connected {
        networks.insert(
            c.network.clone(),
            json!({
                "Gateway": c.gateway.to_string(),
                "IPAddress": c.ip_address.to_string(),
                "IPPrefixLen": c.ip_prefix_len,
            }),
        );
    }
    // Asked for and not connected in this run (it does not run): no address yet, as Docker.
    for r in &net.requested {
        networks.entry(r.network.clone()).or_insert_with(|| {
            json!({
                "Gateway": "",
                "IPAddress": "",
                "IPPrefixLen": 0,
            })
        });
    }
    json!({
        "Bridge": net.bridge.clone().unwrap_or_default(),
        "Gateway": gateway,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "Ports": ports,
        "Networks": networks,
    })
}

/// Docker's `--size` fields: `SizeRw`, the bytes of the container's writable layer, and
/// `SizeRootFs`, those plus the image's.
fn add_sizes(store: &Store, doc: &mut Value, dir: &Path, state: &State) {
    let rw = crate::volumes::disk_usage(&dir.join("upper"));
    let full = Reference::parse(&state.image).ok().map(|r| r.to_string());
    let image = store
        .resolve(&state.image, full.as_deref())
        .map_or(0, |i| i.size);
    doc["SizeRw"] = json!(rw);
    doc["SizeRootFs"] = json!(rw + image);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_tell_volumes_from_binds() {
        let data = Path::new("/data");
        let dir = Path::new("/data/containers/abc");
        let bind = |src: &str, dst: &str, ro: bool| {
            let mut options = vec!["rbind".to_owned()];
            if ro {
                options.push("ro".to_owned());
            }
            oci_spec::runtime::MountBuilder::default()
                .typ("bind")
                .source(src)
                .destination(dst)
                .options(options)
                .build()
                .unwrap()
        };
        let mut spec = Spec::default();
        spec.set_mounts(Some(vec![
            bind("/data/containers/abc/hosts", "/etc/hosts", false),
            bind("/data/volumes/vol1/_data", "/v", false),
            bind("/srv/www", "/www", true),
        ]));
        let m = mount_points(data, dir, &spec);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (
                &m[0]["Type"],
                &m[0]["Name"],
                &m[0]["Destination"],
                &m[0]["RW"]
            ),
            (&json!("volume"), &json!("vol1"), &json!("/v"), &json!(true))
        );
        assert_eq!(
            (&m[1]["Type"], &m[1]["Source"], &m[1]["RW"]),
            (&json!("bind"), &json!("/srv/www"), &json!(false))
        );
    }

    #[test]
    fn limits_come_from_the_spec() {
        let mut spec = Spec::default();
        berth_runtime::spec::apply_limits(
            &mut spec,
            "/berth/x",
            &berth_runtime::spec::ResourceLimits {
                memory: Some(64 << 20),
                nano_cpus: Some(500_000_000),
                pids_limit: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(limits(&spec), (64 << 20, 500_000_000, Some(10)));
        assert_eq!(swap_and_shares(&spec), (128 << 20, 0));
        assert_eq!(limits(&Spec::default()), (0, 0, None));
    }
}
