//! `ps --filter`: moby's container list filters. Supported with Docker's meaning: `id` and
//! `name` (exact or regular expression; names start with `/`), `exited=N` (stopped
//! containers that ran and exited with N), `status` (`created`, `running`, `restarting`,
//! `exited`, …; implies `-a`), `ancestor` (containers of that image), `before`/`since` (created
//! before/after a container), `volume` (a volume name, bind source or mount destination),
//! `label`, `network`. Keys for features Berth does not have are accepted as Docker accepts
//! them and match what Docker would match with none of that feature: no health checks
//! (`health=none` matches all), no swarm tasks (`is-task=false` matches all), no ports
//! (`publish`/`expose` match nothing).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::containers::{self, State, Status};
use crate::context::Ctx;
use crate::filters::Filters;

/// The keys Docker's `ps` accepts.
pub const ACCEPTED: &[&str] = &[
    "ancestor", "before", "exited", "health", "id", "label", "name", "status", "since", "volume",
    "network", "is-task", "publish", "expose",
];

/// Docker's container state names.
const STATES: &[&str] = &[
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// Filters resolved against the store: exit codes parsed, images and reference containers
/// looked up.
#[derive(Debug)]
pub struct PsFilter {
    filters: Filters,
    exited: Vec<i32>,
    images: Option<BTreeSet<String>>,
    before: Option<DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
}

fn created(s: &State) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s.created)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn invalid(key: &str, value: &str) -> anyhow::Error {
    anyhow::anyhow!("Error response from daemon: Invalid filter '{key}={value}'")
}

impl PsFilter {
    /// Checks and resolves the filters.
    ///
    /// # Errors
    /// Docker's messages for an unknown key, a bad value, or a missing `before`/`since`
    /// container.
    pub fn new(ctx: &Ctx, filters: Filters) -> anyhow::Result<Self> {
        filters.validate(ACCEPTED)?;
        let exited = filters
            .get("exited")
            .iter()
            .map(|v| {
                v.parse::<i32>().map_err(|_| {
                    anyhow::anyhow!(
                        "Error response from daemon: strconv.Atoi: parsing \"{v}\": invalid syntax"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        if let Some(v) = filters
            .get("status")
            .iter()
            .find(|v| !STATES.contains(&v.as_str()))
        {
            return Err(invalid("status", v));
        }
        if let Some(v) = filters
            .get("health")
            .iter()
            .find(|v| !HEALTH.contains(&v.as_str()))
        {
            anyhow::bail!("Error response from daemon: Unrecognised filter value for health: {v}");
        }
        if let Some(v) = filters
            .get("is-task")
            .iter()
            .find(|v| *v != "true" && *v != "false")
        {
            return Err(invalid("is-task", &format!("[{v}]")));
        }
        let images = filters.contains("ancestor").then(|| {
            filters
                .get("ancestor")
                .iter()
                .filter_map(|a| super::find_image(ctx, a).ok().map(|i| i.id))
                .collect()
        });
        let reference = |key: &str| -> anyhow::Result<Option<DateTime<Utc>>> {
            match filters.get(key).last() {
                Some(v) => containers::find(ctx.store.root(), v)
                    .map(|(_, s)| created(&s))
                    .map_err(|_| {
                        anyhow::anyhow!("Error response from daemon: no such container {v}")
                    }),
                None => Ok(None),
            }
        };
        Ok(Self {
            exited,
            images,
            before: reference("before")?,
            since: reference("since")?,
            filters,
        })
    }

    /// Whether the filters show stopped containers without `-a` (`status` does).
    #[must_use]
    pub fn implies_all(&self) -> bool {
        self.filters.contains("status")
    }

    /// Whether the container in `dir` passes every filter.
    #[must_use]
    pub fn keep(&self, data_root: &Path, dir: &Path, s: &State) -> bool {
        let f = &self.filters;
        let status = s.status();
        let state_name = match status {
            Status::Running if s.restarting => "restarting",
            other => match other {
                Status::Created => "created",
                Status::Running => "running",
                Status::Exited => "exited",
            },
        };
        if !f.matches("id", &s.id) || !f.matches("name", &format!("/{}", s.name)) {
            return false;
        }
        let exited_with = |codes: &[i32]| {
            status == Status::Exited && s.started_at.is_some() && codes.contains(&s.exit_code())
        };
        if !self.exited.is_empty() && !exited_with(&self.exited) {
            return false;
        }
        let statuses = f.get("status");
        if !statuses.is_empty() && !statuses.iter().any(|v| v == state_name) {
            return false;
        }
        if self.images.as_ref().is_some_and(|i| !i.contains(&s.image)) {
            return false;
        }
        let t = created(s);
        // An unknown creation time fails both.
        if self.before.is_some_and(|b| t.is_none_or(|t| t >= b))
            || self.since.is_some_and(|b| t.is_none_or(|t| t <= b))
        {
            return false;
        }
        let health = f.get("health");
        if !health.is_empty() && !health.iter().any(|h| h == "none") {
            return false;
        }
        if f.get("is-task").iter().any(|v| v == "true")
            || f.contains("publish")
            || f.contains("expose")
        {
            return false;
        }
        let volumes = f.get("volume");
        if !volumes.is_empty() {
            let mounts = oci_spec::runtime::Spec::load(dir.join("config.json"))
                .map(|spec| super::container_inspect::mount_points(data_root, dir, &spec))
                .unwrap_or_default();
            let hit = mounts.iter().any(|m| {
                ["Name", "Source", "Destination"].iter().any(|k| {
                    m[*k]
                        .as_str()
                        .is_some_and(|v| volumes.iter().any(|w| w == v))
                })
            });
            if !hit {
                return false;
            }
        }
        if f.contains("label") || f.contains("network") {
            let create = super::container_inspect::load_create_config(dir, s);
            if !Filters::labels_match(f.get("label"), &[], &create.labels) {
                return false;
            }
            let networks = f.get("network");
            if !networks.is_empty() && !networks.contains(&create.network_mode) {
                return false;
            }
        }
        true
    }
}
