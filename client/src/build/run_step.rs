//! RUN: the command runs in a container whose root is an overlay of the state's layers over an
//! empty upper dir ([`super::root`]), through `berth_runtime` (`spec::build`, `run::run_full`),
//! as `berth run` does but without the `run` command. Build arguments in scope are its
//! environment (ENV wins). `--mount=type=cache|bind|secret|tmpfs` become OCI mounts; mount
//! points the runtime had to create are removed from the upper dir afterwards, so they do not
//! end up in the layer. Output goes to the log (kept and shown on failure with `-q`). On the
//! bridge (the default, as Docker's builder) the container is attached like a `berth run`
//! container (`crate::network::attach`, connected from the runtime's prestart hook) and its
//! address is released when the step ends.

use std::io::{BufRead as _, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_runtime::spec::{self, Network, ResourceLimits, RunOptions};
use oci_spec::runtime::MountBuilder;

use super::dockerfile::{CommandForm, Instruction, Mount, MountType, Run};
use super::executor::{Builder, StageRun};
use super::root::BuildRoot;
use super::state::ImageState;
use super::{layer, meta, BuildError, BuildNetwork, Result};
use crate::store::LayerRecord;

/// The argv of a RUN (heredocs folded into the shell script as Docker's BuildKit does).
fn argv(run: &Run, state: &ImageState) -> Vec<String> {
    let shell = state.shell();
    match (&run.command, run.heredocs.as_slice()) {
        (CommandForm::Shell(s), [only])
            if s.trim() == format!("<<{}", only.name)
                || s.trim() == format!("<<-{}", only.name) =>
        {
            meta::argv(&CommandForm::Shell(only.content.clone()), &shell)
        }
        (CommandForm::Shell(s), docs) if !docs.is_empty() => {
            let mut script = s.clone();
            for d in docs {
                script.push('\n');
                script.push_str(&d.content);
                script.push_str(&d.name);
            }
            meta::argv(&CommandForm::Shell(script), &shell)
        }
        (form, _) => meta::argv(form, &shell),
    }
}

/// Runs one RUN instruction (or serves it from the cache).
pub(super) fn dispatch(
    b: &mut Builder<'_>,
    st: &mut StageRun,
    ins: &Instruction,
    run: &Run,
) -> Result<()> {
    let argv = argv(run, &st.state);
    let args_env = st.arg_env();
    let history_args: Vec<String> = args_env.clone();
    let mut created_by = argv.join(" ");
    if !history_args.is_empty() {
        created_by = format!(
            "|{} {} {created_by}",
            history_args.len(),
            history_args.join(" ")
        );
    }
    let mut key_text = created_by.clone();
    for m in &run.mounts {
        key_text.push_str(&format!(" --mount={m:?}"));
    }
    if let Some(n) = &run.network {
        key_text.push_str(&format!(" --network={n}"));
    }
    let mut inputs = super::cache::KeyInputs {
        parent: st.state.id(),
        instruction: key_text,
        args: history_args,
        files: None,
    };
    // A bind mount of the context is an input too.
    let ctx_binds: Vec<&Mount> = run
        .mounts
        .iter()
        .filter(|m| m.kind == MountType::Bind && m.from.is_none())
        .collect();
    if !ctx_binds.is_empty() {
        let mut srcs = Vec::new();
        for m in &ctx_binds {
            srcs.extend(b.ctx.resolve(m.source.as_deref().unwrap_or("."))?);
        }
        inputs.files = Some(b.ctx.hash(&srcs)?);
    }
    let mut env = args_env;
    for (k, v) in &b.opts.build_args {
        if super::executor::is_proxy(k) && st.state.env_value(k).is_none() {
            env.push(format!("{k}={v}"));
        }
    }
    let network = match run.network.as_deref() {
        Some("none") => BuildNetwork::None,
        Some("host") => BuildNetwork::Host,
        Some("bridge") => BuildNetwork::Bridge,
        _ => b.opts.network,
    };
    let line = ins.line;
    b.commit(st, &inputs, &created_by, |b, state| {
        execute(b, state, &argv, &env, &run.mounts, network, line)
    })
}

fn mount_points(spec: &oci_spec::runtime::Spec) -> Vec<PathBuf> {
    spec.mounts()
        .as_ref()
        .map(|m| m.iter().map(|m| m.destination().clone()).collect())
        .unwrap_or_default()
}

/// Mount points (and their parents) that did not exist before the run.
fn missing(rootfs: &Path, points: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in points {
        let mut cur = p.clone();
        loop {
            let rel = cur.strip_prefix("/").unwrap_or(&cur).to_owned();
            if rel.as_os_str().is_empty() || std::fs::symlink_metadata(rootfs.join(&rel)).is_ok() {
                break;
            }
            if !out.contains(&rel) {
                out.push(rel.clone());
            }
            match cur.parent() {
                Some(parent) => cur = parent.to_owned(),
                None => break,
            }
        }
    }
    // Deepest first.
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// Removes mount points the runtime created from the upper dir, if they are still empty.
fn remove_created(upper: &Path, created: &[PathBuf]) {
    for rel in created {
        let p = upper.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir(&p);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {}
        }
    }
}

fn oci_mounts(
    b: &Builder<'_>,
    mounts: &[Mount],
    keep: &mut Vec<BuildRoot>,
    locks: &mut Vec<nix::fcntl::Flock<std::fs::File>>,
    line: usize,
) -> Result<Vec<oci_spec::runtime::Mount>> {
    let mut out = Vec::new();
    let bad = |message: String| BuildError::Invalid { line, message };
    // Cache directories are locked once per id (a RUN naming one twice must not wait for
    // itself), in id order, so two stages running at once cannot each hold one lock and wait
    // for the other's.
    let mut wanted: std::collections::BTreeMap<&str, super::cache::Sharing> =
        std::collections::BTreeMap::new();
    for m in mounts.iter().filter(|m| m.kind == MountType::Cache) {
        let id = m.id.as_deref().or(m.target.as_deref()).unwrap_or_default();
        let sharing = super::cache::Sharing::parse(m.sharing.as_deref());
        // The strictest sharing asked for wins (locked over private over shared).
        let slot = wanted.entry(id).or_insert(sharing);
        if sharing == super::cache::Sharing::Locked
            || (sharing == super::cache::Sharing::Private && *slot == super::cache::Sharing::Shared)
        {
            *slot = sharing;
        }
    }
    let mut cache_dirs = std::collections::BTreeMap::new();
    for (id, sharing) in wanted {
        let (dir, new, lock) = b
            .cache
            .mount(id, sharing)
            .map_err(BuildError::io(b.cache.mount_dir(id)))?;
        locks.push(lock);
        cache_dirs.insert(id.to_owned(), (dir, new));
    }
    for m in mounts {
        let target = m.target.clone();
        let built = match m.kind {
            MountType::Cache => {
                let target = target.expect("checked by the parser");
                let id = m.id.as_deref().unwrap_or(&target);
                let (dir, new) = cache_dirs
                    .get_mut(id)
                    .map(|(d, new)| (d.clone(), std::mem::take(new)))
                    .expect("every cache mount was locked above");
                if new {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = m.mode.unwrap_or(0o755);
                    fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                        .map_err(BuildError::io(&dir))?;
                    let _ = std::os::unix::fs::chown(&dir, m.uid, m.gid);
                }
                MountBuilder::default()
                    .destination(target)
                    .typ("bind")
                    .source(dir)
                    .options(vec!["rbind".into(), "rprivate".into()])
                    .build()
            }
            MountType::Tmpfs => MountBuilder::default()
                .destination(target.expect("checked by the parser"))
                .typ("tmpfs")
                .source("tmpfs")
                .options(vec!["nosuid".into(), "nodev".into(), "mode=1777".into()])
                .build(),
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| {
                            target
                                .as_deref()
                                .and_then(|t| t.rsplit('/').next())
                                .map(str::to_owned)
                        })
                        .ok_or_else(|| bad("a secret mount needs id= or target=".into()))?;
                let Some(src) = b.opts.secrets.get(&id) else {
                    if m.required {
                        return Err(bad(format!(
                            "secret {id} is required but was not given (--secret id={id},src=FILE)"
                        )));
                    }
                    continue;
                };
                MountBuilder::default()
                    .destination(target.unwrap_or_else(|| format!("/run/secrets/{id}")))
                    .typ("bind")
                    .source(src)
                    .options(vec!["rbind".into(), "rprivate".into(), "ro".into()])
                    .build()
            }
            MountType::Bind => {
                let target = target.expect("checked by the parser");
                let source = m.source.clone().unwrap_or_else(|| ".".into());
                let host = match &m.from {
                    None => b.ctx.resolve(&source)?.remove(0).host,
                    Some(from) => {
                        let state = b.source_state(from, line)?;
                        let root = BuildRoot::mount(b.store, &state.layers)?;
                        let found = super::context::resolve_in(&root.rootfs(), &source, None)?;
                        keep.push(root);
                        found[0].host.clone()
                    }
                };
                let mut options = vec!["rbind".into(), "rprivate".into()];
                if m.readonly != Some(false) {
                    options.push("ro".into());
                }
                MountBuilder::default()
                    .destination(target)
                    .typ("bind")
                    .source(host)
                    .options(options)
                    .build()
            }
        };
        out.push(built.map_err(|e| BuildError::setup("a RUN --mount")(e.into()))?);
    }
    Ok(out)
}

/// Gives a RUN container's bridge address back when dropped (also on early returns).
struct Released(String);

impl Drop for Released {
    fn drop(&mut self) {
        crate::network::release(&self.0);
    }
}

/// Runs `argv` on a fresh overlay of `state`; returns the layer of its changes.
fn execute(
    b: &mut Builder<'_>,
    state: &mut ImageState,
    argv: &[String],
    env: &[String],
    mounts: &[Mount],
    network: BuildNetwork,
    line: usize,
) -> Result<Option<(LayerRecord, String)>> {
    let mut root = BuildRoot::mount(b.store, &state.layers)?;
    let id = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    (b.log)(&format!(" ---> Running in {}", &id[..12]));
    let dir = root.dir().to_owned();
    let hostname = id[..12].to_owned();
    let setup = |what: &str| BuildError::setup(what.to_owned());
    let io = |p: &Path| BuildError::io(p.to_owned());
    fs_err::write(dir.join("hostname"), format!("{hostname}\n")).map_err(io(&dir))?;
    fs_err::write(
        dir.join("hosts"),
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{hostname}\n"),
    )
    .map_err(io(&dir))?;
    let resolv = match network {
        // Loopback resolvers of the host cannot be reached from a namespace of its own.
        BuildNetwork::Bridge => crate::network::container_resolv_conf(),
        BuildNetwork::None | BuildNetwork::Host => {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        }
    };
    fs_err::write(dir.join("resolv.conf"), resolv).map_err(io(&dir))?;
    // On the bridge: an address (given back when `_attached` drops) and the veth pair the
    // prestart hook creates in init's namespace.
    let mut attached = None;
    if network == BuildNetwork::Bridge {
        let mut settings = crate::network::Settings {
            network_mode: "bridge".to_owned(),
            ..Default::default()
        };
        let attachment = crate::network::attach(&dir, &id, &hostname, Some(&mut settings), None)
            .map_err(setup("cannot connect the RUN container to the bridge"))?;
        attached = Some((Released(id.clone()), attachment));
    }
    let opts = RunOptions {
        hostname,
        env: env.to_vec(),
        workdir: None,
        user: None,
        entrypoint: Some(String::new()),
        command: argv.to_vec(),
        network: match network {
            BuildNetwork::Bridge => Network::Bridge,
            BuildNetwork::None => Network::None,
            BuildNetwork::Host => Network::Host,
        },
        etc_files: vec![
            (dir.join("hostname"), "/etc/hostname"),
            (dir.join("hosts"), "/etc/hosts"),
            (dir.join("resolv.conf"), "/etc/resolv.conf"),
        ],
    };
    let mut keep = Vec::new();
    // Cache mount locks, held until the RUN is over.
    let mut locks = Vec::new();
    let rootfs = root.rootfs();
    let mut spec = spec::build(state.oci_config().as_ref(), &opts, &rootfs)
        .map_err(|e| setup("cannot set up the RUN container")(e.into()))?;
    spec::apply_limits(
        &mut spec,
        &format!("/berth/build-{id}"),
        &ResourceLimits::default(),
    )
    .map_err(|e| setup("cannot set up the RUN container")(e.into()))?;
    let mut all = spec.mounts().clone().unwrap_or_default();
    all.extend(oci_mounts(b, mounts, &mut keep, &mut locks, line)?);
    spec.set_mounts(Some(all));
    let created = missing(&rootfs, &mount_points(&spec));
    spec.save(dir.join("config.json"))
        .map_err(|e| setup("cannot write the RUN container's config")(e.into()))?;

    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io(&dir)(e.into()))?;
    let write2 = write.try_clone().map_err(io(&dir))?;
    let devnull: OwnedFd = fs_err::File::open("/dev/null")
        .map_err(io(Path::new("/dev/null")))?
        .into_parts()
        .0
        .into();
    let stdio = berth_runtime::run::Stdio {
        stdin: Some(devnull),
        stdout: Some(write),
        stderr: Some(write2),
        console: None,
    };
    let quiet = b.opts.quiet;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for l in BufReader::new(std::fs::File::from(read)).lines() {
            let Ok(l) = l else { break };
            if quiet {
                kept.push(l);
            } else {
                let _ = tx.send(l);
            }
        }
        kept
    });
    let result = match attached.as_ref().and_then(|(_, a)| a.as_ref()) {
        Some(attachment) => berth_runtime::run::run_full(
            &dir,
            &spec,
            stdio,
            &mut attachment.prestart(),
            &mut |_| {},
        ),
        None => berth_runtime::run::run_full(&dir, &spec, stdio, &mut |_| Ok(()), &mut |_| {}),
    };
    drop(attached);
    // The stdio descriptors went to the runtime and are closed by now; drain the rest.
    let kept = loop {
        while let Ok(l) = rx.try_recv() {
            (b.log)(&l);
        }
        if reader.is_finished() {
            while let Ok(l) = rx.try_recv() {
                (b.log)(&l);
            }
            break reader.join().unwrap_or_default();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    (b.log)(&format!("Removing intermediate container {}", &id[..12]));
    let command = argv.join(" ");
    let exit = result.map_err(|source| BuildError::Runtime {
        command: command.clone(),
        source,
    })?;
    if exit.code != 0 {
        return Err(BuildError::RunFailed {
            command,
            code: exit.code,
            output: kept,
        });
    }
    drop(keep);
    drop(locks);
    root.unmount()?;
    remove_created(&root.upper(), &created);
    layer::from_upper(b.store, &root.upper(), b.opts.source_date_epoch)
}
