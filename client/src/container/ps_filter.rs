//! `ps --filter`: moby's container list filters. Supported with Docker's meaning: `id` and
//! `name` (exact or regular expression; names start with `/`), `exited=N` (stopped
//! containers that ran and exited with N), `status` (`created`, `running`, `restarting`,
//! `exited`, …; implies `-a`), `ancestor` (containers of that image), `before`/`since` (created
//! before/after a container), `volume` (a volume name, bind source or mount destination),
//! `label`, `network`. Keys for features Berth does not have are accepted as Docker accepts
//! them and match what Docker would match with none of that feature: no health checks
//! (`health=none` matches all), no swarm tasks (`is-task=false` matches all), no ports
//! (`publish`/`expose` match nothing).
//!
//! May call [`super::state`], [`super::config`] (labels, network mode), [`super::inspect`]
//! (mount points), [`crate::filters`] and [`crate::store`] (`ancestor` images).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::state::{self, State, Status};
use crate::filters::{FilterError, Filters};
use crate::reference::Reference;
use crate::store::Store;

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

/// A filter Docker refuses (its messages).
#[derive(Debug, thiserror::Error)]
pub enum PsFilterError {
    /// A bad flag or an unknown key.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `exited=` is not a number.
    #[error("Error response from daemon: strconv.Atoi: parsing \"{0}\": invalid syntax")]
    Exited(String),
    /// A value the key does not take.
    #[error("Error response from daemon: Invalid filter '{key}={value}'")]
    Invalid {
        /// The key.
        key: String,
        /// The value, as Docker shows it.
        value: String,
    },
    /// A `health` value Docker does not know.
    #[error("Error response from daemon: Unrecognised filter value for health: {0}")]
    Health(String),
    /// The container of `before`/`since` does not exist.
    #[error("Error response from daemon: no such container {0}")]
    NoSuchContainer(String),
}

/// What this module's functions return.
pub type Result<T> = std::result::Result<T, PsFilterError>;

fn invalid(key: &str, value: &str) -> PsFilterError {
    PsFilterError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

impl PsFilter {
    /// Checks and resolves the filters.
    ///
    /// # Errors
    /// Docker's messages for an unknown key, a bad value, or a missing `before`/`since`
    /// container.
    pub fn new(store: &Store, filters: Filters) -> Result<Self> {
        filters.validate(ACCEPTED)?;
        let exited = filters
            .get("exited")
            .iter()
            .map(|v| {
                v.parse::<i32>()
                    .map_err(|_| PsFilterError::Exited(v.clone()))
            })
            .collect::<Result<_>>()?;
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
            return Err(PsFilterError::Health(v.clone()));
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
                .filter_map(|a| {
                    let full = Reference::parse(a).ok().map(|r| r.to_string());
                    store.resolve(a, full.as_deref()).ok().map(|i| i.id)
                })
                .collect()
        });
        let reference = |key: &str| -> Result<Option<DateTime<Utc>>> {
            match filters.get(key).last() {
                Some(v) => state::find(store.root(), v)
                    .map(|(_, s)| created(&s))
                    .map_err(|_| PsFilterError::NoSuchContainer(v.clone())),
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
        let state_name = s.state_name();
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
                .map(|spec| super::inspect::mount_points(data_root, dir, &spec))
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
            let create = super::config::load_create_config(dir, s);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container;
    use crate::procfs::ProcessId;

    struct Fixture {
        _tmp: tempfile::TempDir,
        store: Store,
        all: Vec<(std::path::PathBuf, State)>,
    }

    /// Three containers: `one` exited 3, `two` exited 0, `three` running (owned by us).
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let me = ProcessId::of(nix::unistd::getpid().as_raw());
        let states = [
            (
                "aaa111",
                "one",
                Status::Exited,
                Some(3),
                "2024-01-01T00:00:01Z",
            ),
            (
                "bbb222",
                "two",
                Status::Exited,
                Some(0),
                "2024-01-01T00:00:02Z",
            ),
            (
                "ccc333",
                "three",
                Status::Running,
                None,
                "2024-01-01T00:00:03Z",
            ),
        ];
        for (id, name, status, code, created) in states {
            let dir = container::root(tmp.path()).join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let lock = container::Lock::take(&dir).unwrap();
            let s = State {
                id: id.into(),
                name: name.into(),
                image: "sha256:img".into(),
                status,
                exit_code: code,
                created: created.into(),
                started_at: Some(created.into()),
                monitor: if status == Status::Running { me } else { None },
                ..State::default()
            };
            container::save(&dir, &s, &lock).unwrap();
        }
        let all = container::list(tmp.path());
        Fixture {
            _tmp: tmp,
            store,
            all,
        }
    }

    fn names(f: &Fixture, flags: &[&str]) -> anyhow::Result<Vec<String>> {
        let flags: Vec<String> = flags.iter().map(|s| (*s).to_owned()).collect();
        let filter = PsFilter::new(&f.store, Filters::parse(&flags)?)?;
        Ok(f.all
            .iter()
            .filter(|(d, s)| filter.keep(f.store.root(), d, s))
            .map(|(_, s)| s.name.clone())
            .collect())
    }

    #[test]
    fn same_keys_or_different_keys_and() {
        let f = fixture();
        assert_eq!(names(&f, &[]).unwrap(), ["three", "two", "one"]);
        assert_eq!(names(&f, &["exited=3"]).unwrap(), ["one"]);
        assert_eq!(
            names(&f, &["exited=3", "exited=0"]).unwrap(),
            ["two", "one"]
        );
        assert_eq!(names(&f, &["status=running"]).unwrap(), ["three"]);
        assert_eq!(names(&f, &["status=exited", "name=one"]).unwrap(), ["one"]);
        assert_eq!(names(&f, &["name=t"]).unwrap(), ["three", "two"]);
        assert_eq!(names(&f, &["id=bbb"]).unwrap(), ["two"]);
        assert_eq!(names(&f, &["before=two"]).unwrap(), ["one"]);
        assert_eq!(names(&f, &["since=two"]).unwrap(), ["three"]);
        assert_eq!(names(&f, &["since=one", "before=three"]).unwrap(), ["two"]);
        assert_eq!(names(&f, &["health=none"]).unwrap().len(), 3);
        assert!(names(&f, &["health=healthy"]).unwrap().is_empty());
        assert_eq!(names(&f, &["is-task=false"]).unwrap().len(), 3);
        assert!(names(&f, &["publish=80"]).unwrap().is_empty());
        // No such image: nothing matches, no error (moby only warns).
        assert!(names(&f, &["ancestor=nope"]).unwrap().is_empty());
    }

    #[test]
    fn bad_filters_are_dockers_errors() {
        let f = fixture();
        for (flag, want) in [
            ("colour=red", "Invalid filter 'colour'"),
            ("status=sleeping", "Invalid filter 'status=sleeping'"),
            ("exited=x", "strconv.Atoi: parsing \"x\": invalid syntax"),
            ("before=nope", "no such container nope"),
            ("is-task=maybe", "Invalid filter 'is-task=[maybe]'"),
            ("health=x", "Unrecognised filter value for health: x"),
        ] {
            let e = names(&f, &[flag]).unwrap_err().to_string();
            assert!(e.ends_with(want), "{flag}: {e}");
        }
        let f2 = fixture();
        let flags = ["status=exited".to_owned()];
        assert!(PsFilter::new(&f2.store, Filters::parse(&flags).unwrap())
            .unwrap()
            .implies_all());
    }
}
