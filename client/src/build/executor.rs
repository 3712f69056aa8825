//! Runs a parsed Dockerfile stage by stage, step by step, like Docker's classic builder: `Step
//! N/M : …` lines, ` ---> <id>` after each step, the cache consulted first. `FROM` takes a
//! store image, an earlier stage or `scratch`, then the base's ONBUILD triggers.
//!
//! Stages up to the target run as soon as the stages they use are done, independent ones in
//! parallel ([`super::stages`]). Calls [`super::run_step`], [`super::copy`], [`super::meta`],
//! [`super::cache`] and the store (the final image).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::cache::{Cache, KeyInputs};
use super::context::Context;
use super::dockerfile::expand::{expand, referenced};
use super::dockerfile::{parse, parser::parse_trigger, Dockerfile, Instruction, Kind};
use super::remote_cache::StepRecord;
use super::stages::{parallel_stages, stage_deps, stage_index};
use super::state::{ImageState, DEFAULT_PATH};
use super::{meta, BuildError, BuildOptions, Built, Network, Result};
use crate::archive::{media, put_blob, NewBlobs};
use crate::store::{LayerRecord, NewImage, Store};

/// Build arguments Docker accepts without an `ARG` (and leaves out of history).
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// True for the proxy variables Docker passes to RUN without an `ARG`.
pub(super) fn is_proxy(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

/// A stage being built.
pub(super) struct StageRun {
    pub state: ImageState,
    /// `ARG`s in scope, in order, with their values.
    pub args: Vec<(String, Option<String>)>,
    cmd_set: bool,
    /// An earlier step of this stage (or of its base stage) was rebuilt.
    pub(super) missed: bool,
}

impl StageRun {
    /// Expands `word` with ENV (first) and the stage's ARGs.
    pub fn expand(&self, word: &str, escape: char, line: usize) -> Result<String> {
        let lookup = |name: &str| {
            self.state.env_value(name).or_else(|| {
                self.args
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.clone())
            })
        };
        expand(word, escape, &lookup).map_err(|source| BuildError::Expand { line, source })
    }

    /// `NAME=value` of ARGs with a value that ENV does not override, sorted.
    pub fn arg_env(&self) -> Vec<String> {
        let mut seen = BTreeMap::new();
        for (k, v) in &self.args {
            if let Some(v) = v {
                if self.state.env_value(k).is_none() {
                    seen.insert(k.clone(), v.clone());
                }
            }
        }
        seen.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

pub(super) struct Builder<'a> {
    pub store: &'a Store,
    pub ctx: &'a Context,
    pub opts: &'a BuildOptions,
    pub log: &'a dyn Fn(&str),
    pub cache: Cache,
    /// `--cache-from` entries (consulted after the local cache) and the `ADD <url>` downloader.
    pub net: &'a Network<'a>,
    /// Every step's key and resulting state, for `--cache-to`.
    pub(super) records: Vec<StepRecord>,
    /// The stage being built, and for each stage the earlier stage it is built `FROM`.
    pub(super) current: usize,
    pub(super) bases: Vec<Option<usize>>,
    pub file: Dockerfile,
    /// Finished stages (with whether they rebuilt a step), by index.
    pub done: Vec<Option<(ImageState, bool)>>,
    pub(super) step: usize,
    pub(super) total: usize,
    pub(super) cached: usize,
    pub(super) consumed: BTreeSet<String>,
    pub(super) meta_args: Vec<(String, Option<String>)>,
}

fn meta_args(file: &Dockerfile, opts: &BuildOptions) -> Result<Vec<(String, Option<String>)>> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for ins in &file.meta_args {
        let Kind::Arg(list) = &ins.kind else { continue };
        for (k, default) in list {
            let value = match (opts.build_args.get(k), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => {
                    let lookup = |n: &str| {
                        out.iter()
                            .rev()
                            .find(|(k, _)| k == n)
                            .and_then(|(_, v)| v.clone())
                    };
                    Some(
                        expand(d, file.escape, &lookup).map_err(|source| BuildError::Expand {
                            line: ins.line,
                            source,
                        })?,
                    )
                }
                (None, None) => None,
            };
            out.push((k.clone(), value));
        }
    }
    Ok(out)
}

pub(super) fn expand_from(
    file: &Dockerfile,
    meta: &[(String, Option<String>)],
    i: usize,
) -> Result<String> {
    let lookup = |n: &str| {
        meta.iter()
            .rev()
            .find(|(k, _)| k == n)
            .and_then(|(_, v)| v.clone())
    };
    expand(&file.stages[i].base, file.escape, &lookup).map_err(|source| BuildError::Expand {
        line: file.stages[i].from.line,
        source,
    })
}

fn target_index(file: &Dockerfile, target: Option<&str>) -> Result<usize> {
    match target {
        None => Ok(file.stages.len() - 1),
        Some(t) => file
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError::Target {
                target: t.to_owned(),
            }),
    }
}

/// Images (not stages, not `scratch`) the build needs from the store: bases of the stages up
/// to the target and `COPY --from`/`--mount from=` images, so the caller can pull them first.
///
/// # Errors
/// The Dockerfile does not parse, or `--target` names no stage.
pub fn external_images(dockerfile: &str, opts: &BuildOptions) -> Result<Vec<String>> {
    let file = parse(dockerfile)?;
    let target = target_index(&file, opts.target.as_deref())?;
    let meta = meta_args(&file, opts)?;
    let mut out = Vec::new();
    let is_stage = |name: &str, before: usize| {
        file.stages[..before]
            .iter()
            .any(|s| s.name.as_deref() == Some(name.to_ascii_lowercase().as_str()))
            || name.parse::<usize>().is_ok_and(|n| n < before)
    };
    for i in 0..=target {
        let base = expand_from(&file, &meta, i)?;
        if base != "scratch" && !is_stage(&base, i) && !out.contains(&base) {
            out.push(base);
        }
        for ins in &file.stages[i].instructions {
            let froms: Vec<&str> = match &ins.kind {
                Kind::Copy(c) => c.from.as_deref().into_iter().collect(),
                Kind::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
                _ => Vec::new(),
            };
            for f in froms {
                if !f.contains('$') && !is_stage(f, i) && !out.iter().any(|o| o == f) {
                    out.push(f.to_owned());
                }
            }
        }
    }
    Ok(out)
}

/// Builds the image; progress lines go to `log`.
///
/// # Errors
/// A parse error, a failing step, a missing base; nothing is tagged then.
pub fn build(
    store: &Store,
    ctx: &Context,
    opts: &BuildOptions,
    net: &Network<'_>,
    log: &dyn Fn(&str),
) -> Result<Built> {
    let file = parse(&opts.dockerfile)?;
    if let Some(s) = &file.syntax {
        log(&format!(
            "note: `# syntax={s}` is ignored: berth builds with its own Dockerfile frontend"
        ));
    }
    let target = target_index(&file, opts.target.as_deref())?;
    let total = file.step_count(target) + usize::from(!opts.labels.is_empty());
    let mut b = Builder {
        store,
        ctx,
        opts,
        log,
        cache: Cache::new(store.root()),
        net,
        records: Vec::new(),
        current: 0,
        bases: Vec::new(),
        meta_args: meta_args(&file, opts)?,
        file,
        done: Vec::new(),
        step: 0,
        total,
        cached: 0,
        consumed: BTreeSet::new(),
    };
    for ins in b.file.meta_args.clone() {
        b.step += 1;
        (b.log)(&format!("Step {}/{} : {}", b.step, b.total, ins.original));
        if let Kind::Arg(list) = &ins.kind {
            for (k, _) in list {
                if opts.build_args.contains_key(k) {
                    b.consumed.insert(k.clone());
                }
            }
        }
    }
    b.done = vec![None; target + 1];
    b.bases = vec![None; target + 1];
    let deps = (0..=target)
        .map(|i| stage_deps(&b.file, &b.meta_args, i))
        .collect::<Result<Vec<_>>>()?;
    let mut first = vec![b.step + 1; target + 1];
    for i in 1..=target {
        first[i] = first[i - 1] + 1 + b.file.stages[i - 1].instructions.len();
    }
    let mut started = vec![false; target + 1];
    while started.iter().any(|s| !s) {
        let ready: Vec<usize> = (0..=target)
            .filter(|i| !started[*i] && deps[*i].iter().all(|d| b.done[*d].is_some()))
            .take(parallel_stages())
            .collect();
        assert!(!ready.is_empty(), "stage dependencies only point backwards");
        for i in &ready {
            started[*i] = true;
        }
        if let [i] = ready[..] {
            b.step = first[i] - 1;
            let st = b.stage(i, i == target)?;
            b.done[i] = Some((st.state, st.missed));
        } else {
            b.run_together(&ready, &first, target)?;
        }
    }
    b.step = total;
    let (state, _) = b.done[target].take().expect("target stage");
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !b.consumed.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        log(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        ));
    }
    let id = save_image(store, &state, &opts.tags)?;
    // The target stage and the stages it is built FROM: what `mode=min` exports.
    let mut lineage = vec![target];
    while let Some(Some(base)) = lineage.last().and_then(|i| b.bases.get(*i)) {
        lineage.push(*base);
    }
    Ok(Built {
        id,
        cached: b.cached,
        steps: b.step,
        records: b.records,
        lineage,
    })
}

/// Stores the final config and an OCI manifest and registers the image with its tags.
fn save_image(store: &Store, state: &ImageState, tags: &[String]) -> Result<String> {
    let mut new = NewBlobs::new(store);
    let bytes = state.bytes();
    let config = put_blob(store, &mut new, &bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config.to_string(), "size": bytes.len()},
        "layers": state.layers.iter().map(|l| json!({
            "mediaType": l.media_type, "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("serializable");
    let manifest_digest = put_blob(store, &mut new, &manifest_bytes)?;
    let rec = store.add_image(&NewImage {
        manifest: manifest_digest.to_string(),
        manifest_media_type: media::OCI_MANIFEST.into(),
        config: config.to_string(),
        layers: state.layers.clone(),
        repo_digest: None,
        tags: tags.to_vec(),
    })?;
    Ok(rec.id)
}

pub(super) fn short(id: &str) -> String {
    crate::commands::short_id(id)
}

impl Builder<'_> {
    /// Timestamp for history and config: `SOURCE_DATE_EPOCH`, or now.
    pub fn created(&self) -> String {
        match self.opts.source_date_epoch {
            Some(e) => chrono::DateTime::from_timestamp(e, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }

    /// A previous stage by name or index, if `name` is one (before the current stage) and it
    /// is done.
    pub fn stage_state(&self, name: &str) -> Option<&ImageState> {
        stage_index(&self.file, name, self.current)
            .and_then(|i| self.done.get(i))
            .and_then(Option::as_ref)
            .map(|(s, _)| s)
    }

    /// A stage or a stored image, for `COPY --from` and `--mount from=`.
    pub fn source_state(&self, name: &str, line: usize) -> Result<ImageState> {
        if let Some(s) = self.stage_state(name) {
            return Ok(s.clone());
        }
        let rec = self.find_image(name)?;
        ImageState::from_image(self.store, &rec).map_err(BuildError::setup(format!(
            "cannot read image `{name}` (line {line})"
        )))
    }

    fn find_image(&self, name: &str) -> Result<crate::store::ImageRecord> {
        let full = crate::Reference::parse(name).ok().map(|r| r.to_string());
        self.store
            .resolve(name, full.as_deref())
            .map_err(|source| BuildError::NoImage {
                image: name.to_owned(),
                source,
            })
    }

    pub(super) fn stage(&mut self, i: usize, last: bool) -> Result<StageRun> {
        let stage = self.file.stages[i].clone();
        self.current = i;
        self.step += 1;
        (self.log)(&format!(
            "Step {}/{} : {}",
            self.step, self.total, stage.from.original
        ));
        if let Some(p) = &stage.platform {
            let lookup = |n: &str| {
                self.meta_args
                    .iter()
                    .rev()
                    .find(|(k, _)| k == n)
                    .and_then(|(_, v)| v.clone())
            };
            let p = expand(p, self.file.escape, &lookup).unwrap_or_default();
            let host = crate::archive::Platform::host();
            let want = crate::archive::Platform::parse(&p).ok();
            if want.is_some_and(|w| w.os != host.os || w.architecture != host.architecture) {
                return Err(BuildError::Invalid {
                    line: stage.from.line,
                    message: format!(
                        "FROM --platform={p}: berth builds for the host's platform only ({}/{})",
                        host.os, host.architecture
                    ),
                });
            }
        }
        let base = expand_from(&self.file, &self.meta_args, i)?;
        let (mut state, missed) = if base == "scratch" {
            (ImageState::scratch(), false)
        } else if let Some((idx, (s, missed))) = stage_index(&self.file, &base, i)
            .and_then(|idx| Some((idx, self.done.get(idx)?.clone()?)))
        {
            self.bases[i] = Some(idx);
            (s, missed)
        } else {
            let rec = self.find_image(&base)?;
            let s = ImageState::from_image(self.store, &rec)
                .map_err(BuildError::setup(format!("cannot read image `{base}`")))?;
            (s, false)
        };
        (self.log)(&format!(" ---> {}", short(&state.id())));
        if state.env_value("PATH").is_none() {
            state.set_env("PATH", DEFAULT_PATH);
        }
        let triggers = super::state::strings(state.get("OnBuild"));
        if state.get("OnBuild").is_some() {
            state
                .config_mut()
                .insert("OnBuild".into(), serde_json::Value::Null);
        }
        let mut run = StageRun {
            state,
            args: Vec::new(),
            cmd_set: false,
            missed,
        };
        if !triggers.is_empty() {
            (self.log)(&format!(
                "# Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let mut ins = parse_trigger(t, self.file.escape)?;
                ins.line = stage.from.line;
                self.instruction(&mut run, &ins)?;
            }
        }
        for ins in &stage.instructions {
            self.step += 1;
            (self.log)(&format!(
                "Step {}/{} : {}",
                self.step, self.total, ins.original
            ));
            self.instruction(&mut run, ins)?;
        }
        if last && !self.opts.labels.is_empty() {
            let pairs: Vec<(String, String)> = self.opts.labels.clone();
            let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let ins = Instruction {
                line: 0,
                column: 0,
                original: format!("LABEL {}", text.join(" ")),
                kind: Kind::Label(Vec::new()),
            };
            self.step += 1;
            (self.log)(&format!(
                "Step {}/{} : {}",
                self.step, self.total, ins.original
            ));
            let created_by = meta::nop(&ins.original);
            let inputs = self.inputs(&run, created_by.clone(), &[], None);
            self.commit(&mut run, &inputs, &created_by, |_, st| {
                meta::apply(&ins.kind, st, &pairs, &[], &mut false)
                    .map(|_| None)
                    .map_err(|message| BuildError::Invalid { line: 0, message })
            })?;
        }
        Ok(run)
    }

    /// Key inputs: the parent, the instruction text, the values of the build args `raw` uses.
    fn inputs(
        &self,
        run: &StageRun,
        instruction: String,
        raw_words: &[&str],
        files: Option<String>,
    ) -> KeyInputs {
        let mut args = Vec::new();
        for w in raw_words {
            for name in referenced(w) {
                if let Some((k, Some(v))) = run.args.iter().rev().find(|(k, _)| *k == name) {
                    args.push(format!("{k}={v}"));
                }
            }
        }
        args.sort();
        args.dedup();
        KeyInputs {
            parent: run.state.id(),
            instruction,
            args,
            files,
        }
    }

    /// Serves a step from the cache, or runs `apply` on a copy of the state and records it.
    pub fn commit(
        &mut self,
        run: &mut StageRun,
        inputs: &KeyInputs,
        created_by: &str,
        apply: impl FnOnce(&mut Self, &mut ImageState) -> Result<Option<(LayerRecord, String)>>,
    ) -> Result<()> {
        if !self.opts.no_cache {
            if let Some(hit) = self
                .cache
                .get(self.store, inputs)
                .or_else(|| self.imported_hit(inputs))
            {
                (self.log)(if self.opts.plain {
                    " ---> CACHED"
                } else {
                    " ---> Using cache"
                });
                run.state = hit;
                self.records.push(StepRecord {
                    stage: self.current,
                    key: inputs.key(),
                    state: run.state.clone(),
                });
                (self.log)(&format!(" ---> {}", short(&run.state.id())));
                self.cached += 1;
                return Ok(());
            }
        }
        if self.opts.plain {
            let why = if self.opts.no_cache {
                "--no-cache".to_owned()
            } else if run.missed {
                "an earlier step was rebuilt".to_owned()
            } else {
                self.cache.miss_reason(inputs)
            };
            (self.log)(&format!(" ---> cache miss: {why}"));
        }
        run.missed = true;
        let mut next = run.state.clone();
        let layer = apply(self, &mut next)?;
        let created = self.created();
        next.record(&created, created_by, layer);
        self.cache.put(inputs, &next);
        self.records.push(StepRecord {
            stage: self.current,
            key: inputs.key(),
            state: next.clone(),
        });
        run.state = next;
        (self.log)(&format!(" ---> {}", short(&run.state.id())));
        Ok(())
    }

    /// An entry of `--cache-from` for `inputs`, its missing layers fetched into the store and
    /// the entry copied into the local cache. A layer that cannot be fetched makes it a miss
    /// (with a warning), as a cache must never fail a build.
    fn imported_hit(&self, inputs: &KeyInputs) -> Option<ImageState> {
        let state = self.net.cache.entries.get(&inputs.key())?;
        for l in &state.layers {
            let present = l
                .diff_id
                .parse()
                .ok()
                .is_some_and(|d| self.store.layer_size(&d).is_some())
                && l.digest
                    .parse()
                    .ok()
                    .is_some_and(|d| self.store.has_blob(&d));
            if present {
                continue;
            }
            let fetched = match &self.net.cache.fetch {
                Some(fetch) => fetch(l),
                None => Err(anyhow::anyhow!("no registry to fetch it from")),
            };
            if let Err(e) = fetched {
                (self.log)(&format!(
                    "[Warning] cannot fetch cached layer {} from the cache: {e:#}",
                    l.digest
                ));
                return None;
            }
        }
        self.cache.put(inputs, state);
        self.cache.get(self.store, inputs)
    }

    fn instruction(&mut self, run: &mut StageRun, ins: &Instruction) -> Result<()> {
        let esc = self.file.escape;
        let line = ins.line;
        match &ins.kind {
            Kind::Run(r) => super::run_step::dispatch(self, run, ins, r),
            Kind::Copy(c) => super::copy::dispatch(self, run, ins, c, false),
            Kind::Add(c) => super::copy::dispatch(self, run, ins, c, true),
            Kind::Workdir(w) => {
                let w = run.expand(w, esc, line)?;
                let path = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", run.state.workdir().trim_end_matches('/'))
                };
                let path = super::copy::clean_abs(&path);
                let created_by = format!("/bin/sh -c #(nop) WORKDIR {path}");
                let inputs = self.inputs(run, created_by.clone(), &[&ins.original], None);
                self.commit(run, &inputs, &created_by, |b, st| {
                    st.config_mut().insert("WorkingDir".into(), json!(path));
                    super::copy::make_workdir(b, st, &path)
                })
            }
            Kind::Arg(list) => {
                let mut words = Vec::new();
                for (k, default) in list {
                    let value = match (self.opts.build_args.get(k), default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => Some(run.expand(d, esc, line)?),
                        (None, None) => self
                            .meta_args
                            .iter()
                            .rev()
                            .find(|(m, _)| m == k)
                            .and_then(|(_, v)| v.clone()),
                    };
                    if self.opts.build_args.contains_key(k) {
                        self.consumed.insert(k.clone());
                    }
                    words.push(match default {
                        Some(d) => format!("{k}={d}"),
                        None => k.clone(),
                    });
                    run.args.push((k.clone(), value));
                }
                let created_by = meta::nop(&format!("ARG {}", words.join(" ")));
                let mut inputs = self.inputs(run, created_by.clone(), &[], None);
                inputs.args = run
                    .args
                    .iter()
                    .filter(|(k, _)| list.iter().any(|(n, _)| n == k))
                    .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
                    .collect();
                let kind = ins.kind.clone();
                self.commit(run, &inputs, &created_by, |_, st| {
                    meta::apply(&kind, st, &[], &words, &mut false)
                        .map(|_| None)
                        .map_err(|message| BuildError::Invalid { line, message })
                })
            }
            kind => {
                let (pairs, words) = match kind {
                    Kind::Env(p) | Kind::Label(p) => {
                        let mut out = Vec::new();
                        for (k, v) in p {
                            out.push((run.expand(k, esc, line)?, run.expand(v, esc, line)?));
                        }
                        (out, Vec::new())
                    }
                    Kind::User(w) | Kind::StopSignal(w) => {
                        (Vec::new(), vec![run.expand(w, esc, line)?])
                    }
                    Kind::Maintainer(w) => (Vec::new(), vec![w.clone()]),
                    Kind::Expose(v) | Kind::Volume(v) => {
                        let mut out = Vec::new();
                        for w in v {
                            out.push(run.expand(w, esc, line)?);
                        }
                        (Vec::new(), out)
                    }
                    _ => (Vec::new(), Vec::new()),
                };
                let mut probe = run.state.clone();
                let mut cmd_set = run.cmd_set;
                let created_by = meta::apply(kind, &mut probe, &pairs, &words, &mut cmd_set)
                    .map_err(|message| BuildError::Invalid { line, message })?;
                let inputs = self.inputs(run, created_by.clone(), &[&ins.original], None);
                run.cmd_set = cmd_set;
                self.commit(run, &inputs, &created_by, move |_, st| {
                    *st = probe;
                    Ok(None)
                })
            }
        }
    }
}
