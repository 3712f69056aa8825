//! The operations sections of the registry configuration (issue 11): `[gc]`, `[[retention]]`,
//! `[metrics]` and `[[notifications]]`.
//!
//! ```toml
//! [gc]
//! interval_secs = 3600        # 0 turns the scheduled run off (`berth-registry gc` still works)
//! grace_secs = 3600           # unreferenced blobs younger than this are never swept
//!
//! [[retention]]
//! repositories = ["team/*"]   # globs (`*` within a path component, `**` across)
//! keep_last = 10              # the 10 most recently pushed (or pulled) tags
//! keep_within_secs = 604800   # and every tag pushed or pulled within a week
//! keep_tags = ["v*", "latest"]
//! untagged_after_secs = 86400 # untagged manifests go a day after their push
//!
//! [metrics]
//! addr = "127.0.0.1:9102"     # optional: serve /metrics there instead of on the API address
//!
//! [[notifications]]
//! url = "http://hooks.example/registry"
//! events = ["push", "delete"] # default: every action (push, pull, mount, delete)
//! headers = { Authorization = "Bearer s3cret" }
//! ```
//!
//! Variables: `BERTH_REGISTRY_GC_INTERVAL_SECS`, `BERTH_REGISTRY_GC_GRACE_SECS`,
//! `BERTH_REGISTRY_METRICS_ADDR`, and for the arrays of tables a TOML inline array, as
//! `BERTH_REGISTRY_AUTH_ACCESS`: `BERTH_REGISTRY_RETENTION='[{repositories=["a/*"], keep_last=3}]'`,
//! `BERTH_REGISTRY_NOTIFICATIONS='[{url="http://…", events=["push"]}]'` (replacing the file's).
//! `registry.rs` only calls [`overlay`] and [`build`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::registry::{invalid, parse_u64, Result};

/// Event actions a notification endpoint can ask for.
pub const ACTIONS: &[&str] = &["push", "pull", "mount", "delete"];

/// Everything of issue 11, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ops {
    /// `[gc]`
    pub gc: GcConfig,
    /// `[[retention]]`, in file order; the first rule whose glob matches a repository applies.
    pub retention: Vec<RetentionRule>,
    /// `[metrics]`
    pub metrics: MetricsConfig,
    /// `[[notifications]]`
    pub notifications: Vec<NotificationEndpoint>,
}

/// `[gc]`: online garbage collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    /// Seconds between scheduled runs in the serving process; 0 turns them off.
    ///
    /// Default 3600: a run walks every manifest (seconds for thousands of repositories), so
    /// hourly costs little and keeps deleted content from lingering for long.
    pub interval_secs: u64,
    /// Unreferenced blobs written, linked or mounted less than this many seconds ago are kept.
    ///
    /// Default 3600: a push uploads its blobs first and its manifest last; no client takes an
    /// hour between the two, and the CNCF registry's upload purge uses a similar margin.
    pub grace_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            interval_secs: 3600,
            grace_secs: 3600,
        }
    }
}

/// One `[[retention]]` rule. Tags that no keep clause keeps are deleted (OCI tag DELETE); GC
/// then frees what only they held.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Repository globs this rule applies to (`*` within a component, `**` across components).
    pub repositories: Vec<String>,
    /// Keep the N tags most recently pushed or pulled.
    #[serde(default)]
    pub keep_last: Option<u64>,
    /// Keep tags pushed or pulled within this many seconds.
    #[serde(default)]
    pub keep_within_secs: Option<u64>,
    /// Keep tags matching these globs, whatever their age.
    #[serde(default)]
    pub keep_tags: Vec<String>,
    /// Delete manifests that no tag (and no kept index or subject) reaches, this many seconds
    /// after their push. Unset: untagged manifests are kept.
    #[serde(default)]
    pub untagged_after_secs: Option<u64>,
}

impl RetentionRule {
    /// True when some clause removes tags (a rule with only `untagged_after_secs` keeps all tags).
    #[must_use]
    pub fn limits_tags(&self) -> bool {
        self.keep_last.is_some() || self.keep_within_secs.is_some() || !self.keep_tags.is_empty()
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsConfig {
    /// Serve `/metrics` (and `/livez`, `/readyz`) on this address only; `None`: on the API
    /// address, beside `/v2/`.
    pub addr: Option<SocketAddr>,
}

/// One `[[notifications]]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationEndpoint {
    /// Where events are POSTed.
    pub url: String,
    /// Actions sent (`push`, `pull`, `mount`, `delete`); default all.
    pub events: Vec<String>,
    /// Extra request headers (e.g. `Authorization`).
    pub headers: BTreeMap<String, String>,
    /// Seconds one POST may take. Default 5, as the CNCF registry's `timeout`.
    pub timeout_secs: u64,
    /// Events kept on disk for this endpoint while it is down; past it the oldest are dropped
    /// (and counted). Default 100000: about 50 MB of envelopes.
    pub max_pending: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileGc {
    interval_secs: Option<u64>,
    grace_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileMetrics {
    addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileNotification {
    url: String,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    max_pending: Option<u64>,
}

/// The raw sections as read from the file.
#[derive(Debug, Default)]
pub(crate) struct FileOps {
    pub(crate) gc: Option<FileGc>,
    pub(crate) retention: Option<Vec<RetentionRule>>,
    pub(crate) metrics: Option<FileMetrics>,
    pub(crate) notifications: Option<Vec<FileNotification>>,
}

/// Applies the `BERTH_REGISTRY_GC_*`, `BERTH_REGISTRY_METRICS_ADDR`, `BERTH_REGISTRY_RETENTION`
/// and `BERTH_REGISTRY_NOTIFICATIONS` variables.
pub(crate) fn overlay(raw: &mut FileOps, env: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(v) = env("BERTH_REGISTRY_GC_INTERVAL_SECS") {
        raw.gc.get_or_insert_with(Default::default).interval_secs =
            Some(parse_u64("BERTH_REGISTRY_GC_INTERVAL_SECS", &v)?);
    }
    if let Some(v) = env("BERTH_REGISTRY_GC_GRACE_SECS") {
        raw.gc.get_or_insert_with(Default::default).grace_secs =
            Some(parse_u64("BERTH_REGISTRY_GC_GRACE_SECS", &v)?);
    }
    if let Some(v) = env("BERTH_REGISTRY_METRICS_ADDR") {
        raw.metrics.get_or_insert_with(Default::default).addr = Some(v);
    }
    if let Some(v) = env("BERTH_REGISTRY_RETENTION") {
        #[derive(Deserialize)]
        struct R {
            retention: Vec<RetentionRule>,
        }
        let r: R = toml::from_str(&format!("retention = {v}"))
            .map_err(|e| invalid("BERTH_REGISTRY_RETENTION", e.message().to_owned()))?;
        raw.retention = Some(r.retention);
    }
    if let Some(v) = env("BERTH_REGISTRY_NOTIFICATIONS") {
        #[derive(Deserialize)]
        struct N {
            notifications: Vec<FileNotification>,
        }
        let n: N = toml::from_str(&format!("notifications = {v}"))
            .map_err(|e| invalid("BERTH_REGISTRY_NOTIFICATIONS", e.message().to_owned()))?;
        raw.notifications = Some(n.notifications);
    }
    Ok(())
}

/// Fills defaults and checks values.
pub(crate) fn build(raw: FileOps) -> Result<Ops> {
    let d = GcConfig::default();
    let fg = raw.gc.unwrap_or_default();
    let gc = GcConfig {
        interval_secs: fg.interval_secs.unwrap_or(d.interval_secs),
        grace_secs: fg.grace_secs.unwrap_or(d.grace_secs),
    };
    let retention = raw.retention.unwrap_or_default();
    for (i, r) in retention.iter().enumerate() {
        if r.repositories.is_empty() {
            return Err(invalid(
                &format!("retention[{i}].repositories"),
                "list at least one repository glob (`**` for all)".into(),
            ));
        }
        if r.keep_last == Some(0) && r.keep_within_secs.is_none() && r.keep_tags.is_empty() {
            return Err(invalid(
                &format!("retention[{i}].keep_last"),
                "0 with no other keep clause would delete every tag; remove the rule or keep some"
                    .into(),
            ));
        }
    }
    let metrics = MetricsConfig {
        addr: match raw.metrics.and_then(|m| m.addr) {
            None => None,
            Some(a) => {
                let full = if a.starts_with(':') {
                    format!("0.0.0.0{a}")
                } else {
                    a.clone()
                };
                Some(full.parse().map_err(|_| {
                    invalid(
                        "metrics.addr",
                        format!("`{a}` is not an IP:PORT address (e.g. `127.0.0.1:9102`)"),
                    )
                })?)
            }
        },
    };
    let mut notifications = Vec::new();
    for (i, n) in raw
        .notifications
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
            return Err(invalid(
                &format!("notifications[{i}].url"),
                format!("`{}` is not an http:// or https:// URL", n.url),
            ));
        }
        let events = n
            .events
            .unwrap_or_else(|| ACTIONS.iter().map(|s| (*s).to_owned()).collect());
        if let Some(bad) = events.iter().find(|e| !ACTIONS.contains(&e.as_str())) {
            return Err(invalid(
                &format!("notifications[{i}].events"),
                format!("unknown event `{bad}`; use push, pull, mount or delete"),
            ));
        }
        let timeout_secs = n.timeout_secs.unwrap_or(5);
        if !(1..=300).contains(&timeout_secs) {
            return Err(invalid(
                &format!("notifications[{i}].timeout_secs"),
                format!("{timeout_secs} is outside 1..=300"),
            ));
        }
        let max_pending = n.max_pending.unwrap_or(100_000);
        if max_pending == 0 {
            return Err(invalid(
                &format!("notifications[{i}].max_pending"),
                "must be at least 1".into(),
            ));
        }
        notifications.push(NotificationEndpoint {
            url: n.url,
            events,
            headers: n.headers,
            timeout_secs,
            max_pending,
        });
    }
    Ok(Ops {
        gc,
        retention,
        metrics,
        notifications,
    })
}

#[cfg(test)]
mod tests {
    use crate::RegistryConfig;

    fn load(text: &str, env: &[(&str, &str)]) -> crate::registry::Result<RegistryConfig> {
        crate::registry::load_text(text, env)
    }

    #[test]
    fn sections_parse_with_defaults() {
        let c = load(
            r#"
[gc]
grace_secs = 60
[[retention]]
repositories = ["team/**"]
keep_last = 3
keep_tags = ["v*"]
[metrics]
addr = "127.0.0.1:9102"
[[notifications]]
url = "http://127.0.0.1:1/hook"
events = ["push"]
headers = { Authorization = "Bearer x" }
"#,
            &[],
        )
        .unwrap();
        assert_eq!(c.ops.gc.interval_secs, 3600);
        assert_eq!(c.ops.gc.grace_secs, 60);
        assert_eq!(c.ops.retention[0].keep_last, Some(3));
        assert_eq!(c.ops.metrics.addr.unwrap().port(), 9102);
        assert_eq!(c.ops.notifications[0].events, vec!["push"]);
        assert_eq!(c.ops.notifications[0].headers["Authorization"], "Bearer x");
    }

    #[test]
    fn env_overrides() {
        let c = load(
            "",
            &[
                ("BERTH_REGISTRY_GC_INTERVAL_SECS", "5"),
                ("BERTH_REGISTRY_GC_GRACE_SECS", "0"),
                ("BERTH_REGISTRY_METRICS_ADDR", ":9999"),
                (
                    "BERTH_REGISTRY_RETENTION",
                    r#"[{repositories=["a"], keep_within_secs=10}]"#,
                ),
                ("BERTH_REGISTRY_NOTIFICATIONS", r#"[{url="http://x/"}]"#),
            ],
        )
        .unwrap();
        assert_eq!(c.ops.gc.interval_secs, 5);
        assert_eq!(c.ops.gc.grace_secs, 0);
        assert_eq!(c.ops.metrics.addr.unwrap().port(), 9999);
        assert_eq!(c.ops.retention[0].keep_within_secs, Some(10));
        assert_eq!(c.ops.notifications[0].events.len(), 4);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load("[[notifications]]\nurl = \"ftp://x\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("notifications[0].url"), "{e}");
        let e = load(
            "[[notifications]]\nurl = \"http://x\"\nevents = [\"boom\"]",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("notifications[0].events"), "{e}");
        let e = load("[[retention]]\nrepositories = []", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("retention[0].repositories"), "{e}");
        let e = load("[metrics]\naddr = \"x\"", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics.addr"), "{e}");
        let e = load("[gc]\nbogus = 1", &[]).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
