//! Which stages a build can run at once, and running them. Stages up to the target run as soon
//! as the stages they use (`FROM`, `COPY --from`, `RUN --mount from=`; a `--from` naming a
//! variable counts as using every earlier stage) are done: independent stages run in parallel,
//! at most [`parallel_stages`] at once, each on a [`Builder`] of its own. A stage that runs
//! alone logs live; stages that run together log into buffers that are printed whole, in stage
//! order, when the batch ends, so the output reads as the classic builder's. Step numbers are
//! fixed by the Dockerfile, not by the order of work. ONBUILD triggers of an image base are not
//! inspected for `COPY --from`: a trigger naming a stage that is still running fails as an
//! unknown image. Calls only [`super::executor`].

use std::collections::BTreeSet;

use super::dockerfile::{Dockerfile, Kind};
use super::executor::{expand_from, Builder, StageRun};
use super::remote_cache::StepRecord;
use super::Result;

/// How many stages may build at once: the CPUs, at least 2 and at most 4.
#[must_use]
pub fn parallel_stages() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(2, 4)
}

/// The index of the stage `name` names among the stages before `before`.
pub(super) fn stage_index(file: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    file.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
        .or_else(|| name.parse::<usize>().ok().filter(|n| *n < before))
}

/// The earlier stages stage `i` uses.
pub(super) fn stage_deps(
    file: &Dockerfile,
    meta: &[(String, Option<String>)],
    i: usize,
) -> Result<BTreeSet<usize>> {
    let mut out = BTreeSet::new();
    out.extend(stage_index(file, &expand_from(file, meta, i)?, i));
    for ins in &file.stages[i].instructions {
        let froms: Vec<&str> = match &ins.kind {
            Kind::Copy(c) => c.from.as_deref().into_iter().collect(),
            Kind::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
            _ => Vec::new(),
        };
        for f in froms {
            if f.contains('$') {
                out.extend(0..i);
            } else {
                out.extend(stage_index(file, f, i));
            }
        }
    }
    Ok(out)
}

/// What a stage built on a builder of its own brings back.
struct Forked {
    stage: usize,
    result: Result<StageRun>,
    lines: Vec<String>,
    records: Vec<StepRecord>,
    cached: usize,
    consumed: BTreeSet<String>,
    base: Option<usize>,
}

impl Builder<'_> {
    /// Builds `stages` at once, each on a builder of its own with a buffered log; prints the
    /// buffers in stage order and merges what the builders learned. The first failure (in
    /// stage order) is returned once every stage of the batch has ended.
    pub(super) fn run_together(
        &mut self,
        stages: &[usize],
        first: &[usize],
        target: usize,
    ) -> Result<()> {
        // Everything but the log, which is not shared between threads.
        let (store, ctx, opts, net, cache, file, done, meta_args) = (
            self.store,
            self.ctx,
            self.opts,
            self.net,
            &self.cache,
            &self.file,
            &self.done,
            &self.meta_args,
        );
        let (n, total) = (self.bases.len(), self.total);
        let forked: Vec<Forked> = std::thread::scope(|scope| {
            let handles: Vec<_> = stages
                .iter()
                .map(|&i| {
                    scope.spawn(move || {
                        let lines = std::sync::Mutex::new(Vec::new());
                        let log = |l: &str| {
                            if let Ok(mut v) = lines.lock() {
                                v.push(l.to_owned());
                            }
                        };
                        let mut w = Builder {
                            store,
                            ctx,
                            opts,
                            log: &log,
                            cache: cache.clone(),
                            net,
                            records: Vec::new(),
                            current: i,
                            bases: vec![None; n],
                            file: file.clone(),
                            done: done.clone(),
                            step: first[i] - 1,
                            total,
                            cached: 0,
                            consumed: BTreeSet::new(),
                            meta_args: meta_args.clone(),
                        };
                        let result = w.stage(i, i == target);
                        let (records, cached, consumed, base) =
                            (w.records, w.cached, w.consumed, w.bases[i]);
                        Forked {
                            stage: i,
                            result,
                            lines: lines.into_inner().unwrap_or_default(),
                            records,
                            cached,
                            consumed,
                            base,
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a stage builder panicked"))
                .collect()
        });
        let mut failed = None;
        for f in forked {
            for l in &f.lines {
                (self.log)(l);
            }
            self.records.extend(f.records);
            self.cached += f.cached;
            self.consumed.extend(f.consumed);
            self.bases[f.stage] = f.base;
            match f.result {
                Ok(st) => self.done[f.stage] = Some((st.state, st.missed)),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::dockerfile::parse;

    #[test]
    fn stages_depend_on_what_they_use() {
        let file = parse(
            "ARG B=base\nFROM x AS base\nFROM y AS tools\nFROM ${B} AS app\nCOPY --from=tools /t /t\nRUN --mount=from=1,target=/m true\nFROM z\nCOPY --from=$S /a /a\n",
        )
        .unwrap();
        let meta = vec![("B".to_owned(), Some("base".to_owned()))];
        let deps = |i| {
            stage_deps(&file, &meta, i)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(deps(0), Vec::<usize>::new());
        assert_eq!(deps(1), Vec::<usize>::new());
        assert_eq!(
            deps(2),
            [0, 1],
            "FROM ${{B}}, COPY --from=tools, --mount from=1"
        );
        assert_eq!(
            deps(3),
            [0, 1, 2],
            "a --from with a variable waits for every stage"
        );
        assert_eq!(stage_index(&file, "TOOLS", 3), Some(1));
        assert_eq!(stage_index(&file, "app", 2), None, "only earlier stages");
    }
}
