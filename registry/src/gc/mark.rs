//! The mark phase: every repository, every manifest revision, everything they reach.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use super::{GcError, Result};
use crate::service::{paths, Registry};

/// What the mark phase found.
#[derive(Default)]
pub(crate) struct Marked {
    /// Digests reachable from some manifest revision (the revisions themselves included).
    pub live: HashSet<String>,
    /// Unmarked digest → newest modification time of its layer links, and the repositories
    /// (indices into `repositories`) holding them. Marked digests are not recorded: in a
    /// registry that is mostly live this stays small.
    pub unmarked_links: HashMap<String, (SystemTime, Vec<u32>)>,
    /// Repositories seen (with manifests or only blobs).
    pub repositories: Vec<String>,
    /// Manifest revisions read.
    pub manifests: usize,
}

/// Repositories under `repositories/`: every directory holding `_manifests` or `_layers`.
pub(crate) fn repositories(reg: &Registry) -> Result<Vec<String>> {
    let mut out = Vec::new();
    walk(reg, "repositories", "", &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(reg: &Registry, dir: &str, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let children = reg.list_or_empty(dir)?;
    if children.iter().any(|c| c == "_manifests" || c == "_layers") {
        out.push(prefix.to_owned());
    }
    for child in children.iter().filter(|c| !c.starts_with('_')) {
        let name = if prefix.is_empty() {
            child.clone()
        } else {
            format!("{prefix}/{child}")
        };
        walk(reg, &format!("{dir}/{child}"), &name, out)?;
    }
    Ok(())
}

/// `(digest, media type, link mtime)` of every manifest revision of `name`.
pub(crate) fn revisions(reg: &Registry, name: &str) -> Result<Vec<(String, String, SystemTime)>> {
    let base = format!("{}/revisions", paths::manifests_dir(name));
    let mut out = Vec::new();
    for alg in reg.list_or_empty(&base)? {
        for hex in reg.list_or_empty(&format!("{base}/{alg}"))? {
            let link = format!("{base}/{alg}/{hex}/link");
            let (bytes, info) = match (reg.driver.get(&link), reg.driver.stat(&link)) {
                (Ok(b), Ok(i)) => (b, i),
                // A revision directory without its link (crash mid-write or mid-delete).
                (Err(e), _) | (_, Err(e)) if e.is_not_found() => continue,
                (Err(e), _) | (_, Err(e)) => return Err(e.into()),
            };
            let text = String::from_utf8_lossy(&bytes);
            let media_type = text.split_once('\n').map_or("", |(_, t)| t.trim());
            out.push((format!("{alg}:{hex}"), media_type.to_owned(), info.modified));
        }
    }
    Ok(out)
}

/// Digests a manifest document references: config, layers, index children, legacy `blobs`.
pub(crate) fn references(bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let digest =
        |d: &serde_json::Value| d.get("digest").and_then(|x| x.as_str()).map(str::to_owned);
    if let Some(c) = v.get("config") {
        out.extend(digest(c));
    }
    for key in ["layers", "manifests", "blobs"] {
        if let Some(list) = v.get(key).and_then(|l| l.as_array()) {
            out.extend(list.iter().filter_map(digest));
        }
    }
    Ok(out)
}

/// Marks from every manifest revision of every repository, except the `(repository, digest)`
/// pairs in `skip` (what a dry run's retention would have deleted).
pub(crate) fn mark(
    reg: &Registry,
    skip: &HashSet<(String, String)>,
    pacer: &mut super::Pacer,
) -> Result<Marked> {
    let mut m = Marked {
        repositories: repositories(reg)?,
        ..Marked::default()
    };
    // Pass 1: what every manifest revision reaches.
    for name in &m.repositories {
        for (digest, _, _) in revisions(reg, name)? {
            pacer.tick();
            if skip.contains(&(name.clone(), digest.clone())) {
                continue;
            }
            m.manifests += 1;
            let parsed: Digest = match digest.parse() {
                Ok(d) => d,
                Err(_) => continue,
            };
            let bytes = match reg.driver.get(&paths::blob_data(&parsed)) {
                Ok(b) => b,
                // A revision whose content is gone does not resolve; nothing to keep for it.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            // A manifest we cannot read might reference anything: stop rather than guess.
            let refs = references(&bytes).map_err(|reason| GcError::Unreadable {
                repository: name.clone(),
                digest: digest.clone(),
                reason,
            })?;
            m.live.insert(digest);
            m.live.extend(refs);
        }
    }
    // Pass 2: layer links of what is not marked (their age counts for the grace period, and
    // the sweep removes them).
    for (i, name) in m.repositories.iter().enumerate() {
        pacer.tick();
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let layers = format!("{}/_layers", paths::repo(name));
        for alg in reg.list_or_empty(&layers)? {
            for hex in reg.list_or_empty(&format!("{layers}/{alg}"))? {
                let digest = format!("{alg}:{hex}");
                if m.live.contains(&digest) {
                    continue;
                }
                let modified = match reg.driver.stat(&format!("{layers}/{alg}/{hex}/link")) {
                    Ok(info) => info.modified,
                    // A link directory without its link: only its removal is left to do.
                    Err(e) if e.is_not_found() => SystemTime::UNIX_EPOCH,
                    Err(e) => return Err(e.into()),
                };
                let entry = m
                    .unmarked_links
                    .entry(digest)
                    .or_insert((modified, Vec::new()));
                entry.0 = entry.0.max(modified);
                entry.1.push(index);
            }
        }
    }
    Ok(m)
}

use oci_spec::image::Digest;
