//! `[[retention]]` policies: which tags and untagged manifests go before a GC run.
//!
//! A plan is computed first, without side effects; a real run then executes exactly that plan
//! through the service's own deletes (tag DELETE, manifest DELETE), so `--dry-run` lists what a
//! real run removes. GC frees the space afterwards.
//!
//! Per tag, the time that counts is the later of its push (the tag link's mtime) and its last
//! recorded pull (`_manifests/tags/<tag>/pulled`, written at most once a minute per tag).
//! A tag stays when any clause keeps it: `keep_tags` globs, `keep_within_secs`, or being among
//! the `keep_last` most recent of the tags `keep_tags` does not already keep. Untagged manifests (`untagged_after_secs`) stay while a kept tag
//! reaches them through an index, while their `subject` is kept (referrers of kept manifests),
//! and for that long after their push.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use berth_config::registry_ops::RetentionRule;
use serde::Serialize;

use super::{mark, Result};
use crate::service::{paths, Registry};

/// A tag removed (or to remove).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RemovedTag {
    /// Repository.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Manifest it pointed at.
    pub digest: String,
}

/// An untagged manifest removed (or to remove).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RemovedManifest {
    /// Repository.
    pub repository: String,
    /// Manifest digest.
    pub digest: String,
}

/// What retention did or would do.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Tags.
    pub tags: Vec<RemovedTag>,
    /// Untagged manifests.
    pub manifests: Vec<RemovedManifest>,
}

/// Shell-style glob: `*` within a path component, `**` across, `?` one character.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=t.len()).any(|i| go(rest, &t[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=t.len() {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if t.get(i) == Some(&b'/') {
                        break;
                    }
                }
                false
            }
            Some(b'?') => t.first().is_some_and(|c| *c != b'/') && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// The first rule naming `repository`.
#[must_use]
pub fn rule_for<'a>(rules: &'a [RetentionRule], repository: &str) -> Option<&'a RetentionRule> {
    rules
        .iter()
        .find(|r| r.repositories.iter().any(|g| glob(g, repository)))
}

struct TagInfo {
    tag: String,
    digest: String,
    used: SystemTime,
}

fn mtime(reg: &Registry, path: &str) -> Result<Option<SystemTime>> {
    match reg.driver.stat(path) {
        Ok(i) => Ok(Some(i.modified)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn tags(reg: &Registry, name: &str) -> Result<Vec<TagInfo>> {
    let mut out = Vec::new();
    for tag in reg.list_or_empty(&paths::tags_dir(name))? {
        let link = paths::tag_link(name, &tag);
        let digest = match reg.driver.get(&link) {
            Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let pushed = mtime(reg, &link)?.unwrap_or(SystemTime::UNIX_EPOCH);
        let pulled = mtime(reg, &pulled_path(name, &tag))?.unwrap_or(SystemTime::UNIX_EPOCH);
        out.push(TagInfo {
            tag,
            digest,
            used: pushed.max(pulled),
        });
    }
    Ok(out)
}

fn pulled_path(name: &str, tag: &str) -> String {
    format!("{}/pulled", paths::tag_dir(name, tag))
}

/// Computes what the rules remove, touching nothing.
///
/// # Errors
/// Storage failures.
pub fn plan(reg: &Registry) -> Result<RetentionReport> {
    let rules = &reg.config().ops.retention;
    let now = SystemTime::now();
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    let mut report = RetentionReport::default();
    for name in mark::repositories(reg)? {
        let Some(rule) = rule_for(rules, &name) else {
            continue;
        };
        let mut all = tags(reg, &name)?;
        // Most recent first; ties by name so the plan is deterministic.
        all.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.tag.cmp(&b.tag)));
        let mut kept_targets: HashSet<String> = HashSet::new();
        // Tags kept by `keep_tags` do not take `keep_last` places.
        let mut ranked = 0u64;
        for t in &all {
            let pinned = rule.keep_tags.iter().any(|g| glob(g, &t.tag));
            let recent = rule
                .keep_within_secs
                .is_some_and(|s| age(t.used) < Duration::from_secs(s));
            let in_last = !pinned && rule.keep_last.is_some_and(|n| ranked < n);
            if !pinned {
                ranked += 1;
            }
            let keep = !rule.limits_tags() || pinned || recent || in_last;
            if keep {
                kept_targets.insert(t.digest.clone());
            } else {
                report.tags.push(RemovedTag {
                    repository: name.clone(),
                    tag: t.tag.clone(),
                    digest: t.digest.clone(),
                });
            }
        }
        let removed_targets: HashSet<String> = report
            .tags
            .iter()
            .filter(|t| t.repository == name)
            .map(|t| t.digest.clone())
            .collect();
        if rule.untagged_after_secs.is_none() && removed_targets.is_empty() {
            continue;
        }
        // Children and subjects of every revision, then the closure of what kept tags reach.
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        let mut subject: HashMap<String, String> = HashMap::new();
        let revisions = mark::revisions(reg, &name)?;
        for (digest, _, _) in &revisions {
            let Ok(d) = digest.parse() else { continue };
            let Ok(bytes) = reg.driver.get(&paths::blob_data(&d)) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                // Unparseable: keep it (and GC refuses to sweep, naming it).
                kept_targets.insert(digest.clone());
                continue;
            };
            if let Some(list) = v.get("manifests").and_then(|l| l.as_array()) {
                children.insert(
                    digest.clone(),
                    list.iter()
                        .filter_map(|c| c.get("digest")?.as_str().map(str::to_owned))
                        .collect(),
                );
            }
            if let Some(s) = v.pointer("/subject/digest").and_then(|s| s.as_str()) {
                subject.insert(digest.clone(), s.to_owned());
            }
        }
        let kept = closure(kept_targets, &children, &subject);
        // What only the removed tags reached goes with them, whatever its age: that is what
        // lets GC free a removed tag's layers.
        let dropped = closure(removed_targets, &children, &subject);
        for (digest, _, pushed) in revisions {
            if kept.contains(&digest) {
                continue;
            }
            let expired = rule
                .untagged_after_secs
                .is_some_and(|after| age(pushed) >= Duration::from_secs(after));
            if dropped.contains(&digest) || expired {
                report.manifests.push(RemovedManifest {
                    repository: name.clone(),
                    digest,
                });
            }
        }
    }
    report.tags.sort();
    report.manifests.sort();
    Ok(report)
}

/// `start` and everything it reaches through index children and referrers (`subject`).
fn closure(
    mut set: HashSet<String>,
    children: &HashMap<String, Vec<String>>,
    subject: &HashMap<String, String>,
) -> HashSet<String> {
    loop {
        let before = set.len();
        let reached: Vec<String> = set
            .iter()
            .filter_map(|k| children.get(k))
            .flatten()
            .cloned()
            .collect();
        set.extend(reached);
        let referrers: Vec<String> = subject
            .iter()
            .filter(|(_, s)| set.contains(*s))
            .map(|(r, _)| r.clone())
            .collect();
        set.extend(referrers);
        if set.len() == before {
            return set;
        }
    }
}

/// Plans, then (unless `dry_run`) removes the tags and manifests through the service.
///
/// # Errors
/// Storage failures.
pub fn apply(reg: &Registry, dry_run: bool) -> Result<RetentionReport> {
    let report = plan(reg)?;
    if dry_run {
        return Ok(report);
    }
    let gone = |r: crate::service::Result<()>| match r {
        Err(crate::service::ServiceError::ManifestUnknown { .. }) => Ok(()),
        other => other,
    };
    for t in &report.tags {
        // The tag may have moved since the plan: only delete it while it points where it did.
        let link = paths::tag_link(&t.repository, &t.tag);
        let now = reg.driver.get(&link).ok();
        if now
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).trim().to_owned())
            == Some(t.digest.clone())
        {
            gone(reg.delete_manifest(&t.repository, &t.tag))?;
            tracing::info!(
                repository = t.repository,
                tag = t.tag,
                digest = t.digest,
                "retention removed tag"
            );
        }
    }
    for m in &report.manifests {
        // A tag pushed since the plan makes the manifest wanted again.
        let tagged = reg
            .list_or_empty(&paths::tags_dir(&m.repository))?
            .iter()
            .any(|t| {
                reg.driver
                    .get(&paths::tag_link(&m.repository, t))
                    .is_ok_and(|b| String::from_utf8_lossy(&b).trim() == m.digest)
            });
        if tagged {
            continue;
        }
        gone(reg.delete_manifest(&m.repository, &m.digest))?;
        tracing::info!(
            repository = m.repository,
            digest = m.digest,
            "retention removed untagged manifest"
        );
    }
    Ok(report)
}

/// A layer recording successful manifest GETs by tag (see [`record_pull`]).
pub async fn pull_layer(
    axum::extract::State(registry): axum::extract::State<std::sync::Arc<Registry>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let pulled = (req.method() == axum::http::Method::GET)
        .then(|| {
            req.uri()
                .path()
                .strip_prefix("/v2/")
                .map(crate::route::parse)
        })
        .flatten()
        .and_then(std::result::Result::ok);
    let resp = next.run(req).await;
    if let Some(crate::route::Route::Manifest { name, reference }) = pulled {
        if resp.status().is_success() && !reference.contains(':') {
            let _ = tokio::task::spawn_blocking(move || record_pull(&registry, &name, &reference))
                .await;
        }
    }
    resp
}

/// Records a pull of `name:tag` for `keep_last`/`keep_within_secs` (at most once a minute per
/// tag; never in read-only mode; failures only logged).
pub fn record_pull(reg: &Registry, name: &str, tag: &str) {
    if reg.config().read_only || reg.config().ops.retention.is_empty() {
        return;
    }
    let key = format!("{name}:{tag}");
    {
        let mut seen = reg
            .gc_gate()
            .pulls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen
            .get(&key)
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        if seen.len() > 16_384 {
            seen.clear();
        }
        seen.insert(key, Instant::now());
    }
    if !reg.exists(&paths::tag_link(name, tag)).unwrap_or(false) {
        return;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Err(e) = reg
        .driver
        .put(&pulled_path(name, tag), now.to_string().as_bytes())
    {
        tracing::debug!(error = %e, repository = name, tag, "could not record the pull time");
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("team/*", "team/app"));
        assert!(!glob("team/*", "team/app/x"));
        assert!(glob("team/**", "team/app/x"));
        assert!(glob("**", "a/b/c"));
        assert!(glob("v1.?", "v1.2"));
        assert!(glob("v*", "v1.2.3"));
        assert!(!glob("v*", "latest"));
        assert!(glob("latest", "latest"));
    }
}
