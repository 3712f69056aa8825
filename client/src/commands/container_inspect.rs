//! `berth container inspect` (and `berth inspect` on a container): Docker's document for a
//! container, built from its `state.json`, its OCI runtime spec (`config.json`, also shown
//! whole under the Berth-specific key `OCISpec`, so the plan the container runs is
//! inspectable) and `create.json`, the Docker `Config` values `run` was given that the spec
//! cannot tell back (`Entrypoint` vs `Cmd`, `User` and `WorkingDir` as written, `Binds`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cli::{ContainerInspectArgs, RunArgs};
use crate::container::{self, State, Status};
use crate::context::Ctx;
use crate::format;

/// Go's zero `time.Time`, which Docker prints for a time that has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `<dir>/create.json`: what `run` was asked for, in Docker's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateConfig {
    /// `--entrypoint`, else the image's.
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name, else the image's `Cmd` (none with `--entrypoint`).
    pub cmd: Option<Vec<String>>,
    /// `-u`, else the image's `User`.
    pub user: String,
    /// `-w`, else the image's `WorkingDir`.
    pub working_dir: String,
    /// The image's labels.
    pub labels: BTreeMap<String, String>,
    /// `-v` flags as given.
    pub binds: Option<Vec<String>>,
    /// `--network`.
    pub network_mode: String,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// `--cap-add` as given.
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// `--cap-drop` as given.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--device` as given.
    #[serde(default)]
    pub devices: Vec<String>,
    /// `--security-opt` as given.
    #[serde(default)]
    pub security_opt: Vec<String>,
}

/// Path of `create.json` in a container directory.
fn create_path(dir: &Path) -> PathBuf {
    dir.join("create.json")
}

/// Records `create.json` for a container `run` creates from `image`.
///
/// # Errors
/// I/O.
pub fn save_create_config(
    dir: &Path,
    args: &RunArgs,
    image: Option<&ImageConfig>,
) -> anyhow::Result<()> {
    let entrypoint = match args.entrypoint.as_deref() {
        Some("") => None,
        Some(e) => Some(vec![e.to_owned()]),
        None => image.and_then(|c| c.entrypoint().clone()),
    };
    let cmd = if !args.command.is_empty() {
        Some(args.command.clone())
    } else if args.entrypoint.is_some() {
        None
    } else {
        image.and_then(|c| c.cmd().clone())
    };
    let config = CreateConfig {
        entrypoint,
        cmd,
        user: args
            .user
            .clone()
            .or_else(|| image.and_then(|c| c.user().clone()))
            .unwrap_or_default(),
        working_dir: args
            .workdir
            .clone()
            .or_else(|| image.and_then(|c| c.working_dir().clone()))
            .unwrap_or_default(),
        labels: image
            .and_then(|c| c.labels().clone())
            .unwrap_or_default()
            .into_iter()
            .collect(),
        binds: (!args.volumes.is_empty()).then(|| args.volumes.clone()),
        network_mode: args.network.clone(),
        privileged: args.privileged,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        devices: args.device.clone(),
        security_opt: args.security_opt.clone(),
    };
    fs_err::write(create_path(dir), serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

/// `create.json`, or what the spec tells when it is missing (a container from an older Berth):
/// the whole argv as `Cmd`.
pub fn load_create_config(dir: &Path, state: &State) -> CreateConfig {
    fs_err::read(create_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| CreateConfig {
            cmd: Some(state.command.clone()),
            network_mode: "none".into(),
            ..CreateConfig::default()
        })
}

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

/// Docker's inspect document for the container in `dir`.
///
/// # Errors
/// An unreadable `config.json`.
pub fn document(data_root: &Path, dir: &Path, state: &State) -> anyhow::Result<Value> {
    let spec_path = dir.join("config.json");
    // The file as written (a `Spec` round trip would reorder its capability sets).
    let spec_json: Value = serde_json::from_slice(&fs_err::read(&spec_path)?)?;
    let spec: Spec = serde_json::from_value(spec_json.clone())?;
    let create = load_create_config(dir, state);
    let status = state.status();
    let running = status == Status::Running;
    let restarting = running && state.restarting;
    let pid = state
        .init
        .filter(|i| running && !restarting && i.alive())
        .map_or(0, |i| i.pid);
    let status_name = match status {
        Status::Running if restarting => "restarting",
        s => match s {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        },
    };
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
    let restart = serde_json::to_value(state.restart_policy)?;
    let restart_policy = json!({
        "Name": restart["Name"],
        "MaximumRetryCount": restart.get("MaximumRetryCount").cloned().unwrap_or(json!(0)),
    });
    let rootfs = dir.join("rootfs");
    Ok(json!({
        "Id": state.id,
        "Created": state.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": status_name,
            "Running": running,
            "Paused": false,
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
        "LogPath": container::log_path(dir, &state.id),
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
            "AutoRemove": state.auto_remove,
            "Memory": memory,
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
    }))
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
/// ports while the container runs, empty values otherwise.
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
    });
    json!({
        "Bridge": net.bridge.clone().unwrap_or_default(),
        "Gateway": gateway,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "Ports": ports,
        "Networks": { mode: endpoint },
    })
}

/// Docker's `--size` fields: `SizeRw`, the bytes of the container's writable layer, and
/// `SizeRootFs`, those plus the image's.
pub fn add_sizes(ctx: &Ctx, doc: &mut Value, dir: &Path, state: &State) {
    let rw = crate::volumes::disk_usage(&dir.join("upper"));
    let image = super::find_image(ctx, &state.image).map_or(0, |i| i.size);
    doc["SizeRw"] = json!(rw);
    doc["SizeRootFs"] = json!(rw + image);
}

/// Prints documents (a JSON array) or one `--format` line per document; `missing` are the
/// arguments nothing matched, reported after the others as Docker does.
///
/// # Errors
/// A bad template; the missing arguments.
pub fn print(
    ctx: &Ctx,
    docs: &[Value],
    format: Option<&str>,
    missing: &[String],
) -> anyhow::Result<()> {
    match format {
        Some(tpl) if tpl != "json" => {
            for d in docs {
                ctx.printer
                    .data(&format::render_value(tpl, d).map_err(anyhow::Error::msg)?);
            }
        }
        _ => ctx.printer.data(&serde_json::to_string_pretty(docs)?),
    }
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", missing.join("\n"))
    }
}

/// `container inspect`.
///
/// # Errors
/// `No such container` for any argument (after printing the others).
pub fn run(ctx: &Ctx, args: &ContainerInspectArgs) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for arg in &args.containers {
        match container::find(ctx.store.root(), arg) {
            Ok((dir, state)) => {
                let mut doc = document(ctx.store.root(), &dir, &state)?;
                if args.size {
                    add_sizes(ctx, &mut doc, &dir, &state);
                }
                docs.push(doc);
            }
            Err(_) => missing.push(format!(
                "Error response from daemon: No such container: {arg}"
            )),
        }
    }
    print(ctx, &docs, args.format.as_deref(), &missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(flags: &[&str], command: &[&str]) -> RunArgs {
        let mut argv = vec!["berth", "run"];
        argv.extend_from_slice(flags);
        argv.push("img");
        argv.extend_from_slice(command);
        match crate::cli::Cli::try_parse_argv(argv).unwrap().command {
            crate::cli::Command::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn image() -> ImageConfig {
        serde_json::from_value(json!({
            "Entrypoint": ["/entry"],
            "Cmd": ["serve"],
            "User": "app",
            "WorkingDir": "/srv",
            "Labels": {"team": "blue"},
        }))
        .unwrap()
    }

    fn saved(flags: &[&str], command: &[&str]) -> CreateConfig {
        let t = tempfile::tempdir().unwrap();
        save_create_config(t.path(), &run_args(flags, command), Some(&image())).unwrap();
        load_create_config(t.path(), &State::default())
    }

    #[test]
    fn create_config_follows_dockers_entrypoint_and_cmd_rules() {
        let c = saved(&[], &[]);
        assert_eq!(c.entrypoint, Some(vec!["/entry".to_owned()]));
        assert_eq!(c.cmd, Some(vec!["serve".to_owned()]));
        assert_eq!((c.user.as_str(), c.working_dir.as_str()), ("app", "/srv"));
        assert_eq!(c.labels["team"], "blue");
        assert_eq!((c.binds, c.network_mode.as_str()), (None, "bridge"));
        let c = saved(&["--entrypoint", "sh", "-u", "1:2", "-w", "/x"], &[]);
        assert_eq!((c.entrypoint, c.cmd), (Some(vec!["sh".to_owned()]), None));
        assert_eq!((c.user.as_str(), c.working_dir.as_str()), ("1:2", "/x"));
        let c = saved(&["-v", "/a:/b"], &["echo", "hi"]);
        assert_eq!(c.cmd, Some(vec!["echo".to_owned(), "hi".to_owned()]));
        assert_eq!(c.binds, Some(vec!["/a:/b".to_owned()]));
        let c = saved(&["--entrypoint", ""], &["ls"]);
        assert_eq!((c.entrypoint, c.cmd), (None, Some(vec!["ls".to_owned()])));
    }

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
            },
        )
        .unwrap();
        assert_eq!(limits(&spec), (64 << 20, 500_000_000, Some(10)));
        assert_eq!(limits(&Spec::default()), (0, 0, None));
    }
}
